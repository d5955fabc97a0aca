// fcabert calibrate: search an FCA keep-ratio schedule for a dense fine-tuned model without
// training (docs/CALIBRATE.md) and write it into a copy of the model file. The search itself
// lives in src/calibrate/ (include/fcabert/calibrate.h); this file parses the options, logs
// the progress on stderr and prints the result on stdout.
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "cli/commands.h"
#include "cli/schedule_options.h"
#include "fcabert/calibrate.h"
#include "fcabert/engine.h"
#include "fcabert/error.h"
#include "fcabert/fca.h"
#include "io/output_file.h"

namespace fcabert::cli {
namespace {

using Json = nlohmann::ordered_json;

struct CalibrateOptions {
  std::string model;
  std::string data;
  std::string out;
  bool force = false;
  std::string json;
  std::string pooling = "weighted";
  std::string targets = "0.5";
  int threads = 2;
  calibrate::Options search;
  calibrate::DataOptions data_options;
};

Json measurement_json(const calibrate::Measurement& m, bool regression) {
  Json out;
  out["keep_ratios"] = m.schedule.keep_ratios;
  out["schedule"] = fca::describe_schedule(m.schedule);
  out["flops"] = m.flops;
  out["dense_flops"] = m.dense_flops;
  out["flops_ratio"] = m.flops_ratio;
  if (regression) {
    out["normalized_mse"] = m.mse;
  } else {
    out["agreement"] = m.agreement;
    out["mean_kl"] = m.mean_kl;
  }
  out["loss"] = m.loss;
  return out;
}

std::vector<double> parse_targets(const std::string& text) {
  std::vector<double> targets;
  size_t begin = 0;
  while (begin <= text.size()) {
    const size_t comma = std::min(text.find(',', begin), text.size());
    const std::string item = text.substr(begin, comma - begin);
    size_t used = 0;
    double value = 0;
    try {
      value = std::stod(item, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    while (used < item.size() && item[used] == ' ') ++used;
    if (item.empty() || used != item.size())
      throw Error("--flops-target '" + text +
                  "': expected a number in (0, 1] or a comma-separated list, e.g. 0.5");
    targets.push_back(value);
    begin = comma + 1;
  }
  return targets;
}

std::string target_text(double target) {
  char text[32];
  std::snprintf(text, sizeof text, "%g", target);
  return text;
}

// --out with "{target}" replaced by the target, e.g. sst2-{target}.fcab -> sst2-0.5.fcab.
std::string output_for(const std::string& pattern, double target) {
  std::string out = pattern;
  const size_t at = out.find("{target}");
  if (at != std::string::npos) out.replace(at, 8, target_text(target));
  return out;
}

void run_calibrate(CalibrateOptions options) {
  options.search.pooling = fca::parse_pooling(options.pooling);
  const std::vector<double> targets = parse_targets(options.targets);
  for (double t : targets) {
    options.search.flops_target = t;
    calibrate::validate(options.search);
  }
  if (options.threads < 1) throw Error("--threads must be at least 1");
  if (options.out.empty()) throw Error("--out is required: the model file to write");
  if (targets.size() > 1 && options.out.find("{target}") == std::string::npos)
    throw Error("--out '" + options.out +
                "': with several --flops-target values it must contain {target}, e.g. " +
                "calibrated-{target}.fcab");
  if (targets.size() > 1 && !options.json.empty() && options.json.find("{target}") == std::string::npos)
    throw Error("--json '" + options.json + "': with several --flops-target values it must contain {target}");
  for (double t : targets) {
    std::error_code error;
    const std::string out = output_for(options.out, t);
    if (std::filesystem::exists(out, error) && !options.force)
      throw Error(out + ": already exists; choose another --out or pass --force to replace it");
  }

  auto model = Model::load(options.model, LoadOptions{options.threads});
  const ModelInfo& info = model->info();
  const bool regression = info.head.kind == HeadKind::Regression;
  if (info.fca.enabled())
    spdlog::warn("{} already has an FCA schedule ({}); calibrating from its dense form", options.model,
                 fca::describe_schedule(info.fca));
  const calibrate::Data data = calibrate::load_data(*model, options.data, options.data_options);
  if (data.held_out_warning)
    spdlog::warn(
        "{} looks like a dev/test split: do not report accuracy on this file for the calibrated "
        "schedule (calibrate on a slice of train.tsv instead)",
        data.source);
  int64_t tokens = 0;
  for (const Encoding& e : data.encodings) tokens += static_cast<int64_t>(e.ids.size());
  spdlog::info(
      "calibrating on {} of {} examples ({} with >= {} tokens) from {} ({} tokens, mean {:.1f}; seed {}), "
      "target {} x dense FLOPs, C={} {}",
      data.encodings.size(), data.available, data.eligible, options.data_options.min_tokens, data.source,
      tokens, static_cast<double>(tokens) / static_cast<double>(data.encodings.size()),
      options.data_options.seed, options.targets, options.search.clusters, options.pooling);

  const std::vector<calibrate::Result> results = calibrate::calibrate_targets(
      model, data.encodings, options.search, targets, [&](const calibrate::Step& step) {
        const calibrate::Measurement& m = step.after;
        if (regression)
          spdlog::info("step {:3d}  layer {}  keep {}  FLOPs {:.4f}  nMSE {:.5f}  ({} runs, {:.0f} s)",
                       step.round, step.layer, calibrate::ratios_text(m.schedule.keep_ratios), m.flops_ratio,
                       m.mse, step.model_runs, step.seconds);
        else
          spdlog::info(
              "step {:3d}  layer {}  keep {}  FLOPs {:.4f}  agree {:.2f}%  KL {:.5f}  ({} runs, {:.0f} s)",
              step.round, step.layer, calibrate::ratios_text(m.schedule.keep_ratios), m.flops_ratio,
              100 * m.agreement, m.mean_kl, step.model_runs, step.seconds);
      });

  for (size_t i = 0; i < targets.size(); ++i) {
    const calibrate::Result& result = results[i];
    const std::string out = output_for(options.out, targets[i]);
    Json note;
    note["tool"] = std::string("fcabert calibrate ") + version();
    note["source_model"] = options.model;
    note["data"] = data.source;
    note["split_examples"] = data.available;
    note["eligible_examples"] = data.eligible;
    note["min_tokens"] = options.data_options.min_tokens;
    note["examples"] = static_cast<int64_t>(data.encodings.size());
    note["seed"] = options.data_options.seed;
    note["flops_target"] = targets[i];
    note["clusters"] = options.search.clusters;
    note["pooling"] = options.pooling;
    note["step"] = options.search.step;
    note["min_ratio"] = options.search.min_ratio;
    note["min_saving"] = options.search.min_saving;
    note["kl_weight"] = options.search.kl_weight;
    note["result"] = measurement_json(result.final, regression);
    note["model_runs"] = result.model_runs;
    note["seconds"] = result.seconds;
    calibrate::write_model_with_schedule(options.model, out, result.schedule, note.dump(), options.force);

    if (!options.json.empty()) {
      Json report = note;
      report["format"] = "fcabert-calibration";
      report["format_version"] = 1;
      report["output_model"] = out;
      Json steps = Json::array();
      for (const calibrate::Step& step : result.steps) {
        Json s = measurement_json(step.after, regression);
        s["round"] = step.round;
        s["layer"] = step.layer;
        s["model_runs"] = step.model_runs;
        s["seconds"] = step.seconds;
        steps.push_back(s);
      }
      report["steps"] = steps;
      write_file_atomically(output_for(options.json, targets[i]), report.dump(2) + "\n");
    }

    const calibrate::Measurement& m = result.final;
    if (i > 0) std::cout << '\n';
    std::cout << "target       " << target_text(targets[i]) << '\n';
    std::cout << "schedule     " << fca::describe_schedule(result.schedule) << '\n';
    if (result.schedule.enabled())
      std::cout << "keep ratios  " << calibrate::ratios_text(result.schedule.keep_ratios)
                << "  (--keep-ratios)\n";
    char line[256];
    std::snprintf(line, sizeof line, "FLOPs        %.4f of dense on the calibration set (%.3fx fewer)\n",
                  m.flops_ratio, m.flops_ratio > 0 ? 1.0 / m.flops_ratio : 0.0);
    std::cout << line;
    if (regression)
      std::snprintf(line, sizeof line, "fidelity     normalised MSE to dense %.5f\n", m.mse);
    else
      std::snprintf(line, sizeof line, "fidelity     %.2f%% agreement with dense, mean KL %.5f nats\n",
                    100 * m.agreement, m.mean_kl);
    std::cout << line;
    std::snprintf(line, sizeof line, "search       %zu steps, %lld passes over %zu examples, %.1f s\n",
                  result.steps.size(), static_cast<long long>(result.model_runs), data.encodings.size(),
                  result.seconds);
    std::cout << line;
    std::cout << "wrote        " << out << '\n';
  }
}

}  // namespace

void register_calibrate(CLI::App& app) {
  auto options = std::make_shared<CalibrateOptions>();
  options->model = default_model_path();
  CLI::App* cmd = app.add_subcommand(
      "calibrate",
      "search an FCA keep-ratio schedule for a dense model without training (docs/CALIBRATE.md)");
  cmd->add_option("-m,--model", options->model, "the dense fine-tuned model file")->capture_default_str();
  cmd->add_option("--data", options->data,
                  "calibration text: a GLUE task folder (its --split .tsv), a GLUE .tsv file, or a text file "
                  "with one example per line (pairs: two tab-separated columns); labels are not used")
      ->required();
  cmd->add_option("--task", options->data_options.task,
                  "GLUE task of --data (default: from the folder name)");
  cmd->add_option("--split", options->data_options.split,
                  "the split a GLUE folder gives (never calibrate on dev)")
      ->capture_default_str();
  cmd->add_option("--limit", options->data_options.limit, "examples sampled from the data (0 = all)")
      ->capture_default_str();
  cmd->add_option("--seed", options->data_options.seed, "seed of the sample")->capture_default_str();
  cmd->add_option("--max-len", options->data_options.max_len,
                  "truncate examples to N tokens (default: the model's)");
  cmd->add_option("--min-tokens", options->data_options.min_tokens,
                  "sample only examples of at least N tokens (match the length of the text you will run)")
      ->capture_default_str();
  cmd->add_option("--flops-target", options->targets,
                  "FCA FLOPs as a share of dense, in (0, 1] (0.5 = 2x fewer); a list such as 0.6,0.5,0.4 "
                  "searches once and writes one model per target (--out with {target})")
      ->capture_default_str();
  cmd->add_option("--clusters", options->search.clusters, "C of the schedule (0 = drop, PoWER-BERT style)")
      ->capture_default_str();
  cmd->add_option("--pooling", options->pooling, "cluster pooling: weighted or mean")->capture_default_str();
  cmd->add_option("--step", options->search.step, "grid of the keep ratios")->capture_default_str();
  cmd->add_option("--min-ratio", options->search.min_ratio, "lowest keep ratio a layer may get")
      ->capture_default_str();
  cmd->add_option("--min-saving", options->search.min_saving,
                  "a move saves at least this share of the dense FLOPs (fewer, larger early moves)")
      ->capture_default_str();
  cmd->add_option("--kl-weight", options->search.kl_weight, "loss = disagreement + KL-WEIGHT x mean KL")
      ->capture_default_str();
  cmd->add_option("-b,--batch-size", options->search.batch_size, "sequences per packed batch")
      ->capture_default_str();
  cmd->add_option("-t,--threads", options->threads, "CPU threads (also used by oneDNN)")
      ->capture_default_str();
  cmd->add_option("-o,--out", options->out, "the model file to write (the input with the schedule)")
      ->required();
  cmd->add_flag("--force", options->force, "replace --out if it exists");
  cmd->add_option("--json", options->json, "also write the search (every step) as JSON to FILE");
  cmd->callback([options] { run_calibrate(*options); });
}

}  // namespace fcabert::cli
