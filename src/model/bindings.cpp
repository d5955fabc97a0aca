#include "model/bindings.h"

#include <spdlog/spdlog.h>

#include <cstring>

#include "kernels/layer_norm.h"

namespace fcabert::model {

void LayerNormWeights::apply(float* x, int64_t rows) const {
  kernels::layer_norm(x, rows, static_cast<int64_t>(gamma.size()), gamma.data(), beta.data(), eps);
}

LayerNormWeights bind_layer_norm(const WeightSource& weights, const std::string& prefix, int64_t dim,
                                 float eps) {
  return LayerNormWeights{weights.read(prefix + "weight", {dim}), weights.read(prefix + "bias", {dim}), eps};
}

namespace {

// oneDNN falls back to its reference implementations silently when no optimised kernel
// takes a combination of types and post-ops; those run orders of magnitude slower (an int8
// residual GEMM measured 400x), so say so once per layer at load.
kernels::Linear checked(kernels::Linear linear, const std::string& name) {
  if (std::strncmp(linear.implementation(), "ref", 3) == 0) {
    spdlog::warn("{}: oneDNN runs this {} matmul with its slow reference implementation ({})", name,
                 precision_name(linear.precision()), linear.implementation());
  }
  return linear;
}

}  // namespace

kernels::Linear bind_linear(const dnnl::engine& engine, const WeightSource& weights,
                            const std::string& prefix, int64_t in, int64_t out, kernels::Epilogue epilogue,
                            Precision precision, kernels::Linear::Output output,
                            kernels::Int8Scales int8_scales) {
  const std::vector<float> weight = weights.read(prefix + "weight", {out, in});
  const std::vector<float> bias = weights.read(prefix + "bias", {out});
  return checked(kernels::Linear(engine, weight.data(), bias.data(), in, out, epilogue, precision,
                                 kernels::Linear::RowPrimitives::kBest, output, int8_scales),
                 prefix);
}

kernels::Linear bind_stacked_linear(const dnnl::engine& engine, const WeightSource& weights,
                                    const std::vector<std::string>& prefixes, int64_t in, int64_t out_each,
                                    Precision precision) {
  // Rows of an [out, in] weight are output features, so stacking row blocks stacks outputs.
  std::vector<float> weight, bias;
  weight.reserve(prefixes.size() * out_each * in);
  bias.reserve(prefixes.size() * out_each);
  for (const std::string& prefix : prefixes) {
    const std::vector<float> w = weights.read(prefix + "weight", {out_each, in});
    const std::vector<float> b = weights.read(prefix + "bias", {out_each});
    weight.insert(weight.end(), w.begin(), w.end());
    bias.insert(bias.end(), b.begin(), b.end());
  }
  const int64_t out = static_cast<int64_t>(prefixes.size()) * out_each;
  return checked(
      kernels::Linear(engine, weight.data(), bias.data(), in, out, kernels::Epilogue::kNone, precision),
      prefixes.front());
}

}  // namespace fcabert::model
