#include "cli/prediction_writer.h"

#include <algorithm>
#include <nlohmann/json.hpp>
#include <sstream>
#include <vector>

#include "fcabert/error.h"

namespace fcabert::cli {

OutputFormat parse_output_format(const std::string& name) {
  if (name == "text") return OutputFormat::kText;
  if (name == "jsonl") return OutputFormat::kJsonl;
  if (name == "tsv") return OutputFormat::kTsv;
  if (name == "csv") return OutputFormat::kCsv;
  throw Error("unknown --format '" + name + "'; use text, jsonl, tsv or csv");
}

namespace {

// A CSV cell (RFC 4180): quoted, with its quotes doubled, when it holds a comma, a quote or a
// line break.
std::string csv_cell(const std::string& cell) {
  if (cell.find_first_of(",\"\r\n") == std::string::npos) return cell;
  std::string quoted = "\"";
  for (const char c : cell) quoted += c == '"' ? std::string("\"\"") : std::string(1, c);
  return quoted + '"';
}

// A probability or score as every format prints it: fixed, 4 decimals.
std::string fixed4(double value) {
  std::ostringstream out;
  out.precision(4);
  out.setf(std::ios::fixed);
  out << value;
  return out.str();
}

nlohmann::ordered_json trace_to_json(const SequenceTrace& trace) {
  nlohmann::ordered_json layers = nlohmann::ordered_json::array();
  for (size_t l = 0; l < trace.layers.size(); ++l) {
    const fca::ReductionShape& shape = trace.layers[l];
    nlohmann::ordered_json kept = nlohmann::ordered_json::array();
    if (l < trace.kept.size())
      for (const fca::RowIdentity& row : trace.kept[l]) kept.push_back(fca::to_json_value(row));
    layers.push_back({{"tokens_in", shape.rows_in},
                      {"tokens_out", shape.rows_out},
                      {"reduced", shape.reduce},
                      {"kept", std::move(kept)}});
  }
  return {{"tokens", trace.tokens}, {"layers", std::move(layers)}};
}

}  // namespace

PredictionWriter::PredictionWriter(std::ostream& out, OutputFormat format, const HeadConfig& head,
                                   const Tokenizer& tokenizer, bool name_sources, bool explain,
                                   double threshold, bool windows, bool ids)
    : out_(out),
      format_(format),
      head_(head),
      tokenizer_(tokenizer),
      name_sources_(name_sources),
      explain_(explain),
      threshold_(threshold),
      windows_(windows),
      ids_(ids) {
  out_.precision(4);
  out_.setf(std::ios::fixed);
  if (format_ == OutputFormat::kTsv || format_ == OutputFormat::kCsv) write_header();
}

void PredictionWriter::write_header() {
  static constexpr const char* kFirstColumn[] = {"label", "labels", "score"};  // by HeadKind
  std::vector<std::string> cells = {"file", "line"};
  if (ids_) cells.push_back("id");
  cells.push_back(kFirstColumn[static_cast<int>(head_.kind)]);
  if (head_.kind != HeadKind::kRegression)
    for (const auto& label : head_.labels) cells.push_back("p_" + label);
  if (windows_) cells.push_back("windows");
  write_cells(cells);
}

void PredictionWriter::write_cells(const std::vector<std::string>& cells) {
  const bool csv = format_ == OutputFormat::kCsv;
  for (size_t i = 0; i < cells.size(); ++i)
    out_ << (i ? (csv ? "," : "\t") : "") << (csv ? csv_cell(cells[i]) : cells[i]);
  out_ << '\n';
}

// file, line and (with ids) id: the first cells of every tsv / csv row.
std::vector<std::string> PredictionWriter::row_start(const InputLine& line) const {
  std::vector<std::string> cells = {line.source, std::to_string(line.number)};
  if (ids_) cells.push_back(line.id);
  return cells;
}

size_t PredictionWriter::best_label(const Prediction& prediction) const {
  const auto& p = prediction.probabilities;
  return static_cast<size_t>(std::max_element(p.begin(), p.end()) - p.begin());
}

std::string PredictionWriter::label_set(const Prediction& prediction) const {
  std::string names;
  for (size_t i : labels_above(prediction, threshold_)) names += (names.empty() ? "" : ",") + head_.labels[i];
  return names.empty() ? "(none)" : names;
}

// "  layer 2: 14 -> 9 (+2 clusters): [CLS] gorgeous witty movie ..." per layer.
void PredictionWriter::write_text_explanation(const Encoding& encoding, const SequenceTrace& trace) {
  for (size_t l = 0; l < trace.layers.size(); ++l) {
    const fca::ReductionShape& shape = trace.layers[l];
    out_ << "  layer " << l << ": " << shape.rows_in << " -> " << shape.rows_out;
    if (shape.clusters > 0) out_ << " (" << shape.clusters << " clusters)";
    if (!shape.reduce) out_ << " (unchanged)";
    out_ << ':';
    if (l < trace.kept.size())
      for (const fca::RowIdentity& row : trace.kept[l]) {
        out_ << ' ';
        if (row.is_cluster())
          out_ << '<' << row.to_string() << '>';
        else
          out_ << tokenizer_.id_to_token(encoding.ids[static_cast<size_t>(row.position)]);
      }
    out_ << '\n';
  }
}

void PredictionWriter::write(const InputLine& line, const Encoding& encoding, const Prediction& prediction,
                             int64_t windows) {
  switch (format_) {
    case OutputFormat::kText:
      write_text(line, encoding, prediction, windows);
      break;
    case OutputFormat::kJsonl:
      write_jsonl(line, encoding, prediction, windows);
      break;
    case OutputFormat::kTsv:
    case OutputFormat::kCsv:
      write_table_row(line, prediction, windows);
      break;
  }
}

void PredictionWriter::write_text(const InputLine& line, const Encoding& encoding,
                                  const Prediction& prediction, int64_t windows) {
  if (head_.kind == HeadKind::kRegression) {
    out_ << head_.labels.front() << '\t' << prediction.logits.front();
  } else if (head_.kind == HeadKind::kMultiLabel) {
    out_ << label_set(prediction) << '\t';
    for (size_t i = 0; i < head_.labels.size(); ++i)
      out_ << (i ? " " : "") << head_.labels[i] << '=' << prediction.probabilities[i];
  } else {
    const size_t best = best_label(prediction);
    out_ << head_.labels[best] << '\t' << prediction.probabilities[best];
  }
  if (windows_) out_ << "\twindows=" << windows;
  if (ids_) out_ << "\tid=" << line.id;
  out_ << '\n';
  if (explain_) write_text_explanation(encoding, prediction.trace);
}

void PredictionWriter::write_jsonl(const InputLine& line, const Encoding& encoding,
                                   const Prediction& prediction, int64_t windows) {
  nlohmann::ordered_json row;
  if (name_sources_) row["file"] = line.source;
  row["line"] = line.number;
  if (ids_) row["id"] = line.id;
  if (head_.kind == HeadKind::kRegression) {
    row["score"] = prediction.logits.front();
  } else {
    if (head_.kind == HeadKind::kMultiLabel) {
      row["labels"] = nlohmann::ordered_json::array();
      for (size_t i : labels_above(prediction, threshold_)) row["labels"].push_back(head_.labels[i]);
    } else {
      row["label"] = head_.labels[best_label(prediction)];
    }
    nlohmann::ordered_json probabilities;
    for (size_t i = 0; i < head_.labels.size(); ++i)
      probabilities[head_.labels[i]] = prediction.probabilities[i];
    row["probabilities"] = probabilities;
  }
  row["logits"] = prediction.logits;
  if (windows_) row["windows"] = windows;
  if (encoding.truncated) row["truncated"] = true;
  if (explain_) row["fca"] = trace_to_json(prediction.trace);
  out_ << row.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) << '\n';
}

