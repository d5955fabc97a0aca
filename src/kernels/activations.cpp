#include "kernels/activations.h"

#include <cmath>

#include "kernels/parallel.h"

namespace fcabert::kernels {

void gelu_erf(float* x, int64_t count) {
  constexpr float kInvSqrt2 = 0.70710678118654752440f;
  parallel_for(count, worth_parallel(count),
               [=](int64_t i) { x[i] = 0.5f * x[i] * (1.f + std::erf(x[i] * kInvSqrt2)); });
}

void tanh_inplace(float* x, int64_t count) {
  parallel_for(count, worth_parallel(count), [=](int64_t i) { x[i] = std::tanh(x[i]); });
}

void relu_inplace(float* x, int64_t count) {
  for (int64_t i = 0; i < count; ++i) x[i] = x[i] > 0.0f ? x[i] : 0.0f;
}

}  // namespace fcabert::kernels
