// GLUE evaluation through the public API (include/fcabert/evaluate.h) on a tiny model and a
// tiny SST-2 folder: the metrics match the Session's own predictions, FLOPs match the
// analytic count, shards merge to the unsharded report, reports survive JSON, merges refuse
// what does not belong together.
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "fcabert/engine.h"
#include "fcabert/error.h"
#include "fcabert/evaluate.h"
#include "fcabert/flops.h"
#include "fcabert/model_file.h"
#include "test_model_tiny_bert.h"

namespace fcabert::eval {
namespace {

namespace fs = std::filesystem;

const std::vector<std::string> kWords = {"the", "a", "good", "bad", "movie", "plot", "fun", "dull"};

class Evaluate : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::path(::testing::TempDir()) / ("fcabert_evaluate_" + std::to_string(::getpid()));
    fs::create_directories(dir_ / "SST-2");
    model_path_ = (dir_ / "tiny.fcab").string();
    write_tiny_model();
    model_ = Model::load(model_path_, LoadOptions{1});
    write_dev_file(37);
    options_.data = (dir_ / "SST-2").string();
    options_.batch_size = 4;
  }
  void TearDown() override {
    std::error_code ignored;
    fs::remove_all(dir_, ignored);
  }

  void write_tiny_model() {
    ModelInfo info;
    info.bert = model_test::tiny_config();
    info.head = model_test::tiny_head();
    info.head.labels = {"positive", "negative"};  // not the task's order: matched by name
    info.head.task = "sst2";
    info.tokenizer.vocab = model_test::tiny_vocab(info.bert, kWords);
    info.tokenizer.max_len = info.bert.max_position_embeddings;
    write_model_file(model_path_, info, model_test::random_bert_tensors(info.bert, 2, 11));
  }

  // Random sentences of 1..12 words with random gold labels.
  void write_dev_file(int rows) {
    std::mt19937 rng(5);
    std::ofstream out(dir_ / "SST-2" / "dev.tsv", std::ios::binary);
    out << "sentence\tlabel\n";
    for (int r = 0; r < rows; ++r) {
      std::string text;
      const int n = 1 + static_cast<int>(rng() % 12);
      for (int w = 0; w < n; ++w) text += (w ? " " : "") + kWords[rng() % kWords.size()];
      sentences_.push_back(text);
      labels_.push_back(static_cast<int>(rng() % 2));
      out << text << '\t' << labels_.back() << '\n';
    }
  }

  Report run(const Options& options, const Callbacks& callbacks = {}) const {
    return evaluate(model_, read_dataset(options), options, callbacks);
  }

  fs::path dir_;
  std::string model_path_;
  std::shared_ptr<const Model> model_;
  std::vector<std::string> sentences_;
  std::vector<int> labels_;
  Options options_;
};

TEST_F(Evaluate, ScoresWhatTheSessionPredicts) {
  SessionOptions fca;
  fca.schedule = model_test::schedule({0.9, 0.5}, 1);
  options_.schedule = fca.schedule;
  const Report report = run(options_);
  ASSERT_EQ(report.splits.size(), 1u);
  const SplitResult& split = report.splits[0];
  EXPECT_EQ(split.split_examples, 37);
  EXPECT_EQ(split.fca.examples, 37);
  EXPECT_FALSE(split.dense.has_value());

  // The same, independently: each sentence alone through a Session; model output 0 is
  // "positive" = task class 1.
  Session session(model_, fca);
  metrics::ConfusionMatrix expected(2);
  FlopsTally tally(model_->info().bert, 2);
  for (size_t i = 0; i < sentences_.size(); ++i) {
    const Encoding e = model_->tokenizer().encode(sentences_[i], model_->info().tokenizer.max_len);
    const Prediction p = session.run({e}).front();
    expected.add(labels_[i], p.logits[0] > p.logits[1] ? 1 : 0);
    tally.add_sequence_analytic(*fca.schedule, static_cast<int64_t>(e.ids.size()));
  }
  for (int g = 0; g < 2; ++g)
    for (int p = 0; p < 2; ++p) EXPECT_EQ(split.fca.matrix.at(g, p), expected.at(g, p)) << g << "," << p;
  EXPECT_EQ(split.fca.flops, tally.total());
  EXPECT_EQ(split.fca.dense_flops, tally.dense_total());
  EXPECT_EQ(split.fca.tokens, tally.tokens());
  EXPECT_DOUBLE_EQ(score(glue::task_info(glue::Task::kSST2), split.fca).get("accuracy"),
                   static_cast<double>(expected.correct()) / 37.0);
}

