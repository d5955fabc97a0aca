#include "model/bert_classifier.h"

#include <algorithm>
#include <string>

#include "fcabert/error.h"
#include "kernels/parallel.h"
#include "kernels/softmax.h"

namespace fcabert::model {
namespace {

void require(bool ok, const std::string& message) {
  if (!ok) throw Error("unsupported model: " + message);
}

std::vector<EncoderLayer> bind_layers(const dnnl::engine& engine, const WeightSource& weights,
                                      const BertConfig& config) {
  std::vector<EncoderLayer> layers;
  layers.reserve(static_cast<size_t>(config.num_layers));
  for (int64_t l = 0; l < config.num_layers; ++l) {
    layers.emplace_back(engine, weights, "bert.encoder.layer." + std::to_string(l) + ".", config);
  }
  return layers;
}

// Runs before any member is bound, so a bad config fails with a clear message rather than
// a tensor-shape error.
const BertConfig& checked(const BertConfig& config, const HeadConfig& head, int threads) {
  check_supported(config, head);
  if (threads < 1) throw Error("threads must be at least 1, got " + std::to_string(threads));
  return config;
}

}  // namespace

void check_supported(const BertConfig& config, const HeadConfig& head) {
  require(config.vocab_size > 0 && config.hidden_size > 0 && config.num_layers > 0 && config.num_heads > 0 &&
              config.intermediate_size > 0 && config.max_position_embeddings > 0 &&
              config.type_vocab_size > 0,
          "every size in the BERT config must be positive");
  require(config.hidden_size % config.num_heads == 0, "hidden_size " + std::to_string(config.hidden_size) +
                                                          " is not a multiple of num_heads " +
                                                          std::to_string(config.num_heads));
  require(config.hidden_act == "gelu",
          "hidden_act \"" + config.hidden_act + "\" (only \"gelu\", the erf form, is implemented)");
  require(!(config.layer_norm_eps < 0.f), "layer_norm_eps must not be negative");
  require(!head.labels.empty(), "the head has no labels");
  require(head.kind != HeadKind::Regression || head.labels.size() == 1,
          "a regression head has exactly one output, got " + std::to_string(head.labels.size()));
}

BertClassifier::BertClassifier(const BertConfig& config, const HeadConfig& head, const WeightSource& weights,
                               int threads)
    : config_(checked(config, head, threads)),
      head_(head),
      threads_(threads),
      engine_(dnnl::engine::kind::cpu, 0),
      embeddings_(weights, "bert.embeddings.", config),
      layers_(bind_layers(engine_, weights, config)),
      pooler_(engine_, weights, "bert.pooler.", config),
      classifier_(engine_, weights, "classifier.", config.hidden_size,
                  static_cast<int64_t>(head.labels.size())) {}

WorkspaceSpec BertClassifier::workspace_spec() const {
  WorkspaceSpec spec;
  spec.hidden = config_.hidden_size;
  spec.intermediate = config_.intermediate_size;
  spec.num_heads = config_.num_heads;
  spec.num_labels = classifier_.num_labels();
  spec.threads = threads_;
  spec.dnnl_scratchpad_bytes = std::max(pooler_.scratchpad_bytes(), classifier_.scratchpad_bytes());
  for (const EncoderLayer& layer : layers_) {
    spec.dnnl_scratchpad_bytes = std::max(spec.dnnl_scratchpad_bytes, layer.scratchpad_bytes());
  }
  return spec;
}

std::vector<Prediction> BertClassifier::predict(const std::vector<Encoding>& batch, Workspace& ws) const {
  pack_batch(batch, config_, ws.batch);
  if (ws.batch.sequences() == 0) return {};
  forward(ws);
  return predictions(ws);
}

void BertClassifier::prepare(Workspace& ws) const {
  kernels::use_threads(threads_);
  ws.reserve(ws.batch.tokens(), ws.batch.sequences(), ws.batch.longest());
}

void BertClassifier::forward(Workspace& ws) const {
  prepare(ws);
  const PackedBatch& batch = ws.batch;
  const std::vector<int64_t>& offsets = batch.offsets;
  float* x = ws.hidden();
  embeddings_.forward(batch, x);
  for (const EncoderLayer& layer : layers_) {
    layer.attention_block(offsets, x, ws);
    // ---- FCA seam (DESIGN §1) ------------------------------------------------------------
    // Token reduction goes here, after the attention sub-layer's LayerNorm and before the
    // FFN. Per layer that reduces: pass kernels::AttentionExtras (column sums and diagonal
    // of every head's probabilities, in fca::scores_from_column_sums' layout) to
    // attention_block above, then per sequence score -> fca::plan_reduction ->
    // fca::apply_reduction into a second [T', d] buffer, and carry on with the new offsets:
    // the FFN, later layers and the pooler (row 0 of each sequence is still [CLS]) all run
    // on the shorter T'. The dense path passes straight through.
    // ---------------------------------------------------------------------------------------
    layer.feed_forward_block(offsets.back(), x, ws);
  }
  pooler_.forward(x, offsets, ws, ws.pooled());
  classifier_.forward(ws.pooled(), batch.sequences(), ws, ws.logits());
}

std::vector<Prediction> BertClassifier::predictions(Workspace& ws) const {
  const int64_t labels = classifier_.num_labels();
  const bool classification = head_.kind == HeadKind::Classification;
  std::vector<Prediction> out(static_cast<size_t>(ws.batch.sequences()));
  for (size_t s = 0; s < out.size(); ++s) {
    const float* logits = ws.logits() + s * labels;
    out[s].logits.assign(logits, logits + labels);
    if (classification) {
      out[s].probabilities = out[s].logits;
      kernels::softmax_row(out[s].probabilities.data(), labels);
    }
  }
  return out;
}

}  // namespace fcabert::model
