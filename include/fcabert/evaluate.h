#pragma once
// GLUE evaluation through the library (what `fcabert eval` and `eval-merge` run; docs/EVAL.md).
//
// evaluate() reads a task's dev files, tokenizes every example once, runs them in
// length-sorted packed batches (include/fcabert/runner.h) and scores them with the task's
// official metrics (include/fcabert/metrics.h). FLOPs are exact, from the per-sequence
// traces; the dense figure is analytic unless Options::compare_dense runs a dense Session
// beside the FCA one (the two alternate which goes first, batch by batch).
//
// Shards: every shard encodes the whole split (after Options::limit) and plans the
// length-sorted batches an unsharded run would; Shard{K, N} runs batch b when
// b % N == K - 1. So each batch, and each result, is exactly the unsharded run's (int8's
// per-batch input scales included), and round-robin over length-sorted batches gives every
// shard the same mix of lengths. A Report records its shard set; merge_reports() sums confusion matrices,
// joins regression pairs (ordered by example index, so that the merged numbers equal an unsharded run bit for
// bit) and refuses overlapping, missing or mismatched shards. Shards run on different machines
// are matched by what they computed, not where: the model file's SHA-256, the precision, the
// engine version and the evaluation's options (the model's path is only shown).
#include <cstdint>
#include <functional>
#include <iosfwd>
#include <memory>
#include <optional>
#include <string>
#include <tuple>
#include <vector>

#include "fcabert/config.h"
#include "fcabert/engine.h"
#include "fcabert/glue.h"
#include "fcabert/metrics.h"
#include "fcabert/shard.h"

namespace fcabert::eval {

struct Options {
  std::optional<glue::Task> task;  // unset: from the folder name of `data`
  std::string data;                // a GLUE task folder (dev.tsv; MNLI both dev sets) or a .tsv
  int64_t batch_size = 32;
  int64_t max_len = 0;  // 0: the model's (resolve_max_len)
  int64_t limit = 0;    // > 0: only the first `limit` examples of each split
  Shard shard;
  bool compare_dense = false;           // also run the dense model and report both
  bool skip_bad_rows = false;           // count and skip malformed rows instead of failing
  std::optional<FcaSchedule> schedule;  // unset: the model file's
};

// One Session's results on one split (what a report holds and eval-merge adds up).
struct SideResult {
  metrics::ConfusionMatrix matrix;                         // classification
  std::vector<std::tuple<int64_t, double, double>> pairs;  // regression: (index, prediction, gold)
  int64_t examples = 0, tokens = 0, flops = 0, dense_flops = 0;
  double seconds = 0;  // Session::run wall time
};

struct SplitResult {
  std::string name, file;
  int64_t split_examples = 0;  // in the split after the limit, all shards together
  int64_t skipped = 0, truncated = 0;
  SideResult fca;
  std::optional<SideResult> dense;
};

struct Report {
  std::string task;             // glue::TaskInfo::name
  std::string model;            // the model file's path, as given (shown, not compared)
  std::string model_sha256;     // of the model file (what merge compares)
  std::string precision;        // what the engine ran, PrecisionChoice::arithmetic ("fp32", "int8 (FFN ...)")
  std::string fcabert_version;  // of the engine that ran it
  FcaSchedule schedule;         // the one the FCA side ran
  int64_t shard_count = 1;
  std::vector<int64_t> shards;  // 1-based shard indices covered
  int64_t max_len = 0, limit = 0;
  std::vector<SplitResult> splits;
};

// What evaluate() tells its caller while it runs; every member may be left empty.
struct Callbacks {
  std::function<void(const SplitResult& split, size_t examples)> split_started;
  std::function<void(size_t done, size_t total)> batch_done;     // examples of the current split
  std::function<void(const SplitResult& split)> split_finished;  // before its predictions
  // One JSON object per example (no newline), as `eval --predictions` writes them: split,
  // index, line, prediction (and probabilities), gold (and the dense side's), in file order.
  std::function<void(const std::string& json_line)> prediction;
};

// A task's evaluation files, read whole (before any model is loaded, so that bad data fails
// fast). The task comes from Options::task or the folder name of Options::data.
struct Dataset {
  glue::Task task = glue::Task::kSST2;
  std::vector<glue::Split> splits;  // dev.tsv, or MNLI's dev_matched and dev_mismatched
};

// Throws fcabert::Error naming the file and line of a malformed row (unless
// Options::skip_bad_rows), a missing file, or data whose task cannot be told.
Dataset read_dataset(const Options& options);

// Evaluates `model` on the dataset. Throws fcabert::Error naming the file (and line) for text
// that is not UTF-8, a model whose head does not fit the task, or a shard without examples.
Report evaluate(const std::shared_ptr<const Model>& model, const Dataset& dataset, const Options& options,
                const Callbacks& callbacks = {});

// The metrics of one side of a split, as the report prints them.
metrics::Scores score(const glue::TaskInfo& task, const SideResult& side);

// Merges shard reports into one. `names` (one per report, e.g. the files) appear in errors.
// Throws fcabert::Error for reports of different evaluations (task, model SHA-256, precision,
// engine version, schedule, max_len, limit, shard count, splits, compare_dense), a shard given
// twice or missing, or example counts that do not add up.
Report merge_reports(const std::vector<Report>& reports, const std::vector<std::string>& names);

// The report as JSON ("format": "fcabert-eval-report", version 2), and back. read_report
// throws fcabert::Error naming `file` for anything that is not such a report.
std::string report_to_json(const Report& report);
Report report_from_json(const std::string& text, const std::string& file);
Report read_report(const std::string& file);

// The human-readable report: metrics, FLOPs and time per split (FCA and dense side by side
// when both ran) and the confusion matrix. `merged`: times are sums over shards.
void write_text_report(const Report& report, std::ostream& out, bool merged);

}  // namespace fcabert::eval
