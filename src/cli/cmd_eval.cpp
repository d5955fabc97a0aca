// fcabert eval: batch evaluation on a GLUE dev set with the official metrics (docs/EVAL.md).
// fcabert eval-merge: exact global metrics from shard reports.
//
// Examples are tokenized once, sorted by token count (stable) and batched in that order for
// throughput; predictions are put back in file order for the outputs. FLOPs come from the
// per-sequence traces exactly as `profile` counts them (include/fcabert/flops.h); the dense
// figure is analytic (FlopsTally::dense_total) unless --compare-dense runs a dense Session.
//
// Shards: --shard K/N (1-based K) keeps the examples whose 0-based index i within the split
// (after --limit) has i % N == K - 1. Round-robin keeps every shard's length mix alike.
// A report records its shard set; eval-merge sums confusion matrices, joins regression pairs
// (ordered by example index, so the merged numbers equal an unsharded run bit for bit) and
// refuses overlapping or missing shards.
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <numeric>
#include <optional>
#include <string>
#include <tuple>
#include <vector>

#include "cli/commands.h"
#include "cli/line_encoding.h"
#include "cli/output_file.h"
#include "cli/precision_option.h"
#include "cli/progress.h"
#include "cli/schedule_options.h"
#include "fcabert/engine.h"
#include "fcabert/error.h"
#include "fcabert/fca.h"
#include "fcabert/flops.h"
#include "fcabert/glue.h"
#include "fcabert/metrics.h"
#include "text/unicode.h"

