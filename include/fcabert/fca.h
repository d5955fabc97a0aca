#pragma once
// FCA token reduction (docs/FCA.md): the schedule, the token scores, the choice of
// fine rows and coarse groups, the cluster pooling and the row identities for --explain.
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
#include <nlohmann/json_fwd.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "fcabert/config.h"

namespace fcabert::fca {

// ---------------------------------------------------------------------------------------
// Schedule

// "weighted" / "mean" -> Pooling; anything else throws fcabert::Error naming the value.
Pooling parse_pooling(std::string_view name);
const char* pooling_name(Pooling pooling);  // "weighted" or "mean"

// A schedule from command-line style text: `keep_ratios_csv` is comma-separated decimal
// numbers, one per layer (spaces around them allowed), e.g. "1,0.9,0.8,0.7". Checks each
// ratio is in (0, 1] and the ratios do not increase, clusters >= 0 and the pooling name.
// The layer count is checked by validate_schedule (the caller knows the model). An empty
// list is an error (use --dense to turn FCA off). Throws fcabert::Error.
FcaSchedule parse_schedule(std::string_view keep_ratios_csv, int64_t clusters, std::string_view pooling);

// "dense" or "keep 1,0.9,... C=4 weighted", for logs and reports.
std::string describe_schedule(const FcaSchedule& schedule);

// {"description", "keep_ratios", "clusters", "pooling"}, as reports record a schedule; and
// back (throws fcabert::Error for a malformed object). Needs <nlohmann/json.hpp> at the call.
nlohmann::ordered_json schedule_to_json(const FcaSchedule& schedule);
FcaSchedule schedule_from_json(const nlohmann::ordered_json& json);

// Checks a schedule against a model with `num_layers` layers: none (dense) or exactly one
// keep ratio per layer, each in (0, 1], non-increasing, clusters >= 0. Layers are named
// 0-based in messages. Throws fcabert::Error.
void validate_schedule(const FcaSchedule& schedule, int64_t num_layers);

// k_l = max(1, ceil(ratio * original_length - 1e-9)) in double precision (docs/FCA.md §2).
// Pass the ratio as the double it was parsed as: a float-rounded 0.3 (0.30000001192...)
// times 10 gives 4, not 3.
int64_t keep_count(double ratio, int64_t original_length);

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

// ---------------------------------------------------------------------------------------
// The reduction decision (docs/FCA.md §3) as a pure function of the row counts, so token
// counts (and FLOPs) can be predicted without running the model.
struct ReductionShape {
  int64_t rows_in = 0;      // n
  int64_t keep = 0;         // k_l as requested (may exceed n)
  bool reduce = false;      // m > C (C > 0) or m > 0 (C = 0)
  int64_t fine = 0;         // rows kept as they are: k when reducing, else n
  int64_t coarse = 0;       // m = n - k rows pooled or dropped when reducing, else 0
  int64_t clusters = 0;     // c = min(C, m) rows made when reducing, else 0
  int64_t pooled_rows = 0;  // rows averaged into clusters: m when reducing with C > 0, else 0
  int64_t rows_out = 0;     // n' = fine + clusters
};
ReductionShape reduction_shape(int64_t n, int64_t keep, int64_t clusters);

// The row counts of every layer for a sequence of `original_length` tokens (dense
// schedules: no reduction anywhere). Throws if the schedule does not fit num_layers.
std::vector<ReductionShape> schedule_shapes(const FcaSchedule& schedule, int64_t num_layers,
                                            int64_t original_length);

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

// ---------------------------------------------------------------------------------------
// Row identities (docs/FCA.md "Row identities"), for --explain and the parity tests.
struct RowIdentity {
  int32_t position = 0;  // original token position 0..n0-1 (when not a cluster)
  int32_t layer = -1;    // >= 0: a cluster made at this layer (0-based)
  int32_t group = 0;     //       from this group (0-based)

  static RowIdentity token(int64_t position);
  static RowIdentity cluster(int64_t layer, int64_t group);
  bool is_cluster() const { return layer >= 0; }
  std::string to_string() const;  // "17" or "c0.1"
  friend bool operator==(const RowIdentity& a, const RowIdentity& b) {
    return a.is_cluster() == b.is_cluster() &&
           (a.is_cluster() ? a.layer == b.layer && a.group == b.group : a.position == b.position);
  }
  friend bool operator!=(const RowIdentity& a, const RowIdentity& b) { return !(a == b); }
};

// 17 (a JSON number) or "c0.1" (a JSON string). Needs <nlohmann/json.hpp> at the call site.
nlohmann::ordered_json to_json_value(const RowIdentity& identity);

// The identities 0..n0-1 of a sequence before the first layer.
std::vector<RowIdentity> initial_identities(int64_t original_length);

// The identities after applying `plan` at `layer`: fine rows keep theirs, the clusters are
// "c<layer>.<group>". `identities` must have plan.rows_in() entries (throws otherwise).
std::vector<RowIdentity> map_identities(const ReductionPlan& plan, int64_t layer,
                                        const std::vector<RowIdentity>& identities);

}  // namespace fcabert::fca
