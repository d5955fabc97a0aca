#pragma once
// Multi-head self-attention on a packed ragged batch: each sequence attends only to its own
// tokens, so no padding and no mask are needed.
#include <cstdint>
#include <vector>

#include "kernels/grow_buffer.h"

namespace fcabert::kernels {

struct AttentionShape {
  int64_t num_heads = 0;
  int64_t head_dim = 0;
  int64_t hidden() const { return num_heads * head_dim; }
};

// How Q K^T and P V are multiplied. kFp32 is the exact kernel. kBf16 rounds Q, K, V and the
// probabilities to bf16 and multiplies them on AMX tiles with fp32 accumulation (the softmax
// and the FCA statistics stay fp32), for the engine's bf16 and int8 precisions: on an Intel
// Xeon with AMX it ran 1.6-1.9x (25 tokens) to 2.5-2.7x (512 tokens) faster than kFp32 (docs/PERF.md).
enum class AttentionArithmetic { kFp32, kBf16 };

// Whether kBf16 runs here for heads of `head_dim`: AMX on this CPU and in this process
// (oneDNN's ISA, which ONEDNN_MAX_CPU_ISA can cap) and a head size that is a multiple of 32.
bool bf16_attention_supported(int64_t head_dim);

// Per-thread work areas for the attention kernel (K^T of one head and one row of
// probabilities), owned by a Session and reused across batches.
class AttentionScratch {
 public:
  // Room for `threads` workers on sequences up to `max_length` tokens, in either arithmetic.
  void reserve(int threads, int64_t max_length, int64_t head_dim);
  bool fits(int64_t max_length, int64_t head_dim) const {
    return threads_ > 0 && max_length <= max_length_ && head_dim <= head_dim_;
  }
  int threads() const { return threads_; }
  float* slot(int thread) { return buffer_.data() + static_cast<size_t>(thread) * slot_floats_; }
  size_t bytes() const { return buffer_.bytes(); }

 private:
  GrowBuffer<float> buffer_;
  int threads_ = 0;
  int64_t max_length_ = 0;
  int64_t head_dim_ = 0;
  size_t slot_floats_ = 0;
};

// Extra outputs for FCA token scoring (docs/FCA.md), in the layout fca::scores_from_column_sums
// takes: sequence s owns the block of num_heads * n_s doubles starting at
// num_heads * offsets[s], laid out [head][token]. Accumulated in double as each probability
// row is produced (one add per probability), so the full [n, n] matrices are never stored.
// Nothing is computed when the pointers are null (the dense path).
struct AttentionExtras {
  double* column_sums = nullptr;  // [h][j] = sum over queries i of P_h[i, j]
  double* diagonal = nullptr;     // [h][j] = P_h[j, j]; set together with column_sums
};

// qkv is [T, 3 * hidden] with rows [Q | K | V] (the fused QKV projection's output); head h
// uses columns [h * head_dim, (h + 1) * head_dim) of each part. Sequence s owns rows
// [offsets[s], offsets[s + 1]). Writes context[T, hidden] = softmax(Q K^T / sqrt(head_dim)) V
// per sequence and head. Runs (sequence, head) pairs in parallel on scratch.threads()
// threads; `scratch` must fit the longest sequence, and kBf16 must be supported (throws
// std::logic_error otherwise).
void multi_head_attention(const float* qkv, const std::vector<int64_t>& offsets, const AttentionShape& shape,
                          float* context, AttentionScratch& scratch, const AttentionExtras& extras = {},
                          AttentionArithmetic arithmetic = AttentionArithmetic::kFp32);

}  // namespace fcabert::kernels
