// Unit tests of the WordPiece tokenizer. Every expected result was produced by Hugging
// Face's slow BertTokenizer (transformers 4.40.2, Python 3.11) on the same vocabulary and
// settings; tests/python/test_tokenizer_parity.py compares whole data sets.
#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <functional>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "fcabert/error.h"
#include "fcabert/tokenizer.h"

namespace fcabert {
namespace {

using Pieces = std::vector<std::string>;

// A small vocabulary; ids are the positions.
const std::vector<std::string> kSmallVocab = {
    "[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "un",       "##aff", "##able", "hello", "world",
    ",",     "!",     ".",     "cafe",  "café",   "Café",     "x",     "##x",    "東",    "京",
    "[",     "]",     "cls",   "#",     "i",      "##\u0307", "σ",     "##σ",    "ς",     "a",
    "b",     "c",     "d",     "e",     "f",      "g",        "h",     "##s",    "str",   "##aße"};
constexpr int32_t kPad = 0, kUnk = 1, kCls = 2, kSep = 3, kMask = 4;

TokenizerConfig small_config(bool lowercase = true, std::optional<bool> strip_accents = std::nullopt) {
  TokenizerConfig config;
  config.vocab = kSmallVocab;
  config.lowercase = lowercase;
  config.strip_accents = strip_accents;
  return config;
}

Pieces tokenize(std::string_view text, bool lowercase = true,
                std::optional<bool> strip_accents = std::nullopt) {
  return Tokenizer(small_config(lowercase, strip_accents)).tokenize(text);
}

Pieces repeat(const Pieces& first, const std::string& rest, size_t count) {
  Pieces out = first;
  for (size_t i = 0; i < count; ++i) out.push_back(rest);
  return out;
}

std::string expect_error(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  ADD_FAILURE() << "no fcabert::Error thrown";
  return "";
}

// ---- WordPiece ----------------------------------------------------------------------------

TEST(Tokenizer, GreedyLongestMatchWithContinuationPieces) {
  EXPECT_EQ(tokenize("unaffable"), (Pieces{"un", "##aff", "##able"}));
}

TEST(Tokenizer, WordWithUnmatchedRemainderIsOneUnk) {
  // Not "un ##aff ##able [UNK]": the pieces found so far are dropped.
  EXPECT_EQ(tokenize("unaffablez hello"), (Pieces{"[UNK]", "hello"}));
}

TEST(Tokenizer, PrefixesOfTokensAreNotTokens) {
  // "hel" is a prefix of "hello" (stored internally to stop the greedy walk early) but no
  // vocabulary token: it must give [UNK] both through tokenize and pieces_to_ids.
  EXPECT_EQ(tokenize("hel"), (Pieces{"[UNK]"}));
  Tokenizer tokenizer(small_config());
  EXPECT_EQ(tokenizer.pieces_to_ids({"hel", "hello", "##af", "##aff", "nope"}),
            (std::vector<int32_t>{kUnk, 8, kUnk, 6, kUnk}));
}

TEST(Tokenizer, PunctuationIsSplitOff) {
  EXPECT_EQ(tokenize("Hello,World!"), (Pieces{"hello", ",", "world", "!"}));
  EXPECT_EQ(tokenize("## #"), (Pieces{"#", "#", "#"}));  // a literal "##" is two punctuation marks
}

// ---- Case and accents -----------------------------------------------------------------------

TEST(Tokenizer, LowercaseStripsAccentsByDefault) {
  EXPECT_EQ(tokenize("CAFÉ café Café"), (Pieces{"cafe", "cafe", "cafe"}));
  EXPECT_EQ(tokenize("Straße"), (Pieces{"str", "##aße"}));  // ß has no decomposition
}

TEST(Tokenizer, CasedKeepsCaseAndAccentsAndComposesToNfc) {
  // "cafe" + U+0301 is composed to "café" by NFC before the vocabulary lookup.
  EXPECT_EQ(tokenize("café Café CAFÉ cafe\u0301", false), (Pieces{"café", "Café", "[UNK]", "café"}));
}

TEST(Tokenizer, LowercaseWithoutAccentStripping) {
  EXPECT_EQ(tokenize("CAFÉ", true, false), (Pieces{"café"}));
  // Python lowers U+0130 to "i" + U+0307 COMBINING DOT ABOVE (utf8proc: only "i"); the mark
  // survives when accents are kept, and is stripped otherwise.
  EXPECT_EQ(tokenize("\u0130", true, false), (Pieces{"i", "##\u0307"}));
  EXPECT_EQ(tokenize("\u0130"), (Pieces{"i"}));
}

TEST(Tokenizer, CasedWithAccentStripping) {
  EXPECT_EQ(tokenize("Café café", false, true), (Pieces{"[UNK]", "cafe"}));
}

TEST(Tokenizer, CapitalSigmaAlwaysLowersToMedialSigma) {
  // HF lowers one character at a time, so Python's final-sigma rule never applies.
  EXPECT_EQ(tokenize("\u03a3\u03a3 \u03c2"), (Pieces{"σ", "##σ", "ς"}));
}

TEST(Tokenizer, LoneCombiningMarksVanishWhenStripped) {
  EXPECT_EQ(tokenize("\u0301\u0302"), Pieces{});
  EXPECT_EQ(tokenize("\u0301\u0302", false), (Pieces{"[UNK]"}));
}

// ---- Clean-up, whitespace, CJK ---------------------------------------------------------------

TEST(Tokenizer, ControlAndZeroWidthCharactersAreDroppedAndSpacesSplit) {
  // Dropped (they join the neighbours): BEL, soft hyphen, BOM, NUL, U+FFFD, zero-width
  // space. Splitting: no-break space (Zs) and U+2028 / U+2029 (Python's str.split()).
  const std::string text = "hel\u200blo x\x07x x\u00adx x\u00a0x x\u2028x x\u2029x x\ufeffx x" +
                           std::string(1, '\0') + "x x\ufffdx";
  EXPECT_EQ(tokenize(text), (Pieces{"hello", "x", "##x", "x", "##x", "x", "x", "x", "x", "x", "x", "x", "##x",
                                    "x", "##x", "x", "##x"}));
}

TEST(Tokenizer, WhitespaceOnlyAndEmptyTextsHaveNoPieces) {
  EXPECT_EQ(tokenize(""), Pieces{});
  EXPECT_EQ(tokenize(" \t\r\n \x0b\x0c "), Pieces{});
}

TEST(Tokenizer, CjkIdeographsAreWordsOfTheirOwn) {
  EXPECT_EQ(tokenize("東京"), (Pieces{"東", "京"}));
  TokenizerConfig config = small_config();
  config.tokenize_chinese_chars = false;
  EXPECT_EQ(Tokenizer(config).tokenize("東京"), (Pieces{"[UNK]"}));  // one word, "##京" is unknown
}

// ---- The 100-character limit -------------------------------------------------------------------

TEST(Tokenizer, WordsOfUpTo100CharactersArePieced) {
  EXPECT_EQ(tokenize(std::string(100, 'x')), repeat({"x"}, "##x", 99));
  EXPECT_EQ(tokenize(std::string(101, 'x')), (Pieces{"[UNK]"}));
  // The limit applies after punctuation splitting ...
  EXPECT_EQ(tokenize(std::string(100, 'x') + ","), repeat(repeat({"x"}, "##x", 99), ",", 1));
  // ... and after normalisation: x + U+0301 has no composed form; stripping the accent
  // brings 101 code points down to 100.
  const std::string marked = std::string(100, 'x') + "\u0301";
  EXPECT_EQ(tokenize(marked), repeat({"x"}, "##x", 99));
  EXPECT_EQ(tokenize(marked, false), (Pieces{"[UNK]"}));
}

// ---- Special tokens in the text -----------------------------------------------------------------

TEST(Tokenizer, LiteralSpecialTokensAreKeptAsSpecialTokens) {
  EXPECT_EQ(tokenize("hello[CLS]world"), (Pieces{"hello", "[CLS]", "world"}));
  EXPECT_EQ(tokenize("[MASK][PAD][UNK][SEP]"), (Pieces{"[MASK]", "[PAD]", "[UNK]", "[SEP]"}));
  Tokenizer tokenizer(small_config());
  EXPECT_EQ(tokenizer.encode("a[SEP]b", 16).ids, (std::vector<int32_t>{kCls, 29, kSep, 30, kSep}));
  EXPECT_EQ(tokenizer.encode("[MASK] [PAD]", 16).ids, (std::vector<int32_t>{kCls, kMask, kPad, kSep}));
}

TEST(Tokenizer, SpecialTokensMatchCaseSensitively) {
  EXPECT_EQ(tokenize("[cls] [Cls]"), (Pieces{"[", "cls", "]", "[", "cls", "]"}));
}

TEST(Tokenizer, WordsThatBecomeSpecialTokensAfterCleanUpStayWhole) {
  // Cased: the zero-width space is dropped after the literal match, leaving the word
  // "[CLS]", which BasicTokenizer never splits. Uncased: the text was lowered first.
  EXPECT_EQ(tokenize("[CL\u200bS]", false), (Pieces{"[CLS]"}));
  EXPECT_EQ(tokenize("[CL\u200bS]"), (Pieces{"[", "cls", "]"}));
  // Cased with accent stripping: "[CLS" + U+0301 composes to "[CLŚ]", stripped to "[CLS]".
  EXPECT_EQ(tokenize("[CLS\u0301]", false, true), (Pieces{"[CLS]"}));
}

TEST(Tokenizer, CustomSpecialTokensAreMatchedAfterLowercasing) {
  // HF lowers the text before looking for special tokens, so with lower-casing "<UNK>" and
  // "<Unk>" are the special token "<unk>"; without it they are text.
  TokenizerConfig config;
  config.vocab = {"<pad>", "<unk>", "<cls>", "<sep>", "[MASK]", "a", "b", "<",
                  ">",     "unk",   "cls",   "u",     "##nk",   "k", "x"};
  config.unk_token = "<unk>";
  config.cls_token = "<cls>";
  config.sep_token = "<sep>";
  config.pad_token = "<pad>";
  Tokenizer uncased(config);
  EXPECT_EQ(uncased.encode("a <UNK> b <Unk> <unk>", 32).ids, (std::vector<int32_t>{2, 5, 1, 6, 1, 1, 3}));
  EXPECT_EQ(uncased.encode("x<CLS>x", 32).ids, (std::vector<int32_t>{2, 14, 2, 14, 3}));
  EXPECT_EQ(uncased.encode("<unK", 32).ids, (std::vector<int32_t>{2, 7, 9, 3}));
  EXPECT_EQ(uncased.encode("[MASK] [mask]", 32).ids, (std::vector<int32_t>{2, 4, 1, 1, 1, 3}));
  config.lowercase = false;
  Tokenizer cased(config);
  EXPECT_EQ(cased.encode("a <UNK> b <unk>", 32).ids, (std::vector<int32_t>{2, 5, 7, 1, 8, 6, 1, 3}));
}

TEST(Tokenizer, LoweringTheWholeTextFirstEqualsLoweringChunks) {
  // Two ways to run HF's step 1 (see tokenizer.cpp): with only the standard "[XXX]" special
  // tokens, chunks are lowered on the fly; otherwise the whole text is lowered first. A pad
  // token that never occurs forces the second way; both must agree on any text.
  TokenizerConfig standard = small_config();
  TokenizerConfig custom = small_config();
  custom.pad_token = "<never>";
  const Tokenizer a(standard), b(custom);
  const std::vector<std::string> pieces = {
      "a",      "B",      "x",       "X",      " ",      " ",          "\t",        ",",      "!",
      "[",      "]",      "#",       "[CLS]",  "[SEP]",  "[MASK]",     "[cls]",     "CLS",    "\u0130",
      "\u03a3", "\u00c9", "e\u0301", "\u0301", "\u200b", "\u00ad",     "\u2028",    "\u00a0", "\x07",
      "\u6771", "\uf900", "\u212a",  "\u1e9e", "\ufb01", "\U0001f355", "unaffable", "HELLO",  "Caf\u00c9"};
  uint32_t state = 12345;
  for (int i = 0; i < 2000; ++i) {
    std::string text;
    state = state * 1664525u + 1013904223u;
    const int length = static_cast<int>(state >> 27);
    for (int j = 0; j < length; ++j) {
      state = state * 1664525u + 1013904223u;
      text += pieces[(state >> 8) % pieces.size()];
    }
    ASSERT_EQ(a.encode(text, 1000).ids, b.encode(text, 1000).ids) << text;
  }
}

// ---- Invalid UTF-8 --------------------------------------------------------------------------------

TEST(Tokenizer, InvalidUtf8NamesTheByteOffset) {
  Tokenizer tokenizer(small_config());
  EXPECT_NE(expect_error([&] { tokenizer.tokenize("ab\xff"); }).find("byte offset 2"), std::string::npos);
  EXPECT_NE(expect_error([&] { tokenizer.encode("hello \xc3", 8); }).find("byte offset 6"),
            std::string::npos);
  EXPECT_NE(expect_error([&] { tokenizer.encode_pair("ok", "\xed\xa0\x80", 8); }).find("byte offset 0"),
            std::string::npos);
}

TEST(Tokenizer, EncodeExampleIsEncodeOrEncodePairAndNamesWhereOnError) {
  Tokenizer tokenizer(small_config());
  EXPECT_EQ(encode_example(tokenizer, "hello world", std::nullopt, 16, "f:1").ids,
            tokenizer.encode("hello world", 16).ids);
  const Encoding pair = encode_example(tokenizer, "hello", std::string_view("world"), 16, "f:1");
  EXPECT_EQ(pair.ids, tokenizer.encode_pair("hello", "world", 16).ids);
  EXPECT_EQ(pair.type_ids, tokenizer.encode_pair("hello", "world", 16).type_ids);
  const std::string first =
      expect_error([&] { encode_example(tokenizer, "ab\xff", std::nullopt, 8, "in.tsv:7"); });
  EXPECT_EQ(first.rfind("in.tsv:7: invalid UTF-8 at byte offset 2", 0), 0u) << first;
  const std::string second =
      expect_error([&] { encode_example(tokenizer, "ok", std::string_view("\xc3"), 8, "in.tsv:9"); });
  EXPECT_EQ(second.rfind("in.tsv:9: invalid UTF-8 at byte offset 0", 0), 0u) << second;
  EXPECT_EQ(expect_error([&] { encode_example(tokenizer, "a", std::nullopt, 1, "x:1"); }).rfind("x:1: ", 0),
            0u);
}

// ---- encode / encode_pair ---------------------------------------------------------------------

TEST(Tokenizer, EncodeAddsClsAndSep) {
  Tokenizer tokenizer(small_config());
  Encoding e = tokenizer.encode("hello world", 16);
  EXPECT_EQ(e.ids, (std::vector<int32_t>{kCls, 8, 9, kSep}));
  EXPECT_EQ(e.type_ids, (std::vector<int32_t>{0, 0, 0, 0}));
  EXPECT_FALSE(e.truncated);
  EXPECT_EQ(tokenizer.encode("", 2).ids, (std::vector<int32_t>{kCls, kSep}));
  EXPECT_FALSE(tokenizer.encode("", 2).truncated);
  EXPECT_FALSE(tokenizer.encode("hello world", 4).truncated);  // exactly fits
}

TEST(Tokenizer, EncodeTruncatesFromTheEnd) {
  Tokenizer tokenizer(small_config());
  Encoding e = tokenizer.encode("a b c d e", 3);
  EXPECT_EQ(e.ids, (std::vector<int32_t>{kCls, 29, kSep}));
  EXPECT_TRUE(e.truncated);
  // max_len 2 leaves no room for text; HF would skip truncating here (see docs/TOKENIZER.md).
  e = tokenizer.encode("a b c d e", 2);
  EXPECT_EQ(e.ids, (std::vector<int32_t>{kCls, kSep}));
  EXPECT_TRUE(e.truncated);
  EXPECT_NE(expect_error([&] { tokenizer.encode("a", 1); }).find("max_len 1"), std::string::npos);
}

std::vector<std::string> pair_pieces(const Tokenizer& tokenizer, std::string_view a, std::string_view b,
                                     int64_t max_len) {
  std::vector<std::string> out;
  for (int32_t id : tokenizer.encode_pair(a, b, max_len).ids) out.push_back(tokenizer.id_to_token(id));
  return out;
}

TEST(Tokenizer, PairTruncationIsLongestFirstWithTiesFromTheSecond) {
  Tokenizer tokenizer(small_config());
  // Equal lengths: the first removal comes from the second text.
  EXPECT_EQ(pair_pieces(tokenizer, "a b c d", "e f g h", 8),
            (Pieces{"[CLS]", "a", "b", "c", "[SEP]", "e", "f", "[SEP]"}));
  // The longer one is cut down to the other's length, then they alternate.
  EXPECT_EQ(pair_pieces(tokenizer, "a b c d e", "f g", 6),
            (Pieces{"[CLS]", "a", "b", "[SEP]", "f", "[SEP]"}));
  EXPECT_EQ(pair_pieces(tokenizer, "a", "b c d e f", 5), (Pieces{"[CLS]", "a", "[SEP]", "b", "[SEP]"}));
  EXPECT_EQ(pair_pieces(tokenizer, "a b c d e f", "", 4), (Pieces{"[CLS]", "a", "[SEP]", "[SEP]"}));
  // max_len 3: both texts vanish.
  Encoding e = tokenizer.encode_pair("a b", "c d", 3);
  EXPECT_EQ(e.ids, (std::vector<int32_t>{kCls, kSep, kSep}));
  EXPECT_EQ(e.type_ids, (std::vector<int32_t>{0, 0, 1}));
  EXPECT_TRUE(e.truncated);
  EXPECT_NE(expect_error([&] { tokenizer.encode_pair("a", "b", 2); }).find("max_len 2"), std::string::npos);
}

TEST(Tokenizer, PairTypeIds) {
  Tokenizer tokenizer(small_config());
  Encoding e = tokenizer.encode_pair("hello world", "x", 64);
  EXPECT_EQ(e.ids, (std::vector<int32_t>{kCls, 8, 9, kSep, 16, kSep}));
  EXPECT_EQ(e.type_ids, (std::vector<int32_t>{0, 0, 0, 0, 1, 1}));
  EXPECT_FALSE(e.truncated);
  e = tokenizer.encode_pair("", "", 3);
  EXPECT_EQ(e.ids, (std::vector<int32_t>{kCls, kSep, kSep}));
  EXPECT_FALSE(e.truncated);
}

// ---- Vocabulary checks ---------------------------------------------------------------------------

TEST(Tokenizer, IdToToken) {
  Tokenizer tokenizer(small_config());
  EXPECT_EQ(tokenizer.id_to_token(8), "hello");
  EXPECT_NE(
      expect_error([&] { tokenizer.id_to_token(static_cast<int32_t>(kSmallVocab.size())); }).find("outside"),
      std::string::npos);
  EXPECT_NE(expect_error([&] { tokenizer.id_to_token(-1); }).find("outside"), std::string::npos);
}

TEST(Tokenizer, ConstructorRejectsBadVocabularies) {
  TokenizerConfig config = small_config();
  config.vocab.clear();
  EXPECT_NE(expect_error([&] { Tokenizer{config}; }).find("empty"), std::string::npos);

  config = small_config();
  config.vocab.push_back("hello");
  const std::string duplicate = expect_error([&] { Tokenizer{config}; });
  EXPECT_NE(duplicate.find("duplicate"), std::string::npos) << duplicate;
  EXPECT_NE(duplicate.find("'hello'"), std::string::npos) << duplicate;

  for (const char* missing : {"[UNK]", "[CLS]", "[SEP]"}) {
    config = small_config();
    config.vocab.erase(std::find(config.vocab.begin(), config.vocab.end(), missing));
    const std::string message = expect_error([&] { Tokenizer{config}; });
    EXPECT_NE(message.find(missing), std::string::npos) << message;
  }

  config = small_config();
  config.vocab.push_back("bad\xff");
  EXPECT_NE(expect_error([&] { Tokenizer{config}; }).find("UTF-8"), std::string::npos);
}

TEST(Tokenizer, VocabularyWithoutPadOrMaskIsFine) {
  TokenizerConfig config = small_config();
  config.vocab.erase(config.vocab.begin() + kMask);  // ids shift down from here on
  config.vocab.erase(config.vocab.begin() + kPad);
  Tokenizer tokenizer(config);
  // "[MASK]" is then ordinary text; "[PAD]" too.
  EXPECT_EQ(tokenizer.tokenize("[MASK] [PAD]"), (Pieces{"[", "[UNK]", "]", "[", "[UNK]", "]"}));
}

class VocabFile : public ::testing::Test {
 protected:
  std::string write(const std::string& name, const std::string& content) {
    const auto path = std::filesystem::path(::testing::TempDir()) / ("fcabert_vocab_" + name);
    std::ofstream(path, std::ios::binary) << content;
    paths_.push_back(path);
    return path.string();
  }
  void TearDown() override {
    for (const auto& path : paths_) std::filesystem::remove(path);
  }
  std::vector<std::filesystem::path> paths_;
};

TEST_F(VocabFile, ReadsOneTokenPerLineWithAnyLineEnding) {
  // Python's universal newlines: "\n", "\r\n" and "\r"; no token for a final line break.
  EXPECT_EQ(Tokenizer::read_vocab_file(write("endings", "a\nb\r\nc\rd\n")), (Pieces{"a", "b", "c", "d"}));
  EXPECT_EQ(Tokenizer::read_vocab_file(write("no_final", "a\nb")), (Pieces{"a", "b"}));
  EXPECT_EQ(Tokenizer::read_vocab_file(write("spaces", " a \n\n")), (Pieces{" a ", ""}));
}

TEST_F(VocabFile, MissingFile) {
  const std::string message = expect_error([] { Tokenizer::read_vocab_file("/nonexistent/vocab.txt"); });
  EXPECT_NE(message.find("/nonexistent/vocab.txt"), std::string::npos) << message;
}

TEST_F(VocabFile, EmptyFile) {
  EXPECT_NE(expect_error([&] { Tokenizer::read_vocab_file(write("empty", "")); }).find("empty"),
            std::string::npos);
}

TEST_F(VocabFile, DuplicateTokenNamesBothLines) {
  const std::string path = write("dup", "[PAD]\n[UNK]\nhello\nworld\nhello\n");
  const std::string message = expect_error([&] { Tokenizer::read_vocab_file(path); });
  EXPECT_NE(message.find(path + ":5"), std::string::npos) << message;
  EXPECT_NE(message.find("line 3"), std::string::npos) << message;
}

TEST_F(VocabFile, InvalidUtf8NamesTheLine) {
  const std::string path = write("utf8", "a\nb\xc3\n");
  const std::string message = expect_error([&] { Tokenizer::read_vocab_file(path); });
  EXPECT_NE(message.find(path + ":2"), std::string::npos) << message;
}

TEST_F(VocabFile, MissingUnkTokenIsReportedByTheTokenizer) {
  TokenizerConfig config;
  config.vocab = Tokenizer::read_vocab_file(write("nounk", "[PAD]\n[CLS]\n[SEP]\nhello\n"));
  EXPECT_NE(expect_error([&] { Tokenizer{config}; }).find("[UNK]"), std::string::npos);
}

// ---- The real BERT vocabularies ---------------------------------------------------------------

std::string shared_vocab(const char* name) {
  const auto path = std::filesystem::path(FCABERT_SHARED_DATA) / "vocab" / name;
  return std::filesystem::is_regular_file(path) ? path.string() : std::string();
}

std::vector<int32_t> real_ids(const char* vocab, bool lowercase, std::optional<bool> strip,
                              std::string_view text, bool chinese = true) {
  TokenizerConfig config;
  config.vocab = Tokenizer::read_vocab_file(vocab);
  config.lowercase = lowercase;
  config.strip_accents = strip;
  config.tokenize_chinese_chars = chinese;
  return Tokenizer(config).encode(text, 512).ids;
}

TEST(TokenizerRealVocab, MatchesBertTokenizerInEveryConfiguration) {
  const std::string uncased = shared_vocab("bert-base-uncased-vocab.txt");
  const std::string cased = shared_vocab("bert-base-cased-vocab.txt");
  if (uncased.empty() || cased.empty()) GTEST_SKIP() << "shared BERT vocabularies not found";
  using Ids = std::vector<int32_t>;
  EXPECT_EQ(
      real_ids(uncased.c_str(), true, {}, "He said, \"unaffable!\" 東京に行く"),
      (Ids{101, 2002, 2056, 1010, 1000, 14477, 20961, 3468, 999, 1000, 1879, 1755, 1668, 1945, 1653, 102}));
  EXPECT_EQ(real_ids(uncased.c_str(), true, false, "straße STRASSE Ωmega ΣΑΣ"),
            (Ids{101, 2358, 27807, 2358, 8180, 3366, 1179, 4168, 3654, 1173, 14608, 29733, 102}));
  EXPECT_EQ(real_ids(uncased.c_str(), true, {}, "한국어"),
            (Ids{101, 1469, 30006, 30021, 29991, 30014, 30020, 29999, 30008, 102}));
  EXPECT_EQ(real_ids(uncased.c_str(), true, {}, "東京に行く 東", false),
            (Ids{101, 1879, 30281, 30194, 30471, 30179, 1879, 102}));
  EXPECT_EQ(real_ids(cased.c_str(), false, true, "Ångström Éire Ñandú"),
            (Ids{101, 26285, 22230, 142, 5817, 20689, 7641, 102}));
  EXPECT_EQ(real_ids(cased.c_str(), false, {}, "Hello [CL\u200bS] world"), (Ids{101, 8667, 101, 1362, 102}));
  EXPECT_EQ(real_ids(cased.c_str(), false, {}, "İstanbul ΣΊΣΥΦΟΣ straße ﬁ"),
            (Ids{101, 300, 13946, 27515, 100, 188, 4487, 13750, 1094, 102}));
}

// ---- Threads and long inputs ---------------------------------------------------------------------

TEST(Tokenizer, ConstTokenizerIsThreadSafe) {
  const Tokenizer tokenizer(small_config());
  std::string text;
  for (int i = 0; i < 2000; ++i) text += "Hello, unaffable CAFÉ 東京 xxx! ";
  const auto expected = tokenizer.encode(text, 1 << 20).ids;
  std::vector<std::vector<int32_t>> results(4);
  std::vector<std::thread> threads;
  for (auto& result : results) threads.emplace_back([&] { result = tokenizer.encode(text, 1 << 20).ids; });
  for (auto& thread : threads) thread.join();
  for (const auto& result : results) EXPECT_EQ(result, expected);
}

TEST(Tokenizer, LongAndAdversarialLinesTakeLinearTime) {
  // Each input is 1 MB; anything quadratic would take hours here. (A 10 MB line through
  // `fcabert tokenize` takes about 2 s in a release build.)
  const Tokenizer tokenizer(small_config());
  const auto start = std::chrono::steady_clock::now();
  const size_t mb = 1 << 20;

  std::string words;
  while (words.size() < mb) words += "hello world unaffable x,x ";
  EXPECT_EQ(tokenizer.tokenize(words).size(), words.size() / 26 * 8);

  EXPECT_EQ(tokenizer.tokenize(std::string(mb, 'x')), (Pieces{"[UNK]"}));  // one 1 MB word
  EXPECT_EQ(tokenizer.tokenize(std::string(mb, '[')).size(), mb);          // special-token scan

  // Combining marks after one letter, in the worst order for a bubble sort: a single
  // combining sequence that canonical ordering must sort.
  std::string marks = "a";
  while (marks.size() < mb) marks += "\u0301\u0316";    // classes 230, 220
  EXPECT_EQ(tokenizer.tokenize(marks), (Pieces{"a"}));  // stripped: "a"
  EXPECT_EQ(Tokenizer(small_config(false)).tokenize(marks), (Pieces{"[UNK]"}));

  // Many exactly-100-character words: the worst case of the WordPiece walk.
  std::string hundreds;
  while (hundreds.size() < mb) hundreds += std::string(100, 'x') + " ";
  EXPECT_EQ(tokenizer.tokenize(hundreds).size(), hundreds.size() / 101 * 100);

  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  EXPECT_LT(seconds, 60.0) << "quadratic behaviour? (under 1 s in a release build, ~15 s with sanitizers)";
}

}  // namespace
}  // namespace fcabert

