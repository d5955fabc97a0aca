#pragma once
// The sequence-classification head of BertForSequenceClassification:
//   pooled = tanh(W_p x[CLS] + b_p)   (the pooler, on row 0 of each sequence)
//   logits = W_c pooled + b_c         (the classifier)
#include <cstdint>
#include <oneapi/dnnl/dnnl.hpp>
#include <string>
#include <vector>

#include "fcabert/config.h"
#include "kernels/linear.h"
#include "model/weights.h"
#include "model/workspace.h"

namespace fcabert::model {

class Pooler {
 public:
  // Binds "<prefix>dense." (prefix usually "bert.pooler.").
  Pooler(const dnnl::engine& engine, const WeightSource& weights, const std::string& prefix,
         const BertConfig& config);

  // pooled[B, d] from the first row of each sequence of hidden[T, d].
  void forward(const float* hidden, const std::vector<int64_t>& offsets, Workspace& ws, float* pooled) const;
  size_t scratchpad_bytes() const { return dense_.scratchpad_bytes(); }

 private:
  kernels::Linear dense_;
  bool relu_;  // BertConfig::pooler_act "relu" (DistilBERT); else tanh
};

class Classifier {
 public:
  // Binds "<prefix>weight" [labels, d] and "<prefix>bias" (prefix usually "classifier.").
  Classifier(const dnnl::engine& engine, const WeightSource& weights, const std::string& prefix,
             int64_t hidden_size, int64_t num_labels);

  // logits[rows, labels] from pooled[rows, d].
  void forward(const float* pooled, int64_t rows, Workspace& ws, float* logits) const;
  int64_t num_labels() const { return dense_.out_features(); }
  size_t scratchpad_bytes() const { return dense_.scratchpad_bytes(); }

 private:
  kernels::Linear dense_;
};

}  // namespace fcabert::model
