#pragma once
// Shortest round-trip text of a double for error messages ("0.3", not "0.300000").
#include <charconv>
#include <string>

namespace fcabert::fca {

inline std::string format_number(double value) {
  char buffer[32];
  const auto result = std::to_chars(buffer, buffer + sizeof(buffer), value);
  return std::string(buffer, result.ptr);
}

}  // namespace fcabert::fca
