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

// How one forward pass runs (a Session's settings, per call).
struct ForwardOptions {
  // The FCA schedule (docs/FCA.md); null or no keep ratios = dense. Validated by predict().
  const FcaSchedule* schedule = nullptr;
  // Record the identities of the rows each layer kept (Prediction::trace.kept). Allocates.
  bool explain = false;
  // When set, receives the wall time of the embeddings, of each layer and of the head.
  LayerTimings* timings = nullptr;
};

class BertClassifier {
 public:
  // Checks the config (throws fcabert::Error on what this engine cannot run) and binds
  // every tensor. `threads` is the OpenMP / oneDNN thread count of every forward pass;
  // `precision` that of the encoder layers' GEMMs (the pooler and classifier stay fp32).
  BertClassifier(const BertConfig& config, const HeadConfig& head, const WeightSource& weights, int threads,
                 Precision precision = Precision::kFp32);

  // Packs, runs and returns one Prediction per encoding (in order), with its FCA trace.
  // Throws fcabert::Error for invalid input (see pack_batch) or a schedule that does not fit
  // the model, before any computation.
  std::vector<Prediction> predict(const std::vector<Encoding>& batch, Workspace& ws,
                                  const ForwardOptions& options = {}) const;

  // The forward pass on ws.batch (packed and validated by pack_batch, at least one
  // sequence; options.schedule valid for this model): grows ws for it, then leaves the
  // logits in ws.logits() as [B, labels], each layer's ReductionShape per sequence in
  // ws.fca.shapes ([layer][sequence]) and, with explain, the kept identities in ws.fca.kept.
  void forward(Workspace& ws, const ForwardOptions& options = {}) const;

  WorkspaceSpec workspace_spec() const;
  const dnnl::engine& engine() const { return engine_; }
  const BertConfig& config() const { return config_; }
  const HeadConfig& head() const { return head_; }
  int threads() const { return threads_; }
  Precision precision() const { return precision_; }
  // What each GEMM of a layer runs (precision() GEMM by GEMM; see LayerPrecisions).
  const LayerPrecisions& layer_precisions() const { return layer_precisions_; }

 private:
  void prepare(Workspace& ws, bool fca) const;  // thread count and buffer sizes for ws.batch
  // Fills ws.fca.shapes for `layer`; true when any sequence reduces there.
  bool plan_layer(int64_t layer, const FcaSchedule* schedule, Workspace& ws) const;
  // The FCA step of `layer` on the attention output `in` (current offsets) into `out`
  // (ws.fca.next_offsets): each sequence reduced or copied, in parallel over sequences.
  void reduce_layer(int64_t layer, const FcaSchedule& schedule, bool explain, const float* in, float* out,
                    Workspace& ws) const;
  std::vector<Prediction> predictions(Workspace& ws, bool explain) const;

  BertConfig config_;
  HeadConfig head_;
  int threads_;
  Precision precision_;
  LayerPrecisions layer_precisions_;
  dnnl::engine engine_;
  Embeddings embeddings_;
  std::vector<EncoderLayer> layers_;
  Pooler pooler_;
  Classifier classifier_;
};

// Throws fcabert::Error when the config or head describes something this engine cannot run.
void check_supported(const BertConfig& config, const HeadConfig& head);

}  // namespace fcabert::model
