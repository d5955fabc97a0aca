// Metrics against values computed offline with scikit-learn 1.9.1 / scipy 1.15.3 on the
// same lists (accuracy_score, f1_score, matthews_corrcoef, scipy.stats.pearsonr,
// scipy.stats.spearmanr, scipy.stats.rankdata), printed with repr().
#include <gtest/gtest.h>

#include <vector>

#include "fcabert/error.h"
#include "fcabert/metrics.h"

namespace fcabert::metrics {
namespace {

ConfusionMatrix from_lists(int classes, const std::vector<int>& gold, const std::vector<int>& predicted) {
  ConfusionMatrix matrix(classes);
  for (size_t i = 0; i < gold.size(); ++i) matrix.add(gold[i], predicted[i]);
  return matrix;
}

const std::vector<int> kGold = {1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 1, 0};
const std::vector<int> kPred = {1, 1, 1, 0, 1, 0, 1, 0, 0, 1, 1, 0};

TEST(Metrics, BinaryAgainstScikitLearn) {
  const ConfusionMatrix m = from_lists(2, kGold, kPred);
  EXPECT_EQ(m.total(), 12);
  EXPECT_EQ(m.at(1, 1), 5);
  EXPECT_EQ(m.at(0, 1), 2);
  EXPECT_DOUBLE_EQ(accuracy(m), 0.75);
  EXPECT_NEAR(f1(m, 1), 0.7692307692307693, 1e-15);
  EXPECT_NEAR(matthews(m), 0.50709255283711, 1e-13);
}

TEST(Metrics, MulticlassMatthews) {
  const ConfusionMatrix m = from_lists(3, {0, 0, 1, 1, 2, 2, 2, 0, 1, 2}, {0, 1, 1, 1, 2, 0, 2, 0, 2, 2});
  EXPECT_NEAR(matthews(m), 0.5454545454545454, 1e-15);
  EXPECT_DOUBLE_EQ(accuracy(m), 0.7);
}

TEST(Metrics, DegenerateCasesAreDefined) {
  // Every prediction one class: MCC 0 (sklearn: 0); F1 of a never-predicted class 0.
  const ConfusionMatrix all_negative = from_lists(2, {0, 1, 1, 0}, {0, 0, 0, 0});
  EXPECT_EQ(matthews(all_negative), 0.0);
  EXPECT_EQ(f1(all_negative, 1), 0.0);
  EXPECT_DOUBLE_EQ(accuracy(all_negative), 0.5);
  // Only negatives anywhere: tp + fp + fn = 0 -> F1 0; MCC 0.
  const ConfusionMatrix only_negatives = from_lists(2, {0, 0}, {0, 0});
  EXPECT_EQ(f1(only_negatives, 1), 0.0);
  EXPECT_EQ(matthews(only_negatives), 0.0);
  // Perfect.
  const ConfusionMatrix perfect = from_lists(2, {0, 1, 1}, {0, 1, 1});
  EXPECT_DOUBLE_EQ(matthews(perfect), 1.0);
  EXPECT_DOUBLE_EQ(f1(perfect, 1), 1.0);
  // Constant predictions: Pearson / Spearman 0 (scipy: NaN).
  EXPECT_EQ(pearson({1, 1, 1}, {1, 2, 3}), 0.0);
  EXPECT_EQ(spearman({1, 2, 3}, {2, 2, 2}), 0.0);
}

TEST(Metrics, EmptyInputThrows) {
  const ConfusionMatrix empty(2);
  EXPECT_THROW(accuracy(empty), Error);
  EXPECT_THROW(f1(empty, 1), Error);
  EXPECT_THROW(matthews(empty), Error);
  EXPECT_THROW(pearson({}, {}), Error);
  EXPECT_THROW(spearman({}, {}), Error);
  EXPECT_THROW(score_regression(RegressionPairs{}), Error);
  EXPECT_THROW(score_classification(empty, "acc", -1), Error);
}

TEST(Metrics, RegressionWithTiesAgainstScipy) {
  const std::vector<double> x = {1.0, 2.0, 2.0, 3.5, 4.0, 4.0, 4.0, 0.5};
  const std::vector<double> y = {0.8, 2.5, 1.9, 3.0, 4.2, 3.9, 4.4, 1.0};
  EXPECT_EQ(average_ranks(x), (std::vector<double>{2, 3.5, 3.5, 5, 7, 7, 7, 1}));
  EXPECT_NEAR(pearson(x, y), 0.9665527242303741, 1e-14);
  EXPECT_NEAR(spearman(x, y), 0.9452300860699551, 1e-14);
  RegressionPairs pairs;
  for (size_t i = 0; i < x.size(); ++i) pairs.add(x[i], y[i]);
  const Scores scores = score_regression(pairs);
  EXPECT_NEAR(scores.glue, (0.9665527242303741 + 0.9452300860699551) / 2, 1e-14);
  EXPECT_NEAR(scores.get("spearman"), 0.9452300860699551, 1e-14);
}

TEST(Metrics, GlueScores) {
  const ConfusionMatrix m = from_lists(2, kGold, kPred);
  EXPECT_DOUBLE_EQ(score_classification(m, "acc", -1).glue, 0.75);
  EXPECT_NEAR(score_classification(m, "mcc", -1).glue, 0.50709255283711, 1e-13);
  EXPECT_NEAR(score_classification(m, "f1+acc", 1).glue, (0.7692307692307693 + 0.75) / 2, 1e-15);
  EXPECT_THROW(score_classification(m, "bleu", -1), Error);
}

TEST(Metrics, ShardsMergeExactly) {
  ConfusionMatrix a(2), b(2);
  for (size_t i = 0; i < kGold.size(); ++i) (i % 2 ? a : b).add(kGold[i], kPred[i]);
  a.merge(b);
  const ConfusionMatrix whole = from_lists(2, kGold, kPred);
  for (int g = 0; g < 2; ++g)
    for (int p = 0; p < 2; ++p) EXPECT_EQ(a.at(g, p), whole.at(g, p));
  EXPECT_THROW(a.merge(ConfusionMatrix(3)), Error);
  EXPECT_THROW(a.add(2, 0), Error);
}

}  // namespace
}  // namespace fcabert::metrics
