#include "model/head.h"

#include <algorithm>

#include "kernels/activations.h"
#include "model/bindings.h"

namespace fcabert::model {

Pooler::Pooler(const dnnl::engine& engine, const WeightSource& weights, const std::string& prefix,
               const BertConfig& config)
    : dense_(bind_linear(engine, weights, prefix + "dense.", config.hidden_size, config.hidden_size)),
      relu_(config.pooler_act == "relu") {}

void Pooler::forward(const float* hidden, const std::vector<int64_t>& offsets, Workspace& ws,
                     float* pooled) const {
  const int64_t d = dense_.in_features();
  const int64_t sequences = static_cast<int64_t>(offsets.size()) - 1;
  // Gather the [CLS] rows so the pooler is one GEMM over B rows.
  float* cls = ws.cls();
  for (int64_t s = 0; s < sequences; ++s) std::copy_n(hidden + offsets[s] * d, d, cls + s * d);
  dense_.forward(ws.stream, cls, sequences, pooled, ws.dnnl_scratchpad());
  if (relu_)
    kernels::relu_inplace(pooled, sequences * d);
  else
    kernels::tanh_inplace(pooled, sequences * d);
}

Classifier::Classifier(const dnnl::engine& engine, const WeightSource& weights, const std::string& prefix,
                       int64_t hidden_size, int64_t num_labels)
    : dense_(bind_linear(engine, weights, prefix, hidden_size, num_labels)) {}

void Classifier::forward(const float* pooled, int64_t rows, Workspace& ws, float* logits) const {
  dense_.forward(ws.stream, pooled, rows, logits, ws.dnnl_scratchpad());
}

}  // namespace fcabert::model
