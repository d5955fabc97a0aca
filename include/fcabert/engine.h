#pragma once
// Loading a model and running it on packed, ragged batches (no padding, docs/ARCHITECTURE.md).
//
// Thread-safety contract (tested in tests/cpp/test_model_determinism.cpp and
// test_model_end_to_end.cpp):
// - Model::load may be called from any thread. A loaded Model is immutable: every member
//   is const and nothing in it changes after load (weights, oneDNN primitives, tokenizer),
//   so one shared_ptr<const Model> may be used by any number of threads at once, and the
//   Model lives as long as the last Session holding it.
// - A Tokenizer (Model::tokenizer()) is immutable too: encode / encode_pair / tokenize may
//   run concurrently on one Tokenizer.
// - A Session is NOT thread-safe: it owns its scratch buffers, oneDNN stream and scratchpad.
//   Use one Session per thread (any number of Sessions per Model, each with its own
//   SessionOptions, e.g. dense and FCA side by side). Moving a Session to another thread
//   between calls is fine; calling it from two threads at once is not.
// - Results are deterministic: the same Encoding gives the same Prediction whatever the
//   batch it is in (size, order, neighbours), the Session, the thread running it and
//   LoadOptions::threads (1 or 2 tested). The only allowed difference is oneDNN's GEMM
//   blocking for other row counts or thread counts, bounded by 1e-6 on logits; labels and
//   FCA traces are identical.
// - Each concurrent Session starts its own OpenMP team of LoadOptions::threads threads
//   (more Sessions than cores / threads oversubscribe the machine). Do not call Session::run
//   from inside an OpenMP parallel region. Errors are exceptions (fcabert::Error) thrown to
//   the calling thread only; a Session that threw stays usable.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "fcabert/config.h"
#include "fcabert/fca.h"
#include "fcabert/precision.h"
#include "fcabert/tokenizer.h"

namespace fcabert {

struct LoadOptions {
  int threads = 2;                         // also given to oneDNN / OpenMP
  Precision precision = Precision::kFp32;  // kAuto: Model::load picks (Model::precision())
};

// One candidate of Precision::kAuto: the median wall time of one encoder layer's four GEMMs
// (input conversion included) in that precision, at the model's sizes.
struct PrecisionTiming {
  Precision precision = Precision::kFp32;
  double layer_gemm_ms = 0;
};

// The arithmetic a loaded Model runs: LoadOptions::precision, resolved when it was kAuto.
struct PrecisionChoice {
  Precision requested = Precision::kFp32;  // as given to Model::load
  Precision precision = Precision::kFp32;  // what the encoder runs (never kAuto)
  // GEMM by GEMM and attention, e.g. "int8 (FFN down-projection bf16, attention bf16)"
  std::string arithmetic;
  std::vector<PrecisionTiming> timings;  // kAuto only: every candidate timed, most exact first
  std::string reason;                    // "requested", or the auto timings in one line
};

// The versions of the libraries doing the arithmetic, e.g. "oneDNN 2.6.3", for reports.
std::string backend_version();
// This engine's version, e.g. "0.1.0" (the CMake project version).
const char* version();

class Model {
 public:
  // Reads and validates the model file, converts bf16 weights to fp32 and prepares the
  // oneDNN primitives. Throws fcabert::Error.
  static std::shared_ptr<const Model> load(const std::string& path, const LoadOptions& options = {});

  ~Model();
  Model(const Model&) = delete;
  Model& operator=(const Model&) = delete;

  const ModelInfo& info() const;
  const std::string& path() const;
  const Tokenizer& tokenizer() const;
  const LoadOptions& options() const;  // as given to load()
  // The precision the encoder runs, and how it was chosen (options().precision may be kAuto).
  const PrecisionChoice& precision() const;

  // What a Session runs: the bound network (defined in src/model/loaded_model.h, opaque here).
  struct Internals;
  const Internals& internals() const { return *internals_; }

 private:
  explicit Model(std::unique_ptr<const Internals> internals);
  std::unique_ptr<const Internals> internals_;
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
  std::vector<float> probabilities;  // softmax of logits; multi-label: sigmoid of each; empty for regression
  SequenceTrace trace;
};

// The labels of a multi-label prediction: the indices of the probabilities strictly above
// `threshold`, in label order (none is possible). Throws fcabert::Error unless
// 0 <= threshold <= 1.
std::vector<size_t> labels_above(const Prediction& prediction, double threshold);

// One text's prediction from the predictions of its windows (classify --long window): the mean
// of their logits, and the probabilities of that mean as the head makes them (softmax;
// multi-label: sigmoid; regression: none). The trace is the first window's. `count` >= 1.
Prediction average_of_windows(const Prediction* windows, size_t count, HeadKind kind);

// Wall time of the last run, by stage, for the whole batch (steady_clock). Only measured
// with SessionOptions::time_layers; otherwise every figure stays 0 and layer_ms empty.
struct LayerTimings {
  double embeddings_ms = 0;
  std::vector<double> layer_ms;  // one per encoder layer, FCA step included
  double linear_ms = 0;          // the part of layer_ms spent in the encoder's GEMMs (with
                                 // int8: their input quantization included)
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
  // The scratch memory this Session holds now (it grows to the largest batch run so far and
  // is reused): activations, FCA buffers and oneDNN's scratchpad.
  size_t workspace_bytes() const;

 private:
  struct Scratch;
  std::shared_ptr<const Model> model_;
  std::unique_ptr<Scratch> scratch_;
};

}  // namespace fcabert
