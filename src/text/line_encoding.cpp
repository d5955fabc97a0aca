#include <optional>
#include <string>
#include <string_view>

#include "fcabert/error.h"
#include "fcabert/input.h"
#include "text/unicode.h"

namespace fcabert {

Encoding encode_line(const Tokenizer& tokenizer, const InputLine& line, bool pair, int64_t max_len) {
  const std::string where = line.source + ":" + std::to_string(line.number);
  if (line.table) {
    if (!line.error.empty()) throw Error(where + ": " + line.error);
    return encode_example(tokenizer, line.text,
                          pair ? std::optional<std::string_view>(line.pair) : std::nullopt, max_len, where);
  }
  if (!pair) return encode_example(tokenizer, line.text, std::nullopt, max_len, where);
  try {
    text::check_utf8(line.text);  // the whole line first: a byte offset counts from its start
  } catch (const Error& e) {
    throw Error(where + ": " + e.what());
  }
  const size_t tab = line.text.find('\t');
  if (tab == std::string::npos || line.text.find('\t', tab + 1) != std::string::npos) {
    size_t columns = 1;
    for (const char c : line.text) columns += c == '\t';
    throw Error(where + ": expected two tab-separated columns (a sentence pair), found " +
                std::to_string(columns));
  }
  const std::string_view text(line.text);
  return encode_example(tokenizer, text.substr(0, tab), text.substr(tab + 1), max_len, where);
}

std::vector<Encoding> encode_line_windows(const Tokenizer& tokenizer, const InputLine& line,
                                          const WindowOptions& options) {
  if (!line.error.empty()) throw Error(line.source + ":" + std::to_string(line.number) + ": " + line.error);
  try {
    text::check_utf8(line.text);
    return tokenizer.encode_windows(line.text, options);
  } catch (const Error& e) {
    throw Error(line.source + ":" + std::to_string(line.number) + ": " + e.what());
  }
}

}  // namespace fcabert
