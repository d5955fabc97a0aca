// The bf16 matmul path (Precision::kBf16) against a naive double-precision GEMM.
//
// Tolerances (K = in_features, S = bias + sum_k |x_k w_k| (+ |residual|)):
// - against the double GEMM of the bf16-rounded x and W (what the primitive multiplies):
//   |y - ref| <= 1e-5 * S + 1e-6, fp32 accumulation only, as for the fp32 path;
// - against the double GEMM of the unrounded fp32 x and W: rounding each of x and W to bf16
//   (8 significant bits, relative error <= 2^-9 each) moves each product by <= ~2^-8
//   relative, so |y - ref| <= 2^-8 * S + 1e-5 * S + 1e-6.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <vector>

#include "kernels/linear.h"
#include "kernels_test_util.h"

namespace fcabert::kernels {
namespace {

using test_util::cpu_engine;
using test_util::gelu_reference;
using test_util::random_values;

float bf16_to_float(uint16_t bits) {
  const uint32_t wide = static_cast<uint32_t>(bits) << 16;
  float f;
  std::memcpy(&f, &wide, sizeof f);
  return f;
}

float round_bf16(float x) {
  uint16_t b;
  to_bf16(&x, 1, &b);
  return bf16_to_float(b);
}

TEST(ToBf16, RoundsToNearestEvenAndKeepsSpecialValues) {
  // 1 + 2^-8 is exactly half-way between two bf16 values (1 and 1 + 2^-7): ties go to even (1).
  EXPECT_EQ(round_bf16(1.f + std::ldexp(1.f, -8)), 1.f);
  // 1 + 3 * 2^-8 is half-way between 1 + 2^-7 (odd) and 1 + 2^-6 (even): rounds up.
  EXPECT_EQ(round_bf16(1.f + 3.f * std::ldexp(1.f, -8)), 1.f + std::ldexp(1.f, -6));
  EXPECT_EQ(round_bf16(1.f + std::ldexp(1.f, -8) + std::ldexp(1.f, -20)), 1.f + std::ldexp(1.f, -7));
  EXPECT_EQ(round_bf16(-2.5f), -2.5f);
  EXPECT_EQ(round_bf16(0.f), 0.f);
  EXPECT_TRUE(std::isinf(round_bf16(std::numeric_limits<float>::infinity())));
  EXPECT_TRUE(std::isnan(round_bf16(std::numeric_limits<float>::quiet_NaN())));
  // Large counts take the parallel path; every element equals the one-at-a-time result.
  const std::vector<float> x = random_values(100000, 5);
  std::vector<uint16_t> out(x.size());
  to_bf16(x.data(), static_cast<int64_t>(x.size()), out.data());
  for (size_t i = 0; i < x.size(); i += 997) {
    EXPECT_EQ(bf16_to_float(out[i]), round_bf16(x[i]));
    EXPECT_LE(std::fabs(bf16_to_float(out[i]) - x[i]), std::ldexp(std::fabs(x[i]), -8));
  }
}

class Bf16LinearShapes : public ::testing::TestWithParam<std::pair<int64_t, int64_t>> {};

TEST_P(Bf16LinearShapes, MatchesDoubleGemmForEveryEpilogue) {
  const auto [in, out] = GetParam();
  const dnnl::engine& engine = cpu_engine();
  dnnl::stream stream(engine);
  const std::vector<float> weight = random_values(in * out, 11, 1.f / std::sqrt(static_cast<float>(in)));
  const std::vector<float> bias = random_values(out, 12);
  std::vector<float> weight_rounded(weight.size());
  for (size_t i = 0; i < weight.size(); ++i) weight_rounded[i] = round_bf16(weight[i]);
  for (Epilogue epilogue : {Epilogue::kNone, Epilogue::kGeluErf, Epilogue::kAccumulate})
    for (Linear::RowPrimitives mode : test_util::kRowPrimitives) {
      const Linear linear(engine, weight.data(), bias.data(), in, out, epilogue, Precision::kBf16, mode);
      EXPECT_EQ(linear.precision(), Precision::kBf16);
      if (mode == Linear::RowPrimitives::kRuntimeRows) {
        EXPECT_FALSE(linear.fixed_shapes());
      }
      // Half of fp32, up to the padding of a blocked layout.
      EXPECT_LE(linear.weight_bytes(), test_util::padded_weight_bytes_bound(in, out, 2));
      if (in % 64 == 0 && out % 64 == 0) {
        EXPECT_EQ(linear.weight_bytes(), static_cast<size_t>(in * out) * 2);
      }
      std::vector<unsigned char> scratchpad(linear.scratchpad_bytes());
      for (int64_t rows : test_util::reduced_precision_row_counts(in, out)) {
        SCOPED_TRACE("in " + std::to_string(in) + " out " + std::to_string(out) + " epilogue " +
                     std::to_string(static_cast<int>(epilogue)) + " rows " + std::to_string(rows) +
                     (linear.fixed_shapes() ? " fixed shapes" : " runtime rows"));
        const std::vector<float> x = random_values(rows * in, 200 + static_cast<uint32_t>(rows));
        const std::vector<float> residual = random_values(rows * out, 300 + static_cast<uint32_t>(rows));
        std::vector<float> y = epilogue == Epilogue::kAccumulate ? residual : std::vector<float>(rows * out);
        std::vector<uint16_t> x_bf16(static_cast<size_t>(rows * in));
        std::vector<float> x_rounded(x.size());
        for (size_t i = 0; i < x.size(); ++i) x_rounded[i] = round_bf16(x[i]);
        linear.forward(stream, x.data(), rows, y.data(), scratchpad.data(),
                       MatmulBuffers{x_bf16.data(), nullptr});
        for (int64_t r = 0; r < rows; ++r) {
          for (int64_t n = 0; n < out; ++n) {
            double rounded = bias[n], exact = bias[n], magnitude = std::fabs(bias[n]);
            for (int64_t k = 0; k < in; ++k) {
              const float xv = x[r * in + k], wv = weight[n * in + k];
              rounded += static_cast<double>(x_rounded[r * in + k]) * weight_rounded[n * in + k];
              exact += static_cast<double>(xv) * wv;
              magnitude += std::fabs(static_cast<double>(xv) * wv);
            }
            if (epilogue == Epilogue::kGeluErf) {
              rounded = gelu_reference(rounded);
              exact = gelu_reference(exact);
            }
            if (epilogue == Epilogue::kAccumulate) {
              rounded += residual[r * out + n];
              exact += residual[r * out + n];
              magnitude += std::fabs(residual[r * out + n]);
            }
            const double got = y[r * out + n];
            ASSERT_NEAR(got, rounded, 1e-5 * magnitude + 1e-6) << "row " << r << " col " << n;
            ASSERT_NEAR(got, exact, std::ldexp(1.0, -8) * magnitude + 1e-5 * magnitude + 1e-6)
                << "row " << r << " col " << n;
          }
        }
      }
    }
}

INSTANTIATE_TEST_SUITE_P(Shapes, Bf16LinearShapes, test_util::reduced_precision_linear_shapes());

TEST(Bf16Linear, NeedsAConversionBuffer) {
  const dnnl::engine& engine = cpu_engine();
  dnnl::stream stream(engine);
  const std::vector<float> w = random_values(16, 1), b = random_values(4, 2), x = random_values(4, 3);
  const Linear linear(engine, w.data(), b.data(), 4, 4, Epilogue::kNone, Precision::kBf16);
  std::vector<float> y(4);
  std::vector<unsigned char> scratchpad(linear.scratchpad_bytes());
  EXPECT_ANY_THROW(linear.forward(stream, x.data(), 1, y.data(), scratchpad.data()));
}

// Output::kBf16 writes what the fp32 output rounds to (oneDNN rounds to nearest even, as
// to_bf16 does; within one bf16 step), for a bf16 and an int8 up-projection with GELU, on
// fixed shapes and runtime rows, at row counts that take several chunks; and
// forward_from_bf16 on those rows computes exactly what forward computes from the same values
// in fp32 (its own conversion is then exact).
TEST(Bf16Output, IsTheFp32OutputRoundedAndFeedsTheNextLinearWithoutConversion) {
  const dnnl::engine& engine = cpu_engine();
  dnnl::stream stream(engine);
  const int64_t in = 64, hidden = 96, out = 48;
  const std::vector<float> w1 = random_values(hidden * in, 21, 0.125f), b1 = random_values(hidden, 22);
  const std::vector<float> w2 = random_values(out * hidden, 23, 0.1f), b2 = random_values(out, 24);
  const Linear down(engine, w2.data(), b2.data(), hidden, out, Epilogue::kNone, Precision::kBf16);
  for (Precision precision : {Precision::kBf16, Precision::kInt8})
    for (Linear::RowPrimitives mode : test_util::kRowPrimitives)
      for (int64_t rows : {1, 37, 300}) {
        SCOPED_TRACE(std::string(precision_name(precision)) + ", " + std::to_string(rows) + " rows" +
                     (mode == Linear::RowPrimitives::kBest ? "" : ", runtime rows"));
        const Linear up32(engine, w1.data(), b1.data(), in, hidden, Epilogue::kGeluErf, precision, mode);
        const Linear up16(engine, w1.data(), b1.data(), in, hidden, Epilogue::kGeluErf, precision, mode,
                          Linear::Output::kBf16);
        EXPECT_EQ(up16.output(), Linear::Output::kBf16);
        const std::vector<float> x = random_values(rows * in, 25);
        std::vector<unsigned char> converted(rows * hidden * 2),
            pad(std::max(
                {up32.scratchpad_bytes(), up16.scratchpad_bytes(), down.scratchpad_bytes(), size_t{1}}));
        std::vector<float> per_feature(per_feature_floats(precision, hidden));
        const MatmulBuffers buffers{converted.data(), per_feature.data()};
        std::vector<float> y32(rows * hidden);
        std::vector<uint16_t> y16(rows * hidden);
        up32.forward(stream, x.data(), rows, y32.data(), pad.data(), buffers);
        up16.forward_to_bf16(stream, x.data(), rows, y16.data(), pad.data(), buffers);
        std::vector<float> widened(y16.size());
        for (size_t i = 0; i < y16.size(); ++i) {
          widened[i] = bf16_to_float(y16[i]);
          // At most one bf16 step apart: oneDNN may compute the fp32 value it rounds with
          // another blocking or GELU code than for an fp32 output (seen: int8, 300 rows).
          ASSERT_LE(std::fabs(widened[i] - round_bf16(y32[i])), std::ldexp(std::fabs(y32[i]), -7) + 1e-6f)
              << "element " << i;
        }
        std::vector<float> from_bf16(rows * out), from_fp32(rows * out);
        down.forward_from_bf16(stream, y16.data(), rows, from_bf16.data(), pad.data());
        down.forward(stream, widened.data(), rows, from_fp32.data(), pad.data(), buffers);
        EXPECT_EQ(from_bf16, from_fp32);
      }
}

TEST(Bf16Output, IsRefusedWhereItCannotWork) {
  const dnnl::engine& engine = cpu_engine();
  dnnl::stream stream(engine);
  const std::vector<float> w = random_values(16 * 16, 1), b = random_values(16, 2);
  // fp32 Linears and residual accumulation keep fp32 outputs.
  EXPECT_THROW(Linear(engine, w.data(), b.data(), 16, 16, Epilogue::kNone, Precision::kFp32,
                      Linear::RowPrimitives::kBest, Linear::Output::kBf16),
               std::logic_error);
  EXPECT_THROW(Linear(engine, w.data(), b.data(), 16, 16, Epilogue::kAccumulate, Precision::kBf16,
                      Linear::RowPrimitives::kBest, Linear::Output::kBf16),
               std::logic_error);
  // Each forward is for one output type; forward_from_bf16 only for bf16 inputs.
  const Linear to16(engine, w.data(), b.data(), 16, 16, Epilogue::kNone, Precision::kBf16,
                    Linear::RowPrimitives::kBest, Linear::Output::kBf16);
  const Linear int8(engine, w.data(), b.data(), 16, 16, Epilogue::kNone, Precision::kInt8);
  std::vector<float> x(16), y(16);
  std::vector<uint16_t> y16(16);
  EXPECT_THROW(to16.forward(stream, x.data(), 1, y.data(), nullptr), std::logic_error);
  EXPECT_THROW(int8.forward_to_bf16(stream, x.data(), 1, y16.data(), nullptr), std::logic_error);
  EXPECT_THROW(int8.forward_from_bf16(stream, y16.data(), 1, y.data(), nullptr), std::logic_error);
  EXPECT_THROW(to16.forward_from_bf16(stream, y16.data(), 1, y.data(), nullptr), std::logic_error);
}

}  // namespace
}  // namespace fcabert::kernels
