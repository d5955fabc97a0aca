// WordPiece tokenization identical to Hugging Face's slow `transformers.BertTokenizer`
// (transformers 4.40, Python 3.11), as constructed by `BertTokenizer(vocab_file,
// do_lower_case=..., strip_accents=...)` and called as `tokenizer(a, b, truncation=True,
// max_length=N)`. docs/TOKENIZER.md explains the decisions; each HF rule mirrored here is
// marked "HF:" with the reason.
//
// The pipeline HF runs on one text, in this order:
//  1. PreTrainedTokenizer.tokenize: when lower-casing, lower the text with Python's
//     str.lower() one character at a time, except literal special tokens ("[CLS]", ...),
//     which are kept as written.
//  2. Split the text at literal special tokens; each becomes its own token (added tokens).
//  3. BasicTokenizer on every other chunk: _clean_text, spaces around CJK ideographs, NFC,
//     split on whitespace; per word: lower + strip accents (per config), split punctuation.
//  4. WordpieceTokenizer on every resulting word.
// We run all of it in one streaming pass over the text: a chunk is decoded, lowered, cleaned
// and split into words on the fly, and each word is normalised and WordPiece'd as soon as it
// ends, so memory is proportional to the longest word and time is linear in the text.
#include "fcabert/tokenizer.h"

#include <algorithm>
#include <fstream>
#include <iterator>
#include <limits>
#include <utility>

#include "fcabert/error.h"
#include "text/unicode.h"

namespace fcabert {
namespace {

using text::Cp;

// HF: BertTokenizer's default mask_token. TokenizerConfig has no field for it, and BERT
// vocabularies always spell it "[MASK]".
constexpr std::string_view kMaskToken = "[MASK]";

// Value of a token_to_id_ entry that is not a vocabulary token but a proper prefix of one
// (see the constructor): it turns the hash map into a trie for the greedy WordPiece walk.
constexpr int32_t kPrefixOnly = -1;

// HF: WordpieceTokenizer(max_input_chars_per_word=100); longer words become [UNK]. Counted
// in code points after normalisation (Python's len() of the word).
constexpr size_t kMaxInputCharsPerWord = 100;

std::string printable(std::string_view token) {
  std::string out;
  for (const char c : token) {
    const auto u = static_cast<unsigned char>(c);
    if (u < 0x20 || u == 0x7F) {
      static const char* hex = "0123456789abcdef";
      out += "\\x";
      out += hex[u >> 4];
      out += hex[u & 15];
    } else {
      out += c;
    }
  }
  return out;
}

// One tokenization run: scratch buffers plus read-only references to the tokenizer's state.
// Constructed per call, so a const Tokenizer can be used from several threads at once.
class Pipeline {
 public:
  Pipeline(const TokenizerConfig& config, const std::unordered_map<std::string, int32_t>& token_to_id,
           int32_t unk_id)
      : config_(config), token_to_id_(token_to_id), unk_id_(unk_id) {
    // HF: PreTrainedTokenizer.all_special_tokens = unk, sep, pad, cls, mask. All of them are
    // "never_split" words for BasicTokenizer; the ones in the vocabulary are also added
    // tokens, matched literally in the raw text (step 2 above).
    for (std::string_view token :
         {std::string_view(config.unk_token), std::string_view(config.sep_token),
          std::string_view(config.pad_token), std::string_view(config.cls_token), kMaskToken}) {
      if (token.empty() || std::find(never_split_.begin(), never_split_.end(), token) != never_split_.end())
        continue;
      never_split_.push_back(token);
      max_never_split_bytes_ = std::max(max_never_split_bytes_, token.size());
      auto it = token_to_id_.find(std::string(token));
      if (it != token_to_id_.end() && it->second != kPrefixOnly)
        literal_specials_.emplace_back(token, it->second);
    }
    // HF: BasicTokenizer strips accents when lower-casing unless strip_accents is False, and
    // without lower-casing only when strip_accents is True ("unset" follows lowercase).
    strip_accents_ =
        config.lowercase ? config.strip_accents.value_or(true) : config.strip_accents.value_or(false);
    standard_specials_ = std::all_of(never_split_.begin(), never_split_.end(), [](std::string_view token) {
      return token == "[UNK]" || token == "[SEP]" || token == "[PAD]" || token == "[CLS]" ||
             token == kMaskToken;
    });
  }

