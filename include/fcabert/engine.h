#pragma once
// Loading a model and running it on packed, ragged batches (no padding, DESIGN §3).
//
// Thread safety: a loaded Model is immutable and may be shared by any number of threads;
// each thread runs its own Session (a Session owns its scratch buffers and is not
// thread-safe itself).
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "fcabert/config.h"
#include "fcabert/fca.h"
#include "fcabert/tokenizer.h"

namespace fcabert {

struct LoadOptions {
  int threads = 2;  // also given to oneDNN / OpenMP
};

// The versions of the libraries doing the arithmetic, e.g. "oneDNN 2.6.3", for reports.
std::string backend_version();

class Model {
 public:
  // Reads and validates the model file, converts bf16 weights to fp32 and prepares the
  // oneDNN primitives. Throws fcabert::Error.
  static std::shared_ptr<const Model> load(const std::string& path, const LoadOptions& options = {});

  virtual ~Model() = default;
  virtual const ModelInfo& info() const = 0;
  virtual const std::string& path() const = 0;
  virtual const Tokenizer& tokenizer() const = 0;
  virtual const LoadOptions& options() const = 0;  // as given to load()
};

// Per-Session settings. The Model stays immutable; two Sessions on one Model can run the
// file's FCA schedule and the dense model side by side (what `profile` and `eval
// --compare-dense` do).
struct SessionOptions {
  // Replaces the model file's FCA schedule for this Session (validated against the model's
  // layer count); keep_ratios empty = dense. Unset = the file's schedule.
  std::optional<FcaSchedule> schedule;
  bool explain = false;      // record the identities of the rows each layer kept
  bool time_layers = false;  // measure wall time per layer (Session::last_timings)
};

// What FCA did to one sequence (docs/FCA.md).
struct SequenceTrace {
  int64_t tokens = 0;  // n0, special tokens included
  // One per layer: rows in/out, reduced or not (always filled; a dense run or a layer that
  // passes the sequence through has reduce = false, keep = rows_out = rows_in). Equal to
  // fca::schedule_shapes(schedule, layers, tokens).
  std::vector<fca::ReductionShape> layers;
  // Only with SessionOptions::explain: per layer, the row identities of the fine rows kept
  // (every row when the layer passed the sequence through).
  std::vector<std::vector<fca::RowIdentity>> kept;
};

// The output for one input sequence.
struct Prediction {
  std::vector<float> logits;         // one per head output
  std::vector<float> probabilities;  // softmax of logits; empty for regression
  SequenceTrace trace;
};

// Wall time of the last run, by stage, for the whole batch (steady_clock). Only measured
// with SessionOptions::time_layers; otherwise every figure stays 0 and layer_ms empty.
struct LayerTimings {
  double embeddings_ms = 0;
  std::vector<double> layer_ms;  // one per encoder layer, FCA step included
  double head_ms = 0;            // pooler + classifier
};

class Session {
 public:
  explicit Session(std::shared_ptr<const Model> model, SessionOptions options = {});
  ~Session();
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;

  // Runs one packed batch; returns one Prediction per encoding, in the same order. Throws
  // fcabert::Error, before any computation, for an empty sequence, a sequence longer than
  // max_position_embeddings, or an id outside the vocabulary / token-type range. An empty
  // batch gives an empty result. Scratch grows to the largest batch seen and is reused.
  std::vector<Prediction> run(const std::vector<Encoding>& batch);

  const Model& model() const { return *model_; }
  const FcaSchedule& schedule() const;       // the one this Session runs
  const LayerTimings& last_timings() const;  // of the last run()

 private:
  struct Scratch;
  std::shared_ptr<const Model> model_;
  std::unique_ptr<Scratch> scratch_;
};

}  // namespace fcabert
