#pragma once
// Training-free calibration of an FCA keep-ratio schedule (docs/CALIBRATE.md).
//
// Given a fine-tuned dense model and some calibration text (unlabelled is fine), search the
// per-layer keep ratios (on a grid of `step`, non-increasing with depth, in (0, 1]) so that
// the FLOPs on the calibration set, counted as `fcabert eval` counts them (real token
// counts, FlopsTally::total()), are at most flops_target x the dense FLOPs, while the FCA
// model stays as close as possible to the dense model's outputs on the same text.
//
// Fidelity is label-free: for each calibration example the dense model's output is the
// reference. loss = disagreement (the share of examples whose argmax differs from dense)
//                 + kl_weight x mean KL(p_dense || p_fca)   (classification), or
//        loss = mean (y_fca - y_dense)^2 / var(y_dense)     (regression).
//
// Search: greedy coordinate descent from the all-1 schedule. Each round has one candidate
// move per layer l: lower r_l by the smallest number of grid steps that saves FLOPs on the
// calibration set, and clamp the deeper layers to at most the new r_l (monotonicity). The
// move with the least loss increase per FLOP saved is taken; rounds repeat until the FLOPs
// are within the target. Candidates are re-measured lazily: costs measured in earlier rounds
// serve as estimates, and only the best-looking move is re-run each round until it is still
// the best once fresh (a full refresh every `refresh_every` rounds).
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "fcabert/config.h"
#include "fcabert/engine.h"
#include "fcabert/tokenizer.h"

