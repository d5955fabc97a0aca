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
      stop = Stopped(e.what());
      return false;
    }
    hash_.update(line.text);
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

// One batch's lines and what became of them; its buffers are reused from batch to batch.
class Batch {
 public:
  explicit Batch(size_t size) : lines_(size), errors_(size) {}

  // Reads and encodes up to a batch of lines. Returns the Stopped error of a line that ends
  // the run (the lines before it stay in the batch), or nothing.
  std::optional<Stopped> fill(HashedInput& input, const Tokenizer& tokenizer, bool pair, int64_t max_len,
                              bool skip_bad_rows, Summary& summary) {
    encodings_.clear();
    count_ = 0;
    std::optional<Stopped> stop;
    while (count_ < lines_.size()) {
      InputLine& line = lines_[count_];
      if (!input.next(line, stop)) return stop;
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
  // The text is encoded (or passed over); a huge line must not keep its buffer for the rest
  // of the run.
  static void release_if_huge(InputLine& line) {
    if (line.text.capacity() > (size_t{1} << 20)) std::string().swap(line.text);
  }

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
  validate_shard(options.shard);
  const Model& model = session.model();
  const ModelInfo& info = model.info();
  Summary summary;
  summary.max_len = resolve_max_len(options.max_len, info);
  HashedInput input(reader);
  Batch batch(static_cast<size_t>(options.batch_size));
  std::optional<Stopped> stop;
  for (int64_t b = 0; !stop; ++b) {
    if (!options.shard.owns(b)) {
      if (batch.pass_over(input, stop) == 0) break;
      continue;
    }
    stop = batch.fill(input, model.tokenizer(), info.head.pair_input, summary.max_len, options.skip_bad_rows,
                      summary);
    if (batch.size() == 0) break;
    const std::vector<Prediction> predictions = session.run(batch.encodings());
    if (on_batch) on_batch(batch.rows(predictions));
    summary.lines += static_cast<int64_t>(batch.size());
  }
  if (stop) throw *stop;
  summary.lines_read = input.lines();
  summary.input_sha256 = input.hex_digest();
  return summary;
}

}  // namespace fcabert::classify
