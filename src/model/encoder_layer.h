#pragma once
// One post-LN BERT encoder layer, split into its two sub-layers so that FCA token reduction
// (docs/FCA.md) can run between them:
//   attention_block:    x = LayerNorm(x + SelfAttention(x) W_o^T + b_o)
//   [FCA: shrink each sequence's rows of x]
//   feed_forward_block: x = LayerNorm(x + GELU(x W_i^T + b_i) W_2^T + b_2)
#include <cstdint>
#include <oneapi/dnnl/dnnl.hpp>
#include <string>
#include <vector>

#include "fcabert/config.h"
#include "kernels/attention.h"
#include "kernels/linear.h"
#include "model/bindings.h"
#include "model/weights.h"
#include "model/workspace.h"

namespace fcabert::model {

// How an int8 model runs its FFN down-projection, the GEMM whose input carries BERT's
// outliers (LayerPrecisions::for_model has the measurements).
enum class Int8DownProjection {
  kPerRowInt8,  // int8 with one input scale per token (kernels::Int8Scales::kPerRow)
  kBf16,
};

// The arithmetic of each of a layer's four GEMMs and of its attention products.
struct LayerPrecisions {
  Precision qkv = Precision::kFp32;
  Precision attention_output = Precision::kFp32;
  Precision intermediate = Precision::kFp32;
  Precision output = Precision::kFp32;
  // How `output` quantizes its input when it is kInt8 (the other int8 GEMMs: per call).
  kernels::Int8Scales output_int8_scales = kernels::Int8Scales::kPerCall;
  kernels::AttentionArithmetic attention = kernels::AttentionArithmetic::kFp32;

  // The model-wide choice, GEMM by GEMM: every GEMM at `precision`, except that kInt8 runs
  // the FFN down-projection (`output`) as `down_projection` says (the engine passes
  // int8_down_projection_here(); see the definition for why). bf16 and int8 multiply Q K^T
  // and P V in bf16 when `bf16_attention` (the engine passes
  // kernels::bf16_attention_supported(head size)); fp32 always in fp32.
  static LayerPrecisions for_model(Precision precision, Int8DownProjection down_projection,
                                   bool bf16_attention);

  // The engine's choice for this CPU: bf16 with AMX, per-row int8 elsewhere (see the
  // definition).
  static Int8DownProjection int8_down_projection_here();

  // Whether some GEMM quantizes per row, i.e. needs MatmulBuffers::row_quantization and
  // products (of at most the hidden size per row: only the down-projection does).
  bool per_row_int8() const {
    return output == Precision::kInt8 && output_int8_scales == kernels::Int8Scales::kPerRow;
  }

  // The largest converted input per row, in bytes, among the four GEMMs (bf16: 2 per
  // feature, int8: 1; 0 if all are fp32): what the Session's conversion buffer must hold.
  int64_t converted_input_bytes_per_row(const BertConfig& config) const;

  // "fp32", "bf16", or what differs from the first GEMM's arithmetic, e.g. "int8 (FFN
  // down-projection bf16, attention bf16)" or "bf16 (attention fp32)": for logs and reports.
  std::string describe() const;
};

class EncoderLayer {
 public:
  // Binds "<prefix>attention.self.{query,key,value}.", "<prefix>attention.output.dense.",
  // "<prefix>attention.output.LayerNorm.", "<prefix>intermediate.dense.",
  // "<prefix>output.dense." and "<prefix>output.LayerNorm." (prefix e.g.
  // "bert.encoder.layer.3.").
  // `precisions` are those of the four GEMMs and the attention products (the softmax,
  // LayerNorm and GELU stay fp32).
  EncoderLayer(const dnnl::engine& engine, const WeightSource& weights, const std::string& prefix,
               const BertConfig& config, const LayerPrecisions& precisions = {});

  // x[T, d] in place, sequences delimited by `offsets` (T = offsets.back()). `extras` asks the
  // attention kernel for per-token attention statistics (FCA scoring); none by default.
  // Both blocks add the wall time of their GEMMs to *linear_ms when it is given.
  void attention_block(const std::vector<int64_t>& offsets, float* x, Workspace& ws,
                       const kernels::AttentionExtras& extras = {}, double* linear_ms = nullptr) const;

  // x[rows, d] in place. Token-wise, so it needs no sequence boundaries.
  void feed_forward_block(int64_t rows, float* x, Workspace& ws, double* linear_ms = nullptr) const;

  size_t scratchpad_bytes() const;

 private:
  kernels::AttentionShape shape_;
  kernels::AttentionArithmetic attention_arithmetic_;
  kernels::Linear qkv_;          // [d] -> [3d], Q|K|V stacked
  kernels::Linear attn_output_;  // [d] -> [d], adds into the residual
  LayerNormWeights attn_norm_;
  kernels::Linear intermediate_;  // [d] -> [f], GELU fused
  kernels::Linear output_;        // [f] -> [d], adds into the residual
  LayerNormWeights output_norm_;
};

}  // namespace fcabert::model
