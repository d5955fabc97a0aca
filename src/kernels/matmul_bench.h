#pragma once
// A GEMM microbenchmark: what oneDNN's matmul reaches on this machine, for `fcabert-bench
// --gemm` (the peak the engine's linear layers are measured against).
#include <cstdint>
#include <string>

#include "kernels/linear.h"

namespace fcabert::kernels {

struct MatmulBenchResult {
  int64_t m = 0, k = 0, n = 0;
  bool engine_linear = false;  // through kernels::Linear, as the engine runs it, else the bare primitive
  double gflops = 0;           // 2*m*k*n per call / median seconds per call
  double median_ms = 0;
  // 2*m*k*n per call / process CPU seconds per call: the rate per busy core, which other
  // jobs on a shared machine disturb less than wall time (exact with one thread; OpenMP
  // barrier spinning counts as busy).
  double gflops_per_cpu = 0;
  int64_t calls = 0;
  std::string implementation;
};

// Times y[m, n] = x[m, k] W^T (+ bias) on the calling thread's OpenMP team: with
// `engine_linear`, through kernels::Linear (its fixed-shape chunks; bf16/int8: its input
// conversion and epilogue included);
// otherwise a primitive created for exactly these shapes (oneDNN's best case: plain
// fp32/bf16/u8 input, weights in the layout it picks, no int8 scales). Calls repeat until `min_seconds` have
// passed (at least 5).
MatmulBenchResult benchmark_matmul(int64_t m, int64_t k, int64_t n, Precision precision, bool engine_linear,
                                   double min_seconds);

}  // namespace fcabert::kernels
