#pragma once
// Where layers get their weights from, by Hugging Face tensor name. Layers read everything
// they need in their constructors, so a missing or misshapen tensor fails at load, never
// mid-inference. Two sources: the model file (ModelFileWeights) and tensors built in memory
// (TensorMap: tests, and tools that assemble a model without a file).
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "fcabert/model_file.h"

namespace fcabert::model {

class WeightSource {
 public:
  virtual ~WeightSource() = default;
  // The tensor as fp32 row-major, after checking its shape equals `shape`. Throws
  // fcabert::Error naming the tensor when it is missing or has another shape.
  virtual std::vector<float> read(const std::string& name, const std::vector<int64_t>& shape) const = 0;
  // The tensor's bf16 bits when the source stores it as bf16 with shape `shape`, else nullopt
  // (the caller then reads it with read(), which names any problem). Lets a large table
  // stay in half the memory without a widening pass at load.
  virtual std::optional<std::vector<uint16_t>> read_bf16(const std::string& /*name*/,
                                                         const std::vector<int64_t>& /*shape*/) const {
    return std::nullopt;
  }
};

// Reads from an opened model file (bf16 tensors are widened to fp32 by the reader).
class ModelFileWeights final : public WeightSource {
 public:
  explicit ModelFileWeights(const ModelFile& file) : file_(file) {}
  std::vector<float> read(const std::string& name, const std::vector<int64_t>& shape) const override;
  std::optional<std::vector<uint16_t>> read_bf16(const std::string& name,
                                                 const std::vector<int64_t>& shape) const override;

 private:
  const ModelFile& file_;
};

// Tensors held in memory.
class TensorMap final : public WeightSource {
 public:
  TensorMap() = default;
  explicit TensorMap(const std::vector<TensorData>& tensors);
  void add(const std::string& name, std::vector<int64_t> shape, std::vector<float> values);
  std::vector<float> read(const std::string& name, const std::vector<int64_t>& shape) const override;

 private:
  struct Tensor {
    std::vector<int64_t> shape;
    std::vector<float> values;
  };
  std::map<std::string, Tensor> tensors_;
};

// "[2, 384]", for messages.
std::string shape_to_string(const std::vector<int64_t>& shape);

}  // namespace fcabert::model
