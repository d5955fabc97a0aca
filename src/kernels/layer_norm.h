#pragma once
// LayerNorm over the last dimension: y = (x - mean) / sqrt(var + eps) * gamma + beta, with
// the biased variance (as PyTorch's nn.LayerNorm).
#include <cstdint>

namespace fcabert::kernels {

// One row; `in` and `out` may be the same pointer.
void layer_norm_row(const float* in, float* out, int64_t dim, const float* gamma, const float* beta,
                    float eps);

// Every row of x[rows, dim] in place, rows spread over the OpenMP threads.
void layer_norm(float* x, int64_t rows, int64_t dim, const float* gamma, const float* beta, float eps);

}  // namespace fcabert::kernels
