#pragma once
// The one place that talks to oneDNN: a fully connected layer y = x W^T + b over any number
// of rows. FCA changes the row count every layer, and creating a primitive costs more than a
// short GEMM (docs/ARCHITECTURE.md), so the primitives are made once: fp32 runs one runtime-row
// primitive; bf16 and int8 run fixed-shape ones (oneDNN 2.6's brgemm, up to 1.9x faster on
// few rows than its runtime-row gemm:jit) over chunks of the rows (see Linear::forward).
#include <cstddef>
#include <cstdint>
#include <memory>
#include <oneapi/dnnl/dnnl.hpp>
#include <vector>

#include "fcabert/precision.h"
#include "kernels/input_conversion.h"

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

// How an int8 Linear quantizes its input x.
// - kPerCall: one scale and zero point over the whole input of the call (the scheme above).
//   oneDNN applies scale, bias and epilogue inside the GEMM; a row's output depends on the
//   other rows of the call through the shared range.
// - kPerRow: one scale and zero point per row (token). The GEMM writes its s32 products and
//   one pass of ours turns them into fp32 with the row's and the feature's scales, the bias
//   and the residual (kNone or kAccumulate only). A row's output depends on that row alone,
//   and a token with large activations (BERT's outlier tokens feed the FFN down-projection,
//   Bondarenko et al., EMNLP 2021) coarsens only its own steps.
enum class Int8Scales { kPerCall, kPerRow };

// Bytes per input element a Linear of `precision` converts x into (0 for fp32: no copy).
size_t converted_input_bytes(Precision precision);

// Floats of per-call, per-output-feature terms a Linear of `precision` with `out_features`
// outputs needs in MatmulBuffers::per_feature (int8: its scales and its shifted biases; 0 else).
size_t per_feature_floats(Precision precision, int64_t out_features);

// Whether oneDNN multiplies bf16 natively on this CPU (AVX512_BF16 or AMX). Without it
// oneDNN emulates bf16 with fp32 instructions plus conversions, slower than fp32 itself.
bool native_bf16_matmul();

// The per-call buffers of a lower-precision Linear::forward, owned by the caller (a
// Session), so that the Linear itself stays immutable and shareable across threads.
struct MatmulBuffers {
  void* input = nullptr;         // rows * in_features * converted_input_bytes() bytes
  float* per_feature = nullptr;  // per_feature_floats(precision, out_features) floats (kInt8 only)
  // tail_buffer_bytes(in_features, out_features) bytes where the last rows of a fixed-shape
  // call run padded to a multiple of 8 (Linear::forward); null: they run on a primitive made
  // for their exact count.
  void* tail = nullptr;
  // kInt8 with Int8Scales::kPerRow only: `rows` quantization parameters and rows *
  // out_features s32 products.
  QuantizedU8* row_quantization = nullptr;
  int32_t* products = nullptr;
};

// Bytes of MatmulBuffers::tail for a Linear of these sizes (any precision and output).
size_t tail_buffer_bytes(int64_t in_features, int64_t out_features);

class Linear {
 public:
  // How the rows of a call reach oneDNN. kBest: fixed-shape primitives where oneDNN has a
  // brgemm for them (bf16, int8), else one runtime-row primitive. kRuntimeRows forces the
  // latter (tests and benchmarks compare the two).
  enum class RowPrimitives { kBest, kRuntimeRows };

  // What a call writes: fp32, or bf16 rows for a bf16 Linear to read next (forward_to_bf16,
  // then forward_from_bf16), which saves that Linear's own conversion pass over its input.
  // kBf16 needs a bf16 or int8 Linear without kAccumulate.
  enum class Output { kFp32, kBf16 };

  // `weight` is [out_features, in_features] row-major (the Hugging Face nn.Linear layout),
  // `bias` is [out_features]. Both are copied into oneDNN's preferred layout here, once
  // (with kBf16, the weights are rounded to bf16 by that same reorder).
  // Throws fcabert::Error if oneDNN has no implementation for the shapes.
  // `int8_scales` matters only for kInt8 (Int8Scales::kPerRow needs Output::kFp32 and an
  // epilogue other than kGeluErf; std::logic_error otherwise).
  Linear(const dnnl::engine& engine, const float* weight, const float* bias, int64_t in_features,
         int64_t out_features, Epilogue epilogue = Epilogue::kNone, Precision precision = Precision::kFp32,
         RowPrimitives rows = RowPrimitives::kBest, Output output = Output::kFp32,
         Int8Scales int8_scales = Int8Scales::kPerCall);
  ~Linear();
  Linear(Linear&&) noexcept;
  Linear& operator=(Linear&&) noexcept;