  void run(std::string_view text, std::vector<int32_t>& ids) {
    text::check_utf8(text);
    ids_ = &ids;
    if (config_.lowercase && !standard_specials_) {
      // Step 1 as HF does it, materialised: lower everything but the literal special tokens,
      // then look for special tokens in the lowered text (where "<UNK>" has become "<unk>").
      lower_except_specials(text);
      split_at_specials(lowered_text_, /*lower_chunks=*/false);
    } else {
      // With the standard BERT tokens ("[CLS]" etc.: bracketed capitals) lowering can neither
      // create nor destroy a match, so we match on the raw text and lower the chunks in
      // between on the fly, without a lowered copy of the text.
      split_at_specials(text, config_.lowercase);
    }
  }

 private:
  // Step 2: leftmost-longest literal matches of the special tokens in the vocabulary.
  // Matching bytes of valid UTF-8 only ever matches at code point boundaries. HF's trie
  // finds the same matches.
  void split_at_specials(std::string_view text, bool lower_chunks) {
    size_t chunk_start = 0;
    size_t pos = 0;
    while (pos < text.size()) {
      size_t best_length = 0;
      int32_t best_id = 0;
      for (const auto& [token, id] : literal_specials_) {
        if (text[pos] == token[0] && token.size() > best_length &&
            text.compare(pos, token.size(), token) == 0) {
          best_length = token.size();
          best_id = id;
        }
      }
      if (best_length == 0) {
        ++pos;
        continue;
      }
      run_chunk(text.substr(chunk_start, pos - chunk_start), lower_chunks);
      ids_->push_back(best_id);  // HF: added tokens map to their own id, untouched by step 3.
      pos += best_length;
      chunk_start = pos;
    }
    run_chunk(text.substr(chunk_start), lower_chunks);
  }

  // HF's step 1: re.sub("(<special>|<special>|...)|(.+?)", ...) lowers the text one
  // character at a time, except where one of the special token strings matches (the first
  // alternative that matches, in all_special_tokens order).
  void lower_except_specials(std::string_view text) {
    lowered_text_.clear();
    lowered_text_.reserve(text.size() + text.size() / 8);
    size_t pos = 0;
    while (pos < text.size()) {
      const auto special =
          std::find_if(never_split_.begin(), never_split_.end(),
                       [&](std::string_view token) { return text.compare(pos, token.size(), token) == 0; });
      if (special != never_split_.end()) {
        lowered_text_ += *special;
        pos += special->size();
        continue;
      }
      lowered_.clear();
      text::append_python_lower(text::next_code_point(text, pos), lowered_);
      for (const Cp c : lowered_) text::append_utf8(c, lowered_text_);
    }
  }

  // Step 3, BasicTokenizer.tokenize, for one chunk without special tokens; and step 1's
  // lower-casing when it was not done on the whole text.
  void run_chunk(std::string_view chunk, bool lower) {
    word_.clear();
    size_t pos = 0;
    while (pos < chunk.size()) {
      const Cp cp = text::next_code_point(chunk, pos);
      if (lower) {
        // HF: text lowered character by character with Python's str.lower() (step 1).
        lowered_.clear();
        text::append_python_lower(cp, lowered_);
        for (const Cp c : lowered_) clean_and_split(c);
      } else {
        clean_and_split(cp);
      }
    }
    end_word();
  }

  void clean_and_split(Cp cp) {
    switch (text::clean_class(cp)) {
      case text::CleanClass::kDrop:  // HF: _clean_text removes NUL, U+FFFD and controls.
        return;
      case text::CleanClass::kWhitespace:  // HF: _clean_text maps whitespace to " ".
        end_word();
        return;
      case text::CleanClass::kKeep:
        break;
    }
    if (text::is_split_space(cp)) {  // HF: str.split() also splits at U+2028 / U+2029.
      end_word();
      return;
    }
    if (config_.tokenize_chinese_chars && text::is_cjk_ideograph(cp)) {
      // HF: _tokenize_chinese_chars puts spaces around each CJK ideograph, so each one is
      // a word of its own. This happens before NFC, as in HF.
      end_word();
      word_.push_back(cp);
      end_word();
      return;
    }
    word_.push_back(cp);
  }

