#pragma once
// Classifying a stream of text lines (what `fcabert classify` runs): lines are read from a
// LineReader, encoded (include/fcabert/input.h), run through a Session in packed batches of
// Options::batch_size in input order, and handed back batch by batch, one Row per input line
// and in input order, so a caller can write results as they come and memory does not grow
// with the input.
//
// Awkward input:
// - an empty line is classified as an empty text ([CLS] [SEP]) and counted (Summary::empty);
// - a line longer than max_len tokens is truncated and counted (Summary::truncated), or, with
//   LongTexts::kWindow (single-text models), run as consecutive windows of max_len tokens
//   sharing Options::stride word pieces (Tokenizer::encode_windows), at most
//   Options::max_windows of them (beyond, the text is truncated and counted): its Row's
//   prediction is average_of_windows (engine.h: the mean of the windows' logits) and
//   Row::windows says how many there were. A line's windows run in its batch;
// - a bad row (invalid UTF-8, or a pair line without exactly two tab-separated columns)
//   stops the run with classify::Stopped naming FILE:LINE, after the rows before it (those
//   of its batch included) have been run and handed to the callback; with
//   Options::skip_bad_rows it becomes a Row with `error` set instead, is logged as a
//   warning ("FILE:LINE: reason (skipped)", spdlog) and counted in Summary::skipped, and the
//   run goes on;
// - a read error stops the run the same way (never skipped).
//
// Shards (Options::shard, `classify --shard K/N`): batch b, the lines [b*B, (b+1)*B) of the
// whole input for a batch size B, belongs to shard K of N when b % N == K - 1. Every shard
// reads the whole input but encodes, runs and hands back only its own batches, so its
// batches are exactly those of an unsharded run and so are its results, bit for bit (int8's
// per-call input scales included). A bad row stops (or, skipped, is reported by) only the
// shard that owns it. include/fcabert/classify_shards.h writes and merges the shards' output.
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "fcabert/engine.h"
#include "fcabert/error.h"
#include "fcabert/input.h"
#include "fcabert/shard.h"

namespace fcabert::classify {

// What becomes of a text longer than max_len tokens.
enum class LongTexts { kTruncate, kWindow };

struct Options {
  int64_t batch_size = 32;     // input lines per batch (in window mode a line may bring several windows)
  int64_t max_len = 0;         // 0 = the model's (resolve_max_len); also the window length
  bool skip_bad_rows = false;  // a bad row becomes an error Row instead of stopping the run
  Shard shard;                 // 1/1: every batch
  LongTexts long_texts = LongTexts::kTruncate;
  int64_t stride = -1;       // kWindow: word pieces shared by consecutive windows; < 0: a quarter
                             // of a window (make_window_options)
  int64_t max_windows = 16;  // kWindow: at most this many windows per text
};

// One input line's result. Exactly one of `prediction` and `error` is set; the pointers are
// valid during the callback only.
struct Row {
  const InputLine* line = nullptr;
  const Encoding* encoding = nullptr;      // what the model saw (null for a bad row; windows: the last)
  const Prediction* prediction = nullptr;  // null for a bad row
  const std::string* error = nullptr;      // why the line was skipped: "FILE:LINE: ..."
  int64_t windows = 1;                     // LongTexts::kWindow: how many the text had
};

struct Summary {
  int64_t lines = 0;         // rows handed back, bad rows included
  int64_t empty = 0;         // empty lines classified as empty texts
  int64_t truncated = 0;     // lines cut to max_len (windows: to max_windows windows)
  int64_t windowed = 0;      // lines run as more than one window
  int64_t skipped = 0;       // bad rows (Options::skip_bad_rows)
  int64_t max_len = 0;       // the truncation length used
  int64_t lines_read = 0;    // every input line, other shards' batches included
  std::string input_sha256;  // SHA-256 of every line read, each followed by '\n'
};

// A line stopped the run; every row before it was handed back. what() names FILE:LINE.
class Stopped : public Error {
 public:
  // `bad_row`: a row that Options::skip_bad_rows would have skipped; false for what stops a
  // run regardless (a read error, a table header without the named column, an unclosed quote).
  explicit Stopped(const std::string& what, bool bad_row = true) : Error(what), bad_row_(bad_row) {}
  bool bad_row() const { return bad_row_; }

 private:
  bool bad_row_;
};

// Receives each batch's rows, in input order (InputLine::index tells where a batch starts).
using BatchCallback = std::function<void(const std::vector<Row>& rows)>;

// Classifies every line of `reader` with `session`. Throws Stopped as described above,
// fcabert::Error for bad options (naming the option), and what Session::run throws.
Summary classify_lines(Session& session, LineReader& reader, const Options& options,
                       const BatchCallback& on_batch);

}  // namespace fcabert::classify
