#pragma once
// Model::load's answer to Precision::kAuto: time one encoder layer's four GEMMs in each
// precision this CPU runs natively and take the fastest, preferring the more exact one
// unless a less exact one is clearly faster (docs/PERF.md, "Choosing the precision").
#include "fcabert/config.h"
#include "fcabert/engine.h"

namespace fcabert::model {

// Rows of the timed GEMMs: about a batch of 32 short sentences (SST-2 dev averages 25
// tokens), where the engine spends its time on typical inputs.
inline constexpr int64_t kAutoRows = 256;
// A less exact precision must take at most this share of the more exact one's time to win:
// below a 10% gain the timing is within a shared machine's noise and not worth the accuracy.
inline constexpr double kAutoMargin = 0.9;

// The candidates for this CPU, most exact first: fp32; bf16 where oneDNN multiplies it
// natively (kernels::native_bf16_matmul); int8 always (oneDNN has u8 x s8 kernels on every
// x86-64 CPU it supports; whether they pay is what the timing tells).
std::vector<Precision> auto_candidates(bool native_bf16);

// The fastest of `timings` (most exact first) under kAutoMargin: a candidate replaces the
// current pick only when its time is at most kAutoMargin times the pick's.
Precision pick_fastest(const std::vector<PrecisionTiming>& timings);

// Resolves `requested` for `config` on this CPU, with the thread count the caller applied:
// kAuto is timed (about 30 ms for MiniLM); any other precision is taken as is. Fills every
// field but `arithmetic`, which Model::load takes from the network it builds. Throws
// fcabert::Error where oneDNN has no kernel for a candidate.
PrecisionChoice choose_precision(Precision requested, const BertConfig& config);

}  // namespace fcabert::model
