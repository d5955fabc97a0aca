#pragma once
// Turning an input line into model input, the same way in every command: single-text
// models take the whole line; pair models take exactly two tab-separated columns. Every
// error names FILE:LINE.
#include <cstdint>

#include "cli/line_reader.h"
#include "fcabert/config.h"
#include "fcabert/tokenizer.h"

namespace fcabert::cli {

Encoding encode_line(const Tokenizer& tokenizer, const InputLine& line, bool pair, int64_t max_len);

}  // namespace fcabert::cli
