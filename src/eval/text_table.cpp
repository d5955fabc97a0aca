#include "eval/text_table.h"

#include <algorithm>
#include <cstdio>
#include <ostream>

namespace fcabert::eval {

void write_text_table(const std::vector<TextRow>& rows, std::ostream& out, int indent) {
  std::vector<size_t> widths;
  for (const TextRow& row : rows)
    for (size_t c = 0; c < row.size(); ++c) {
      if (widths.size() <= c) widths.push_back(0);
      widths[c] = std::max(widths[c], row[c].size());
    }
  size_t table_width = 0;
  for (size_t width : widths) table_width += width + 2;
  table_width = table_width > 2 ? table_width - 2 : 0;  // no gap after the last column
  const std::string margin(static_cast<size_t>(std::max(0, indent)), ' ');
  for (const TextRow& row : rows) {
    if (row.empty()) {
      out << margin << std::string(table_width, '-') << '\n';
      continue;
    }
    std::string line;
    for (size_t c = 0; c < row.size(); ++c) {
      const std::string pad(widths[c] - row[c].size(), ' ');
      line += c == 0 ? row[c] + pad : pad + row[c];
      if (c + 1 < row.size()) line += "  ";
    }
    while (!line.empty() && line.back() == ' ') line.pop_back();
    out << margin << line << '\n';
  }
}

std::string fixed(double value, int digits) {
  char text[64];
  std::snprintf(text, sizeof text, "%.*f", digits, value);
  return text;
}

}  // namespace fcabert::eval
