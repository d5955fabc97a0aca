// Packed-batch runner (include/fcabert/runner.h).
#include "fcabert/runner.h"

#include <algorithm>
#include <chrono>
#include <numeric>
#include <string>

#include "fcabert/error.h"

namespace fcabert {

size_t BatchPlan::end(size_t batch) const { return std::min(order.size(), (batch + 1) * batch_size); }

BatchPlan plan_batches(const std::vector<Encoding>& encodings, int64_t batch_size, BatchOrder order) {
  if (batch_size < 1) throw Error("batch size must be at least 1, not " + std::to_string(batch_size));
  BatchPlan plan;
  plan.batch_size = static_cast<size_t>(batch_size);
  plan.order.resize(encodings.size());
  std::iota(plan.order.begin(), plan.order.end(), size_t{0});
  if (order == BatchOrder::kByLength)
    std::stable_sort(plan.order.begin(), plan.order.end(),
                     [&](size_t a, size_t b) { return encodings[a].ids.size() < encodings[b].ids.size(); });
  return plan;
}

namespace {

// Fills `batch` with the encodings of batch `b` of the plan.
void gather_batch(const std::vector<Encoding>& encodings, const BatchPlan& plan, size_t b,
                  std::vector<Encoding>& batch) {
  batch.clear();
  for (size_t i = plan.begin(b); i < plan.end(b); ++i) batch.push_back(encodings[plan.order[i]]);
}

}  // namespace

std::vector<std::vector<Encoding>> batches_of(const std::vector<Encoding>& encodings, const BatchPlan& plan) {
  std::vector<std::vector<Encoding>> batches(plan.batches());
  for (size_t b = 0; b < batches.size(); ++b) gather_batch(encodings, plan, b, batches[b]);
  return batches;
}

RunResult::RunResult(const ModelInfo& info) : flops(info.bert, info.head.outputs()) {}

void tally_trace(FlopsTally& tally, Pooling pooling, const SequenceTrace& trace) {
  const BertConfig& config = tally.config();
  if (static_cast<int64_t>(trace.layers.size()) != config.num_layers)
    throw Error("a trace of " + std::to_string(trace.layers.size()) +
                " layers cannot be counted for a model of " + std::to_string(config.num_layers) + " layers");
  tally.add_sequence(trace.tokens);
  for (size_t l = 0; l < trace.layers.size(); ++l)
    tally.add_layer(static_cast<int64_t>(l), layer_flops(config, trace.layers[l], pooling));
}

namespace {

void add_timings(LayerTimings& sum, const LayerTimings& batch) {
  sum.embeddings_ms += batch.embeddings_ms;
  sum.linear_ms += batch.linear_ms;
  sum.head_ms += batch.head_ms;
  if (sum.layer_ms.size() < batch.layer_ms.size()) sum.layer_ms.resize(batch.layer_ms.size(), 0.0);
  for (size_t l = 0; l < batch.layer_ms.size(); ++l) sum.layer_ms[l] += batch.layer_ms[l];
}

// Runs one batch on one Session and files its predictions under their input positions.
void run_batch(Session& session, const std::vector<Encoding>& batch, const BatchPlan& plan, size_t first,
               RunResult& result) {
  const auto start = std::chrono::steady_clock::now();
  std::vector<Prediction> predictions = session.run(batch);
  result.seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  add_timings(result.timings, session.last_timings());
  const Pooling pooling = session.schedule().pooling;
  for (size_t j = 0; j < predictions.size(); ++j) {
    tally_trace(result.flops, pooling, predictions[j].trace);
    result.predictions[plan.order[first + j]] = std::move(predictions[j]);
  }
}

}  // namespace

std::vector<RunResult> run_batches(const std::vector<Session*>& sessions,
                                   const std::vector<Encoding>& encodings, const BatchPlan& plan,
                                   const BatchProgress& progress) {
  if (plan.order.size() != encodings.size())
    throw Error("the batch plan covers " + std::to_string(plan.order.size()) + " encodings, not " +
                std::to_string(encodings.size()));
  std::vector<RunResult> results;
  for (Session* session : sessions) {
    results.emplace_back(session->model().info());
    results.back().predictions.resize(encodings.size());
  }
  std::vector<Encoding> batch;
  for (size_t b = 0; b < plan.batches(); ++b) {
    gather_batch(encodings, plan, b, batch);
    for (size_t turn = 0; turn < sessions.size(); ++turn) {
      const size_t s = (b + turn) % sessions.size();
      run_batch(*sessions[s], batch, plan, plan.begin(b), results[s]);
    }
    if (progress) progress(plan.end(b), encodings.size());
  }
  return results;
}

}  // namespace fcabert
