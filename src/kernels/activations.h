#pragma once
// Elementwise activations, in place.
#include <cmath>
#include <cstdint>

namespace fcabert::kernels {

// GELU with the exact erf form BERT uses: x * 0.5 * (1 + erf(x / sqrt(2))).
// (The encoder fuses this into the intermediate matmul; this kernel is the plain version,
// used where no matmul precedes it and as the reference for the fused one.)
void gelu_erf(float* x, int64_t count);

// tanh, for the pooler.
void tanh_inplace(float* x, int64_t count);

// max(x, 0), for DistilBERT's pre-classifier (converted to the pooler).
void relu_inplace(float* x, int64_t count);

// The logistic sigmoid 1 / (1 + e^-x), for multi-label heads (a probability per label).
inline float sigmoid(float x) { return 1.0f / (1.0f + std::exp(-x)); }

}  // namespace fcabert::kernels
