// The packed multi-head attention kernel against a naive double-precision reference, per
// sequence and head, for several sequence lengths (including 1) in one ragged batch.
//
// Tolerance: 1e-5 absolute on context values of magnitude ~1 (fp32 dot products over
// head_dim terms and an fp32 softmax).
#include <gtest/gtest.h>
#include <omp.h>

#include <cmath>
#include <random>
#include <vector>

#include "kernels/attention.h"

namespace fcabert::kernels {
namespace {

std::vector<int64_t> offsets_for(const std::vector<int64_t>& lengths) {
  std::vector<int64_t> offsets{0};
  for (int64_t n : lengths) offsets.push_back(offsets.back() + n);
  return offsets;
}

std::vector<float> random_qkv(int64_t tokens, int64_t hidden, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> dist(-2.f, 2.f);
  std::vector<float> qkv(tokens * 3 * hidden);
  for (float& v : qkv) v = dist(rng);
  return qkv;
}

// P_h of one sequence: [n, n] in double.
std::vector<double> reference_probs(const std::vector<float>& qkv, int64_t first, int64_t n,
                                    const AttentionShape& shape, int64_t h) {
  const int64_t d = shape.hidden(), dh = shape.head_dim;
  std::vector<double> p(n * n);
  for (int64_t i = 0; i < n; ++i) {
    double max = -INFINITY;
    for (int64_t j = 0; j < n; ++j) {
      double dot = 0;
      for (int64_t c = 0; c < dh; ++c) {
        dot += static_cast<double>(qkv[(first + i) * 3 * d + h * dh + c]) *
               qkv[(first + j) * 3 * d + d + h * dh + c];
      }
      p[i * n + j] = dot / std::sqrt(static_cast<double>(dh));
      max = std::max(max, p[i * n + j]);
    }
    double sum = 0;
    for (int64_t j = 0; j < n; ++j) sum += p[i * n + j] = std::exp(p[i * n + j] - max);
    for (int64_t j = 0; j < n; ++j) p[i * n + j] /= sum;
  }
  return p;
}

struct Case {
  std::vector<int64_t> lengths;
  AttentionShape shape;
};

// One case's inputs and the kernel's outputs (NaN-filled first, so unwritten entries fail).
struct AttentionRun {
  std::vector<int64_t> offsets;
  std::vector<float> qkv, context;
  std::vector<double> column_sums, diagonal;
};

AttentionRun run_case(const Case& c, uint32_t seed, AttentionArithmetic arithmetic) {
  AttentionRun run;
  run.offsets = offsets_for(c.lengths);
  const int64_t tokens = run.offsets.back(), d = c.shape.hidden();
  run.qkv = random_qkv(tokens, d, seed);
  run.context.assign(tokens * d, NAN);
  run.column_sums.assign(c.shape.num_heads * tokens, NAN);
  run.diagonal.assign(run.column_sums.size(), NAN);
  AttentionScratch scratch;
  scratch.reserve(2, *std::max_element(c.lengths.begin(), c.lengths.end()), c.shape.head_dim);
  multi_head_attention(run.qkv.data(), run.offsets, c.shape, run.context.data(), scratch,
                       {run.column_sums.data(), run.diagonal.data()}, arithmetic);
  return run;
}

// The reference context value of query i, column col of head h, for the sequence at rows
// [first, first + n) with probabilities p (reference_probs).
double reference_context(const AttentionRun& run, const std::vector<double>& p, int64_t first, int64_t n,
                         const AttentionShape& shape, int64_t h, int64_t i, int64_t col) {
  const int64_t d = shape.hidden(), dh = shape.head_dim;
  double ref = 0;
  for (int64_t j = 0; j < n; ++j) ref += p[i * n + j] * run.qkv[(first + j) * 3 * d + 2 * d + h * dh + col];
  return ref;
}

// The reference FCA column sum of token j: sum over queries of P[i, j].
double reference_column_sum(const std::vector<double>& p, int64_t n, int64_t j) {
  double ref = 0;
  for (int64_t i = 0; i < n; ++i) ref += p[i * n + j];
  return ref;
}

class AttentionCases : public ::testing::TestWithParam<Case> {};

TEST_P(AttentionCases, MatchesReference) {
  const Case& c = GetParam();
  const AttentionRun run = run_case(c, 42, AttentionArithmetic::kFp32);
  const int64_t d = c.shape.hidden(), dh = c.shape.head_dim;

  for (size_t s = 0; s + 1 < run.offsets.size(); ++s) {
    const int64_t first = run.offsets[s], n = run.offsets[s + 1] - first;
    for (int64_t h = 0; h < c.shape.num_heads; ++h) {
      SCOPED_TRACE("sequence " + std::to_string(s) + " (length " + std::to_string(n) + "), head " +
                   std::to_string(h));
      const std::vector<double> p = reference_probs(run.qkv, first, n, c.shape, h);
      for (int64_t i = 0; i < n; ++i) {
        for (int64_t col = 0; col < dh; ++col) {
          ASSERT_NEAR(run.context[(first + i) * d + h * dh + col],
                      reference_context(run, p, first, n, c.shape, h, i, col), 1e-5)
              << "query " << i << " col " << col;
        }
      }
      // The FCA statistics, in fca::scores_from_column_sums' layout: [head][token] blocks
      // of num_heads * n values per sequence.
      const int64_t block = c.shape.num_heads * first + h * n;
      for (int64_t j = 0; j < n; ++j) {
        ASSERT_NEAR(run.column_sums[block + j], reference_column_sum(p, n, j), 1e-5) << "token " << j;
        ASSERT_NEAR(run.diagonal[block + j], p[j * n + j], 1e-6) << "token " << j;
      }
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Batches, AttentionCases,
                         ::testing::Values(Case{{1}, {2, 4}}, Case{{1, 1, 1}, {3, 8}}, Case{{5}, {1, 16}},
                                           Case{{1, 2, 5, 17, 64, 3}, {3, 8}},
                                           Case{{25, 31, 12, 1, 40}, {12, 32}}, Case{{130, 7}, {4, 64}}));

// worst = the larger of the two; a NaN error sticks, so that the final comparison fails.
void keep_worst(double& worst, double error) {
  if (std::isnan(error) || error > worst) worst = error;
}

// The bf16 kernel (AMX tiles) against the same double-precision reference. Q, K, V and the
// probabilities are rounded to bf16 (8 significant bits), so the tolerances are those of
// bf16 inputs with fp32 accumulation: on these inputs (|q|, |k|, |v| <= 2, scores up to ~10)
// the largest errors measured on an Intel Xeon with AMX were 0.0087 on the context, 0.0035
// (relative) on the column sums and 0.0022 on the diagonal, so the bounds are about 3x
// those. A layout mistake (a transposed or shifted operand, a pair split wrongly) gives errors
// of order 1.
class Bf16AttentionCases : public ::testing::TestWithParam<Case> {};

TEST_P(Bf16AttentionCases, MatchesReferenceWithinBf16Rounding) {
  const Case& c = GetParam();
  if (!bf16_attention_supported(c.shape.head_dim)) GTEST_SKIP() << "no AMX bf16 attention on this CPU";
  const AttentionRun run = run_case(c, 7, AttentionArithmetic::kBf16);
  const int64_t d = c.shape.hidden(), dh = c.shape.head_dim;
  double worst_context = 0, worst_sum = 0, worst_diagonal = 0;
  for (size_t s = 0; s + 1 < run.offsets.size(); ++s) {
    const int64_t first = run.offsets[s], n = run.offsets[s + 1] - first;
    for (int64_t h = 0; h < c.shape.num_heads; ++h) {
      const std::vector<double> p = reference_probs(run.qkv, first, n, c.shape, h);
      for (int64_t i = 0; i < n; ++i) {
        for (int64_t col = 0; col < dh; ++col) {
          const double ref = reference_context(run, p, first, n, c.shape, h, i, col);
          keep_worst(worst_context, std::abs(run.context[(first + i) * d + h * dh + col] - ref));
        }
      }
      const int64_t block = c.shape.num_heads * first + h * n;
      for (int64_t j = 0; j < n; ++j) {
        const double ref = reference_column_sum(p, n, j);
        keep_worst(worst_sum, std::abs(run.column_sums[block + j] - ref) / std::max(ref, 1.0));
        keep_worst(worst_diagonal, std::abs(run.diagonal[block + j] - p[j * n + j]));
      }
    }
  }
  EXPECT_LT(worst_context, 0.03);  // a NaN anywhere fails too: keep_worst keeps it
  EXPECT_LT(worst_sum, 0.01);
  EXPECT_LT(worst_diagonal, 0.007);
}

// Lengths around the tile sizes (16 queries, 32 keys), odd ones (a key pair with a zero),
// and both BERT head sizes.
INSTANTIATE_TEST_SUITE_P(Batches, Bf16AttentionCases,
                         ::testing::Values(Case{{1}, {2, 32}}, Case{{1, 2, 15, 16, 17, 31, 32, 33}, {3, 32}},
                                           Case{{25, 64, 12, 1, 40}, {12, 32}}, Case{{130, 7, 48}, {4, 64}},
                                           Case{{512}, {2, 32}}));

TEST(Attention, Bf16IsRefusedWhereUnsupported) {
  const std::vector<int64_t> offsets = offsets_for({3});
  const AttentionShape shape{2, 8};  // head size 8: never bf16
  ASSERT_FALSE(bf16_attention_supported(shape.head_dim));
  const std::vector<float> qkv = random_qkv(3, shape.hidden(), 1);
  std::vector<float> context(3 * shape.hidden());
  AttentionScratch scratch;
  scratch.reserve(1, 3, shape.head_dim);
  EXPECT_THROW(multi_head_attention(qkv.data(), offsets, shape, context.data(), scratch, {},
                                    AttentionArithmetic::kBf16),
               std::logic_error);
}

TEST(Attention, ThreadCountDoesNotChangeTheResult) {
  // Each (sequence, head) pair is computed the same way whichever thread takes it.
  const std::vector<int64_t> offsets = offsets_for({9, 1, 33, 20});
  const AttentionShape shape{4, 16};
  const std::vector<float> qkv = random_qkv(offsets.back(), shape.hidden(), 3);
  std::vector<float> one(offsets.back() * shape.hidden()), two(one.size());
  AttentionScratch scratch_one, scratch_two;
  scratch_one.reserve(1, 33, 16);
  scratch_two.reserve(2, 33, 16);
  multi_head_attention(qkv.data(), offsets, shape, one.data(), scratch_one);
  multi_head_attention(qkv.data(), offsets, shape, two.data(), scratch_two);
  EXPECT_EQ(one, two);
}

TEST(Attention, RefusesScratchTooSmall) {
  const std::vector<int64_t> offsets = offsets_for({10});
  const AttentionShape shape{2, 4};
  const std::vector<float> qkv = random_qkv(10, 8, 1);
  std::vector<float> context(10 * 8);
  AttentionScratch scratch;
  scratch.reserve(2, 9, 4);
  EXPECT_THROW(multi_head_attention(qkv.data(), offsets, shape, context.data(), scratch), std::logic_error);
}

TEST(Attention, ScratchGrowsButNeverShrinks) {
  AttentionScratch scratch;
  scratch.reserve(2, 50, 32);
  const size_t bytes = scratch.bytes();
  scratch.reserve(2, 10, 32);
  EXPECT_EQ(scratch.bytes(), bytes);
  EXPECT_TRUE(scratch.fits(50, 32));
}

}  // namespace
}  // namespace fcabert::kernels
