// Int8 weight storage: the per-row quantization both writers use, the dequantization the
// reader uses, and the reader's rules for I8 tensors and their "_scale" companions.
#include "format/int8.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>

#include "format/errors.h"

namespace fcabert {

std::string scale_tensor_name(const std::string& name) { return name + kScaleSuffix; }

namespace format {
namespace {

float load_f32(const uint8_t* bytes) {
  float value;
  std::memcpy(&value, bytes, sizeof value);
  return value;
}

std::string float_text(float value) {
  char text[32];
  std::snprintf(text, sizeof text, "%g", static_cast<double>(value));
  return text;
}

void check_int8_tensor(const std::string& path, const TensorInfo& tensor,
                       const std::unordered_map<std::string, size_t>& index) {
  if (tensor.shape.size() != 2)
    throw tensor_error(path, tensor.name,
                       "dtype I8 (int8 with one scale per row) is only for 2-D tensors, but the shape is " +
                           shape_string(tensor.shape) + "; " + kReconvertHint);
  if (!index.count(scale_tensor_name(tensor.name)))
    throw tensor_error(path, tensor.name,
                       "I8 tensor without its scale tensor \"" + scale_tensor_name(tensor.name) +
                           "\" (F32 [" + std::to_string(tensor.shape[0]) +
                           "], one scale per row); the file is incomplete; " + kReconvertHint);
}

// Scales are read at open, so that a corrupt one is refused there and not while the network
// loads; they are 4 bytes per row, a negligible part of the file.
void check_scale_values(const std::string& path, const TensorInfo& scale, const uint8_t* file_bytes,
                        uint64_t data_start) {
  const uint64_t begin = data_start + scale.offset;
  for (int64_t row = 0; row < scale.numel(); ++row) {
    const uint64_t at = begin + 4 * static_cast<uint64_t>(row);
    const float value = load_f32(file_bytes + at);
    if (!std::isfinite(value) || value < 0.f)
      throw tensor_error(path, scale.name,
                         "scale of row " + std::to_string(row) + " is " + float_text(value) +
                             " (file byte offset " + std::to_string(at) +
                             "); scales must be finite and >= 0; the file is corrupt; " + kReconvertHint);
  }
}

void check_scale_tensor(const std::string& path, const TensorInfo& scale, const std::string& owner_name,
                        const std::vector<TensorInfo>& tensors,
                        const std::unordered_map<std::string, size_t>& index, const uint8_t* file_bytes,
                        uint64_t data_start) {
  const auto found = index.find(owner_name);
  if (found == index.end())
    throw tensor_error(path, scale.name,
                       "scale tensor without its I8 tensor \"" + owner_name + "\" (names ending in \"" +
                           kScaleSuffix + "\" hold the scales of I8 tensors); " + kReconvertHint);
  const TensorInfo& owner = tensors[found->second];
  if (owner.dtype != DType::kI8)
    throw tensor_error(path, scale.name,
                       "scale tensor for \"" + owner_name + "\", which is " + dtype_name(owner.dtype) +
                           ", not I8 (only I8 tensors have \"" + kScaleSuffix + "\" companions); " +
                           kReconvertHint);
  const std::vector<int64_t> rows{owner.shape[0]};
  if (scale.dtype != DType::kF32 || scale.shape != rows)
    throw tensor_error(path, scale.name,
                       std::string("the scales of I8 tensor \"") + owner_name + "\" " +
                           shape_string(owner.shape) + " must be F32 " + shape_string(rows) +
                           " (one per row), but this is " + dtype_name(scale.dtype) + " " +
                           shape_string(scale.shape) + "; " + kReconvertHint);
  check_scale_values(path, scale, file_bytes, data_start);
}

}  // namespace

float int8_row_scale(const float* row, int64_t cols) {
  float largest = 0.f;
  for (int64_t c = 0; c < cols; ++c) largest = std::max(largest, std::fabs(row[c]));
  return largest / kInt8Limit;
}

void quantize_int8_row(const float* row, int64_t cols, float scale, int8_t* out) {
  if (scale == 0.f) {
    std::fill(out, out + cols, int8_t{0});
    return;
  }
  // Division, not multiplication by 1 / scale: the quotient is then correctly rounded, and
  // tools/fcabert_model.py computes the same one in numpy. Ties go to even (std::nearbyint in
  // the default rounding mode, numpy's rint).
  for (int64_t c = 0; c < cols; ++c) {
    const float q = std::nearbyint(row[c] / scale);
    out[c] = static_cast<int8_t>(std::clamp(q, -kInt8Limit, kInt8Limit));
  }
}

void dequantize_int8_rows(const uint8_t* codes, const uint8_t* scales, int64_t rows, int64_t cols,
                          float* out) {
  for (int64_t r = 0; r < rows; ++r) {
    const float scale = load_f32(scales + 4 * r);
    for (int64_t c = 0; c < cols; ++c) {
      const int64_t i = r * cols + c;
      out[i] = static_cast<float>(static_cast<int8_t>(codes[i])) * scale;
    }
  }
}

std::string int8_tensor_of_scale(const std::string& name) {
  const size_t suffix = std::strlen(kScaleSuffix);
  if (name.size() <= suffix || name.compare(name.size() - suffix, suffix, kScaleSuffix) != 0) return "";
  return name.substr(0, name.size() - suffix);
}

void check_int8_tensors(const std::string& path, const std::vector<TensorInfo>& tensors,
                        const std::unordered_map<std::string, size_t>& index, const uint8_t* file_bytes,
                        uint64_t data_start) {
  // The I8 tensors first: a scale is checked against the shape of an owner known to be 2-D.
  for (const TensorInfo& tensor : tensors)
    if (tensor.dtype == DType::kI8) check_int8_tensor(path, tensor, index);
  for (const TensorInfo& tensor : tensors) {
    const std::string owner = int8_tensor_of_scale(tensor.name);
    if (!owner.empty()) check_scale_tensor(path, tensor, owner, tensors, index, file_bytes, data_start);
  }
}

}  // namespace format
}  // namespace fcabert
