#include "model/embeddings.h"

#include <optional>

#include "format/bf16.h"
#include "kernels/layer_norm.h"
#include "kernels/parallel.h"

namespace fcabert::model {

EmbeddingTable::EmbeddingTable(const WeightSource& weights, const std::string& name, int64_t rows,
                               int64_t dim)
    : dim_(dim) {
  std::optional<std::vector<uint16_t>> bits = weights.read_bf16(name, {rows, dim});
  if (bits) {
    bf16_ = std::move(*bits);
  } else {
    fp32_ = weights.read(name, {rows, dim});
  }
}

template <typename Combine>
void EmbeddingTable::combine_row(int64_t row, float* out, Combine combine) const {
  if (!bf16_.empty()) {
    const uint16_t* source = bf16_.data() + row * dim_;
#pragma omp simd
    for (int64_t i = 0; i < dim_; ++i) combine(out[i], format::bf16_to_f32(source[i]));
  } else {
    const float* source = fp32_.data() + row * dim_;
#pragma omp simd
    for (int64_t i = 0; i < dim_; ++i) combine(out[i], source[i]);
  }
}

void EmbeddingTable::copy_row(int64_t row, float* out) const {
  combine_row(row, out, [](float& o, float v) { o = v; });
}

void EmbeddingTable::add_row(int64_t row, float* out) const {
  combine_row(row, out, [](float& o, float v) { o += v; });
}

Embeddings::Embeddings(const WeightSource& weights, const std::string& prefix, const BertConfig& config)
    : hidden_size_(config.hidden_size),
      word_(weights, prefix + "word_embeddings.weight", config.vocab_size, config.hidden_size),
      position_(weights, prefix + "position_embeddings.weight", config.max_position_embeddings,
                config.hidden_size),
      token_type_(weights, prefix + "token_type_embeddings.weight", config.type_vocab_size,
                  config.hidden_size),
      norm_(bind_layer_norm(weights, prefix + "LayerNorm.", config.hidden_size, config.layer_norm_eps)) {}

void Embeddings::forward(const PackedBatch& batch, float* hidden) const {
  const int64_t d = hidden_size_;
  const int64_t tokens = batch.tokens();
  // One pass per token: the sum is normalised while the row is still in cache. The order of
  // the sum (word + position, then + type) is the one fp32 arithmetic has always used here.
  kernels::parallel_for(tokens, kernels::worth_parallel(tokens * d), [&](int64_t t) {
    float* row = hidden + t * d;
    word_.copy_row(batch.ids[t], row);
    position_.add_row(batch.positions[t], row);
    token_type_.add_row(batch.type_ids[t], row);
    kernels::layer_norm_row(row, row, d, norm_.gamma.data(), norm_.beta.data(), norm_.eps);
  });
}

}  // namespace fcabert::model
