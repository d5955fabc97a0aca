// classify across shards (include/fcabert/classify.h, include/fcabert/classify_shards.h):
// each shard runs exactly the batches of an unsharded run, bit for bit; the merge of the shard
// files is byte for byte the unsharded output; and every kind of shard that does not belong
// (missing, twice, another model / precision / input, incomplete, damaged) is refused by name.
#include <gtest/gtest.h>

#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "classify_test_util.h"
#include "fcabert/classify.h"
#include "fcabert/classify_shards.h"
#include "fcabert/digest.h"
#include "kernels/attention.h"
#include "kernels/linear.h"
#include "model/encoder_layer.h"

namespace fcabert {
namespace {

using classify::Row;

// What a caller prints for a row (a stand-in for the CLI's formats: the library never looks
// inside the rendered bytes): FILE:LINE, then every logit's bits, or the error.
std::string render(const Row& row) {
  std::ostringstream out;
  out << row.line->source << ':' << row.line->number;
  if (row.error) {
    out << "\terror " << *row.error;
  } else {
    out.precision(9);
    for (float logit : row.prediction->logits) out << '\t' << logit;
  }
  out << '\n';
  return out.str();
}

constexpr const char* kPreamble = "source\tlogits\n";

class ClassifyShards : public ClassifyLines {
 protected:
  void SetUp() override {
    ClassifyLines::SetUp();
    std::vector<std::string> lines;
    const std::vector<std::string> words = {"the", "a", "good", "bad", "movie"};
    for (size_t i = 0; i < 23; ++i) {  // 23 lines: the last batch of 4 is short
      std::string line;
      for (size_t w = 0; w <= i % 7; ++w) line += (w ? " " : "") + words[(i + w) % words.size()];
      lines.push_back(i == 9 ? "" : line);  // an empty text among them
    }
    input_ = write_lines("in.txt", lines);
  }

  classify::Options options(Shard shard = {}) const { return {4, 0, true, shard}; }

  // The unsharded output: the preamble, then every row rendered.
  std::string whole(const std::string& input) {
    LineReader reader({input});
    Session session(model_);
    std::string out = kPreamble;
    classify::classify_lines(session, reader, options(), [&](const std::vector<Row>& rows) {
      for (const Row& row : rows) out += render(row);
    });
    return out;
  }

  // Runs shard K/N of `input` into a shard file; `finish` false leaves it as a failed run would.
  std::string shard_file(const std::string& input, Shard shard, Precision precision = Precision::kFp32,
                         bool finish = true) {
    const std::string path = (dir_ / ("shard-" + std::to_string(++files_) + ".jsonl")).string();
    std::ofstream out(path, std::ios::binary);
    const auto model = precision == Precision::kFp32 ? model_ : Model::load(model_->path(), {1, precision});
    Session session(model);
    LineReader reader({input});
    classify::ShardWriter writer(
        out, classify::shard_header(session, options(shard), "{\"format\":\"test\"}", kPreamble));
    const classify::Summary summary =
        classify::classify_lines(session, reader, options(shard), [&](const std::vector<Row>& rows) {
          std::string text;
          for (const Row& row : rows) text += render(row);
          writer.write_batch(rows.front().line->index, static_cast<int64_t>(rows.size()), text);
        });
    if (finish) writer.finish(summary);
    return path;
  }

  std::string merged(const std::vector<std::string>& paths) {
    std::ostringstream out;
    classify::merge_shards(paths, out);
    return out.str();
  }

  // Expects merge_shards to refuse `paths` with an error containing `reason`, and to write nothing.
  void expect_refused(const std::vector<std::string>& paths, const std::string& reason) {
    std::ostringstream out;
    try {
      classify::merge_shards(paths, out);
      ADD_FAILURE() << "merged, but expected: " << reason;
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(reason), std::string::npos) << e.what();
    }
    EXPECT_EQ(out.str(), "");
  }

