#include "kernels/linear.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstring>
#include <initializer_list>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>

#include "fcabert/error.h"
#include "kernels/parallel.h"
#include "kernels/vector_isa.h"

namespace fcabert::kernels {
namespace {

using dt = dnnl::memory::data_type;
using tag = dnnl::memory::format_tag;

dt input_type(Precision precision) {
  switch (precision) {
    case Precision::kBf16:
      return dt::bf16;
    case Precision::kInt8:
      return dt::u8;
    case Precision::kFp32:
    case Precision::kAuto:  // rejected by the constructor
      break;
  }
  return dt::f32;
}

dt weight_type(Precision precision) { return precision == Precision::kInt8 ? dt::s8 : input_type(precision); }

dt output_type(Linear::Output output) { return output == Linear::Output::kBf16 ? dt::bf16 : dt::f32; }

bool per_row_int8(Precision precision, Int8Scales scales) {
  return precision == Precision::kInt8 && scales == Int8Scales::kPerRow;
}

// What the primitive writes: the output itself, or for per-row int8 the s32 products.
dt product_type(Precision precision, Linear::Output output, Int8Scales scales) {
  return per_row_int8(precision, scales) ? dt::s32 : output_type(output);
}

// The index of the post-op that adds the bias after the int8 output scale (see
// runtime_rows_attr).
int bias_post_op(Epilogue epilogue) { return epilogue == Epilogue::kAccumulate ? 1 : 0; }

[[noreturn]] void throw_unsupported(Precision precision, int64_t in, int64_t out, const dnnl::error& e) {
  throw Error(std::string("oneDNN has no ") + precision_name(precision) + " matmul for " +
              std::to_string(in) + " -> " + std::to_string(out) + " features: " + e.what() +
              (precision != Precision::kFp32 ? " (use --precision fp32 on this CPU)" : ""));
}

// Each Session passes its own scratchpad, so Sessions on different threads can execute the
// same (shared, immutable) primitive at once.
dnnl::primitive_attr with_post_ops(const dnnl::post_ops& ops) {
  dnnl::primitive_attr attr;
  attr.set_post_ops(ops);
  attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
  return attr;
}

// A per-row int8 primitive (fixed or runtime rows) is the bare product: scales, bias and
// epilogue are applied by Linear::dequantize_products.
dnnl::matmul::primitive_desc bare_product_desc(const dnnl::engine& engine, const dnnl::memory::desc& src,
                                               const dnnl::memory::desc& weights, dnnl::memory::dim rows,
                                               int64_t out) {
  const dnnl::memory::desc products({rows, out}, dt::s32, tag::ab);
  return dnnl::matmul::primitive_desc(dnnl::matmul::desc(src, weights, products),
                                      with_post_ops(dnnl::post_ops()), engine);
}

// The runtime-row primitive's attributes.
dnnl::primitive_attr runtime_rows_attr(Epilogue epilogue, Precision precision, int64_t out) {
  dnnl::post_ops ops;
  // oneDNN's fast int8 GEMM takes `sum` only as the first post-op.
  if (epilogue == Epilogue::kAccumulate) ops.append_sum(1.f);
  if (precision == Precision::kInt8) {
    // oneDNN 2.x adds a matmul's own bias before the output scale, i.e. in the s32 domain;
    // as a post-op the fp32 bias is added after it, to the real-valued product.
    ops.append_binary(dnnl::algorithm::binary_add, dnnl::memory::desc({1, out}, dt::f32, tag::ab));
  }
  if (epilogue == Epilogue::kGeluErf) ops.append_eltwise(1.f, dnnl::algorithm::eltwise_gelu_erf, 0.f, 0.f);
  dnnl::primitive_attr attr = with_post_ops(ops);
  if (precision == Precision::kInt8) {
    // The per-call scale (input scale x per-feature weight scale) is known only at run time.
    attr.set_output_scales(1 << 1, {DNNL_RUNTIME_F32_VAL});
    attr.set_zero_points(DNNL_ARG_SRC, 0, {DNNL_RUNTIME_S32_VAL});
  }
  return attr;
}

// The fixed-shape primitives' attributes. oneDNN 2.6 gives runtime output scales and zero
// points only to gemm:jit, so int8 takes neither: with the input as unshifted u8 codes q and
// acc = sum_k q_k Wq[n, k], the product is
//   a w_n (acc - z sum_k Wq[n, k]) + b_n = scale_n (acc + shift_n),
// scale_n = a w_n and shift_n = b_n / scale_n - z sum_k Wq[n, k]: the per-call shift goes in
// as the matmul's bias (added to acc before any post-op) and the per-call scale as one binary
// post-op. One per-feature binary instead of a multiply and an add: on an Intel Xeon with AMX
// the pair made a 256 x 384 -> 1536 brgemm take 2.3x its time with a plain bias, the single
// multiply 1.35x (docs/PERF.md). Runtime tensors rather than constant scales keep the
// primitive the same for every layer of one shape, so oneDNN's primitive cache compiles it
// once. The residual `sum` comes after the multiply: it must add the residual unscaled.
dnnl::primitive_attr fixed_shape_attr(Epilogue epilogue, Precision precision, int64_t out) {
  dnnl::post_ops ops;
  if (precision == Precision::kInt8)
    ops.append_binary(dnnl::algorithm::binary_mul, dnnl::memory::desc({1, out}, dt::f32, tag::ab));
  if (epilogue == Epilogue::kAccumulate) ops.append_sum(1.f);
  if (epilogue == Epilogue::kGeluErf) ops.append_eltwise(1.f, dnnl::algorithm::eltwise_gelu_erf, 0.f, 0.f);
  return with_post_ops(ops);
}

// The runtime-row int8 primitive adds the bias through a post-op (after its output scale);
// every other primitive takes the matmul's own.
dnnl::memory::desc runtime_rows_bias_desc(Precision precision, int64_t out) {
  return precision == Precision::kInt8 ? dnnl::memory::desc()
                                       : dnnl::memory::desc({1, out}, dt::f32, tag::ab);
}

dnnl::matmul::primitive_desc runtime_rows_desc(const dnnl::engine& engine, int64_t in, int64_t out,
                                               Epilogue epilogue, Precision precision, Linear::Output output,
                                               Int8Scales scales) {
  const dnnl::memory::dim rows = DNNL_RUNTIME_DIM_VAL;
  const dnnl::memory::desc src({rows, in}, input_type(precision), tag::ab);
  // `any` lets oneDNN pick the weight layout it runs fastest with; we reorder once at load.
  const dnnl::memory::desc weights({in, out}, weight_type(precision), tag::any);
  const dnnl::memory::desc dst({rows, out}, output_type(output), tag::ab);
  try {
    if (per_row_int8(precision, scales)) return bare_product_desc(engine, src, weights, rows, out);
    return dnnl::matmul::primitive_desc(
        dnnl::matmul::desc(src, weights, runtime_rows_bias_desc(precision, out), dst),
        runtime_rows_attr(epilogue, precision, out), engine);
  } catch (const dnnl::error& e) {
    throw_unsupported(precision, in, out, e);
  }
}

// Row counts of the fixed-shape primitives: a call's rows are cut greedily into chunks of
// these sizes (the first is the largest), and the last rows, fewer than the smallest, run
// padded to a multiple of kTailRowMultiple in a tail buffer (Linear::forward). Chunks of 256
// rows keep oneDNN's brgemm at its large-matrix rate (within 3% of 512 rows, measured on an
// AMD EPYC Zen 4); the smaller chunks and the padding bound the distinct shapes to 7 per
// Linear (35 when each tail count had its own primitive: 148 primitives and 63 ms of JIT
// compilation in a whole job of 872 SST-2 sentences with the FCA model in int8).
constexpr std::array<int64_t, 4> kChunkRows = {256, 128, 64, 32};
constexpr int64_t kTailRowMultiple = 8;

int64_t next_chunk_rows(int64_t remaining) {
  for (int64_t chunk : kChunkRows)
    if (remaining >= chunk) return chunk;
  return remaining;
}

// The fixed-shape primitive description for `rows` rows; `weights` is `any` for the first
// (which picks the layout) and that layout for all others.
dnnl::matmul::primitive_desc fixed_shape_desc(const dnnl::engine& engine, int64_t rows, int64_t in,
                                              int64_t out, const dnnl::memory::desc& weights,
                                              Epilogue epilogue, Precision precision, Linear::Output output,
                                              Int8Scales scales) {
  const dnnl::memory::desc src({rows, in}, input_type(precision), tag::ab);
  if (per_row_int8(precision, scales)) return bare_product_desc(engine, src, weights, rows, out);
  const dnnl::memory::desc bias({1, out}, dt::f32, tag::ab);
  const dnnl::memory::desc dst({rows, out}, output_type(output), tag::ab);
  return dnnl::matmul::primitive_desc(dnnl::matmul::desc(src, weights, bias, dst),
                                      fixed_shape_attr(epilogue, precision, out), engine);
}

// The largest chunk's description when oneDNN has a brgemm for it, else nothing (the Linear
// then runs on runtime rows: on a CPU without AVX-512, for example).
std::optional<dnnl::matmul::primitive_desc> brgemm_fixed_shape_desc(const dnnl::engine& engine, int64_t in,
                                                                    int64_t out, Epilogue epilogue,
                                                                    Precision precision,
                                                                    Linear::Output output,
                                                                    Int8Scales scales) {
  try {
    dnnl::matmul::primitive_desc pd = fixed_shape_desc(
        engine, kChunkRows.front(), in, out, dnnl::memory::desc({in, out}, weight_type(precision), tag::any),
        epilogue, precision, output, scales);
    if (std::strncmp(pd.impl_info_str(), "brg", 3) == 0) return pd;
  } catch (const dnnl::error&) {
    // No fixed-shape implementation at all: the runtime-row primitive decides.
  }
  return std::nullopt;
}

// Copies user data described by `from` into a new library-owned memory laid out as `to`
// (converting the data type when `to` has another one).
dnnl::memory reorder_into(const dnnl::engine& engine, const dnnl::memory::desc& from, const void* data,
                          const dnnl::memory::desc& to) {
  dnnl::memory source(from, engine, const_cast<void*>(data));  // read only: a reorder source
  dnnl::memory target(to, engine);
  dnnl::stream stream(engine);
  dnnl::reorder(source, target).execute(stream, source, target);
  stream.wait();
  return target;
}

// The per-call descriptors and memory objects of Linear::forward go through oneDNN's C API:
// the C++ API would allocate on our side of every call, a std::vector for each descriptor's
// dims (dnnl::memory::desc) and a shared_ptr control block for each memory object
// (dnnl::memory is a dnnl::handle), 4 to 8 heap allocations per GEMM that oneDNN does not need.

// A dense row-major descriptor of 1 or 2 dims (format a or ab).
dnnl_memory_desc_t plain_desc(std::initializer_list<dnnl_dim_t> dims, dt type) {
  dnnl_dims_t c_dims = {};
  std::copy(dims.begin(), dims.end(), c_dims);
  dnnl_memory_desc_t desc;
  const int ndims = static_cast<int>(dims.size());
  dnnl::error::wrap_c_api(dnnl_memory_desc_init_by_tag(&desc, ndims, c_dims, dnnl::memory::convert_to_c(type),
                                                       ndims == 1 ? dnnl_a : dnnl_ab),
                          "could not describe a matmul argument");
  return desc;
}

// A oneDNN memory object around a caller's buffer, for the length of one call.
class CallMemory {
 public:
  CallMemory(const dnnl_memory_desc_t& desc, const dnnl::engine& engine, const void* data) {
    // const_cast: oneDNN takes every handle as void*; a matmul only reads its sources.
    dnnl::error::wrap_c_api(dnnl_memory_create(&memory_, &desc, engine.get(), const_cast<void*>(data)),
                            "could not create a matmul argument");
  }
  ~CallMemory() { dnnl_memory_destroy(memory_); }
  CallMemory(const CallMemory&) = delete;
  CallMemory& operator=(const CallMemory&) = delete;

