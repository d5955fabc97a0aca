#pragma once
// A WordPiece tokenizer that produces exactly what Hugging Face's BertTokenizer produces:
// text clean-up, whitespace and punctuation splitting, CJK characters as words, optional
// lower-casing and accent stripping, greedy longest-match WordPiece with "##", [UNK] for
// words over 100 characters or without a match, [CLS]/[SEP] and token types, and
// longest-first truncation of pairs. See docs/TOKENIZER.md for the decisions made.
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "fcabert/config.h"

namespace fcabert {

struct Encoding {
  std::vector<int32_t> ids;       // with [CLS] ... [SEP] ( ... [SEP])
  std::vector<int32_t> type_ids;  // 0 for the first segment, 1 for the second
  bool truncated = false;         // true when max_len cut tokens off
};

// How a text longer than one window is cut into several (classify --long window).
struct WindowOptions {
  int64_t max_len = 0;      // tokens per window, [CLS] and [SEP] included (>= 3)
  int64_t stride = 0;       // word pieces shared by consecutive windows (< max_len - 2)
  int64_t max_windows = 1;  // at most this many; the rest of the text is cut off (>= 1)
};

// Throws fcabert::Error naming the option (--max-len, --stride, --max-windows) out of range.
void validate_window_options(const WindowOptions& options);

// The windows for max_len; a negative stride means a quarter of a window's word pieces,
// (max_len - 2) / 4 (127 for 512-token windows). Validated as above.
WindowOptions make_window_options(int64_t max_len, int64_t stride, int64_t max_windows);

class Tokenizer {
 public:
  // Validates the vocabulary (non-empty, no duplicates, contains the special tokens).
  explicit Tokenizer(TokenizerConfig config);

  // Reads a vocab.txt (one token per line; id = line number). Throws naming the file.
  static std::vector<std::string> read_vocab_file(const std::string& path);

  // WordPiece pieces of `text` without special tokens. Throws fcabert::Error on invalid
  // UTF-8, naming the byte offset.
  std::vector<std::string> tokenize(std::string_view text) const;
  std::vector<int32_t> pieces_to_ids(const std::vector<std::string>& pieces) const;

  // [CLS] text [SEP], truncated to max_len tokens in total (max_len >= 2).
  Encoding encode(std::string_view text, int64_t max_len) const;
  // Windows [CLS] p_i .. p_(i+L-1) [SEP] over the text's L = max_len - 2 word pieces at a
  // time, each starting L - stride pieces after the one before, the last one ending with the
  // text (an empty or short text gives one window, as encode() would). When the text needs
  // more than max_windows windows, the last one kept is marked truncated. Throws
  // fcabert::Error naming the option out of range.
  std::vector<Encoding> encode_windows(std::string_view text, const WindowOptions& options) const;
  // [CLS] a [SEP] b [SEP], longest-first truncation to max_len tokens (max_len >= 3).
  Encoding encode_pair(std::string_view first, std::string_view second, int64_t max_len) const;

  const std::string& id_to_token(int32_t id) const;
  const TokenizerConfig& config() const { return config_; }

 private:
  TokenizerConfig config_;
  std::unordered_map<std::string, int32_t> token_to_id_;
  int32_t unk_id_ = 0, cls_id_ = 0, sep_id_ = 0;
};

// One example's model input, made the same way by every command and reader: `first` alone,
// or the pair (first, second) when `second` is given (then `max_len` >= 3). Each text is
// checked to be valid UTF-8 first. Every error is prefixed by `where` and ": " (callers pass
// "FILE:LINE", so the message names the line).
Encoding encode_example(const Tokenizer& tokenizer, std::string_view first,
                        std::optional<std::string_view> second, int64_t max_len, const std::string& where);

// The fewest tokens a model input has: [CLS] [SEP], or [CLS] [SEP] [SEP] for pair models.
int64_t minimum_sequence_length(const ModelInfo& info);

// The truncation length for a model: `requested` when > 0, else the model's default
// (TokenizerConfig::max_len, at most max_position_embeddings). Throws fcabert::Error, naming --max-len, when
// it is below what [CLS] text [SEP] (pairs: [CLS] a [SEP] b [SEP]) needs or above max_position_embeddings.
int64_t resolve_max_len(int64_t requested, const ModelInfo& info);

}  // namespace fcabert