  // One whitespace-delimited word of the chunk is complete. NFC never reaches across a
  // space (a starter that composes with nothing), so normalising word by word equals HF's
  // NFC of the whole chunk.
  void end_word() {
    if (word_.empty()) return;
    const bool needs_nfc =
        std::any_of(word_.begin(), word_.end(), [](Cp c) { return c >= text::kFirstNfcChanging; });
    if (needs_nfc) {
      // HF: BasicTokenizer normalises the chunk to NFC before splitting on whitespace.
      text::nfc(word_.data(), word_.size(), normalized_);
      process_word(normalized_);
    } else {
      process_word(word_);
    }
    word_.clear();
  }

  void process_word(const std::vector<Cp>& word) {
    // HF: a word equal to a special token (never_split) is neither lowered, stripped nor
    // split on punctuation; WordPiece then finds it whole in the vocabulary. In cased mode
    // "[CL\u200bS]" becomes such a word once _clean_text drops the zero-width space.
    if (is_never_split(word.data(), word.size())) {
      wordpiece(word.data(), word.size());
      return;
    }
    // HF also lowers each word again (str.lower() in full context). That is a no-op here:
    // Python's lower() is idempotent, NFC of lowered text is already lowered (both checked
    // for every code point), and no capital sigma survives step 1 for the final-sigma rule.
    const std::vector<Cp>* current = &word;
    if (strip_accents_ &&
        std::any_of(word.begin(), word.end(), [](Cp c) { return c >= text::kFirstNfdChanging; })) {
      // HF: _run_strip_accents: NFD, drop category Mn.
      text::strip_accents(word.data(), word.size(), stripped_);
      current = &stripped_;
      // HF: _run_split_on_punc checks never_split again, after lowering and stripping.
      if (is_never_split(stripped_.data(), stripped_.size())) {
        wordpiece(stripped_.data(), stripped_.size());
        return;
      }
    }
    // HF: _run_split_on_punc: every punctuation character is a word of its own, the runs
    // between them are words. (An empty word, e.g. only accents, yields nothing.)
    const Cp* data = current->data();
    const size_t n = current->size();
    size_t start = 0;
    for (size_t i = 0; i < n; ++i) {
      if (text::is_punctuation(data[i])) {
        if (i > start) wordpiece(data + start, i - start);
        wordpiece(data + i, 1);
        start = i + 1;
      }
    }
    if (n > start) wordpiece(data + start, n - start);
  }

  bool is_never_split(const Cp* word, size_t n) {
    if (n == 0 || n > max_never_split_bytes_) return false;  // a code point takes >= 1 byte
    utf8_.clear();
    for (size_t i = 0; i < n; ++i) text::append_utf8(word[i], utf8_);
    return std::find(never_split_.begin(), never_split_.end(), std::string_view(utf8_)) != never_split_.end();
  }

  // Step 4, WordpieceTokenizer.tokenize on one word: greedy longest-match-first, pieces
  // after the first prefixed with "##"; a word with any part that matches nothing becomes
  // a single [UNK] (the pieces found so far are discarded).
  void wordpiece(const Cp* word, size_t n) {
    if (n > kMaxInputCharsPerWord) {
      ids_->push_back(unk_id_);
      return;
    }
    utf8_.clear();
    offsets_.clear();
    for (size_t i = 0; i < n; ++i) {
      offsets_.push_back(utf8_.size());
      text::append_utf8(word[i], utf8_);
    }
    offsets_.push_back(utf8_.size());

    const size_t first_piece = ids_->size();
    size_t start = 0;
    while (start < n) {
      // HF tries substrings from the longest down and takes the first in the vocabulary.
      // Walking up instead, while the substring is still a prefix of some vocabulary token,
      // finds the same longest match in O(longest token) lookups (no allocation: the key is
      // reused).
      key_.assign(start > 0 ? "##" : "");
      size_t best_end = 0;
      int32_t best_id = kPrefixOnly;
      for (size_t end = start + 1; end <= n; ++end) {
        key_.append(utf8_, offsets_[end - 1], offsets_[end] - offsets_[end - 1]);
        const auto it = token_to_id_.find(key_);
        if (it == token_to_id_.end()) break;  // no vocabulary token starts with key_
        if (it->second != kPrefixOnly) {
          best_end = end;
          best_id = it->second;
        }
      }
      if (best_id == kPrefixOnly) {
        ids_->resize(first_piece);
        ids_->push_back(unk_id_);
        return;
      }
      ids_->push_back(best_id);
      start = best_end;
    }
  }

