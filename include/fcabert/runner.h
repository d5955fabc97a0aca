#pragma once
// Running a list of encodings through Sessions in packed batches: what classify's callers,
// eval, calibrate and profile do. The runner plans the batches (length-sorted for throughput,
// or in input order), runs them, puts the predictions back in input order and counts the
// exact FLOPs from each sequence's trace (include/fcabert/flops.h).
#include <cstddef>
#include <cstdint>
#include <functional>
#include <vector>

#include "fcabert/engine.h"
#include "fcabert/flops.h"
#include "fcabert/tokenizer.h"

namespace fcabert {

enum class BatchOrder {
  kByLength,  // sorted by token count (stable): fewer distinct lengths per batch, faster
  kInput,     // as given
};

// Which encodings go into which batch. Batch b holds the encodings order[b * batch_size ..
// min(size, (b + 1) * batch_size)).
struct BatchPlan {
  std::vector<size_t> order;  // run position -> index into the encodings
  size_t batch_size = 1;

  size_t batches() const { return (order.size() + batch_size - 1) / batch_size; }
  size_t begin(size_t batch) const { return batch * batch_size; }
  size_t end(size_t batch) const;
};

// Throws fcabert::Error when batch_size < 1.
BatchPlan plan_batches(const std::vector<Encoding>& encodings, int64_t batch_size, BatchOrder order);

// The plan's batches as separate lists, for callers that time each batch themselves.
std::vector<std::vector<Encoding>> batches_of(const std::vector<Encoding>& encodings, const BatchPlan& plan);

// One Session's results over all the encodings.
struct RunResult {
  std::vector<Prediction> predictions;  // in input order
  FlopsTally flops;                     // exact, from the traces
  double seconds = 0;                   // wall time inside Session::run (steady_clock)
  // Session::last_timings summed over the batches (all 0 unless the Session was made with
  // SessionOptions::time_layers).
  LayerTimings timings;
  explicit RunResult(const ModelInfo& info);
};

// Called after each batch with the encodings that every Session has run so far, and the total.
using BatchProgress = std::function<void(size_t done, size_t total)>;

// Runs every batch of `plan` through each Session, batch by batch. With several Sessions the
// one that goes first rotates from batch to batch, so that none always finds the caches
// warmed by another (batch b starts with sessions[b % sessions.size()]). One RunResult per
// Session, in the order given. Throws what Session::run throws.
std::vector<RunResult> run_batches(const std::vector<Session*>& sessions,
                                   const std::vector<Encoding>& encodings, const BatchPlan& plan,
                                   const BatchProgress& progress = {});

// Adds one sequence's exact FLOPs, from the trace Session::run gave it, to `tally`. Throws
// fcabert::Error if the trace does not cover every layer.
void tally_trace(FlopsTally& tally, Pooling pooling, const SequenceTrace& trace);

}  // namespace fcabert