  std::string input_;
  int files_ = 0;  // shard files written so far (each gets a name of its own)
};

TEST_F(ClassifyShards, EachShardRunsEveryNthBatchOfTheWholeInput) {
  std::vector<std::vector<int64_t>> first_lines(3);
  std::vector<classify::Summary> summaries;
  for (int64_t k = 1; k <= 3; ++k) {
    LineReader reader({input_});
    Session session(model_);
    summaries.push_back(
        classify::classify_lines(session, reader, options({k, 3}), [&](const std::vector<Row>& rows) {
          first_lines[static_cast<size_t>(k - 1)].push_back(rows.front().line->index);
          for (const Row& row : rows) EXPECT_EQ(row.line->index, row.line->number - 1);  // one source
        }));
  }
  // 23 lines in batches of 4: batches 0..5 start at lines 0, 4, ..., 20; round-robin over shards.
  EXPECT_EQ(first_lines[0], (std::vector<int64_t>{0, 12}));
  EXPECT_EQ(first_lines[1], (std::vector<int64_t>{4, 16}));
  EXPECT_EQ(first_lines[2], (std::vector<int64_t>{8, 20}));
  EXPECT_EQ(summaries[0].lines + summaries[1].lines + summaries[2].lines, 23);
  EXPECT_EQ(summaries[2].lines, 7);  // batch 2 (4 lines) and the short batch 5 (3 lines)
  EXPECT_EQ(summaries[2].empty, 1);  // line index 9 is in batch 2
  for (const classify::Summary& summary : summaries) {
    EXPECT_EQ(summary.lines_read, 23);                     // every shard reads the whole input
    EXPECT_EQ(summary.input_sha256, file_sha256(input_));  // every line ends with '\n'
  }
}

TEST_F(ClassifyShards, MergedShardsAreTheUnshardedOutputByteForByte) {
  const std::string expected = whole(input_);
  EXPECT_EQ(merged({shard_file(input_, {3, 3}), shard_file(input_, {1, 3}), shard_file(input_, {2, 3})}),
            expected);
  EXPECT_EQ(merged({shard_file(input_, {1, 1})}), expected);
  // More shards than batches: the shards without a batch hold none, and merge all the same.
  std::vector<std::string> eight;
  for (int64_t k = 1; k <= 8; ++k) eight.push_back(shard_file(input_, {k, 8}));
  EXPECT_EQ(merged(eight), expected);
  // int8's per-call input scales depend on the batch; a shard's batches are the unsharded ones.
  std::vector<std::string> int8;
  for (int64_t k = 1; k <= 2; ++k) int8.push_back(shard_file(input_, {k, 2}, Precision::kInt8));
  std::ostringstream int8_whole;
  {
    const auto model = Model::load(model_->path(), {1, Precision::kInt8});
    Session session(model);
    LineReader reader({input_});
    int8_whole << kPreamble;
    classify::classify_lines(session, reader, options(), [&](const std::vector<Row>& rows) {
      for (const Row& row : rows) int8_whole << render(row);
    });
  }
  EXPECT_EQ(merged(int8), int8_whole.str());
}

TEST_F(ClassifyShards, BadRowsAndEmptyInputMergeAsOneRunWouldPrintThem) {
  const std::string bad = write_lines("bad.txt", {"good", "the \xff movie", "bad", "a", "movie", "the"});
  EXPECT_EQ(merged({shard_file(bad, {1, 2}), shard_file(bad, {2, 2})}), whole(bad));  // skipped: error row
  const std::string empty = write_lines("empty.txt", {});
  EXPECT_EQ(merged({shard_file(empty, {2, 2}), shard_file(empty, {1, 2})}), kPreamble);
  EXPECT_EQ(whole(empty), kPreamble);
}

TEST_F(ClassifyShards, ABadRowStopsOnlyTheShardThatOwnsIt) {
  const std::string bad = write_lines("stop.txt", {"good", "bad", "a", "the \xff movie", "movie"});
  Session session(model_);
  LineReader first({bad});
  EXPECT_NO_THROW(classify::classify_lines(session, first, {2, 0, false, {1, 2}}, {}));  // lines 1-2, 5
  LineReader second({bad});
  EXPECT_THROW(classify::classify_lines(session, second, {2, 0, false, {2, 2}}, {}), classify::Stopped);
}

TEST_F(ClassifyShards, MergeRefusesShardsThatDoNotMakeOneJob) {
  const std::string s1 = shard_file(input_, {1, 3}), s2 = shard_file(input_, {2, 3}),
                    s3 = shard_file(input_, {3, 3});
  expect_refused({s1, s2}, "shard(s) 3 of 3 are missing");
  expect_refused({s1, s2, s2, s3}, "shard 2/3 appears in both");
  // The header names the arithmetic GEMM by GEMM and that of attention, so int8 shards from
  // CPUs that run the FFN down-projection or attention differently (per-row int8, bf16 or
  // fp32) would not merge either.
  const BertConfig& bert = model_->info().bert;
  const bool bf16_attention = kernels::bf16_attention_supported(bert.hidden_size / bert.num_heads);
  const std::string int8_here =
      model::LayerPrecisions::for_model(Precision::kInt8, model::LayerPrecisions::int8_down_projection_here(),
                                        bf16_attention)
          .describe();
  EXPECT_EQ(int8_here.rfind("int8 (FFN down-projection ", 0), 0u) << int8_here;
  expect_refused({s1, s2, shard_file(input_, {3, 3}, Precision::kInt8)},
                 "differ in precision: " + int8_here + " against fp32");
  expect_refused({s1, s2, shard_file(input_, {3, 4})}, "differ in shard count: 4 against 3");
  expect_refused({s1, s2, shard_file(input_, {3, 3}, Precision::kFp32, false)}, "shard 3/3 is incomplete");
  const std::string other_input = write_lines("other.txt", {"the good movie"});
  expect_refused({s1, s2, shard_file(other_input, {3, 3})}, "it read other input lines than");
  expect_refused({s1, s2, input_}, "not an fcabert classify shard file");
  expect_refused({s1, s2, (dir_ / "nowhere.jsonl").string()}, "cannot open the shard file");

  // Another model: the same architecture with other weights (its file's SHA-256 differs).
  ModelInfo info = model_->info();
  const std::string other_model = (dir_ / "other.fcab").string();
  write_model_file(other_model, info, model_test::random_bert_tensors(info.bert, 3, 14));
  {
    std::ofstream out(dir_ / "other-model.jsonl", std::ios::binary);
    Session session(Model::load(other_model, LoadOptions{1}));
    LineReader reader({input_});
    classify::ShardWriter writer(
        out, classify::shard_header(session, options({3, 3}), "{\"format\":\"test\"}", kPreamble));
    writer.finish(
        classify::classify_lines(session, reader, options({3, 3}), [&](const std::vector<Row>& rows) {
          writer.write_batch(rows.front().line->index, static_cast<int64_t>(rows.size()), "x");
        }));
  }
  expect_refused({s1, s2, (dir_ / "other-model.jsonl").string()}, "differ in model (SHA-256 of the file)");

  // A damaged file: its first batch record removed, the end record intact.
  std::ifstream in(s3, std::ios::binary);
  std::string header, batch;
  std::getline(in, header);
  std::getline(in, batch);
  std::ostringstream tail;
  tail << in.rdbuf();
  std::ofstream(dir_ / "damaged.jsonl", std::ios::binary) << header << '\n' << tail.str();
  std::ostringstream out;
  EXPECT_THROW(classify::merge_shards({s1, s2, (dir_ / "damaged.jsonl").string()}, out), Error);
}

TEST_F(ClassifyShards, TheWriterTakesOnlyItsOwnBatchesInOrder) {
  Session session(model_);
  std::ostringstream out;
  classify::ShardWriter writer(out, classify::shard_header(session, options({2, 3}), "{}", ""));
  EXPECT_THROW(writer.write_batch(0, 4, "a"), Error);  // batch 0 is shard 1's
  EXPECT_THROW(writer.write_batch(5, 4, "a"), Error);  // not the start of a batch
  writer.write_batch(16, 4, "a");                      // batch 4
  EXPECT_THROW(writer.write_batch(4, 4, "a"), Error);  // batch 1: before batch 4
  EXPECT_THROW(classify::ShardWriter(out, classify::shard_header(session, options({4, 3}), "{}", "")), Error);
}

}  // namespace
}  // namespace fcabert
