// `fcabert calibrate` as a library call (include/fcabert/calibrate.h): check the options, load
// the model and the data, one search for every target, then each target's files.
#include <spdlog/spdlog.h>

#include <filesystem>
#include <memory>
#include <string>
#include <system_error>
#include <vector>

#include "fcabert/calibrate.h"
#include "fcabert/error.h"
#include "fcabert/fca.h"
#include "io/output_file.h"

namespace fcabert::calibrate {
namespace {

bool has_placeholder(const std::string& pattern) { return pattern.find("{target}") != std::string::npos; }

// Several targets need "{target}" in --out (and --json), or every target would overwrite the
// same file.
void check_patterns(const RunOptions& options) {
  if (options.targets.size() < 2) return;
  if (!has_placeholder(options.out))
    throw Error("--out '" + options.out +
                "': with several --flops-target values it must contain {target}, e.g. " +
                "calibrated-{target}.fcab");
  if (!options.json.empty() && !has_placeholder(options.json))
    throw Error("--json '" + options.json + "': with several --flops-target values it must contain {target}");
}

// Refused before the search, which takes minutes (write_model_with_schedule checks again).
void refuse_existing_outputs(const RunOptions& options) {
  if (options.force) return;
  for (double target : options.targets) {
    std::error_code error;
    const std::string out = output_for(options.out, target);
    if (std::filesystem::exists(out, error))
      throw Error(out + ": already exists; choose another --out or pass --force to replace it");
  }
}

std::shared_ptr<const Model> load_model(const RunOptions& options) {
  std::shared_ptr<const Model> model = Model::load(options.model, options.load);
  if (model->info().head.kind == HeadKind::kMultiLabel)
    throw Error(options.model +
                " is multi-label (a sigmoid per label); calibrate measures agreement with the dense "
                "model's single label or score, so it takes classification and regression models only");
  const FcaSchedule& schedule = model->info().fca;
  if (schedule.enabled())
    spdlog::warn("{} already has an FCA schedule ({}); calibrating from its dense form", options.model,
                 fca::describe_schedule(schedule));
  return model;
}

Data load_calibration_data(const Model& model, const RunOptions& options) {
  Data data = load_data(model, options.data, options.data_options);
  if (data.held_out_warning)
    spdlog::warn(
        "{} looks like a dev/test split: do not report accuracy on this file for the calibrated "
        "schedule (calibrate on a slice of train.tsv instead)",
        data.source);
  return data;
}

// The calibrated model, then the report: a report never names a model that was not written.
TargetOutput write_target(const RunOptions& options, const Data& data, bool regression, double target,
                          Result result) {
  TargetOutput output;
  output.target = target;
  output.model_file = output_for(options.out, target);
  write_model_with_schedule(options.model, output.model_file, result.schedule,
                            provenance_note(options, data, target, result, regression), options.force);
  if (!options.json.empty()) {
    output.report_file = output_for(options.json, target);
    write_file_atomically(output.report_file,
                          report_json(options, data, target, result, regression, output.model_file));
  }
  output.result = std::move(result);
  return output;
}

}  // namespace

void validate(const RunOptions& options) {
  if (options.targets.empty()) throw Error("--flops-target: give at least one target, e.g. 0.5");
  Options search = options.search;
  for (double target : options.targets) {
    search.flops_target = target;
    validate(search);
  }
  if (options.load.threads < 1) throw Error("--threads must be at least 1");
  if (options.out.empty()) throw Error("--out is required: the model file to write");
  check_patterns(options);
  refuse_existing_outputs(options);
}

std::vector<TargetOutput> run(const RunOptions& options, const RunCallbacks& callbacks) {
  validate(options);
  const std::shared_ptr<const Model> model = load_model(options);
  const bool regression = model->info().head.kind == HeadKind::kRegression;
  const Data data = load_calibration_data(*model, options);
  if (callbacks.data_loaded) callbacks.data_loaded(*model, data);

  std::vector<Result> results =
      calibrate_targets(model, data.encodings, options.search, options.targets, callbacks.step);
  std::vector<TargetOutput> outputs;
  for (size_t i = 0; i < options.targets.size(); ++i) {
    outputs.push_back(write_target(options, data, regression, options.targets[i], std::move(results[i])));
    if (callbacks.target_written) callbacks.target_written(outputs.back());
  }
  return outputs;
}

}  // namespace fcabert::calibrate
