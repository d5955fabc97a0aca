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

class Linear {
 public:
  // `weight` is [out_features, in_features] row-major (the Hugging Face nn.Linear layout),
  // `bias` is [out_features]. Both are copied into oneDNN's preferred layout here, once.
  // Throws fcabert::Error if oneDNN has no implementation for the shapes.
  Linear(const dnnl::engine& engine, const float* weight, const float* bias, int64_t in_features,
         int64_t out_features, Epilogue epilogue = Epilogue::kNone);

  // y[rows, out] from x[rows, in]; both row-major and contiguous, not overlapping.
  // `stream` must belong to the engine given to the constructor (oneDNN refuses others).
  // `scratchpad` must hold scratchpad_bytes() (it may be null when that is 0). Safe to call
  // concurrently from several threads as long as each passes its own stream and scratchpad.
  void forward(dnnl::stream& stream, const float* x, int64_t rows, float* y, void* scratchpad) const;

  int64_t in_features() const { return in_features_; }
  int64_t out_features() const { return out_features_; }
  Epilogue epilogue() const { return epilogue_; }
  size_t scratchpad_bytes() const { return scratchpad_desc_.get_size(); }
  // The oneDNN implementation chosen (e.g. "gemm:jit"), for logs and benchmarks.
  const char* implementation() const;

 private:
  int64_t in_features_;
  int64_t out_features_;
  Epilogue epilogue_;
  dnnl::engine engine_;
  dnnl::matmul::primitive_desc primitive_desc_;
  dnnl::matmul primitive_;
  dnnl::memory weights_;
  dnnl::memory bias_;
  dnnl::memory::desc scratchpad_desc_;
};

}  // namespace fcabert::kernels
