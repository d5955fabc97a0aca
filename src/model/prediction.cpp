// What a Prediction says beyond its numbers (include/fcabert/engine.h).
#include "model/prediction.h"

#include <string>
#include <vector>

#include "fcabert/engine.h"
#include "fcabert/error.h"
#include "kernels/activations.h"
#include "kernels/softmax.h"

namespace fcabert {

namespace model {

void set_probabilities(Prediction& prediction, HeadKind kind) {
  prediction.probabilities.clear();
  if (kind == HeadKind::kClassification) {
    prediction.probabilities = prediction.logits;
    kernels::softmax_row(prediction.probabilities.data(),
                         static_cast<int64_t>(prediction.probabilities.size()));
  } else if (kind == HeadKind::kMultiLabel) {
    for (float logit : prediction.logits) prediction.probabilities.push_back(kernels::sigmoid(logit));
  }
}

}  // namespace model

std::vector<size_t> labels_above(const Prediction& prediction, double threshold) {
  if (!(threshold >= 0.0 && threshold <= 1.0))
    throw Error("the threshold must be a probability between 0 and 1, got " + std::to_string(threshold));
  std::vector<size_t> labels;
  for (size_t i = 0; i < prediction.probabilities.size(); ++i)
    if (prediction.probabilities[i] > threshold) labels.push_back(i);
  return labels;
}

Prediction average_of_windows(const Prediction* windows, size_t count, HeadKind kind) {
  if (count == 0) throw Error("average_of_windows: a text has at least one window");
  Prediction mean;
  mean.logits.assign(windows[0].logits.size(), 0.0f);
  for (size_t w = 0; w < count; ++w)
    for (size_t i = 0; i < mean.logits.size(); ++i) mean.logits[i] += windows[w].logits[i];
  for (float& logit : mean.logits) logit /= static_cast<float>(count);
  model::set_probabilities(mean, kind);
  mean.trace = windows[0].trace;
  return mean;
}

}  // namespace fcabert
