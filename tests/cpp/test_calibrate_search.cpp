// fcabert calibrate's library (include/fcabert/calibrate.h) on a tiny random BERT: the
// schedule meets the FLOPs target (recounted independently), is monotone, on the grid and in
// (0, 1], the search is deterministic, target 1 gives the dense model, errors are clear; the
// calibration data reader and the model-file copy with the new schedule.
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <vector>

#include "calibrate_test_util.h"
#include "fcabert/calibrate.h"
#include "fcabert/engine.h"
#include "fcabert/error.h"
#include "fcabert/fca.h"
#include "fcabert/flops.h"
#include "fcabert/model_file.h"
#include "test_model_tiny_bert.h"

namespace fcabert {
namespace {

namespace fs = std::filesystem;

// The tiny 4-layer model of calibrate_test_util.h; lengths 6..40 tokens.
class Calibrate : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::path(::testing::TempDir()) / ("fcabert_calibrate_" + std::to_string(::getpid()));
    fs::create_directories(dir_);
    path_ = (dir_ / "tiny.fcab").string();
    write_tiny(path_, HeadKind::kClassification, false);
    model_ = Model::load(path_, LoadOptions{1});
    std::mt19937 rng(17);
    std::uniform_int_distribution<int64_t> length(6, 40);
    for (int i = 0; i < 48; ++i)
      examples_.push_back(model_test::random_encoding(length(rng), info_.bert, rng));
  }
  void TearDown() override {
    std::error_code ignored;
    fs::remove_all(dir_, ignored);
  }

  void write_tiny(const std::string& path, HeadKind kind, bool pair) {
    info_ = calibrate_test::write_tiny_model(path, kind, pair);
  }

  // The FLOPs share of `schedule` on the examples, counted independently of the search.
  double flops_share(const FcaSchedule& schedule) const {
    FlopsTally tally(info_.bert, static_cast<int64_t>(info_.head.labels.size()));
    for (const Encoding& e : examples_)
      tally.add_sequence_analytic(schedule, static_cast<int64_t>(e.ids.size()));
    return static_cast<double>(tally.total()) / static_cast<double>(tally.dense_total());
  }

  std::string write_text(const std::string& name, const std::string& text) {
    const fs::path p = dir_ / name;
    fs::create_directories(p.parent_path());
    std::ofstream(p, std::ios::binary) << text;
    return p.string();
  }

  fs::path dir_;
  std::string path_;
  ModelInfo info_;
  std::shared_ptr<const Model> model_;
  std::vector<Encoding> examples_;
};

void expect_valid(const FcaSchedule& s, int64_t layers, double step) {
  ASSERT_EQ(static_cast<int64_t>(s.keep_ratios.size()), layers);
  EXPECT_NO_THROW(fca::validate_schedule(s, layers));
  for (size_t l = 0; l < s.keep_ratios.size(); ++l) {
    EXPECT_GT(s.keep_ratios[l], 0.0);
    EXPECT_LE(s.keep_ratios[l], 1.0);
    const double units = s.keep_ratios[l] / step;
    EXPECT_NEAR(units, std::round(units), 1e-9) << "layer " << l << " is off the grid";
    if (l > 0) {
      EXPECT_LE(s.keep_ratios[l], s.keep_ratios[l - 1]) << "layer " << l << " rises";
    }
  }
}

TEST_F(Calibrate, MeetsTheTargetMonotoneOnTheGrid) {
  for (double target : {0.8, 0.6, 0.45}) {
    calibrate::Options options;
    options.flops_target = target;
    options.clusters = 2;
    const calibrate::Result r = calibrate::calibrate(model_, examples_, options);
    SCOPED_TRACE("target " + std::to_string(target));
    ASSERT_TRUE(r.schedule.enabled());
    expect_valid(r.schedule, 4, options.step);
    EXPECT_EQ(r.schedule.clusters, 2);
    EXPECT_EQ(r.schedule.pooling, Pooling::kWeighted);
    EXPECT_LE(flops_share(r.schedule), target);
    EXPECT_DOUBLE_EQ(r.final.flops_ratio, flops_share(r.schedule));
    EXPECT_FALSE(r.steps.empty());
    EXPECT_GE(r.final.loss, 0.0);
    EXPECT_GE(r.model_runs, 1 + static_cast<int64_t>(r.steps.size()));
    // The last greedy step crossed the target; the refinement never leaves it.
    for (const calibrate::Step& step : r.steps) EXPECT_LE(step.after.flops_ratio, 1.0);
  }
}

