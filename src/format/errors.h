#pragma once
// Message helpers shared by the model-file reader and writer. Every message starts with the
// file path and ends, where the user can act, with what to do.
#include <cstdint>
#include <string>
#include <vector>

#include "fcabert/error.h"

namespace fcabert::format {

// What to do about a file this build cannot use.
inline constexpr const char* kReconvertHint = "re-convert the checkpoint with tools/convert.py";

inline Error file_error(const std::string& path, const std::string& what) {
  return Error(path + ": " + what);
}

inline Error tensor_error(const std::string& path, const std::string& tensor, const std::string& what) {
  return Error(path + ": tensor \"" + tensor + "\": " + what);
}

inline std::string shape_string(const std::vector<int64_t>& shape) {
  std::string text = "[";
  for (size_t i = 0; i < shape.size(); ++i) text += (i ? ", " : "") + std::to_string(shape[i]);
  return text + "]";
}

}  // namespace fcabert::format
