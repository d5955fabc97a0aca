// Profiling through the public API (include/fcabert/profile.h): exact FLOPs against the
// analytic count, the medians' shapes, progress, the padded convention, synthetic inputs,
// the three report writers and the option checks.
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "eval/text_table.h"
#include "fcabert/error.h"
#include "fcabert/model_file.h"
#include "fcabert/profile.h"
#include "profile/svg_chart.h"
#include "test_model_tiny_bert.h"

namespace fcabert {
namespace {

namespace fs = std::filesystem;

class Profile : public ::testing::Test {
 protected:
  void SetUp() override {
    path_ = (fs::path(::testing::TempDir()) / ("fcabert_profile_" + std::to_string(::getpid()) + ".fcab"))
                .string();
    info_.bert = model_test::tiny_config();
    info_.head = model_test::tiny_head();
    info_.tokenizer.vocab = model_test::tiny_vocab(info_.bert);
    info_.tokenizer.max_len = info_.bert.max_position_embeddings;
    info_.fca = FcaSchedule{{1.0, 0.5}, 2, Pooling::kWeighted};
    write_model_file(path_, info_, model_test::random_bert_tensors(info_.bert, 3, 7));
    model_ = Model::load(path_, LoadOptions{1});
    std::mt19937 rng(11);
    std::uniform_int_distribution<int64_t> length(2, 40);
    inputs_.source = "test";
    for (int i = 0; i < 13; ++i)
      inputs_.encodings.push_back(model_test::random_encoding(length(rng), info_.bert, rng));
  }
  void TearDown() override { std::remove(path_.c_str()); }

  // What the schedule predicts for every input (token counts do not depend on the scores).
  FlopsTally analytic(const FcaSchedule& schedule) const {
    FlopsTally tally(info_.bert, 3);
    for (const Encoding& e : inputs_.encodings)
      tally.add_sequence_analytic(schedule, static_cast<int64_t>(e.ids.size()));
    return tally;
  }

