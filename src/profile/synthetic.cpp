// profile::synthetic_inputs: sequences of an exact length, the same on every machine.
#include <string>
#include <vector>

#include "fcabert/error.h"
#include "fcabert/profile.h"

namespace fcabert::profile {
namespace {

// A deterministic 64-bit mix (splitmix64), so synthetic inputs are the same everywhere.
uint64_t mix(uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

// Ordinary tokens: everything but bracketed specials such as [PAD], [MASK], [unused0].
std::vector<int32_t> ordinary_ids(const TokenizerConfig& config) {
  std::vector<int32_t> ordinary;
  for (size_t id = 0; id < config.vocab.size(); ++id) {
    const std::string& token = config.vocab[id];
    const bool bracketed = token.size() > 2 && token.front() == '[' && token.back() == ']';
    if (!token.empty() && !bracketed) ordinary.push_back(static_cast<int32_t>(id));
  }
  if (ordinary.empty()) throw Error("the model's vocabulary has no ordinary tokens for synthetic inputs");
  return ordinary;
}

void check_range(const ModelInfo& info, int64_t length, int64_t count) {
  const int64_t minimum = minimum_sequence_length(info), maximum = info.bert.max_position_embeddings;
  if (length < minimum || length > maximum)
    throw Error("--synthetic-length " + std::to_string(length) + " is out of range for this model; use " +
                std::to_string(minimum) + ".." + std::to_string(maximum) +
                " (tokens, [CLS] and [SEP] included)");
  if (count < 1) throw Error("--synthetic-count must be at least 1, got " + std::to_string(count));
}

}  // namespace

Inputs synthetic_inputs(const Model& model, int64_t length, int64_t count) {
  const ModelInfo& info = model.info();
  check_range(info, length, count);
  const Tokenizer& tokenizer = model.tokenizer();
  const TokenizerConfig& config = tokenizer.config();
  const std::vector<int32_t> specials = tokenizer.pieces_to_ids({config.cls_token, config.sep_token});
  const std::vector<int32_t> ordinary = ordinary_ids(config);

  Inputs inputs;
  inputs.source = "synthetic";
  inputs.synthetic_length = length;
  const int64_t second_start =
      info.head.pair_input ? 1 + (length - 3 + 1) / 2 + 1 : length;  // after 1st [SEP]
  for (int64_t s = 0; s < count; ++s) {
    Encoding encoding;
    encoding.ids.resize(static_cast<size_t>(length));
    encoding.type_ids.assign(static_cast<size_t>(length), 0);
    for (int64_t i = 0; i < length; ++i) {
      const uint64_t pick = mix(static_cast<uint64_t>(s) * 1000003ULL + static_cast<uint64_t>(i));
      encoding.ids[i] = ordinary[pick % ordinary.size()];
      if (i >= second_start) encoding.type_ids[i] = 1;
    }
    encoding.ids.front() = specials[0];
    encoding.ids.back() = specials[1];
    if (info.head.pair_input) encoding.ids[second_start - 1] = specials[1];
    inputs.encodings.push_back(std::move(encoding));
  }
  return inputs;
}

}  // namespace fcabert::profile
