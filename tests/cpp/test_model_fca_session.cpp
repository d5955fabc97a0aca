// FCA through the public API: the schedule a Session runs (the model file's, or
// SessionOptions::schedule, validated), sentence pairs end to end, --explain traces and
// per-layer timings.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <random>
#include <string>
#include <thread>

#include "fca/reduction.h"
#include "fcabert/engine.h"
#include "fcabert/error.h"
#include "fcabert/model_file.h"
#include "test_model_tiny_bert.h"

namespace fcabert {
namespace {

using model_test::schedule;

bool same_schedule(const FcaSchedule& a, const FcaSchedule& b) {
  return a.keep_ratios == b.keep_ratios && a.clusters == b.clusters && a.pooling == b.pooling;
}

// A 3-layer pair model whose file carries an FCA schedule.
class FcaSession : public ::testing::Test {
 protected:
  void SetUp() override {
    info_.bert = model_test::tiny_config();
    info_.bert.num_layers = 3;
    info_.head = model_test::tiny_head();
    info_.head.pair_input = true;
    info_.tokenizer.vocab = model_test::tiny_vocab(info_.bert, {"the", "a", "good", "bad", "movie"});
    info_.tokenizer.max_len = info_.bert.max_position_embeddings;
    info_.fca = schedule({0.9, 0.6, 0.3}, 2);
    info_.provenance_json = R"({"source":"test_model_fca_session"})";
    path_ = ::testing::TempDir() + "fcabert_fca_session_" + std::to_string(::getpid()) + ".fcab";
    write_model_file(path_, info_, model_test::random_bert_tensors(info_.bert, 3, 31));
    model_ = Model::load(path_, LoadOptions{2});
  }
  void TearDown() override { std::remove(path_.c_str()); }

  std::vector<Encoding> pairs() const {
    const Tokenizer& tok = model_->tokenizer();
    std::vector<Encoding> batch{
        tok.encode_pair("the good movie the good movie a bad movie", "a bad movie the movie word11 word12",
                        40),
        tok.encode_pair("the", "movie", 40),
        tok.encode_pair("word20 word21 word22 word23 word24 word25 word26 word27 word28 word29 word30",
                        "word31 word32 word33 word34 word35 word36 word37 word38 word39 word40 word41", 40)};
    std::mt19937 rng(5);
    batch.push_back(model_test::random_encoding(40, info_.bert, rng));
    return batch;
  }

