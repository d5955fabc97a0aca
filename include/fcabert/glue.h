#pragma once
// Readers for the GLUE tasks' TSV files exactly as download_glue_data.py writes them
// (../shared/data/README.md): raw tab split, no quote handling, an optional UTF-8 BOM at the
// start of the file (MRPC), a missing newline after the last line (CoLA dev) is fine.
// Gold labels are given by name (each task's own names, below); `label_map` matches them
// to a model's output labels by name, never by position.
#include <cstdint>
#include <string>
#include <vector>

namespace fcabert::glue {

enum class Task { kCoLA, kSST2, kMRPC, kSTSB, kQQP, kMNLI, kQNLI, kRTE, kWNLI };

struct TaskInfo {
  Task task;
  std::string name;      // "sst2", "cola", "stsb", ... (the --task value)
  std::string dir_name;  // "SST-2", "CoLA", "STS-B", ... (the GLUE folder name)
  bool pair = false;     // sentence-pair input
  bool regression = false;
  bool header = true;
  // Gold label names, by class index; a row's raw label is raw_labels[i] -> class i.
  std::vector<std::string> label_names;
  std::vector<std::string> raw_labels;
  int positive = -1;            // class index whose F1 is reported (MRPC, QQP); -1 = none
  std::string glue_metric;      // "mcc", "acc", "f1+acc" or "pearson+spearman"
  int text_a = 0, text_b = -1;  // 0-based columns; text_b = -1 for single-sentence tasks
  int label_column = -1;        // 0-based; -1 = the last column
  int min_columns = 0;
};

const TaskInfo& task_info(Task task);
const std::vector<Task>& all_tasks();
// Accepts the task name or folder name in any case: "sst2", "SST-2", "sts-b", "MNLI"...
// Throws fcabert::Error listing the known names.
Task parse_task(const std::string& name);
// The task named by the path's last folder (or, for a file, its parent folder); false if none.
bool detect_task(const std::string& path, Task& task);

struct Example {
  int64_t line = 0;  // 1-based line in the file
  std::string text_a, text_b;
  int label = -1;    // class index into label_names (classification)
  double score = 0;  // regression gold
};

struct Split {
  std::string name;  // the file's stem: "dev", "dev_matched", ...
  std::string path;
  std::vector<Example> examples;
  int64_t skipped = 0;  // malformed rows skipped (skip_bad_rows)
};

struct ReadOptions {
  bool skip_bad_rows = false;  // count and skip malformed rows instead of throwing
};

// Reads a whole file. A malformed row (too few columns, an unknown label, a bad score)
// throws fcabert::Error naming FILE:LINE, or with skip_bad_rows is counted in `skipped`.
Split read_split(Task task, const std::string& path, const ReadOptions& options = {});
// The same from text in memory (`path` is used in messages only).
Split parse_split(Task task, const std::string& text, const std::string& path,
                  const ReadOptions& options = {});

// --data: a file is used as is; a folder gives dev.tsv, or for MNLI dev_matched.tsv and
// dev_mismatched.tsv. Throws if a file is missing.
std::vector<std::string> resolve_data_files(Task task, const std::string& data);

// For each task class, the index of the model output with the same name (case-insensitive,
// '-' and '_' equal). Throws fcabert::Error naming the expected names when the model's labels
// are not exactly the task's names.
std::vector<int> label_map(Task task, const std::vector<std::string>& model_labels);

}  // namespace fcabert::glue
