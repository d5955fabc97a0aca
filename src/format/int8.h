#pragma once
// Int8 weight storage (DType::kI8): symmetric per-row quantization of a 2-D tensor, with an
// F32 companion tensor NAME + "_scale" of one scale per row (docs/MODEL_FORMAT.md). The
// writer quantizes, the reader checks the companions and dequantizes; tools/fcabert_model.py
// does the same float32 arithmetic, so both writers store the same bytes for the same input.
#include <cstdint>
#include <string>
#include <unordered_map>
#include <vector>

#include "fcabert/model_file.h"

namespace fcabert::format {

// Symmetric range: -128 is never written, so that negating a weight never overflows.
inline constexpr float kInt8Limit = 127.f;

// max|row[c]| / 127 in float (0 for an all-zero or empty row). The values must be finite.
float int8_row_scale(const float* row, int64_t cols);

// out[c] = nearbyint(row[c] / scale) (ties to even), clamped to [-127, 127]; all zeros when
// scale is 0. The values must be finite and the scale finite and >= 0.
void quantize_int8_row(const float* row, int64_t cols, float scale, int8_t* out);

// out[r * cols + c] = float(codes[r * cols + c]) * scale[r], for an I8 tensor and its scales
// as stored (little-endian F32 scales; read with memcpy, so any alignment will do).
void dequantize_int8_rows(const uint8_t* codes, const uint8_t* scales, int64_t rows, int64_t cols,
                          float* out);

// The I8 tensor that `name` is the "_scale" companion of, or "" when the name does not end
// in "_scale". Names ending in "_scale" are reserved for companions.
std::string int8_tensor_of_scale(const std::string& name);

// The reader's rules, checked after the tensor table and before the expected tensors: every
// I8 tensor is 2-D and has its "_scale" tensor; every "_scale" tensor belongs to an I8 tensor,
// is F32 [rows] and holds finite scales >= 0. `index` maps names to positions in `tensors`;
// `file_bytes` is the whole file, whose data section starts at `data_start` (the tensors are
// already checked to lie inside it). Throws fcabert::Error naming the file and tensor.
void check_int8_tensors(const std::string& path, const std::vector<TensorInfo>& tensors,
                        const std::unordered_map<std::string, size_t>& index, const uint8_t* file_bytes,
                        uint64_t data_start);

}  // namespace fcabert::format