TEST_F(Evaluate, CompareDenseRunsTheDenseModelToo) {
  options_.schedule = model_test::schedule({0.7, 0.3}, 2);
  options_.compare_dense = true;
  const Report report = run(options_);
  const SplitResult& split = report.splits[0];
  ASSERT_TRUE(split.dense.has_value());
  EXPECT_EQ(split.dense->flops, split.fca.dense_flops);
  EXPECT_LT(split.fca.flops, split.dense->flops);
}

TEST_F(Evaluate, PredictionsComeInFileOrder) {
  std::vector<std::string> lines;
  Callbacks callbacks;
  callbacks.prediction = [&](const std::string& line) { lines.push_back(line); };
  options_.limit = 20;
  const Report report = run(options_, callbacks);
  ASSERT_EQ(lines.size(), 20u);
  for (size_t i = 0; i < lines.size(); ++i) {
    EXPECT_NE(lines[i].find("\"index\":" + std::to_string(i) + ","), std::string::npos) << lines[i];
    EXPECT_NE(lines[i].find("\"line\":" + std::to_string(i + 2) + ","), std::string::npos) << lines[i];
  }
  EXPECT_EQ(report.splits[0].split_examples, 20);
}

TEST_F(Evaluate, ShardsMergeToTheUnshardedReport) {
  options_.compare_dense = true;
  const Report whole = run(options_);
  std::vector<Report> shards;
  std::vector<std::string> names;
  for (int64_t k = 3; k >= 1; --k) {  // in any order
    Options shard = options_;
    shard.shard = Shard{k, 3};
    shards.push_back(report_from_json(report_to_json(run(shard)), "shard" + std::to_string(k)));
    names.push_back("shard" + std::to_string(k));
  }
  const Report merged = merge_reports(shards, names);
  EXPECT_EQ(merged.shards, (std::vector<int64_t>{1, 2, 3}));
  const SideResult &a = whole.splits[0].fca, &b = merged.splits[0].fca;
  EXPECT_EQ(b.examples, a.examples);
  EXPECT_EQ(b.tokens, a.tokens);
  EXPECT_EQ(b.flops, a.flops);
  EXPECT_EQ(b.dense_flops, a.dense_flops);
  for (int g = 0; g < 2; ++g)
    for (int p = 0; p < 2; ++p) EXPECT_EQ(b.matrix.at(g, p), a.matrix.at(g, p));
  EXPECT_EQ(merged.splits[0].dense->flops, whole.splits[0].dense->flops);

  // Refused: a shard twice, a shard missing, a shard of another evaluation.
  EXPECT_THROW(merge_reports({shards[0], shards[0], shards[1], shards[2]}, {"a", "b", "c", "d"}), Error);
  EXPECT_THROW(merge_reports({shards[0], shards[1]}, {"a", "b"}), Error);
  const auto refused_for = [&](const Report& other, const std::string& what) {
    try {
      merge_reports({shards[0], shards[1], other}, {"a", "b", "c"});
      ADD_FAILURE() << "a shard with another " << what << " was merged";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("c: its " + what), std::string::npos) << e.what();
    }
  };
  Report other = shards[2];
  other.model_sha256 = std::string(64, '0');
  refused_for(other, "model (SHA-256 of the file)");
  other = shards[2];
  other.precision = "int8";
  refused_for(other, "precision");
  other = shards[2];
  other.fcabert_version = "0.0.1";
  refused_for(other, "fcabert version");
  other = shards[2];
  other.max_len = 7;
  refused_for(other, "max_len");
  // The same file under another path (another machine's checkout) is the same model.
  other = shards[2];
  other.model = "/elsewhere/model.fcab";
  EXPECT_EQ(merge_reports({shards[0], shards[1], other}, {"a", "b", "c"}).splits[0].fca.examples, a.examples);
}

