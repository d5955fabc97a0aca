// GLUE TSV readers (include/fcabert/glue.h).
#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include "fcabert/error.h"
#include "fcabert/glue.h"

namespace fcabert::glue {
namespace {

std::vector<TaskInfo> make_tasks() {
  std::vector<TaskInfo> tasks;
  auto add = [&](Task task, std::string name, std::string dir, bool pair, bool regression, bool header,
                 std::vector<std::string> names, std::vector<std::string> raw, int positive,
                 std::string metric, int a, int b, int label, int min_columns) {
    TaskInfo info;
    info.task = task;
    info.name = std::move(name);
    info.dir_name = std::move(dir);
    info.pair = pair;
    info.regression = regression;
    info.header = header;
    info.label_names = std::move(names);
    info.raw_labels = std::move(raw);
    info.positive = positive;
    info.glue_metric = std::move(metric);
    info.text_a = a;
    info.text_b = b;
    info.label_column = label;
    info.min_columns = min_columns;
    tasks.push_back(std::move(info));
  };
  // CoLA: no header; source, label, author's mark, sentence.
  add(Task::kCoLA, "cola", "CoLA", false, false, false, {"unacceptable", "acceptable"}, {"0", "1"}, -1, "mcc",
      3, -1, 1, 4);
  add(Task::kSST2, "sst2", "SST-2", false, false, true, {"negative", "positive"}, {"0", "1"}, -1, "acc", 0,
      -1, 1, 2);
  // MRPC: Quality, #1 ID, #2 ID, #1 String, #2 String.
  add(Task::kMRPC, "mrpc", "MRPC", true, false, true, {"not_equivalent", "equivalent"}, {"0", "1"}, 1,
      "f1+acc", 3, 4, 0, 5);
  // STS-B: 10 columns, sentence1/2 at 7/8, score last.
  add(Task::kSTSB, "stsb", "STS-B", true, true, true, {"score"}, {}, -1, "pearson+spearman", 7, 8, -1, 10);
  // QQP: id, qid1, qid2, question1, question2, is_duplicate.
  add(Task::kQQP, "qqp", "QQP", true, false, true, {"not_duplicate", "duplicate"}, {"0", "1"}, 1, "f1+acc", 3,
      4, 5, 6);
  // MNLI: 12 columns in train, 16 in dev; sentence1/2 at 8/9, gold label last.
  add(Task::kMNLI, "mnli", "MNLI", true, false, true, {"contradiction", "entailment", "neutral"},
      {"contradiction", "entailment", "neutral"}, -1, "acc", 8, 9, -1, 12);
  add(Task::kQNLI, "qnli", "QNLI", true, false, true, {"entailment", "not_entailment"},
      {"entailment", "not_entailment"}, -1, "acc", 1, 2, 3, 4);
  add(Task::kRTE, "rte", "RTE", true, false, true, {"entailment", "not_entailment"},
      {"entailment", "not_entailment"}, -1, "acc", 1, 2, 3, 4);
  add(Task::kWNLI, "wnli", "WNLI", true, false, true, {"not_entailment", "entailment"}, {"0", "1"}, -1, "acc",
      1, 2, 3, 4);
  return tasks;
}

const std::vector<TaskInfo>& tasks() {
  static const std::vector<TaskInfo> all = make_tasks();
  return all;
}

// Lower case without '-' and '_' ("SST-2" -> "sst2", "not_entailment" -> "notentailment").
std::string squash(std::string_view text) {
  std::string out;
  for (char c : text)
    if (c != '-' && c != '_') out += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

std::vector<std::string_view> split_tabs(std::string_view line) {
  std::vector<std::string_view> columns;
  size_t start = 0;
  for (;;) {
    const size_t tab = line.find('\t', start);
    if (tab == std::string_view::npos) {
      columns.push_back(line.substr(start));
      return columns;
    }
    columns.push_back(line.substr(start, tab - start));
    start = tab + 1;
  }
}

bool parse_score(std::string_view text, double& value) {
  const std::string copy(text);
  if (copy.empty() || std::isspace(static_cast<unsigned char>(copy[0]))) return false;
  char* end = nullptr;
  errno = 0;
  value = std::strtod(copy.c_str(), &end);
  // "nan" and "inf" parse but are no gold score: they would turn every metric into NaN.
  return errno == 0 && end == copy.c_str() + copy.size() && std::isfinite(value);
}

}  // namespace

const TaskInfo& task_info(Task task) { return tasks().at(static_cast<size_t>(task)); }

const std::vector<Task>& all_tasks() {
  static const std::vector<Task> all = {Task::kCoLA, Task::kSST2, Task::kMRPC, Task::kSTSB, Task::kQQP,
                                        Task::kMNLI, Task::kQNLI, Task::kRTE,  Task::kWNLI};
  return all;
}

Task parse_task(const std::string& name) {
  const std::string key = squash(name);
  for (const TaskInfo& info : tasks())
    if (key == info.name || key == squash(info.dir_name)) return info.task;
  std::string known;
  for (const TaskInfo& info : tasks()) known += (known.empty() ? "" : ", ") + info.name;
  throw Error("unknown GLUE task '" + name + "'; use one of " + known);
}

bool detect_task(const std::string& path, Task& task) {
  std::filesystem::path p(path);
  while (!p.empty() && p.filename().empty()) p = p.parent_path();  // trailing '/'
  std::vector<std::string> candidates = {p.filename().string()};
  if (p.has_parent_path()) candidates.push_back(p.parent_path().filename().string());
  for (const std::string& candidate : candidates) {
    const std::string key = squash(candidate);
    for (const TaskInfo& info : tasks())
      if (key == squash(info.dir_name)) {
        task = info.task;
        return true;
      }
  }
  return false;
}

Split parse_split(Task task, const std::string& text, const std::string& path, const ReadOptions& options) {
  const TaskInfo& info = task_info(task);
  Split split;
  split.path = path;
  split.name = std::filesystem::path(path).stem().string();
  std::string_view rest(text);
  if (rest.substr(0, 3) == "\xEF\xBB\xBF") rest.remove_prefix(3);  // UTF-8 BOM (MRPC)
  int64_t number = 0;
  while (!rest.empty()) {
    const size_t newline = rest.find('\n');
    std::string_view line = rest.substr(0, newline);
    rest = newline == std::string_view::npos ? std::string_view() : rest.substr(newline + 1);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    ++number;
    if (number == 1 && info.header) continue;
    const std::vector<std::string_view> columns = split_tabs(line);
    std::string problem;
    Example example;
    example.line = number;
    if (static_cast<int>(columns.size()) < info.min_columns) {
      problem = "expected at least " + std::to_string(info.min_columns) + " tab-separated columns for " +
                info.dir_name + ", found " + std::to_string(columns.size());
    } else {
      const std::string_view label =
          info.label_column < 0 ? columns.back() : columns[static_cast<size_t>(info.label_column)];
      example.text_a = std::string(columns[static_cast<size_t>(info.text_a)]);
      if (info.text_b >= 0) example.text_b = std::string(columns[static_cast<size_t>(info.text_b)]);
      if (info.regression) {
        if (!parse_score(label, example.score))
          problem = "the score '" + std::string(label) + "' is not a finite number";
      } else {
        const auto found = std::find(info.raw_labels.begin(), info.raw_labels.end(), label);
        if (found == info.raw_labels.end()) {
          std::string expected;
          for (const std::string& raw : info.raw_labels) expected += (expected.empty() ? "" : ", ") + raw;
          problem = "unknown label '" + std::string(label) + "' for " + info.dir_name + " (expected " +
                    expected + ")";
        } else {
          example.label = static_cast<int>(found - info.raw_labels.begin());
        }
      }
    }
    if (!problem.empty()) {
      if (!options.skip_bad_rows)
        throw Error(path + ":" + std::to_string(number) + ": " + problem +
                    " (use --skip-bad-rows to skip malformed rows)");
      ++split.skipped;
      continue;
    }
    split.examples.push_back(std::move(example));
  }
  return split;
}

Split read_split(Task task, const std::string& path, const ReadOptions& options) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error(path + ": cannot open the GLUE data file");
  std::ostringstream buffer;
  buffer << in.rdbuf();
  if (in.bad()) throw Error(path + ": read error");
  return parse_split(task, buffer.str(), path, options);
}

std::vector<std::string> resolve_data_files(Task task, const std::string& data) {
  namespace fs = std::filesystem;
  std::error_code error;
  if (!fs::exists(data, error)) throw Error(data + ": no such file or folder (--data)");
  if (!fs::is_directory(data, error)) return {data};
  const std::vector<std::string> names =
      task == Task::kMNLI ? std::vector<std::string>{"dev_matched.tsv", "dev_mismatched.tsv"}
                          : std::vector<std::string>{"dev.tsv"};
  std::vector<std::string> files;
  for (const std::string& name : names) {
    const fs::path file = fs::path(data) / name;
    if (!fs::is_regular_file(file, error))
      throw Error(file.string() + ": not found; a " + task_info(task).dir_name + " folder should hold " +
                  name + " (or give the file itself with --data)");
    files.push_back(file.string());
  }
  return files;
}

std::vector<int> label_map(Task task, const std::vector<std::string>& model_labels) {
  const TaskInfo& info = task_info(task);
  std::string expected, got;
  for (const std::string& name : info.label_names) expected += (expected.empty() ? "" : ",") + name;
  for (const std::string& name : model_labels) got += (got.empty() ? "" : ",") + name;
  const std::string problem = "the model's labels (" + got + ") do not match task " + info.name +
                              "; expected the labels " + expected + " (in any order)";
  if (model_labels.size() != info.label_names.size()) throw Error(problem);
  std::vector<int> map;
  for (const std::string& name : info.label_names) {
    int found = -1;
    for (size_t j = 0; j < model_labels.size(); ++j)
      if (squash(model_labels[j]) == squash(name)) found = static_cast<int>(j);
    if (found < 0 || std::find(map.begin(), map.end(), found) != map.end()) throw Error(problem);
    map.push_back(found);
  }
  return map;
}

}  // namespace fcabert::glue
