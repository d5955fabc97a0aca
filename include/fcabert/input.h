#pragma once
// Text input as every command reads it: lines streamed from files or stdin ("-"), one at a
// time, each remembering where it came from so that every error and every output can name
// FILE:LINE (a whole file is never read into memory); and the rule that turns a line into
// model input (single-text models take the whole line, pair models exactly two
// tab-separated columns).
//
// Table inputs (TableOptions, `classify --input-format tsv|csv|jsonl`): each record is one
// InputLine whose texts (and id) come from named columns of a header row (tsv, csv) or named
// fields of a JSON object per line (jsonl). The dialects, exactly:
// - tsv: fields split on every tab, no quoting; the first line of each file is the header
//   (without one, TableOptions::header false, the columns are named by number: 1, 2, ...);
// - csv (RFC 4180): fields split on commas; a field may be quoted with ", inside which commas,
//   line breaks and "" (one quote) are literal; a quote elsewhere in an unquoted field, or
//   anything but a comma after a closing quote, makes the record bad; CRLF or LF line ends;
//   the first record of each file is the header;
// - jsonl: one JSON object per line; the text fields must be strings, the id any string or
//   number.
// A record whose field count differs from the header's, or that lacks a field or has the
// wrong type, is a bad row (InputLine::error; encode_line throws it as "FILE:LINE: ...", so
// it is skipped or stops the run like any bad row). A header without a named column, or a
// quote that is never closed, stops the run (LineReader::next throws).
#include <cstdint>
#include <fstream>
#include <istream>
#include <memory>
#include <string>
#include <vector>

#include "fcabert/tokenizer.h"

namespace fcabert {

enum class InputFormat { kText, kTsv, kCsv, kJsonl };
// "text", "tsv", "csv", "jsonl", and back (throws fcabert::Error naming --input-format).
const char* input_format_name(InputFormat format);
InputFormat parse_input_format(const std::string& name);

// Where a table input's texts are: column names of the header row (tsv, csv) or field names
// (jsonl).
struct TableOptions {
  InputFormat format = InputFormat::kText;
  std::string text = "text";       // --text-column / --text-field
  std::string pair = "text_pair";  // read only when `pair_input`
  std::string id;                  // --id-column / --id-field; empty: no id
  bool pair_input = false;
  bool header = true;  // tsv, csv: false (--no-header): no header row; columns are named 1, 2, ...
};

struct InputLine {
  std::string text;    // text format: the line without the trailing '\n'; tables: the text field
  std::string source;  // file name, or "<stdin>"
  int64_t number = 0;  // 1-based line within its source (a multi-line CSV record: its first line)
  int64_t index = 0;   // 0-based record within the whole input (every source, in order)
  // Table formats only:
  bool table = false;
  std::string pair;   // the second text (pair models)
  std::string id;     // the id column's value ("" without one)
  std::string error;  // why the record is bad ("" when it is fine)
  std::string raw;    // the record as read, without its final line break

  // The bytes this record was read from (what the shards of a job hash).
  const std::string& record() const { return table ? raw : text; }
};

class LineReader {
 public:
  // Empty `paths` reads stdin. Missing or unreadable files are reported before any output.
  explicit LineReader(std::vector<std::string> paths, TableOptions table = {});

  // Fills `line` with the next line (a table: the next record); false at the end of the last
  // input. Throws fcabert::Error naming FILE:LINE for a read error, a header without a named
  // column or an unclosed CSV quote.
  bool next(InputLine& line);

  // Bytes consumed and total bytes of the regular files (for progress); total 0 when unknown.
  uint64_t bytes_read() const { return bytes_read_; }
  uint64_t bytes_total() const { return bytes_total_; }
  bool multiple_sources() const { return paths_.size() > 1; }
  const TableOptions& table() const { return table_; }
  // Tables: whether records have a second text (TableOptions::pair_input), once the model that
  // decides it is loaded. Only before the first next(); throws fcabert::Error after it.
  void set_pair_input(bool pair_input);

 private:
  bool open_next();
  bool next_physical(std::string& text);  // the next line of any source; false at the end
  bool next_record(InputLine& line);      // tables: header (first of each source) then records
  void read_header(const std::vector<std::string>& names, int64_t number);
  void fill_fields(const std::vector<std::string>& fields, InputLine& line) const;  // tsv, csv
  void fill_json_fields(const std::string& raw, InputLine& line) const;             // jsonl

  std::vector<std::string> paths_;
  size_t next_path_ = 0;
  std::unique_ptr<std::ifstream> file_;
  std::istream* in_ = nullptr;
  std::string source_;
  int64_t line_number_ = 0;
  int64_t lines_read_ = 0;  // every source
  uint64_t bytes_read_ = 0;
  uint64_t bytes_total_ = 0;
  TableOptions table_;
  bool header_pending_ = false;  // tables: the source just opened has not given its header yet
  size_t header_fields_ = 0;
  int64_t text_column_ = -1, pair_column_ = -1, id_column_ = -1;  // tsv, csv
  bool source_changed_ = false;
  bool numbered_columns_ = false;  // --no-header: the current source's columns are 1, 2, ...
};

// The model input for one line: the whole line for a single-text model; for a pair model
// exactly two tab-separated columns (else fcabert::Error "FILE:LINE: expected two
// tab-separated columns ..."); a table record's text (and pair) fields, or its error. Invalid
// UTF-8 throws naming FILE:LINE and the byte offset from the start of the line (the field).
// Truncated to max_len tokens (Encoding::truncated).
Encoding encode_line(const Tokenizer& tokenizer, const InputLine& line, bool pair, int64_t max_len);

// A single-text line as windows of options.max_len tokens (Tokenizer::encode_windows); invalid
// UTF-8 throws naming FILE:LINE as encode_line does.
std::vector<Encoding> encode_line_windows(const Tokenizer& tokenizer, const InputLine& line,
                                          const WindowOptions& options);

}  // namespace fcabert