// A shard runs the very batches of the unsharded run, so even int8 (input scales per batch)
// gives every example the same bits: each prediction line, probabilities included.
TEST_F(Evaluate, ShardsRunTheUnshardedBatchesSoEveryPredictionIsTheSame) {
  const auto int8 = Model::load(model_path_, LoadOptions{1, Precision::kInt8});
  const auto predictions = [&](const Options& options) {
    std::map<std::string, std::string> by_index;  // "index": prediction line
    Callbacks callbacks;
    callbacks.prediction = [&](const std::string& line) {
      const size_t at = line.find("\"index\":");
      by_index[line.substr(at, line.find(',', at) - at)] = line;
    };
    evaluate(int8, read_dataset(options), options, callbacks);
    return by_index;
  };
  const auto whole = predictions(options_);
  std::map<std::string, std::string> merged;
  for (int64_t k = 1; k <= 3; ++k) {
    Options shard = options_;
    shard.shard = Shard{k, 3};
    const auto part = predictions(shard);
    EXPECT_GE(part.size(), 8u);  // 37 examples in 10 batches of 4: 3 or 4 batches per shard
    merged.insert(part.begin(), part.end());
  }
  EXPECT_EQ(merged, whole);
}

TEST_F(Evaluate, ReportsSurviveJsonAndPrint) {
  options_.schedule = model_test::schedule({0.75, 0.5}, 1, Pooling::kMean);
  const Report report = run(options_);
  const std::string json = report_to_json(report);
  const Report back = report_from_json(json, "r.json");
  EXPECT_EQ(report_to_json(back), json);
  EXPECT_EQ(back.schedule.keep_ratios, options_.schedule->keep_ratios);
  EXPECT_EQ(back.schedule.pooling, Pooling::kMean);
  std::ostringstream text;
  write_text_report(back, text, false);
  EXPECT_NE(text.str().find("task       sst2 (SST-2), GLUE metric acc"), std::string::npos) << text.str();
  EXPECT_NE(text.str().find("keep 0.75,0.5 C=1 mean"), std::string::npos) << text.str();
  EXPECT_THROW(report_from_json("{\"format\": \"something else\"}", "x.json"), Error);
  EXPECT_THROW(report_from_json("not json", "x.json"), Error);
  EXPECT_THROW(read_report((dir_ / "missing.json").string()), Error);
}

TEST_F(Evaluate, ClearErrors) {
  Options no_task = options_;
  no_task.data = model_path_;  // a file outside any GLUE folder
  EXPECT_THROW(read_dataset(no_task), Error);
  Options bad_shard = options_;
  bad_shard.shard = Shard{4, 3};
  EXPECT_THROW(run(bad_shard), Error);
  Options regression = options_;
  regression.task = glue::Task::kSTSB;
  EXPECT_THROW(read_dataset(regression), Error);  // SST-2's dev.tsv is no STS-B file
  Options empty_shard = options_;
  empty_shard.limit = 2;
  empty_shard.shard = Shard{3, 3};
  try {
    run(empty_shard);
    FAIL() << "a shard without examples was evaluated";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("no examples to evaluate in shard 3/3"), std::string::npos)
        << e.what();
  }
}

}  // namespace
}  // namespace fcabert::eval
