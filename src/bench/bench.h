#pragma once
// fcabert-bench's measurements: timed passes of one engine configuration over pre-tokenized
// inputs (Bench), and oneDNN's matmul GFLOP/s (run_gemm). Each returns JSON for
// tools/bench/run_bench.py (docs/PERF.md); main.cpp parses the flags and prints.
#include <cstdint>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "cli/schedule_options.h"
#include "fcabert/engine.h"

namespace fcabert::bench {

struct BenchOptions {
  std::string model;
  std::string tokens;  // JSONL: {"ids": [...], "type_ids": [...]} per line (type_ids optional)
  int64_t batch_size = 32;
  int threads = 2;
  std::string precision = "fp32";  // --precision
  int64_t limit = 0;               // token lines used; 0 = all
  int repeat = 5;
  int warmup = 1;
  bool serve = false;
  bool gemm = false;
  bool quick = false;
  cli::ScheduleFlags schedule;
};

// The token lines of `path` (the first `limit`, if > 0), exactly what the model sees; the
// driver tokenizes once for every engine. Throws fcabert::Error naming the file and line.
std::vector<Encoding> read_tokens(const std::string& path, int64_t limit);

// VmHWM / VmRSS of this process, in bytes (0 when /proc is not there).
int64_t proc_status_bytes(const std::string& key);

// One engine configuration over one token file, cut into batches in input order. Loading it
// also runs the untimed counting passes: FLOPs from the engine's traces, and the heap
// allocations of Session::run and of the steady-state forward pass.
class Bench {
 public:
  explicit Bench(const BenchOptions& options);

  // One timed pass over every batch: the pass and each batch in milliseconds, the encoder's
  // GEMM time and GFLOP/s, examples/s and the peak RSS so far.
  nlohmann::json pass();

  // The configuration, geometry, FLOPs and allocation counts (no timings but load_ms).
  nlohmann::json describe() const;

 private:
  void count_flops_and_run_allocations();
  void count_forward_allocations();
  int64_t weights_file_bytes() const;

  BenchOptions options_;
  std::shared_ptr<const Model> model_;
  std::unique_ptr<Session> session_;
  std::vector<std::vector<Encoding>> batches_;
  int64_t sequences_ = 0, tokens_ = 0;
  double load_ms_ = 0;
  int64_t flops_total_ = 0, flops_linear_ = 0, flops_encoder_linear_ = 0, workspace_bytes_ = 0;
  long long forward_allocations_ = 0, forward_onednn_allocations_ = 0;
  double run_allocations_per_batch_ = 0;
};

// oneDNN's matmul GFLOP/s in fp32, bf16 and int8: large shapes for the peak and the engine's
// own shapes, each as a bare fixed-shape primitive and through the engine's kernels::Linear
// (options.quick: one small shape, short timings).
nlohmann::json run_gemm(const BenchOptions& options);

}  // namespace fcabert::bench
