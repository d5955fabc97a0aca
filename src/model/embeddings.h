#pragma once
// BERT input embeddings: word[id] + position[p] + token_type[t], then LayerNorm.
#include <string>
#include <vector>

#include "fcabert/config.h"
#include "model/bindings.h"
#include "model/packed_batch.h"
#include "model/weights.h"

namespace fcabert::model {

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
  std::vector<float> word_;        // [vocab, d]
  std::vector<float> position_;    // [max_positions, d]
  std::vector<float> token_type_;  // [type_vocab, d]
  LayerNormWeights norm_;
};

}  // namespace fcabert::model
