#pragma once
// The one place that talks to oneDNN: a fully connected layer y = x W^T + b over a runtime
// number of rows, as one matmul primitive created once (DESIGN §3: creating a primitive
// costs more than a short GEMM, and FCA changes the row count every layer).
#include <cstddef>
#include <cstdint>
#include <oneapi/dnnl/dnnl.hpp>

namespace fcabert::kernels {

// What the primitive does after x W^T + b, fused so the output is written once.
enum class Epilogue {
  kNone,        // y = x W^T + b
  kGeluErf,     // y = GELU_erf(x W^T + b)            (BERT's intermediate layer)
  kAccumulate,  // y = y + x W^T + b                  (a residual already in y)
};

// The arithmetic of the product. Inputs and outputs are fp32 either way; the bias, the
// epilogue and the accumulation are always fp32.
enum class MatmulPrecision {
  kFp32,  // fp32 x fp32
  kBf16,  // x rounded to bf16 (into a caller buffer) x W stored as bf16, fp32 accumulation
};

// How many Linear::forward calls are inside oneDNN right now (creating the memory handles or
// executing), over all threads. For diagnostics only: `fcabert bench` attributes the heap
// allocations made while this is non-zero to oneDNN.
int onednn_calls_in_flight();

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
         int64_t out_features, Epilogue epilogue = Epilogue::kNone,
         MatmulPrecision precision = MatmulPrecision::kFp32);

  // y[rows, out] from x[rows, in]; both row-major and contiguous, not overlapping.
  // `stream` must belong to the engine given to the constructor (oneDNN refuses others).
  // `scratchpad` must hold scratchpad_bytes() (it may be null when that is 0). With kBf16,
  // `x_bf16` must hold rows * in_features() bf16 values: x is converted into it first (it
  // is ignored for kFp32; a null one throws fcabert::Error for kBf16). Safe to call
  // concurrently from several threads as long as each passes its own stream and buffers.
  void forward(dnnl::stream& stream, const float* x, int64_t rows, float* y, void* scratchpad,
               uint16_t* x_bf16 = nullptr) const;

  int64_t in_features() const { return in_features_; }
  int64_t out_features() const { return out_features_; }
  Epilogue epilogue() const { return epilogue_; }
  MatmulPrecision precision() const { return precision_; }
  size_t scratchpad_bytes() const { return scratchpad_desc_.get_size(); }
  // Bytes of the weights as stored for the primitive (bf16: half of fp32).
  size_t weight_bytes() const { return weights_.get_desc().get_size(); }
  // The oneDNN implementation chosen (e.g. "gemm:jit"), for logs and benchmarks.
  const char* implementation() const;

 private:
  int64_t in_features_;
  int64_t out_features_;
  Epilogue epilogue_;
  MatmulPrecision precision_;
  dnnl::engine engine_;
  dnnl::matmul::primitive_desc primitive_desc_;
  dnnl::matmul primitive_;
  dnnl::memory weights_;
  dnnl::memory bias_;
  dnnl::memory::desc scratchpad_desc_;
};

}  // namespace fcabert::kernels
