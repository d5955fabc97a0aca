// The oneDNN matmul wrapper against a naive double-precision GEMM, for several row counts
// (including 1 and odd sizes, which take different oneDNN code paths) and every epilogue.
//
// Tolerance: fp32 accumulation over K terms, |y - ref| <= 1e-5 * sum_k |x_k w_k| + 1e-6
// (the 1e-6 covers the GELU erf approximation oneDNN fuses in).
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <thread>
#include <vector>

#include "kernels/linear.h"
#include "kernels_test_util.h"

namespace fcabert::kernels {
namespace {

using test_util::cpu_engine;
using test_util::gelu_reference;
using test_util::random_values;

struct Problem {
  int64_t rows, in, out;
  std::vector<float> x, weight, bias, residual;
  Problem(int64_t m, int64_t k, int64_t n, uint32_t seed)
      : rows(m),
        in(k),
        out(n),
        x(random_values(m * k, seed)),
        weight(random_values(n * k, seed + 1, 1.f / std::sqrt(static_cast<float>(k)))),
        bias(random_values(n, seed + 2)),
        residual(random_values(m * n, seed + 3)) {}
};

// Checks y against the naive GEMM (+ epilogue) with the bound above.
void expect_matches(const Problem& p, Epilogue epilogue, const std::vector<float>& y) {
  for (int64_t r = 0; r < p.rows; ++r) {
    for (int64_t n = 0; n < p.out; ++n) {
      double sum = p.bias[n], magnitude = std::fabs(p.bias[n]);
      for (int64_t k = 0; k < p.in; ++k) {
        const double term = static_cast<double>(p.x[r * p.in + k]) * p.weight[n * p.in + k];
        sum += term;
        magnitude += std::fabs(term);
      }
      if (epilogue == Epilogue::kGeluErf) sum = gelu_reference(sum);
      if (epilogue == Epilogue::kAccumulate) {
        sum += p.residual[r * p.out + n];
        magnitude += std::fabs(p.residual[r * p.out + n]);
      }
      ASSERT_NEAR(y[r * p.out + n], sum, 1e-5 * magnitude + 1e-6) << "row " << r << " col " << n;
    }
  }
}

std::vector<float> run(const Linear& linear, const Problem& p, Epilogue epilogue) {
  dnnl::stream stream(cpu_engine());
  std::vector<unsigned char> scratchpad(linear.scratchpad_bytes());
  std::vector<float> y = epilogue == Epilogue::kAccumulate ? p.residual : std::vector<float>(p.rows * p.out);
  linear.forward(stream, p.x.data(), p.rows, y.data(), scratchpad.data());
  return y;
}

class LinearShapes : public ::testing::TestWithParam<std::tuple<int64_t, int64_t, int64_t>> {};

TEST_P(LinearShapes, MatchesNaiveGemmForEveryEpilogue) {
  const auto [in, out, unused] = GetParam();
  (void)unused;
  const dnnl::engine& engine = cpu_engine();
  for (Epilogue epilogue : {Epilogue::kNone, Epilogue::kGeluErf, Epilogue::kAccumulate}) {
    // One primitive per weight, reused for every row count: the runtime-M contract.
    const Problem weights_only(1, in, out, 7);
    const Linear linear(engine, weights_only.weight.data(), weights_only.bias.data(), in, out, epilogue);
    // The naive reference dominates the run time, so the largest shapes try fewer counts.
    const std::vector<int64_t> row_counts = in * out > 100000 ? std::vector<int64_t>{1, 3, 17, 64}
                                                              : std::vector<int64_t>{1, 2, 3, 7, 17, 64, 129};
    for (int64_t rows : row_counts) {
      SCOPED_TRACE("epilogue " + std::to_string(static_cast<int>(epilogue)) + ", rows " +
                   std::to_string(rows));
      Problem p(rows, in, out, 7);
      p.x = random_values(rows * in, 100 + static_cast<uint32_t>(rows));
      expect_matches(p, epilogue, run(linear, p, epilogue));
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Shapes, LinearShapes,
                         ::testing::Values(std::make_tuple(5, 3, 0), std::make_tuple(33, 65, 0),
                                           std::make_tuple(64, 192, 0), std::make_tuple(384, 1536, 0),
                                           std::make_tuple(1536, 384, 0), std::make_tuple(384, 2, 0)));

TEST(Linear, ZeroRowsIsANoOp) {
  const dnnl::engine& engine = cpu_engine();
  dnnl::stream stream(engine);
  const Problem p(1, 4, 3, 1);
  const Linear linear(engine, p.weight.data(), p.bias.data(), 4, 3);
  float sentinel = 42.f;
  linear.forward(stream, p.x.data(), 0, &sentinel, nullptr);
  EXPECT_EQ(sentinel, 42.f);
}

TEST(Linear, ReportsItsImplementation) {
  const dnnl::engine& engine = cpu_engine();
  const Problem p(1, 8, 8, 1);
  const Linear linear(engine, p.weight.data(), p.bias.data(), 8, 8);
  EXPECT_STRNE(linear.implementation(), "");
  EXPECT_EQ(linear.in_features(), 8);
  EXPECT_EQ(linear.out_features(), 8);
}

// The thread-safety contract: one shared Linear, several threads, each with its own stream
// and scratchpad, gives each thread the result it gets alone.
TEST(Linear, ConcurrentCallsWithOwnStreamsAgree) {
  const dnnl::engine& engine = cpu_engine();
  const Problem p(37, 96, 80, 3);
  const Linear linear(engine, p.weight.data(), p.bias.data(), p.in, p.out, Epilogue::kGeluErf);
  const std::vector<float> expected = run(linear, p, Epilogue::kGeluErf);
  std::vector<std::vector<float>> results(4);
  std::vector<std::thread> threads;
  for (auto& result : results) {
    threads.emplace_back([&] {
      for (int i = 0; i < 20; ++i) result = run(linear, p, Epilogue::kGeluErf);
    });
  }
  for (auto& t : threads) t.join();
  for (const auto& result : results) EXPECT_EQ(result, expected);
}

}  // namespace
}  // namespace fcabert::kernels
