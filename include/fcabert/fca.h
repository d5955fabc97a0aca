#pragma once
// FCA token reduction (docs/FCA.md), what a user of the library sees: the keep-ratio
// schedule (parsing, checking, describing, JSON), the reduction decision as a function of
// the row counts (so token counts and FLOPs are known without running the model), and the
// row identities that SequenceTrace::kept reports. The hot path that scores, selects and
// pools the rows of one sequence is internal: src/fca/reduction.h.
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

}  // namespace fcabert::fca