  ModelInfo info_;
  std::string path_;
  std::shared_ptr<const Model> model_;
};

TEST_F(FcaSession, RunsTheModelFilesScheduleByDefault) {
  Session session(model_);
  EXPECT_TRUE(same_schedule(session.schedule(), info_.fca));
  const std::vector<Encoding> batch = pairs();
  const std::vector<Prediction> out = session.run(batch);
  ASSERT_EQ(out.size(), batch.size());
  for (size_t s = 0; s < batch.size(); ++s) {
    const int64_t n0 = static_cast<int64_t>(batch[s].ids.size());
    EXPECT_EQ(out[s].trace.tokens, n0);
    const std::vector<fca::ReductionShape> shapes = fca::schedule_shapes(info_.fca, 3, n0);
    ASSERT_EQ(out[s].trace.layers.size(), 3u);
    for (size_t l = 0; l < 3; ++l) {
      EXPECT_EQ(out[s].trace.layers[l].rows_in, shapes[l].rows_in);
      EXPECT_EQ(out[s].trace.layers[l].rows_out, shapes[l].rows_out);
      EXPECT_EQ(out[s].trace.layers[l].reduce, shapes[l].reduce);
    }
    EXPECT_TRUE(out[s].trace.kept.empty());  // no explain
  }
  EXPECT_TRUE(out[3].trace.layers[0].reduce);  // 40 tokens: 36 fine + 2 clusters
  EXPECT_EQ(out[3].trace.layers[0].rows_out, 38);
}

TEST_F(FcaSession, OptionsOverrideTheSchedule) {
  const std::vector<Encoding> batch = pairs();
  SessionOptions dense_options;
  dense_options.schedule = FcaSchedule{};  // empty keep ratios: dense
  Session dense(model_, dense_options);
  EXPECT_FALSE(dense.schedule().enabled());
  SessionOptions ones_options;
  ones_options.schedule = schedule({1, 1, 1}, 3);
  Session ones(model_, ones_options);
  Session file(model_);
  const std::vector<Prediction> a = dense.run(batch), b = ones.run(batch), c = file.run(batch);
  for (size_t s = 0; s < batch.size(); ++s) {
    EXPECT_EQ(a[s].logits, b[s].logits) << "sequence " << s;  // ratio 1 = dense, bit for bit
    for (const fca::ReductionShape& shape : a[s].trace.layers) EXPECT_FALSE(shape.reduce);
  }
  double diff = 0;
  for (size_t k = 0; k < 3; ++k)
    diff = std::max(diff, static_cast<double>(std::fabs(a[3].logits[k] - c[3].logits[k])));
  EXPECT_GT(diff, 1e-5);  // the file's schedule reduces the 40-token sequence

  SessionOptions mean_options;
  mean_options.schedule = schedule({0.5, 0.5, 0.2}, 0, Pooling::kMean);
  Session mean(model_, mean_options);
  EXPECT_TRUE(same_schedule(mean.schedule(), *mean_options.schedule));
  const std::vector<Prediction> d = mean.run(batch);
  EXPECT_EQ(d[3].trace.layers[0].rows_out, 20);
  EXPECT_EQ(d[3].trace.layers[2].rows_out, 8);
}

TEST_F(FcaSession, RejectsAnInvalidScheduleAtConstruction) {
  const auto error_of = [&](const FcaSchedule& fca) -> std::string {
    SessionOptions options;
    options.schedule = fca;
    try {
      Session session(model_, options);
    } catch (const Error& e) {
      return e.what();
    }
    return "(no error)";
  };
  EXPECT_NE(error_of(schedule({1, 0.5}, 2)).find("expected 3 (one per layer)"), std::string::npos)
      << error_of(schedule({1, 0.5}, 2));
  EXPECT_NE(error_of(schedule({0.5, 0.6, 0.5}, 2)).find("must not increase"), std::string::npos);
  EXPECT_NE(error_of(schedule({1.5, 1, 1}, 2)).find("(0, 1]"), std::string::npos);
  EXPECT_NE(error_of(schedule({1, 1, 1}, -1)).find("clusters"), std::string::npos);
}

TEST_F(FcaSession, ExplainListsTheKeptRowIdentities) {
  SessionOptions options;
  options.explain = true;
  Session session(model_, options);
  const std::vector<Encoding> batch = pairs();
  const std::vector<Prediction> out = session.run(batch);
  const std::vector<Prediction> plain = Session(model_).run(batch);
  for (size_t s = 0; s < batch.size(); ++s) {
    EXPECT_EQ(out[s].logits, plain[s].logits);  // explaining changes nothing else
    ASSERT_EQ(out[s].trace.kept.size(), 3u);
    // Every layer: what it kept is fine rows (when reducing) or every row; all distinct and
    // drawn from the rows that entered it.
    std::vector<fca::RowIdentity> rows = fca::initial_identities(out[s].trace.tokens);
    for (size_t l = 0; l < 3; ++l) {
      const fca::ReductionShape& shape = out[s].trace.layers[l];
      const std::vector<fca::RowIdentity>& kept = out[s].trace.kept[l];
      ASSERT_EQ(static_cast<int64_t>(kept.size()), shape.fine) << "layer " << l;
      ASSERT_EQ(static_cast<int64_t>(rows.size()), shape.rows_in);
      EXPECT_EQ(kept[0], fca::RowIdentity::token(0));
      size_t next = 0;  // kept is a subsequence of rows, in row order
      for (const fca::RowIdentity& id : kept) {
        while (next < rows.size() && rows[next] != id) ++next;
        ASSERT_LT(next, rows.size()) << id.to_string() << " is not a row of layer " << l;
        ++next;
      }
      std::vector<fca::RowIdentity> after = kept;
      for (int64_t g = 0; g < shape.clusters; ++g)
        after.push_back(fca::RowIdentity::cluster(static_cast<int64_t>(l), g));
      rows = after;
    }
  }
  // The 40-token sequence keeps a cluster of layer 0 or pools it again in layer 1 or 2.
  EXPECT_EQ(out[3].trace.layers[1].rows_in, 38);
}

TEST_F(FcaSession, TimesEachLayerOnlyWhenAsked) {
  const std::vector<Encoding> batch = pairs();
  Session quiet(model_);
  quiet.run(batch);
  EXPECT_EQ(quiet.last_timings().embeddings_ms, 0);
  EXPECT_TRUE(quiet.last_timings().layer_ms.empty());
  EXPECT_EQ(quiet.last_timings().head_ms, 0);
  EXPECT_EQ(quiet.last_timings().linear_ms, 0);

  SessionOptions options;
  options.time_layers = true;
  Session timed(model_, options);
  timed.run(batch);
  const LayerTimings& t = timed.last_timings();
  ASSERT_EQ(t.layer_ms.size(), 3u);
  double total = t.embeddings_ms + t.head_ms;
  for (double ms : t.layer_ms) {
    EXPECT_GE(ms, 0);
    total += ms;
  }
  EXPECT_GE(t.embeddings_ms, 0);
  EXPECT_GE(t.head_ms, 0);
  EXPECT_GT(total, 0);
  // The GEMMs are a part of the layers' time, never more.
  const double layers = total - t.embeddings_ms - t.head_ms;
  EXPECT_GT(t.linear_ms, 0);
  EXPECT_LE(t.linear_ms, layers);
  timed.run({});  // an empty batch leaves zeros, not the last run's figures
  ASSERT_EQ(timed.last_timings().layer_ms.size(), 3u);
  for (double ms : timed.last_timings().layer_ms) EXPECT_EQ(ms, 0);
  EXPECT_EQ(timed.last_timings().linear_ms, 0);
}

// The thread-safety contract holds with FCA: all its scratch is in each Session.
TEST_F(FcaSession, ConcurrentSessionsShareOneModel) {
  SessionOptions options;
  options.explain = true;
  const std::vector<Encoding> batch = pairs();
  const std::vector<Prediction> expected = Session(model_, options).run(batch);
  std::vector<std::vector<Prediction>> results(3);
  std::vector<std::thread> threads;
  for (auto& result : results) {
    threads.emplace_back([&] {
      Session session(model_, options);
      for (int i = 0; i < 5; ++i) result = session.run(batch);
    });
  }
  for (auto& t : threads) t.join();
  for (const auto& result : results) {
    ASSERT_EQ(result.size(), expected.size());
    for (size_t s = 0; s < expected.size(); ++s) {
      for (size_t k = 0; k < 3; ++k) EXPECT_NEAR(result[s].logits[k], expected[s].logits[k], 1e-6);
      EXPECT_EQ(result[s].trace.kept, expected[s].trace.kept);
    }
  }
}

TEST_F(FcaSession, RegressionHeadsReduceToo) {
  ModelInfo info = info_;
  info.head = model_test::tiny_head(HeadKind::kRegression);
  const std::string path = path_ + ".regression";
  write_model_file(path, info, model_test::random_bert_tensors(info.bert, 1, 8));
  Session session(Model::load(path));
  std::remove(path.c_str());
  const std::vector<Prediction> out = session.run(pairs());
  ASSERT_EQ(out.size(), 4u);
  EXPECT_EQ(out[3].logits.size(), 1u);
  EXPECT_TRUE(out[3].probabilities.empty());
  EXPECT_TRUE(out[3].trace.layers[0].reduce);
}

}  // namespace
}  // namespace fcabert
