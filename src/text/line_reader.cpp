#include <algorithm>
#include <filesystem>
#include <iostream>
#include <nlohmann/json.hpp>

#include "fcabert/error.h"
#include "fcabert/input.h"

namespace fcabert {
namespace {

// Drops the '\r' of a CRLF line end.
void drop_carriage_return(std::string& text) {
  if (!text.empty() && text.back() == '\r') text.pop_back();
}

// Splits one CSV record (RFC 4180). Returns false when the record ends inside a quoted field,
// i.e. it goes on on the next line. `error` says why a complete record is malformed.
bool split_csv(const std::string& record, std::vector<std::string>& fields, std::string& error) {
  fields.assign(1, std::string());
  error.clear();
  enum class State { kStart, kUnquoted, kQuoted, kAfterQuote } state = State::kStart;
  const auto fail = [&](const std::string& why) {
    if (error.empty()) error = "field " + std::to_string(fields.size()) + ": " + why;
  };
  for (const char c : record) {
    switch (state) {
      case State::kStart:
        if (c == '"') {
          state = State::kQuoted;
          break;
        }
        state = State::kUnquoted;
        [[fallthrough]];
      case State::kUnquoted:
        if (c == ',') {
          fields.emplace_back();
          state = State::kStart;
        } else {
          if (c == '"')
            fail("a quote inside an unquoted field (quote the whole field and double the quote: \"\")");
          fields.back() += c;
        }
        break;
      case State::kQuoted:
        if (c == '"')
          state = State::kAfterQuote;
        else
          fields.back() += c;
        break;
      case State::kAfterQuote:
        if (c == '"') {
          fields.back() += '"';
          state = State::kQuoted;
        } else if (c == ',') {
          fields.emplace_back();
          state = State::kStart;
        } else {
          fail("text after the closing quote");
          fields.back() += c;
          state = State::kUnquoted;
        }
        break;
    }
  }
  return state != State::kQuoted;
}

std::vector<std::string> split_tabs(const std::string& record) {
  std::vector<std::string> fields(1);
  for (const char c : record) {
    if (c == '\t')
      fields.emplace_back();
    else
      fields.back() += c;
  }
  return fields;
}

std::string join(const std::vector<std::string>& names) {
  std::string out;
  for (const std::string& name : names) out += (out.empty() ? "" : ", ") + name;
  return out;
}

// A JSON string field, or a number (ids), as text; sets `error` when it is missing or of
// another type.
std::string json_field(const nlohmann::json& object, const std::string& name, bool number_ok,
                       const char* flag, std::string& error) {
  const auto it = object.find(name);
  if (it == object.end()) {
    if (error.empty()) error = "no field \"" + name + "\" (name the field with " + flag + ")";
    return "";
  }
  if (it->is_string()) return it->get<std::string>();
  if (number_ok && it->is_number()) return it->dump();
  if (error.empty()) error = "field \"" + name + "\" is " + it->type_name() + ", not a string";
  return "";
}

}  // namespace

const char* input_format_name(InputFormat format) {
  switch (format) {
    case InputFormat::kText:
      return "text";
    case InputFormat::kTsv:
      return "tsv";
    case InputFormat::kCsv:
      return "csv";
    case InputFormat::kJsonl:
      return "jsonl";
  }
  return "text";
}

InputFormat parse_input_format(const std::string& name) {
  for (InputFormat format : {InputFormat::kText, InputFormat::kTsv, InputFormat::kCsv, InputFormat::kJsonl})
    if (name == input_format_name(format)) return format;
  throw Error("--input-format '" + name + "': use text, tsv, csv or jsonl");
}

LineReader::LineReader(std::vector<std::string> paths, TableOptions table)
    : paths_(std::move(paths)), table_(std::move(table)) {
  if (table_.format != InputFormat::kText && table_.text.empty())
    throw Error("--text-column / --text-field must name the text column");
  if (paths_.empty()) paths_.push_back("-");
  for (const auto& path : paths_) {
    if (path == "-") continue;
    std::error_code ec;
    if (!std::filesystem::is_regular_file(path, ec))
      throw Error(path +
                  ": no such file (or not a regular file); pass a text file with one example per line");
    bytes_total_ += std::filesystem::file_size(path, ec);
  }
}

bool LineReader::open_next() {
  if (next_path_ == paths_.size()) return false;
  const std::string& path = paths_[next_path_++];
  line_number_ = 0;
  header_pending_ = table_.format == InputFormat::kTsv || table_.format == InputFormat::kCsv;
  numbered_columns_ = header_pending_ && !table_.header;
  source_changed_ = true;
  if (path == "-") {
    file_.reset();
    in_ = &std::cin;
    source_ = "<stdin>";
    return true;
  }
  file_ = std::make_unique<std::ifstream>(path, std::ios::binary);
  if (!*file_) throw Error(path + ": cannot open for reading (check the permissions)");
  in_ = file_.get();
  source_ = path;
  return true;
}

void LineReader::set_pair_input(bool pair_input) {
  if (next_path_ > 0) throw Error("LineReader::set_pair_input: input was already read");
  table_.pair_input = pair_input;
}

bool LineReader::next_physical(std::string& text) {
  while (in_ == nullptr || !std::getline(*in_, text)) {
    if (in_ != nullptr && in_->bad())
      throw Error(source_ + ": read error after line " + std::to_string(line_number_));
    if (!open_next()) return false;
  }
  bytes_read_ += text.size() + 1;
  ++line_number_;
  return true;
}

bool LineReader::next(InputLine& line) {
  if (table_.format != InputFormat::kText) return next_record(line);
  if (!next_physical(line.text)) return false;
  line.source = source_;
  line.number = line_number_;
  line.index = lines_read_++;
  return true;
}

void LineReader::read_header(const std::vector<std::string>& names, int64_t number) {
  const auto column = [&](const std::string& name, const char* flag) -> int64_t {
    const auto it = std::find(names.begin(), names.end(), name);
    if (it == names.end())
      throw Error(source_ + ":" + std::to_string(number) + ": the header has no column \"" + name +
                  "\" (it has " + join(names) + "); name the column with " + flag);
    return it - names.begin();
  };
  header_fields_ = names.size();
  text_column_ = column(table_.text, "--text-column");
  pair_column_ = table_.pair_input ? column(table_.pair, "--pair-column") : -1;
  id_column_ = table_.id.empty() ? -1 : column(table_.id, "--id-column");
}

void LineReader::fill_fields(const std::vector<std::string>& fields, InputLine& line) const {
  if (id_column_ >= 0 && static_cast<size_t>(id_column_) < fields.size())
    line.id = fields[static_cast<size_t>(id_column_)];  // error rows keep their id where it can be told
  if (fields.size() != header_fields_) {
    if (line.error.empty())
      line.error = "has " + std::to_string(fields.size()) + " fields but the header has " +
                   std::to_string(header_fields_);
    return;
  }
  line.text = fields[static_cast<size_t>(text_column_)];
  if (pair_column_ >= 0) line.pair = fields[static_cast<size_t>(pair_column_)];
}

void LineReader::fill_json_fields(const std::string& raw, InputLine& line) const {
  const nlohmann::json object = nlohmann::json::parse(raw, nullptr, false);
  if (object.is_discarded() || !object.is_object()) {
    line.error = raw.empty() ? "an empty line, not a JSON object" : "not a JSON object";
    return;
  }
  line.text = json_field(object, table_.text, false, "--text-field", line.error);
  if (table_.pair_input) line.pair = json_field(object, table_.pair, false, "--pair-field", line.error);
  if (!table_.id.empty()) line.id = json_field(object, table_.id, true, "--id-field", line.error);
}

bool LineReader::next_record(InputLine& line) {
  for (;;) {
    std::string raw;
    if (!next_physical(raw)) return false;
    source_changed_ = false;  // from here on, a new source means the record did not end
    drop_carriage_return(raw);
    const int64_t first_line = line_number_;
    const std::string source = source_;  // a record never ending may run into the next source
    std::vector<std::string> fields;
    std::string error;
    if (table_.format == InputFormat::kCsv) {
      while (!split_csv(raw, fields, error)) {  // a quoted field goes on on the next line
        std::string more;
        if (!next_physical(more) || source_changed_)
          throw Error(
              source + ":" + std::to_string(first_line) +
              ": a quoted field is never closed (RFC 4180: a quote inside a quoted field is written \"\")");
        drop_carriage_return(more);
        raw += '\n';
        raw += more;
      }
    } else if (table_.format == InputFormat::kTsv) {
      fields = split_tabs(raw);
    }
    if (header_pending_) {
      header_pending_ = false;
      if (!numbered_columns_) {
        read_header(fields, first_line);
        continue;
      }
      // --no-header: the first record names the columns 1, 2, ... and is a record itself.
      std::vector<std::string> numbers;
      for (size_t i = 1; i <= fields.size(); ++i) numbers.push_back(std::to_string(i));
      read_header(numbers, first_line);
    }
    line = InputLine{};
    line.table = true;
    line.source = source_;
    line.number = first_line;
    line.index = lines_read_++;
    line.error = error;
    if (table_.format == InputFormat::kJsonl)
      fill_json_fields(raw, line);
    else
      fill_fields(fields, line);
    line.raw = std::move(raw);
    return true;
  }
}

}  // namespace fcabert
