// profile::run: the interleaved dense-vs-FCA passes, the exact FLOPs tally and the medians.
#include "fcabert/profile.h"

#include <spdlog/spdlog.h>

#include <chrono>
#include <string>
#include <utility>

#include "fcabert/error.h"
#include "fcabert/fca.h"
#include "fcabert/metrics.h"
#include "fcabert/runner.h"

namespace fcabert::profile {
namespace {

// Counts the per-layer token counts of the traces that differ from the schedule's
// prediction (fca::schedule_shapes): an engine bug, reported but not fatal.
int64_t trace_mismatches(const FcaSchedule& schedule, int64_t layers, const std::vector<Encoding>& encodings,
                         const std::vector<Prediction>& predictions) {
  int64_t mismatches = 0;
  for (size_t i = 0; i < encodings.size(); ++i) {
    const std::vector<fca::ReductionShape> predicted =
        fca::schedule_shapes(schedule, layers, static_cast<int64_t>(encodings[i].ids.size()));
    const std::vector<fca::ReductionShape>& got = predictions[i].trace.layers;
    mismatches += predictions[i].trace.tokens != static_cast<int64_t>(encodings[i].ids.size());
    for (size_t l = 0; l < predicted.size(); ++l)
      if (got[l].rows_in != predicted[l].rows_in || got[l].rows_out != predicted[l].rows_out) ++mismatches;
  }
  return mismatches;
}

SessionOptions timed(std::optional<FcaSchedule> schedule) {
  SessionOptions options;
  options.schedule = std::move(schedule);
  options.time_layers = true;
  return options;
}

// One Session's passes, one RunResult per repeat.
struct Passes {
  Session& session;
  std::vector<RunResult> runs;
};

// Medians over the repeats, stage by stage.
StageTimes medians(const std::vector<RunResult>& runs, int64_t num_layers) {
  StageTimes result;
  std::vector<double> embeddings, head;
  for (const RunResult& run : runs) {
    result.wall_ms_per_repeat.push_back(1000 * run.seconds);
    embeddings.push_back(run.timings.embeddings_ms);
    head.push_back(run.timings.head_ms);
  }
  result.wall_ms = metrics::median(result.wall_ms_per_repeat);
  result.embeddings_ms = metrics::median(embeddings);
  result.head_ms = metrics::median(head);
  for (int64_t l = 0; l < num_layers; ++l) {
    std::vector<double> values;
    for (const RunResult& run : runs)
      values.push_back(l < static_cast<int64_t>(run.timings.layer_ms.size()) ? run.timings.layer_ms[l] : 0.0);
    result.layer_ms.push_back(metrics::median(values));
  }
  return result;
}

// Every repeat runs every batch on both Sessions (run_batches). Which one goes first
// alternates from batch to batch, and the order flips each repeat, so drift on a shared
// machine (frequency, other jobs) hits both alike.
void interleave(Passes& fca, Passes& dense, const std::vector<Encoding>& encodings, const BatchPlan& plan,
                int repeat, const ProgressCallback& progress) {
  const int64_t per_repeat = 2 * static_cast<int64_t>(encodings.size());
  for (int r = 0; r < repeat; ++r) {
    const bool fca_first = r % 2 == 0;
    BatchProgress batch_progress;
    if (progress)
      batch_progress = [&](size_t done, size_t) {
        progress(r * per_repeat + 2 * static_cast<int64_t>(done), per_repeat * repeat);
      };
    std::vector<RunResult> results =
        run_batches(fca_first ? std::vector<Session*>{&fca.session, &dense.session}
                              : std::vector<Session*>{&dense.session, &fca.session},
                    encodings, plan, batch_progress);
    fca.runs.push_back(std::move(results[fca_first ? 0 : 1]));
    dense.runs.push_back(std::move(results[fca_first ? 1 : 0]));
  }
}

// The FLOPs come from the first repeat (every repeat runs the same sequences).
Report make_report(const Model& model, const Inputs& inputs, const Options& options, const Passes& fca,
                   const Passes& dense) {
  const ModelInfo& info = model.info();
  Report report(
      Side{fca.session.schedule(), fca.runs.front().flops, medians(fca.runs, info.bert.num_layers)},
      Side{dense.session.schedule(), dense.runs.front().flops, medians(dense.runs, info.bert.num_layers)});
  report.model_path = model.path();
  report.task = info.head.task;
  report.bert = info.bert;
  report.threads = model.options().threads;
  report.precision = model.precision().arithmetic;
  report.batch_size = options.batch_size;
  report.repeats = options.repeat;
  report.schedule_from_file = !options.schedule.has_value();
  report.source = inputs.source;
  report.synthetic_length = inputs.synthetic_length;
  report.empty_lines = inputs.empty_lines;
  report.truncated = inputs.truncated;
  report.lengths.reserve(inputs.encodings.size());
  for (const Encoding& encoding : inputs.encodings)
    report.lengths.push_back(static_cast<int64_t>(encoding.ids.size()));
  if (options.padded_length) {
    report.padded_length = options.padded_length;
    report.padded_dense.emplace(info.bert, info.head.outputs());
    report.padded_fca.emplace(info.bert, info.head.outputs());
    report.padded_dense->add_sequence_analytic(FcaSchedule{}, *options.padded_length);
    report.padded_fca->add_sequence_analytic(report.fca.schedule, *options.padded_length);
  }
  return report;
}

}  // namespace

double Report::speedup() const {
  return fca.times.wall_ms > 0 ? dense.times.wall_ms / fca.times.wall_ms : 0.0;
}

double Report::per_second(int64_t items, double ms) {
  return ms > 0 ? static_cast<double>(items) / (ms / 1000) : 0.0;
}

void validate(const Options& options, const ModelInfo& info) {
  if (options.batch_size < 1) throw Error("--batch-size must be at least 1");
  if (options.repeat < 1) throw Error("--repeat must be at least 1");
  if (options.padded_length && (*options.padded_length < minimum_sequence_length(info) ||
                                *options.padded_length > info.bert.max_position_embeddings))
    throw Error("--padded-length " + std::to_string(*options.padded_length) +
                " is out of range for this model; use " + std::to_string(minimum_sequence_length(info)) +
                ".." + std::to_string(info.bert.max_position_embeddings));
}

Report run(std::shared_ptr<const Model> model, const Inputs& inputs, const Options& options,
           const ProgressCallback& progress) {
  const ModelInfo& info = model->info();
  validate(options, info);
  if (inputs.encodings.empty()) throw Error(inputs.source + ": nothing to profile (no inputs)");
  const BatchPlan plan = plan_batches(inputs.encodings, options.batch_size, BatchOrder::kInput);

  Session fca_session(model, timed(options.schedule));
  Session dense_session(model, timed(FcaSchedule{}));
  spdlog::debug("profile: {} vs dense, {} sequences in {} batches, {} repeats",
                fca::describe_schedule(fca_session.schedule()), inputs.encodings.size(), plan.batches(),
                options.repeat);
  // One untimed batch on each Session first: the first run sizes the scratch buffers.
  const std::vector<Encoding> first = batches_of(inputs.encodings, plan).front();
  fca_session.run(first);
  dense_session.run(first);

  Passes fca{fca_session, {}}, dense{dense_session, {}};
  interleave(fca, dense, inputs.encodings, plan, options.repeat, progress);
  Report report = make_report(*model, inputs, options, fca, dense);
  for (const Passes* passes : {&fca, &dense})
    report.trace_mismatches += trace_mismatches(passes->session.schedule(), info.bert.num_layers,
                                                inputs.encodings, passes->runs.front().predictions);
  if (report.trace_mismatches > 0)
    spdlog::warn(
        "the engine's per-layer token counts differ from the schedule's prediction in {} place(s); "
        "the FLOPs follow what the engine ran",
        report.trace_mismatches);
  return report;
}

}  // namespace fcabert::profile
