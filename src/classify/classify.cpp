// classify::classify_lines: read, encode, run and hand back a stream of lines in batches.
#include "fcabert/classify.h"

#include <spdlog/spdlog.h>

#include <optional>
#include <string>
#include <vector>

namespace fcabert::classify {
namespace {

// One batch's lines and what became of them; its buffers are reused from batch to batch.
class Batch {
 public:
  explicit Batch(size_t size) : lines_(size), errors_(size) {}

  // Reads and encodes up to a batch of lines. Returns the Stopped error of a line that ends
  // the run (the lines before it stay in the batch), or nothing.
  std::optional<Stopped> fill(LineReader& reader, const Tokenizer& tokenizer, bool pair, int64_t max_len,
                              bool skip_bad_rows, Summary& summary) {
    encodings_.clear();
    count_ = 0;
    while (count_ < lines_.size()) {
      InputLine& line = lines_[count_];
      try {
        if (!reader.next(line)) break;
      } catch (const Error& e) {  // a read error, not a bad row: never skipped
        return Stopped(e.what());
      }
      try {
        encodings_.push_back(encode_line(tokenizer, line, pair, max_len));
        errors_[count_].reset();
        summary.empty += line.text.empty();
        summary.truncated += encodings_.back().truncated;
      } catch (const Error& e) {
        if (!skip_bad_rows) return Stopped(e.what());
        spdlog::warn("{} (skipped)", e.what());
        errors_[count_] = e.what();
        ++summary.skipped;
      }
      // The text is encoded; a huge line must not keep its buffer for the rest of the run.
      if (line.text.capacity() > (size_t{1} << 20)) std::string().swap(line.text);
      ++count_;
    }
    return std::nullopt;
  }

  size_t size() const { return count_; }
  const std::vector<Encoding>& encodings() const { return encodings_; }

  // The rows of the batch in input order, given the predictions of encodings().
  const std::vector<Row>& rows(const std::vector<Prediction>& predictions) {
    rows_.clear();
    for (size_t i = 0, j = 0; i < count_; ++i) {
      Row row;
      row.line = &lines_[i];
      if (errors_[i]) {
        row.error = &*errors_[i];
      } else {
        row.encoding = &encodings_[j];
        row.prediction = &predictions[j];
        ++j;
      }
      rows_.push_back(row);
    }
    return rows_;
  }

 private:
  std::vector<InputLine> lines_;
  std::vector<std::optional<std::string>> errors_;  // per slot: why the line was skipped
  std::vector<Encoding> encodings_;                 // of the lines without an error
  std::vector<Row> rows_;
  size_t count_ = 0;
};

}  // namespace

Summary classify_lines(Session& session, LineReader& reader, const Options& options,
                       const BatchCallback& on_batch) {
  if (options.batch_size < 1) throw Error("--batch-size must be at least 1");
  const Model& model = session.model();
  const ModelInfo& info = model.info();
  Summary summary;
  summary.max_len = resolve_max_len(options.max_len, info);
  Batch batch(static_cast<size_t>(options.batch_size));
  std::optional<Stopped> stop;
  while (!stop) {
    stop = batch.fill(reader, model.tokenizer(), info.head.pair_input, summary.max_len, options.skip_bad_rows,
                      summary);
    if (batch.size() == 0) break;
    const std::vector<Prediction> predictions = session.run(batch.encodings());
    if (on_batch) on_batch(batch.rows(predictions));
    summary.lines += static_cast<int64_t>(batch.size());
  }
  if (stop) throw *stop;
  return summary;
}

}  // namespace fcabert::classify
