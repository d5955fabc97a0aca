// Evaluation reports (include/fcabert/evaluate.h): JSON in and out, and merging shards.
#include <algorithm>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "fcabert/engine.h"
#include "fcabert/error.h"
#include "fcabert/evaluate.h"
#include "fcabert/fca.h"

namespace fcabert::eval {
namespace {

using Json = nlohmann::ordered_json;
constexpr const char* kReportFormat = "fcabert-eval-report";
constexpr int kReportVersion = 2;  // 2: model_sha256 and precision

double per_second(int64_t examples, double seconds) { return seconds > 0 ? examples / seconds : 0.0; }

Json confusion_json(const glue::TaskInfo& task, const metrics::ConfusionMatrix& matrix) {
  Json counts = Json::array();
  for (int g = 0; g < matrix.classes(); ++g) {
    Json row = Json::array();
    for (int p = 0; p < matrix.classes(); ++p) row.push_back(matrix.at(g, p));
    counts.push_back(row);
  }
  return {{"labels", task.label_names}, {"rows", "gold"}, {"columns", "predicted"}, {"counts", counts}};
}

Json side_json(const glue::TaskInfo& task, const SideResult& side) {
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
    out["confusion_matrix"] = confusion_json(task, side.matrix);
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
  out["examples_per_second"] = per_second(side.examples, side.seconds);
  return out;
}

SideResult side_from_json(const glue::TaskInfo& task, const Json& in) {
  SideResult side;
  side.examples = in.at("examples").get<int64_t>();
  side.tokens = in.at("tokens").get<int64_t>();
  side.flops = in.at("flops").at("total").get<int64_t>();
  side.dense_flops = in.at("flops").at("dense_total").get<int64_t>();
  side.seconds = in.at("seconds").get<double>();
  if (task.regression) {
    for (const Json& row : in.at("pairs").at("rows"))
      side.pairs.emplace_back(row.at(0).get<int64_t>(), row.at(1).get<double>(), row.at(2).get<double>());
    return side;
  }
  const int k = static_cast<int>(task.label_names.size());
  side.matrix = metrics::ConfusionMatrix(k);
  const Json& counts = in.at("confusion_matrix").at("counts");
  if (static_cast<int>(counts.size()) != k) throw Error("confusion matrix has the wrong number of rows");
  for (int g = 0; g < k; ++g) {
    if (static_cast<int>(counts.at(g).size()) != k) throw Error("confusion matrix row has the wrong size");
    for (int p = 0; p < k; ++p) side.matrix.add(g, p, counts.at(g).at(p).get<int64_t>());
  }
  return side;
}

Json split_json(const glue::TaskInfo& task, const SplitResult& split) {
  Json s;
  s["name"] = split.name;
  s["file"] = split.file;
  s["examples_in_split"] = split.split_examples;
  s["skipped_rows"] = split.skipped;
  s["truncated"] = split.truncated;
  s["fca"] = side_json(task, split.fca);
  if (split.dense) s["dense"] = side_json(task, *split.dense);
  return s;
}

SplitResult split_from_json(const glue::TaskInfo& task, const Json& s) {
  SplitResult split;
  split.name = s.at("name").get<std::string>();
  split.file = s.at("file").get<std::string>();
  split.split_examples = s.at("examples_in_split").get<int64_t>();
  split.skipped = s.at("skipped_rows").get<int64_t>();
  split.truncated = s.at("truncated").get<int64_t>();
  split.fca = side_from_json(task, s.at("fca"));
  if (s.contains("dense")) split.dense = side_from_json(task, s.at("dense"));
  return split;
}

void merge_side(SideResult& into, const SideResult& other) {
  into.matrix.merge(other.matrix);
  into.pairs.insert(into.pairs.end(), other.pairs.begin(), other.pairs.end());
  into.examples += other.examples;
  into.tokens += other.tokens;
  into.flops += other.flops;
  into.dense_flops += other.dense_flops;
  into.seconds += other.seconds;
}

// Throws unless `report` is a shard of the same evaluation as `first`.
void check_same_evaluation(const Report& first, const std::string& first_name, const Report& report,
                           const std::string& name) {
  auto differ = [&](const std::string& what, const std::string& a, const std::string& b) {
    throw Error(name + ": its " + what + " (" + b + ") differs from " + first_name + "'s (" + a +
                "); merge only shards of one evaluation");
  };
  if (report.task != first.task) differ("task", first.task, report.task);
  if (report.model_sha256 != first.model_sha256)
    differ("model (SHA-256 of the file)", first.model + " " + first.model_sha256,
           report.model + " " + report.model_sha256);
  if (report.precision != first.precision) differ("precision", first.precision, report.precision);
  if (report.fcabert_version != first.fcabert_version)
    differ("fcabert version", first.fcabert_version, report.fcabert_version);
  if (fca::schedule_to_json(report.schedule) != fca::schedule_to_json(first.schedule))
    differ("schedule", fca::schedule_to_json(first.schedule).dump(),
           fca::schedule_to_json(report.schedule).dump());
  if (report.max_len != first.max_len)
    differ("max_len", std::to_string(first.max_len), std::to_string(report.max_len));
  if (report.limit != first.limit) differ("limit", std::to_string(first.limit), std::to_string(report.limit));
  if (report.shard_count != first.shard_count)
    differ("shard count", std::to_string(first.shard_count), std::to_string(report.shard_count));
  if (report.splits.size() != first.splits.size())
    differ("split count", std::to_string(first.splits.size()), std::to_string(report.splits.size()));
  for (size_t s = 0; s < report.splits.size(); ++s) {
    const SplitResult &a = first.splits[s], &b = report.splits[s];
    if (b.name != a.name) differ("split", a.name, b.name);
    if (b.split_examples != a.split_examples)
      differ("example count of split " + b.name, std::to_string(a.split_examples),
             std::to_string(b.split_examples));
    if (b.dense.has_value() != a.dense.has_value())
      differ("--compare-dense setting", a.dense ? "on" : "off", b.dense ? "on" : "off");
  }
}

// Records the report's shards in `seen` (shard -> report name); throws for one seen before.
void claim_shards(const Report& report, const std::string& name, std::map<int64_t, std::string>& seen) {
  for (int64_t k : report.shards) {
    if (k < 1 || k > report.shard_count)
      throw Error(name + ": shard " + std::to_string(k) + " is out of range");
    const auto [it, fresh] = seen.emplace(k, name);
    if (!fresh)
      throw Error("shard " + std::to_string(k) + "/" + std::to_string(report.shard_count) +
                  " appears in both " + it->second + " and " + name + "; each shard must be merged once");
  }
}

void check_complete(const Report& merged, const std::map<int64_t, std::string>& seen) {
  std::string missing;
  for (int64_t k = 1; k <= merged.shard_count; ++k)
    if (!seen.count(k)) missing += (missing.empty() ? "" : ", ") + std::to_string(k);
  if (!missing.empty())
    throw Error("shard(s) " + missing + " of " + std::to_string(merged.shard_count) +
                " are missing; give every shard's report to eval-merge");
  for (const SplitResult& split : merged.splits)
    if (split.fca.examples != split.split_examples)
      throw Error("split " + split.name + ": the shards hold " + std::to_string(split.fca.examples) +
                  " examples, not " + std::to_string(split.split_examples) +
                  "; were the shards run with the same data and options?");
}

}  // namespace

Report merge_reports(const std::vector<Report>& reports, const std::vector<std::string>& names) {
  if (reports.empty()) throw Error("eval-merge needs at least one report");
  if (names.size() != reports.size()) throw Error("merge_reports: one name per report is needed");
  Report merged = reports.front();
  std::map<int64_t, std::string> seen;  // shard -> report name
  for (size_t r = 0; r < reports.size(); ++r) {
    const Report& report = reports[r];
    check_same_evaluation(merged, names.front(), report, names[r]);
    claim_shards(report, names[r], seen);
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
  check_complete(merged, seen);
  merged.shards.clear();
  for (const auto& [k, name] : seen) merged.shards.push_back(k);
  return merged;
}

std::string report_to_json(const Report& report) {
  const glue::TaskInfo& task = glue::task_info(glue::parse_task(report.task));
  Json out;
  out["format"] = kReportFormat;
  out["format_version"] = kReportVersion;
  out["fcabert_version"] = report.fcabert_version;
  out["backend_version"] = backend_version();
  out["task"] = report.task;
  out["glue_metric"] = task.glue_metric;
  out["model"] = report.model;
  out["model_sha256"] = report.model_sha256;
  out["precision"] = report.precision;
  out["schedule"] = fca::schedule_to_json(report.schedule);
  out["max_len"] = report.max_len;
  out["limit"] = report.limit;
  out["shard_count"] = report.shard_count;
  out["shards"] = report.shards;
  Json splits = Json::array();
  for (const SplitResult& split : report.splits) splits.push_back(split_json(task, split));
  out["splits"] = splits;
  return out.dump(2) + "\n";
}

Report report_from_json(const std::string& text, const std::string& file) {
  Json in;
  try {
    in = Json::parse(text);
  } catch (const nlohmann::json::exception& e) {
    throw Error(file + ": not valid JSON (" + std::string(e.what()) + ")");
  }
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
    report.model_sha256 = in.at("model_sha256").get<std::string>();
    report.precision = in.at("precision").get<std::string>();
    report.fcabert_version = in.at("fcabert_version").get<std::string>();
    report.schedule = fca::schedule_from_json(in.at("schedule"));
    report.max_len = in.at("max_len").get<int64_t>();
    report.limit = in.at("limit").get<int64_t>();
    report.shard_count = in.at("shard_count").get<int64_t>();
    report.shards = in.at("shards").get<std::vector<int64_t>>();
    for (const Json& s : in.at("splits")) report.splits.push_back(split_from_json(task, s));
  } catch (const Error& e) {
    throw Error(file + ": " + e.what());
  } catch (const nlohmann::json::exception& e) {
    throw Error(file + ": malformed eval report (" + std::string(e.what()) + ")");
  }
  return report;
}

Report read_report(const std::string& file) {
  std::ifstream in(file, std::ios::binary);
  if (!in) throw Error(file + ": cannot open the report");
  std::ostringstream text;
  text << in.rdbuf();
  return report_from_json(text.str(), file);
}

}  // namespace fcabert::eval