  dnnl_memory_t get() const { return memory_; }

 private:
  dnnl_memory_t memory_ = nullptr;
};

// The two loops of quantize_weight_rows, compiled per ISA: in the baseline x86-64 build
// std::nearbyint is a libm call per element and the running maximum one dependent chain, which
// made the weight quantization most of an int8 model's load (perf, AMD EPYC Zen 4). Sixteen
// running maxima instead of one give the same maximum (max is order-free on these values).
FCABERT_CLONE_FOR_AVX float largest_magnitude(const float* row, int64_t in) {
  constexpr int64_t kLanes = 16;
  float lanes[kLanes] = {};
  int64_t k = 0;
  for (; k + kLanes <= in; k += kLanes)
    for (int64_t j = 0; j < kLanes; ++j) lanes[j] = std::max(lanes[j], std::fabs(row[k + j]));
  float largest = 0.f;
  for (; k < in; ++k) largest = std::max(largest, std::fabs(row[k]));
  for (float lane : lanes) largest = std::max(largest, lane);
  return largest;
}

FCABERT_CLONE_FOR_AVX void round_to_s8(const float* row, int64_t in, float inverse, int8_t* out) {
  for (int64_t k = 0; k < in; ++k) out[k] = static_cast<int8_t>(std::nearbyint(row[k] * inverse));
}

// W[out, in] as s8 rows with one symmetric scale per row (output feature): per-feature
// scales keep a feature with small weights from losing its precision to a large one.
std::vector<int8_t> quantize_weight_rows(const float* weight, int64_t in, int64_t out,
                                         std::vector<float>& scales) {
  std::vector<int8_t> q(static_cast<size_t>(in * out));
  scales.assign(static_cast<size_t>(out), 1.f);
  for (int64_t n = 0; n < out; ++n) {
    const float* row = weight + n * in;
    const float largest = largest_magnitude(row, in);
    // A largest value so small that its scale underflows to 0 keeps scale 1 (its row rounds
    // to 0) rather than an infinite inverse.
    if (largest / 127.f > 0.f) scales[n] = largest / 127.f;
    round_to_s8(row, in, 1.f / scales[n], q.data() + n * in);
  }
  return q;
}

// One row of Linear::dequantize_products: row[n] (+)= a w_n (acc[n] - z R_n) + b_n, with the
// row's scale a and zero point z, feature n's weight scale w_n and code sum R_n. The zero
// point's term in s32 (exact: |acc| and z R_n stay below 2^31 for in_features < 66,000), the
// rest in fp32. A separate function so that it is compiled per ISA (a lambda is not).
FCABERT_CLONE_FOR_AVX void dequantize_row(const int32_t* acc, QuantizedU8 q, const float* weight_scales,
                                          const int32_t* row_sums, const float* bias, int64_t out,
                                          bool accumulate, float* row) {
  const float a = q.scale;
  const int32_t z = q.zero_point;
  if (accumulate) {
#pragma omp simd
    for (int64_t n = 0; n < out; ++n)
      row[n] += a * weight_scales[n] * static_cast<float>(acc[n] - z * row_sums[n]) + bias[n];
  } else {
#pragma omp simd
    for (int64_t n = 0; n < out; ++n)
      row[n] = a * weight_scales[n] * static_cast<float>(acc[n] - z * row_sums[n]) + bias[n];
  }
}

}  // namespace

size_t converted_input_bytes(Precision precision) {
  switch (precision) {
    case Precision::kBf16:
      return sizeof(uint16_t);
    case Precision::kInt8:
      return sizeof(uint8_t);
    case Precision::kFp32:
    case Precision::kAuto:
      break;
  }
  return 0;
}

bool native_bf16_matmul() {
  switch (dnnl::get_effective_cpu_isa()) {
    case dnnl::cpu_isa::avx512_core_bf16:
    case dnnl::cpu_isa::avx512_core_amx:
      return true;
    default:
      return false;
  }
}

// The fixed-shape primitives of one Linear, created on first use of each row count and kept.
// Linear::forward is const and may run on several threads at once, hence the mutex; a
// primitive, once created, is never replaced, so a reference to it stays valid unlocked.
class Linear::FixedShapes {
 public:
  FixedShapes(const dnnl::engine& engine, int64_t in, int64_t out, Epilogue epilogue, Precision precision,
              Output output, Int8Scales scales, const dnnl::matmul::primitive_desc& largest)
      : engine_(engine),
        in_(in),
        out_(out),
        epilogue_(epilogue),
        precision_(precision),
        output_(output),
        scales_(scales),
        weights_(largest.weights_desc()),
        scratchpad_limit_(largest.scratchpad_desc().get_size()) {}

