#pragma once
// Profiling an FCA schedule against the dense model (what `fcabert profile` runs;
// docs/PROFILE.md explains the report).
//
// Two Sessions share one loaded Model: the FCA one (the model file's schedule, or
// Options::schedule) and a dense one, both timing their layers. The inputs run in batches of
// Options::batch_size, in input order; every batch runs on both Sessions, interleaved (which
// one goes first alternates, so drift on a shared machine hits both alike), Options::repeat
// times. Times are medians over the repeats. FLOPs are exact for what the engine ran: they
// come from the per-sequence traces of the first repeat (real token counts, no padding;
// include/fcabert/flops.h). Options::padded_length adds the papers' convention: the analytic
// FLOPs of one input of that many tokens.
#include <cstdint>
#include <functional>
#include <iosfwd>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "fcabert/config.h"
#include "fcabert/engine.h"
#include "fcabert/flops.h"
#include "fcabert/tokenizer.h"

namespace fcabert::profile {

// What is profiled, and where it came from (for the report).
struct Inputs {
  std::vector<Encoding> encodings;
  std::string source;                       // a file name, "<stdin>" or "synthetic"
  std::optional<int64_t> synthetic_length;  // set by synthetic_inputs
  int64_t empty_lines = 0;                  // counted by whoever read the text
  int64_t truncated = 0;                    // encodings cut to max_len
};

constexpr int64_t kDefaultSyntheticCount = 64;

// `count` sequences of exactly `length` tokens: [CLS], ordinary vocabulary ids, [SEP] (pair
// models: [CLS] a [SEP] b [SEP], the two segments of nearly equal length). The ids come
// from a fixed hash of (sequence, position), so they are the same on every machine.
// Throws fcabert::Error naming --synthetic-length / --synthetic-count when out of range.
Inputs synthetic_inputs(const Model& model, int64_t length, int64_t count = kDefaultSyntheticCount);

struct Options {
  std::optional<FcaSchedule> schedule;  // the FCA side; unset = the model file's schedule
  int64_t batch_size = 32;
  int repeat = 3;                        // passes over the inputs per Session
  std::optional<int64_t> padded_length;  // also the analytic FLOPs of one input this long
};

// Checks the options against the model (throws fcabert::Error naming the flag).
void validate(const Options& options, const ModelInfo& info);

// Wall times of one Session, each the median over the repeats.
struct StageTimes {
  double wall_ms = 0;  // Session::run wall time for one pass over the inputs
  double embeddings_ms = 0;
  std::vector<double> layer_ms;  // one per encoder layer, FCA step included
  double head_ms = 0;
  std::vector<double> wall_ms_per_repeat;  // what wall_ms is the median of
};

// One Session's figures.
struct Side {
  FcaSchedule schedule;  // what it ran (dense: keep_ratios empty)
  FlopsTally flops;      // exact, from the traces
  StageTimes times;
};

struct Report {
  Report(Side fca_side, Side dense_side) : fca(std::move(fca_side)), dense(std::move(dense_side)) {}

  // The model and the run.
  std::string model_path;
  std::string task;  // the model's head task, may be empty
  BertConfig bert;
  int threads = 0;        // the Model's LoadOptions::threads
  std::string precision;  // the Model's PrecisionChoice::arithmetic
  int64_t batch_size = 0;
  int repeats = 0;
  bool schedule_from_file = true;  // Options::schedule was unset
  // The inputs.
  std::string source;
  std::optional<int64_t> synthetic_length;
  int64_t empty_lines = 0;
  int64_t truncated = 0;
  std::vector<int64_t> lengths;  // token count of each input, in input order
  // The two Sessions.
  Side fca;
  Side dense;
  // Options::padded_length: the analytic FLOPs of one input of that many tokens.
  std::optional<int64_t> padded_length;
  std::optional<FlopsTally> padded_dense, padded_fca;
  // Per-layer token counts that differed from fca::schedule_shapes (an engine bug; the FLOPs
  // follow what the engine ran). 0 in a correct engine.
  int64_t trace_mismatches = 0;

  int64_t sequences() const { return static_cast<int64_t>(lengths.size()); }
  double reduction_ratio() const { return fca.flops.reduction_ratio(dense.flops); }  // dense / FCA
  double speedup() const;                              // dense wall time / FCA wall time
  static double per_second(int64_t items, double ms);  // items / (ms / 1000), 0 for ms <= 0
};

// Receives (sequence runs done, total): every batch counts once per Session per repeat.
using ProgressCallback = std::function<void(int64_t done, int64_t total)>;

// Runs the profile. `inputs` must hold at least one encoding (throws). Validates `options`.
Report run(std::shared_ptr<const Model> model, const Inputs& inputs, const Options& options,
           const ProgressCallback& progress = {});

// The human-readable report (`fcabert profile`): per-layer table, totals, the padded table.
void write_text_report(const Report& report, std::ostream& out);
// The report as one JSON object (`fcabert profile --json`), indented by 2.
std::string report_to_json(const Report& report);
// A self-contained SVG chart of FLOPs and milliseconds per layer, dense vs FCA (`--plot`).
std::string render_chart(const Report& report);

}  // namespace fcabert::profile
