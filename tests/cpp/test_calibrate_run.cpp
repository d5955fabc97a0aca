// calibrate::run and its pieces (include/fcabert/calibrate.h), what `fcabert calibrate` is
// made of: parsing and naming several targets, the checks made before anything loads, and a
// whole run on a tiny random model and plain text: the callbacks in order, one model file and
// one report per target, each what the search, provenance_note and report_json say, and no
// temporary left behind.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <functional>
#include <iterator>
#include <nlohmann/json.hpp>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "calibrate_test_util.h"
#include "fcabert/calibrate.h"
#include "fcabert/error.h"
#include "fcabert/model_file.h"

namespace fcabert {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

std::string error_of(const std::function<void()>& call) {
  try {
    call();
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

TEST(CalibrateTargets, ParseNameAndFileNames) {
  EXPECT_EQ(calibrate::parse_targets("0.5"), std::vector<double>{0.5});
  EXPECT_EQ(calibrate::parse_targets("0.6,0.5 , 0.4"), (std::vector<double>{0.6, 0.5, 0.4}));
  for (const char* bad : {"", "half", "0.5,", ",0.5", "0.5x", "0.5;0.4"}) {
    const std::string message = error_of([&] { calibrate::parse_targets(bad); });
    EXPECT_EQ(message.rfind(std::string("--flops-target '") + bad + "': expected a number", 0), 0u)
        << bad << ": " << message;
  }
  EXPECT_EQ(calibrate::target_text(0.5), "0.5");
  EXPECT_EQ(calibrate::target_text(0.45), "0.45");
  EXPECT_EQ(calibrate::target_text(1), "1");
  EXPECT_EQ(calibrate::output_for("sst2-{target}.fcab", 0.45), "sst2-0.45.fcab");
  EXPECT_EQ(calibrate::output_for("out/{target}/m.fcab", 0.6), "out/0.6/m.fcab");
  EXPECT_EQ(calibrate::output_for("calibrated.fcab", 0.5), "calibrated.fcab");
}

// A tiny classifier and a plain-text file of 40 lines of 3..30 words it knows.
class CalibrateRun : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::path(::testing::TempDir()) / ("fcabert_calibrate_run_" + std::to_string(::getpid()));
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    model_ = (dir_ / "tiny.fcab").string();
    calibrate_test::write_tiny_model(model_, HeadKind::kClassification, false);
    texts_ = (dir_ / "texts.txt").string();
    write_texts(texts_);
    options_.model = model_;
    options_.data = texts_;
    options_.data_options.limit = 0;
    options_.targets = {0.8, 0.6};
    options_.load.threads = 1;
    options_.out = (dir_ / "cal-{target}.fcab").string();
    options_.json = (dir_ / "cal-{target}.json").string();
  }
  void TearDown() override {
    std::error_code ignored;
    fs::remove_all(dir_, ignored);
  }

  static void write_texts(const std::string& path) {
    const std::vector<std::string> words = {"the", "a", "good", "bad", "movie", "word12", "word30", "word47"};
    std::mt19937 rng(5);
    std::uniform_int_distribution<size_t> length(3, 30), word(0, words.size() - 1);
    std::ofstream out(path, std::ios::binary);
    for (int line = 0; line < 40; ++line) {
      const size_t n = length(rng);
      for (size_t i = 0; i < n; ++i) out << (i ? " " : "") << words[word(rng)];
      out << '\n';
    }
  }
  static std::string read(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  }
  std::vector<std::string> temporaries() const {
    std::vector<std::string> names;
    for (const auto& entry : fs::directory_iterator(dir_))
      if (entry.path().filename().string().find(".tmp") != std::string::npos)
        names.push_back(entry.path().filename().string());
    return names;
  }

  fs::path dir_;
  std::string model_, texts_;
  calibrate::RunOptions options_;
};

TEST_F(CalibrateRun, ChecksEverythingBeforeLoading) {
  // The model does not exist: each of these is refused before anything is loaded.
  calibrate::RunOptions o = options_;
  o.model = (dir_ / "missing.fcab").string();
  auto expect_error = [](const calibrate::RunOptions& options, const std::string& needle) {
    const std::string message = error_of([&] { calibrate::validate(options); });
    EXPECT_NE(message.find(needle), std::string::npos) << needle << ": " << message;
    EXPECT_EQ(error_of([&] { calibrate::run(options); }), message);
  };
  calibrate::RunOptions bad = o;
  bad.targets = {0.8, 1.5};
  expect_error(bad, "--flops-target must be in (0, 1]");
  bad = o;
  bad.targets = {};
  expect_error(bad, "at least one target");
  bad = o;
  bad.search.step = 0.03;
  expect_error(bad, "1/step must be a whole number");
  bad = o;
  bad.load.threads = 0;
  expect_error(bad, "--threads must be at least 1");
  bad = o;
  bad.out = "";
  expect_error(bad, "--out is required");
  bad = o;
  bad.out = (dir_ / "cal.fcab").string();
  expect_error(bad, "must contain {target}, e.g. calibrated-{target}.fcab");
  bad = o;
  bad.json = (dir_ / "cal.json").string();
  expect_error(bad, "--json '" + bad.json + "': with several --flops-target values it must contain {target}");
  bad = o;
  std::ofstream((dir_ / "cal-0.6.fcab").string()) << "precious";
  expect_error(bad,
               (dir_ / "cal-0.6.fcab").string() + ": already exists; choose another --out or pass --force");
  EXPECT_EQ(read((dir_ / "cal-0.6.fcab").string()), "precious");
  // One target needs no {target}; with --force an existing file is no obstacle.
  bad.targets = {0.6};
  bad.out = (dir_ / "cal.fcab").string();
  bad.json = (dir_ / "cal.json").string();
  EXPECT_NO_THROW(calibrate::validate(bad));
  bad.targets = {0.8, 0.6};
  bad.out = options_.out;
  bad.json = options_.json;
  bad.force = true;
  EXPECT_NO_THROW(calibrate::validate(bad));
  EXPECT_NE(error_of([&] { calibrate::run(bad); }).find("missing.fcab"), std::string::npos);
}

TEST_F(CalibrateRun, WritesEveryTargetWithItsNoteAndReport) {
  std::vector<std::string> events;
  std::optional<calibrate::Data> data;
  calibrate::RunCallbacks callbacks;
  callbacks.data_loaded = [&](const Model& model, const calibrate::Data& d) {
    EXPECT_EQ(model.path(), model_);
    events.push_back("data");
    data = d;
  };
  callbacks.step = [&](const calibrate::Step&) {
    if (events.back() != "step") events.push_back("step");
  };
  callbacks.target_written = [&](const calibrate::TargetOutput& output) {
    EXPECT_TRUE(fs::exists(output.model_file));  // already written when announced
    events.push_back("wrote " + calibrate::target_text(output.target));
  };
  const std::vector<calibrate::TargetOutput> outputs = calibrate::run(options_, callbacks);
  EXPECT_EQ(events, (std::vector<std::string>{"data", "step", "wrote 0.8", "wrote 0.6"}));
  ASSERT_TRUE(data.has_value());
  EXPECT_EQ(data->source, texts_);
  EXPECT_EQ(data->available, 40);
  ASSERT_EQ(data->encodings.size(), 40u);
  int64_t tokens = 0;
  for (const Encoding& e : data->encodings) tokens += static_cast<int64_t>(e.ids.size());
  EXPECT_EQ(data->tokens, tokens);

  // The same search as calibrate_targets on the same examples.
  const std::vector<calibrate::Result> expected = calibrate::calibrate_targets(
      Model::load(model_, LoadOptions{1}), data->encodings, options_.search, options_.targets);
  ASSERT_EQ(outputs.size(), 2u);
  for (size_t i = 0; i < outputs.size(); ++i) {
    const calibrate::TargetOutput& output = outputs[i];
    SCOPED_TRACE(output.model_file);
    EXPECT_EQ(output.target, options_.targets[i]);
    EXPECT_EQ(output.model_file, calibrate::output_for(options_.out, output.target));
    EXPECT_EQ(output.report_file, calibrate::output_for(options_.json, output.target));
    EXPECT_EQ(output.result.schedule.keep_ratios, expected[i].schedule.keep_ratios);
    EXPECT_LE(output.result.final.flops_ratio, output.target);

    const ModelFile written = ModelFile::open(output.model_file);
    EXPECT_EQ(written.info().fca.keep_ratios, output.result.schedule.keep_ratios);
    const json provenance = json::parse(written.info().provenance_json);
    EXPECT_EQ(provenance.at("source"), "test_calibrate_search");  // the input's is kept
    const json note = provenance.at("calibration");
    EXPECT_EQ(note,
              json::parse(calibrate::provenance_note(options_, *data, output.target, output.result, false)));
    EXPECT_EQ(note.at("tool"), std::string("fcabert calibrate ") + version());
    EXPECT_EQ(note.at("source_model"), model_);
    EXPECT_EQ(note.at("examples"), 40);
    EXPECT_EQ(note.at("flops_target"), output.target);
    EXPECT_EQ(note.at("pooling"), "weighted");
    EXPECT_EQ(note.at("result").at("keep_ratios").get<std::vector<double>>(),
              output.result.schedule.keep_ratios);
    EXPECT_TRUE(note.at("result").contains("agreement"));
    EXPECT_FALSE(note.at("result").contains("normalized_mse"));

    const std::string report = read(output.report_file);
    EXPECT_EQ(report, calibrate::report_json(options_, *data, output.target, output.result, false,
                                             output.model_file));
    const json parsed = json::parse(report);
    EXPECT_EQ(parsed.at("format"), "fcabert-calibration");
    EXPECT_EQ(parsed.at("format_version"), 1);
    EXPECT_EQ(parsed.at("output_model"), output.model_file);
    EXPECT_EQ(parsed.at("steps").size(), output.result.steps.size());
    EXPECT_EQ(report.back(), '\n');
  }
  EXPECT_TRUE(temporaries().empty());
}

TEST_F(CalibrateRun, RegressionNotesAndNoReportWithoutJson) {
  calibrate_test::write_tiny_model(model_, HeadKind::kRegression, false);
  options_.targets = {0.7};
  options_.out = (dir_ / "regression.fcab").string();
  options_.json.clear();
  const std::vector<calibrate::TargetOutput> outputs = calibrate::run(options_);
  ASSERT_EQ(outputs.size(), 1u);
  EXPECT_TRUE(outputs[0].report_file.empty());
  const json note =
      json::parse(ModelFile::open(outputs[0].model_file).info().provenance_json).at("calibration");
  EXPECT_TRUE(note.at("result").contains("normalized_mse"));
  EXPECT_FALSE(note.at("result").contains("agreement"));
  for (const auto& entry : fs::directory_iterator(dir_)) EXPECT_NE(entry.path().extension(), ".json");
  EXPECT_TRUE(temporaries().empty());
}

}  // namespace
}  // namespace fcabert
