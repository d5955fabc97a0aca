#pragma once
// Shared by the kernel tests (test_kernels_*.cpp): one oneDNN engine per test binary and
// seeded random inputs.
#include <cstdint>
#include <dnnl.hpp>
#include <random>
#include <vector>

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

}  // namespace fcabert::kernels::test_util
