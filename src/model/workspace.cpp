#include "model/workspace.h"

#include <spdlog/spdlog.h>

#include <algorithm>

namespace fcabert::model {

void FcaScratch::reserve(const WorkspaceSpec& spec, int64_t tokens, int64_t sequences, int64_t longest) {
  const size_t t = static_cast<size_t>(tokens);
  const size_t b = static_cast<size_t>(sequences);
  column_sums_.reserve(t * spec.num_heads);
  diagonal_.reserve(t * spec.num_heads);
  scores_.reserve(t);
  hidden_.reserve(t * spec.hidden);
  // std::vector::reserve never shrinks either.
  offsets.reserve(b + 1);
  next_offsets.reserve(b + 1);
  shapes.reserve(b * static_cast<size_t>(spec.num_layers));
  const size_t threads = static_cast<size_t>(std::max(spec.threads, 1));
  if (plans.size() < threads) plans.resize(threads);
  if (longest > plan_rows_) {
    for (fca::ReductionPlan& plan : plans) plan.reserve(longest);
    plan_rows_ = longest;
  }
}

size_t FcaScratch::reserved_bytes() const {
  size_t plan_bytes = 0;
  for (const fca::ReductionPlan& plan : plans) {
    plan_bytes += (plan.fine.capacity() + plan.coarse.capacity() + plan.group_offsets.capacity() +
                   plan.work.capacity()) *
                  sizeof(int64_t);
  }
  return column_sums_.bytes() + diagonal_.bytes() + scores_.bytes() + hidden_.bytes() + plan_bytes +
         (offsets.capacity() + next_offsets.capacity()) * sizeof(int64_t) +
         shapes.capacity() * sizeof(fca::ReductionShape);
}

Workspace::Workspace(const dnnl::engine& engine, const WorkspaceSpec& spec) : stream(engine), spec_(spec) {
  // Fixed by the model, so sized once here.
  dnnl_scratchpad_.reserve(spec.dnnl_scratchpad_bytes);
  if (spec.matmul_precision == Precision::kInt8) {
    matmul_per_feature_.reserve(
        kernels::per_feature_floats(Precision::kInt8, std::max(3 * spec.hidden, spec.intermediate)));
  }
  if (spec.matmul_precision != Precision::kFp32) {  // fp32 GEMMs run on runtime rows, no tail
    matmul_tail_.reserve(kernels::tail_buffer_bytes(std::max(spec.hidden, spec.intermediate),
                                                    std::max(3 * spec.hidden, spec.intermediate)));
  }
}

void Workspace::reserve(int64_t tokens, int64_t sequences, int64_t longest, bool with_fca) {
  const size_t t = static_cast<size_t>(tokens);
  const size_t b = static_cast<size_t>(sequences);
  const size_t before = reserved_bytes();
  hidden_.reserve(t * spec_.hidden);
  qkv_.reserve(t * 3 * spec_.hidden);
  context_.reserve(t * spec_.hidden);
  intermediate_.reserve(t * spec_.intermediate);
  cls_.reserve(b * spec_.hidden);
  pooled_.reserve(b * spec_.hidden);
  logits_.reserve(b * spec_.num_labels);
  matmul_input_.reserve(t * static_cast<size_t>(spec_.converted_input_bytes_per_row));
  if (spec_.per_row_int8) {
    matmul_row_quantization_.reserve(t);
    matmul_products_.reserve(t * spec_.hidden);
  }
  attention.reserve(spec_.threads, longest, spec_.hidden / spec_.num_heads);
  // The per-layer row counts are recorded for the traces on the dense path too.
  fca.offsets.reserve(b + 1);
  fca.shapes.reserve(b * static_cast<size_t>(spec_.num_layers));
  if (with_fca) fca.reserve(spec_, tokens, sequences, longest);
  if (reserved_bytes() != before) {
    spdlog::debug("session scratch grown to {:.1f} MiB for {} tokens in {} sequences (longest {}{})",
                  reserved_bytes() / 1048576.0, tokens, sequences, longest, with_fca ? ", FCA" : "");
  }
}

size_t Workspace::reserved_bytes() const {
  return hidden_.bytes() + qkv_.bytes() + context_.bytes() + intermediate_.bytes() + cls_.bytes() +
         pooled_.bytes() + logits_.bytes() + attention.bytes() + dnnl_scratchpad_.bytes() +
         matmul_input_.bytes() + matmul_per_feature_.bytes() + matmul_tail_.bytes() +
         matmul_row_quantization_.bytes() + matmul_products_.bytes() + fca.reserved_bytes();
}

}  // namespace fcabert::model