  const dnnl::matmul& for_rows(int64_t rows) {
    const std::lock_guard<std::mutex> lock(mutex_);
    std::unique_ptr<dnnl::matmul>& slot = by_rows_[static_cast<size_t>(rows)];
    if (!slot) slot = std::make_unique<dnnl::matmul>(create(rows));
    return *slot;
  }

 private:
  dnnl::matmul create(int64_t rows) const {
    dnnl::matmul::primitive_desc pd;
    try {
      pd = fixed_shape_desc(engine_, rows, in_, out_, weights_, epilogue_, precision_, output_, scales_);
    } catch (const dnnl::error& e) {
      throw_unsupported(precision_, in_, out_, e);
    }
    // The Session sized its scratchpad from the largest chunk's primitive (oneDNN's brgemm
    // asks for more with more rows: an accumulation buffer per row block).
    if (pd.scratchpad_desc().get_size() > scratchpad_limit_) {
      throw std::logic_error("kernels::Linear: the " + std::to_string(rows) + "-row " +
                             precision_name(precision_) + " primitive needs a larger scratchpad than the " +
                             std::to_string(kChunkRows.front()) + "-row one");
    }
    return dnnl::matmul(pd);
  }

  dnnl::engine engine_;
  int64_t in_, out_;
  Epilogue epilogue_;
  Precision precision_;
  Output output_;
  Int8Scales scales_;
  dnnl::memory::desc weights_;
  size_t scratchpad_limit_;
  std::mutex mutex_;
  std::array<std::unique_ptr<dnnl::matmul>, kChunkRows.front() + 1> by_rows_;  // index: row count
};

Linear::Linear(const dnnl::engine& engine, const float* weight, const float* bias, int64_t in_features,
               int64_t out_features, Epilogue epilogue, Precision precision, RowPrimitives rows,
               Output output, Int8Scales int8_scales)
    : in_features_(in_features),
      out_features_(out_features),
      epilogue_(epilogue),
      precision_(precision),
      output_(output),
      int8_scales_(int8_scales),
      engine_(engine) {
  if (precision == Precision::kAuto) {
    throw std::logic_error("kernels::Linear: Precision::kAuto is a request that Model::load resolves first");
  }
  // A bf16 output feeds a bf16 GEMM; accumulating into it would lose the residual's precision.
  if (output == Output::kBf16 && (precision == Precision::kFp32 || epilogue == Epilogue::kAccumulate)) {
    throw std::logic_error("kernels::Linear: a bf16 output needs a bf16 or int8 Linear without kAccumulate");
  }
  if (per_row_int8() && (output == Output::kBf16 || epilogue == Epilogue::kGeluErf)) {
    throw std::logic_error("kernels::Linear: per-row int8 scales need an fp32 output and no GELU epilogue");
  }
  // fp32 stays on runtime rows: its output for a row then does not depend on how many rows
  // share the call (docs/PERF.md), and brgemm is no faster there.
  std::optional<dnnl::matmul::primitive_desc> fixed;
  if (rows == RowPrimitives::kBest && precision != Precision::kFp32)
    fixed =
        brgemm_fixed_shape_desc(engine, in_features, out_features, epilogue, precision, output, int8_scales);
  if (fixed) {
    primitive_desc_ = *fixed;
    fixed_ = std::make_unique<FixedShapes>(engine, in_features, out_features, epilogue, precision, output,
                                           int8_scales, *fixed);
  } else {
    primitive_desc_ =
        runtime_rows_desc(engine, in_features, out_features, epilogue, precision, output, int8_scales);
    primitive_ = dnnl::matmul(primitive_desc_);
  }
  scratchpad_desc_ = primitive_desc_.scratchpad_desc();

  // W is [out, in] row-major, i.e. the [in, out] matrix the matmul wants with dims swapped
  // in memory: format tag `ba`.
  const dnnl::memory::desc user_bias({1, out_features}, dt::f32, tag::ab);
  if (precision == Precision::kInt8) {
    const std::vector<int8_t> quantized =
        quantize_weight_rows(weight, in_features, out_features, weight_scales_);
    if (fixed_ || per_row_int8()) {
      weight_row_sums_.assign(static_cast<size_t>(out_features), 0);
      for (int64_t n = 0; n < out_features; ++n) {
        int32_t sum = 0;  // exact: at most 127 * in_features
        for (int64_t k = 0; k < in_features; ++k) sum += quantized[n * in_features + k];
        weight_row_sums_[n] = sum;
      }
    }
    const dnnl::memory::desc user_weights({in_features, out_features}, dt::s8, tag::ba);
    weights_ = reorder_into(engine, user_weights, quantized.data(), primitive_desc_.weights_desc());
    bias_ = reorder_into(engine, user_bias, bias, user_bias);
  } else {
    const dnnl::memory::desc user_weights({in_features, out_features}, dt::f32, tag::ba);
    weights_ = reorder_into(engine, user_weights, weight, primitive_desc_.weights_desc());
    bias_ = reorder_into(engine, user_bias, bias, primitive_desc_.bias_desc());
  }
}

Linear::~Linear() = default;
Linear::Linear(Linear&&) noexcept = default;
Linear& Linear::operator=(Linear&&) noexcept = default;

void Linear::forward(dnnl::stream& stream, const float* x, int64_t rows, float* y, void* scratchpad,
                     const MatmulBuffers& buffers) const {
  if (output_ != Output::kFp32) throw std::logic_error("kernels::Linear::forward: this Linear writes bf16");
  run(stream, x, nullptr, rows, y, scratchpad, buffers);
}

void Linear::forward_to_bf16(dnnl::stream& stream, const float* x, int64_t rows, uint16_t* y,
                             void* scratchpad, const MatmulBuffers& buffers) const {
  if (output_ != Output::kBf16)
    throw std::logic_error("kernels::Linear::forward_to_bf16: this Linear writes fp32");
  run(stream, x, nullptr, rows, y, scratchpad, buffers);
}

void Linear::forward_from_bf16(dnnl::stream& stream, const uint16_t* x, int64_t rows, float* y,
                               void* scratchpad, const MatmulBuffers& buffers) const {
  if (precision_ != Precision::kBf16 || output_ != Output::kFp32) {
    throw std::logic_error("kernels::Linear::forward_from_bf16: needs a bf16 Linear with an fp32 output");
  }
  run(stream, nullptr, x, rows, y, scratchpad, MatmulBuffers{nullptr, nullptr, buffers.tail});
}

void Linear::run(dnnl::stream& stream, const float* x, const void* converted, int64_t rows, void* y,
                 void* scratchpad, const MatmulBuffers& buffers) const {
  if (rows == 0) return;
  if (per_row_int8()) {
    run_per_row_int8(stream, x, rows, y, scratchpad, buffers);
    return;
  }
  const void* source = converted ? converted : x;
  QuantizedU8 quantized;
  if (precision_ != Precision::kFp32 && converted == nullptr) {
    if (buffers.input == nullptr) {
      throw Error(std::string(precision_name(precision_)) +
                  " Linear::forward needs a buffer for the converted input");
    }
    if (precision_ == Precision::kBf16) {
      to_bf16(x, rows * in_features_, static_cast<uint16_t*>(buffers.input));
    } else {
      if (buffers.per_feature == nullptr)
        throw Error("int8 Linear::forward needs a buffer for the per-feature terms");
      quantized = quantize_u8(x, rows * in_features_, static_cast<uint8_t*>(buffers.input));
      if (fixed_) {
        int8_feature_terms(quantized, buffers.per_feature);
      } else {
        for (int64_t n = 0; n < out_features_; ++n)
          buffers.per_feature[n] = quantized.scale * weight_scales_[n];
      }
    }
    source = buffers.input;
  }
  if (fixed_) {
    forward_fixed_shapes(stream, source, rows, y, scratchpad, buffers.per_feature, buffers.tail);
  } else {
    forward_runtime_rows(stream, source, rows, y, scratchpad, quantized.zero_point, buffers.per_feature);
  }
  stream.wait();  // our own kernels read y next
}

bool Linear::per_row_int8() const { return kernels::per_row_int8(precision_, int8_scales_); }

void Linear::run_per_row_int8(dnnl::stream& stream, const float* x, int64_t rows, void* y, void* scratchpad,
                              const MatmulBuffers& buffers) const {
  if (buffers.input == nullptr || buffers.row_quantization == nullptr || buffers.products == nullptr)
    throw Error("per-row int8 Linear::forward needs buffers for its input codes, row scales and products");
  auto* codes = static_cast<uint8_t*>(buffers.input);
  quantize_u8_rows(x, rows, in_features_, codes, buffers.row_quantization);
  if (fixed_) {
    forward_fixed_shapes(stream, codes, rows, buffers.products, scratchpad, nullptr, buffers.tail);
  } else {
    forward_runtime_rows(stream, codes, rows, buffers.products, scratchpad, 0, nullptr);
  }
  stream.wait();
  dequantize_products(buffers, rows, static_cast<float*>(y));
}

void Linear::dequantize_products(const MatmulBuffers& buffers, int64_t rows, float* y) const {
  const int64_t out = out_features_;
  const float* bias = static_cast<const float*>(bias_.get_data_handle());
  const bool accumulate = epilogue_ == Epilogue::kAccumulate;
  parallel_for(rows, worth_parallel(rows * out), [&](int64_t m) {
    dequantize_row(buffers.products + m * out, buffers.row_quantization[m], weight_scales_.data(),
                   weight_row_sums_.data(), bias, out, accumulate, y + m * out);
  });
}

void Linear::int8_feature_terms(const QuantizedU8& quantized, float* per_feature) const {
  // A scale is at least 1e-30, so that shift_n = b_n / scale_n stays finite for any bias
  // below 3e8; a true scale that small (input range times weight scale) changes the output by
  // under 1e-30 * |acc| <= 1e-22.
  constexpr float kSmallestScale = 1e-30f;
  float* scales = per_feature;
  float* shifts = per_feature + out_features_;
  const float* bias = static_cast<const float*>(bias_.get_data_handle());
  const float zero_point = static_cast<float>(quantized.zero_point);
  for (int64_t n = 0; n < out_features_; ++n) {
    scales[n] = std::max(quantized.scale * weight_scales_[n], kSmallestScale);
    shifts[n] = bias[n] / scales[n] - zero_point * static_cast<float>(weight_row_sums_[n]);
  }
}

void Linear::forward_runtime_rows(dnnl::stream& stream, const void* source, int64_t rows, void* y,
                                  void* scratchpad, int32_t zero_point, const float* output_scales) const {
  // Memory objects are cheap handles around our pointers; only their row count changes.
  const CallMemory src(plain_desc({rows, in_features_}, input_type(precision_)), engine_, source);
  const CallMemory dst(plain_desc({rows, out_features_}, product_type(precision_, output_, int8_scales_)),
                       engine_, y);
  // The C API takes the arguments as a plain array: no container is built per call.
  dnnl_exec_arg_t args[7] = {
      {DNNL_ARG_SRC, src.get()}, {DNNL_ARG_WEIGHTS, weights_.get()}, {DNNL_ARG_DST, dst.get()}};
  int count = 3;
  std::optional<CallMemory> scales, zero, pad;  // in place: no heap either
  if (per_row_int8()) {
    // The bare product: nothing else to pass.
  } else if (precision_ == Precision::kInt8) {
    scales.emplace(plain_desc({out_features_}, dt::f32), engine_, output_scales);
    zero.emplace(plain_desc({1}, dt::s32), engine_, &zero_point);
    args[count++] = {DNNL_ARG_ATTR_MULTIPLE_POST_OP(bias_post_op(epilogue_)) | DNNL_ARG_SRC_1, bias_.get()};
    args[count++] = {DNNL_ARG_ATTR_OUTPUT_SCALES, scales->get()};
    args[count++] = {DNNL_ARG_ATTR_ZERO_POINTS | DNNL_ARG_SRC, zero->get()};
  } else {
    args[count++] = {DNNL_ARG_BIAS, bias_.get()};
  }
  if (scratchpad_desc_.get_size() != 0) {
    pad.emplace(scratchpad_desc_.data, engine_, scratchpad);
    args[count++] = {DNNL_ARG_SCRATCHPAD, pad->get()};
  }
  dnnl::error::wrap_c_api(dnnl_primitive_execute(primitive_.get(), stream.get(), count, args),
                          "could not execute a matmul");
}

void Linear::forward_fixed_shapes(dnnl::stream& stream, const void* source, int64_t rows, void* y,
                                  void* scratchpad, const float* per_feature, void* tail) const {
  std::optional<CallMemory> scales, shifts, pad;  // the same for every chunk
  dnnl_exec_arg_t shared[3];
  int shared_count = 0;
  if (per_row_int8()) {
    // The bare product: no bias, no post-op.
  } else if (precision_ == Precision::kInt8) {
    const dnnl_memory_desc_t feature_desc = plain_desc({1, out_features_}, dt::f32);
    scales.emplace(feature_desc, engine_, per_feature);
    shifts.emplace(feature_desc, engine_, per_feature + out_features_);
    shared[shared_count++] = {DNNL_ARG_ATTR_MULTIPLE_POST_OP(0) | DNNL_ARG_SRC_1, scales->get()};
    shared[shared_count++] = {DNNL_ARG_BIAS, shifts->get()};
  } else {
    shared[shared_count++] = {DNNL_ARG_BIAS, bias_.get()};
  }
  if (scratchpad_desc_.get_size() != 0) {
    // Every chunk's primitive needs at most the largest one's scratchpad (FixedShapes::create).
    pad.emplace(scratchpad_desc_.data, engine_, scratchpad);
    shared[shared_count++] = {DNNL_ARG_SCRATCHPAD, pad->get()};
  }
  const size_t source_row_bytes =
      static_cast<size_t>(in_features_) * dnnl::memory::data_type_size(input_type(precision_));
  const auto* source_bytes = static_cast<const unsigned char*>(source);
  const dt written = product_type(precision_, output_, int8_scales_);
  const size_t output_row_bytes = static_cast<size_t>(out_features_) * dnnl::memory::data_type_size(written);
  // The primitive adds into its output (a residual preloaded there) only with `sum`.
  const bool primitive_accumulates = epilogue_ == Epilogue::kAccumulate && !per_row_int8();
  auto* output_bytes = static_cast<unsigned char*>(y);
  auto execute = [&](int64_t chunk_rows, const void* src_rows, void* dst_rows) {
    const dnnl::matmul& primitive = fixed_->for_rows(chunk_rows);
    const CallMemory src(plain_desc({chunk_rows, in_features_}, input_type(precision_)), engine_, src_rows);
    const CallMemory dst(plain_desc({chunk_rows, out_features_}, written), engine_, dst_rows);
    dnnl_exec_arg_t args[6] = {
        {DNNL_ARG_SRC, src.get()}, {DNNL_ARG_WEIGHTS, weights_.get()}, {DNNL_ARG_DST, dst.get()}};
    std::copy(shared, shared + shared_count, args + 3);
    dnnl::error::wrap_c_api(dnnl_primitive_execute(primitive.get(), stream.get(), 3 + shared_count, args),
                            "could not execute a matmul");
  };
  for (int64_t first = 0; first < rows;) {
    const int64_t chunk_rows = next_chunk_rows(rows - first);
    const unsigned char* src_rows = source_bytes + static_cast<size_t>(first) * source_row_bytes;
    unsigned char* dst_rows = output_bytes + static_cast<size_t>(first) * output_row_bytes;
    const int64_t padded = (chunk_rows + kTailRowMultiple - 1) / kTailRowMultiple * kTailRowMultiple;
    if (padded == chunk_rows || tail == nullptr) {
      execute(chunk_rows, src_rows, dst_rows);
    } else {
      // The tail: [padded, in] input rows (the real ones, then zeros) and [padded, out] output
      // rows, the real ones preloaded when the primitive accumulates; only those are copied back.
      auto* tail_src = static_cast<unsigned char*>(tail);
      unsigned char* tail_dst = tail_src + static_cast<size_t>(kChunkRows.back()) * source_row_bytes;
      const size_t real_src = static_cast<size_t>(chunk_rows) * source_row_bytes;
      const size_t real_dst = static_cast<size_t>(chunk_rows) * output_row_bytes;
      std::memcpy(tail_src, src_rows, real_src);
      std::memset(tail_src + real_src, 0, static_cast<size_t>(padded - chunk_rows) * source_row_bytes);
      if (primitive_accumulates) std::memcpy(tail_dst, dst_rows, real_dst);
      execute(padded, tail_src, tail_dst);
      stream.wait();
      std::memcpy(dst_rows, tail_dst, real_dst);
    }
    first += chunk_rows;
  }
}

size_t tail_buffer_bytes(int64_t in_features, int64_t out_features) {
  // kChunkRows.back() input rows, then as many output rows (forward_fixed_shapes), each of
  // the widest type a Linear uses there: bf16 in, fp32 out.
  return static_cast<size_t>(kChunkRows.back()) * static_cast<size_t>(in_features * 2 + out_features * 4);
}

const char* Linear::implementation() const { return primitive_desc_.impl_info_str(); }

size_t per_feature_floats(Precision precision, int64_t out_features) {
  return precision == Precision::kInt8 ? static_cast<size_t>(2 * out_features) : 0;
}

}  // namespace fcabert::kernels
