#include "cli/line_encoding.h"

#include <string>
#include <string_view>

#include "fcabert/error.h"
#include "text/unicode.h"

namespace fcabert::cli {
namespace {

std::string where(const InputLine& line) { return line.source + ":" + std::to_string(line.number) + ": "; }

}  // namespace

Encoding encode_line(const Tokenizer& tokenizer, const InputLine& line, bool pair, int64_t max_len) {
  const std::string prefix = where(line);
  try {
    text::check_utf8(line.text);  // first, so that byte offsets count from the start of the line
    if (!pair) return tokenizer.encode(line.text, max_len);
    const size_t tab = line.text.find('\t');
    if (tab == std::string::npos || line.text.find('\t', tab + 1) != std::string::npos) {
      size_t columns = 1;
      for (const char c : line.text) columns += c == '\t';
      throw Error(prefix + "expected two tab-separated columns (a sentence pair), found " +
                  std::to_string(columns));
    }
    const std::string_view text(line.text);
    return tokenizer.encode_pair(text.substr(0, tab), text.substr(tab + 1), max_len);
  } catch (const Error& e) {
    if (std::string_view(e.what()).substr(0, prefix.size()) == prefix) throw;
    throw Error(prefix + e.what());  // the tokenizer names only the byte offset
  }
}

}  // namespace fcabert::cli
