#pragma once
// Internal to the attention kernel (attention.cpp, attention_amx.cpp): where one head of one
// sequence lives inside the packed qkv / context matrices.
#include <cstdint>

namespace fcabert::kernels {

struct HeadView {
  const float* q;  // row i at q + i * qkv_stride
  const float* k;
  const float* v;
  float* context;  // row i at context + i * context_stride
  int64_t qkv_stride;
  int64_t context_stride;
  int64_t length;
  int64_t head_dim;
  double* column_sums;  // [length], or null when no FCA statistics are wanted
  double* diagonal;     // [length]
};

inline int64_t round_up(int64_t value, int64_t multiple) {
  return (value + multiple - 1) / multiple * multiple;
}

}  // namespace fcabert::kernels
