// What a Prediction says beyond its numbers (include/fcabert/engine.h).
#include <string>
#include <vector>

#include "fcabert/engine.h"
#include "fcabert/error.h"

namespace fcabert {

std::vector<size_t> labels_above(const Prediction& prediction, double threshold) {
  if (!(threshold >= 0.0 && threshold <= 1.0))
    throw Error("the threshold must be a probability between 0 and 1, got " + std::to_string(threshold));
  std::vector<size_t> labels;
  for (size_t i = 0; i < prediction.probabilities.size(); ++i)
    if (prediction.probabilities[i] > threshold) labels.push_back(i);
  return labels;
}

}  // namespace fcabert