TEST_F(Calibrate, LowerTargetsSaveMore) {
  calibrate::Options options;
  options.flops_target = 0.8;
  const double high = calibrate::calibrate(model_, examples_, options).final.flops_ratio;
  options.flops_target = 0.5;
  const double low = calibrate::calibrate(model_, examples_, options).final.flops_ratio;
  EXPECT_LE(low, 0.5);
  EXPECT_LT(low, high);
}

TEST_F(Calibrate, SeveralTargetsInOneSearch) {
  calibrate::Options options;
  const std::vector<double> targets = {0.5, 0.8, 0.65};
  const std::vector<calibrate::Result> results =
      calibrate::calibrate_targets(model_, examples_, options, targets);
  ASSERT_EQ(results.size(), 3u);
  for (size_t i = 0; i < targets.size(); ++i) {
    expect_valid(results[i].schedule, 4, options.step);
    EXPECT_LE(flops_share(results[i].schedule), targets[i]);
  }
  EXPECT_LT(results[0].final.flops_ratio, results[2].final.flops_ratio);
  EXPECT_LE(results[2].final.flops_ratio, 0.65);
  // The highest target's schedule is what a single search for it finds.
  options.flops_target = 0.8;
  EXPECT_EQ(calibrate::calibrate(model_, examples_, options).schedule.keep_ratios,
            results[1].schedule.keep_ratios);
  EXPECT_THROW(calibrate::calibrate_targets(model_, examples_, options, {}), Error);
  EXPECT_THROW(calibrate::calibrate_targets(model_, examples_, options, {0.5, 1.2}), Error);
}

TEST_F(Calibrate, IsDeterministic) {
  calibrate::Options options;
  options.flops_target = 0.55;
  const calibrate::Result a = calibrate::calibrate(model_, examples_, options);
  const calibrate::Result b = calibrate::calibrate(model_, examples_, options);
  EXPECT_EQ(a.schedule.keep_ratios, b.schedule.keep_ratios);
  EXPECT_EQ(a.final.loss, b.final.loss);
  EXPECT_EQ(a.final.flops, b.final.flops);
  EXPECT_EQ(a.steps.size(), b.steps.size());
  EXPECT_EQ(a.model_runs, b.model_runs);
}

TEST_F(Calibrate, TargetOneIsTheDenseModel) {
  calibrate::Options options;
  options.flops_target = 1.0;
  const calibrate::Result r = calibrate::calibrate(model_, examples_, options);
  EXPECT_FALSE(r.schedule.enabled());
  EXPECT_TRUE(r.steps.empty());
  EXPECT_EQ(r.model_runs, 1);  // only the dense reference
  EXPECT_EQ(r.final.flops, r.final.dense_flops);
  EXPECT_EQ(r.final.loss, 0.0);
  EXPECT_EQ(r.final.agreement, 1.0);
}

