// fcabert calibrate: search an FCA keep-ratio schedule for a dense fine-tuned model without
// training (docs/CALIBRATE.md) and write it into a copy of the model file. The work is the
// library's (calibrate::run, include/fcabert/calibrate.h); this file parses the flags, logs
// the progress on stderr and prints each target's result on stdout.
#include <spdlog/spdlog.h>

#include <cstdint>
#include <cstdio>
#include <iostream>
#include <memory>
#include <string>

#include "cli/commands.h"
#include "fcabert/calibrate.h"
#include "fcabert/engine.h"
#include "fcabert/fca.h"

namespace fcabert::cli {
namespace {

struct CalibrateOptions {
  std::string targets = "0.5";       // --flops-target, parsed by calibrate::parse_targets
  std::string pooling = "weighted";  // --pooling
  calibrate::RunOptions run;         // every other flag
};

// What the progress lines and the result need from the loaded model and data.
struct RunState {
  bool regression = false;
  size_t examples = 0;
  int64_t targets_printed = 0;
};

void log_data(const CalibrateOptions& options, const calibrate::Data& data) {
  const calibrate::RunOptions& run = options.run;
  spdlog::info(
      "calibrating on {} of {} examples ({} with >= {} tokens) from {} ({} tokens, mean {:.1f}; seed {}), "
      "target {} x dense FLOPs, C={} {}",
      data.encodings.size(), data.available, data.eligible, run.data_options.min_tokens, data.source,
      data.tokens, static_cast<double>(data.tokens) / static_cast<double>(data.encodings.size()),
      run.data_options.seed, options.targets, run.search.clusters, options.pooling);
}

void log_step(const calibrate::Step& step, bool regression) {
  const calibrate::Measurement& m = step.after;
  if (regression)
    spdlog::info("step {:3d}  layer {}  keep {}  FLOPs {:.4f}  nMSE {:.5f}  ({} runs, {:.0f} s)", step.round,
                 step.layer, calibrate::ratios_text(m.schedule.keep_ratios), m.flops_ratio, m.mse,
                 step.model_runs, step.seconds);
  else
    spdlog::info("step {:3d}  layer {}  keep {}  FLOPs {:.4f}  agree {:.2f}%  KL {:.5f}  ({} runs, {:.0f} s)",
                 step.round, step.layer, calibrate::ratios_text(m.schedule.keep_ratios), m.flops_ratio,
                 100 * m.agreement, m.mean_kl, step.model_runs, step.seconds);
}

// One target's result on stdout (a blank line between targets).
void print_target(const calibrate::TargetOutput& output, const RunState& state) {
  const calibrate::Result& result = output.result;
  const calibrate::Measurement& m = result.final;
  if (state.targets_printed > 0) std::cout << '\n';
  std::cout << "target       " << calibrate::target_text(output.target) << '\n';
  std::cout << "schedule     " << fca::describe_schedule(result.schedule) << '\n';
  if (result.schedule.enabled())
    std::cout << "keep ratios  " << calibrate::ratios_text(result.schedule.keep_ratios)
              << "  (--keep-ratios)\n";
  char line[256];
  std::snprintf(line, sizeof line, "FLOPs        %.4f of dense on the calibration set (%.3fx fewer)\n",
                m.flops_ratio, m.flops_ratio > 0 ? 1.0 / m.flops_ratio : 0.0);
  std::cout << line;
  if (state.regression)
    std::snprintf(line, sizeof line, "fidelity     normalised MSE to dense %.5f\n", m.mse);
  else
    std::snprintf(line, sizeof line, "fidelity     %.2f%% agreement with dense, mean KL %.5f nats\n",
                  100 * m.agreement, m.mean_kl);
  std::cout << line;
  std::snprintf(line, sizeof line, "search       %zu steps, %lld passes over %zu examples, %.1f s\n",
                result.steps.size(), static_cast<long long>(result.model_runs), state.examples,
                result.seconds);
  std::cout << line;
  std::cout << "wrote        " << output.model_file << '\n';
}

calibrate::RunCallbacks callbacks_for(const CalibrateOptions& options, RunState& state) {
  calibrate::RunCallbacks callbacks;
  callbacks.data_loaded = [&options, &state](const Model& model, const calibrate::Data& data) {
    state.regression = model.info().head.kind == HeadKind::kRegression;
    state.examples = data.encodings.size();
    log_data(options, data);
  };
  callbacks.step = [&state](const calibrate::Step& step) { log_step(step, state.regression); };
  callbacks.target_written = [&state](const calibrate::TargetOutput& output) {
    print_target(output, state);
    ++state.targets_printed;
  };
  return callbacks;
}

void run_calibrate(CalibrateOptions options) {
  options.run.search.pooling = fca::parse_pooling(options.pooling);
  options.run.targets = calibrate::parse_targets(options.targets);
  RunState state;
  calibrate::run(options.run, callbacks_for(options, state));
}

}  // namespace

void register_calibrate(CLI::App& app) {
  auto options = std::make_shared<CalibrateOptions>();
  options->run.model = default_model_path();
  CLI::App* cmd = app.add_subcommand(
      "calibrate",
      "search an FCA keep-ratio schedule for a dense model without training (docs/CALIBRATE.md)");
  cmd->add_option("-m,--model", options->run.model, "the dense fine-tuned model file")->capture_default_str();
  cmd->add_option("--data", options->run.data,
                  "calibration text: a GLUE task folder (its --split .tsv), a GLUE .tsv file, or a text file "
                  "with one example per line (pairs: two tab-separated columns); labels are not used")
      ->required();
  cmd->add_option("--task", options->run.data_options.task,
                  "GLUE task of --data (default: from the folder name)");
  cmd->add_option("--split", options->run.data_options.split,
                  "the split a GLUE folder gives (never calibrate on dev)")
      ->capture_default_str();
  cmd->add_option("--limit", options->run.data_options.limit, "examples sampled from the data (0 = all)")
      ->capture_default_str();
  cmd->add_option("--seed", options->run.data_options.seed, "seed of the sample")->capture_default_str();
  cmd->add_option("--max-len", options->run.data_options.max_len,
                  "truncate examples to N tokens (default: the model's)");
  cmd->add_option("--min-tokens", options->run.data_options.min_tokens,
                  "sample only examples of at least N tokens (match the length of the text you will run)")
      ->capture_default_str();
  cmd->add_option("--flops-target", options->targets,
                  "FCA FLOPs as a share of dense, in (0, 1] (0.5 = 2x fewer); a list such as 0.6,0.5,0.4 "
                  "searches once and writes one model per target (--out with {target})")
      ->capture_default_str();
  cmd->add_option("--clusters", options->run.search.clusters,
                  "C of the schedule (0 = drop, PoWER-BERT style)")
      ->capture_default_str();
  cmd->add_option("--pooling", options->pooling, "cluster pooling: weighted or mean")->capture_default_str();
  cmd->add_option("--step", options->run.search.step, "grid of the keep ratios")->capture_default_str();
  cmd->add_option("--min-ratio", options->run.search.min_ratio, "lowest keep ratio a layer may get")
      ->capture_default_str();
  cmd->add_option("--min-saving", options->run.search.min_saving,
                  "a move saves at least this share of the dense FLOPs (fewer, larger early moves)")
      ->capture_default_str();
  cmd->add_option("--kl-weight", options->run.search.kl_weight, "loss = disagreement + KL-WEIGHT x mean KL")
      ->capture_default_str();
  cmd->add_option("-b,--batch-size", options->run.search.batch_size, "sequences per packed batch")
      ->capture_default_str();
  cmd->add_option("-t,--threads", options->run.load.threads, "CPU threads (also used by oneDNN)")
      ->capture_default_str();
  cmd->add_option("-o,--out", options->run.out, "the model file to write (the input with the schedule)")
      ->required();
  cmd->add_flag("--force", options->run.force, "replace --out if it exists");
  cmd->add_option("--json", options->run.json, "also write the search (every step) as JSON to FILE");
  cmd->callback([options] { run_calibrate(*options); });
}

}  // namespace fcabert::cli
