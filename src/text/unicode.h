#pragma once
// The character rules of Hugging Face's slow BertTokenizer (transformers 4.40,
// tokenization_utils.py and models/bert/tokenization_bert.py), rebuilt on utf8proc.
//
// The reference is Python's `unicodedata` as shipped with the Python that runs the reference
// tokenizer. We match Python 3.11 (Unicode 14.0.0), the interpreter of the project's venv;
// utf8proc 2.8 knows Unicode 15.0.0. The only difference that matters (checked exhaustively
// over all code points, see docs/TOKENIZER.md) is that 4489 code points assigned in Unicode
// 15.0 are unassigned (category Cn) for Python 3.11; `category()` reports Cn for them.
// Lower-casing differs in one code point (U+0130, see `append_python_lower`); NFD, NFC and
// combining classes agree for every code point assigned in Unicode 14.
//
// Code points are int32_t, utf8proc's type, so buffers can be handed to utf8proc directly.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace fcabert::text {

using Cp = int32_t;

// The Unicode version of the linked utf8proc ("15.0.0" for utf8proc 2.8); the table behind
// category() is only right for that version.
const char* utf8proc_unicode_version_string();

// ---- UTF-8 ------------------------------------------------------------------------------

// Checks that `text` is well-formed UTF-8 (no overlong forms, no surrogates, nothing above
// U+10FFFF). Returns std::string_view::npos, or the byte offset of the first bad sequence
// and a short reason in `*reason`.
size_t find_invalid_utf8(std::string_view text, const char** reason);

// Throws fcabert::Error("invalid UTF-8 at byte offset N: reason") unless `text` is valid.
void check_utf8(std::string_view text);

// Decodes the code point starting at `text[pos]` of *valid* UTF-8 and advances `pos`.
inline Cp next_code_point(std::string_view text, size_t& pos) {
  const auto b0 = static_cast<unsigned char>(text[pos]);
  if (b0 < 0x80) {
    ++pos;
    return b0;
  }
  const auto cont = [&](size_t i) {
    return static_cast<Cp>(static_cast<unsigned char>(text[pos + i]) & 0x3F);
  };
  Cp cp;
  if (b0 < 0xE0) {
    cp = (static_cast<Cp>(b0 & 0x1F) << 6) | cont(1);
    pos += 2;
  } else if (b0 < 0xF0) {
    cp = (static_cast<Cp>(b0 & 0x0F) << 12) | (cont(1) << 6) | cont(2);
    pos += 3;
  } else {
    cp = (static_cast<Cp>(b0 & 0x07) << 18) | (cont(1) << 12) | (cont(2) << 6) | cont(3);
    pos += 4;
  }
  return cp;
}

inline void append_utf8(Cp cp, std::string& out) {
  const auto u = static_cast<uint32_t>(cp);
  if (u < 0x80) {
    out.push_back(static_cast<char>(u));
  } else if (u < 0x800) {
    out.push_back(static_cast<char>(0xC0 | (u >> 6)));
    out.push_back(static_cast<char>(0x80 | (u & 0x3F)));
  } else if (u < 0x10000) {
    out.push_back(static_cast<char>(0xE0 | (u >> 12)));
    out.push_back(static_cast<char>(0x80 | ((u >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (u & 0x3F)));
  } else {
    out.push_back(static_cast<char>(0xF0 | (u >> 18)));
    out.push_back(static_cast<char>(0x80 | ((u >> 12) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | ((u >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (u & 0x3F)));
  }
}

// ---- Character classes -----------------------------------------------------------------

// The two-letter general category as Python 3.11's unicodedata.category() reports it, as a
// pair of ASCII letters packed into an int: 'L' << 8 | 'u' for "Lu".
int category(Cp cp);
constexpr int category_code(char major, char minor) { return (major << 8) | minor; }

// How BasicTokenizer._clean_text treats a character.
enum class CleanClass : uint8_t {
  kKeep,        // copied
  kDrop,        // U+0000, U+FFFD and "control" characters (category C*, but not \t \n \r)
  kWhitespace,  // " ", \t, \n, \r and category Zs: becomes " "
};
CleanClass clean_class(Cp cp);

// tokenization_utils._is_punctuation: the ASCII ranges 33-47, 58-64, 91-96, 123-126 (all
// non-alphanumeric printable ASCII, e.g. "$", "^", "`" which are not Unicode punctuation)
// plus every character of category P*.
bool is_punctuation(Cp cp);

// BasicTokenizer._is_chinese_char: exactly the code point ranges HF lists (CJK Unified
// Ideographs, extensions A-E, and the compatibility ideographs). Hangul, kana and CJK
// punctuation are not in it.
bool is_cjk_ideograph(Cp cp);

// After _clean_text only " " is whitespace in HF's sense, but whitespace_tokenize() splits
// with Python's str.split(), which also splits at every other str.isspace() character that
// survives the clean-up: U+2028 LINE SEPARATOR and U+2029 PARAGRAPH SEPARATOR (categories
// Zl/Zp: neither control nor Zs, so _clean_text keeps them).
inline bool is_split_space(Cp cp) { return cp == 0x20 || cp == 0x2028 || cp == 0x2029; }

// ---- Case and normalisation ------------------------------------------------------------

// Appends Python's str.lower() of the single character `cp` (full case mapping). It equals
// utf8proc_tolower() for every code point except U+0130 LATIN CAPITAL LETTER I WITH DOT
// ABOVE, which Python lowers to two characters, "i" + U+0307 COMBINING DOT ABOVE
// (SpecialCasing.txt; utf8proc only has the simple mapping to "i"). Applied one character
// at a time, a capital sigma always becomes U+03C3 (never final U+03C2), as in HF, whose
// PreTrainedTokenizer.tokenize lowers the text with a regex that matches one character at a
// time.
void append_python_lower(Cp cp, std::vector<Cp>& out);

// NFC of `in` (canonical decomposition, canonical ordering, canonical composition) into
// `out`; `in` and `out` must differ. Linear time except for the sorting of long runs of
// combining marks, which is O(k log k).
void nfc(const Cp* in, size_t n, std::vector<Cp>& out);

// BasicTokenizer._run_strip_accents: NFD, then drop every character of category Mn.
void strip_accents(const Cp* in, size_t n, std::vector<Cp>& out);

// The smallest code point whose NFC or NFD is not itself, or that composes with a preceding
// character (checked for every code point: nothing below U+00C0 changes under NFD and
// nothing below U+0300 changes or composes under NFC). Lets pure-ASCII text skip the work.
inline constexpr Cp kFirstNfdChanging = 0xC0;
inline constexpr Cp kFirstNfcChanging = 0x300;

}  // namespace fcabert::text