  // y[rows, out] from x[rows, in]; both row-major and contiguous, not overlapping.
  // `stream` must belong to the engine given to the constructor (oneDNN refuses others).
  // `scratchpad` must hold scratchpad_bytes() (it may be null when that is 0). With kBf16 or
  // kInt8, x is converted into `buffers` first (see MatmulBuffers; ignored for kFp32, and a
  // missing buffer throws fcabert::Error). Safe to call concurrently from several threads as
  // long as each passes its own stream and buffers.
  // With fixed-shape primitives the rows run in chunks of 256, 128, 64 and 32 rows (greedily);
  // the last < 32 rows, copied into MatmulBuffers::tail and padded with zero rows to a
  // multiple of 8, run on a primitive for 8, 16, 24 or 32 rows, and only their real rows are
  // copied out (without a tail buffer, on a primitive made for exactly their count). Each
  // primitive is created the first time its row count occurs (about 0.4 ms of JIT
  // compilation, shared by every Linear of the same shapes through oneDNN's primitive cache)
  // and kept: 7 row counts per shape instead of 35, which a short job paid for in JIT time.
  // A row's result does not depend on the other rows of its chunk (padding included).
  // Only for Output::kFp32 (std::logic_error otherwise).
  void forward(dnnl::stream& stream, const float* x, int64_t rows, float* y, void* scratchpad,
               const MatmulBuffers& buffers = {}) const;

  // forward for Output::kBf16: y[rows, out] in bf16 (rounded to nearest even by oneDNN).
  void forward_to_bf16(dnnl::stream& stream, const float* x, int64_t rows, uint16_t* y, void* scratchpad,
                       const MatmulBuffers& buffers = {}) const;

  // forward for a kBf16 Linear whose input is already bf16 (another Linear's forward_to_bf16):
  // no conversion, so of `buffers` only the tail is used.
  void forward_from_bf16(dnnl::stream& stream, const uint16_t* x, int64_t rows, float* y, void* scratchpad,
                         const MatmulBuffers& buffers = {}) const;

  int64_t in_features() const { return in_features_; }
  int64_t out_features() const { return out_features_; }
  Epilogue epilogue() const { return epilogue_; }
  Precision precision() const { return precision_; }
  Output output() const { return output_; }
  Int8Scales int8_scales() const { return int8_scales_; }
  size_t scratchpad_bytes() const { return scratchpad_desc_.get_size(); }
  // Bytes of the weights as stored for the primitive (bf16: about half of fp32; int8: about a
  // quarter), including the padding of oneDNN's blocked layout (brgemm rounds the feature
  // dims up to its blocks) and whatever compensation it keeps with them.
  size_t weight_bytes() const { return weights_.get_desc().get_size(); }
  // The oneDNN implementation chosen (e.g. "gemm:jit", "brg:avx512_core_vnni"), for logs and
  // benchmarks.
  const char* implementation() const;
  // Whether the rows run on fixed-shape primitives (see forward).
  bool fixed_shapes() const { return fixed_ != nullptr; }

 private:
  class FixedShapes;  // the fixed-shape primitives, by row count (linear.cpp)

  // The three forwards: x converted into `buffers` unless `converted` (already in the input
  // type) is given; y of the output type.
  void run(dnnl::stream& stream, const float* x, const void* converted, int64_t rows, void* y,
           void* scratchpad, const MatmulBuffers& buffers) const;
  void forward_runtime_rows(dnnl::stream& stream, const void* source, int64_t rows, void* y, void* scratchpad,
                            int32_t zero_point, const float* output_scales) const;
  void forward_fixed_shapes(dnnl::stream& stream, const void* source, int64_t rows, void* y, void* scratchpad,
                            const float* per_feature, void* tail) const;
  // kInt8 with fixed shapes: the call's per-feature scales and shifted biases (see linear.cpp).
  void int8_feature_terms(const QuantizedU8& quantized, float* per_feature) const;
  // Int8Scales::kPerRow: quantize x row by row, the bare product into buffers.products, then
  // dequantize_products into y.
  void run_per_row_int8(dnnl::stream& stream, const float* x, int64_t rows, void* y, void* scratchpad,
                        const MatmulBuffers& buffers) const;
  // Int8Scales::kPerRow: y from the s32 products (see Int8Scales).
  void dequantize_products(const MatmulBuffers& buffers, int64_t rows, float* y) const;
  bool per_row_int8() const;

  int64_t in_features_;
  int64_t out_features_;
  Epilogue epilogue_;
  Precision precision_;
  Output output_;
  Int8Scales int8_scales_;
  dnnl::engine engine_;
  dnnl::matmul::primitive_desc primitive_desc_;  // the runtime-row one, or the 256-row one
  dnnl::matmul primitive_;                       // runtime rows only
  std::unique_ptr<FixedShapes> fixed_;           // null: runtime rows
  dnnl::memory weights_;
  dnnl::memory bias_;
  std::vector<float> weight_scales_;      // kInt8: W[n, :] ~= weight_scales_[n] * Wq[n, :]
  std::vector<int32_t> weight_row_sums_;  // kInt8 with fixed shapes or per-row scales: sum_k Wq[n, k]
  dnnl::memory::desc scratchpad_desc_;    // the largest any of the primitives needs
};

}  // namespace fcabert::kernels
