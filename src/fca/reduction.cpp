// FCA for one sequence: token scores, the fine/coarse plan, and cluster pooling.
#include "fca/reduction.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <functional>
#include <limits>
#include <string>

#include "fcabert/error.h"

namespace fcabert::fca {
namespace {

// The softmax of one group's scores, evaluated member by member (no buffer):
// w_j = exp(s_j - max) / sum_{j'} exp(s_j' - max).
struct GroupSoftmax {
  double max = -std::numeric_limits<double>::infinity();
  double sum = 0.0;

  GroupSoftmax(const double* scores, const int64_t* members, int64_t count) {
    for (int64_t i = 0; i < count; ++i) max = std::max(max, scores[members[i]]);
    for (int64_t i = 0; i < count; ++i) sum += std::exp(scores[members[i]] - max);
  }
  double weight(double score) const { return std::exp(score - max) / sum; }
};

void check_plan_inputs(const ReductionPlan& plan, const double* scores, Pooling pooling) {
  if (pooling == Pooling::kWeighted && plan.clusters() > 0 && scores == nullptr)
    throw Error("FCA weighted pooling needs the token scores, got a null pointer");
}

}  // namespace

void column_scores(const float* probs, int64_t heads, int64_t n, double* scores) {
  std::fill(scores, scores + n, 0.0);
  for (int64_t h = 0; h < heads; ++h) {
    const float* a = probs + h * n * n;
    for (int64_t i = 0; i < n; ++i)
      for (int64_t j = 0; j < n; ++j)
        if (i != j) scores[j] += static_cast<double>(a[i * n + j]);
  }
  for (int64_t j = 0; j < n; ++j) scores[j] /= static_cast<double>(heads);
}

void accumulate_column_sums(const float* probs, int64_t n, int64_t ld, double* colsum, double* diag) {
  for (int64_t i = 0; i < n; ++i) {
    const float* row = probs + i * ld;
    for (int64_t j = 0; j < n; ++j) colsum[j] += static_cast<double>(row[j]);
    diag[i] += static_cast<double>(row[i]);
  }
}

void scores_from_column_sums(const double* colsum, const double* diag, int64_t slices, int64_t n,
                             int64_t heads, double* scores) {
  const double scale = 1.0 / static_cast<double>(heads);
  for (int64_t j = 0; j < n; ++j) {
    double column = 0.0, diagonal = 0.0;
    for (int64_t s = 0; s < slices; ++s) {
      column += colsum[s * n + j];
      diagonal += diag[s * n + j];
    }
    scores[j] = (column - diagonal) * scale;
  }
}

void ReductionPlan::reserve(int64_t max_rows) {
  const size_t rows = static_cast<size_t>(std::max<int64_t>(max_rows, 0));
  fine.reserve(rows);
  coarse.reserve(rows);
  group_offsets.reserve(rows + 1);
  work.reserve(rows);
}

void plan_reduction(const double* scores, int64_t n, int64_t k, int64_t clusters, ReductionPlan& out) {
  if (n < 1) throw Error("FCA: a sequence has at least one row ([CLS]), got " + std::to_string(n));
  if (k < 1) throw Error("FCA: the keep count must be >= 1, got " + std::to_string(k));
  if (clusters < 0) throw Error("FCA: clusters (C) must be >= 0, got " + std::to_string(clusters));
  out.shape = reduction_shape(n, k, clusters);
  out.coarse.clear();
  out.group_offsets.clear();
  if (!out.shape.reduce) {
    out.fine.resize(static_cast<size_t>(n));
    for (int64_t i = 0; i < n; ++i) out.fine[i] = i;
    return;
  }
  if (scores == nullptr)
    throw Error("FCA: the layer reduces a sequence of " + std::to_string(n) + " rows to " +
                std::to_string(k) + " fine rows but no token scores were given");

  // Rank rows 1..n-1 by score (highest first, NaN last, lower index first on ties) and keep
  // the first k-1. A strict total order, so the result does not depend on the algorithm.
  const auto key = [scores](int64_t row) {
    const double s = scores[row];
    return std::isnan(s) ? -std::numeric_limits<double>::infinity() : s;
  };
  const auto ranks_before = [&key](int64_t a, int64_t b) {
    const double ka = key(a), kb = key(b);
    return ka > kb || (ka == kb && a < b);
  };
  std::vector<int64_t>& candidates = out.work;
  candidates.resize(static_cast<size_t>(n - 1));
  for (int64_t i = 1; i < n; ++i) candidates[i - 1] = i;
  const auto chosen_end = candidates.begin() + (k - 1);
  std::nth_element(candidates.begin(), chosen_end, candidates.end(), ranks_before);
  std::sort(candidates.begin(), chosen_end);

  out.fine.resize(static_cast<size_t>(k));
  out.fine[0] = 0;
  std::copy(candidates.begin(), chosen_end, out.fine.begin() + 1);

  // The complement, ascending: walk the rows against the sorted fine list.
  out.coarse.resize(static_cast<size_t>(out.shape.coarse));
  size_t next_fine = 1;
  int64_t next_coarse = 0;
  for (int64_t row = 1; row < n; ++row) {
    if (next_fine < out.fine.size() && out.fine[next_fine] == row) {
      ++next_fine;
    } else {
      out.coarse[next_coarse++] = row;
    }
  }

  const int64_t c = out.shape.clusters;
  if (c > 0) {
    out.group_offsets.resize(static_cast<size_t>(c + 1));
    for (int64_t g = 0; g <= c; ++g) out.group_offsets[g] = group_begin(out.shape.coarse, c, g);
  }
}

ReductionPlan plan_reduction(const double* scores, int64_t n, int64_t k, int64_t clusters) {
  ReductionPlan plan;
  plan_reduction(scores, n, k, clusters, plan);
  return plan;
}

void cluster_weights(const ReductionPlan& plan, const double* scores, Pooling pooling, int64_t group,
                     double* weights) {
  if (group < 0 || group >= plan.clusters())
    throw Error("FCA: group " + std::to_string(group) + " does not exist (the plan makes " +
                std::to_string(plan.clusters()) + " clusters)");
  check_plan_inputs(plan, scores, pooling);
  const int64_t begin = plan.group_offsets[group], count = plan.group_offsets[group + 1] - begin;
  const int64_t* members = plan.coarse.data() + begin;
  if (pooling == Pooling::kMean) {
    std::fill(weights, weights + count, 1.0 / static_cast<double>(count));
    return;
  }
  const GroupSoftmax softmax(scores, members, count);
  for (int64_t i = 0; i < count; ++i) weights[i] = softmax.weight(scores[members[i]]);
}

void apply_reduction(const ReductionPlan& plan, const double* scores, const float* in, int64_t d,
                     Pooling pooling, float* out) {
  check_plan_inputs(plan, scores, pooling);
  const int64_t rows_in = plan.rows_in(), rows_out = plan.rows_out();
  const std::less<const float*> before;
  if (before(out, in + rows_in * d) && before(in, out + rows_out * d))
    throw Error("FCA: apply_reduction's input and output overlap; write the reduced rows to another buffer");
  const size_t row_bytes = static_cast<size_t>(d) * sizeof(float);

  float* dst = out;
  for (const int64_t row : plan.fine) {
    std::memcpy(dst, in + row * d, row_bytes);
    dst += d;
  }
  for (int64_t g = 0; g < plan.clusters(); ++g, dst += d) {
    const int64_t begin = plan.group_offsets[g], count = plan.group_offsets[g + 1] - begin;
    const int64_t* members = plan.coarse.data() + begin;
    if (pooling == Pooling::kMean) {
      // The members' sum, then one scale: (count - 1) * d adds and d multiplies.
      std::memcpy(dst, in + members[0] * d, row_bytes);
      for (int64_t i = 1; i < count; ++i) {
        const float* x = in + members[i] * d;
        for (int64_t e = 0; e < d; ++e) dst[e] += x[e];
      }
      const float scale = 1.0f / static_cast<float>(count);
      for (int64_t e = 0; e < d; ++e) dst[e] *= scale;
    } else {
      const GroupSoftmax softmax(scores, members, count);
      std::fill(dst, dst + d, 0.0f);
      for (int64_t i = 0; i < count; ++i) {
        const float w = static_cast<float>(softmax.weight(scores[members[i]]));
        const float* x = in + members[i] * d;
        for (int64_t e = 0; e < d; ++e) dst[e] += w * x[e];
      }
    }
  }
}

}  // namespace fcabert::fca
