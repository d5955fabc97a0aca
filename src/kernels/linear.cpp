#include "kernels/linear.h"

#include <atomic>
#include <cstring>
#include <string>

#include "fcabert/error.h"
#include "kernels/parallel.h"

namespace fcabert::kernels {
namespace {

using dt = dnnl::memory::data_type;
using tag = dnnl::memory::format_tag;

dt input_type(MatmulPrecision precision) { return precision == MatmulPrecision::kBf16 ? dt::bf16 : dt::f32; }

dnnl::primitive_attr make_attr(Epilogue epilogue) {
  dnnl::post_ops ops;
  if (epilogue == Epilogue::kGeluErf) ops.append_eltwise(1.f, dnnl::algorithm::eltwise_gelu_erf, 0.f, 0.f);
  if (epilogue == Epilogue::kAccumulate) ops.append_sum(1.f);
  dnnl::primitive_attr attr;
  attr.set_post_ops(ops);
  // Each Session passes its own scratchpad, so Sessions on different threads can execute the
  // same (shared, immutable) primitive at once.
  attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
  return attr;
}

dnnl::matmul::primitive_desc make_primitive_desc(const dnnl::engine& engine, int64_t in, int64_t out,
                                                 Epilogue epilogue, MatmulPrecision precision) {
  const dnnl::memory::dim rows = DNNL_RUNTIME_DIM_VAL;
  const dt type = input_type(precision);
  const dnnl::memory::desc src({rows, in}, type, tag::ab);
  // `any` lets oneDNN pick the weight layout it runs fastest with; we reorder once at load.
  const dnnl::memory::desc weights({in, out}, type, tag::any);
  const dnnl::memory::desc bias({1, out}, dt::f32, tag::ab);
  const dnnl::memory::desc dst({rows, out}, dt::f32, tag::ab);
  try {
    return dnnl::matmul::primitive_desc(dnnl::matmul::desc(src, weights, bias, dst), make_attr(epilogue),
                                        engine);
  } catch (const dnnl::error& e) {
    throw Error(std::string("oneDNN has no ") + (precision == MatmulPrecision::kBf16 ? "bf16" : "fp32") +
                " matmul for " + std::to_string(in) + " -> " + std::to_string(out) +
                " features: " + e.what() +
                (precision == MatmulPrecision::kBf16 ? " (use --precision fp32 on this CPU)" : ""));
  }
}

// Copies user data described by `from` into a new library-owned memory laid out as `to`
// (converting the data type when `to` has another one).
dnnl::memory reorder_into(const dnnl::engine& engine, const dnnl::memory::desc& from, const float* data,
                          const dnnl::memory::desc& to) {
  dnnl::memory source(from, engine, const_cast<float*>(data));  // read only: a reorder source
  dnnl::memory target(to, engine);
  dnnl::stream stream(engine);
  dnnl::reorder(source, target).execute(stream, source, target);
  stream.wait();
  return target;
}

std::atomic<int> g_onednn_in_flight{0};

// Marks a scope as inside oneDNN (onednn_calls_in_flight).
struct InOneDnn {
  InOneDnn() { g_onednn_in_flight.fetch_add(1, std::memory_order_relaxed); }
  ~InOneDnn() { g_onednn_in_flight.fetch_sub(1, std::memory_order_relaxed); }
  InOneDnn(const InOneDnn&) = delete;
  InOneDnn& operator=(const InOneDnn&) = delete;
};

inline uint16_t round_to_bf16(float value) {
  uint32_t bits;
  std::memcpy(&bits, &value, sizeof bits);
  // Round to nearest, ties to even; a NaN stays a (quiet) NaN instead of rounding to inf.
  const uint32_t rounded = (bits + 0x7FFFu + ((bits >> 16) & 1u)) >> 16;
  const uint32_t quiet_nan = (bits >> 16) | 0x40u;
  return static_cast<uint16_t>((bits & 0x7FFFFFFFu) > 0x7F800000u ? quiet_nan : rounded);
}

}  // namespace

int onednn_calls_in_flight() { return g_onednn_in_flight.load(std::memory_order_relaxed); }

void to_bf16(const float* x, int64_t count, uint16_t* out) {
  if (worth_parallel(count)) {
#pragma omp parallel for simd schedule(static)
    for (int64_t i = 0; i < count; ++i) out[i] = round_to_bf16(x[i]);
  } else {
#pragma omp simd
    for (int64_t i = 0; i < count; ++i) out[i] = round_to_bf16(x[i]);
  }
}

Linear::Linear(const dnnl::engine& engine, const float* weight, const float* bias, int64_t in_features,
               int64_t out_features, Epilogue epilogue, MatmulPrecision precision)
    : in_features_(in_features),
      out_features_(out_features),
      epilogue_(epilogue),
      precision_(precision),
      engine_(engine),
      primitive_desc_(make_primitive_desc(engine, in_features, out_features, epilogue, precision)),
      primitive_(primitive_desc_),
      scratchpad_desc_(primitive_desc_.scratchpad_desc()) {
  // W is [out, in] row-major, i.e. the [in, out] matrix the matmul wants with dims swapped
  // in memory: format tag `ba`.
  const dnnl::memory::desc user_weights({in_features, out_features}, dt::f32, tag::ba);
  weights_ = reorder_into(engine, user_weights, weight, primitive_desc_.weights_desc());
  const dnnl::memory::desc user_bias({1, out_features}, dt::f32, tag::ab);
  bias_ = reorder_into(engine, user_bias, bias, primitive_desc_.bias_desc());
}

void Linear::forward(dnnl::stream& stream, const float* x, int64_t rows, float* y, void* scratchpad,
                     uint16_t* x_bf16) const {
  if (rows == 0) return;
  const void* source = x;
  if (precision_ == MatmulPrecision::kBf16) {
    if (x_bf16 == nullptr) throw Error("bf16 Linear::forward needs a buffer for the converted input");
    to_bf16(x, rows * in_features_, x_bf16);
    source = x_bf16;
  }
  const InOneDnn in_onednn;
  // Memory objects are cheap handles around our pointers; only their row count changes.
  const dnnl::memory::desc src_desc({rows, in_features_}, input_type(precision_), tag::ab);
  const dnnl::memory::desc dst_desc({rows, out_features_}, dt::f32, tag::ab);
  dnnl::memory src(src_desc, engine_, const_cast<void*>(source));  // read only: matmul source
  dnnl::memory dst(dst_desc, engine_, y);
  // The C API takes the arguments as a plain array: no container is built per call.
  dnnl_exec_arg_t args[5] = {{DNNL_ARG_SRC, src.get()},
                             {DNNL_ARG_WEIGHTS, weights_.get()},
                             {DNNL_ARG_BIAS, bias_.get()},
                             {DNNL_ARG_DST, dst.get()},
                             {DNNL_ARG_SCRATCHPAD, nullptr}};
  int count = 4;
  dnnl::memory pad;
  if (scratchpad_desc_.get_size() != 0) {
    pad = dnnl::memory(scratchpad_desc_, engine_, scratchpad);
    args[count++].memory = pad.get();
  }
  dnnl::error::wrap_c_api(dnnl_primitive_execute(primitive_.get(), stream.get(), count, args),
                          "could not execute a matmul");
  stream.wait();  // our own kernels read y next
}

const char* Linear::implementation() const { return primitive_desc_.impl_info_str(); }

}  // namespace fcabert::kernels
