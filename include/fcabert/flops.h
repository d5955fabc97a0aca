#pragma once
// FLOPs accounting (docs/PROFILE.md): one convention, stated here and in tools/fca_reference.py
// (fca_flops(); the two must agree term by term).
//
// A multiply-add is 2 FLOPs. Counts use the real token counts (no padding). For one sequence
// at one layer with n rows in, n' rows out (after the FCA step), hidden d, intermediate f,
// H heads, and, in a layer that reduces, m = n - k coarse rows pooled into c clusters:
//
//   linear_qkvo       = 2*n*d*4d     Q, K, V and output projections (= 8*n*d*d)
//   ffn               = 2*n'*d*f*2   the two feed-forward matrices   (= 4*n'*d*f)
//   attention_scores  = 2*n*n*d      Q K^T over all heads
//   attention_context = 2*n*n*d      P V over all heads
//   fca_scoring       = H*n*n        one add per attention probability (the column sums;
//                                    the diagonal is counted too; the 1/H scale and the
//                                    top-k comparisons are not). Only in layers that reduce:
//                                    whether a layer reduces is known from n, k and C before
//                                    attention, so a pass-through layer needs no scores.
//   fca_pooling       weighted: 2*m*d + 3*m   one multiply-add per member element; exp,
//                                    accumulate and divide per weight (the max subtraction
//                                    of the stable softmax is not counted)
//                     mean:     m*d + c*d     one add per member element, one multiply by
//                                    1/|group| per cluster element
//                     0 when C = 0 (dropped rows are not pooled) or the layer passes through
//   headline (total)  = linear_qkvo + ffn + attention_scores + attention_context
//                       + fca_scoring + fca_pooling
//   MACs              = (linear_qkvo + ffn + attention_scores + attention_context) / 2
//                       (matrix products only; the FCA step is reported in FLOPs only)
//
// Elementwise work is reported separately and never in the headline (docs/PROFILE.md). Per layer:
//   attention scale 1/sqrt(d_h)  1 per score              H*n*n
//   attention softmax            4 per probability        4*H*n*n  (subtract max, exp, sum,
//                                                                   divide; the max is free)
//   bias adds                    Q, K, V, O: 4*n*d;  FFN: n'*f + n'*d
//   residual adds                n*d + n'*d
//   LayerNorm                    7 per element            7*n*d + 7*n'*d  (mean add, subtract,
//                                                                   square-add (2), scale,
//                                                                   gamma, beta; per-row
//                                                                   scalars free)
//   GELU (erf)                   5 per element            5*n'*f  (scale, erf, add, two
//                                                                   multiplies; erf = 1 op)
//   elementwise = 5*H*n*n + 12*n*d + 9*n'*d + 6*n'*f
//
// Outside the encoder, per sequence of n0 tokens (listed separately; the tally's total()
// includes them, the per-layer numbers and fca_reference.py's totals do not):
//   embedding  = 2*n0*d   word + position + token-type vectors (lookups are free)
//   pooler     = 2*d*d    the [CLS] dense layer      (MACs d*d)
//   classifier = 2*d*L    L = number of head outputs (MACs d*L)
//   their elementwise: embedding LayerNorm 7*n0*d, pooler bias + tanh 2*d, classifier bias L.
//
// BERT-base (L12, d768, f3072, H12), one dense 128-token sequence: linear 21.74 GFLOPs,
// attention 0.60 GFLOPs, encoder headline 22.35 GFLOPs (the headline is linear + attention;
// embedding + pooler + classifier add 0.0014 GFLOPs).
#include <cstdint>
#include <nlohmann/json_fwd.hpp>
#include <string>
#include <vector>

#include "fcabert/config.h"
#include "fcabert/fca.h"

namespace fcabert {

// One layer's FLOPs for one sequence, or summed over many (then tokens_* are sums too).
struct LayerFlops {
  int64_t tokens_in = 0;   // n
  int64_t tokens_out = 0;  // n'
  int64_t linear_qkvo = 0;
  int64_t ffn = 0;
  int64_t attention_scores = 0;
  int64_t attention_context = 0;
  int64_t fca_scoring = 0;
  int64_t fca_pooling = 0;
  int64_t elementwise = 0;  // not in total()

  int64_t linear() const { return linear_qkvo + ffn; }
  int64_t attention() const { return attention_scores + attention_context; }
  int64_t fca() const { return fca_scoring + fca_pooling; }
  int64_t total() const { return linear() + attention() + fca(); }  // the headline
  int64_t macs() const { return (linear() + attention()) / 2; }     // matrix products only

