#pragma once
// Text input as every command reads it: lines streamed from files or stdin ("-"), one at a
// time, each remembering where it came from so that every error and every output can name
// FILE:LINE (a whole file is never read into memory); and the rule that turns a line into
// model input (single-text models take the whole line, pair models exactly two
// tab-separated columns).
#include <cstdint>
#include <fstream>
#include <istream>
#include <memory>
#include <string>
#include <vector>

#include "fcabert/tokenizer.h"

namespace fcabert {

struct InputLine {
  std::string text;    // without the trailing '\n'
  std::string source;  // file name, or "<stdin>"
  int64_t number = 0;  // 1-based within its source
  int64_t index = 0;   // 0-based within the whole input (every source, in order)
};

class LineReader {
 public:
  // Empty `paths` reads stdin. Missing or unreadable files are reported before any output.
  explicit LineReader(std::vector<std::string> paths);

  // Fills `line` with the next line; false at the end of the last input.
  bool next(InputLine& line);

  // Bytes consumed and total bytes of the regular files (for progress); total 0 when unknown.
  uint64_t bytes_read() const { return bytes_read_; }
  uint64_t bytes_total() const { return bytes_total_; }
  bool multiple_sources() const { return paths_.size() > 1; }

 private:
  bool open_next();

  std::vector<std::string> paths_;
  size_t next_path_ = 0;
  std::unique_ptr<std::ifstream> file_;
  std::istream* in_ = nullptr;
  std::string source_;
  int64_t line_number_ = 0;
  int64_t lines_read_ = 0;  // every source
  uint64_t bytes_read_ = 0;
  uint64_t bytes_total_ = 0;
};

// The model input for one line: the whole line for a single-text model; for a pair model
// exactly two tab-separated columns (else fcabert::Error "FILE:LINE: expected two
// tab-separated columns ..."). Invalid UTF-8 throws naming FILE:LINE and the byte offset
// from the start of the line. Truncated to max_len tokens (Encoding::truncated).
Encoding encode_line(const Tokenizer& tokenizer, const InputLine& line, bool pair, int64_t max_len);

// A single-text line as windows of options.max_len tokens (Tokenizer::encode_windows); invalid
// UTF-8 throws naming FILE:LINE as encode_line does.
std::vector<Encoding> encode_line_windows(const Tokenizer& tokenizer, const InputLine& line,
                                          const WindowOptions& options);

}  // namespace fcabert
