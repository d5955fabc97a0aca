// Kept apart from weights.cpp so code that only uses TensorMap does not link the file reader.
#include "model/weights.h"

namespace fcabert::model {

std::vector<float> ModelFileWeights::read(const std::string& name, const std::vector<int64_t>& shape) const {
  return file_.read_f32(name, shape);
}

}  // namespace fcabert::model
