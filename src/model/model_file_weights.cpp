// Kept apart from weights.cpp so code that only uses TensorMap does not link the file reader.
#include <cstring>

#include "model/weights.h"

namespace fcabert::model {

std::vector<float> ModelFileWeights::read(const std::string& name, const std::vector<int64_t>& shape) const {
  return file_.read_f32(name, shape);
}

std::optional<std::vector<uint16_t>> ModelFileWeights::read_bf16(const std::string& name,
                                                                 const std::vector<int64_t>& shape) const {
  if (!file_.has_tensor(name)) return std::nullopt;
  const TensorInfo& info = file_.tensor(name);
  if (info.dtype != DType::kBF16 || info.shape != shape) return std::nullopt;
  std::vector<uint16_t> bits(static_cast<size_t>(info.numel()));
  if (!bits.empty()) std::memcpy(bits.data(), file_.data(name), bits.size() * sizeof(uint16_t));
  return bits;
}

}  // namespace fcabert::model