namespace fcabert::calibrate {

struct Options {
  double flops_target = 0.5;  // in (0, 1]: FCA FLOPs <= target x dense FLOPs
  int64_t clusters = 2;       // C of the searched schedule (0 = drop, PoWER-BERT style)
  Pooling pooling = Pooling::kWeighted;
  double step = 0.05;       // grid of keep ratios; 1/step must be an integer
  double min_ratio = 0.05;  // lowest keep ratio any layer may get (on the grid, >= step)
  double kl_weight = 1.0;   // classification: loss = disagreement + kl_weight x mean KL
  int64_t batch_size = 32;
  int64_t refresh_every = 8;  // re-measure every candidate every this many rounds (0: never)
  // A move lowers its layer by the fewest grid steps that save at least this share of the
  // dense FLOPs (or what is still needed to reach the target): fewer, larger early moves.
  double min_saving = 0.01;
};

// How one schedule does on the calibration set.
struct Measurement {
  FcaSchedule schedule;
  int64_t flops = 0;        // FlopsTally::total() over the calibration set
  int64_t dense_flops = 0;  // the same sequences dense
  double flops_ratio = 1;   // flops / dense_flops
  double agreement = 1;     // classification: share of examples with dense's argmax
  double mean_kl = 0;       // classification: mean KL(p_dense || p_fca), nats
  double mse = 0;           // regression: mean squared difference / var(dense outputs)
  double loss = 0;          // the objective (see above)
};

// One accepted move of the search.
struct Step {
  int64_t round = 0;  // 1-based
  int64_t layer = 0;  // the layer lowered (deeper layers may have been clamped)
  Measurement after;
  int64_t model_runs = 0;  // calibration passes so far (the dense reference included)
  double seconds = 0;      // since the search started
};

struct Result {
  FcaSchedule schedule;  // dense (no keep ratios) when every ratio stayed 1
  Measurement final;
  std::vector<Step> steps;
  int64_t model_runs = 0;  // passes over the calibration set, the dense reference included
  double seconds = 0;      // wall time of the whole search
};

// Receives each accepted step (and may log it); called on the calling thread.
using StepCallback = std::function<void(const Step&)>;

// Checks the options (throws fcabert::Error naming the option).
void validate(const Options& options);

// Runs the search. `examples` must not be empty (throws). Deterministic for a given model,
// examples, options and thread count. Throws fcabert::Error when the target cannot be
// reached even with every layer at min_ratio (the message gives the lowest reachable ratio).
Result calibrate(std::shared_ptr<const Model> model, const std::vector<Encoding>& examples,
                 const Options& options, const StepCallback& on_step = {});

// Several targets in one search (what `fcabert calibrate --flops-target 0.6,0.5,0.4` runs):
// the greedy path is followed down to the lowest target, and each target's schedule is the
// path's first point within it, refined. The highest target's result equals a single run's;
// a lower target's path was shaped by the higher targets (no credit for overshooting them),
// so it can differ slightly from a single run. Results come in the order of `targets`
// (options.flops_target is ignored); model_runs and seconds count the shared search so far.
std::vector<Result> calibrate_targets(std::shared_ptr<const Model> model,
                                      const std::vector<Encoding>& examples, const Options& options,
                                      const std::vector<double>& targets, const StepCallback& on_step = {});

// Measures one schedule on the calibration set against `dense` outputs (exposed for tests
// and tools). `dense_logits` holds one logits vector per example, from a dense Session.
Measurement measure(Session& session, const std::vector<Encoding>& examples,
                    const std::vector<std::vector<float>>& dense_logits, const Options& options,
                    bool regression);

// ---------------------------------------------------------------------------------------
// Calibration data

struct DataOptions {
  std::string task;             // GLUE task name; empty: from the folder name, else the model's
  std::string split = "train";  // a GLUE folder's <split>.tsv
  int64_t limit = 1000;         // examples sampled (0 = all)
  uint64_t seed = 1;            // the sample (a seeded shuffle, then file order)
  int64_t max_len = 0;          // 0 = the model's
  // Only examples of at least this many tokens (special tokens included) are sampled, so the
  // calibration text can match the length of the text the model will see (SST-2's train.tsv
  // is mostly short phrases; its dev set is whole sentences). 0 = all.
  int64_t min_tokens = 0;
};

struct Data {
  std::vector<Encoding> encodings;
  std::string source;             // the file read
  int64_t available = 0;          // examples in the file
  int64_t eligible = 0;           // of those, with at least min_tokens tokens
  int64_t truncated = 0;          // examples cut to max_len
  int64_t tokens = 0;             // in the encodings (special tokens included, after truncation)
  bool held_out_warning = false;  // true when the file looks like a dev/test split
};

// Reads calibration text: a GLUE task folder (its <split>.tsv; labels are ignored), a GLUE
// .tsv file (task from --task or the parent folder), or a plain text file with one example
// per line (pair models: two tab-separated columns; empty lines skipped). Tokenizes every
// example, keeps those with >= min_tokens tokens, then samples `limit` of them with a seeded
// shuffle (the same on every platform) and keeps them in file order.
// Throws fcabert::Error naming the file for a missing file, a bad row or no examples.
Data load_data(const Model& model, const std::string& data, const DataOptions& options);

// ---------------------------------------------------------------------------------------
// Output

// Writes a copy of the model file `input` with `schedule` in its metadata and `note` (a JSON
// object text) stored under "calibration" in its provenance. Tensors are copied unchanged
// (same dtypes and values). Written to a temporary file in the same folder (".NAME.tmp-PID",
// removed on an error), read back and renamed; refuses to replace an existing `output`
// unless `force`. Throws fcabert::Error.
void write_model_with_schedule(const std::string& input, const std::string& output,
                               const FcaSchedule& schedule, const std::string& note, bool force);

// "0.9,0.75,0.6,..." with the grid's decimals (shortest exact text of each ratio).
std::string ratios_text(const std::vector<double>& ratios);

// ---------------------------------------------------------------------------------------
// Several targets and their files

// "0.5" or a comma-separated list such as "0.6,0.5,0.4" (a --flops-target value; spaces
// after a number are allowed). Throws fcabert::Error naming --flops-target for anything else;
// the range is validate()'s.
std::vector<double> parse_targets(const std::string& text);

// A target as file names and reports show it: printf's %g ("0.5", "0.45").
std::string target_text(double target);

// `pattern` with its first "{target}" replaced by target_text(target), e.g. sst2-{target}.fcab
// -> sst2-0.5.fcab; a pattern without it is returned as it is.
std::string output_for(const std::string& pattern, double target);

// ---------------------------------------------------------------------------------------
// From files to calibrated files: what `fcabert calibrate` runs

struct RunOptions {
  std::string model;  // the dense model file; a schedule in it is ignored (warned about)
  std::string data;   // calibration text, as load_data reads it
  DataOptions data_options;
  std::vector<double> targets = {0.5};  // one search for all (calibrate_targets)
  Options search;                       // its flops_target is ignored: `targets` are used
  LoadOptions load;
  // The model file written per target; with several targets it must contain "{target}"
  // (output_for). An existing file is refused before anything runs, unless `force`.
  std::string out;
  bool force = false;
  // When not empty, the search report (report_json) per target, named like `out`.
  std::string json;
};

// One target's outcome: the files written and the search result.
struct TargetOutput {
  double target = 0;
  std::string model_file;
  std::string report_file;  // empty without RunOptions::json
  Result result;
};

// What run() tells its caller while it runs; every member may be left empty. Warnings
// (a model that already has a schedule, data that looks like a dev/test split) go to spdlog.
struct RunCallbacks {
  // After the model and the data are loaded, before the search starts.
  std::function<void(const Model& model, const Data& data)> data_loaded;
  StepCallback step;  // each accepted step of the search
  // After a target's files are written (in the order of RunOptions::targets).
  std::function<void(const TargetOutput& output)> target_written;
};

// Checks `options` before anything is loaded: the search options for every target, at least
// one target, load.threads >= 1, `out` given (with "{target}" for several targets; `json`
// likewise) and no output model file in the way unless `force`. Throws fcabert::Error naming
// the flag (--flops-target, --threads, --out, --json, --force).
void validate(const RunOptions& options);

// validate(options), then load the model and the data, run one search for all the targets
// and write each target's model (write_model_with_schedule, provenance_note) and report.
// Results come in the order of options.targets. Throws fcabert::Error.
std::vector<TargetOutput> run(const RunOptions& options, const RunCallbacks& callbacks = {});

// The provenance note stored under "calibration" in a calibrated model (compact JSON): the
// tool and version, source model, data and sample, target, search options, the measured
// result (classification: agreement and mean_kl; `regression`: normalized_mse), passes and
// seconds.
std::string provenance_note(const RunOptions& options, const Data& data, double target, const Result& result,
                            bool regression);

// The search report ("format": "fcabert-calibration", version 1): the note's fields, the
// written model's name and every accepted step; indented JSON with a final newline.
std::string report_json(const RunOptions& options, const Data& data, double target, const Result& result,
                        bool regression, const std::string& output_model);

}  // namespace fcabert::calibrate
