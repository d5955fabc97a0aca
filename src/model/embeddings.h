#pragma once
// BERT input embeddings: word[id] + position[p] + token_type[t], then LayerNorm.
#include <cstdint>
#include <string>
#include <vector>

#include "fcabert/config.h"
#include "model/bindings.h"
#include "model/packed_batch.h"
#include "model/weights.h"

namespace fcabert::model {

// One [rows, dim] lookup table, kept in the dtype its source stores: a bf16 table stays bf16
// and each looked-up row is widened, which is exact. For a 30522 x 384 vocabulary that is
// 23 MB instead of 47 MB, and no widening pass over the whole table at load (docs/PERF.md has
// the measured load times).
class EmbeddingTable {
 public:
  EmbeddingTable(const WeightSource& weights, const std::string& name, int64_t rows, int64_t dim);

  void copy_row(int64_t row, float* out) const;  // out = table[row]
  void add_row(int64_t row, float* out) const;   // out += table[row]

 private:
  // combine(out[i], table[row][i]) for every i, the table's element widened to fp32.
  template <typename Combine>
  void combine_row(int64_t row, float* out, Combine combine) const;

  int64_t dim_;
  std::vector<uint16_t> bf16_;  // [rows, dim] when the source stores bf16, else empty
  std::vector<float> fp32_;     // [rows, dim] otherwise
};

class Embeddings {
 public:
  // Binds "<prefix>word_embeddings.weight", "<prefix>position_embeddings.weight",
  // "<prefix>token_type_embeddings.weight" and "<prefix>LayerNorm." (prefix usually
  // "bert.embeddings.").
  Embeddings(const WeightSource& weights, const std::string& prefix, const BertConfig& config);

  // hidden[T, d] for the packed batch (ids are assumed validated by pack_batch).
  void forward(const PackedBatch& batch, float* hidden) const;

 private:
  int64_t hidden_size_;
  EmbeddingTable word_;        // [vocab, d]
  EmbeddingTable position_;    // [max_positions, d]
  EmbeddingTable token_type_;  // [type_vocab, d]
  LayerNormWeights norm_;
};

}  // namespace fcabert::model