TEST_F(Calibrate, TheReportedFidelityIsWhatTheScheduleDoes) {
  calibrate::Options options;
  options.flops_target = 0.6;
  const calibrate::Result r = calibrate::calibrate(model_, examples_, options);
  SessionOptions dense_options;
  dense_options.schedule = FcaSchedule{};
  Session dense(model_, dense_options);
  std::vector<std::vector<float>> dense_logits;
  for (Prediction& p : dense.run(examples_)) dense_logits.push_back(p.logits);
  SessionOptions fca_options;
  fca_options.schedule = r.schedule;
  Session session(model_, fca_options);
  const calibrate::Measurement m = calibrate::measure(session, examples_, dense_logits, options, false);
  EXPECT_EQ(m.flops, r.final.flops);
  EXPECT_NEAR(m.loss, r.final.loss, 1e-6);
  EXPECT_NEAR(m.agreement, r.final.agreement, 1e-12);
  // The dense Session measured against itself loses nothing.
  const calibrate::Measurement self = calibrate::measure(dense, examples_, dense_logits, options, false);
  EXPECT_EQ(self.loss, 0.0);
  EXPECT_EQ(self.agreement, 1.0);
  EXPECT_EQ(self.flops, self.dense_flops);
  // A schedule that drops most tokens disagrees somewhere on a random model.
  fca_options.schedule = model_test::schedule({0.2, 0.1, 0.1, 0.1}, 0);
  Session harsh(model_, fca_options);
  EXPECT_GT(calibrate::measure(harsh, examples_, dense_logits, options, false).mean_kl, 0.0);
}

TEST_F(Calibrate, DroppingAndMeanPoolingAndRegression) {
  calibrate::Options options;
  options.flops_target = 0.5;
  options.clusters = 0;
  calibrate::Result r = calibrate::calibrate(model_, examples_, options);
  expect_valid(r.schedule, 4, options.step);
  EXPECT_EQ(r.schedule.clusters, 0);
  EXPECT_LE(flops_share(r.schedule), 0.5);

  options.clusters = 3;
  options.pooling = Pooling::kMean;
  options.step = 0.1;
  options.min_ratio = 0.1;
  r = calibrate::calibrate(model_, examples_, options);
  expect_valid(r.schedule, 4, 0.1);
  EXPECT_EQ(r.schedule.pooling, Pooling::kMean);
  EXPECT_LE(flops_share(r.schedule), 0.5);

  const std::string regression = (dir_ / "regression.fcab").string();
  write_tiny(regression, HeadKind::kRegression, false);
  auto model = Model::load(regression, LoadOptions{1});
  options = calibrate::Options{};
  options.flops_target = 0.6;
  r = calibrate::calibrate(model, examples_, options);
  expect_valid(r.schedule, 4, options.step);
  EXPECT_LE(flops_share(r.schedule), 0.6);
  EXPECT_GE(r.final.mse, 0.0);
  EXPECT_EQ(r.final.loss, r.final.mse);
}

TEST_F(Calibrate, ClearErrors) {
  auto expect_error = [&](calibrate::Options options, const std::string& needle) {
    try {
      calibrate::calibrate(model_, examples_, options);
      ADD_FAILURE() << "no error for " << needle;
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
    }
  };
  calibrate::Options options;
  for (double bad : {0.0, -0.5, 1.5, std::numeric_limits<double>::quiet_NaN()}) {
    options.flops_target = bad;
    expect_error(options, "--flops-target must be in (0, 1]");
  }
  options = calibrate::Options{};
  options.step = 0.03;
  expect_error(options, "1/step must be a whole number");
  options = calibrate::Options{};
  options.min_ratio = 0.07;
  expect_error(options, "--min-ratio");
  options = calibrate::Options{};
  options.clusters = -1;
  expect_error(options, "--clusters");
  options = calibrate::Options{};
  options.flops_target = 0.02;  // layer 0's attention and projections alone cost more
  expect_error(options, "cannot be reached");
  try {
    calibrate::calibrate(model_, {}, calibrate::Options{});
    ADD_FAILURE() << "no error for empty data";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("no calibration examples"), std::string::npos) << e.what();
  }
}