namespace fcabert::cli {
namespace {

using Json = nlohmann::ordered_json;
constexpr const char* kReportFormat = "fcabert-eval-report";
constexpr int kReportVersion = 1;

struct EvalOptions {
  std::string model;
  std::string task;
  std::string data;
  int64_t batch_size = 32;
  int threads = 2;
  std::string precision = "fp32";  // --precision
  int64_t max_len = 0;
  int64_t limit = 0;
  bool compare_dense = false;
  std::string json;
  std::string predictions;
  std::string shard = "1/1";
  bool skip_bad_rows = false;
  bool quiet = false;
  ScheduleFlags schedule;
};

struct Shard {
  int64_t index = 1, count = 1;  // 1-based index
};

Shard parse_shard(const std::string& text) {
  const size_t slash = text.find('/');
  Shard shard;
  try {
    if (slash == std::string::npos) throw std::invalid_argument("no slash");
    size_t used = 0;
    shard.index = std::stoll(text.substr(0, slash), &used);
    if (used != slash) throw std::invalid_argument("junk");
    shard.count = std::stoll(text.substr(slash + 1), &used);
    if (used != text.size() - slash - 1) throw std::invalid_argument("junk");
  } catch (const std::exception&) {
    throw Error("--shard '" + text + "': expected K/N, e.g. 2/8 (shard K of N, 1-based)");
  }
  if (shard.count < 1 || shard.index < 1 || shard.index > shard.count)
    throw Error("--shard '" + text + "': need 1 <= K <= N");
  return shard;
}

// ---------------------------------------------------------------------------------------
// Results (what a report holds, and what eval-merge adds up)

struct Side {  // one Session's results on one split
  metrics::ConfusionMatrix matrix;
  std::vector<std::tuple<int64_t, double, double>> pairs;  // (index, prediction, gold)
  int64_t examples = 0, tokens = 0, flops = 0, dense_flops = 0;
  double seconds = 0;  // Session::run wall time
};

struct SplitResult {
  std::string name, file;
  int64_t split_examples = 0;  // in the split after --limit, all shards together
  int64_t skipped = 0, truncated = 0;
  Side fca;
  std::optional<Side> dense;
};

struct Report {
  std::string task, model, fcabert_version;
  Json schedule;
  int64_t shard_count = 1;
  std::vector<int64_t> shards;  // 1-based shard indices covered
  int64_t max_len = 0, limit = 0;
  std::vector<SplitResult> splits;
};

metrics::RegressionPairs to_pairs(const Side& side) {
  auto sorted = side.pairs;
  std::sort(sorted.begin(), sorted.end());
  metrics::RegressionPairs pairs;
  for (const auto& [index, prediction, gold] : sorted) pairs.add(prediction, gold);
  return pairs;
}

metrics::Scores score(const glue::TaskInfo& task, const Side& side) {
  if (task.regression) return metrics::score_regression(to_pairs(side));
  return metrics::score_classification(side.matrix, task.glue_metric, task.positive);
}

Json side_json(const glue::TaskInfo& task, const Side& side) {
  Json out;
  const metrics::Scores scores = score(task, side);
  Json values = Json::object();
  for (const auto& [name, value] : scores.values) values[name] = value;
  out["metrics"] = values;
  out["glue_score"] = scores.glue;
  if (task.regression) {
    Json pairs = Json::array();
    auto sorted = side.pairs;
    std::sort(sorted.begin(), sorted.end());
    for (const auto& [index, prediction, gold] : sorted) pairs.push_back({index, prediction, gold});
    out["pairs"] = {{"columns", {"index", "prediction", "gold"}}, {"rows", pairs}};
  } else {
    Json counts = Json::array();
    for (int g = 0; g < side.matrix.classes(); ++g) {
      Json row = Json::array();
      for (int p = 0; p < side.matrix.classes(); ++p) row.push_back(side.matrix.at(g, p));
      counts.push_back(row);
    }
    out["confusion_matrix"] = {
        {"labels", task.label_names}, {"rows", "gold"}, {"columns", "predicted"}, {"counts", counts}};
  }
  out["examples"] = side.examples;
  out["tokens"] = side.tokens;
  const double n = static_cast<double>(std::max<int64_t>(1, side.examples));
  out["flops"] = {
      {"total", side.flops},
      {"per_example", static_cast<double>(side.flops) / n},
      {"dense_total", side.dense_flops},
      {"reduction_ratio", side.flops > 0 ? static_cast<double>(side.dense_flops) / side.flops : 0.0}};
  out["seconds"] = side.seconds;
  out["examples_per_second"] = side.seconds > 0 ? side.examples / side.seconds : 0.0;
  return out;
}

Side side_from_json(const glue::TaskInfo& task, const Json& in) {
  Side side;
  side.examples = in.at("examples").get<int64_t>();
  side.tokens = in.at("tokens").get<int64_t>();
  side.flops = in.at("flops").at("total").get<int64_t>();
  side.dense_flops = in.at("flops").at("dense_total").get<int64_t>();
  side.seconds = in.at("seconds").get<double>();
  if (task.regression) {
    for (const Json& row : in.at("pairs").at("rows"))
      side.pairs.emplace_back(row.at(0).get<int64_t>(), row.at(1).get<double>(), row.at(2).get<double>());
  } else {
    const int k = static_cast<int>(task.label_names.size());
    side.matrix = metrics::ConfusionMatrix(k);
    const Json& counts = in.at("confusion_matrix").at("counts");
    if (static_cast<int>(counts.size()) != k) throw Error("confusion matrix has the wrong number of rows");
    for (int g = 0; g < k; ++g) {
      if (static_cast<int>(counts.at(g).size()) != k) throw Error("confusion matrix row has the wrong size");
      for (int p = 0; p < k; ++p) side.matrix.add(g, p, counts.at(g).at(p).get<int64_t>());
    }
  }
  return side;
}

void merge_side(Side& into, const Side& other) {
  into.matrix.merge(other.matrix);
  into.pairs.insert(into.pairs.end(), other.pairs.begin(), other.pairs.end());
  into.examples += other.examples;
  into.tokens += other.tokens;
  into.flops += other.flops;
  into.dense_flops += other.dense_flops;
  into.seconds += other.seconds;
}

Json report_json(const Report& report) {
  const glue::TaskInfo& task = glue::task_info(glue::parse_task(report.task));
  Json out;
  out["format"] = kReportFormat;
  out["format_version"] = kReportVersion;
  out["fcabert_version"] = report.fcabert_version;
  out["backend_version"] = backend_version();
  out["task"] = report.task;
  out["glue_metric"] = task.glue_metric;
  out["model"] = report.model;
  out["schedule"] = report.schedule;
  out["max_len"] = report.max_len;
  out["limit"] = report.limit;
  out["shard_count"] = report.shard_count;
  out["shards"] = report.shards;
  Json splits = Json::array();
  for (const SplitResult& split : report.splits) {
    Json s;
    s["name"] = split.name;
    s["file"] = split.file;
    s["examples_in_split"] = split.split_examples;
    s["skipped_rows"] = split.skipped;
    s["truncated"] = split.truncated;
    s["fca"] = side_json(task, split.fca);
    if (split.dense) s["dense"] = side_json(task, *split.dense);
    splits.push_back(s);
  }
  out["splits"] = splits;
  return out;
}

Report report_from_json(const Json& in, const std::string& file) {
  Report report;
  try {
    if (in.value("format", std::string()) != kReportFormat)
      throw Error("not an fcabert eval report (no \"format\": \"" + std::string(kReportFormat) + "\")");
    if (in.at("format_version").get<int>() != kReportVersion)
      throw Error("report format version " + in.at("format_version").dump() +
                  " is not supported (this fcabert reads " + std::to_string(kReportVersion) + ")");
    report.task = in.at("task").get<std::string>();
    const glue::TaskInfo& task = glue::task_info(glue::parse_task(report.task));
    report.model = in.at("model").get<std::string>();
    report.fcabert_version = in.at("fcabert_version").get<std::string>();
    report.schedule = in.at("schedule");
    report.max_len = in.at("max_len").get<int64_t>();
    report.limit = in.at("limit").get<int64_t>();
    report.shard_count = in.at("shard_count").get<int64_t>();
    report.shards = in.at("shards").get<std::vector<int64_t>>();
    for (const Json& s : in.at("splits")) {
      SplitResult split;
      split.name = s.at("name").get<std::string>();
      split.file = s.at("file").get<std::string>();
      split.split_examples = s.at("examples_in_split").get<int64_t>();
      split.skipped = s.at("skipped_rows").get<int64_t>();
      split.truncated = s.at("truncated").get<int64_t>();
      split.fca = side_from_json(task, s.at("fca"));
      if (s.contains("dense")) split.dense = side_from_json(task, s.at("dense"));
      report.splits.push_back(std::move(split));
    }
  } catch (const Error& e) {
    throw Error(file + ": " + e.what());
  } catch (const nlohmann::json::exception& e) {
    throw Error(file + ": malformed eval report (" + std::string(e.what()) + ")");
  }
  return report;
}

// ---------------------------------------------------------------------------------------
// The human report

std::string fixed(double value, int digits) {
  char text[64];
  std::snprintf(text, sizeof text, "%.*f", digits, value);
  return text;
}

void print_table(const std::vector<std::vector<std::string>>& rows, std::ostream& out) {
  std::vector<size_t> widths;
  for (const auto& row : rows)
    for (size_t c = 0; c < row.size(); ++c) {
      if (widths.size() <= c) widths.push_back(0);
      widths[c] = std::max(widths[c], row[c].size());
    }
  for (const auto& row : rows) {
    std::string line;
    for (size_t c = 0; c < row.size(); ++c) {
      const std::string pad(widths[c] - row[c].size(), ' ');
      line += c == 0 ? row[c] + pad : pad + row[c];
      if (c + 1 < row.size()) line += "  ";
    }
    while (!line.empty() && line.back() == ' ') line.pop_back();
    out << "  " << line << '\n';
  }
}

std::string shard_text(const Report& report) {
  if (report.shard_count == 1) return "all";
  if (static_cast<int64_t>(report.shards.size()) == report.shard_count)
    return "all " + std::to_string(report.shard_count) + " shards merged";
  std::string text;
  for (int64_t k : report.shards) text += (text.empty() ? "" : ",") + std::to_string(k);
  return "shard " + text + " of " + std::to_string(report.shard_count);
}

void print_report(const Report& report, std::ostream& out, bool merged) {
  const glue::TaskInfo& task = glue::task_info(glue::parse_task(report.task));
  out << "task       " << task.name << " (" << task.dir_name << "), GLUE metric " << task.glue_metric << '\n';
  out << "model      " << report.model << '\n';
  out << "schedule   " << report.schedule.value("description", std::string()) << '\n';
  out << "examples   " << shard_text(report) << '\n';
  for (const SplitResult& split : report.splits) {
    out << "\nsplit " << split.name << ": " << split.file << "\n  " << split.fca.examples << " examples";
    if (split.fca.examples != split.split_examples) out << " of " << split.split_examples;
    out << ", " << split.fca.tokens << " tokens";
    if (split.skipped > 0) out << ", " << split.skipped << " malformed row(s) skipped";
    if (split.truncated > 0) out << ", " << split.truncated << " truncated";
    out << "\n\n";
    const bool dense = split.dense.has_value();
    const metrics::Scores fs = score(task, split.fca);
    std::optional<metrics::Scores> ds;
    if (dense) ds = score(task, *split.dense);
    std::vector<std::vector<std::string>> rows;
    rows.push_back(dense ? std::vector<std::string>{"", "FCA", "dense", "FCA - dense"}
                         : std::vector<std::string>{"", "FCA"});
    auto metric_row = [&](const std::string& name, double f, double d) {
      if (dense)
        rows.push_back(
            {name, fixed(100 * f, 2), fixed(100 * d, 2), (f >= d ? "+" : "") + fixed(100 * (f - d), 2)});
      else
        rows.push_back({name, fixed(100 * f, 2)});
    };
    for (size_t i = 0; i < fs.values.size(); ++i)
      metric_row(fs.values[i].first, fs.values[i].second, ds ? ds->values[i].second : 0.0);
    metric_row("GLUE score", fs.glue, ds ? ds->glue : 0.0);
    const Side& f = split.fca;
    const double n = static_cast<double>(std::max<int64_t>(1, f.examples));
    auto row = [&](const std::string& name, const std::string& a, const std::string& b,
                   const std::string& c) {
      if (dense)
        rows.push_back({name, a, b, c});
      else
        rows.push_back({name, a});
    };
    const int64_t dense_flops = dense ? split.dense->flops : f.dense_flops;
    row("GFLOPs total", fixed(f.flops / 1e9, 3), fixed(dense_flops / 1e9, 3), "");
    row("MFLOPs / example", fixed(f.flops / n / 1e6, 2), fixed(dense_flops / n / 1e6, 2), "");
    row("FLOPs reduction", fixed(f.flops > 0 ? static_cast<double>(dense_flops) / f.flops : 0.0, 3) + "x",
        "1x", "");
    if (!dense) rows.push_back({"dense GFLOPs (analytic)", fixed(f.dense_flops / 1e9, 3)});
    const std::string time_label = merged ? "time (s, summed)" : "time (s)";
    row(time_label, fixed(f.seconds, 2), dense ? fixed(split.dense->seconds, 2) : "", "");
    row("examples/s", fixed(f.seconds > 0 ? f.examples / f.seconds : 0.0, 1),
        dense ? fixed(split.dense->seconds > 0 ? split.dense->examples / split.dense->seconds : 0.0, 1) : "",
        "");
    if (dense)
      row("speed-up", fixed(f.seconds > 0 ? split.dense->seconds / f.seconds : 0.0, 3) + "x", "1x", "");
    print_table(rows, out);
    if (!task.regression) {
      out << "\n  confusion matrix (rows gold, columns predicted; FCA): " << task.label_names.size()
          << " classes\n";
      std::vector<std::vector<std::string>> cm;
      std::vector<std::string> header = {""};
      for (const std::string& name : task.label_names) header.push_back(name);
      cm.push_back(header);
      for (int g = 0; g < f.matrix.classes(); ++g) {
        std::vector<std::string> r = {task.label_names[static_cast<size_t>(g)]};
        for (int p = 0; p < f.matrix.classes(); ++p) r.push_back(std::to_string(f.matrix.at(g, p)));
        cm.push_back(r);
      }
      print_table(cm, out);
    }
  }
  out << "\nmetrics in %; FLOPs: multiply-add = 2, real token counts, no padding (include/fcabert/flops.h)\n";
}

// ---------------------------------------------------------------------------------------
// Running

Json schedule_json(const FcaSchedule& schedule) {
  Json out;
  out["description"] = describe_schedule(schedule);
  out["keep_ratios"] = schedule.keep_ratios;
  out["clusters"] = schedule.clusters;
  out["pooling"] = fca::pooling_name(schedule.pooling);
  return out;
}

// Adds one sequence's exact FLOPs from its trace (as profile does).
void tally_sequence(FlopsTally& tally, const FcaSchedule& schedule, const Encoding& encoding,
                    const SequenceTrace& trace) {
  const BertConfig& config = tally.config();
  const int64_t n0 = static_cast<int64_t>(encoding.ids.size());
  const bool traced = static_cast<int64_t>(trace.layers.size()) == config.num_layers;
  const std::vector<fca::ReductionShape> shapes =
      traced ? trace.layers : fca::schedule_shapes(schedule, config.num_layers, n0);
  tally.add_sequence(n0);
  for (size_t l = 0; l < shapes.size(); ++l)
    tally.add_layer(static_cast<int64_t>(l), layer_flops(config, shapes[l], schedule.pooling));
}

int argmax(const std::vector<float>& values) {
  return static_cast<int>(std::max_element(values.begin(), values.end()) - values.begin());
}

struct Outcome {  // one example's result on one Session
  std::vector<float> logits, probabilities;
};

void record(Side& side, const glue::TaskInfo& task, const std::vector<int>& model_to_task, int64_t index,
            const glue::Example& example, const Outcome& outcome) {
  if (task.regression)
    side.pairs.emplace_back(index, static_cast<double>(outcome.logits.at(0)), example.score);
  else
    side.matrix.add(example.label, model_to_task.at(static_cast<size_t>(argmax(outcome.logits))));
}

void run_eval(const EvalOptions& options) {
  if (options.batch_size < 1) throw Error("--batch-size must be at least 1");
  if (options.threads < 1) throw Error("--threads must be at least 1");
  if (options.limit < 0) throw Error("--limit must be at least 0");
  if (options.data.empty()) throw Error("--data is required: a GLUE task folder or a .tsv file");
  const Shard shard = parse_shard(options.shard);
  glue::Task task_id;
  if (!options.task.empty()) {
    task_id = glue::parse_task(options.task);
  } else if (!glue::detect_task(options.data, task_id)) {
    throw Error("cannot tell the GLUE task from '" + options.data +
                "' (no folder named SST-2, CoLA, MRPC, STS-B, QQP, MNLI, QNLI, RTE or WNLI); give --task");
  }
  const glue::TaskInfo& task = glue::task_info(task_id);
  const std::vector<std::string> files = glue::resolve_data_files(task_id, options.data);
  glue::ReadOptions read_options;
  read_options.skip_bad_rows = options.skip_bad_rows;
  std::vector<glue::Split> splits;
  for (const std::string& file : files) {
    splits.push_back(glue::read_split(task_id, file, read_options));
    if (splits.back().skipped > 0)
      spdlog::warn("{}: skipped {} malformed row(s)", file, splits.back().skipped);
  }

  auto model = Model::load(options.model, load_options(options.threads, options.precision));
  const ModelInfo& info = model->info();
  const bool model_regression = info.head.kind == HeadKind::Regression;
  if (model_regression != task.regression)
    throw Error("task " + task.name + " is " + (task.regression ? "a regression" : "a classification") +
                " task but the model " + options.model + " has a " +
                (model_regression ? "regression" : "classification") + " head");
  if (info.head.pair_input != task.pair)
    throw Error("task " + task.name + " takes " + (task.pair ? "sentence pairs" : "single sentences") +
                " but the model " + options.model + " takes " +
                (info.head.pair_input ? "sentence pairs" : "single sentences"));
  std::vector<int> model_to_task;
  if (!task.regression) {
    const std::vector<int> task_to_model = glue::label_map(task_id, info.head.labels);
    model_to_task.assign(task_to_model.size(), 0);
    for (size_t t = 0; t < task_to_model.size(); ++t)
      model_to_task[static_cast<size_t>(task_to_model[t])] = static_cast<int>(t);
  }
  const int64_t max_len = resolve_max_len(options.max_len, info);
  SessionOptions fca_options;
  fca_options.schedule = resolve_schedule(options.schedule, info);
  Session session(model, fca_options);
  std::optional<Session> dense_session;
  if (options.compare_dense) {
    SessionOptions dense_options;
    dense_options.schedule = FcaSchedule{};
    dense_session.emplace(model, dense_options);
  }
  const int64_t num_labels = std::max<int64_t>(1, static_cast<int64_t>(info.head.labels.size()));

  Report report;
  report.task = task.name;
  report.model = options.model;
  report.fcabert_version = FCABERT_VERSION;
  report.schedule = schedule_json(session.schedule());
  report.shard_count = shard.count;
  report.shards = {shard.index};
  report.max_len = max_len;
  report.limit = options.limit;

  // Written to a temporary, renamed when complete (removed on an error or SIGINT).
  std::unique_ptr<OutputFile> predictions_out;
  if (!options.predictions.empty()) predictions_out = std::make_unique<OutputFile>(options.predictions);

  for (glue::Split& split : splits) {
    SplitResult result;
    result.name = split.name;
    result.file = split.path;
    result.skipped = split.skipped;
    if (options.limit > 0 && static_cast<int64_t>(split.examples.size()) > options.limit)
      split.examples.resize(static_cast<size_t>(options.limit));
    result.split_examples = static_cast<int64_t>(split.examples.size());
    std::vector<int64_t> indices;  // the examples of this shard (index within the split)
    for (int64_t i = 0; i < result.split_examples; ++i)
      if (i % shard.count == shard.index - 1) indices.push_back(i);
    if (indices.empty())
      throw Error(split.path + ": no examples to evaluate" +
                  (shard.count > 1 ? " in shard " + options.shard : std::string()) +
                  "; the metrics need at least one example");

    std::vector<Encoding> encodings;
    encodings.reserve(indices.size());
    for (int64_t i : indices) {
      const glue::Example& example = split.examples[static_cast<size_t>(i)];
      const std::string where = split.path + ":" + std::to_string(example.line) + ": ";
      try {
        text::check_utf8(example.text_a);
        if (task.pair) {
          text::check_utf8(example.text_b);
          encodings.push_back(model->tokenizer().encode_pair(example.text_a, example.text_b, max_len));
        } else {
          encodings.push_back(model->tokenizer().encode(example.text_a, max_len));
        }
      } catch (const Error& e) {
        throw Error(where + e.what());
      }
      result.truncated += encodings.back().truncated;
    }
    std::vector<size_t> order(encodings.size());
    std::iota(order.begin(), order.end(), size_t{0});
    std::stable_sort(order.begin(), order.end(),
                     [&](size_t a, size_t b) { return encodings[a].ids.size() < encodings[b].ids.size(); });

    FlopsTally fca_tally(info.bert, num_labels), dense_tally(info.bert, num_labels);
    std::vector<Outcome> fca_outcomes(encodings.size()), dense_outcomes(dense_session ? encodings.size() : 0);
    double fca_seconds = 0, dense_seconds = 0;
    Progress progress(dense_session ? "examples (FCA + dense)" : "examples", !options.quiet);
    std::vector<Encoding> batch;
    const size_t batch_size = static_cast<size_t>(options.batch_size);
    for (size_t start = 0; start < order.size(); start += batch_size) {
      const size_t end = std::min(order.size(), start + batch_size);
      batch.clear();
      for (size_t j = start; j < end; ++j) batch.push_back(encodings[order[j]]);
      auto run_one = [&](Session& s, FlopsTally& tally, std::vector<Outcome>& outcomes, double& seconds) {
        const auto t0 = std::chrono::steady_clock::now();
        std::vector<Prediction> predictions = s.run(batch);
        seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        for (size_t j = 0; j < predictions.size(); ++j) {
          tally_sequence(tally, s.schedule(), batch[j], predictions[j].trace);
          outcomes[order[start + j]] =
              Outcome{std::move(predictions[j].logits), std::move(predictions[j].probabilities)};
        }
      };
      // With --compare-dense, which Session goes first alternates (shared CPU caches).
      const bool dense_first = dense_session && (start / batch_size) % 2 == 1;
      if (dense_first) run_one(*dense_session, dense_tally, dense_outcomes, dense_seconds);
      run_one(session, fca_tally, fca_outcomes, fca_seconds);
      if (dense_session && !dense_first) run_one(*dense_session, dense_tally, dense_outcomes, dense_seconds);
      progress.update(static_cast<int64_t>(end), end, order.size());
    }
    progress.finish(static_cast<int64_t>(order.size()));

    auto fill = [&](Side& side, const FlopsTally& tally, const std::vector<Outcome>& outcomes,
                    double seconds) {
      if (!task.regression) side.matrix = metrics::ConfusionMatrix(static_cast<int>(task.label_names.size()));
      for (size_t j = 0; j < indices.size(); ++j)
        record(side, task, model_to_task, indices[j], split.examples[static_cast<size_t>(indices[j])],
               outcomes[j]);
      side.examples = static_cast<int64_t>(indices.size());
      side.tokens = tally.tokens();
      side.flops = tally.total();
      side.dense_flops = tally.dense_total();
      side.seconds = seconds;
    };
    fill(result.fca, fca_tally, fca_outcomes, fca_seconds);
    if (dense_session) {
      result.dense.emplace();
      fill(*result.dense, dense_tally, dense_outcomes, dense_seconds);
    }
    if (result.truncated > 0)
      spdlog::warn("{}: {} example(s) were longer than {} tokens and were truncated", split.path,
                   result.truncated, max_len);

    if (predictions_out) {
      for (size_t j = 0; j < indices.size(); ++j) {
        const glue::Example& example = split.examples[static_cast<size_t>(indices[j])];
        Json row;
        row["split"] = split.name;
        row["index"] = indices[j];
        row["line"] = example.line;
        auto describe = [&](const Outcome& outcome, const char* prediction_key, const char* values_key) {
          if (task.regression) {
            row[prediction_key] = outcome.logits.at(0);
            return;
          }
          const int predicted = model_to_task[static_cast<size_t>(argmax(outcome.logits))];
          row[prediction_key] = task.label_names[static_cast<size_t>(predicted)];
          Json probabilities = Json::object();
          for (size_t t = 0; t < task.label_names.size(); ++t) {
            // task class t is model output task_to_model[t]; find it through the inverse map
            for (size_t m = 0; m < model_to_task.size(); ++m)
              if (model_to_task[m] == static_cast<int>(t))
                probabilities[task.label_names[t]] = outcome.probabilities.at(m);
          }
          row[values_key] = probabilities;
        };
        describe(fca_outcomes[j], "prediction", "probabilities");
        if (task.regression)
          row["gold"] = example.score;
        else
          row["gold"] = task.label_names[static_cast<size_t>(example.label)];
        if (dense_session) describe(dense_outcomes[j], "dense_prediction", "dense_probabilities");
        predictions_out->stream() << row.dump() << '\n';
      }
    }
    report.splits.push_back(std::move(result));
  }

  if (predictions_out) predictions_out->commit();
  if (!options.json.empty()) write_file_atomically(options.json, report_json(report).dump(2) + "\n");
  print_report(report, std::cout, false);
}

// ---------------------------------------------------------------------------------------
// eval-merge

struct MergeOptions {
  std::vector<std::string> reports;
  std::string json;
};

void run_eval_merge(const MergeOptions& options) {
  if (options.reports.empty()) throw Error("eval-merge needs at least one report");
  std::vector<Report> reports;
  for (const std::string& file : options.reports) {
    std::ifstream in(file, std::ios::binary);
    if (!in) throw Error(file + ": cannot open the report");
    Json json;
    try {
      json = Json::parse(in);
    } catch (const nlohmann::json::exception& e) {
      throw Error(file + ": not valid JSON (" + std::string(e.what()) + ")");
    }
    reports.push_back(report_from_json(json, file));
  }
  Report merged = reports.front();
  std::map<int64_t, std::string> seen;  // shard -> report file
  for (size_t r = 0; r < reports.size(); ++r) {
    const Report& report = reports[r];
    const std::string& file = options.reports[r];
    auto differ = [&](const std::string& what, const std::string& a, const std::string& b) {
      throw Error(file + ": its " + what + " (" + b + ") differs from " + options.reports.front() + "'s (" +
                  a + "); merge only shards of one evaluation");
    };
    if (report.task != merged.task) differ("task", merged.task, report.task);
    if (report.model != merged.model) differ("model", merged.model, report.model);
    if (report.schedule != merged.schedule)
      differ("schedule", merged.schedule.dump(), report.schedule.dump());
    if (report.max_len != merged.max_len)
      differ("max_len", std::to_string(merged.max_len), std::to_string(report.max_len));
    if (report.limit != merged.limit)
      differ("limit", std::to_string(merged.limit), std::to_string(report.limit));
    if (report.shard_count != merged.shard_count)
      differ("shard count", std::to_string(merged.shard_count), std::to_string(report.shard_count));
    if (report.splits.size() != merged.splits.size())
      differ("split count", std::to_string(merged.splits.size()), std::to_string(report.splits.size()));
    for (size_t s = 0; s < report.splits.size(); ++s) {
      if (report.splits[s].name != merged.splits[s].name)
        differ("split", merged.splits[s].name, report.splits[s].name);
      if (report.splits[s].split_examples != merged.splits[s].split_examples)
        differ("example count of split " + report.splits[s].name,
               std::to_string(merged.splits[s].split_examples),
               std::to_string(report.splits[s].split_examples));
      if (report.splits[s].dense.has_value() != merged.splits[s].dense.has_value())
        differ("--compare-dense setting", merged.splits[s].dense ? "on" : "off",
               report.splits[s].dense ? "on" : "off");
    }
    for (int64_t k : report.shards) {
      if (k < 1 || k > report.shard_count)
        throw Error(file + ": shard " + std::to_string(k) + " is out of range");
      const auto [it, fresh] = seen.emplace(k, file);
      if (!fresh)
        throw Error("shard " + std::to_string(k) + "/" + std::to_string(report.shard_count) +
                    " appears in both " + it->second + " and " + file + "; each shard must be merged once");
    }
    if (r == 0) continue;
    for (size_t s = 0; s < report.splits.size(); ++s) {
      SplitResult& into = merged.splits[s];
      const SplitResult& from = report.splits[s];
      into.skipped = std::max(into.skipped, from.skipped);  // every shard reads the whole file
      into.truncated += from.truncated;
      merge_side(into.fca, from.fca);
      if (into.dense) merge_side(*into.dense, *from.dense);
    }
  }
  std::string missing;
  for (int64_t k = 1; k <= merged.shard_count; ++k)
    if (!seen.count(k)) missing += (missing.empty() ? "" : ", ") + std::to_string(k);
  if (!missing.empty())
    throw Error("shard(s) " + missing + " of " + std::to_string(merged.shard_count) +
                " are missing; give every shard's report to eval-merge");
  merged.shards.clear();
  for (const auto& [k, file] : seen) merged.shards.push_back(k);
  for (const SplitResult& split : merged.splits)
    if (split.fca.examples != split.split_examples)
      throw Error("split " + split.name + ": the shards hold " + std::to_string(split.fca.examples) +
                  " examples, not " + std::to_string(split.split_examples) +
                  "; were the shards run with the same data and options?");
  if (!options.json.empty()) write_file_atomically(options.json, report_json(merged).dump(2) + "\n");
  print_report(merged, std::cout, true);
}

}  // namespace

void register_eval(CLI::App& app) {
  auto options = std::make_shared<EvalOptions>();
  options->model = default_model_path();
  CLI::App* cmd =
      app.add_subcommand("eval", "evaluate on a GLUE dev set with the official metrics (docs/EVAL.md)");
  cmd->add_option("-m,--model", options->model, "model file")->capture_default_str();
  cmd->add_option(
      "--task", options->task,
      "GLUE task: cola, sst2, mrpc, stsb, qqp, mnli, qnli, rte, wnli (default: from the --data folder)");
  cmd->add_option("--data", options->data,
                  "a GLUE task folder (uses dev.tsv; MNLI: both dev sets) or a .tsv file")
      ->required();
  cmd->add_option("-b,--batch-size", options->batch_size, "sequences per packed batch")
      ->capture_default_str();
  cmd->add_option("-t,--threads", options->threads, "CPU threads (also used by oneDNN)")
      ->capture_default_str();
  cmd->add_option("--max-len", options->max_len,
                  "truncate examples to this many tokens (default: the model's)");
  cmd->add_option("--limit", options->limit, "evaluate only the first N examples of each split");
  cmd->add_flag("--compare-dense", options->compare_dense,
                "also run the dense model in the same run and report both side by side");
  cmd->add_option("--json", options->json, "write the full report as JSON to FILE (input to eval-merge)");
  cmd->add_option("--predictions", options->predictions, "write one JSON line per example to FILE");
  cmd->add_option("--shard", options->shard,
                  "evaluate shard K of N (1-based): the examples with index % N == K-1")
      ->capture_default_str();
  cmd->add_flag("--skip-bad-rows", options->skip_bad_rows,
                "skip (and count) malformed rows instead of failing");
  cmd->add_flag("-q,--quiet", options->quiet, "no progress bar and no summary line on stderr");
  add_schedule_flags(cmd, options->schedule);
  add_precision_flag(cmd, options->precision);
  cmd->callback([options] { run_eval(*options); });
}

void register_eval_merge(CLI::App& app) {
  auto options = std::make_shared<MergeOptions>();
  CLI::App* cmd =
      app.add_subcommand("eval-merge", "combine `eval --shard K/N --json` reports into exact global metrics");
  cmd->add_option("reports", options->reports, "the shard reports (JSON)")->required();
  cmd->add_option("--json", options->json, "write the merged report as JSON to FILE");
  cmd->callback([options] { run_eval_merge(*options); });
}

}  // namespace fcabert::cli
