// profile::render_chart: `fcabert profile --plot`, FLOPs and ms per layer, dense vs FCA.
#include <algorithm>
#include <filesystem>
#include <string>
#include <utility>

#include "eval/text_table.h"
#include "fcabert/fca.h"
#include "fcabert/profile.h"
#include "profile/svg_chart.h"

namespace fcabert::profile {
namespace {

std::string model_name(const Report& report) {
  std::string name = std::filesystem::path(report.model_path).filename().string();
  if (!report.task.empty()) name += " (" + report.task + ")";
  return name;
}

svg::BarChart two_series(std::string title, std::string y_label, const char* fca_color) {
  return svg::BarChart{
      std::move(title), "layer", std::move(y_label), {}, {{"dense", "#9a9a9a", {}}, {"FCA", fca_color, {}}}};
}

}  // namespace

std::string render_chart(const Report& report) {
  svg::BarChart flops =
      two_series("FLOPs per layer (summed over " + std::to_string(report.sequences()) + " sequences)",
                 "GFLOPs", "#2f6db5");
  svg::BarChart time =
      two_series("wall time per layer (median of " + std::to_string(report.repeats) + ")", "ms", "#d9822b");
  for (int64_t l = 0; l < report.bert.num_layers; ++l) {
    flops.categories.push_back(std::to_string(l));
    time.categories.push_back(std::to_string(l));
    flops.series[0].values.push_back(static_cast<double>(report.dense.flops.layers()[l].total()) / 1e9);
    flops.series[1].values.push_back(static_cast<double>(report.fca.flops.layers()[l].total()) / 1e9);
    time.series[0].values.push_back(std::max(0.0, report.dense.times.layer_ms[l]));
    time.series[1].values.push_back(std::max(0.0, report.fca.times.layer_ms[l]));
  }
  svg::Document document;
  document.title = model_name(report) + ": dense vs FCA — " + eval::fixed(report.reduction_ratio(), 2) +
                   "x fewer FLOPs, " + eval::fixed(report.speedup(), 2) + "x faster";
  document.subtitle = "FCA: " + fca::describe_schedule(report.fca.schedule) + "\n" + report.source + ", " +
                      std::to_string(report.sequences()) + " sequences, " +
                      std::to_string(report.fca.flops.tokens()) + " tokens; " +
                      std::to_string(report.threads) + " threads, batch " + std::to_string(report.batch_size);
  document.charts = {std::move(flops), std::move(time)};
  return svg::render(document);
}

}  // namespace fcabert::profile