  std::string path_;
  ModelInfo info_;
  std::shared_ptr<const Model> model_;
  profile::Inputs inputs_;
};

TEST_F(Profile, FlopsAreTheExactCountOfBothSessions) {
  profile::Options options;
  options.batch_size = 4;
  options.repeat = 3;
  const profile::Report report = profile::run(model_, inputs_, options);
  EXPECT_EQ(report.fca.flops.total(), analytic(info_.fca).total());
  EXPECT_EQ(report.dense.flops.total(), analytic(FcaSchedule{}).total());
  EXPECT_EQ(report.fca.flops.sequences(), 13);  // one repeat's worth, not three
  EXPECT_LT(report.fca.flops.total(), report.dense.flops.total());
  EXPECT_GT(report.reduction_ratio(), 1.0);
  EXPECT_EQ(report.trace_mismatches, 0);
  EXPECT_TRUE(report.schedule_from_file);
  EXPECT_EQ(report.fca.schedule.keep_ratios, info_.fca.keep_ratios);
  EXPECT_FALSE(report.dense.schedule.enabled());
  ASSERT_EQ(report.lengths.size(), inputs_.encodings.size());
  for (size_t i = 0; i < report.lengths.size(); ++i)
    EXPECT_EQ(report.lengths[i], static_cast<int64_t>(inputs_.encodings[i].ids.size()));
  EXPECT_EQ(report.threads, 1);
}

TEST_F(Profile, TimesAreMediansOfEveryRepeatAndLayer) {
  profile::Options options;
  options.repeat = 3;
  const profile::Report report = profile::run(model_, inputs_, options);
  for (const profile::Side* side : {&report.fca, &report.dense}) {
    ASSERT_EQ(side->times.wall_ms_per_repeat.size(), 3u);
    ASSERT_EQ(side->times.layer_ms.size(), 2u);
    EXPECT_GT(side->times.wall_ms, 0.0);
    std::vector<double> sorted = side->times.wall_ms_per_repeat;
    std::sort(sorted.begin(), sorted.end());
    EXPECT_DOUBLE_EQ(side->times.wall_ms, sorted[1]);
    for (double ms : side->times.layer_ms) EXPECT_GE(ms, 0.0);
  }
}

TEST_F(Profile, ProgressCountsEverySequenceRunOfBothSessions) {
  profile::Options options;
  options.batch_size = 5;
  options.repeat = 2;
  std::vector<std::pair<int64_t, int64_t>> calls;
  profile::run(model_, inputs_, options,
               [&](int64_t done, int64_t total) { calls.emplace_back(done, total); });
  ASSERT_EQ(calls.size(), 6u);  // 3 batches x 2 repeats
  for (size_t i = 1; i < calls.size(); ++i) EXPECT_GT(calls[i].first, calls[i - 1].first);
  EXPECT_EQ(calls.back().first, 2 * 13 * 2);
  EXPECT_EQ(calls.back().second, 2 * 13 * 2);
}

TEST_F(Profile, ScheduleOptionReplacesTheFileSchedule) {
  profile::Options options;
  options.repeat = 1;
  options.schedule = FcaSchedule{{0.5, 0.25}, 0, Pooling::kWeighted};
  const profile::Report report = profile::run(model_, inputs_, options);
  EXPECT_FALSE(report.schedule_from_file);
  EXPECT_EQ(report.fca.flops.total(), analytic(*options.schedule).total());
}

TEST_F(Profile, PaddedLengthGivesTheAnalyticFlopsOfOneInput) {
  profile::Options options;
  options.repeat = 1;
  options.padded_length = 40;
  const profile::Report report = profile::run(model_, inputs_, options);
  ASSERT_TRUE(report.padded_dense && report.padded_fca);
  FlopsTally dense(info_.bert, 3), fca(info_.bert, 3);
  dense.add_sequence_analytic(FcaSchedule{}, 40);
  fca.add_sequence_analytic(info_.fca, 40);
  EXPECT_EQ(report.padded_dense->total(), dense.total());
  EXPECT_EQ(report.padded_fca->total(), fca.total());
  EXPECT_EQ(report.padded_fca->sequences(), 1);
}

TEST_F(Profile, RejectsBadOptionsAndNoInputs) {
  profile::Options options;
  options.batch_size = 0;
  EXPECT_THROW(profile::run(model_, inputs_, options), Error);
  options = {};
  options.repeat = 0;
  EXPECT_THROW(profile::run(model_, inputs_, options), Error);
  for (const int64_t bad : {int64_t{1}, int64_t{41}}) {
    options = {};
    options.padded_length = bad;
    try {
      profile::run(model_, inputs_, options);
      ADD_FAILURE() << "padded length " << bad << " was accepted";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("--padded-length"), std::string::npos) << e.what();
    }
  }
  EXPECT_THROW(profile::run(model_, profile::Inputs{}, profile::Options{}), Error);
}

TEST_F(Profile, SyntheticInputsHaveTheExactLengthAndAreDeterministic) {
  const profile::Inputs a = profile::synthetic_inputs(*model_, 17, 5);
  const profile::Inputs b = profile::synthetic_inputs(*model_, 17, 5);
  ASSERT_EQ(a.encodings.size(), 5u);
  EXPECT_EQ(a.synthetic_length, 17);
  EXPECT_EQ(a.source, "synthetic");
  for (size_t i = 0; i < a.encodings.size(); ++i) {
    const Encoding& e = a.encodings[i];
    ASSERT_EQ(e.ids.size(), 17u);
    EXPECT_EQ(e.ids.front(), 2);  // [CLS]
    EXPECT_EQ(e.ids.back(), 3);   // [SEP]
    for (size_t t = 1; t + 1 < e.ids.size(); ++t) EXPECT_GE(e.ids[t], 5) << "a bracketed special token";
    EXPECT_EQ(e.ids, b.encodings[i].ids);
  }
  EXPECT_NE(a.encodings[0].ids, a.encodings[1].ids);
  EXPECT_THROW(profile::synthetic_inputs(*model_, 1, 5), Error);
  EXPECT_THROW(profile::synthetic_inputs(*model_, 41, 5), Error);
  EXPECT_THROW(profile::synthetic_inputs(*model_, 17, 0), Error);
}

TEST_F(Profile, ReportsCarryTheSameFigures) {
  profile::Options options;
  options.repeat = 1;
  options.padded_length = 20;
  const profile::Report report = profile::run(model_, inputs_, options);

  const nlohmann::json json = nlohmann::json::parse(profile::report_to_json(report));
  EXPECT_EQ(json["totals"]["flops_fca"].get<int64_t>(), report.fca.flops.total());
  EXPECT_EQ(json["totals"]["flops_dense"].get<int64_t>(), report.dense.flops.total());
  EXPECT_EQ(json["layers"].size(), 2u);
  EXPECT_EQ(json["input"]["sequences"].get<int64_t>(), 13);
  EXPECT_EQ(json["padded"]["length"].get<int64_t>(), 20);

  std::ostringstream text;
  profile::write_text_report(report, text);
  const std::string gflops = eval::fixed(static_cast<double>(report.fca.flops.total()) / 1e9, 3);
  EXPECT_NE(text.str().find("FLOPs        FCA " + gflops + " G"), std::string::npos) << text.str();
  EXPECT_NE(text.str().find("padded-input convention"), std::string::npos);

  const std::string svg = profile::render_chart(report);
  EXPECT_EQ(svg.rfind("<?xml", 0), 0u);
  EXPECT_NE(svg.find("<svg"), std::string::npos);
  size_t bars = 0;
  for (size_t at = svg.find("class=\"bar\""); at != std::string::npos; at = svg.find("class=\"bar\"", at + 1))
    ++bars;
  EXPECT_EQ(bars, 2u * 2u * 2u);  // two charts x two series x two layers
}

TEST(SvgChart, RejectsValuesThatCannotBeDrawn) {
  svg::Document document;
  document.charts.push_back({"t", "x", "y", {"0", "1"}, {{"s", "#000", {1.0, -1.0}}}});
  EXPECT_THROW(svg::render(document), Error);
  document.charts[0].series[0].values = {1.0};
  EXPECT_THROW(svg::render(document), Error);
  document.charts[0].series[0].values = {1.0, 2.0};
  EXPECT_NO_THROW(svg::render(document));
}

}  // namespace
}  // namespace fcabert
