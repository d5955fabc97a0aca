// The GEMM input conversions (kernels/input_conversion.h): the AVX-512 loops that the engine
// runs on CPUs with AVX-512 must produce exactly the bytes of the portable loops, for every
// tail length (masked lanes), across the parallel split, and for the special values. The
// values themselves are checked against the specification in test_kernels_linear_int8.cpp
// and test_kernels_linear_bf16.cpp. On a CPU without AVX-512 both sides run the portable
// code and these tests show only that the dispatch is consistent.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

#include "kernels/input_conversion.h"
#include "kernels_test_util.h"

namespace fcabert::kernels {
namespace {

using test_util::random_values;

constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();
constexpr float kInf = std::numeric_limits<float>::infinity();

// Random values with NaNs, signed zeros, denormals and values on rounding boundaries mixed in.
std::vector<float> awkward_values(size_t count, uint32_t seed) {
  std::vector<float> x = random_values(count, seed, 3.f);
  const float specials[] = {kNaN, 0.f, -0.f, 1e-40f, -1e-40f, 0.005f, -0.995f, 1.f + std::ldexp(1.f, -8)};
  for (size_t i = 0; i < x.size(); i += 7) x[i] = specials[(i / 7) % std::size(specials)];
  return x;
}

void expect_same_quantization(const std::vector<float>& x) {
  const int64_t count = static_cast<int64_t>(x.size());
  std::vector<uint8_t> best(x.size() + 1, 0xAB), portable(x.size() + 1, 0xAB);
  const QuantizedU8 b = quantize_u8(x.data(), count, best.data(), ConversionCode::kBest);
  const QuantizedU8 p = quantize_u8(x.data(), count, portable.data(), ConversionCode::kPortable);
  EXPECT_EQ(b.scale, p.scale) << count;
  EXPECT_EQ(b.zero_point, p.zero_point) << count;
  EXPECT_EQ(best, portable) << count << " values";
  EXPECT_EQ(best.back(), 0xAB) << "wrote past the end of " << count << " values";
}

TEST(InputConversion, QuantizeU8SameBytesOnEveryCodePathAndTailLength) {
  for (size_t count = 0; count <= 70; ++count) expect_same_quantization(awkward_values(count, 40 + count));
  expect_same_quantization(awkward_values(100003, 7));  // the parallel split, an odd tail
}

TEST(InputConversion, QuantizeU8RoundingBoundariesAgree) {
  // Range [-1, 1.55]: scale 0.01, zero point 100, so multiples of 0.005 sit on the half-way
  // points of the rounding (up to fp32 error, which both codes must round alike).
  std::vector<float> x = {-1.f, 1.55f};
  for (int k = -200; k <= 310; ++k) x.push_back(0.005f * static_cast<float>(k));
  expect_same_quantization(x);
}

TEST(InputConversion, QuantizeU8WithAnInfinityAgrees) {
  std::vector<float> x = awkward_values(45, 3);
  x[20] = kInf;
  expect_same_quantization(x);
  x[20] = -kInf;
  expect_same_quantization(x);
}

void expect_same_bf16(const std::vector<float>& x) {
  const int64_t count = static_cast<int64_t>(x.size());
  std::vector<uint16_t> best(x.size() + 1, 0xABCD), portable(x.size() + 1, 0xABCD);
  to_bf16(x.data(), count, best.data(), ConversionCode::kBest);
  to_bf16(x.data(), count, portable.data(), ConversionCode::kPortable);
  EXPECT_EQ(best, portable) << count << " values";
  EXPECT_EQ(best.back(), 0xABCD) << "wrote past the end of " << count << " values";
}

TEST(InputConversion, ToBf16SameBitsOnEveryCodePathAndTailLength) {
  for (size_t count = 0; count <= 70; ++count) {
    std::vector<float> x = awkward_values(count, 90 + count);
    if (count > 3) x[3] = count % 2 ? kInf : -kInf;
    if (count > 5) x[5] = std::numeric_limits<float>::max();  // rounds up to inf
    expect_same_bf16(x);
  }
  expect_same_bf16(awkward_values(100003, 8));
}

TEST(InputConversion, ToBf16KeepsASignallingNaNANaN) {
  uint32_t bits = 0x7F800001u;  // the smallest signalling NaN: rounding would carry into inf
  float snan;
  std::memcpy(&snan, &bits, sizeof snan);
  const std::vector<float> x(19, snan);
  std::vector<uint16_t> out(x.size());
  to_bf16(x.data(), static_cast<int64_t>(x.size()), out.data(), ConversionCode::kBest);
  for (uint16_t h : out) EXPECT_EQ(h, 0x7FC0u);
  expect_same_bf16(x);
}

}  // namespace
}  // namespace fcabert::kernels
