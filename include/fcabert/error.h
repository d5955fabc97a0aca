#pragma once
// One exception type for everything the library refuses: a bad model file, bad input text,
// an invalid option. Messages name the file / line / tensor, say what is wrong and what to do.
#include <stdexcept>
#include <string>

namespace fcabert {

class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& message) : std::runtime_error(message) {}
};

}  // namespace fcabert
