// classify::classify_lines: read, encode, run and hand back a stream of lines in batches.
#include "fcabert/classify.h"

#include <spdlog/spdlog.h>

#include <optional>
#include <string>
#include <vector>

#include "fcabert/digest.h"

namespace fcabert::classify {
namespace {

// The input lines in order, hashed as they are read (Summary::input_sha256), whoever's batch
// they are in: the shards of one job prove that they read the same input.
class HashedInput {
 public:
  explicit HashedInput(LineReader& reader) : reader_(reader) {}

  // Reads the next line; false at the end. A read error is returned as Stopped in `stop`.
  bool next(InputLine& line, std::optional<Stopped>& stop) {
    try {
      if (!reader_.next(line)) return false;
    } catch (const Error& e) {  // a read error, not a bad row: never skipped
      stop = Stopped(e.what(), false);
      return false;
    }
    hash_.update(line.record());
    hash_.update("\n");
    ++lines_;
    return true;
  }

  int64_t lines() const { return lines_; }
  std::string hex_digest() const { return hash_.hex_digest(); }

 private:
  LineReader& reader_;
  Sha256 hash_;
  int64_t lines_ = 0;
};

// How a line becomes model input: one Encoding cut to max_len, or (LongTexts::kWindow) its
// windows.
class LineEncoder {
 public:
  LineEncoder(const Tokenizer& tokenizer, bool pair, int64_t max_len, const Options& options)
      : tokenizer_(tokenizer),
        pair_(pair),
        max_len_(max_len),
        windows_(options.long_texts == LongTexts::kWindow),
        window_options_(windows_ ? make_window_options(max_len, options.stride, options.max_windows)
                                 : WindowOptions{}) {}

  // Appends the line's encodings to `out` and returns how many there are. Throws
  // fcabert::Error naming FILE:LINE for a bad row.
  size_t encode(const InputLine& line, std::vector<Encoding>& out) const {
    if (!windows_) {
      out.push_back(encode_line(tokenizer_, line, pair_, max_len_));
      return 1;
    }
    std::vector<Encoding> windows = encode_line_windows(tokenizer_, line, window_options_);
    for (Encoding& window : windows) out.push_back(std::move(window));
    return windows.size();
  }

 private:
  const Tokenizer& tokenizer_;
  bool pair_;
  int64_t max_len_;
  bool windows_;
  WindowOptions window_options_;
};

// One batch's lines and what became of them; its buffers are reused from batch to batch.
class Batch {
 public:
  explicit Batch(size_t size) : lines_(size), errors_(size), window_counts_(size), averaged_(size) {}

  // Reads and encodes up to a batch of lines. Returns the Stopped error of a line that ends
  // the run (the lines before it stay in the batch), or nothing.
  std::optional<Stopped> fill(HashedInput& input, const LineEncoder& encoder, bool skip_bad_rows,
                              Summary& summary) {
    encodings_.clear();
    count_ = 0;
    std::optional<Stopped> stop;
    while (count_ < lines_.size()) {
      InputLine& line = lines_[count_];
      if (!input.next(line, stop)) return stop;
      try {
        const size_t windows = encoder.encode(line, encodings_);
        window_counts_[count_] = windows;
        errors_[count_].reset();
        summary.empty += line.text.empty();
        summary.truncated += encodings_.back().truncated;
        summary.windowed += windows > 1;
      } catch (const Error& e) {
        if (!skip_bad_rows) return Stopped(e.what());
        spdlog::warn("{} (skipped)", e.what());
        errors_[count_] = e.what();
        window_counts_[count_] = 0;
        ++summary.skipped;
      }
      release_if_huge(line);
      ++count_;
    }
    return std::nullopt;
  }

  // Reads up to a batch of lines that belong to another shard, without encoding them.
  // Returns how many were read (0 at the end) and sets `stop` for a read error.
  size_t pass_over(HashedInput& input, std::optional<Stopped>& stop) {
    count_ = 0;
    encodings_.clear();
    size_t passed = 0;
    while (passed < lines_.size() && input.next(lines_.front(), stop)) {
      release_if_huge(lines_.front());
      ++passed;
    }
    return passed;
  }

  size_t size() const { return count_; }
  const std::vector<Encoding>& encodings() const { return encodings_; }

  // The rows of the batch in input order, given the predictions of encodings(); a text's
  // windows are averaged (average_of_windows).
  const std::vector<Row>& rows(const std::vector<Prediction>& predictions, HeadKind kind) {
    rows_.clear();
    for (size_t i = 0, j = 0; i < count_; ++i) {
      Row row;
      row.line = &lines_[i];
      if (errors_[i]) {
        row.error = &*errors_[i];
      } else {
        const size_t windows = window_counts_[i];
        row.windows = static_cast<int64_t>(windows);
        row.encoding = &encodings_[j + windows - 1];
        if (windows == 1) {
          row.prediction = &predictions[j];
        } else {
          averaged_[i] = average_of_windows(&predictions[j], windows, kind);
          row.prediction = &averaged_[i];
        }
        j += windows;
      }
      rows_.push_back(row);
    }
    return rows_;
  }

 private:
  // The text is encoded (or passed over); a huge line must not keep its buffer for the rest
  // of the run.
  static void release_if_huge(InputLine& line) {
    if (line.text.capacity() > (size_t{1} << 20)) std::string().swap(line.text);
    if (line.raw.capacity() > (size_t{1} << 20)) std::string().swap(line.raw);
  }

  std::vector<InputLine> lines_;
  std::vector<std::optional<std::string>> errors_;  // per slot: why the line was skipped
  std::vector<size_t> window_counts_;               // per slot: its encodings (0 for a bad row)
  std::vector<Prediction> averaged_;                // per slot with several windows: their average
  std::vector<Encoding> encodings_;                 // of the lines without an error, windows in order
  std::vector<Row> rows_;
  size_t count_ = 0;
};

}  // namespace

Summary classify_lines(Session& session, LineReader& reader, const Options& options,
                       const BatchCallback& on_batch) {
  if (options.batch_size < 1) throw Error("--batch-size must be at least 1");
  validate_shard(options.shard);
  const Model& model = session.model();
  const ModelInfo& info = model.info();
  Summary summary;
  summary.max_len = resolve_max_len(options.max_len, info);
  if (options.long_texts == LongTexts::kWindow) {
    if (info.head.pair_input)
      throw Error("--long window takes single-text models; " + model.path() +
                  " takes sentence pairs (use --long truncate)");
  }
  const LineEncoder encoder(model.tokenizer(), info.head.pair_input, summary.max_len, options);
  HashedInput input(reader);
  Batch batch(static_cast<size_t>(options.batch_size));
  std::optional<Stopped> stop;
  for (int64_t b = 0; !stop; ++b) {
    if (!options.shard.owns(b)) {
      if (batch.pass_over(input, stop) == 0) break;
      continue;
    }
    stop = batch.fill(input, encoder, options.skip_bad_rows, summary);
    if (batch.size() == 0) break;
    const std::vector<Prediction> predictions = session.run(batch.encodings());
    if (on_batch) on_batch(batch.rows(predictions, info.head.kind));
    summary.lines += static_cast<int64_t>(batch.size());
  }
  if (stop) throw *stop;
  summary.lines_read = input.lines();
  summary.input_sha256 = input.hex_digest();
  return summary;
}

}  // namespace fcabert::classify
