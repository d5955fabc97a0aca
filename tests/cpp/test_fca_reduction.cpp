// FCA for one sequence: scores, fine/coarse selection, grouping, pooling, row identities.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <vector>

#include "fca/reduction.h"
#include "fcabert/error.h"

namespace fcabert::fca {
namespace {

using Rows = std::vector<int64_t>;

// Rows of group g of a plan.
Rows group_rows(const ReductionPlan& plan, int64_t g) {
  return Rows(plan.coarse.begin() + plan.group_offsets[g], plan.coarse.begin() + plan.group_offsets[g + 1]);
}

// A hidden-state matrix [n, d] with distinct, easily recognised values: x[i][e] = 10 i + e.
std::vector<float> numbered_rows(int64_t n, int64_t d) {
  std::vector<float> x(static_cast<size_t>(n * d));
  for (int64_t i = 0; i < n; ++i)
    for (int64_t e = 0; e < d; ++e) x[i * d + e] = static_cast<float>(10 * i + e);
  return x;
}

// ----------------------------------------------------------------------------- scores

TEST(FcaScores, HandComputedColumnScores) {
  // Two heads, n = 3 (rows = queries, each row sums to 1).
  const std::vector<float> probs = {
      // head 0
      0.5f, 0.25f, 0.25f,  //
      0.5f, 0.5f, 0.0f,    //
      0.25f, 0.25f, 0.5f,  //
      // head 1
      1.0f, 0.0f, 0.0f,  //
      0.0f, 0.0f, 1.0f,  //
      0.0f, 0.5f, 0.5f,  //
  };
  // Column sums without the diagonal:
  //   j=0: h0 0.5 + 0.25 = 0.75, h1 0 + 0 = 0     -> 0.75 / 2 = 0.375
  //   j=1: h0 0.25 + 0.25 = 0.5, h1 0 + 0.5 = 0.5 -> 1.0 / 2  = 0.5
  //   j=2: h0 0.25 + 0 = 0.25,   h1 0 + 1 = 1     -> 1.25 / 2 = 0.625
  double scores[3];
  column_scores(probs.data(), 2, 3, scores);
  EXPECT_DOUBLE_EQ(scores[0], 0.375);
  EXPECT_DOUBLE_EQ(scores[1], 0.5);
  EXPECT_DOUBLE_EQ(scores[2], 0.625);

  // Engine path, one shared accumulator.
  double colsum[3] = {0, 0, 0}, diag[3] = {0, 0, 0};
  accumulate_column_sums(probs.data(), 3, 3, colsum, diag);
  accumulate_column_sums(probs.data() + 9, 3, 3, colsum, diag);
  EXPECT_DOUBLE_EQ(colsum[0], 0.5 + 0.5 + 0.25 + 1.0);
  EXPECT_DOUBLE_EQ(diag[1], 0.5 + 0.0);
  double engine[3];
  scores_from_column_sums(colsum, diag, 1, 3, 2, engine);
  EXPECT_DOUBLE_EQ(engine[0], 0.375);
  EXPECT_DOUBLE_EQ(engine[1], 0.5);
  EXPECT_DOUBLE_EQ(engine[2], 0.625);
  // In place (scores == colsum).
  scores_from_column_sums(colsum, diag, 1, 3, 2, colsum);
  EXPECT_DOUBLE_EQ(colsum[2], 0.625);
}

TEST(FcaScores, EnginePathMatchesReferenceOnRandomSoftmax) {
  std::mt19937 rng(7);
  std::normal_distribution<float> normal(0.0f, 2.0f);
  const int64_t heads = 4, n = 37, ld = 40;  // padded rows: ld > n
  std::vector<float> probs(static_cast<size_t>(heads * n * n));
  std::vector<float> padded(static_cast<size_t>(heads * n * ld), -1.0f);
  for (int64_t h = 0; h < heads; ++h)
    for (int64_t i = 0; i < n; ++i) {
      float* row = probs.data() + (h * n + i) * n;
      float sum = 0;
      for (int64_t j = 0; j < n; ++j) sum += row[j] = std::exp(normal(rng));
      for (int64_t j = 0; j < n; ++j) {
        row[j] /= sum;
        padded[(h * n + i) * ld + j] = row[j];
      }
    }
  std::vector<double> reference(n);
  column_scores(probs.data(), heads, n, reference.data());
  double total = 0;
  for (double s : reference) total += s;
  // Every row sums to 1, so the scores sum to (n - sum of the diagonal / H): below n.
  EXPECT_LT(total, static_cast<double>(n));

  // One accumulator for all heads.
  std::vector<double> colsum(n, 0.0), diag(n, 0.0), scores(n);
  for (int64_t h = 0; h < heads; ++h)
    accumulate_column_sums(padded.data() + h * n * ld, n, ld, colsum.data(), diag.data());
  scores_from_column_sums(colsum.data(), diag.data(), 1, n, heads, scores.data());
  for (int64_t j = 0; j < n; ++j) EXPECT_NEAR(scores[j], reference[j], 1e-12) << j;

  // One slice per head (what parallel heads write).
  std::vector<double> colsum_h(heads * n, 0.0), diag_h(heads * n, 0.0);
  for (int64_t h = 0; h < heads; ++h)
    accumulate_column_sums(padded.data() + h * n * ld, n, ld, colsum_h.data() + h * n, diag_h.data() + h * n);
  scores_from_column_sums(colsum_h.data(), diag_h.data(), heads, n, heads, scores.data());
  for (int64_t j = 0; j < n; ++j) EXPECT_NEAR(scores[j], reference[j], 1e-12) << j;
}

// ----------------------------------------------------------------------------- selection

TEST(FcaPlan, TiesGoToTheLowerRowAndCLSIsAlwaysKept) {
  // Row 0 has the lowest score and is kept anyway. Rows 2, 3, 5 tie at 3; k - 1 = 2 -> 2, 3.
  const double scores[] = {-5, 1, 3, 3, 2, 3};
  const ReductionPlan plan = plan_reduction(scores, 6, 3, 1);
  ASSERT_TRUE(plan.reduce());
  EXPECT_EQ(plan.fine, (Rows{0, 2, 3}));
  EXPECT_EQ(plan.coarse, (Rows{1, 4, 5}));
  ASSERT_EQ(plan.clusters(), 1);
  EXPECT_EQ(group_rows(plan, 0), (Rows{1, 4, 5}));
  EXPECT_EQ(plan.rows_out(), 4);

  // Output in row order even when the best rows come late.
  const double later[] = {0, 1, 2, 3, 9, 8, 7};
  const ReductionPlan p2 = plan_reduction(later, 7, 4, 0);
  EXPECT_EQ(p2.fine, (Rows{0, 4, 5, 6}));
  EXPECT_EQ(p2.coarse, (Rows{1, 2, 3}));
  EXPECT_TRUE(p2.group_offsets.empty());
  EXPECT_EQ(p2.rows_out(), 4);
}

TEST(FcaPlan, NanScoresRankLast) {
  const double nan = std::numeric_limits<double>::quiet_NaN();
  const double scores[] = {0, nan, -100, nan, 5};
  const ReductionPlan plan = plan_reduction(scores, 5, 3, 0);
  EXPECT_EQ(plan.fine, (Rows{0, 2, 4}));
}

TEST(FcaPlan, MatchesAFullSortOnRandomScoresWithManyTies) {
  std::mt19937 rng(11);
  ReductionPlan plan;
  for (int trial = 0; trial < 300; ++trial) {
    const int64_t n = 1 + static_cast<int64_t>(rng() % 40);
    const int64_t k = 1 + static_cast<int64_t>(rng() % (n + 2));
    const int64_t c = static_cast<int64_t>(rng() % 6);
    std::vector<double> scores(n);
    for (double& s : scores) s = static_cast<double>(rng() % 5);  // lots of ties
    plan_reduction(scores.data(), n, k, c, plan);

    const int64_t m = n - k;
    const bool reduce = c > 0 ? m > c : m > 0;
    ASSERT_EQ(plan.reduce(), reduce);
    if (!reduce) {
      Rows all(n);
      for (int64_t i = 0; i < n; ++i) all[i] = i;
      EXPECT_EQ(plan.fine, all);
      EXPECT_TRUE(plan.coarse.empty());
      continue;
    }
    Rows ranked;
    for (int64_t i = 1; i < n; ++i) ranked.push_back(i);
    std::stable_sort(ranked.begin(), ranked.end(),
                     [&](int64_t a, int64_t b) { return scores[a] > scores[b]; });
    Rows fine = {0};
    fine.insert(fine.end(), ranked.begin(), ranked.begin() + (k - 1));
    std::sort(fine.begin(), fine.end());
    Rows coarse(ranked.begin() + (k - 1), ranked.end());
    std::sort(coarse.begin(), coarse.end());
    EXPECT_EQ(plan.fine, fine) << "trial " << trial;
    EXPECT_EQ(plan.coarse, coarse) << "trial " << trial;
    EXPECT_EQ(plan.rows_out(), k + std::min(c, m));
    if (c > 0) {
      ASSERT_EQ(plan.clusters(), c);
      int64_t largest = 0, smallest = n;
      for (int64_t g = 0; g < c; ++g) {
        const int64_t size = plan.group_offsets[g + 1] - plan.group_offsets[g];
        if (g > 0) {
          EXPECT_LE(size, plan.group_offsets[g] - plan.group_offsets[g - 1]);
        }
        largest = std::max(largest, size);
        smallest = std::min(smallest, size);
      }
      EXPECT_LE(largest - smallest, 1);
      EXPECT_EQ(plan.group_offsets.back(), m);
    }
  }
}

TEST(FcaPlan, GroupSizes) {
  // m = 7, C = 3 -> 3, 2, 2.
  EXPECT_EQ(group_size(7, 3, 0), 3);
  EXPECT_EQ(group_size(7, 3, 1), 2);
  EXPECT_EQ(group_size(7, 3, 2), 2);
  EXPECT_EQ(group_begin(7, 3, 3), 7);
  // m = 8, C = 3 -> 3, 3, 2.
  EXPECT_EQ(group_size(8, 3, 0), 3);
  EXPECT_EQ(group_size(8, 3, 1), 3);
  EXPECT_EQ(group_size(8, 3, 2), 2);
  // m = 2, C = 5 -> c = min(5, 2) = 2 groups of one.
  EXPECT_EQ(group_size(2, std::min<int64_t>(5, 2), 0), 1);
  EXPECT_EQ(group_size(2, std::min<int64_t>(5, 2), 1), 1);

  // The same through a plan: n = 10, k = 3, C = 3 -> m = 7 in groups of 3, 2, 2.
  const double scores[] = {0, 9, 8, 0, 0, 0, 0, 0, 0, 0};  // fine = 0, 1, 2
  const ReductionPlan plan = plan_reduction(scores, 10, 3, 3);
  EXPECT_EQ(plan.fine, (Rows{0, 1, 2}));
  ASSERT_EQ(plan.clusters(), 3);
  EXPECT_EQ(group_rows(plan, 0), (Rows{3, 4, 5}));
  EXPECT_EQ(group_rows(plan, 1), (Rows{6, 7}));
  EXPECT_EQ(group_rows(plan, 2), (Rows{8, 9}));
  EXPECT_EQ(plan.rows_out(), 6);
}

TEST(FcaPlan, FewCoarseRowsPassThrough) {
  // m = 2 <= C = 5 (the "m = 2, C = 5" case never reduces: docs/FCA.md §3).
  const double scores[] = {0, 1, 2, 3};
  ReductionPlan plan = plan_reduction(scores, 4, 2, 5);
  EXPECT_FALSE(plan.reduce());
  EXPECT_EQ(plan.rows_out(), 4);
  // m = C: pass through too.
  const double six[] = {0, 1, 2, 3, 4, 5};
  plan = plan_reduction(six, 6, 4, 2);
  EXPECT_FALSE(plan.reduce());
  EXPECT_EQ(plan.fine, (Rows{0, 1, 2, 3, 4, 5}));
  EXPECT_TRUE(plan.coarse.empty());
  EXPECT_TRUE(plan.group_offsets.empty());
  // Applying a pass-through plan copies the rows.
  const std::vector<float> x = numbered_rows(6, 3);
  std::vector<float> out(x.size(), -1.0f);
  apply_reduction(plan, nullptr, x.data(), 3, Pooling::kWeighted, out.data());
  EXPECT_EQ(out, x);
  // k >= n, and scores are not needed when it passes through.
  plan = plan_reduction(nullptr, 6, 8, 0);
  EXPECT_FALSE(plan.reduce());
  EXPECT_EQ(plan.rows_out(), 6);
}

TEST(FcaPlan, ZeroClustersDropTheRest) {
  const double scores[] = {0, 5, 1, 4, 2, 3};
  const ReductionPlan plan = plan_reduction(scores, 6, 3, 0);
  ASSERT_TRUE(plan.reduce());
  EXPECT_EQ(plan.fine, (Rows{0, 1, 3}));
  EXPECT_EQ(plan.coarse, (Rows{2, 4, 5}));  // dropped
  EXPECT_EQ(plan.clusters(), 0);
  EXPECT_EQ(plan.rows_out(), 3);
  const std::vector<float> x = numbered_rows(6, 2);
  std::vector<float> out(3 * 2, -1.0f);
  apply_reduction(plan, scores, x.data(), 2, Pooling::kWeighted, out.data());
  EXPECT_EQ(out, (std::vector<float>{0, 1, 10, 11, 30, 31}));
}

TEST(FcaPlan, KeepOnlyCLSThenClusters) {
  const double scores[] = {0, 5, 1, 4, 2, 3};
  const ReductionPlan plan = plan_reduction(scores, 6, 1, 2);
  ASSERT_TRUE(plan.reduce());
  EXPECT_EQ(plan.fine, (Rows{0}));
  ASSERT_EQ(plan.clusters(), 2);
  EXPECT_EQ(group_rows(plan, 0), (Rows{1, 2, 3}));
  EXPECT_EQ(group_rows(plan, 1), (Rows{4, 5}));
  EXPECT_EQ(plan.rows_out(), 3);

  const int64_t d = 2;
  const std::vector<float> x = numbered_rows(6, d);
  std::vector<float> out(3 * d);
  apply_reduction(plan, scores, x.data(), d, Pooling::kMean, out.data());
  // [CLS]; mean of rows 1..3 = (10+20+30)/3 = 20, 21; mean of rows 4, 5 = 45, 46.
  EXPECT_EQ(out, (std::vector<float>{0, 1, 20, 21, 45, 46}));
}

TEST(FcaPlan, RejectsBadArguments) {
  const double scores[] = {0, 1, 2};
  EXPECT_THROW(plan_reduction(scores, 0, 1, 0), Error);
  EXPECT_THROW(plan_reduction(scores, 3, 0, 0), Error);
  EXPECT_THROW(plan_reduction(scores, 3, 1, -1), Error);
  EXPECT_THROW(plan_reduction(nullptr, 3, 1, 0), Error);  // reduces, needs scores
}

TEST(FcaPlan, ReusedPlanDoesNotReallocate) {
  ReductionPlan plan;
  plan.reserve(64);
  const int64_t* fine = plan.fine.data();
  const int64_t* coarse = plan.coarse.data();
  const int64_t* offsets = plan.group_offsets.data();
  const int64_t* work = plan.work.data();
  std::mt19937 rng(3);
  std::vector<double> scores(64);
  for (int trial = 0; trial < 50; ++trial) {
    for (double& s : scores) s = static_cast<double>(rng() % 100);
    const int64_t n = 1 + static_cast<int64_t>(rng() % 64);
    plan_reduction(scores.data(), n, 1 + static_cast<int64_t>(rng() % n), static_cast<int64_t>(rng() % 5),
                   plan);
  }
  EXPECT_EQ(plan.fine.data(), fine);
  EXPECT_EQ(plan.coarse.data(), coarse);
  EXPECT_EQ(plan.group_offsets.data(), offsets);
  EXPECT_EQ(plan.work.data(), work);
}

// ----------------------------------------------------------------------------- pooling

TEST(FcaPooling, WeightedIsTheSoftmaxOfTheGroupScores) {
  // n = 7, k = 2, C = 2: fine = 0 and the best other row (3); groups {1, 2, 4}, {5, 6}.
  const double scores[] = {0.0, 0.5, 1.5, 7.0, -0.25, 2.0, 2.0};
  const ReductionPlan plan = plan_reduction(scores, 7, 2, 2);
  ASSERT_EQ(plan.fine, (Rows{0, 3}));
  ASSERT_EQ(group_rows(plan, 0), (Rows{1, 2, 4}));
  ASSERT_EQ(group_rows(plan, 1), (Rows{5, 6}));

  // Manual softmax, without the max subtraction.
  const double e1 = std::exp(0.5), e2 = std::exp(1.5), e4 = std::exp(-0.25);
  const double w[] = {e1 / (e1 + e2 + e4), e2 / (e1 + e2 + e4), e4 / (e1 + e2 + e4)};
  double got[3];
  cluster_weights(plan, scores, Pooling::kWeighted, 0, got);
  EXPECT_NEAR(got[0] + got[1] + got[2], 1.0, 1e-15);
  for (int i = 0; i < 3; ++i) EXPECT_NEAR(got[i], w[i], 1e-15) << i;
  double equal[2];
  cluster_weights(plan, scores, Pooling::kWeighted, 1, equal);
  EXPECT_DOUBLE_EQ(equal[0], 0.5);
  EXPECT_DOUBLE_EQ(equal[1], 0.5);
  EXPECT_THROW(cluster_weights(plan, scores, Pooling::kWeighted, 2, equal), Error);

  const int64_t d = 5;
  std::mt19937 rng(5);
  std::uniform_real_distribution<float> uniform(-3.0f, 3.0f);
  std::vector<float> x(7 * d);
  for (float& v : x) v = uniform(rng);
  std::vector<float> out(4 * d);
  apply_reduction(plan, scores, x.data(), d, Pooling::kWeighted, out.data());
  for (int64_t e = 0; e < d; ++e) {
    EXPECT_EQ(out[0 * d + e], x[0 * d + e]);
    EXPECT_EQ(out[1 * d + e], x[3 * d + e]);
    const double cluster0 = w[0] * x[1 * d + e] + w[1] * x[2 * d + e] + w[2] * x[4 * d + e];
    EXPECT_NEAR(out[2 * d + e], cluster0, 1e-6) << e;
    const double cluster1 = 0.5 * x[5 * d + e] + 0.5 * x[6 * d + e];
    EXPECT_NEAR(out[3 * d + e], cluster1, 1e-6) << e;
  }
}

TEST(FcaPooling, WeightedIsStableForLargeScores) {
  const double scores[] = {0, 1000.0, 1001.0, 0, 0};
  // k = 1, C = 1: one group {1, 2, 3, 4}.
  const ReductionPlan plan = plan_reduction(scores, 5, 1, 1);
  double w[4];
  cluster_weights(plan, scores, Pooling::kWeighted, 0, w);
  const double a = 1.0 / (1.0 + std::exp(1.0)), b = std::exp(1.0) / (1.0 + std::exp(1.0));
  EXPECT_NEAR(w[0], a, 1e-15);
  EXPECT_NEAR(w[1], b, 1e-15);
  EXPECT_EQ(w[2], 0.0);  // exp(-1001) underflows, as it should
  const std::vector<float> x = numbered_rows(5, 2);
  std::vector<float> out(2 * 2);
  apply_reduction(plan, scores, x.data(), 2, Pooling::kWeighted, out.data());
  EXPECT_NEAR(out[2], a * 10 + b * 20, 1e-4);
  EXPECT_TRUE(std::isfinite(out[3]));
}

TEST(FcaPooling, MeanUsesEqualWeights) {
  // n = 8, k = 2, C = 2: fine 0 and 7; groups {1, 2, 3}, {4, 5, 6}.
  const double scores[] = {0, 1, 2, 3, 4, 5, 6, 100};
  const ReductionPlan plan = plan_reduction(scores, 8, 2, 2);
  ASSERT_EQ(plan.fine, (Rows{0, 7}));
  double w[3];
  cluster_weights(plan, nullptr, Pooling::kMean, 1, w);
  for (double v : w) EXPECT_DOUBLE_EQ(v, 1.0 / 3.0);
  const std::vector<float> x = numbered_rows(8, 3);
  std::vector<float> out(4 * 3);
  apply_reduction(plan, nullptr, x.data(), 3, Pooling::kMean, out.data());  // scores not needed
  // Means: rows 1..3 -> 20, 21, 22; rows 4..6 -> 50, 51, 52.
  EXPECT_EQ(out, (std::vector<float>{0, 1, 2, 70, 71, 72, 20, 21, 22, 50, 51, 52}));
  // Weighted pooling without scores is refused.
  EXPECT_THROW(apply_reduction(plan, nullptr, x.data(), 3, Pooling::kWeighted, out.data()), Error);
}

TEST(FcaPooling, RefusesOverlappingBuffers) {
  const double scores[] = {0, 5, 1, 4, 2, 3};
  const ReductionPlan plan = plan_reduction(scores, 6, 1, 2);
  std::vector<float> x = numbered_rows(6, 2);
  EXPECT_THROW(apply_reduction(plan, scores, x.data(), 2, Pooling::kWeighted, x.data()), Error);
  EXPECT_THROW(apply_reduction(plan, scores, x.data(), 2, Pooling::kWeighted, x.data() + 6), Error);
  std::vector<float> big(12 + 6);
  std::copy(x.begin(), x.end(), big.begin());
  // Right after the input: fine.
  EXPECT_NO_THROW(apply_reduction(plan, scores, big.data(), 2, Pooling::kWeighted, big.data() + 12));
}

// ----------------------------------------------------------------------------- identities

TEST(FcaIdentity, RenderingAndJson) {
  EXPECT_EQ(RowIdentity::token(17).to_string(), "17");
  EXPECT_EQ(RowIdentity::cluster(0, 1).to_string(), "c0.1");
  EXPECT_EQ(to_json_value(RowIdentity::token(17)), nlohmann::ordered_json(17));
  EXPECT_EQ(to_json_value(RowIdentity::cluster(3, 12)), nlohmann::ordered_json("c3.12"));
  EXPECT_EQ(to_json_value(RowIdentity::token(0)).dump(), "0");
  EXPECT_EQ(RowIdentity::token(3), RowIdentity::token(3));
  EXPECT_NE(RowIdentity::token(0), RowIdentity::cluster(0, 0));
  EXPECT_NE(RowIdentity::cluster(1, 0), RowIdentity::cluster(0, 1));
}

TEST(FcaIdentity, ThroughTwoLayers) {
  // Layer 0: n0 = 8, k = 4, C = 2. Best rows 2, 5, 7; coarse 1, 3, 4, 6 -> {1, 3}, {4, 6}.
  std::vector<RowIdentity> ids = initial_identities(8);
  const double s0[] = {0, 1, 9, 2, 3, 8, 4, 7};
  const ReductionPlan p0 = plan_reduction(s0, 8, 4, 2);
  ids = map_identities(p0, 0, ids);
  std::vector<std::string> text;
  for (const RowIdentity& id : ids) text.push_back(id.to_string());
  EXPECT_EQ(text, (std::vector<std::string>{"0", "2", "5", "7", "c0.0", "c0.1"}));

  // Layer 1: 6 rows, k = 3, C = 1: keep rows 2 (token 5) and 5 ("c0.1"); coarse rows 1, 3, 4.
  const double s1[] = {0, 1, 6, 2, 3, 5};
  const ReductionPlan p1 = plan_reduction(s1, 6, 3, 1);
  ids = map_identities(p1, 1, ids);
  nlohmann::ordered_json json = nlohmann::ordered_json::array();
  for (const RowIdentity& id : ids) json.push_back(to_json_value(id));
  EXPECT_EQ(json.dump(), R"([0,5,"c0.1","c1.0"])");

  // A pass-through plan keeps every identity.
  const ReductionPlan p2 = plan_reduction(nullptr, 4, 4, 0);
  EXPECT_EQ(map_identities(p2, 2, ids), ids);
  EXPECT_THROW(map_identities(p1, 1, ids), Error);  // 4 identities for a 6-row plan
}

}  // namespace
}  // namespace fcabert::fca