TEST_F(Calibrate, WritesACopyWithTheSchedule) {
  const std::string out = (dir_ / "calibrated.fcab").string();
  const FcaSchedule s = model_test::schedule({1.0, 0.75, 0.5, 0.25}, 2, Pooling::kMean);
  calibrate::write_model_with_schedule(path_, out, s, R"({"flops_target":0.5})", false);
  const ModelFile original = ModelFile::open(path_);
  const ModelFile copy = ModelFile::open(out);
  EXPECT_EQ(copy.info().fca.keep_ratios, s.keep_ratios);
  EXPECT_EQ(copy.info().fca.clusters, 2);
  EXPECT_EQ(copy.info().fca.pooling, Pooling::kMean);
  const auto provenance = nlohmann::json::parse(copy.info().provenance_json);
  EXPECT_EQ(provenance.at("source"), "test_calibrate_search");
  EXPECT_EQ(provenance.at("calibration").at("flops_target"), 0.5);
  ASSERT_EQ(copy.tensors().size(), original.tensors().size());
  for (const TensorInfo& t : original.tensors()) {
    const TensorInfo& c = copy.tensor(t.name);
    EXPECT_EQ(c.dtype, t.dtype);
    EXPECT_EQ(c.shape, t.shape);
    ASSERT_EQ(c.nbytes, t.nbytes);
    EXPECT_EQ(0, std::memcmp(copy.data(t.name), original.data(t.name), t.nbytes)) << t.name;
  }
  // Refuses to replace without force, and leaves the file alone.
  try {
    calibrate::write_model_with_schedule(path_, out, FcaSchedule{}, "{}", false);
    ADD_FAILURE() << "overwrote without force";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("--force"), std::string::npos) << e.what();
  }
  EXPECT_EQ(ModelFile::open(out).info().fca.keep_ratios, s.keep_ratios);
  calibrate::write_model_with_schedule(path_, out, FcaSchedule{}, "{}", true);
  EXPECT_FALSE(ModelFile::open(out).info().fca.enabled());
  // A schedule that does not fit the model is refused before anything is written.
  EXPECT_THROW(
      calibrate::write_model_with_schedule(path_, (dir_ / "bad.fcab").string(),
                                           model_test::schedule({0.5, 0.6, 0.5, 0.5}, 2), "{}", false),
      Error);
  EXPECT_FALSE(fs::exists(dir_ / "bad.fcab"));
  for (const auto& entry : fs::directory_iterator(dir_))
    EXPECT_EQ(entry.path().filename().string().find(".tmp"), std::string::npos) << entry.path();
}

// An int8 model's copy keeps every stored byte: the I8 codes and their "_scale" tensors.
TEST_F(Calibrate, CopiesAnInt8ModelBitForBit) {
  const std::string int8 = (dir_ / "tiny-int8.fcab").string();
  calibrate_test::write_tiny_model(int8, HeadKind::kClassification, false, DType::kI8);
  const std::string out = (dir_ / "calibrated-int8.fcab").string();
  calibrate::write_model_with_schedule(int8, out, model_test::schedule({1.0, 0.75, 0.5, 0.25}, 2), "{}",
                                       false);
  const ModelFile original = ModelFile::open(int8);
  const ModelFile copy = ModelFile::open(out);
  EXPECT_EQ(original.tensor("bert.pooler.dense.weight").dtype, DType::kI8);
  ASSERT_EQ(copy.tensors().size(), original.tensors().size());
  for (const TensorInfo& t : original.tensors()) {
    const TensorInfo& c = copy.tensor(t.name);
    EXPECT_EQ(c.dtype, t.dtype) << t.name;
    ASSERT_EQ(c.nbytes, t.nbytes) << t.name;
    EXPECT_EQ(0, std::memcmp(copy.data(t.name), original.data(t.name), t.nbytes)) << t.name;
  }
}

