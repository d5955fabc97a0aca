#pragma once
// Everything one forward pass writes, owned by a Session (docs/ARCHITECTURE.md: each stage owns its
// buffers; the Model stays immutable). Buffers are grow-only: reserve() sizes them for a
// batch and later batches of the same or smaller size reuse them without allocating.
#include <cstddef>
#include <cstdint>
#include <oneapi/dnnl/dnnl.hpp>
#include <vector>

#include "fca/reduction.h"
#include "kernels/attention.h"
#include "kernels/grow_buffer.h"
#include "kernels/linear.h"
#include "model/packed_batch.h"

namespace fcabert::model {

// The model-dependent sizes a Workspace needs.
struct WorkspaceSpec {
  int64_t hidden = 0;
  int64_t intermediate = 0;
  int64_t num_heads = 0;
  int64_t num_labels = 0;
  int64_t num_layers = 0;
  int threads = 1;
  size_t dnnl_scratchpad_bytes = 0;  // the largest any of the model's primitives asks for
  // The encoder GEMMs' arithmetic: bf16 and int8 convert each GEMM input (matmul_buffers).
  Precision matmul_precision = Precision::kFp32;
  // Bytes per row of the largest converted GEMM input (LayerPrecisions).
  int64_t converted_input_bytes_per_row = 0;
  // Whether a GEMM quantizes per row (LayerPrecisions::per_row_int8): its row scales and s32
  // products, of at most `hidden` per row, need room (matmul_buffers).
  bool per_row_int8 = false;
};

// What the FCA step needs besides the dense buffers (reserved only when a run uses FCA, so
// a dense Session never pays for it), and the per-run record the traces are built from.
struct FcaScratch {
  // Rows of sequence s in the current layer: [offsets[s], offsets[s + 1]). Starts as the
  // packed batch's offsets and shrinks as layers reduce; next_offsets is the reduction's
  // output layout.
  std::vector<int64_t> offsets, next_offsets;
  // shapes[l * B + s]: what layer l did to sequence s (filled for every run, dense too).
  std::vector<fca::ReductionShape> shapes;
  // One reusable plan per thread of the per-sequence reduction loop.
  std::vector<fca::ReductionPlan> plans;
  // Only with explain: the identities of sequence s's current rows, and kept[s][l].
  std::vector<std::vector<fca::RowIdentity>> identities;
  std::vector<std::vector<std::vector<fca::RowIdentity>>> kept;

  double* column_sums() { return column_sums_.data(); }  // [H * T] per sequence [head][row]
  double* diagonal() { return diagonal_.data(); }        // [H * T]
  double* scores() { return scores_.data(); }            // [T]   s_j of the current rows
  float* hidden() { return hidden_.data(); }             // [T, d] the reduction's output

  // Room for a batch of `tokens` tokens in `sequences` sequences, the longest `longest`.
  void reserve(const WorkspaceSpec& spec, int64_t tokens, int64_t sequences, int64_t longest);
  size_t reserved_bytes() const;

 private:
  kernels::GrowBuffer<double> column_sums_, diagonal_, scores_;
  kernels::GrowBuffer<float> hidden_;
  int64_t plan_rows_ = 0;
};

class Workspace {
 public:
  Workspace(const dnnl::engine& engine, const WorkspaceSpec& spec);

  // Grows the buffers to hold a batch of `tokens` tokens in `sequences` sequences, the
  // longest `longest` tokens long; with `fca`, the FCA scratch too. Never shrinks.
  void reserve(int64_t tokens, int64_t sequences, int64_t longest, bool fca = false);

  PackedBatch batch;    // the current input, packed
  dnnl::stream stream;  // this Session's oneDNN stream
  kernels::AttentionScratch attention;
  FcaScratch fca;

  float* hidden() { return hidden_.data(); }              // [T, d]   the hidden states
  float* qkv() { return qkv_.data(); }                    // [T, 3d]  fused Q|K|V
  float* context() { return context_.data(); }            // [T, d]   attention context
  float* intermediate() { return intermediate_.data(); }  // [T, f]   FFN activations
  float* cls() { return cls_.data(); }                    // [B, d]   [CLS] rows
  float* pooled() { return pooled_.data(); }              // [B, d]   pooler output
  float* logits() { return logits_.data(); }              // [B, labels]
  void* dnnl_scratchpad() { return dnnl_scratchpad_.data(); }
  // Where a bf16 or int8 GEMM converts its input (T rows of converted_input_bytes_per_row)
  // and keeps its per-call, per-feature terms (int8: kernels::per_feature_floats of max(3d, f)),
  // and where the last rows of a call run padded (kernels::tail_buffer_bytes of the largest
  // sizes), and with spec().per_row_int8 the row scales and [T, d] s32 products; null
  // pointers for fp32.
  kernels::MatmulBuffers matmul_buffers() {
    return {matmul_input_.data(), matmul_per_feature_.data(), matmul_tail_.data(),
            matmul_row_quantization_.data(), matmul_products_.data()};
  }

  const WorkspaceSpec& spec() const { return spec_; }
  size_t reserved_bytes() const;

 private:
  WorkspaceSpec spec_;
  kernels::GrowBuffer<float> hidden_, qkv_, context_, intermediate_, cls_, pooled_, logits_;
  kernels::GrowBuffer<unsigned char> dnnl_scratchpad_;
  kernels::GrowBuffer<unsigned char> matmul_input_;
  kernels::GrowBuffer<float> matmul_per_feature_;
  kernels::GrowBuffer<unsigned char> matmul_tail_;
  kernels::GrowBuffer<kernels::QuantizedU8> matmul_row_quantization_;
  kernels::GrowBuffer<int32_t> matmul_products_;
};

}  // namespace fcabert::model
