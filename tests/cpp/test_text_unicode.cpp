// Unit tests of the character rules behind the tokenizer (src/text/unicode.h). Expected
// values are Python 3.11's (unicodedata, Unicode 14.0.0) as Hugging Face's BertTokenizer
// uses them.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "text/unicode.h"

namespace fcabert::text {
namespace {

using Cps = std::vector<Cp>;

TEST(Unicode, Utf8procVersionMatchesTheCategoryTable) {
  // category() hides the code points that are new in Unicode 15.0 (unassigned for Python
  // 3.11). A different utf8proc needs a regenerated table: see docs/TOKENIZER.md.
  EXPECT_STREQ(utf8proc_unicode_version_string(), "15.0.0");
}

TEST(Unicode, CategoriesFollowPython311) {
  EXPECT_EQ(category('A'), category_code('L', 'u'));
  EXPECT_EQ(category(0x00AD), category_code('C', 'f'));  // soft hyphen
  EXPECT_EQ(category(0x0301), category_code('M', 'n'));
  EXPECT_EQ(category(0x1FAE8), category_code('C', 'n'));  // shaking face: new in Unicode 15
  EXPECT_EQ(category(0x0CF3), category_code('C', 'n'));
  EXPECT_EQ(category(0x31350), category_code('C', 'n'));  // CJK extension H
  EXPECT_EQ(category(0x323AF), category_code('C', 'n'));
  EXPECT_EQ(category(0x323B0), category_code('C', 'n'));  // unassigned everywhere
  EXPECT_EQ(category(0x1FAE7), category_code('S', 'o'));  // bubbles: Unicode 14
  EXPECT_EQ(category(0x2B738), category_code('L', 'o'));  // last of CJK extension C in 14
}

TEST(Unicode, CleanUpClasses) {
  EXPECT_EQ(clean_class('a'), CleanClass::kKeep);
  EXPECT_EQ(clean_class(0), CleanClass::kDrop);
  for (Cp c : {0x09, 0x0A, 0x0D, 0x20, 0xA0, 0x1680, 0x2000, 0x200A, 0x202F, 0x205F, 0x3000})
    EXPECT_EQ(clean_class(c), CleanClass::kWhitespace) << std::hex << c;
  for (Cp c : {0x01, 0x0B, 0x0C, 0x1C, 0x1F, 0x7F, 0x85, 0x9F, 0xAD, 0x200B, 0x200D, 0x2060, 0xFEFF, 0xFFFD,
               0xE000, 0xF0000, 0x0378, 0x180E, 0x1FAE8})
    EXPECT_EQ(clean_class(c), CleanClass::kDrop) << std::hex << c;
  // Line and paragraph separators survive the clean-up; str.split() splits at them.
  EXPECT_EQ(clean_class(0x2028), CleanClass::kKeep);
  EXPECT_TRUE(is_split_space(0x2028));
  EXPECT_TRUE(is_split_space(0x2029));
  EXPECT_FALSE(is_split_space(0x200B));
}

TEST(Unicode, PunctuationIncludesAllAsciiSymbols) {
  for (char c : std::string("!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~")) EXPECT_TRUE(is_punctuation(c)) << c;
  for (char c : std::string("aZ09 ")) EXPECT_FALSE(is_punctuation(c)) << c;
  EXPECT_TRUE(is_punctuation(0x00BF));   // ¿ Po
  EXPECT_TRUE(is_punctuation(0x2014));   // em dash Pd
  EXPECT_TRUE(is_punctuation(0x3002));   // ideographic full stop
  EXPECT_FALSE(is_punctuation(0x20AC));  // € is Sc
  EXPECT_TRUE(is_punctuation(0x00B7));
  EXPECT_FALSE(is_punctuation(0x11B00));  // Po only since Unicode 15
}

TEST(Unicode, CjkRangesAreHfs) {
  for (Cp c : {0x4E00, 0x9FFF, 0x3400, 0x4DBF, 0x20000, 0x2A6DF, 0x2A700, 0x2B81F, 0x2CEAF, 0xF900, 0xFAFF,
               0x2F800, 0x2FA1F})
    EXPECT_TRUE(is_cjk_ideograph(c)) << std::hex << c;
  for (Cp c : {0x3042, 0x30A2, 0xAC00, 0x1100, 0x3002, 0xFF01, 0x2F00, 0x31350, 0x2CEB0, 0x3000})
    EXPECT_FALSE(is_cjk_ideograph(c)) << std::hex << c;
}

Cps lower(Cp c) {
  Cps out;
  append_python_lower(c, out);
  return out;
}

TEST(Unicode, LowerIsPythonsStrLower) {
  EXPECT_EQ(lower('A'), Cps{'a'});
  EXPECT_EQ(lower('a'), Cps{'a'});
  EXPECT_EQ(lower(0x0130), (Cps{'i', 0x0307}));  // İ
  EXPECT_EQ(lower(0x0049), Cps{'i'});            // I (no Turkish rules)
  EXPECT_EQ(lower(0x03A3), Cps{0x03C3});         // Σ -> σ, one character at a time
  EXPECT_EQ(lower(0x1E9E), Cps{0x00DF});         // ẞ -> ß
  EXPECT_EQ(lower(0x212A), Cps{'k'});            // Kelvin sign
  EXPECT_EQ(lower(0x01C5), Cps{0x01C6});         // titlecase ǅ
  EXPECT_EQ(lower(0x00DF), Cps{0x00DF});         // ß stays
}

Cps nfc_of(const Cps& in) {
  Cps out;
  nfc(in.data(), in.size(), out);
  return out;
}

TEST(Unicode, Nfc) {
  EXPECT_EQ(nfc_of({'e', 0x0301}), Cps{0x00E9});
  EXPECT_EQ(nfc_of({'a', 0x0301, 0x0316}), (Cps{0x00E1, 0x0316}));  // reordered, then composed
  EXPECT_EQ(nfc_of({0x1100, 0x1161, 0x11A8}), Cps{0xAC01});         // Hangul jamo
  EXPECT_EQ(nfc_of({0x212B}), Cps{0x00C5});                         // Ångström sign
  EXPECT_EQ(nfc_of({0xF900}), Cps{0x8C48});                         // CJK compatibility ideograph
  EXPECT_EQ(nfc_of({0x2ADC}), (Cps{0x2ADD, 0x0338}));               // composition exclusion
  EXPECT_EQ(nfc_of({0x1D15F}), (Cps{0x1D158, 0x1D165}));            // excluded too
  EXPECT_EQ(nfc_of({0xFB01}), Cps{0xFB01});                         // ligature: compatibility only
}

TEST(Unicode, NfcSortsLongMarkRunsStably) {
  Cps in{'q'};
  for (int i = 0; i < 50000; ++i) {
    in.push_back(0x0301);  // class 230
    in.push_back(0x0316);  // class 220
  }
  const Cps out = nfc_of(in);
  ASSERT_EQ(out.size(), in.size());
  EXPECT_EQ(out[0], 'q');
  for (size_t i = 1; i <= 50000; ++i) ASSERT_EQ(out[i], 0x0316);
  for (size_t i = 50001; i < out.size(); ++i) ASSERT_EQ(out[i], 0x0301);
}

Cps strip(const Cps& in) {
  Cps out;
  strip_accents(in.data(), in.size(), out);
  return out;
}

TEST(Unicode, StripAccentsDropsOnlyNonspacingMarks) {
  EXPECT_EQ(strip({0x00C5, 'n', 'g'}), (Cps{'A', 'n', 'g'}));
  EXPECT_EQ(strip({0xD55C}), (Cps{0x1112, 0x1161, 0x11AB}));  // 한 -> jamo (Lo), nothing dropped
  EXPECT_EQ(strip({0x0915, 0x093F}), (Cps{0x0915, 0x093F}));  // Devanagari vowel sign i is Mc
  EXPECT_EQ(strip({0x00DF}), Cps{0x00DF});
  EXPECT_EQ(strip({0x0301, 0x0302}), Cps{});
  EXPECT_EQ(strip({0x1D15F}), (Cps{0x1D158, 0x1D165}));  // U+1D165 is Mc, kept
}

TEST(Unicode, InvalidUtf8IsLocated) {
  struct Case {
    std::string text;
    size_t offset;
    std::string reason;
  };
  const std::vector<Case> cases = {
      {"ab\xff", 2, "never occurs"},
      {"\x80", 0, "continuation"},
      {"ok\xc0\x80", 2, "overlong"},
      {"\xe0\x80\x80", 0, "overlong"},
      {"\xf0\x80\x80\x80", 0, "overlong"},
      {"x\xed\xa0\x80", 1, "surrogate"},
      {"\xf4\x90\x80\x80", 0, "above U+10FFFF"},
      {"\xf5\x80\x80\x80", 0, "never occurs"},
      {"abc\xe2\x82", 3, "truncated"},
      {"\xe2\x82x", 0, "truncated"},
      {"\xc3", 0, "truncated"},
      {"\xf0\x9f\x8d", 0, "truncated"},
  };
  for (const auto& c : cases) {
    const char* reason = "";
    EXPECT_EQ(find_invalid_utf8(c.text, &reason), c.offset) << c.reason;
    EXPECT_NE(std::string(reason).find(c.reason), std::string::npos) << reason;
  }
  const char* reason = "";
  EXPECT_EQ(find_invalid_utf8("plain \xc3\xa9 \xe2\x82\xac \xf0\x9f\x8d\x95 \xf4\x8f\xbf\xbf", &reason),
            std::string_view::npos);
}

TEST(Unicode, Utf8RoundTrip) {
  std::string encoded;
  const Cps cps{0x24, 0xA2, 0x20AC, 0x10348, 0x10FFFF, 0x7F, 0x80, 0x7FF, 0x800, 0xFFFF, 0x10000};
  for (Cp c : cps) append_utf8(c, encoded);
  Cps decoded;
  for (size_t pos = 0; pos < encoded.size();) decoded.push_back(next_code_point(encoded, pos));
  EXPECT_EQ(decoded, cps);
  const char* reason = "";
  EXPECT_EQ(find_invalid_utf8(encoded, &reason), std::string_view::npos);
}

}  // namespace
}  // namespace fcabert::text
