#include "model/encoder_layer.h"

#include <algorithm>
#include <chrono>
#include <string>
#include <vector>

namespace fcabert::model {

using kernels::Epilogue;

namespace {

// A bf16 down-projection reads the up-projection's GELU output in bf16, so a bf16 or int8
// up-projection writes it so: one conversion pass over the widest activations less, and half
// the bytes written and read.
kernels::Linear::Output intermediate_output(const LayerPrecisions& precisions) {
  const bool both_lower =
      precisions.output == Precision::kBf16 && precisions.intermediate != Precision::kFp32;
  return both_lower ? kernels::Linear::Output::kBf16 : kernels::Linear::Output::kFp32;
}

}  // namespace

LayerPrecisions LayerPrecisions::for_model(Precision precision, Int8DownProjection down_projection,
                                           bool bf16_attention) {
  LayerPrecisions p{precision,
                    precision,
                    precision,
                    precision,
                    kernels::Int8Scales::kPerCall,
                    kernels::AttentionArithmetic::kFp32};
  // int8 quantizes each GEMM input with one scale per call, so a few large values anywhere
  // in the batch coarsen the steps for every token. The FFN down-projection's input (the
  // GELU output, 4d wide) is where BERT's outlier features are largest (Bondarenko et al.,
  // EMNLP 2021); it is also the costliest input to quantize. Measured on 2,000 SST-2 train
  // sentences against fp32 (2026-11-30): label agreement 98.95% with all four GEMMs in int8
  // per call, 99.35% with this one in fp32. Two ways out (docs/PERF.md):
  // - bf16 keeps the outliers (8 exponent bits); on AMX it runs this third of the encoder's
  //   FLOPs at 2512 GFLOP/s (Intel Xeon, 2026-12-04).
  // - int8 with one scale per token (kPerRow) confines an outlier token's coarse steps to
  //   that token and runs at int8's rate. On an AMD EPYC Zen 4 (2026-12-04) int8 matmuls
  //   peak at 1.9x bf16 there; against the bf16 down-projection, label agreement with fp32
  //   was 99.35% vs 99.25% on 2,000 SST-2 train sentences (98.51% vs 98.97% on dev), and a
  //   dense int8 pass took 0.86x the time at batch 1 and at batch 32.
  if (precision == Precision::kInt8) {
    switch (down_projection) {
      case Int8DownProjection::kPerRowInt8:
        p.output_int8_scales = kernels::Int8Scales::kPerRow;
        break;
      case Int8DownProjection::kBf16:
        p.output = Precision::kBf16;
        break;
    }
  }
  // Q K^T and P V are 14% of MiniLM's FLOPs on 128-512-token inputs, but in the fp32 kernel
  // they took 47% of a dense int8 pass there (Intel Xeon with AMX); on AMX tiles in bf16
  // they cost little (docs/PERF.md). Their inputs are rounded as the bf16 GEMMs round theirs.
  if (precision != Precision::kFp32 && bf16_attention) p.attention = kernels::AttentionArithmetic::kBf16;
  return p;
}

Int8DownProjection LayerPrecisions::int8_down_projection_here() {
  // AMX multiplies bf16 at 2512 GFLOP/s (Intel Xeon, 2026-12-04), where the bf16
  // down-projection was measured and kept; per-row int8 was measured on an AMD EPYC Zen 4
  // only (docs/PERF.md).
  return dnnl::get_effective_cpu_isa() == dnnl::cpu_isa::avx512_core_amx ? Int8DownProjection::kBf16
                                                                         : Int8DownProjection::kPerRowInt8;
}

int64_t LayerPrecisions::converted_input_bytes_per_row(const BertConfig& config) const {
  const auto bytes = [](Precision p, int64_t features) {
    return static_cast<int64_t>(kernels::converted_input_bytes(p)) * features;
  };
  // Q|K|V, the attention output and the up-projection read d features; the down-projection f.
  return std::max({bytes(qkv, config.hidden_size), bytes(attention_output, config.hidden_size),
                   bytes(intermediate, config.hidden_size), bytes(output, config.intermediate_size)});
}

std::string LayerPrecisions::describe() const {
  std::vector<std::string> differences;
  if (attention_output != qkv || intermediate != qkv) {
    differences.push_back(std::string("attention output ") + precision_name(attention_output) + ", FFN " +
                          precision_name(intermediate) + " / " + precision_name(output));
  } else if (output != qkv) {
    differences.push_back(std::string("FFN down-projection ") + precision_name(output));
  } else if (per_row_int8()) {
    differences.push_back("FFN down-projection int8 per row");
  }
  const Precision products =
      attention == kernels::AttentionArithmetic::kBf16 ? Precision::kBf16 : Precision::kFp32;
  if (products != qkv) differences.push_back(std::string("attention ") + precision_name(products));
  std::string text = precision_name(qkv);
  for (size_t i = 0; i < differences.size(); ++i) text += (i == 0 ? " (" : ", ") + differences[i];
  return differences.empty() ? text : text + ")";
}

EncoderLayer::EncoderLayer(const dnnl::engine& engine, const WeightSource& weights, const std::string& prefix,
                           const BertConfig& config, const LayerPrecisions& precisions)
    : shape_{config.num_heads, config.hidden_size / config.num_heads},
      attention_arithmetic_(precisions.attention),
      qkv_(bind_stacked_linear(engine, weights,
                               {prefix + "attention.self.query.", prefix + "attention.self.key.",
                                prefix + "attention.self.value."},
                               config.hidden_size, config.hidden_size, precisions.qkv)),
      attn_output_(bind_linear(engine, weights, prefix + "attention.output.dense.", config.hidden_size,
                               config.hidden_size, Epilogue::kAccumulate, precisions.attention_output)),
      attn_norm_(bind_layer_norm(weights, prefix + "attention.output.LayerNorm.", config.hidden_size,
                                 config.layer_norm_eps)),
      intermediate_(bind_linear(engine, weights, prefix + "intermediate.dense.", config.hidden_size,
                                config.intermediate_size, Epilogue::kGeluErf, precisions.intermediate,
                                intermediate_output(precisions))),
      output_(bind_linear(engine, weights, prefix + "output.dense.", config.intermediate_size,
                          config.hidden_size, Epilogue::kAccumulate, precisions.output,
                          kernels::Linear::Output::kFp32, precisions.output_int8_scales)),
      output_norm_(bind_layer_norm(weights, prefix + "output.LayerNorm.", config.hidden_size,
                                   config.layer_norm_eps)) {}

namespace {

// Runs `gemm`, adding its wall time to *total_ms when timing (total_ms not null). The oneDNN
// stream is synchronous on the CPU, so the call's wall time is the GEMM's.
template <class Gemm>
void timed(double* total_ms, Gemm&& gemm) {
  if (total_ms == nullptr) {
    gemm();
    return;
  }
  const auto start = std::chrono::steady_clock::now();
  gemm();
  *total_ms += std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
}

}  // namespace

void EncoderLayer::attention_block(const std::vector<int64_t>& offsets, float* x, Workspace& ws,
                                   const kernels::AttentionExtras& extras, double* linear_ms) const {
  const int64_t rows = offsets.empty() ? 0 : offsets.back();
  void* scratchpad = ws.dnnl_scratchpad();
  const kernels::MatmulBuffers buffers = ws.matmul_buffers();  // used unless the model runs fp32
  timed(linear_ms, [&] { qkv_.forward(ws.stream, x, rows, ws.qkv(), scratchpad, buffers); });
  kernels::multi_head_attention(ws.qkv(), offsets, shape_, ws.context(), ws.attention, extras,
                                attention_arithmetic_);
  // x still holds the layer input, so the output projection adds straight into it: x is
  // now context W_o^T + b_o + x, the residual sum, without a separate pass.
  timed(linear_ms, [&] { attn_output_.forward(ws.stream, ws.context(), rows, x, scratchpad, buffers); });
  attn_norm_.apply(x, rows);
}

void EncoderLayer::feed_forward_block(int64_t rows, float* x, Workspace& ws, double* linear_ms) const {
  void* scratchpad = ws.dnnl_scratchpad();
  const kernels::MatmulBuffers buffers = ws.matmul_buffers();
  timed(linear_ms, [&] {
    if (intermediate_.output() == kernels::Linear::Output::kBf16) {
      // The [T, f] float buffer holds the bf16 activations in its first half.
      auto* activations = reinterpret_cast<uint16_t*>(ws.intermediate());
      intermediate_.forward_to_bf16(ws.stream, x, rows, activations, scratchpad, buffers);
      output_.forward_from_bf16(ws.stream, activations, rows, x, scratchpad, buffers);  // adds the residual
      return;
    }
    intermediate_.forward(ws.stream, x, rows, ws.intermediate(), scratchpad, buffers);
    output_.forward(ws.stream, ws.intermediate(), rows, x, scratchpad, buffers);  // adds the residual
  });
  output_norm_.apply(x, rows);
}

size_t EncoderLayer::scratchpad_bytes() const {
  return std::max({qkv_.scratchpad_bytes(), attn_output_.scratchpad_bytes(), intermediate_.scratchpad_bytes(),
                   output_.scratchpad_bytes()});
}

}  // namespace fcabert::model
