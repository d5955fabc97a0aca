#include "model/weights.h"

#include "fcabert/error.h"

namespace fcabert::model {

std::string shape_to_string(const std::vector<int64_t>& shape) {
  std::string text = "[";
  for (size_t i = 0; i < shape.size(); ++i) text += (i ? ", " : "") + std::to_string(shape[i]);
  return text + "]";
}

TensorMap::TensorMap(const std::vector<TensorData>& tensors) {
  for (const TensorData& t : tensors) add(t.name, t.shape, t.values);
}

void TensorMap::add(const std::string& name, std::vector<int64_t> shape, std::vector<float> values) {
  int64_t count = 1;
  for (int64_t dim : shape) count *= dim;
  if (count != static_cast<int64_t>(values.size())) {
    throw Error("tensor " + name + ": shape " + shape_to_string(shape) + " needs " + std::to_string(count) +
                " values, got " + std::to_string(values.size()));
  }
  tensors_[name] = Tensor{std::move(shape), std::move(values)};
}

std::vector<float> TensorMap::read(const std::string& name, const std::vector<int64_t>& shape) const {
  const auto it = tensors_.find(name);
  if (it == tensors_.end()) throw Error("missing tensor " + name);
  if (it->second.shape != shape) {
    throw Error("tensor " + name + " has shape " + shape_to_string(it->second.shape) + ", expected " +
                shape_to_string(shape));
  }
  return it->second.values;
}

}  // namespace fcabert::model
