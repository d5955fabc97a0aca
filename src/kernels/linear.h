#pragma once
// The one place that talks to oneDNN: a fully connected layer y = x W^T + b over a runtime
// number of rows, as one matmul primitive created once (docs/ARCHITECTURE.md: creating a primitive
// costs more than a short GEMM, and FCA changes the row count every layer).
#include <cstddef>
#include <cstdint>
#include <oneapi/dnnl/dnnl.hpp>
#include <vector>

#include "fcabert/precision.h"

namespace fcabert::kernels {

// What the primitive does after x W^T + b, fused so the output is written once.
enum class Epilogue {
  kNone,        // y = x W^T + b
  kGeluErf,     // y = GELU_erf(x W^T + b)            (BERT's intermediate layer)
  kAccumulate,  // y = y + x W^T + b                  (a residual already in y)
};

// The arithmetic of the product (fcabert::Precision). Inputs and outputs are fp32 either
// way; the bias and the epilogue are always fp32.
// - kFp32: fp32 x fp32.
// - kBf16: x rounded to bf16 (into a caller buffer) x W stored as bf16, fp32 accumulation.
// - kInt8: dynamic quantization. W as s8 with one scale per output feature (symmetric, once
//   at load); x as u8 with one scale and zero point per call (asymmetric over the whole
//   input, into a caller buffer); s32 accumulation, scaled back to fp32 before bias and
//   epilogue.

// Bytes per input element a Linear of `precision` converts x into (0 for fp32: no copy).
size_t converted_input_bytes(Precision precision);

// Whether oneDNN multiplies bf16 natively on this CPU (AVX512_BF16 or AMX). Without it
// oneDNN emulates bf16 with fp32 instructions plus conversions, slower than fp32 itself.
bool native_bf16_matmul();

// Whether bf16 matmuls are known to outrun fp32 here: AMX, or AVX512_BF16 on an AMD CPU.
// Native is not enough: oneDNN 2.6's matmul peaked at 849 GFLOP/s in bf16 against 429 in fp32
// on an AMD EPYC Zen 5, but at 156 against 264 on an Intel Xeon (Sapphire Rapids class) with
// AVX512_BF16 and no AMX (docs/PERF.md). Where this is false, int8 keeps its FFN
// down-projection in fp32 (LayerPrecisions::for_model).
bool bf16_outruns_fp32();

// The per-call buffers of a lower-precision Linear::forward, owned by the caller (a
// Session), so that the Linear itself stays immutable and shareable across threads.
struct MatmulBuffers {
  void* input = nullptr;           // rows * in_features * converted_input_bytes() bytes
  float* output_scales = nullptr;  // out_features floats (kInt8 only)
};

// One u8 quantization of an fp32 tensor: value ~= scale * (q - zero_point).
struct QuantizedU8 {
  float scale = 1.f;
  int32_t zero_point = 0;
};

// x[count] quantized to u8 over its own range (widened to include 0, so that 0 is exact),
// rounding to nearest (ties up). A NaN does not count towards the range and becomes 255 (the
// fp32 path would propagate it; the engine's inputs are finite embeddings); an infinity
// makes the scale infinite, so the GEMM's output turns non-finite rather than wrong. Parallel over the
// calling thread's OpenMP team for large counts.
QuantizedU8 quantize_u8(const float* x, int64_t count, uint8_t* out);

// x[count] rounded to nearest-even bf16 (the upper 16 bits of the fp32 pattern). Parallel
// over the calling thread's OpenMP team for large counts.
void to_bf16(const float* x, int64_t count, uint16_t* out);

class Linear {
 public:
  // `weight` is [out_features, in_features] row-major (the Hugging Face nn.Linear layout),
  // `bias` is [out_features]. Both are copied into oneDNN's preferred layout here, once
  // (with kBf16, the weights are rounded to bf16 by that same reorder).
  // Throws fcabert::Error if oneDNN has no implementation for the shapes.
  Linear(const dnnl::engine& engine, const float* weight, const float* bias, int64_t in_features,
         int64_t out_features, Epilogue epilogue = Epilogue::kNone, Precision precision = Precision::kFp32);

  // y[rows, out] from x[rows, in]; both row-major and contiguous, not overlapping.
  // `stream` must belong to the engine given to the constructor (oneDNN refuses others).
  // `scratchpad` must hold scratchpad_bytes() (it may be null when that is 0). With kBf16 or
  // kInt8, x is converted into `buffers` first (see MatmulBuffers; ignored for kFp32, and a
  // missing buffer throws fcabert::Error). Safe to call concurrently from several threads as
  // long as each passes its own stream and buffers.
  void forward(dnnl::stream& stream, const float* x, int64_t rows, float* y, void* scratchpad,
               const MatmulBuffers& buffers = {}) const;

  int64_t in_features() const { return in_features_; }
  int64_t out_features() const { return out_features_; }
  Epilogue epilogue() const { return epilogue_; }
  Precision precision() const { return precision_; }
  size_t scratchpad_bytes() const { return scratchpad_desc_.get_size(); }
  // Bytes of the weights as stored for the primitive (bf16: half of fp32; int8: a quarter,
  // plus whatever compensation oneDNN keeps with them).
  size_t weight_bytes() const { return weights_.get_desc().get_size(); }
  // The oneDNN implementation chosen (e.g. "gemm:jit"), for logs and benchmarks.
  const char* implementation() const;

 private:
  int64_t in_features_;
  int64_t out_features_;
  Epilogue epilogue_;
  Precision precision_;
  dnnl::engine engine_;
  dnnl::matmul::primitive_desc primitive_desc_;
  dnnl::matmul primitive_;
  dnnl::memory weights_;
  dnnl::memory bias_;
  std::vector<float> weight_scales_;  // kInt8: W[n, :] ~= weight_scales_[n] * Wq[n, :]
  dnnl::memory::desc scratchpad_desc_;
};

}  // namespace fcabert::kernels