  const TokenizerConfig& config_;
  const std::unordered_map<std::string, int32_t>& token_to_id_;
  const int32_t unk_id_;
  bool strip_accents_ = false;
  bool standard_specials_ = true;  // only the usual "[XXX]" special tokens
  std::vector<std::string_view> never_split_;
  size_t max_never_split_bytes_ = 0;
  std::vector<std::pair<std::string_view, int32_t>> literal_specials_;

  std::vector<int32_t>* ids_ = nullptr;
  std::vector<Cp> lowered_, word_, normalized_, stripped_;
  std::string lowered_text_, utf8_, key_;
  std::vector<size_t> offsets_;
};

}  // namespace

Tokenizer::Tokenizer(TokenizerConfig config) : config_(std::move(config)) {
  const auto& vocab = config_.vocab;
  if (vocab.empty()) throw Error("the tokenizer vocabulary is empty");
  if (vocab.size() > static_cast<size_t>(std::numeric_limits<int32_t>::max()))
    throw Error("the tokenizer vocabulary has " + std::to_string(vocab.size()) + " tokens, too many");

  token_to_id_.reserve(vocab.size() * 3);
  for (size_t id = 0; id < vocab.size(); ++id) {
    const std::string& token = vocab[id];
    const char* reason = "";
    if (text::find_invalid_utf8(token, &reason) != std::string_view::npos)
      throw Error("vocabulary token " + std::to_string(id) + " is not valid UTF-8 (" + reason + ")");
    auto [it, inserted] = token_to_id_.emplace(token, static_cast<int32_t>(id));
    if (!inserted)
      throw Error("duplicate vocabulary token '" + printable(token) + "' (ids " + std::to_string(it->second) +
                  " and " + std::to_string(id) + ")");
  }
  // Every proper prefix (at code point boundaries) of every token, as kPrefixOnly unless it
  // is a token itself: lets WordPiece stop as soon as no longer match can exist.
  std::string prefix;
  for (const std::string& token : vocab) {
    for (size_t end = 1; end < token.size(); ++end) {
      if ((static_cast<unsigned char>(token[end]) & 0xC0) == 0x80) continue;  // inside a code point
      prefix.assign(token, 0, end);
      if (token_to_id_.find(prefix) == token_to_id_.end()) token_to_id_.emplace(prefix, kPrefixOnly);
    }
  }

  const auto require = [&](const std::string& token, const char* what) {
    const auto it = token_to_id_.find(token);
    if (token.empty() || it == token_to_id_.end() || it->second == kPrefixOnly)
      throw Error(std::string("the vocabulary has no ") + what + " token '" + printable(token) + "'");
    return it->second;
  };
  unk_id_ = require(config_.unk_token, "unknown (unk)");
  cls_id_ = require(config_.cls_token, "classification (cls)");
  sep_id_ = require(config_.sep_token, "separator (sep)");
}

std::vector<std::string> Tokenizer::read_vocab_file(const std::string& path) {
  std::ifstream file(path, std::ios::binary);
  if (!file) throw Error(path + ": cannot open the vocabulary file");
  const std::string content((std::istreambuf_iterator<char>(file)), std::istreambuf_iterator<char>());
  if (file.bad()) throw Error(path + ": cannot read the vocabulary file");

  // HF: load_vocab reads the file as UTF-8 text with Python's universal newlines, so "\n",
  // "\r\n" and "\r" all end a line, and a final line break adds no empty token. Nothing else
  // is stripped (a byte order mark would stay part of the first token, as in HF).
  std::vector<std::string> tokens;
  std::unordered_map<std::string_view, size_t> first_line;
  size_t pos = 0;
  while (pos < content.size()) {
    size_t end = content.find_first_of("\r\n", pos);
    if (end == std::string::npos) end = content.size();
    tokens.push_back(content.substr(pos, end - pos));
    pos = end;
    if (pos < content.size())
      pos += (content[pos] == '\r' && pos + 1 < content.size() && content[pos + 1] == '\n') ? 2 : 1;
  }
  if (tokens.empty()) throw Error(path + ": the vocabulary file is empty");
  for (size_t i = 0; i < tokens.size(); ++i) {
    const char* reason = "";
    const size_t bad = text::find_invalid_utf8(tokens[i], &reason);
    if (bad != std::string_view::npos)
      throw Error(path + ":" + std::to_string(i + 1) + ": invalid UTF-8 at byte " + std::to_string(bad) +
                  " of the line: " + reason);
    auto [it, inserted] = first_line.emplace(tokens[i], i + 1);
    if (!inserted)
      throw Error(path + ":" + std::to_string(i + 1) + ": duplicate token '" + printable(tokens[i]) +
                  "' (first on line " + std::to_string(it->second) + ")");
  }
  return tokens;
}

std::vector<std::string> Tokenizer::tokenize(std::string_view text) const {
  std::vector<int32_t> ids;
  Pipeline(config_, token_to_id_, unk_id_).run(text, ids);
  std::vector<std::string> pieces;
  pieces.reserve(ids.size());
  for (const int32_t id : ids) pieces.push_back(config_.vocab[static_cast<size_t>(id)]);
  return pieces;
}

std::vector<int32_t> Tokenizer::pieces_to_ids(const std::vector<std::string>& pieces) const {
  // HF: convert_tokens_to_ids maps anything outside the vocabulary to [UNK].
  std::vector<int32_t> ids;
  ids.reserve(pieces.size());
  for (const std::string& piece : pieces) {
    const auto it = token_to_id_.find(piece);
    ids.push_back(it == token_to_id_.end() || it->second == kPrefixOnly ? unk_id_ : it->second);
  }
  return ids;
}

Encoding Tokenizer::encode(std::string_view text, int64_t max_len) const {
  if (max_len < 2)
    throw Error("max_len " + std::to_string(max_len) + " is too small: [CLS] and [SEP] need 2");
  std::vector<int32_t> pieces;
  Pipeline(config_, token_to_id_, unk_id_).run(text, pieces);
  Encoding encoding;
  // HF: single texts lose tokens from the end ("longest_first" on one sequence, truncation
  // side right). HF skips the truncation (and logs an error) when it would remove every
  // token, i.e. only for max_length 2; we return [CLS] [SEP] then, within max_len.
  const size_t keep = static_cast<size_t>(max_len - 2);
  if (pieces.size() > keep) {
    pieces.resize(keep);
    encoding.truncated = true;
  }
  encoding.ids.reserve(pieces.size() + 2);
  encoding.ids.push_back(cls_id_);
  encoding.ids.insert(encoding.ids.end(), pieces.begin(), pieces.end());
  encoding.ids.push_back(sep_id_);
  encoding.type_ids.assign(encoding.ids.size(), 0);
  return encoding;
}

void validate_window_options(const WindowOptions& options) {
  if (options.max_len < 3)
    throw Error("windows of " + std::to_string(options.max_len) +
                " tokens are too small: [CLS], one word piece and [SEP] need 3 (--max-len)");
  const int64_t keep = options.max_len - 2;  // word pieces per window
  if (options.stride < 0 || options.stride >= keep)
    throw Error("--stride " + std::to_string(options.stride) + ": windows of " +
                std::to_string(options.max_len) + " tokens share 0 to " + std::to_string(keep - 1) +
                " word pieces");
  if (options.max_windows < 1) throw Error("--max-windows must be at least 1");
}

WindowOptions make_window_options(int64_t max_len, int64_t stride, int64_t max_windows) {
  const WindowOptions options{max_len, stride < 0 ? std::max<int64_t>(0, (max_len - 2) / 4) : stride,
                              max_windows};
  validate_window_options(options);
  return options;
}

std::vector<Encoding> Tokenizer::encode_windows(std::string_view text, const WindowOptions& options) const {
  validate_window_options(options);
  const int64_t keep = options.max_len - 2;
  std::vector<int32_t> pieces;
  Pipeline(config_, token_to_id_, unk_id_).run(text, pieces);
  const size_t count = pieces.size(), width = static_cast<size_t>(keep),
               step = static_cast<size_t>(keep - options.stride);
  std::vector<Encoding> windows;
  for (size_t start = 0;; start += step) {
    const size_t end = std::min(start + width, count);
    Encoding& window = windows.emplace_back();
    window.ids.reserve(end - start + 2);
    window.ids.push_back(cls_id_);
    window.ids.insert(window.ids.end(), pieces.begin() + static_cast<std::ptrdiff_t>(start),
                      pieces.begin() + static_cast<std::ptrdiff_t>(end));
    window.ids.push_back(sep_id_);
    window.type_ids.assign(window.ids.size(), 0);
    if (end == count) break;
    if (static_cast<int64_t>(windows.size()) == options.max_windows) {
      window.truncated = true;
      break;
    }
  }
  return windows;
}

Encoding Tokenizer::encode_pair(std::string_view first, std::string_view second, int64_t max_len) const {
  if (max_len < 3)
    throw Error("max_len " + std::to_string(max_len) +
                " is too small for a pair: [CLS] and 2 x [SEP] need 3");
  std::vector<int32_t> a, b;
  Pipeline pipeline(config_, token_to_id_, unk_id_);
  pipeline.run(first, a);
  pipeline.run(second, b);
  Encoding encoding;
  const size_t budget = static_cast<size_t>(max_len - 3);
  if (a.size() + b.size() > budget) {
    // HF: "longest_first" removes one token at a time from the end of the longer sequence,
    // from the second one when both are equally long. truncate_sequences does it in closed
    // form: first level the longer one down, then split the rest, the odd token coming off
    // the second sequence.
    const size_t remove = a.size() + b.size() - budget;
    const size_t level = std::min(remove, a.size() > b.size() ? a.size() - b.size() : b.size() - a.size());
    const size_t rest = remove - level;
    size_t remove_a, remove_b;
    if (a.size() > b.size()) {
      remove_a = level + rest / 2;
      remove_b = rest - rest / 2;
    } else {
      remove_a = rest / 2;
      remove_b = level + rest - rest / 2;
    }
    a.resize(a.size() - remove_a);
    b.resize(b.size() - remove_b);
    encoding.truncated = true;
  }
  encoding.ids.reserve(a.size() + b.size() + 3);
  encoding.ids.push_back(cls_id_);
  encoding.ids.insert(encoding.ids.end(), a.begin(), a.end());
  encoding.ids.push_back(sep_id_);
  encoding.type_ids.assign(encoding.ids.size(), 0);
  encoding.ids.insert(encoding.ids.end(), b.begin(), b.end());
  encoding.ids.push_back(sep_id_);
  encoding.type_ids.resize(encoding.ids.size(), 1);
  return encoding;
}

const std::string& Tokenizer::id_to_token(int32_t id) const {
  if (id < 0 || static_cast<size_t>(id) >= config_.vocab.size())
    throw Error("token id " + std::to_string(id) + " is outside the vocabulary (0.." +
                std::to_string(config_.vocab.size() - 1) + ")");
  return config_.vocab[static_cast<size_t>(id)];
}

Encoding encode_example(const Tokenizer& tokenizer, std::string_view first,
                        std::optional<std::string_view> second, int64_t max_len, const std::string& where) {
  try {
    text::check_utf8(first);
    if (!second) return tokenizer.encode(first, max_len);
    text::check_utf8(*second);
    return tokenizer.encode_pair(first, *second, max_len);
  } catch (const Error& e) {
    throw Error(where + ": " + e.what());
  }
}

int64_t minimum_sequence_length(const ModelInfo& info) { return info.head.pair_input ? 3 : 2; }

int64_t resolve_max_len(int64_t requested, const ModelInfo& info) {
  // The default never exceeds the position table (a tokenizer may allow longer texts).
  const int64_t max_len =
      requested > 0 ? requested : std::min(info.tokenizer.max_len, info.bert.max_position_embeddings);
  const int64_t minimum = minimum_sequence_length(info);
  if (max_len < minimum || max_len > info.bert.max_position_embeddings)
    throw Error("--max-len " + std::to_string(max_len) + " is out of range for this model; use " +
                std::to_string(minimum) + ".." + std::to_string(info.bert.max_position_embeddings));
  return max_len;
}

}  // namespace fcabert
