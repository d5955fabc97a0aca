#include "kernels/linear.h"

#include <string>
#include <unordered_map>

#include "fcabert/error.h"

namespace fcabert::kernels {
namespace {

using dt = dnnl::memory::data_type;
using tag = dnnl::memory::format_tag;

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
                                                 Epilogue epilogue) {
  const dnnl::memory::dim rows = DNNL_RUNTIME_DIM_VAL;
  const dnnl::memory::desc src({rows, in}, dt::f32, tag::ab);
  // `any` lets oneDNN pick the weight layout it runs fastest with; we reorder once at load.
  const dnnl::memory::desc weights({in, out}, dt::f32, tag::any);
  const dnnl::memory::desc bias({1, out}, dt::f32, tag::ab);
  const dnnl::memory::desc dst({rows, out}, dt::f32, tag::ab);
  try {
    return dnnl::matmul::primitive_desc(dnnl::matmul::desc(src, weights, bias, dst), make_attr(epilogue),
                                        engine);
  } catch (const dnnl::error& e) {
    throw Error("oneDNN has no matmul for " + std::to_string(in) + " -> " + std::to_string(out) +
                " features: " + e.what());
  }
}

// Copies user data described by `from` into a new library-owned memory laid out as `to`.
dnnl::memory reorder_into(const dnnl::engine& engine, const dnnl::memory::desc& from, const float* data,
                          const dnnl::memory::desc& to) {
  dnnl::memory source(from, engine, const_cast<float*>(data));  // read only: a reorder source
  dnnl::memory target(to, engine);
  dnnl::stream stream(engine);
  dnnl::reorder(source, target).execute(stream, source, target);
  stream.wait();
  return target;
}

}  // namespace

Linear::Linear(const dnnl::engine& engine, const float* weight, const float* bias, int64_t in_features,
               int64_t out_features, Epilogue epilogue)
    : in_features_(in_features),
      out_features_(out_features),
      epilogue_(epilogue),
      engine_(engine),
      primitive_desc_(make_primitive_desc(engine, in_features, out_features, epilogue)),
      primitive_(primitive_desc_),
      scratchpad_desc_(primitive_desc_.scratchpad_desc()) {
  // W is [out, in] row-major, i.e. the [in, out] matrix the matmul wants with dims swapped
  // in memory: format tag `ba`.
  const dnnl::memory::desc user_weights({in_features, out_features}, dt::f32, tag::ba);
  weights_ = reorder_into(engine, user_weights, weight, primitive_desc_.weights_desc());
  const dnnl::memory::desc user_bias({1, out_features}, dt::f32, tag::ab);
  bias_ = reorder_into(engine, user_bias, bias, primitive_desc_.bias_desc());
}

void Linear::forward(dnnl::stream& stream, const float* x, int64_t rows, float* y, void* scratchpad) const {
  if (rows == 0) return;
  // Memory objects are cheap handles around our pointers; only their row count changes.
  const dnnl::memory::desc src_desc({rows, in_features_}, dt::f32, tag::ab);
  const dnnl::memory::desc dst_desc({rows, out_features_}, dt::f32, tag::ab);
  dnnl::memory src(src_desc, engine_, const_cast<float*>(x));  // read only: matmul source
  dnnl::memory dst(dst_desc, engine_, y);
  std::unordered_map<int, dnnl::memory> args{
      {DNNL_ARG_SRC, src}, {DNNL_ARG_WEIGHTS, weights_}, {DNNL_ARG_BIAS, bias_}, {DNNL_ARG_DST, dst}};
  if (scratchpad_desc_.get_size() != 0) {
    args.emplace(DNNL_ARG_SCRATCHPAD, dnnl::memory(scratchpad_desc_, engine_, scratchpad));
  }
  primitive_.execute(stream, args);
  stream.wait();  // our own kernels read y next
}

const char* Linear::implementation() const { return primitive_desc_.impl_info_str(); }

}  // namespace fcabert::kernels
