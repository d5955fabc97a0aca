// LayerNorm, softmax, GELU and tanh against naive double-precision references.
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <vector>

#include "kernels/activations.h"
#include "kernels/exp.h"
#include "kernels/layer_norm.h"
#include "kernels/softmax.h"

namespace fcabert::kernels {
namespace {

std::vector<float> random_values(size_t count, uint32_t seed, float low, float high) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> dist(low, high);
  std::vector<float> v(count);
  for (float& x : v) x = dist(rng);
  return v;
}

std::vector<double> layer_norm_reference(const float* x, int64_t dim, const std::vector<float>& gamma,
                                         const std::vector<float>& beta, double eps) {
  double mean = 0, var = 0;
  for (int64_t i = 0; i < dim; ++i) mean += x[i];
  mean /= dim;
  for (int64_t i = 0; i < dim; ++i) var += (x[i] - mean) * (x[i] - mean);
  var /= dim;
  std::vector<double> y(dim);
  for (int64_t i = 0; i < dim; ++i) y[i] = (x[i] - mean) / std::sqrt(var + eps) * gamma[i] + beta[i];
  return y;
}

// Tolerance 2e-5 absolute on outputs of magnitude ~1, for inputs with a mean up to 100
// (the fp32 inputs themselves carry ~1e-5 relative rounding after centring there).
TEST(LayerNorm, MatchesReference) {
  for (int64_t dim : {1, 7, 32, 384, 1000}) {
    for (float offset : {0.f, 100.f}) {
      SCOPED_TRACE("dim " + std::to_string(dim) + " offset " + std::to_string(offset));
      const int64_t rows = 37;
      std::vector<float> x = random_values(rows * dim, 1, offset - 3.f, offset + 3.f);
      const std::vector<float> original = x;
      const std::vector<float> gamma = random_values(dim, 2, 0.5f, 1.5f);
      const std::vector<float> beta = random_values(dim, 3, -0.5f, 0.5f);
      layer_norm(x.data(), rows, dim, gamma.data(), beta.data(), 1e-12f);
      for (int64_t r = 0; r < rows; ++r) {
        const auto ref = layer_norm_reference(original.data() + r * dim, dim, gamma, beta, 1e-12);
        for (int64_t i = 0; i < dim; ++i)
          ASSERT_NEAR(x[r * dim + i], ref[i], 2e-5) << "row " << r << " i " << i;
      }
    }
  }
}

TEST(LayerNorm, EpsilonMattersForConstantRows) {
  // A constant row has zero variance: the output is beta (not NaN) thanks to eps.
  std::vector<float> x(16, 3.f), gamma(16, 2.f), beta(16, 0.25f);
  layer_norm(x.data(), 1, 16, gamma.data(), beta.data(), 1e-5f);
  for (float v : x) EXPECT_FLOAT_EQ(v, 0.25f);
}

TEST(LayerNorm, RowVariantWritesOutOfPlace) {
  const std::vector<float> x = random_values(48, 5, -2.f, 2.f);
  const std::vector<float> gamma(48, 1.f), beta(48, 0.f);
  std::vector<float> y(48);
  layer_norm_row(x.data(), y.data(), 48, gamma.data(), beta.data(), 1e-12f);
  const auto ref = layer_norm_reference(x.data(), 48, gamma, beta, 1e-12);
  for (int i = 0; i < 48; ++i) EXPECT_NEAR(y[i], ref[i], 1e-5);
}

// Tolerance 2.4e-7 relative (2 ulp at 1.0) against the double-precision exp of the same
// fp32 input, over the whole range softmax uses; exactly 0 below -87.
TEST(Exp, NonPositiveMatchesStdExp) {
  double worst = 0;
  for (double x = -87.0; x <= 0.0; x += 1e-4) {
    const float f = static_cast<float>(x);
    const double ref = std::exp(static_cast<double>(f));
    worst = std::max(worst, std::fabs(exp_nonpositive(f) - ref) / ref);
  }
  EXPECT_LT(worst, 2.4e-7);
  EXPECT_EQ(exp_nonpositive(0.f), 1.f);
  EXPECT_EQ(exp_nonpositive(-87.5f), 0.f);
  EXPECT_EQ(exp_nonpositive(-1e30f), 0.f);
}

// Tolerance 1e-6 absolute on probabilities (fp32 exp is accurate to a few ulp).
TEST(Softmax, MatchesReferenceAndSumsToOne) {
  for (int64_t count : {1, 2, 7, 33, 512}) {
    for (float spread : {1.f, 30.f}) {
      SCOPED_TRACE("count " + std::to_string(count) + " spread " + std::to_string(spread));
      const int64_t rows = 5;
      std::vector<float> x = random_values(rows * count, 9, -spread, spread);
      const std::vector<float> original = x;
      softmax_rows(x.data(), rows, count);
      for (int64_t r = 0; r < rows; ++r) {
        const float* in = original.data() + r * count;
        double max = in[0], sum = 0, total = 0;
        for (int64_t i = 0; i < count; ++i) max = std::max<double>(max, in[i]);
        for (int64_t i = 0; i < count; ++i) sum += std::exp(in[i] - max);
        for (int64_t i = 0; i < count; ++i) {
          ASSERT_NEAR(x[r * count + i], std::exp(in[i] - max) / sum, 1e-6);
          total += x[r * count + i];
        }
        EXPECT_NEAR(total, 1.0, 1e-5);
      }
    }
  }
}

TEST(Softmax, IsStableForHugeLogits) {
  std::vector<float> x{1000.f, 1001.f, -1000.f, 999.f};
  softmax_row(x.data(), 4);
  for (float v : x) EXPECT_TRUE(std::isfinite(v));
  EXPECT_NEAR(x[1], 1.0 / (1 + std::exp(-1.0) + std::exp(-2.0)), 1e-6);
  EXPECT_EQ(x[2], 0.f);
}

// Tolerance 1e-6 absolute + 1e-6 relative (std::erf / std::tanh in fp32).
TEST(Activations, GeluMatchesReference) {
  std::vector<float> x = random_values(100000, 11, -10.f, 10.f);
  x[0] = 0.f;
  x[1] = -0.f;
  const std::vector<float> original = x;
  gelu_erf(x.data(), static_cast<int64_t>(x.size()));
  for (size_t i = 0; i < x.size(); ++i) {
    const double v = original[i];
    const double ref = 0.5 * v * (1.0 + std::erf(v / std::sqrt(2.0)));
    ASSERT_NEAR(x[i], ref, 1e-6 + 1e-6 * std::fabs(ref)) << "x = " << v;
  }
}

TEST(Activations, TanhMatchesReference) {
  std::vector<float> x = random_values(100000, 12, -8.f, 8.f);
  const std::vector<float> original = x;
  tanh_inplace(x.data(), static_cast<int64_t>(x.size()));
  for (size_t i = 0; i < x.size(); ++i) {
    const double ref = std::tanh(static_cast<double>(original[i]));
    ASSERT_NEAR(x[i], ref, 1e-6 + 1e-6 * std::fabs(ref)) << "x = " << original[i];
  }
}

}  // namespace
}  // namespace fcabert::kernels
