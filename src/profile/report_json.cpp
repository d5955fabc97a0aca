// profile::report_to_json: `fcabert profile --json` (the keys are documented in docs/PROFILE.md).
#include <nlohmann/json.hpp>
#include <string>
#include <utility>

#include "fcabert/fca.h"
#include "fcabert/profile.h"

namespace fcabert::profile {
namespace {

using Json = nlohmann::ordered_json;

double percent(int64_t part, int64_t whole) {
  return whole > 0 ? 100.0 * static_cast<double>(part) / static_cast<double>(whole) : 0.0;
}

Json times_json(const StageTimes& times) {
  return {{"wall_ms", times.wall_ms},
          {"wall_ms_per_repeat", times.wall_ms_per_repeat},
          {"embeddings_ms", times.embeddings_ms},
          {"layer_ms", times.layer_ms},
          {"head_ms", times.head_ms}};
}

Json input_json(const Report& report) {
  Json input = {
      {"source", report.source}, {"sequences", report.sequences()}, {"tokens", report.fca.flops.tokens()}};
  if (report.synthetic_length) input["synthetic_length"] = *report.synthetic_length;
  input["empty_lines"] = report.empty_lines;
  input["truncated"] = report.truncated;
  input["lengths"] = report.lengths;
  return input;
}

Json layers_json(const Report& report) {
  Json layers = Json::array();
  for (int64_t l = 0; l < report.bert.num_layers; ++l) {
    const LayerFlops& f = report.fca.flops.layers()[l];
    const LayerFlops& d = report.dense.flops.layers()[l];
    layers.push_back({{"layer", l},
                      {"tokens_in", f.tokens_in},
                      {"tokens_out", f.tokens_out},
                      {"flops_linear", f.linear()},
                      {"flops_attention", f.attention()},
                      {"flops_fca", f.fca()},
                      {"flops_total", f.total()},
                      {"dense_flops_total", d.total()},
                      {"percent_of_dense", percent(f.total(), d.total())},
                      {"ms_fca", report.fca.times.layer_ms[l]},
                      {"ms_dense", report.dense.times.layer_ms[l]}});
  }
  return layers;
}

Json totals_json(const Report& report) {
  const FlopsTally& fca = report.fca.flops;
  const FlopsTally& dense = report.dense.flops;
  const int64_t n = report.sequences();
  return {{"flops_fca", fca.total()},
          {"flops_dense", dense.total()},
          {"macs_fca", fca.macs()},
          {"macs_dense", dense.macs()},
          {"elementwise_fca", fca.elementwise()},
          {"elementwise_dense", dense.elementwise()},
          {"reduction_ratio", report.reduction_ratio()},
          {"wall_ms_fca", report.fca.times.wall_ms},
          {"wall_ms_dense", report.dense.times.wall_ms},
          {"speedup", report.speedup()},
          {"examples_per_s_fca", Report::per_second(n, report.fca.times.wall_ms)},
          {"examples_per_s_dense", Report::per_second(n, report.dense.times.wall_ms)}};
}

Json padded_json(const Report& report) {
  if (!report.padded_dense) return nullptr;
  return {{"length", *report.padded_length},
          {"per_example", true},
          {"dense", report.padded_dense->to_json()},
          {"fca", report.padded_fca->to_json()},
          {"reduction_ratio", report.padded_fca->reduction_ratio(*report.padded_dense)}};
}

}  // namespace

std::string report_to_json(const Report& report) {
  const BertConfig& bert = report.bert;
  const Json json = {
      {"model", report.model_path},
      {"geometry",
       {{"layers", bert.num_layers},
        {"hidden", bert.hidden_size},
        {"intermediate", bert.intermediate_size},
        {"heads", bert.num_heads}}},
      {"input", input_json(report)},
      {"schedule", fca::schedule_to_json(report.fca.schedule)},
      {"threads", report.threads},
      {"precision", report.precision},
      {"batch_size", report.batch_size},
      {"repeats", report.repeats},
      {"convention",
       "FLOPs: multiply-add = 2, real token counts (no padding); MACs = matrix-product "
       "multiply-adds; elementwise not in the headline (docs/PROFILE.md)"},
      {"layers", layers_json(report)},
      {"totals", totals_json(report)},
      {"fca", report.fca.flops.to_json()},
      {"dense", report.dense.flops.to_json()},
      {"timings", {{"fca", times_json(report.fca.times)}, {"dense", times_json(report.dense.times)}}},
      {"padded", padded_json(report)}};
  return json.dump(2);
}

}  // namespace fcabert::profile
