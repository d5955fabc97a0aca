#pragma once
// Plain-text tables for the human-readable reports (eval, profile): the first column
// left-aligned, the others right-aligned, two spaces between columns.
#include <iosfwd>
#include <string>
#include <vector>

namespace fcabert::eval {

using TextRow = std::vector<std::string>;

// Writes each row as one line, indented by `indent` spaces; trailing blanks are trimmed. An
// empty row is drawn as a rule of '-' as wide as the table.
void write_text_table(const std::vector<TextRow>& rows, std::ostream& out, int indent = 2);

// printf("%.*f"): a number with `digits` digits after the point.
std::string fixed(double value, int digits);

}  // namespace fcabert::eval
