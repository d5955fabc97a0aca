#include "kernels/attention.h"

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <stdexcept>

#include "kernels/attention_amx.h"
#include "kernels/attention_head.h"
#include "kernels/softmax.h"
#include "kernels/vector_isa.h"

namespace fcabert::kernels {
namespace {

// Scores and context values are accumulated in blocks of kBlock floats held in registers
// (one AVX-512 register, two AVX2 ones) for kRows query rows at once: the rows share every
// key / value load, and their independent accumulators hide the FMA latency that a single
// dependent chain per block would expose.
constexpr int64_t kBlock = 16;
constexpr int64_t kRows = 4;

int64_t longest_sequence(const std::vector<int64_t>& offsets) {
  int64_t longest = 0;
  for (size_t s = 0; s + 1 < offsets.size(); ++s) longest = std::max(longest, offsets[s + 1] - offsets[s]);
  return longest;
}

// Floats one thread needs for sequences up to `max_length` tokens: K_h^T with its key
// dimension padded to whole blocks, and kRows rows of probabilities; rounded to whole cache
// lines so thread slots never share one.
size_t slot_floats(int64_t max_length, int64_t head_dim) {
  const int64_t stride = round_up(max_length, kBlock);
  const int64_t fp32 = (head_dim + kRows) * stride;
  const int64_t bf16 =
      amx::supports_head_dim(head_dim) ? static_cast<int64_t>(amx::work_floats(max_length, head_dim)) : 0;
  return static_cast<size_t>(round_up(std::max(fp32, bf16), 16));
}

// key_t[c * stride + j] = K_h[j, c], zero in the padding columns j >= length, so every
// score block can run full width.
// One output row per dimension c, written contiguously: the compiler turns the strided reads
// into gathers (AVX-512, AVX2). Key-major order (one key row at a time, scattered stores)
// compiled to a scalar load and store per element, 15% of attend_head (perf, Intel Xeon).
inline void transpose_keys(const HeadView& head, int64_t stride, float* key_t) {
  const float* keys = head.k;
  const int64_t key_stride = head.qkv_stride, length = head.length;
  for (int64_t c = 0; c < head.head_dim; ++c) {
    float* row = key_t + c * stride;
#pragma omp simd
    for (int64_t j = 0; j < length; ++j) row[j] = keys[j * key_stride + c];
    std::fill(row + length, row + stride, 0.f);
  }
}

// Scores for kRows query rows against the kWidth keys from j0: probs[r * stride + j0 + j] =
// scale * q_r . k_(j0 + j). kRows * kWidth / 16 accumulators stay in registers, each a chain
// of head_dim dependent FMAs.
template <int64_t kWidth>
inline void score_keys(const float* const* queries, const float* key_t, int64_t stride, int64_t head_dim,
                       float scale, int64_t j0, float* probs) {
  float acc[kRows][kWidth] = {};
  for (int64_t c = 0; c < head_dim; ++c) {
    const float* keys = key_t + c * stride + j0;
    for (int64_t r = 0; r < kRows; ++r) {
      const float qc = queries[r][c];
#pragma omp simd
      for (int64_t j = 0; j < kWidth; ++j) acc[r][j] += qc * keys[j];
    }
  }
  for (int64_t r = 0; r < kRows; ++r) {
#pragma omp simd
    for (int64_t j = 0; j < kWidth; ++j) probs[r * stride + j0 + j] = acc[r][j] * scale;
  }
}

// Scores for kRows query rows against every key (j < stride; the padding columns get 0,
// which attend_head replaces by -inf before the softmax). Two key blocks at a time give
// eight independent FMA chains, enough to keep both AVX-512 FMA ports busy; one block (four
// chains) left half of them idle, latency-bound (perf: the FMA loop was a third of
// attend_head on 335-token inputs, Intel Xeon).
inline void score_rows(const float* const* queries, const float* key_t, int64_t stride, int64_t head_dim,
                       float scale, float* probs) {
  int64_t j0 = 0;
  for (; j0 + 2 * kBlock <= stride; j0 += 2 * kBlock)
    score_keys<2 * kBlock>(queries, key_t, stride, head_dim, scale, j0, probs);
  if (j0 < stride) score_keys<kBlock>(queries, key_t, stride, head_dim, scale, j0, probs);
}

// outputs[r][c0 + c] = sum_j probs[r * stride + j] * v_j[c0 + c] for c < kWidth and the first
// `rows` of kRows rows.
template <int64_t kWidth>
inline void weigh_values(const float* probs, int64_t stride, const HeadView& head, int64_t c0,
                         float* const* outputs, int64_t rows) {
  float acc[kRows][kWidth] = {};
  for (int64_t j = 0; j < head.length; ++j) {
    const float* value = head.v + j * head.qkv_stride + c0;
    for (int64_t r = 0; r < kRows; ++r) {
      const float p = probs[r * stride + j];
#pragma omp simd
      for (int64_t c = 0; c < kWidth; ++c) acc[r][c] += p * value[c];
    }
  }
  for (int64_t r = 0; r < rows; ++r) std::copy(acc[r], acc[r] + kWidth, outputs[r] + c0);
}

// outputs[r] = sum_j probs[r * stride + j] * v_j for the first `rows` of kRows rows; two
// blocks of output columns at a time, for the same reason as score_rows.
inline void weighted_values(const float* probs, int64_t stride, const HeadView& head, float* const* outputs,
                            int64_t rows) {
  int64_t c0 = 0;
  for (; c0 + 2 * kBlock <= head.head_dim; c0 += 2 * kBlock)
    weigh_values<2 * kBlock>(probs, stride, head, c0, outputs, rows);
  if (c0 + kBlock <= head.head_dim) {
    weigh_values<kBlock>(probs, stride, head, c0, outputs, rows);
    c0 += kBlock;
  }
  if (c0 == head.head_dim) return;
  // Head sizes that are not a multiple of the block (none of the BERT sizes) take this path.
  for (int64_t r = 0; r < rows; ++r) {
    float* out = outputs[r];
    std::fill(out + c0, out + head.head_dim, 0.f);
    for (int64_t j = 0; j < head.length; ++j) {
      const float p = probs[r * stride + j];
      const float* value = head.v + j * head.qkv_stride;
      for (int64_t c = c0; c < head.head_dim; ++c) out[c] += p * value[c];
    }
  }
}

// The attention loop nest, compiled per ISA (kernels/vector_isa.h).
FCABERT_CLONE_FOR_AVX void attend_head(const HeadView& head, float* work) {
  const int64_t stride = round_up(head.length, kBlock);
  float* key_t = work;                           // [head_dim, stride]
  float* probs = work + head.head_dim * stride;  // [kRows, stride]
  const float scale = 1.f / std::sqrt(static_cast<float>(head.head_dim));
  transpose_keys(head, stride, key_t);
  if (head.column_sums) std::fill(head.column_sums, head.column_sums + head.length, 0.0);
  for (int64_t i0 = 0; i0 < head.length; i0 += kRows) {
    const int64_t rows = std::min(kRows, head.length - i0);
    // A short last block repeats its last query: the loops stay fixed-size and the extra
    // rows are simply not written out.
    const float* queries[kRows];
    float* outputs[kRows];
    for (int64_t r = 0; r < kRows; ++r) {
      const int64_t i = i0 + std::min(r, rows - 1);
      queries[r] = head.q + i * head.qkv_stride;
      outputs[r] = head.context + i * head.context_stride;
    }
    score_rows(queries, key_t, stride, head.head_dim, scale, probs);
    for (int64_t r = 0; r < rows; ++r) {
      // The padding columns take -inf (exp gives them 0), so that the softmax runs over whole
      // vector blocks: its scalar tail loop was about a fifth of attend_head at 25 tokens.
      float* row = probs + r * stride;
      std::fill(row + head.length, row + stride, -std::numeric_limits<float>::infinity());
      softmax_row(row, stride);
    }
    weighted_values(probs, stride, head, outputs, rows);
    if (!head.column_sums) continue;
    for (int64_t r = 0; r < rows; ++r) {
      const float* p = probs + r * stride;
#pragma omp simd
      for (int64_t j = 0; j < head.length; ++j) head.column_sums[j] += p[j];
      head.diagonal[i0 + r] = p[i0 + r];  // every row writes its own entry: no zeroing needed
    }
  }
}

}  // namespace

bool bf16_attention_supported(int64_t head_dim) {
  return amx::supports_head_dim(head_dim) && amx::available();
}

void AttentionScratch::reserve(int threads, int64_t max_length, int64_t head_dim) {
  threads_ = std::max(threads, 1);
  max_length_ = std::max(max_length_, max_length);
  head_dim_ = std::max(head_dim_, head_dim);
  slot_floats_ = slot_floats(max_length_, head_dim_);
  buffer_.reserve(slot_floats_ * static_cast<size_t>(threads_));
}

void multi_head_attention(const float* qkv, const std::vector<int64_t>& offsets, const AttentionShape& shape,
                          float* context, AttentionScratch& scratch, const AttentionExtras& extras,
                          AttentionArithmetic arithmetic) {
  if (offsets.size() < 2) return;
  if ((extras.column_sums == nullptr) != (extras.diagonal == nullptr)) {
    throw std::logic_error("multi_head_attention: column_sums and diagonal go together");
  }
  if (!scratch.fits(longest_sequence(offsets), shape.head_dim)) {
    throw std::logic_error("multi_head_attention: scratch not reserved for this batch");
  }
  const bool bf16 = arithmetic == AttentionArithmetic::kBf16;
  if (bf16 && !bf16_attention_supported(shape.head_dim)) {
    throw std::logic_error(
        "multi_head_attention: bf16 attention is not supported here (bf16_attention_supported)");
  }
  const int64_t hidden = shape.hidden();
  const int64_t num_sequences = static_cast<int64_t>(offsets.size()) - 1;
  const int64_t tasks = num_sequences * shape.num_heads;

  // Dynamic schedule: pairs differ in cost by length^2, so static chunks would leave threads
  // idle behind the longest sequence.
#pragma omp parallel for schedule(dynamic) num_threads(scratch.threads())
  for (int64_t task = 0; task < tasks; ++task) {
    const int64_t s = task / shape.num_heads;
    const int64_t h = task % shape.num_heads;
    const int64_t first = offsets[s];
    const int64_t length = offsets[s + 1] - first;
    const int64_t stats = shape.num_heads * first + h * length;  // this head's FCA block
    const float* row = qkv + first * 3 * hidden + h * shape.head_dim;
    HeadView head{row,
                  row + hidden,
                  row + 2 * hidden,
                  context + first * hidden + h * shape.head_dim,
                  3 * hidden,
                  hidden,
                  length,
                  shape.head_dim,
                  extras.column_sums ? extras.column_sums + stats : nullptr,
                  extras.diagonal ? extras.diagonal + stats : nullptr};
    float* work = scratch.slot(omp_get_thread_num());
    if (bf16) {
      amx::attend_head(head, work);
    } else {
      attend_head(head, work);
    }
  }
}

}  // namespace fcabert::kernels