void PredictionWriter::write_table_row(const InputLine& line, const Prediction& prediction, int64_t windows) {
  std::vector<std::string> cells = row_start(line);
  if (head_.kind == HeadKind::kRegression) {
    cells.push_back(fixed4(prediction.logits.front()));
  } else {
    cells.push_back(head_.kind == HeadKind::kMultiLabel ? label_set(prediction)
                                                        : head_.labels[best_label(prediction)]);
    for (float p : prediction.probabilities) cells.push_back(fixed4(p));
  }
  if (windows_) cells.push_back(std::to_string(windows));
  write_cells(cells);
}

void PredictionWriter::write_error(const InputLine& line, const std::string& message) {
  switch (format_) {
    case OutputFormat::kText: {
      std::string flat = message;  // one output line per input line: no tabs or line breaks
      std::replace_if(
          flat.begin(), flat.end(), [](char c) { return c == '\t' || c == '\n' || c == '\r'; }, ' ');
      out_ << "error: " << flat << '\n';
      break;
    }
    case OutputFormat::kJsonl: {
      nlohmann::ordered_json row;
      if (name_sources_) row["file"] = line.source;
      row["line"] = line.number;
      if (ids_) row["id"] = line.id;
      row["error"] = message;
      out_ << row.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) << '\n';
      break;
    }
    case OutputFormat::kTsv:
    case OutputFormat::kCsv: {
      std::vector<std::string> cells = row_start(line);
      cells.emplace_back();  // no label
      if (head_.kind != HeadKind::kRegression) cells.resize(cells.size() + head_.labels.size());
      if (windows_) cells.emplace_back();
      write_cells(cells);
      break;
    }
  }
}

}  // namespace fcabert::cli