namespace fcabert {
namespace {

// ---- Windows (classify --long window) -----------------------------------------------------

// The pieces between [CLS] and [SEP] of each window, as ids.
std::vector<std::vector<int32_t>> window_pieces(const std::vector<Encoding>& windows,
                                                const Tokenizer& tokenizer) {
  std::vector<std::vector<int32_t>> out;
  for (const Encoding& w : windows) {
    EXPECT_EQ(tokenizer.id_to_token(w.ids.front()), "[CLS]");
    EXPECT_EQ(tokenizer.id_to_token(w.ids.back()), "[SEP]");
    EXPECT_EQ(w.type_ids, std::vector<int32_t>(w.ids.size(), 0));
    out.emplace_back(w.ids.begin() + 1, w.ids.end() - 1);
  }
  return out;
}

TEST(TokenizerWindows, ConsecutiveWindowsShareStridePiecesAndTheLastEndsWithTheText) {
  const Tokenizer tokenizer(small_config());
  const std::string text = "a b c d e f g h i j";  // 10 pieces, one per letter
  const std::vector<int32_t> all = tokenizer.pieces_to_ids(tokenizer.tokenize(text));
  ASSERT_EQ(all.size(), 10u);
  // Windows of 6 tokens hold 4 pieces; stride 1: each starts 3 pieces after the one before.
  const auto windows = tokenizer.encode_windows(text, {6, 1, 16});
  const auto pieces = window_pieces(windows, tokenizer);
  ASSERT_EQ(pieces.size(), 3u);
  EXPECT_EQ(pieces[0], std::vector<int32_t>(all.begin(), all.begin() + 4));
  EXPECT_EQ(pieces[1], std::vector<int32_t>(all.begin() + 3, all.begin() + 7));
  EXPECT_EQ(pieces[2], std::vector<int32_t>(all.begin() + 6, all.end()));
  for (const Encoding& w : windows) EXPECT_FALSE(w.truncated);
  // A short text: one window, exactly encode()'s.
  const auto one = tokenizer.encode_windows("a b", {6, 1, 16});
  ASSERT_EQ(one.size(), 1u);
  EXPECT_EQ(one[0].ids, tokenizer.encode("a b", 6).ids);
  EXPECT_EQ(tokenizer.encode_windows("", {6, 1, 16}).front().ids.size(), 2u);  // [CLS] [SEP]
}

TEST(TokenizerWindows, MoreThanMaxWindowsMarksTheLastTruncated) {
  const Tokenizer tokenizer(small_config());
  const auto windows = tokenizer.encode_windows("a b c d e f g h i j", {6, 0, 2});
  ASSERT_EQ(windows.size(), 2u);
  EXPECT_FALSE(windows[0].truncated);
  EXPECT_TRUE(windows[1].truncated);
}

TEST(TokenizerWindows, OptionsOutOfRangeNameTheFlag) {
  const Tokenizer tokenizer(small_config());
  EXPECT_NE(expect_error([&] {
              tokenizer.encode_windows("a", {6, 4, 2});
            }).find("--stride 4"),
            std::string::npos);
  EXPECT_NE(expect_error([&] {
              tokenizer.encode_windows("a", {6, -1, 2});
            }).find("--stride"),
            std::string::npos);
  EXPECT_NE(expect_error([&] {
              tokenizer.encode_windows("a", {6, 0, 0});
            }).find("--max-windows"),
            std::string::npos);
  EXPECT_NE(expect_error([&] {
              tokenizer.encode_windows("a", {2, 0, 1});
            }).find("--max-len"),
            std::string::npos);
}

}  // namespace
}  // namespace fcabert
