// The calibration search (include/fcabert/calibrate.h, docs/CALIBRATE.md): greedy coordinate
// descent over a grid of keep ratios, lazily re-measured, then a refinement pass that gives
// back any FLOPs slack the last move left.
#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <limits>
#include <numeric>
#include <optional>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "fcabert/calibrate.h"
#include "fcabert/error.h"
#include "fcabert/fca.h"
#include "fcabert/flops.h"
#include "fcabert/metrics.h"
#include "fcabert/runner.h"

namespace fcabert::calibrate {
namespace {

using Clock = std::chrono::steady_clock;
using Units = std::vector<int64_t>;  // keep ratios in grid steps: r = u / grid

int64_t grid_of(double step) { return static_cast<int64_t>(std::llround(1.0 / step)); }

FcaSchedule to_schedule(const Units& units, int64_t grid, const Options& options) {
  FcaSchedule schedule;
  for (int64_t u : units) schedule.keep_ratios.push_back(static_cast<double>(u) / static_cast<double>(grid));
  schedule.clusters = options.clusters;
  schedule.pooling = options.pooling;
  return schedule;
}

// Lowers layer `layer` to `value` grid steps and clamps the deeper layers (monotonicity).
Units lowered(const Units& units, size_t layer, int64_t value) {
  Units out = units;
  for (size_t j = layer; j < out.size(); ++j) out[j] = std::min(out[j], value);
  return out;
}

// Raises layer `layer` to `value` and lifts the shallower layers to at least it.
Units raised(const Units& units, size_t layer, int64_t value) {
  Units out = units;
  for (size_t j = 0; j <= layer; ++j) out[j] = std::max(out[j], value);
  return out;
}

std::vector<double> log_softmax(const std::vector<float>& logits) {
  double max = -std::numeric_limits<double>::infinity();
  for (float v : logits) max = std::max(max, static_cast<double>(v));
  double sum = 0;
  for (float v : logits) sum += std::exp(static_cast<double>(v) - max);
  const double log_sum = max + std::log(sum);
  std::vector<double> out(logits.size());
  for (size_t i = 0; i < logits.size(); ++i) out[i] = static_cast<double>(logits[i]) - log_sum;
  return out;
}

// Logits of every example in input order, run as eval runs them (length-sorted batches).
std::vector<std::vector<float>> run_all(Session& session, const std::vector<Encoding>& examples,
                                        const BatchPlan& plan) {
  RunResult result = run_batches({&session}, examples, plan).front();
  std::vector<std::vector<float>> logits;
  logits.reserve(result.predictions.size());
  for (Prediction& prediction : result.predictions) logits.push_back(std::move(prediction.logits));
  return logits;
}

void count_flops(Measurement& m, const Model& model, const std::vector<Encoding>& examples) {
  const ModelInfo& info = model.info();
  FlopsTally tally(info.bert, info.head.outputs());
  for (const Encoding& e : examples)
    tally.add_sequence_analytic(m.schedule, static_cast<int64_t>(e.ids.size()));
  m.flops = tally.total();
  m.dense_flops = tally.dense_total();
  m.flops_ratio = m.dense_flops > 0 ? static_cast<double>(m.flops) / static_cast<double>(m.dense_flops) : 1.0;
}

void score(Measurement& m, const std::vector<std::vector<float>>& logits,
           const std::vector<std::vector<float>>& dense_logits, const Options& options, bool regression) {
  const size_t n = logits.size();
  if (regression) {
    double mean = 0;
    for (const auto& d : dense_logits) mean += d.at(0);
    mean /= static_cast<double>(n);
    double var = 0, sq = 0;
    for (size_t i = 0; i < n; ++i) {
      const double d = dense_logits[i].at(0);
      var += (d - mean) * (d - mean);
      const double diff = static_cast<double>(logits[i].at(0)) - d;
      sq += diff * diff;
    }
    var /= static_cast<double>(n);
    m.mse = sq / static_cast<double>(n) / (var > 1e-12 ? var : 1.0);
    m.agreement = 1;
    m.mean_kl = 0;
    m.loss = m.mse;
    return;
  }
  int64_t agree = 0;
  double kl = 0;
  for (size_t i = 0; i < n; ++i) {
    if (metrics::argmax(logits[i]) == metrics::argmax(dense_logits[i])) ++agree;
    const std::vector<double> p = log_softmax(dense_logits[i]);
    const std::vector<double> q = log_softmax(logits[i]);
    double sum = 0;
    for (size_t c = 0; c < p.size(); ++c) sum += std::exp(p[c]) * (p[c] - q[c]);
    kl += std::max(0.0, sum);
  }
  m.agreement = static_cast<double>(agree) / static_cast<double>(n);
  m.mean_kl = kl / static_cast<double>(n);
  m.loss = (1.0 - m.agreement) + options.kl_weight * m.mean_kl;
}

std::string fixed(double value, int digits) {
  char text[64];
  std::snprintf(text, sizeof text, "%.*f", digits, value);
  return text;
}

}  // namespace

void validate(const Options& options) {
  if (!(options.flops_target > 0.0 && options.flops_target <= 1.0))
    throw Error(
        "--flops-target must be in (0, 1] (the FCA FLOPs as a share of the dense FLOPs, e.g. 0.5), got " +
        fixed(options.flops_target, 4));
  if (options.clusters < 0) throw Error("--clusters must be >= 0, got " + std::to_string(options.clusters));
  if (!(options.step > 0.0 && options.step <= 0.5))
    throw Error("--step must be in (0, 0.5], got " + fixed(options.step, 4));
  const int64_t grid = grid_of(options.step);
  if (std::fabs(static_cast<double>(grid) * options.step - 1.0) > 1e-9)
    throw Error("--step " + fixed(options.step, 6) +
                ": 1/step must be a whole number (e.g. 0.05, 0.1, 0.025)");
  const double units = options.min_ratio * static_cast<double>(grid);
  if (!(options.min_ratio > 0.0 && options.min_ratio <= 1.0) || std::fabs(units - std::round(units)) > 1e-9)
    throw Error("--min-ratio must be in (0, 1] and a multiple of --step, got " + fixed(options.min_ratio, 4));
  if (!(options.kl_weight >= 0.0) || !std::isfinite(options.kl_weight))
    throw Error("--kl-weight must be >= 0");
  if (options.batch_size < 1) throw Error("--batch-size must be at least 1");
  if (options.refresh_every < 0) throw Error("refresh_every must be >= 0");
  if (!(options.min_saving >= 0.0 && options.min_saving < 1.0)) throw Error("--min-saving must be in [0, 1)");
}

std::string ratios_text(const std::vector<double>& ratios) {
  std::string out;
  for (size_t i = 0; i < ratios.size(); ++i) {
    char text[32];
    // The shortest of %.1g ... %.17g that reads back as the same double.
    for (int digits = 1; digits <= 17; ++digits) {
      std::snprintf(text, sizeof text, "%.*g", digits, ratios[i]);
      if (std::strtod(text, nullptr) == ratios[i]) break;
    }
    out += (i ? "," : "") + std::string(text);
  }
  return out;
}

Measurement measure(Session& session, const std::vector<Encoding>& examples,
                    const std::vector<std::vector<float>>& dense_logits, const Options& options,
                    bool regression) {
  if (examples.empty()) throw Error("calibration needs at least one example");
  if (dense_logits.size() != examples.size()) throw Error("measure: one dense output per example is needed");
  Measurement m;
  m.schedule = session.schedule();
  count_flops(m, session.model(), examples);
  const BatchPlan batches = plan_batches(examples, options.batch_size, BatchOrder::kByLength);
  score(m, run_all(session, examples, batches), dense_logits, options, regression);
  return m;
}

std::vector<Result> calibrate_targets(std::shared_ptr<const Model> model,
                                      const std::vector<Encoding>& examples, const Options& options,
                                      const std::vector<double>& targets, const StepCallback& on_step) {
  validate(options);
  if (targets.empty()) throw Error("calibrate: give at least one FLOPs target");
  for (double t : targets) {
    Options check = options;
    check.flops_target = t;
    validate(check);
  }
  if (examples.empty())
    throw Error("no calibration examples: give a file or GLUE folder with at least one example");
  const auto started = Clock::now();
  auto elapsed = [&] { return std::chrono::duration<double>(Clock::now() - started).count(); };
  const ModelInfo& info = model->info();
  const bool regression = info.head.kind == HeadKind::kRegression;
  const size_t layers = static_cast<size_t>(info.bert.num_layers);
  const int64_t grid = grid_of(options.step);
  const int64_t floor_units = std::llround(options.min_ratio * static_cast<double>(grid));
  const BatchPlan batches = plan_batches(examples, options.batch_size, BatchOrder::kByLength);
  // The targets from the highest down: the search follows one greedy path and takes each
  // target's schedule where the path first reaches it.
  std::vector<size_t> order(targets.size());
  std::iota(order.begin(), order.end(), size_t{0});
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return targets[a] > targets[b]; });
  const double lowest_target = targets[order.back()];

  int64_t model_runs = 0;
  auto flops_of = [&](const Units& units) {
    Measurement m;
    m.schedule = to_schedule(units, grid, options);
    count_flops(m, *model, examples);
    return m;
  };

  // Can the lowest target be reached at all?
  const Measurement lowest = flops_of(Units(layers, floor_units));
  if (lowest.flops_ratio > lowest_target)
    throw Error("--flops-target " + fixed(lowest_target, 3) + " cannot be reached on this data: with every " +
                "layer at the lowest keep ratio " + fixed(options.min_ratio, 3) + " (C=" +
                std::to_string(options.clusters) + ") the FLOPs are " + fixed(lowest.flops_ratio, 3) +
                " of dense; raise the target or lower --min-ratio / --clusters");

  // The dense reference.
  SessionOptions dense_options;
  dense_options.schedule = FcaSchedule{};
  Session dense(model, dense_options);
  const std::vector<std::vector<float>> dense_logits = run_all(dense, examples, batches);
  model_runs = 1;

  auto run = [&](const Units& units) {
    Measurement m = flops_of(units);
    SessionOptions session_options;
    session_options.schedule = m.schedule;
    Session session(model, session_options);
    score(m, run_all(session, examples, batches), dense_logits, options, regression);
    ++model_runs;
    spdlog::debug("calibrate: measured keep {} -> FLOPs {:.4f}, loss {:.5f}",
                  ratios_text(m.schedule.keep_ratios), m.flops_ratio, m.loss);
    return m;
  };

  // The all-1 schedule never reduces (k = n0): it is the dense model, loss 0.
  Units current(layers, grid);
  Measurement now = flops_of(current);
  now.agreement = 1;
  now.loss = 0;
  const double dense_flops = static_cast<double>(now.dense_flops);
  const double min_saving = options.min_saving * dense_flops;
  std::vector<Step> path;
  int64_t round = 0;
  auto record = [&](std::vector<Step>& steps, size_t layer, const Measurement& after) {
    Step step;
    step.round = ++round;
    step.layer = static_cast<int64_t>(layer);
    step.after = after;
    step.model_runs = model_runs;
    step.seconds = elapsed();
    steps.push_back(step);
    if (on_step) on_step(step);
  };

  // One lazy greedy round towards `target_flops`: takes the move with the least loss increase
  // per FLOP saved.
  std::vector<std::optional<double>> estimate(layers);  // cost per saved FLOP share, stale
  int64_t rounds = 0;
  auto greedy_round = [&](double target_flops) {
    if (options.refresh_every > 0 && rounds % options.refresh_every == 0)
      std::fill(estimate.begin(), estimate.end(), std::nullopt);
    ++rounds;
    const double needed = static_cast<double>(now.flops) - target_flops;
    // The candidate move of each layer: the smallest drop that saves at least min_saving (or
    // what is still needed), or the largest saving there is when the floor comes first.
    std::vector<std::optional<Units>> move(layers);
    for (size_t l = 0; l < layers; ++l) {
      for (int64_t value = current[l] - 1; value >= floor_units; --value) {
        Units candidate = lowered(current, l, value);
        const double saved = static_cast<double>(now.flops - flops_of(candidate).flops);
        if (saved > 0 && (saved >= std::min(min_saving, needed) || value == floor_units)) {
          move[l] = std::move(candidate);
          break;
        }
      }
    }
    // Cost per FLOP saved; savings beyond the target earn nothing (no credit for overshoot).
    auto cost = [&](const Measurement& m) {
      const double saved = static_cast<double>(now.flops - m.flops);
      return (m.loss - now.loss) / (std::min(saved, needed) / dense_flops);
    };
    std::vector<bool> fresh(layers, false);
    std::vector<Measurement> measured(layers);
    for (;;) {
      size_t best = layers;
      for (size_t l = 0; l < layers; ++l) {
        if (!move[l]) continue;
        // Unmeasured candidates come first (they must be measured before anything is taken).
        const double a = estimate[l] ? *estimate[l] : -std::numeric_limits<double>::infinity();
        if (best == layers ||
            a < (estimate[best] ? *estimate[best] : -std::numeric_limits<double>::infinity()))
          best = l;
      }
      if (best == layers)
        throw Error("calibration stalled: no keep ratio can be lowered further (internal error)");
      if (fresh[best]) {
        // The costs measured this round (against the old base) stay as estimates.
        current = *move[best];
        now = measured[best];
        record(path, best, now);
        return;
      }
      measured[best] = run(*move[best]);
      fresh[best] = true;
      estimate[best] = cost(measured[best]);
    }
  };

  // Refinement of a copy: the last move may have overshot the target. Raise single layers
  // back by one grid step while the FLOPs stay within the target and the loss goes down.
  auto refine = [&](Units units, Measurement m, double target_flops, std::vector<Step>& steps) {
    bool improved = true;
    for (int pass = 0; improved && pass < 2; ++pass) {
      improved = false;
      for (size_t l = 0; l < layers; ++l) {
        if (units[l] >= grid) continue;
        const Units candidate = raised(units, l, units[l] + 1);
        if (static_cast<double>(flops_of(candidate).flops) > target_flops) continue;
        Measurement c = run(candidate);
        if (c.loss < m.loss) {
          units = candidate;
          m = c;
          improved = true;
          record(steps, l, m);
        }
      }
    }
    return std::make_pair(units, m);
  };

  std::vector<Result> results(targets.size());
  for (size_t i : order) {
    const double target_flops = targets[i] * dense_flops;
    while (static_cast<double>(now.flops) > target_flops) greedy_round(target_flops);
    Result& r = results[i];
    r.steps = path;
    Units units = current;
    r.final = now;
    if (!path.empty()) std::tie(units, r.final) = refine(current, now, target_flops, r.steps);
    const bool all_one = std::all_of(units.begin(), units.end(), [&](int64_t u) { return u == grid; });
    r.schedule = all_one ? FcaSchedule{} : to_schedule(units, grid, options);
    if (all_one) r.final.schedule = FcaSchedule{};
    r.model_runs = model_runs;
    r.seconds = elapsed();
  }
  return results;
}

Result calibrate(std::shared_ptr<const Model> model, const std::vector<Encoding>& examples,
                 const Options& options, const StepCallback& on_step) {
  return calibrate_targets(std::move(model), examples, options, {options.flops_target}, on_step).front();
}

}  // namespace fcabert::calibrate
