#pragma once
// Numerically stable softmax: exp(x - max) / sum, so large logits never overflow.
#include <cstdint>

#include "kernels/exp.h"

namespace fcabert::kernels {

// One row of `count` values in place (count >= 1). Inline so the attention kernel's
// per-row call compiles into its own (vectorised) loop.
inline void softmax_row(float* x, int64_t count) {
  float max = x[0];
#pragma omp simd reduction(max : max)
  for (int64_t i = 1; i < count; ++i) max = x[i] > max ? x[i] : max;

  float sum = 0.f;
#pragma omp simd reduction(+ : sum)
  for (int64_t i = 0; i < count; ++i) {
    x[i] = exp_nonpositive(x[i] - max);
    sum += x[i];
  }
  // sum >= 1 (the max element contributes exp(0)), so the division is always safe.
  const float inv_sum = 1.f / sum;
#pragma omp simd
  for (int64_t i = 0; i < count; ++i) x[i] *= inv_sum;
}

// Every row of x[rows, count] in place.
void softmax_rows(float* x, int64_t rows, int64_t count);

}  // namespace fcabert::kernels
