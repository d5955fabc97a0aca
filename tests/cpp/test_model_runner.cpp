// The packed-batch runner (include/fcabert/runner.h): batch plans, results back in input
// order, the exact FLOPs tally, several Sessions interleaved.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <random>
#include <string>
#include <vector>

#include "fcabert/error.h"
#include "fcabert/model_file.h"
#include "fcabert/runner.h"
#include "test_model_tiny_bert.h"

namespace fcabert {
namespace {

namespace fs = std::filesystem;

class Runner : public ::testing::Test {
 protected:
  void SetUp() override {
    path_ = (fs::path(::testing::TempDir()) / ("fcabert_runner_" + std::to_string(::getpid()) + ".fcab"))
                .string();
    info_.bert = model_test::tiny_config();
    info_.head = model_test::tiny_head();
    info_.tokenizer.vocab = model_test::tiny_vocab(info_.bert);
    info_.tokenizer.max_len = info_.bert.max_position_embeddings;
    write_model_file(path_, info_, model_test::random_bert_tensors(info_.bert, 3, 5));
    model_ = Model::load(path_, LoadOptions{1});
    std::mt19937 rng(3);
    std::uniform_int_distribution<int64_t> length(2, 40);
    for (int i = 0; i < 23; ++i)
      encodings_.push_back(model_test::random_encoding(length(rng), info_.bert, rng));
  }
  void TearDown() override { std::remove(path_.c_str()); }

  // Session options that run `schedule` (an empty one: dense).
  static SessionOptions fca_options(const FcaSchedule& schedule) {
    SessionOptions options;
    options.schedule = schedule;
    return options;
  }

  // What each encoding gives when run alone.
  std::vector<Prediction> one_by_one(Session& session) const {
    std::vector<Prediction> out;
    for (const Encoding& e : encodings_) out.push_back(session.run({e}).front());
    return out;
  }

  std::string path_;
  ModelInfo info_;
  std::shared_ptr<const Model> model_;
  std::vector<Encoding> encodings_;
};

TEST_F(Runner, PlansSortByLengthStablyOrKeepTheInputOrder) {
  const BatchPlan by_length = plan_batches(encodings_, 5, BatchOrder::kByLength);
  ASSERT_EQ(by_length.order.size(), encodings_.size());
  EXPECT_EQ(by_length.batches(), 5u);  // 23 = 4 x 5 + 3
  EXPECT_EQ(by_length.end(4), 23u);
  for (size_t i = 1; i < by_length.order.size(); ++i) {
    const size_t a = encodings_[by_length.order[i - 1]].ids.size(),
                 b = encodings_[by_length.order[i]].ids.size();
    EXPECT_LE(a, b);
    if (a == b) {
      EXPECT_LT(by_length.order[i - 1], by_length.order[i]);  // stable
    }
  }
  const BatchPlan in_order = plan_batches(encodings_, 5, BatchOrder::kInput);
  for (size_t i = 0; i < in_order.order.size(); ++i) EXPECT_EQ(in_order.order[i], i);
  EXPECT_THROW(plan_batches(encodings_, 0, BatchOrder::kInput), Error);
}

TEST_F(Runner, PredictionsComeBackInInputOrder) {
  Session session(model_);
  const std::vector<Prediction> alone = one_by_one(session);
  for (const BatchOrder order : {BatchOrder::kByLength, BatchOrder::kInput}) {
    const BatchPlan plan = plan_batches(encodings_, 4, order);
    const RunResult result = run_batches({&session}, encodings_, plan).front();
    ASSERT_EQ(result.predictions.size(), encodings_.size());
    for (size_t i = 0; i < encodings_.size(); ++i) {
      EXPECT_EQ(result.predictions[i].trace.tokens, static_cast<int64_t>(encodings_[i].ids.size()));
      for (size_t k = 0; k < alone[i].logits.size(); ++k)
        EXPECT_NEAR(result.predictions[i].logits[k], alone[i].logits[k], 1e-5) << "encoding " << i;
    }
    EXPECT_GT(result.seconds, 0);
  }
}

TEST_F(Runner, FlopsAreTheScheduleOnTheRealLengths) {
  const FcaSchedule schedule = model_test::schedule({1.0, 0.5}, 2);
  Session fca(model_, fca_options(schedule));
  Session dense(model_, fca_options(FcaSchedule{}));
  const std::vector<RunResult> results =
      run_batches({&fca, &dense}, encodings_, plan_batches(encodings_, 6, BatchOrder::kByLength));
  ASSERT_EQ(results.size(), 2u);
  FlopsTally expected_fca(info_.bert, 3), expected_dense(info_.bert, 3);
  for (const Encoding& e : encodings_) {
    expected_fca.add_sequence_analytic(schedule, static_cast<int64_t>(e.ids.size()));
    expected_dense.add_sequence_analytic(FcaSchedule{}, static_cast<int64_t>(e.ids.size()));
  }
  EXPECT_EQ(results[0].flops.total(), expected_fca.total());
  EXPECT_EQ(results[0].flops.tokens(), expected_fca.tokens());
  EXPECT_EQ(results[1].flops.total(), expected_dense.total());
  EXPECT_LT(results[0].flops.total(), results[1].flops.total());
  EXPECT_EQ(results[0].flops.dense_total(), results[1].flops.total());
}

TEST_F(Runner, InterleavedSessionsGiveWhatEachGivesAlone) {
  Session fca(model_, fca_options(model_test::schedule({0.8, 0.4}, 1)));
  Session dense(model_, fca_options(FcaSchedule{}));
  const BatchPlan plan = plan_batches(encodings_, 5, BatchOrder::kByLength);
  const std::vector<RunResult> both = run_batches({&fca, &dense}, encodings_, plan);
  const RunResult fca_alone = run_batches({&fca}, encodings_, plan).front();
  const RunResult dense_alone = run_batches({&dense}, encodings_, plan).front();
  for (size_t i = 0; i < encodings_.size(); ++i) {
    EXPECT_EQ(both[0].predictions[i].logits, fca_alone.predictions[i].logits);
    EXPECT_EQ(both[1].predictions[i].logits, dense_alone.predictions[i].logits);
  }
  std::vector<size_t> reported;
  run_batches({&fca, &dense}, encodings_, plan, [&](size_t done, size_t total) {
    EXPECT_EQ(total, encodings_.size());
    reported.push_back(done);
  });
  EXPECT_EQ(reported, (std::vector<size_t>{5, 10, 15, 20, 23}));
}

TEST_F(Runner, ATraceOfTheWrongDepthIsRefused) {
  FlopsTally tally(info_.bert, 3);
  SequenceTrace trace;
  trace.tokens = 5;
  EXPECT_THROW(tally_trace(tally, Pooling::kWeighted, trace), Error);
}

}  // namespace
}  // namespace fcabert
