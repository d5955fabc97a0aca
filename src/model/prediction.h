#pragma once
// How a head turns logits into probabilities: the one place for it, used by the classifier's
// predictions and by average_of_windows (include/fcabert/engine.h).
#include "fcabert/config.h"
#include "fcabert/engine.h"

namespace fcabert::model {

// Sets prediction.probabilities from prediction.logits: softmax (classification), a sigmoid
// per label (multi-label), none (regression).
void set_probabilities(Prediction& prediction, HeadKind kind);

}  // namespace fcabert::model