  LayerFlops& operator+=(const LayerFlops& other);
};

// One layer, one sequence. `pooled_rows` = m, the rows averaged into the `clusters_made`
// clusters (pooling counts 0 when clusters_made == 0, i.e. C = 0 drops them); the FCA terms
// count only when `reduced`. Throws fcabert::Error on negative counts.
LayerFlops layer_flops(const BertConfig& config, int64_t n_in, int64_t n_out, int64_t pooled_rows,
                       int64_t clusters_made, Pooling pooling, bool reduced);
// The same from a reduction shape (fca::reduction_shape or ReductionPlan::shape).
LayerFlops layer_flops(const BertConfig& config, const fca::ReductionShape& shape, Pooling pooling);

// Per sequence, outside the encoder (see above).
int64_t embedding_flops(const BertConfig& config, int64_t original_length);
int64_t pooler_flops(const BertConfig& config);
int64_t classifier_flops(const BertConfig& config, int64_t num_labels);

// Accumulates FLOPs over layers, sequences and batches. Not thread-safe: give each thread
// its own tally and merge() them.
class FlopsTally {
 public:
  // num_labels: the classifier's outputs (1 for regression).
  FlopsTally(const BertConfig& config, int64_t num_labels);

  // Adds one sequence's FLOPs at `layer` (0-based; throws if out of range).
  void add_layer(int64_t layer, const LayerFlops& flops);
  // Adds one sequence's embedding, pooler and classifier FLOPs, counts the sequence and its
  // tokens, and adds what the same sequence costs dense to dense_total(). Call once per
  // sequence, with its original token count n0; add its layers with add_layer.
  void add_sequence(int64_t original_length);
  // add_sequence plus every layer predicted from the schedule (token counts do not depend on
  // the scores, so they are known without running the model). Dense schedule: no FCA.
  void add_sequence_analytic(const FcaSchedule& schedule, int64_t original_length);
  // Adds another tally of the same geometry (throws if the geometry differs).
  void merge(const FlopsTally& other);

  const BertConfig& config() const { return config_; }
  int64_t num_labels() const { return num_labels_; }
  const std::vector<LayerFlops>& layers() const { return layers_; }  // summed over sequences
  LayerFlops encoder() const;                                        // summed over layers
  int64_t sequences() const { return sequences_; }
  int64_t tokens() const { return tokens_; }  // sum of n0
  int64_t embedding() const { return embedding_; }
  int64_t pooler() const { return pooler_; }
  int64_t classifier() const { return classifier_; }
  // encoder().total() + embedding + pooler + classifier.
  int64_t total() const;
  // Matrix-product MACs: encoder().macs() + (pooler + classifier) / 2.
  int64_t macs() const;
  // Encoder elementwise + embedding LayerNorm + pooler bias/tanh + classifier bias.
  int64_t elementwise() const;
  // total() of the same sequences without FCA (accumulated by add_sequence).
  int64_t dense_total() const { return dense_total_; }
  // How many times fewer FLOPs than `dense`: dense.total() / total() (2.0 = half the FLOPs).
  // 0 when this tally is empty.
  double reduction_ratio(const FlopsTally& dense) const;
  // The same against dense_total().
  double reduction_ratio() const;

  // {"convention", "sequences", "tokens", "layers": [{"layer", "tokens_in", "tokens_out",
  //  "linear_qkvo", "ffn", "attention_scores", "attention_context", "fca_scoring",
  //  "fca_pooling", "linear", "attention", "fca", "total", "macs", "elementwise"}, ...],
  //  "totals": {the same keys summed over layers (the encoder)}, "embedding", "pooler",
  //  "classifier", "total", "macs", "elementwise", "dense_total", "reduction_ratio"}
  // Needs <nlohmann/json.hpp> at the call site; to_json_string() does not.
  nlohmann::ordered_json to_json() const;
  std::string to_json_string(int indent = 2) const;

 private:
  BertConfig config_;
  int64_t num_labels_;
  std::vector<LayerFlops> layers_;
  int64_t sequences_ = 0;
  int64_t tokens_ = 0;
  int64_t embedding_ = 0;
  int64_t pooler_ = 0;
  int64_t classifier_ = 0;
  int64_t extra_elementwise_ = 0;
  int64_t dense_total_ = 0;
};

}  // namespace fcabert
