#pragma once
// Binding Hugging Face tensors (by hierarchical name) to the kernels that use them. Each
// function reads and checks its tensors immediately, so binding fails at load.
#include <cstdint>
#include <oneapi/dnnl/dnnl.hpp>
#include <string>
#include <vector>

#include "kernels/linear.h"
#include "model/weights.h"

namespace fcabert::model {

// gamma ("<prefix>weight") and beta ("<prefix>bias") of a LayerNorm over `dim` features.
struct LayerNormWeights {
  std::vector<float> gamma;
  std::vector<float> beta;
  float eps = 1e-12f;

  void apply(float* x, int64_t rows) const;  // in place, rows of gamma.size() features
};

LayerNormWeights bind_layer_norm(const WeightSource& weights, const std::string& prefix, int64_t dim,
                                 float eps);

// An nn.Linear: "<prefix>weight" [out, in] and "<prefix>bias" [out].
kernels::Linear bind_linear(const dnnl::engine& engine, const WeightSource& weights,
                            const std::string& prefix, int64_t in, int64_t out,
                            kernels::Epilogue epilogue = kernels::Epilogue::kNone,
                            Precision precision = Precision::kFp32,
                            kernels::Linear::Output output = kernels::Linear::Output::kFp32,
                            kernels::Int8Scales int8_scales = kernels::Int8Scales::kPerCall);

// Several nn.Linear layers over the same input, stacked into one [sum(out), in] GEMM (the
// query, key and value projections become one matmul over the hidden states).
kernels::Linear bind_stacked_linear(const dnnl::engine& engine, const WeightSource& weights,
                                    const std::vector<std::string>& prefixes, int64_t in, int64_t out_each,
                                    Precision precision = Precision::kFp32);

}  // namespace fcabert::model
