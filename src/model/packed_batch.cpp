#include "model/packed_batch.h"

#include <algorithm>
#include <string>

#include "fcabert/error.h"

namespace fcabert::model {
namespace {

void check_sequence(const Encoding& encoding, size_t index, const BertConfig& config) {
  const std::string where = "sequence " + std::to_string(index);
  const int64_t length = static_cast<int64_t>(encoding.ids.size());
  if (length == 0) throw Error(where + " is empty (it needs at least the [CLS] token)");
  if (encoding.type_ids.size() != encoding.ids.size()) {
    throw Error(where + " has " + std::to_string(length) + " token ids but " +
                std::to_string(encoding.type_ids.size()) + " token type ids");
  }
  if (length > config.max_position_embeddings) {
    throw Error(where + " has " + std::to_string(length) + " tokens; the model takes at most " +
                std::to_string(config.max_position_embeddings) + " (truncate it when encoding)");
  }
  for (int64_t t = 0; t < length; ++t) {
    const int32_t id = encoding.ids[t];
    if (id < 0 || id >= config.vocab_size) {
      throw Error(where + ", token " + std::to_string(t) + ": id " + std::to_string(id) +
                  " is outside the vocabulary [0, " + std::to_string(config.vocab_size) + ")");
    }
    const int32_t type = encoding.type_ids[t];
    if (type < 0 || type >= config.type_vocab_size) {
      throw Error(where + ", token " + std::to_string(t) + ": token type " + std::to_string(type) +
                  " is outside [0, " + std::to_string(config.type_vocab_size) + ")");
    }
  }
}

}  // namespace

int64_t PackedBatch::longest() const {
  int64_t longest = 0;
  for (size_t s = 0; s + 1 < offsets.size(); ++s) longest = std::max(longest, offsets[s + 1] - offsets[s]);
  return longest;
}

void pack_batch(const std::vector<Encoding>& batch, const BertConfig& config, PackedBatch& out) {
  // Validate everything before touching `out`, so a rejected batch leaves no half state.
  size_t total = 0;
  for (size_t s = 0; s < batch.size(); ++s) {
    check_sequence(batch[s], s, config);
    total += batch[s].ids.size();
  }
  out.ids.clear();
  out.type_ids.clear();
  out.positions.clear();
  out.offsets.clear();
  out.ids.reserve(total);
  out.type_ids.reserve(total);
  out.positions.reserve(total);
  out.offsets.reserve(batch.size() + 1);
  out.offsets.push_back(0);
  for (const Encoding& encoding : batch) {
    out.ids.insert(out.ids.end(), encoding.ids.begin(), encoding.ids.end());
    out.type_ids.insert(out.type_ids.end(), encoding.type_ids.begin(), encoding.type_ids.end());
    for (size_t p = 0; p < encoding.ids.size(); ++p) out.positions.push_back(static_cast<int32_t>(p));
    out.offsets.push_back(static_cast<int64_t>(out.ids.size()));
  }
}

}  // namespace fcabert::model
