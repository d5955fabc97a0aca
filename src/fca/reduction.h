#pragma once
// The FCA hot path (docs/FCA.md), internal to the engine: token scores from the attention
// probabilities, the choice of fine rows and coarse groups, the cluster pooling, and the
// row identities carried through the layers for --explain. The public side (schedules, the
// reduction decision, RowIdentity) is include/fcabert/fca.h.
//
// Everything here works on ONE sequence: the engine calls it on each sequence's slice of the
// packed [T, d] hidden-state matrix, after the attention sub-layer's LayerNorm and before the
// feed-forward. Rows are row-major float vectors of `d` values; row 0 is [CLS].
//
// The hot path (score -> plan -> apply) never allocates once a ReductionPlan has seen the
// longest sequence (or had reserve() called): plans reuse their vectors' capacity.
//
// Scores are double: the column sums are accumulated in double so that rounding does not
// reorder tokens whose scores differ in the last float bits (ties are decided on these
// doubles, lower row index first).
#include <cstdint>
#include <vector>

#include "fcabert/config.h"
#include "fcabert/fca.h"

namespace fcabert::fca {

// ---------------------------------------------------------------------------------------
// Token scores: s_j = (1/H) * sum_h sum_{i != j} A_h[i, j]   (rows of A_h = queries)

// Reference: `probs` holds H contiguous [n, n] row-major softmax matrices ([H][n][n]);
// writes n scores. Sums in double, exactly as the definition reads (the diagonal skipped).
void column_scores(const float* probs, int64_t heads, int64_t n, double* scores);

// Engine path, for attention kernels that already hold one head's probabilities:
// adds the column sums of that head's [n, n] block (row stride `ld` floats) to
// colsum[j] += sum_i P[i, j] and its diagonal to diag[j] += P[j, j]. Costs n*n adds.
// Zero colsum/diag first. Not thread-safe on the same colsum/diag: heads processed in
// parallel should each own a slice of a [H][n] buffer (see scores_from_column_sums).
void accumulate_column_sums(const float* probs, int64_t n, int64_t ld, double* colsum, double* diag);

// Finishes the scores from column sums: colsum and diag are [slices][n] (slices = 1 when
// one buffer accumulated every head, or H when each head had its own slice); they are
// summed over slices in slice order (deterministic), then
// scores[j] = (colsum[j] - diag[j]) / heads. `scores` may be the same pointer as `colsum`.
void scores_from_column_sums(const double* colsum, const double* diag, int64_t slices, int64_t n,
                             int64_t heads, double* scores);

// Groups of m rows into c contiguous groups, sizes differing by at most one, earlier groups
// larger: group g holds [group_begin(m, c, g), group_begin(m, c, g + 1)). c >= 1, 0 <= g <= c.
inline int64_t group_begin(int64_t m, int64_t c, int64_t g) {
  const int64_t base = m / c, extra = m % c;
  return g * base + (g < extra ? g : extra);
}
inline int64_t group_size(int64_t m, int64_t c, int64_t g) {
  return group_begin(m, c, g + 1) - group_begin(m, c, g);
}

// ---------------------------------------------------------------------------------------
// The plan for one sequence at one layer. Reuse one object for every sequence and layer:
// plan_reduction only resizes its vectors, so it stops allocating once capacity suffices.
struct ReductionPlan {
  ReductionShape shape;
  // Ascending row indices copied to the output first. Row 0 is always first. When the
  // layer passes the sequence through, this is every row 0..n-1 (so applying the plan
  // copies the rows; callers that can should skip the copy when !shape.reduce).
  std::vector<int64_t> fine;
  // The m rows not kept, ascending (pooled into clusters, or dropped when C = 0); empty when
  // passing through.
  std::vector<int64_t> coarse;
  // c + 1 offsets into `coarse`: group g is coarse[group_offsets[g] .. group_offsets[g + 1]).
  // Empty when no clusters are made (pass-through or C = 0).
  std::vector<int64_t> group_offsets;
  // Scratch for the selection (candidates 1..n-1); not part of the result.
  std::vector<int64_t> work;

  bool reduce() const { return shape.reduce; }
  int64_t rows_in() const { return shape.rows_in; }
  int64_t rows_out() const { return shape.rows_out; }
  int64_t clusters() const { return shape.clusters; }
  // Makes room for sequences of up to `max_rows` rows, so later plans never allocate.
  void reserve(int64_t max_rows);
};

// Plans the step for one sequence of n rows with keep count k (from keep_count) and C
// clusters (docs/FCA.md §3, §5, §6). `scores` (n values) are only read when the layer
// reduces; pass nullptr when the caller knows it passes through (reduction_shape). A NaN
// score ranks below every number. Throws fcabert::Error on n < 1, k < 1, C < 0, or a null
// `scores` when the layer reduces.
void plan_reduction(const double* scores, int64_t n, int64_t k, int64_t clusters, ReductionPlan& out);
ReductionPlan plan_reduction(const double* scores, int64_t n, int64_t k, int64_t clusters);

// Writes the plan's rows_out() rows to out[rows_out, d]: the fine rows in order, then one
// row per group, sum_j w_j in[j]. Weighted: w = softmax of the group's scores (max
// subtracted, in double); mean: the members' sum times 1/|group|. `in` is [rows_in, d].
// `in` and `out` must not overlap (throws fcabert::Error if they do): write the reduced
// sequence into the next packed buffer. `scores` may be nullptr for mean pooling or when no
// clusters are made.
void apply_reduction(const ReductionPlan& plan, const double* scores, const float* in, int64_t d,
                     Pooling pooling, float* out);

// The weights apply_reduction gives the members of group `group` (group_size values, in
// member order), for tests and --explain.
void cluster_weights(const ReductionPlan& plan, const double* scores, Pooling pooling, int64_t group,
                     double* weights);

// The identities 0..n0-1 of a sequence before the first layer.
std::vector<RowIdentity> initial_identities(int64_t original_length);

// The identities after applying `plan` at `layer`: fine rows keep theirs, the clusters are
// "c<layer>.<group>". `identities` must have plan.rows_in() entries (throws otherwise).
std::vector<RowIdentity> map_identities(const ReductionPlan& plan, int64_t layer,
                                        const std::vector<RowIdentity>& identities);

}  // namespace fcabert::fca
