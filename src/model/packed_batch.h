#pragma once
// A batch of token sequences concatenated into one list of T tokens (docs/ARCHITECTURE.md: never pad).
// Sequence s owns tokens [offsets[s], offsets[s + 1]); every matrix the encoder works on is
// [T, ...] in the same order.
#include <cstdint>
#include <vector>

#include "fcabert/config.h"
#include "fcabert/tokenizer.h"

namespace fcabert::model {

struct PackedBatch {
  std::vector<int32_t> ids;        // [T] word-piece ids
  std::vector<int32_t> type_ids;   // [T] segment (token type) ids
  std::vector<int32_t> positions;  // [T] position within the sequence, 0..n-1
  std::vector<int64_t> offsets;    // [B + 1], offsets[0] = 0, offsets[B] = T

  int64_t tokens() const { return offsets.empty() ? 0 : offsets.back(); }
  int64_t sequences() const { return offsets.empty() ? 0 : static_cast<int64_t>(offsets.size()) - 1; }
  int64_t longest() const;
};

// Fills `out` from `batch`, reusing its capacity. Throws fcabert::Error naming the sequence
// (and token) when a sequence is empty, its ids and type ids differ in length, it is longer
// than max_position_embeddings, or an id is outside the vocabulary / token-type range.
void pack_batch(const std::vector<Encoding>& batch, const BertConfig& config, PackedBatch& out);

}  // namespace fcabert::model
