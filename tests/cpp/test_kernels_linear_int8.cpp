// The int8 matmul path (Precision::kInt8, dynamic quantization) against double
// references.
//
// Two references per output, K = in_features:
// - "quantized": the double GEMM of exactly what the primitive multiplies, rebuilt here
//   independently: x as u8 with one scale a and zero point z over the whole input (or, with
//   Int8Scales::kPerRow, over each row), W as s8
//   with one scale w_n per output feature, y = bias + a * w_n * sum_k (xq_k - z) * wq_nk.
//   The integer sum is exact in int32, so only fp32 rounding of the scale and bias steps
//   remains: |y - ref| <= 1e-5 * S + 1e-5, S = |bias| + sum_k |x_k w_nk| (+ |residual|).
// - "exact": the double GEMM of the unquantized inputs. Each x_k moves by <= a/2 and each
//   w_nk by <= w_n/2, so the product sum moves by at most
//   E = sum_k (|x_k| w_n / 2 + |w_nk| a / 2 + a w_n / 4); GELU_erf's slope is below 1.13.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <string>
#include <thread>
#include <vector>

#include "fcabert/error.h"
#include "kernels/linear.h"
#include "kernels_test_util.h"

namespace fcabert::kernels {
namespace {

using test_util::cpu_engine;
using test_util::gelu_reference;
using test_util::random_values;

TEST(QuantizeU8, CoversTheRangeAndZeroIsExact) {
  const std::vector<float> x = {-1.5f, 0.f, 0.25f, 3.f, -0.75f};
  std::vector<uint8_t> q(x.size());
  const QuantizedU8 p = quantize_u8(x.data(), static_cast<int64_t>(x.size()), q.data());
  EXPECT_FLOAT_EQ(p.scale, 4.5f / 255.f);
  EXPECT_EQ(q[1], p.zero_point);  // 0 maps to the zero point exactly
  EXPECT_EQ(q[0], 0);             // the minimum maps to 0 ...
  EXPECT_EQ(q[3], 255);           // ... and the maximum to 255
  for (size_t i = 0; i < x.size(); ++i) {
    EXPECT_LE(std::fabs(p.scale * (q[i] - p.zero_point) - x[i]), p.scale / 2 + 1e-6f) << i;
  }
}

TEST(QuantizeU8, OneSignedInputsStillContainZero) {
  const std::vector<float> positive = {0.5f, 2.f, 1.f};
  std::vector<uint8_t> q(3);
  QuantizedU8 p = quantize_u8(positive.data(), 3, q.data());
  EXPECT_EQ(p.zero_point, 0);
  EXPECT_FLOAT_EQ(p.scale, 2.f / 255.f);
  const std::vector<float> negative = {-0.5f, -2.f};
  p = quantize_u8(negative.data(), 2, q.data());
  EXPECT_EQ(p.zero_point, 255);
  EXPECT_EQ(q[1], 0);
  const std::vector<float> zeros(7, 0.f);
  std::vector<uint8_t> qz(7, 9);
  p = quantize_u8(zeros.data(), 7, qz.data());
  EXPECT_EQ(p.scale, 1.f);
  for (uint8_t v : qz) EXPECT_EQ(v, p.zero_point);
}

TEST(QuantizeU8, ParallelPathAgreesWithTheBound) {
  const std::vector<float> x = random_values(200000, 9, 4.f);
  std::vector<uint8_t> q(x.size());
  const QuantizedU8 p = quantize_u8(x.data(), static_cast<int64_t>(x.size()), q.data());
  const auto [lo, hi] = std::minmax_element(x.begin(), x.end());
  EXPECT_FLOAT_EQ(p.scale, (*hi - *lo) / 255.f);
  for (size_t i = 0; i < x.size(); i += 101) {
    ASSERT_LE(std::fabs(p.scale * (q[i] - p.zero_point) - x[i]), p.scale / 2 * 1.0001f) << i;
  }
}

// The references, built without the code under test. The quantization itself is spelled
// out as specified, in float: scale = range / 255 (or max|w| / 127); an input is
// floor(clamp(v * (1 / scale) + z, 0, 255) + 1/2), a weight nearbyint(v * (1 / scale)).
// Rounding any other way (in double, or half-even) moves a value sitting on a rounding
// boundary by one step, far more than the tolerance of the "quantized" comparison.
struct Int8Reference {
  std::vector<double> quantized, exact, magnitude, error_bound;
};

// x[begin, end) quantized over its own range: the scale, and the codes minus the zero point.
float quantize_reference(const std::vector<float>& x, size_t begin, size_t end, std::vector<double>& xq) {
  float lo = 0.f, hi = 0.f;
  for (size_t i = begin; i < end; ++i) lo = std::min(lo, x[i]), hi = std::max(hi, x[i]);
  const float a = hi - lo > 0.f ? (hi - lo) / 255.f : 1.f;
  const float z = std::clamp(std::nearbyint(-lo / a), 0.f, 255.f);
  const float a_inverse = 1.f / a;
  for (size_t i = begin; i < end; ++i) {
    xq[i] = std::floor(std::clamp(x[i] * a_inverse + z, 0.f, 255.f) + 0.5f) - z;  // ties up, as specified
  }
  return a;
}

Int8Reference reference(const std::vector<float>& x, const std::vector<float>& weight,
                        const std::vector<float>& bias, int64_t rows, int64_t in, int64_t out,
                        Int8Scales scales = Int8Scales::kPerCall) {
  std::vector<double> xq(x.size());
  std::vector<float> row_scale(static_cast<size_t>(rows));
  if (scales == Int8Scales::kPerCall) {
    std::fill(row_scale.begin(), row_scale.end(), quantize_reference(x, 0, x.size(), xq));
  } else {
    for (int64_t r = 0; r < rows; ++r)
      row_scale[r] =
          quantize_reference(x, static_cast<size_t>(r * in), static_cast<size_t>((r + 1) * in), xq);
  }
  Int8Reference ref;
  for (int64_t r = 0; r < rows; ++r) {
    const float a = row_scale[r];
    for (int64_t n = 0; n < out; ++n) {
      float largest = 0;
      for (int64_t k = 0; k < in; ++k) largest = std::max(largest, std::fabs(weight[n * in + k]));
      const float w = largest > 0 ? largest / 127.f : 1.f;
      const float w_inverse = 1.f / w;
      double sum_q = 0, exact = bias[n], magnitude = std::fabs(bias[n]), bound = 0;
      for (int64_t k = 0; k < in; ++k) {
        const double xv = x[r * in + k], wv = weight[n * in + k];
        sum_q += xq[r * in + k] * std::nearbyint(weight[n * in + k] * w_inverse);
        exact += xv * wv;
        magnitude += std::fabs(xv * wv);
        bound += std::fabs(xv) * w / 2 + std::fabs(wv) * a / 2 + a * w / 4;
      }
      ref.quantized.push_back(bias[n] + static_cast<double>(a) * w * sum_q);
      ref.exact.push_back(exact);
      ref.magnitude.push_back(magnitude);
      ref.error_bound.push_back(bound);
    }
  }
  return ref;
}

// y against both references, with the epilogue applied to them: GELU_erf (slope below 1.13)
// or the residual that y started from.
void expect_matches_references(const std::vector<float>& y, const Int8Reference& ref, Epilogue epilogue,
                               const std::vector<float>& residual) {
  for (size_t i = 0; i < y.size(); ++i) {
    double quantized = ref.quantized[i], exact = ref.exact[i], magnitude = ref.magnitude[i];
    double bound = ref.error_bound[i];
    if (epilogue == Epilogue::kGeluErf) {
      quantized = gelu_reference(quantized);
      exact = gelu_reference(exact);
      bound *= 1.13;
    }
    if (epilogue == Epilogue::kAccumulate) {
      quantized += residual[i];
      exact += residual[i];
      magnitude += std::fabs(residual[i]);
    }
    ASSERT_NEAR(y[i], quantized, 1e-5 * magnitude + 1e-5) << "element " << i;
    ASSERT_NEAR(y[i], exact, bound + 1e-5 * magnitude + 1e-5) << "element " << i;
  }
}

class Int8LinearShapes : public ::testing::TestWithParam<std::pair<int64_t, int64_t>> {};

TEST_P(Int8LinearShapes, MatchesTheQuantizedAndTheExactGemmForEveryEpilogue) {
  const auto [in, out] = GetParam();
  const dnnl::engine& engine = cpu_engine();
  dnnl::stream stream(engine);
  const std::vector<float> weight = random_values(in * out, 21, 1.f / std::sqrt(static_cast<float>(in)));
  const std::vector<float> bias = random_values(out, 22);
  for (Epilogue epilogue : {Epilogue::kNone, Epilogue::kGeluErf, Epilogue::kAccumulate})
    for (Linear::RowPrimitives mode : test_util::kRowPrimitives) {
      const Linear linear(engine, weight.data(), bias.data(), in, out, epilogue, Precision::kInt8, mode);
      EXPECT_EQ(linear.precision(), Precision::kInt8);
      if (mode == Linear::RowPrimitives::kRuntimeRows) {
        EXPECT_FALSE(linear.fixed_shapes());
      }
      // s8, plus any compensation and the padding of a blocked layout.
      EXPECT_LE(linear.weight_bytes(), test_util::padded_weight_bytes_bound(in, out, 1));
      if (in % 64 == 0 && out % 64 == 0) {
        EXPECT_LT(linear.weight_bytes(), static_cast<size_t>(in * out) * 2);
      }
      std::vector<unsigned char> scratchpad(linear.scratchpad_bytes());
      for (int64_t rows : test_util::reduced_precision_row_counts(in, out)) {
        SCOPED_TRACE("in " + std::to_string(in) + " out " + std::to_string(out) + " epilogue " +
                     std::to_string(static_cast<int>(epilogue)) + " rows " + std::to_string(rows) +
                     (linear.fixed_shapes() ? " fixed shapes" : " runtime rows"));
        // Inputs skewed positive, as after GELU, so the zero point is not in the middle.
        std::vector<float> x = random_values(rows * in, 400 + static_cast<uint32_t>(rows), 2.f);
        for (float& v : x) v = v > 0 ? v : 0.1f * v;
        const std::vector<float> residual = random_values(rows * out, 500 + static_cast<uint32_t>(rows));
        std::vector<float> y = epilogue == Epilogue::kAccumulate ? residual : std::vector<float>(rows * out);
        std::vector<uint8_t> x_u8(static_cast<size_t>(rows * in));
        std::vector<float> per_feature(per_feature_floats(Precision::kInt8, out));
        linear.forward(stream, x.data(), rows, y.data(), scratchpad.data(),
                       MatmulBuffers{x_u8.data(), per_feature.data()});
        expect_matches_references(y, reference(x, weight, bias, rows, in, out), epilogue, residual);
      }
    }
}

INSTANTIATE_TEST_SUITE_P(Shapes, Int8LinearShapes, test_util::reduced_precision_linear_shapes());

// The buffers a per-row int8 Linear of these sizes needs for `rows` rows.
struct PerRowBuffers {
  PerRowBuffers(int64_t rows, int64_t in, int64_t out, bool with_tail)
      : codes(static_cast<size_t>(rows * in)),
        row_quantization(static_cast<size_t>(rows)),
        products(static_cast<size_t>(rows * out)),
        tail(with_tail ? tail_buffer_bytes(in, out) : 0) {}
  MatmulBuffers get() {
    return MatmulBuffers{codes.data(), nullptr, tail.empty() ? nullptr : tail.data(), row_quantization.data(),
                         products.data()};
  }
  std::vector<uint8_t> codes;
  std::vector<QuantizedU8> row_quantization;
  std::vector<int32_t> products;
  std::vector<unsigned char> tail;
};

TEST_P(Int8LinearShapes, PerRowScalesMatchTheQuantizedAndTheExactGemm) {
  const auto [in, out] = GetParam();
  const dnnl::engine& engine = cpu_engine();
  dnnl::stream stream(engine);
  const std::vector<float> weight = random_values(in * out, 31, 1.f / std::sqrt(static_cast<float>(in)));
  const std::vector<float> bias = random_values(out, 32);
  for (Epilogue epilogue : {Epilogue::kNone, Epilogue::kAccumulate})
    for (Linear::RowPrimitives mode : test_util::kRowPrimitives)
      for (bool with_tail : {true, false}) {
        const Linear linear(engine, weight.data(), bias.data(), in, out, epilogue, Precision::kInt8, mode,
                            Linear::Output::kFp32, Int8Scales::kPerRow);
        EXPECT_EQ(linear.int8_scales(), Int8Scales::kPerRow);
        std::vector<unsigned char> scratchpad(linear.scratchpad_bytes());
        for (int64_t rows : test_util::reduced_precision_row_counts(in, out)) {
          SCOPED_TRACE("in " + std::to_string(in) + " out " + std::to_string(out) + " epilogue " +
                       std::to_string(static_cast<int>(epilogue)) + " rows " + std::to_string(rows) +
                       (linear.fixed_shapes() ? " fixed shapes" : " runtime rows") +
                       (with_tail ? ", tail buffer" : ""));
          // Rows of very different ranges: row r is scaled by 1 + r % 5, so one scale per
          // call would be off by up to 5x for most rows.
          std::vector<float> x = random_values(rows * in, 600 + static_cast<uint32_t>(rows), 2.f);
          for (int64_t i = 0; i < rows * in; ++i) {
            const float v = x[i] > 0 ? x[i] : 0.1f * x[i];
            x[i] = v * static_cast<float>(1 + (i / in) % 5);
          }
          const std::vector<float> residual = random_values(rows * out, 700 + static_cast<uint32_t>(rows));
          std::vector<float> y =
              epilogue == Epilogue::kAccumulate ? residual : std::vector<float>(rows * out);
          PerRowBuffers buffers(rows, in, out, with_tail);
          linear.forward(stream, x.data(), rows, y.data(), scratchpad.data(), buffers.get());
          expect_matches_references(y, reference(x, weight, bias, rows, in, out, Int8Scales::kPerRow),
                                    epilogue, residual);
        }
      }
}

TEST(QuantizeU8Rows, EachRowIsQuantizedAsIfAlone) {
  const int64_t cols = 37;
  for (int64_t rows : {int64_t{1}, int64_t{5}, int64_t{900}}) {  // 900 x 37 takes the parallel path
    std::vector<float> x = random_values(rows * cols, 11 + static_cast<uint32_t>(rows), 3.f);
    for (int64_t c = 0; c < cols; ++c) x[c] *= 100.f;                      // an outlier row
    if (rows > 1) std::fill(x.begin() + cols, x.begin() + 2 * cols, 0.f);  // and an all-zero one
    for (ConversionCode code : {ConversionCode::kBest, ConversionCode::kPortable}) {
      std::vector<uint8_t> q(x.size());
      std::vector<QuantizedU8> params(static_cast<size_t>(rows));
      quantize_u8_rows(x.data(), rows, cols, q.data(), params.data(), code);
      for (int64_t r = 0; r < rows; ++r) {
        std::vector<uint8_t> alone(static_cast<size_t>(cols));
        const QuantizedU8 p = quantize_u8(x.data() + r * cols, cols, alone.data(), ConversionCode::kPortable);
        ASSERT_EQ(params[r].scale, p.scale) << "row " << r;
        ASSERT_EQ(params[r].zero_point, p.zero_point) << "row " << r;
        ASSERT_TRUE(std::equal(alone.begin(), alone.end(), q.begin() + r * cols)) << "row " << r;
      }
    }
  }
}

// What per-row scales are for: a token's output does not depend on the other tokens of the
// call, not even on one with a hundred times larger activations. One scale per call fails
// this (checked too, so that the test can tell the two apart).
TEST(Int8Linear, PerRowScalesMakeARowIndependentOfTheOthers) {
  const dnnl::engine& engine = cpu_engine();
  dnnl::stream stream(engine);
  const int64_t in = 96, out = 40, rows = 45;
  const std::vector<float> w = random_values(in * out, 41), b = random_values(out, 42);
  std::vector<float> x = random_values(rows * in, 43);
  for (int64_t k = 0; k < in; ++k) x[7 * in + k] *= 100.f;  // row 7: an outlier token
  const auto run = [&](Int8Scales scales, const float* rows_x, int64_t count) {
    const Linear linear(engine, w.data(), b.data(), in, out, Epilogue::kNone, Precision::kInt8,
                        Linear::RowPrimitives::kBest, Linear::Output::kFp32, scales);
    std::vector<unsigned char> scratchpad(linear.scratchpad_bytes());
    std::vector<float> y(static_cast<size_t>(count * out));
    PerRowBuffers buffers(count, in, out, true);
    std::vector<float> per_feature(per_feature_floats(Precision::kInt8, out));
    MatmulBuffers call = buffers.get();
    call.per_feature = per_feature.data();
    linear.forward(stream, rows_x, count, y.data(), scratchpad.data(), call);
    return y;
  };
  for (Int8Scales scales : {Int8Scales::kPerRow, Int8Scales::kPerCall}) {
    const std::vector<float> together = run(scales, x.data(), rows);
    int differing = 0;
    for (int64_t r = 0; r < rows; ++r) {
      const std::vector<float> alone = run(scales, x.data() + r * in, 1);
      differing += !std::equal(alone.begin(), alone.end(), together.begin() + r * out);
    }
    if (scales == Int8Scales::kPerRow) {
      EXPECT_EQ(differing, 0);
    } else {
      EXPECT_GT(differing, rows / 2);
    }
  }
}

TEST(Int8Linear, PerRowScalesRefuseWhatTheyCannotDoAndNeedTheirBuffers) {
  const dnnl::engine& engine = cpu_engine();
  dnnl::stream stream(engine);
  const std::vector<float> w = random_values(16, 1), b = random_values(4, 2), x = random_values(4, 3);
  EXPECT_THROW(Linear(engine, w.data(), b.data(), 4, 4, Epilogue::kGeluErf, Precision::kInt8,
                      Linear::RowPrimitives::kBest, Linear::Output::kFp32, Int8Scales::kPerRow),
               std::logic_error);
  EXPECT_THROW(Linear(engine, w.data(), b.data(), 4, 4, Epilogue::kNone, Precision::kInt8,
                      Linear::RowPrimitives::kBest, Linear::Output::kBf16, Int8Scales::kPerRow),
               std::logic_error);
  const Linear linear(engine, w.data(), b.data(), 4, 4, Epilogue::kNone, Precision::kInt8,
                      Linear::RowPrimitives::kBest, Linear::Output::kFp32, Int8Scales::kPerRow);
  std::vector<float> y(4);
  std::vector<unsigned char> scratchpad(linear.scratchpad_bytes());
  PerRowBuffers buffers(1, 4, 4, false);
  MatmulBuffers missing = buffers.get();
  missing.products = nullptr;
  EXPECT_THROW(linear.forward(stream, x.data(), 1, y.data(), scratchpad.data(), missing), Error);
  missing = buffers.get();
  missing.row_quantization = nullptr;
  EXPECT_THROW(linear.forward(stream, x.data(), 1, y.data(), scratchpad.data(), missing), Error);
  EXPECT_NO_THROW(linear.forward(stream, x.data(), 1, y.data(), scratchpad.data(), buffers.get()));
}

TEST(Int8Linear, AZeroWeightRowGivesTheBias) {
  const dnnl::engine& engine = cpu_engine();
  dnnl::stream stream(engine);
  std::vector<float> w = random_values(3 * 8, 1);
  std::fill(w.begin() + 8, w.begin() + 16, 0.f);  // output feature 1 has no weights
  const std::vector<float> b = {0.5f, -0.25f, 2.f}, x = random_values(8, 3);
  const Linear linear(engine, w.data(), b.data(), 8, 3, Epilogue::kNone, Precision::kInt8);
  std::vector<float> y(3), scales(per_feature_floats(Precision::kInt8, 3));
  std::vector<uint8_t> x_u8(8);
  std::vector<unsigned char> scratchpad(linear.scratchpad_bytes());
  linear.forward(stream, x.data(), 1, y.data(), scratchpad.data(), MatmulBuffers{x_u8.data(), scales.data()});
  EXPECT_EQ(y[1], -0.25f);
}

// The fixed-shape path adds the bias as bias / scale before multiplying by the call's scale
// (linear.cpp, fixed_shape_attr): scales so small that bias / scale would overflow must still
// give the bias, not inf or NaN.
TEST(Int8Linear, TinyInputAndWeightScalesStillGiveTheBias) {
  const dnnl::engine& engine = cpu_engine();
  dnnl::stream stream(engine);
  const int64_t in = 16, out = 4, rows = 3;
  std::vector<float> w = random_values(in * out, 5, 1e-20f);  // weight scales ~1e-22
  const std::vector<float> b = {1.f, -2.5f, 1e6f, 0.f};
  const std::vector<float> x = random_values(rows * in, 6, 1e-20f);  // input scale ~1e-22
  const Linear linear(engine, w.data(), b.data(), in, out, Epilogue::kNone, Precision::kInt8);
  std::vector<float> y(rows * out), per_feature(per_feature_floats(Precision::kInt8, out));
  std::vector<uint8_t> x_u8(rows * in);
  std::vector<unsigned char> scratchpad(linear.scratchpad_bytes());
  linear.forward(stream, x.data(), rows, y.data(), scratchpad.data(),
                 MatmulBuffers{x_u8.data(), per_feature.data()});
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t n = 0; n < out; ++n) {
      const float got = y[r * out + n];
      ASSERT_TRUE(std::isfinite(got)) << "row " << r << " feature " << n;
      EXPECT_NEAR(got, b[n], 1e-6f * std::fabs(b[n]) + 1e-12f) << "row " << r << " feature " << n;
    }
  }
}

