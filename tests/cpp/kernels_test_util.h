#pragma once
// Shared by the kernel tests (test_kernels_*.cpp): one oneDNN engine per test binary and
// seeded random inputs.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <dnnl.hpp>
#include <random>
#include <utility>
#include <vector>

#include "kernels/linear.h"

namespace fcabert::kernels::test_util {

// A primitive runs only on streams of the engine it was created for: one engine per test
// binary (an inline function's static is shared by every file that includes this).
inline const dnnl::engine& cpu_engine() {
  static const dnnl::engine engine(dnnl::engine::kind::cpu, 0);
  return engine;
}

// `count` values uniform in [-scale, scale], the same for the same seed.
inline std::vector<float> random_values(size_t count, uint32_t seed, float scale = 1.f) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> dist(-scale, scale);
  std::vector<float> v(count);
  for (float& x : v) x = dist(rng);
  return v;
}

// BERT's exact GELU, in double: the reference for the kGeluErf epilogue.
inline double gelu_reference(double x) { return 0.5 * x * (1.0 + std::erf(x / std::sqrt(2.0))); }

// The [in, out] shapes the reduced-precision Linear tests cover: tiny and odd ones, MiniLM's
// fused QKV and FFN down-projection, and a classifier head.
inline auto reduced_precision_linear_shapes() {
  return ::testing::Values(std::make_pair(int64_t{5}, int64_t{3}), std::make_pair(int64_t{33}, int64_t{65}),
                           std::make_pair(int64_t{384}, int64_t{1152}),
                           std::make_pair(int64_t{1536}, int64_t{384}),
                           std::make_pair(int64_t{384}, int64_t{2}));
}

// Row counts to run a reduced-precision [in, out] Linear on (fewer for large matrices, whose
// double references are slow).
// 100 and 300 rows span several of Linear's fixed-shape chunks (256, 128, 64, 32, then the rest).
inline std::vector<int64_t> reduced_precision_row_counts(int64_t in, int64_t out) {
  return in * out > 100000 ? std::vector<int64_t>{1, 3, 64, 100}
                           : std::vector<int64_t>{1, 2, 7, 17, 129, 300};
}

// Both ways a reduced-precision Linear can run its rows.
inline constexpr Linear::RowPrimitives kRowPrimitives[] = {Linear::RowPrimitives::kBest,
                                                           Linear::RowPrimitives::kRuntimeRows};

// An upper bound on the bytes of an [in, out] weight matrix of `element_bytes` in the layout
// oneDNN picks: brgemm pads both dimensions to blocks of up to 64 and may keep an int32
// compensation per output.
inline size_t padded_weight_bytes_bound(int64_t in, int64_t out, size_t element_bytes) {
  const auto up = [](int64_t v) { return static_cast<size_t>((v + 63) / 64 * 64); };
  return up(in) * up(out) * element_bytes + 4 * up(out);
}

}  // namespace fcabert::kernels::test_util
