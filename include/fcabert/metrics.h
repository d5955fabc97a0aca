#pragma once
// GLUE metrics, built so that shards merge exactly: classification results are a confusion
// matrix of counts (sum them), regression results are the (prediction, gold) pairs
// (concatenate them; Spearman needs every value).
//
// Defined behaviour on degenerate input (the same as scikit-learn's defaults):
// - no examples: every metric throws fcabert::Error;
// - F1 with no positive predictions and no positive gold labels (tp + fp + fn = 0): 0;
// - Matthews correlation when a row or column total product is 0 (e.g. every prediction or
//   every gold label is one class): 0;
// - Pearson / Spearman when either side is constant (zero variance): 0 (scipy gives NaN;
//   JSON has no NaN, and "no linear relation measurable" scores as none).
#include <cstddef>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace fcabert::metrics {

class ConfusionMatrix {
 public:
  explicit ConfusionMatrix(int classes = 0);
  void add(int gold, int predicted, int64_t count = 1);  // throws on an out-of-range class
  void merge(const ConfusionMatrix& other);              // throws if the class counts differ
  int classes() const { return classes_; }
  int64_t at(int gold, int predicted) const {
    return counts_[static_cast<size_t>(gold * classes_ + predicted)];
  }
  int64_t total() const;
  int64_t correct() const;

 private:
  int classes_;
  std::vector<int64_t> counts_;  // gold-major: counts_[gold * classes + predicted]
};

// The index of the largest value (the first of equal ones): a classifier's predicted class.
// Throws fcabert::Error for an empty vector.
size_t argmax(const std::vector<float>& values);

// The median (the mean of the two middle values for an even count); 0 for no values.
double median(std::vector<double> values);

double accuracy(const ConfusionMatrix& matrix);
// F1 of class `positive` (precision and recall of that class).
double f1(const ConfusionMatrix& matrix, int positive);
// Matthews correlation; for more than two classes the multiclass generalisation (R_K), as
// scikit-learn's matthews_corrcoef.
double matthews(const ConfusionMatrix& matrix);

// Ranks 1..n with ties given the average of the ranks they span.
std::vector<double> average_ranks(const std::vector<double>& values);
double pearson(const std::vector<double>& x, const std::vector<double>& y);
double spearman(const std::vector<double>& x, const std::vector<double>& y);

struct RegressionPairs {
  std::vector<double> predicted, gold;
  void add(double prediction, double truth);
  void merge(const RegressionPairs& other);
  int64_t size() const { return static_cast<int64_t>(gold.size()); }
};

// Named metric values in report order, plus the GLUE score.
struct Scores {
  std::vector<std::pair<std::string, double>> values;  // e.g. {"accuracy", 0.88}, {"f1", ...}
  double glue = 0;                                     // as the GLUE leaderboard combines them
  double get(const std::string& name) const;           // throws if absent
};

// glue_metric: "acc" (accuracy), "mcc" (Matthews; accuracy also listed), "f1+acc" (mean of
// F1 of `positive` and accuracy). Throws on empty input or an unknown metric.
Scores score_classification(const ConfusionMatrix& matrix, const std::string& glue_metric, int positive);
// Pearson, Spearman, their mean as the GLUE score.
Scores score_regression(const RegressionPairs& pairs);

}  // namespace fcabert::metrics
