// libFuzzer target: the tokenizer on arbitrary bytes (invalid UTF-8, control characters,
// combining marks, CJK, huge words, tabs for pairs). The first byte picks the settings
// (lower-casing, accent stripping, CJK splitting) and max_len; the rest is the text, split
// at the first tab into a pair.
#include <algorithm>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "fcabert/error.h"
#include "fcabert/tokenizer.h"

namespace {

std::vector<std::string> fuzz_vocab() {
  std::vector<std::string> vocab = {"[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"};
  for (char c = 'a'; c <= 'z'; ++c) {
    vocab.push_back(std::string(1, c));
    vocab.push_back("##" + std::string(1, c));
  }
  for (char c = '0'; c <= '9'; ++c) {
    vocab.push_back(std::string(1, c));
    vocab.push_back("##" + std::string(1, c));
  }
  for (const char* word : {"the",   "movie",  "good",  "bad",
                           "un",    "##able", "##ing", "##ed",
                           "##s",   "play",   "cafe",  "café",
                           "naïve", "über",   "北",    "京",
                           "東",    "日本",   "é",     "##é",
                           "ß",     "!",      ".",     ",",
                           "'",     "\"",     "(",     ")",
                           "-",     "?",      "$",     "%",
                           "&",     "@",      "#",     "##ly",
                           "Ⅻ",     "ﬁ",      "a",     "\xcc\x81",
                           "ı",     "İ",      "😀",     "\xf0\x9f\x91\x8d"})
    vocab.push_back(word);
  // The tokenizer refuses duplicates; keep the first of each.
  std::vector<std::string> unique;
  for (auto& token : vocab)
    if (std::find(unique.begin(), unique.end(), token) == unique.end()) unique.push_back(token);
  return unique;
}

const fcabert::Tokenizer& tokenizer(int variant) {
  static std::unique_ptr<fcabert::Tokenizer> tokenizers[8];
  auto& slot = tokenizers[variant & 7];
  if (!slot) {
    fcabert::TokenizerConfig config;
    config.vocab = fuzz_vocab();
    config.lowercase = (variant & 1) != 0;
    if (variant & 2) config.strip_accents = (variant & 1) == 0;  // the non-default choice
    config.tokenize_chinese_chars = (variant & 4) != 0;
    config.max_len = 64;
    slot = std::make_unique<fcabert::Tokenizer>(config);
  }
  return *slot;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  const int variant = data[0] & 7;
  const int64_t max_len = 2 + (data[0] >> 3);  // 2..33
  const std::string_view text(reinterpret_cast<const char*>(data + 1), size - 1);
  const fcabert::Tokenizer& tok = tokenizer(variant);
  try {
    const auto pieces = tok.tokenize(text);
    const auto ids = tok.pieces_to_ids(pieces);
    if (ids.size() != pieces.size()) __builtin_trap();
    for (int32_t id : ids) (void)tok.id_to_token(id);
    const fcabert::Encoding single = tok.encode(text, max_len);
    if (static_cast<int64_t>(single.ids.size()) > max_len || single.ids.size() < 2 ||
        single.ids.size() != single.type_ids.size())
      __builtin_trap();
  } catch (const fcabert::Error&) {
  }
  const size_t tab = text.find('\t');
  if (tab != std::string_view::npos && max_len >= 3) {
    try {
      const fcabert::Encoding pair = tok.encode_pair(text.substr(0, tab), text.substr(tab + 1), max_len);
      if (static_cast<int64_t>(pair.ids.size()) > max_len || pair.ids.size() < 3 ||
          pair.ids.size() != pair.type_ids.size())
        __builtin_trap();
    } catch (const fcabert::Error&) {
    }
  }
  return 0;
}
