#pragma once
// The whole BertForSequenceClassification network: embeddings -> encoder layers -> pooler ->
// classifier, bound to its weights at construction and immutable afterwards. It holds no
// per-run state: every forward pass writes into a caller-owned Workspace, so one network
// serves any number of threads (each with its own Workspace).
#include <cstdint>
#include <memory>
#include <oneapi/dnnl/dnnl.hpp>
#include <vector>

#include "fcabert/config.h"
#include "fcabert/engine.h"
#include "fcabert/tokenizer.h"
#include "model/embeddings.h"
#include "model/encoder_layer.h"
#include "model/head.h"
#include "model/weights.h"
#include "model/workspace.h"

namespace fcabert::model {

class BertClassifier {
 public:
  // Checks the config (throws fcabert::Error on what this engine cannot run) and binds
  // every tensor. `threads` is the OpenMP / oneDNN thread count of every forward pass.
  BertClassifier(const BertConfig& config, const HeadConfig& head, const WeightSource& weights, int threads);

  // Packs, runs and returns one Prediction per encoding (in order). Throws fcabert::Error
  // for invalid input (see pack_batch), before any computation.
  std::vector<Prediction> predict(const std::vector<Encoding>& batch, Workspace& ws) const;

  // The forward pass on ws.batch (packed and validated by pack_batch, at least one
  // sequence): grows ws for it, then leaves the logits in ws.logits() as [B, labels].
  void forward(Workspace& ws) const;

  WorkspaceSpec workspace_spec() const;
  const dnnl::engine& engine() const { return engine_; }
  const BertConfig& config() const { return config_; }
  const HeadConfig& head() const { return head_; }
  int threads() const { return threads_; }

 private:
  void prepare(Workspace& ws) const;  // thread count and buffer sizes for ws.batch
  std::vector<Prediction> predictions(Workspace& ws) const;

  BertConfig config_;
  HeadConfig head_;
  int threads_;
  dnnl::engine engine_;
  Embeddings embeddings_;
  std::vector<EncoderLayer> layers_;
  Pooler pooler_;
  Classifier classifier_;
};

// Throws fcabert::Error when the config or head describes something this engine cannot run.
void check_supported(const BertConfig& config, const HeadConfig& head);

}  // namespace fcabert::model
