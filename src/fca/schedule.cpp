// FCA schedule: parsing, validation, keep counts and the per-layer row counts.
#include <algorithm>
#include <charconv>
#include <cmath>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <system_error>

#include "fca/format_number.h"
#include "fcabert/error.h"
#include "fcabert/fca.h"

namespace fcabert::fca {
namespace {

std::string_view trim(std::string_view text) {
  const auto is_space = [](char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; };
  while (!text.empty() && is_space(text.front())) text.remove_prefix(1);
  while (!text.empty() && is_space(text.back())) text.remove_suffix(1);
  return text;
}

// The checks shared by parse_schedule and validate_schedule (everything but the count).
void check_values(const FcaSchedule& schedule) {
  if (schedule.clusters < 0)
    throw Error("FCA clusters (C) must be >= 0 (0 drops the remaining tokens), got " +
                std::to_string(schedule.clusters));
  const std::vector<double>& ratios = schedule.keep_ratios;
  for (size_t i = 0; i < ratios.size(); ++i) {
    if (!(ratios[i] > 0.0 && ratios[i] <= 1.0))
      throw Error("FCA keep ratio of layer " + std::to_string(i) + " is " + format_number(ratios[i]) +
                  "; expected a value in (0, 1]");
    if (i > 0 && ratios[i] > ratios[i - 1])
      throw Error("FCA keep ratios must not increase with depth, but layer " + std::to_string(i) + " keeps " +
                  format_number(ratios[i]) + " > layer " + std::to_string(i - 1) + " keeps " +
                  format_number(ratios[i - 1]));
  }
}

}  // namespace

Pooling parse_pooling(std::string_view name) {
  if (name == "weighted") return Pooling::kWeighted;
  if (name == "mean") return Pooling::kMean;
  throw Error("unknown FCA pooling \"" + std::string(name) + "\"; expected \"weighted\" or \"mean\"");
}

const char* pooling_name(Pooling pooling) { return pooling == Pooling::kMean ? "mean" : "weighted"; }

FcaSchedule parse_schedule(std::string_view keep_ratios_csv, int64_t clusters, std::string_view pooling) {
  FcaSchedule schedule;
  schedule.clusters = clusters;
  schedule.pooling = parse_pooling(pooling);
  if (trim(keep_ratios_csv).empty())
    throw Error(
        "the FCA keep ratios are empty; give one ratio per layer, e.g. \"1,0.9,0.8\" (use --dense to "
        "turn FCA off)");
  size_t start = 0;
  while (true) {
    const size_t comma = keep_ratios_csv.find(',', start);
    const std::string_view item = trim(keep_ratios_csv.substr(start, comma - start));
    const size_t index = schedule.keep_ratios.size();
    double value = 0.0;
    const auto [end, ec] = std::from_chars(item.data(), item.data() + item.size(), value);
    if (item.empty() || ec != std::errc() || end != item.data() + item.size())
      throw Error("cannot parse the FCA keep ratio of layer " + std::to_string(index) + ": \"" +
                  std::string(item) + "\" is not a decimal number (in \"" + std::string(keep_ratios_csv) +
                  "\")");
    schedule.keep_ratios.push_back(value);
    if (comma == std::string_view::npos) break;
    start = comma + 1;
  }
  check_values(schedule);
  return schedule;
}

void validate_schedule(const FcaSchedule& schedule, int64_t num_layers) {
  const int64_t count = static_cast<int64_t>(schedule.keep_ratios.size());
  if (count != 0 && count != num_layers)
    throw Error("the FCA schedule has " + std::to_string(count) + " keep ratio" + (count == 1 ? "" : "s") +
                "; expected " + std::to_string(num_layers) + " (one per layer) for this " +
                std::to_string(num_layers) + "-layer model");
  check_values(schedule);
}

int64_t keep_count(double ratio, int64_t original_length) {
  const double k = std::ceil(ratio * static_cast<double>(original_length) - 1e-9);
  return std::max<int64_t>(1, static_cast<int64_t>(k));
}

ReductionShape reduction_shape(int64_t n, int64_t keep, int64_t clusters) {
  ReductionShape shape;
  shape.rows_in = n;
  shape.keep = keep;
  const int64_t m = n - keep;
  shape.reduce = clusters > 0 ? m > clusters : m > 0;
  if (shape.reduce) {
    shape.fine = keep;
    shape.coarse = m;
    shape.clusters = std::min(clusters, m);
    shape.pooled_rows = shape.clusters > 0 ? m : 0;
  } else {
    shape.fine = n;
  }
  shape.rows_out = shape.fine + shape.clusters;
  return shape;
}

std::vector<ReductionShape> schedule_shapes(const FcaSchedule& schedule, int64_t num_layers,
                                            int64_t original_length) {
  validate_schedule(schedule, num_layers);
  if (original_length < 1)
    throw Error("a sequence has at least one token ([CLS]), got " + std::to_string(original_length));
  std::vector<ReductionShape> shapes;
  shapes.reserve(static_cast<size_t>(num_layers));
  int64_t n = original_length;
  for (int64_t layer = 0; layer < num_layers; ++layer) {
    const int64_t keep = schedule.enabled() ? keep_count(schedule.keep_ratios[layer], original_length) : n;
    shapes.push_back(reduction_shape(n, keep, schedule.clusters));
    n = shapes.back().rows_out;
  }
  return shapes;
}

std::string describe_schedule(const FcaSchedule& schedule) {
  if (!schedule.enabled()) return "dense";
  std::ostringstream text;
  text << "keep ";
  for (size_t i = 0; i < schedule.keep_ratios.size(); ++i) text << (i ? "," : "") << schedule.keep_ratios[i];
  text << " C=" << schedule.clusters << ' ' << pooling_name(schedule.pooling);
  return text.str();
}

nlohmann::ordered_json schedule_to_json(const FcaSchedule& schedule) {
  nlohmann::ordered_json out;
  out["description"] = describe_schedule(schedule);
  out["keep_ratios"] = schedule.keep_ratios;
  out["clusters"] = schedule.clusters;
  out["pooling"] = pooling_name(schedule.pooling);
  return out;
}

FcaSchedule schedule_from_json(const nlohmann::ordered_json& json) {
  try {
    FcaSchedule schedule;
    schedule.keep_ratios = json.at("keep_ratios").get<std::vector<double>>();
    schedule.clusters = json.at("clusters").get<int64_t>();
    schedule.pooling = parse_pooling(json.at("pooling").get<std::string>());
    return schedule;
  } catch (const nlohmann::json::exception& e) {
    throw Error("malformed schedule (" + std::string(e.what()) + ")");
  }
}

}  // namespace fcabert::fca
