#include "model/workspace.h"

#include <spdlog/spdlog.h>

namespace fcabert::model {

Workspace::Workspace(const dnnl::engine& engine, const WorkspaceSpec& spec) : stream(engine), spec_(spec) {
  // Fixed by the model, so sized once here.
  dnnl_scratchpad_.reserve(spec.dnnl_scratchpad_bytes);
}

void Workspace::reserve(int64_t tokens, int64_t sequences, int64_t longest) {
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
  attention.reserve(spec_.threads, longest, spec_.hidden / spec_.num_heads);
  if (reserved_bytes() != before) {
    spdlog::debug("session scratch grown to {:.1f} MiB for {} tokens in {} sequences (longest {})",
                  reserved_bytes() / 1048576.0, tokens, sequences, longest);
  }
}

size_t Workspace::reserved_bytes() const {
  return hidden_.bytes() + qkv_.bytes() + context_.bytes() + intermediate_.bytes() + cls_.bytes() +
         pooled_.bytes() + logits_.bytes() + attention.bytes() + dnnl_scratchpad_.bytes();
}

}  // namespace fcabert::model
