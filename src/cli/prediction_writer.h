#pragma once
// Writes one result row per input line to stdout in the chosen format:
//   text   "positive\t0.9871"            (regression: "score\t3.2100")
//   jsonl  {"line":1,"label":"positive","probabilities":{"negative":0.0129,"positive":0.9871},
//           "logits":[-2.1,2.2]}  (regression: {"line":1,"score":3.21,"logits":[3.21]};
//          "file" is added when several inputs are read, "truncated":true when cut to --max-len)
//   tsv    a header row, then file, line, label, then one column per label probability
//   csv    the same columns, comma-separated, quoted as RFC 4180 wants where a cell needs it
// With ids (classify --id-column), every row carries its record's id: text "\tid=ID" at the
// end, jsonl "id", tsv and csv an "id" column after "line".
// A multi-label head (a sigmoid per label) gives every label above the threshold, "(none)" when
// no label is, and every label's probability:
//   text   "toxic,insult\ttoxic=0.9123 obscene=0.0100 insult=0.8011 threat=0.0200"
//   jsonl  {"line":1,"labels":["toxic","insult"],"probabilities":{"toxic":0.9123,...},"logits":[...]}
//   tsv    file, line, labels ("toxic,insult" or "(none)"), one column per label probability
// With windows (classify --long window), each row says how many windows its text had: text
// adds "\twindows=N", jsonl "windows":N, tsv a last column "windows".
// With explain (classify --explain), what FCA did to each example is added: in jsonl as
//   "fca":{"tokens":n0,"layers":[{"tokens_in":12,"tokens_out":8,"reduced":true,
//          "kept":[0,3,"c0.1",...]}]}   (row identities: docs/FCA.md)
// and in text as one indented line per layer listing the fine tokens kept.
#include <ostream>
#include <string>
#include <vector>

#include "fcabert/config.h"
#include "fcabert/engine.h"
#include "fcabert/input.h"

namespace fcabert::cli {

enum class OutputFormat { kText, kJsonl, kTsv, kCsv };
OutputFormat parse_output_format(const std::string& name);  // throws fcabert::Error

class PredictionWriter {
 public:
  // `tokenizer` names the kept tokens in text-mode explanations.
  // `threshold`: a multi-label head's labels are those with a probability above it.
  PredictionWriter(std::ostream& out, OutputFormat format, const HeadConfig& head, const Tokenizer& tokenizer,
                   bool name_sources, bool explain, double threshold = 0.5, bool windows = false,
                   bool ids = false);
  // `windows`: how many windows the text had (shown only when the writer was made with windows).
  void write(const InputLine& line, const Encoding& encoding, const Prediction& prediction,
             int64_t windows = 1);
  // The row of an input line skipped by classify --skip-bad-rows, so that output rows stay
  // one per input line: text "error: MESSAGE" (no tab, unlike every result row),
  // jsonl {"line":N,"error":"MESSAGE"} (no "label"), tsv FILE, LINE and empty columns.
  // `message` names FILE:LINE and the problem (the same text as the warning on stderr).
  void write_error(const InputLine& line, const std::string& message);
  void flush() { out_.flush(); }

 private:
  void write_header();
  void write_text(const InputLine& line, const Encoding& encoding, const Prediction& prediction,
                  int64_t windows);
  void write_jsonl(const InputLine& line, const Encoding& encoding, const Prediction& prediction,
                   int64_t windows);
  void write_table_row(const InputLine& line, const Prediction& prediction, int64_t windows);  // tsv, csv
  void write_cells(const std::vector<std::string>& cells);
  std::vector<std::string> row_start(const InputLine& line) const;
  size_t best_label(const Prediction& prediction) const;
  // A multi-label prediction's labels above the threshold, comma-joined, or "(none)".
  std::string label_set(const Prediction& prediction) const;
  void write_text_explanation(const Encoding& encoding, const SequenceTrace& trace);

  std::ostream& out_;
  OutputFormat format_;
  const HeadConfig& head_;
  const Tokenizer& tokenizer_;
  bool name_sources_;
  bool explain_;
  double threshold_;
  bool windows_;
  bool ids_;
};

}  // namespace fcabert::cli
