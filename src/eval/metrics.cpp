// GLUE metrics (include/fcabert/metrics.h).
#include "fcabert/metrics.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <string>
#include <vector>

#include "fcabert/error.h"

namespace fcabert::metrics {
namespace {

void require_examples(int64_t count) {
  if (count <= 0) throw Error("no examples to score: the metrics need at least one example");
}

}  // namespace

ConfusionMatrix::ConfusionMatrix(int classes)
    : classes_(classes), counts_(static_cast<size_t>(classes) * static_cast<size_t>(classes), 0) {
  if (classes < 0) throw Error("a confusion matrix needs a non-negative class count");
}

void ConfusionMatrix::add(int gold, int predicted, int64_t count) {
  if (gold < 0 || gold >= classes_ || predicted < 0 || predicted >= classes_)
    throw Error("confusion matrix: class out of range (gold " + std::to_string(gold) + ", predicted " +
                std::to_string(predicted) + ", classes " + std::to_string(classes_) + ")");
  if (count < 0) throw Error("confusion matrix: negative count");
  counts_[static_cast<size_t>(gold * classes_ + predicted)] += count;
}

void ConfusionMatrix::merge(const ConfusionMatrix& other) {
  if (other.classes_ != classes_)
    throw Error("cannot merge confusion matrices of " + std::to_string(classes_) + " and " +
                std::to_string(other.classes_) + " classes");
  for (size_t i = 0; i < counts_.size(); ++i) counts_[i] += other.counts_[i];
}

int64_t ConfusionMatrix::total() const { return std::accumulate(counts_.begin(), counts_.end(), int64_t{0}); }

int64_t ConfusionMatrix::correct() const {
  int64_t sum = 0;
  for (int c = 0; c < classes_; ++c) sum += at(c, c);
  return sum;
}

size_t argmax(const std::vector<float>& values) {
  if (values.empty()) throw Error("argmax of no values");
  return static_cast<size_t>(std::max_element(values.begin(), values.end()) - values.begin());
}

double median(std::vector<double> values) {
  if (values.empty()) return 0;
  std::sort(values.begin(), values.end());
  const size_t mid = values.size() / 2;
  return values.size() % 2 ? values[mid] : (values[mid - 1] + values[mid]) / 2;
}

double accuracy(const ConfusionMatrix& matrix) {
  require_examples(matrix.total());
  return static_cast<double>(matrix.correct()) / static_cast<double>(matrix.total());
}

double f1(const ConfusionMatrix& matrix, int positive) {
  require_examples(matrix.total());
  if (positive < 0 || positive >= matrix.classes()) throw Error("F1: positive class out of range");
  int64_t tp = matrix.at(positive, positive), fp = 0, fn = 0;
  for (int c = 0; c < matrix.classes(); ++c) {
    if (c == positive) continue;
    fp += matrix.at(c, positive);
    fn += matrix.at(positive, c);
  }
  const int64_t denominator = 2 * tp + fp + fn;
  return denominator == 0 ? 0.0 : 2.0 * static_cast<double>(tp) / static_cast<double>(denominator);
}

double matthews(const ConfusionMatrix& matrix) {
  require_examples(matrix.total());
  const int k = matrix.classes();
  std::vector<double> gold_totals(static_cast<size_t>(k), 0), predicted_totals(static_cast<size_t>(k), 0);
  for (int g = 0; g < k; ++g)
    for (int p = 0; p < k; ++p) {
      gold_totals[g] += static_cast<double>(matrix.at(g, p));
      predicted_totals[p] += static_cast<double>(matrix.at(g, p));
    }
  const double s = static_cast<double>(matrix.total()), c = static_cast<double>(matrix.correct());
  double pt = 0, pp = 0, tt = 0;
  for (int i = 0; i < k; ++i) {
    pt += predicted_totals[i] * gold_totals[i];
    pp += predicted_totals[i] * predicted_totals[i];
    tt += gold_totals[i] * gold_totals[i];
  }
  const double denominator = std::sqrt((s * s - pp) * (s * s - tt));
  return denominator == 0 ? 0.0 : (c * s - pt) / denominator;
}

std::vector<double> average_ranks(const std::vector<double>& values) {
  std::vector<size_t> order(values.size());
  std::iota(order.begin(), order.end(), size_t{0});
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return values[a] < values[b]; });
  std::vector<double> ranks(values.size());
  for (size_t i = 0; i < order.size();) {
    size_t j = i;
    while (j + 1 < order.size() && values[order[j + 1]] == values[order[i]]) ++j;
    const double rank = (static_cast<double>(i) + static_cast<double>(j)) / 2.0 + 1.0;  // 1-based average
    for (size_t t = i; t <= j; ++t) ranks[order[t]] = rank;
    i = j + 1;
  }
  return ranks;
}

double pearson(const std::vector<double>& x, const std::vector<double>& y) {
  if (x.size() != y.size()) throw Error("Pearson: the two series differ in length");
  require_examples(static_cast<int64_t>(x.size()));
  const double n = static_cast<double>(x.size());
  double mx = 0, my = 0;
  for (size_t i = 0; i < x.size(); ++i) {
    mx += x[i];
    my += y[i];
  }
  mx /= n;
  my /= n;
  double sxy = 0, sxx = 0, syy = 0;
  for (size_t i = 0; i < x.size(); ++i) {
    sxy += (x[i] - mx) * (y[i] - my);
    sxx += (x[i] - mx) * (x[i] - mx);
    syy += (y[i] - my) * (y[i] - my);
  }
  if (sxx == 0 || syy == 0) return 0.0;
  return sxy / std::sqrt(sxx * syy);
}

double spearman(const std::vector<double>& x, const std::vector<double>& y) {
  if (x.size() != y.size()) throw Error("Spearman: the two series differ in length");
  require_examples(static_cast<int64_t>(x.size()));
  return pearson(average_ranks(x), average_ranks(y));
}

void RegressionPairs::add(double prediction, double truth) {
  predicted.push_back(prediction);
  gold.push_back(truth);
}

void RegressionPairs::merge(const RegressionPairs& other) {
  predicted.insert(predicted.end(), other.predicted.begin(), other.predicted.end());
  gold.insert(gold.end(), other.gold.begin(), other.gold.end());
}

double Scores::get(const std::string& name) const {
  for (const auto& [key, value] : values)
    if (key == name) return value;
  throw Error("no metric named '" + name + "'");
}

Scores score_classification(const ConfusionMatrix& matrix, const std::string& glue_metric, int positive) {
  Scores scores;
  const double acc = accuracy(matrix);
  scores.values.emplace_back("accuracy", acc);
  if (glue_metric == "acc") {
    scores.glue = acc;
  } else if (glue_metric == "mcc") {
    const double mcc = matthews(matrix);
    scores.values.emplace_back("mcc", mcc);
    scores.glue = mcc;
  } else if (glue_metric == "f1+acc") {
    const double f = f1(matrix, positive);
    scores.values.emplace_back("f1", f);
    scores.glue = (f + acc) / 2;
  } else {
    throw Error("unknown GLUE classification metric '" + glue_metric + "'");
  }
  return scores;
}

Scores score_regression(const RegressionPairs& pairs) {
  Scores scores;
  const double p = pearson(pairs.predicted, pairs.gold), s = spearman(pairs.predicted, pairs.gold);
  scores.values.emplace_back("pearson", p);
  scores.values.emplace_back("spearman", s);
  scores.glue = (p + s) / 2;
  return scores;
}

}  // namespace fcabert::metrics