TEST(Int8Linear, NeedsItsBuffers) {
  const dnnl::engine& engine = cpu_engine();
  dnnl::stream stream(engine);
  const std::vector<float> w = random_values(16, 1), b = random_values(4, 2), x = random_values(4, 3);
  const Linear linear(engine, w.data(), b.data(), 4, 4, Epilogue::kNone, Precision::kInt8);
  std::vector<float> y(4), scales(per_feature_floats(Precision::kInt8, 4));
  std::vector<uint8_t> x_u8(4);
  std::vector<unsigned char> scratchpad(linear.scratchpad_bytes());
  EXPECT_ANY_THROW(linear.forward(stream, x.data(), 1, y.data(), scratchpad.data()));
  EXPECT_ANY_THROW(
      linear.forward(stream, x.data(), 1, y.data(), scratchpad.data(), MatmulBuffers{x_u8.data()}));
  EXPECT_NO_THROW(linear.forward(stream, x.data(), 1, y.data(), scratchpad.data(),
                                 MatmulBuffers{x_u8.data(), scales.data()}));
}

// Fixed-shape primitives are created on first use of each row count, from whichever thread
// gets there first. Threads that run one shared Linear on different row counts at once, each
// with its own stream and buffers, get bit for bit what a Linear of their own gives them.
TEST(Int8Linear, ConcurrentFirstCallsOnDifferentRowCountsAgree) {
  const dnnl::engine& engine = cpu_engine();
  const int64_t in = 48, out = 40;
  const std::vector<float> w = random_values(in * out, 7), b = random_values(out, 8);
  const std::vector<int64_t> row_counts = {5, 37, 300, 77, 1, 31};
  const auto run = [&](const Linear& linear, int64_t rows) {
    dnnl::stream stream(engine);
    const std::vector<float> x = random_values(rows * in, 100 + static_cast<uint32_t>(rows));
    std::vector<float> y(static_cast<size_t>(rows * out), 0.f);
    std::vector<uint8_t> x_u8(static_cast<size_t>(rows * in));
    std::vector<float> per_feature(per_feature_floats(Precision::kInt8, out));
    std::vector<unsigned char> scratchpad(linear.scratchpad_bytes());
    linear.forward(stream, x.data(), rows, y.data(), scratchpad.data(),
                   MatmulBuffers{x_u8.data(), per_feature.data()});
    return y;
  };
  std::vector<std::vector<float>> expected;
  for (int64_t rows : row_counts) {
    const Linear alone(engine, w.data(), b.data(), in, out, Epilogue::kGeluErf, Precision::kInt8);
    expected.push_back(run(alone, rows));
  }
  const Linear shared(engine, w.data(), b.data(), in, out, Epilogue::kGeluErf, Precision::kInt8);
  std::vector<std::vector<float>> results(row_counts.size());
  std::vector<std::thread> threads;
  for (size_t t = 0; t < row_counts.size(); ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 10; ++i) results[t] = run(shared, row_counts[t]);
    });
  }
  for (std::thread& thread : threads) thread.join();
  for (size_t t = 0; t < row_counts.size(); ++t)
    EXPECT_EQ(results[t], expected[t]) << row_counts[t] << " rows";
}

}  // namespace
}  // namespace fcabert::kernels
