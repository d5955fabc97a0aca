// What a calibration records: the provenance note of a calibrated model and the search report
// of `fcabert calibrate --json` (include/fcabert/calibrate.h).
#include <nlohmann/json.hpp>
#include <string>

#include "fcabert/calibrate.h"
#include "fcabert/fca.h"

namespace fcabert::calibrate {
namespace {

using Json = nlohmann::ordered_json;

Json measurement_json(const Measurement& m, bool regression) {
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

Json note_json(const RunOptions& options, const Data& data, double target, const Result& result,
               bool regression) {
  Json note;
  note["tool"] = std::string("fcabert calibrate ") + version();
  note["source_model"] = options.model;
  note["data"] = data.source;
  note["split_examples"] = data.available;
  note["eligible_examples"] = data.eligible;
  note["min_tokens"] = options.data_options.min_tokens;
  note["examples"] = static_cast<int64_t>(data.encodings.size());
  note["seed"] = options.data_options.seed;
  note["flops_target"] = target;
  note["clusters"] = options.search.clusters;
  note["pooling"] = fca::pooling_name(options.search.pooling);
  note["step"] = options.search.step;
  note["min_ratio"] = options.search.min_ratio;
  note["min_saving"] = options.search.min_saving;
  note["kl_weight"] = options.search.kl_weight;
  note["result"] = measurement_json(result.final, regression);
  note["model_runs"] = result.model_runs;
  note["seconds"] = result.seconds;
  return note;
}

Json steps_json(const std::vector<Step>& steps, bool regression) {
  Json out = Json::array();
  for (const Step& step : steps) {
    Json s = measurement_json(step.after, regression);
    s["round"] = step.round;
    s["layer"] = step.layer;
    s["model_runs"] = step.model_runs;
    s["seconds"] = step.seconds;
    out.push_back(s);
  }
  return out;
}

}  // namespace

std::string provenance_note(const RunOptions& options, const Data& data, double target, const Result& result,
                            bool regression) {
  return note_json(options, data, target, result, regression).dump();
}

std::string report_json(const RunOptions& options, const Data& data, double target, const Result& result,
                        bool regression, const std::string& output_model) {
  Json report = note_json(options, data, target, result, regression);
  report["format"] = "fcabert-calibration";
  report["format_version"] = 1;
  report["output_model"] = output_model;
  report["steps"] = steps_json(result.steps, regression);
  return report.dump(2) + "\n";
}

}  // namespace fcabert::calibrate
