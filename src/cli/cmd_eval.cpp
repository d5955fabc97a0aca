// fcabert eval: GLUE evaluation with the official metrics; fcabert eval-merge: exact global
// metrics from shard reports (docs/EVAL.md). The work is the library's
// (include/fcabert/evaluate.h); this file parses the flags, shows progress and writes files.
#include <spdlog/spdlog.h>

#include <iostream>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "cli/commands.h"
#include "cli/precision_option.h"
#include "cli/progress.h"
#include "cli/schedule_options.h"
#include "fcabert/engine.h"
#include "fcabert/error.h"
#include "fcabert/evaluate.h"
#include "fcabert/glue.h"
#include "fcabert/shard.h"
#include "io/output_file.h"

namespace fcabert::cli {
namespace {

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

// The library's options from the flags (the schedule is resolved once the model is loaded).
eval::Options library_options(const EvalOptions& options) {
  if (options.batch_size < 1) throw Error("--batch-size must be at least 1");
  if (options.threads < 1) throw Error("--threads must be at least 1");
  if (options.limit < 0) throw Error("--limit must be at least 0");
  if (options.data.empty()) throw Error("--data is required: a GLUE task folder or a .tsv file");
  eval::Options out;
  out.shard = fcabert::parse_shard(options.shard);
  if (!options.task.empty()) out.task = glue::parse_task(options.task);
  out.data = options.data;
  out.batch_size = options.batch_size;
  out.max_len = options.max_len;
  out.limit = options.limit;
  out.compare_dense = options.compare_dense;
  out.skip_bad_rows = options.skip_bad_rows;
  return out;
}

// A progress bar per split, and --predictions written as the splits finish.
eval::Callbacks progress_callbacks(std::optional<Progress>& progress, OutputFile* predictions,
                                   bool compare_dense, bool quiet) {
  eval::Callbacks callbacks;
  callbacks.split_started = [&progress, compare_dense, quiet](const eval::SplitResult&, size_t) {
    progress.emplace(compare_dense ? "examples (FCA + dense)" : "examples", !quiet);
  };
  callbacks.batch_done = [&progress](size_t done, size_t total) {
    progress->update(static_cast<int64_t>(done), done, total);
  };
  callbacks.split_finished = [&progress](const eval::SplitResult& split) {
    progress->finish(split.fca.examples);
  };
  if (predictions)
    callbacks.prediction = [predictions](const std::string& line) { predictions->stream() << line << '\n'; };
  return callbacks;
}

void run_eval(const EvalOptions& options) {
  eval::Options eval_options = library_options(options);
  const eval::Dataset dataset = eval::read_dataset(eval_options);  // the data fails before the model loads
  auto model = Model::load(options.model, load_options(options.threads, options.precision));
  eval_options.schedule = resolve_schedule(options.schedule, model->info());

  // Written to a temporary, renamed when complete (removed on an error or SIGINT).
  std::unique_ptr<OutputFile> predictions;
  if (!options.predictions.empty()) predictions = std::make_unique<OutputFile>(options.predictions);
  std::optional<Progress> progress;
  const eval::Report report =
      eval::evaluate(model, dataset, eval_options,
                     progress_callbacks(progress, predictions.get(), options.compare_dense, options.quiet));
  if (predictions) predictions->commit();
  if (!options.json.empty()) write_file_atomically(options.json, eval::report_to_json(report));
  eval::write_text_report(report, std::cout, false);
}

struct MergeOptions {
  std::vector<std::string> reports;
  std::string json;
};

void run_eval_merge(const MergeOptions& options) {
  if (options.reports.empty()) throw Error("eval-merge needs at least one report");
  std::vector<eval::Report> reports;
  for (const std::string& file : options.reports) reports.push_back(eval::read_report(file));
  const eval::Report merged = eval::merge_reports(reports, options.reports);
  if (!options.json.empty()) write_file_atomically(options.json, eval::report_to_json(merged));
  eval::write_text_report(merged, std::cout, true);
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
