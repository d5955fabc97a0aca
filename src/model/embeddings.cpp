#include "model/embeddings.h"

#include "kernels/layer_norm.h"
#include "kernels/parallel.h"

namespace fcabert::model {

Embeddings::Embeddings(const WeightSource& weights, const std::string& prefix, const BertConfig& config)
    : hidden_size_(config.hidden_size),
      word_(weights.read(prefix + "word_embeddings.weight", {config.vocab_size, config.hidden_size})),
      position_(weights.read(prefix + "position_embeddings.weight",
                             {config.max_position_embeddings, config.hidden_size})),
      token_type_(weights.read(prefix + "token_type_embeddings.weight",
                               {config.type_vocab_size, config.hidden_size})),
      norm_(bind_layer_norm(weights, prefix + "LayerNorm.", config.hidden_size, config.layer_norm_eps)) {}

void Embeddings::forward(const PackedBatch& batch, float* hidden) const {
  const int64_t d = hidden_size_;
  const int64_t tokens = batch.tokens();
  // One pass per token: the sum is normalised while the row is still in cache.
  kernels::parallel_for(tokens, kernels::worth_parallel(tokens * d), [&](int64_t t) {
    const float* word = word_.data() + static_cast<int64_t>(batch.ids[t]) * d;
    const float* position = position_.data() + static_cast<int64_t>(batch.positions[t]) * d;
    const float* type = token_type_.data() + static_cast<int64_t>(batch.type_ids[t]) * d;
    float* row = hidden + t * d;
#pragma omp simd
    for (int64_t i = 0; i < d; ++i) row[i] = word[i] + position[i] + type[i];
    kernels::layer_norm_row(row, row, d, norm_.gamma.data(), norm_.beta.data(), norm_.eps);
  });
}

}  // namespace fcabert::model