TEST_F(Calibrate, ReadsPlainTextAndGlueFolders) {
  const std::string plain = write_text("lines.txt", "the good movie\n\n  \na bad movie\r\nword11 word12\n");
  calibrate::DataOptions options;
  calibrate::Data data = calibrate::load_data(*model_, plain, options);
  EXPECT_EQ(data.available, 3);
  ASSERT_EQ(data.encodings.size(), 3u);
  EXPECT_EQ(data.encodings[0].ids.size(), 5u);  // [CLS] the good movie [SEP]
  EXPECT_FALSE(data.held_out_warning);

  std::string rows = "sentence\tlabel\n";
  for (int i = 0; i < 30; ++i)
    rows += "word" + std::to_string(10 + i) + " the movie\t" + std::to_string(i % 2) + "\n";
  write_text("SST-2/train.tsv", rows);
  write_text("SST-2/dev.tsv", "sentence\tlabel\nthe movie\t1\n");
  options.limit = 10;
  options.seed = 3;
  data = calibrate::load_data(*model_, (dir_ / "SST-2").string(), options);
  EXPECT_EQ(data.available, 30);
  ASSERT_EQ(data.encodings.size(), 10u);
  EXPECT_NE(data.source.find("train.tsv"), std::string::npos);
  // The sample is in file order, the same for the same seed, and another seed differs.
  std::vector<int32_t> first;
  for (const Encoding& e : data.encodings) first.push_back(e.ids[1]);
  EXPECT_TRUE(std::is_sorted(first.begin(), first.end()));
  std::vector<int32_t> again, other;
  for (const Encoding& e : calibrate::load_data(*model_, (dir_ / "SST-2").string(), options).encodings)
    again.push_back(e.ids[1]);
  options.seed = 4;
  for (const Encoding& e : calibrate::load_data(*model_, (dir_ / "SST-2").string(), options).encodings)
    other.push_back(e.ids[1]);
  EXPECT_EQ(first, again);
  EXPECT_NE(first, other);

  options.split = "dev";
  data = calibrate::load_data(*model_, (dir_ / "SST-2").string(), options);
  EXPECT_TRUE(data.held_out_warning);
  EXPECT_EQ(data.encodings.size(), 1u);

  auto expect_error = [&](const std::string& path, const calibrate::DataOptions& o,
                          const std::string& needle) {
    try {
      calibrate::load_data(*model_, path, o);
      ADD_FAILURE() << "no error for " << path;
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
    }
  };
  expect_error(write_text("empty.txt", "\n\n"), calibrate::DataOptions{}, "no examples");
  expect_error((dir_ / "missing.txt").string(), calibrate::DataOptions{}, "no such file");
  calibrate::DataOptions test_split;
  test_split.split = "test";
  expect_error((dir_ / "SST-2").string(), test_split, "no test.tsv");
  calibrate::DataOptions bad_limit;
  bad_limit.limit = -1;
  expect_error(plain, bad_limit, "--limit");
  // A pair model needs two columns; a single-sentence GLUE task is refused for it.
  const std::string pair_path = (dir_ / "pair.fcab").string();
  write_tiny(pair_path, HeadKind::kClassification, true);
  auto pair_model = Model::load(pair_path, LoadOptions{1});
  try {
    calibrate::load_data(*pair_model, plain, calibrate::DataOptions{});
    ADD_FAILURE() << "a pair model took one column";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("two tab-separated columns"), std::string::npos) << e.what();
  }
  EXPECT_THROW(calibrate::load_data(*pair_model, (dir_ / "SST-2").string(), calibrate::DataOptions{}), Error);
  const std::string pairs = write_text("pairs.txt", "the movie\ta movie\ngood\tbad\n");
  EXPECT_EQ(calibrate::load_data(*pair_model, pairs, calibrate::DataOptions{}).encodings.size(), 2u);
}

TEST(CalibrateText, RatiosText) {
  EXPECT_EQ(calibrate::ratios_text({1.0, 0.65, 0.3, 0.05}), "1,0.65,0.3,0.05");
  EXPECT_EQ(calibrate::ratios_text({13.0 / 20.0}), "0.65");
  EXPECT_EQ(calibrate::ratios_text({}), "");
}

}  // namespace
}  // namespace fcabert
