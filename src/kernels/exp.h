#pragma once
// A vectorisable exp for the softmax kernels. std::exp compiles to a scalar libm call per
// element, which made the exponentials a third of the attention time for short sequences;
// this version is plain arithmetic and bit operations that `#pragma omp simd` loops turn into
// vector code.
#include <cstdint>
#include <cstring>

namespace fcabert::kernels {

// exp(x) for x <= 0 (softmax arguments after the max is subtracted), relative error below
// 3e-7 (a few ulp); 0 below -87, where exp(x) < 2^-125 and only a denormal would remain.
// exp(x) = 2^n * exp(r) with n = round(x / ln 2) and |r| <= ln(2) / 2, where exp(r) is its
// Taylor series to degree 7 (truncation error < 6e-9).
inline float exp_nonpositive(float x) {
  constexpr float kLog2e = 1.44269504088896341f;
  // ln 2 split in two so that n * kLn2High is exact for |n| < 2^9 (Cody-Waite reduction).
  constexpr float kLn2High = 0.693359375f;
  constexpr float kLn2Low = -2.12194440054690583e-4f;
  // Adding 1.5 * 2^23 rounds to an integer in round-to-nearest and leaves it in the low
  // mantissa bits, which gives n both as a float and as an integer without a conversion.
  constexpr float kRoundMagic = 12582912.f;
  const float clamped = x < -87.f ? -87.f : x;
  const float shifted = clamped * kLog2e + kRoundMagic;
  const float n = shifted - kRoundMagic;
  const float r = (clamped - n * kLn2High) - n * kLn2Low;
  float p = 1.f / 5040.f;
  p = p * r + 1.f / 720.f;
  p = p * r + 1.f / 120.f;
  p = p * r + 1.f / 24.f;
  p = p * r + 1.f / 6.f;
  p = p * r + 0.5f;
  p = p * r + 1.f;
  p = p * r + 1.f;
  int32_t n_bits;
  std::memcpy(&n_bits, &shifted, sizeof n_bits);
  const int32_t exponent = (n_bits - 0x4B400000) + 127;  // n + bias, in [1, 127] here
  const int32_t scale_bits = exponent << 23;
  float scale;
  std::memcpy(&scale, &scale_bits, sizeof scale);
  return x < -87.f ? 0.f : p * scale;
}

}  // namespace fcabert::kernels
