#pragma once
// The fcabert model file: a safetensors file (8-byte little-endian header length, JSON
// header, raw little-endian tensors) whose "__metadata__" carries the engine's metadata.
// See docs/MODEL_FORMAT.md. The reader maps the file read-only and validates everything
// before any tensor is used; every problem is an fcabert::Error naming the file.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "fcabert/config.h"

namespace fcabert {

// kI8: signed 8-bit integers, only for 2-D tensors, each with an F32 companion tensor
// NAME + "_scale" of one scale per row: value (r, c) = int8(r, c) * scale[r].
enum class DType { kF32, kBF16, kI8 };
const char* dtype_name(DType dtype);  // "F32", "BF16", "I8" (the safetensors spelling)

// The companion tensor that holds the per-row scales of the I8 tensor `name`.
inline constexpr const char* kScaleSuffix = "_scale";
std::string scale_tensor_name(const std::string& name);

struct TensorInfo {
  std::string name;
  DType dtype = DType::kF32;
  std::vector<int64_t> shape;
  uint64_t offset = 0;  // from the start of the data section
  uint64_t nbytes = 0;
  int64_t numel() const;
};

// The format this build reads and writes.
inline constexpr const char* kFormatName = "fcabert";
inline constexpr int kFormatVersion = 1;

class ModelFile {
 public:
  // Maps and validates `path`: header, metadata, tensor table, offsets, dtypes, and the
  // shapes of every tensor the BERT config implies. Throws fcabert::Error.
  static ModelFile open(const std::string& path);

  ModelFile(ModelFile&&) noexcept;
  ModelFile& operator=(ModelFile&&) noexcept;
  ~ModelFile();

  const std::string& path() const;
  const ModelInfo& info() const;
  // Every tensor in the file, in file order, the "_scale" companions of I8 tensors included.
  const std::vector<TensorInfo>& tensors() const;
  const TensorInfo& tensor(const std::string& name) const;  // throws naming the tensor
  bool has_tensor(const std::string& name) const;
  uint64_t file_size() const;

  // The tensor as fp32 (bf16 is widened, I8 dequantized with its per-row scales), after
  // checking its shape equals `expected`.
  std::vector<float> read_f32(const std::string& name, const std::vector<int64_t>& expected) const;

  // The tensor's raw little-endian bytes in the mapping (tensor(name).nbytes of them), valid
  // while this ModelFile lives. Aligned to the element size; files written by
  // write_model_file / tools/convert.py align every tensor whose byte size is a multiple
  // of 64 to 64 bytes (docs/MODEL_FORMAT.md).
  const uint8_t* data(const std::string& name) const;

 private:
  struct Impl;
  explicit ModelFile(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// A tensor the model file must contain, with the shape the metadata implies.
struct TensorSpec {
  std::string name;  // Hugging Face BertForSequenceClassification naming
  std::vector<int64_t> shape;
};

// Every tensor a model file must contain, in canonical order: embeddings, the encoder
// layers, pooler, classifier (out dim = number of labels). Linear weights are [out, in].
// tools/fcabert_model.py (expected_tensors) mirrors this list.
std::vector<TensorSpec> expected_tensors(const BertConfig& config, int64_t num_outputs);

// A tensor to write: fp32 values stored as `dtype`. kI8 (2-D only) quantizes each row
// symmetrically: scale = max|row| / 127 (0 for an all-zero row), int8 = the nearest integer to
// value / scale (ties to even), clamped to [-127, 127]; the writer adds the F32 "_scale"
// tensor. If the list also holds that "_scale" tensor (F32, one value per row), its scales
// are used instead: a file read back with read_f32 is then copied bit for bit.
struct TensorData {
  std::string name;
  std::vector<int64_t> shape;
  std::vector<float> values;
  DType dtype = DType::kF32;
};

// Writes a model file (used by tests and tools; tools/convert.py is the usual writer).
// Writes exactly what it is given, without checking it against the config (tests craft
// invalid files with it); only values.size() == numel and unique names are required, and
// for kI8 a 2-D shape, finite values and valid given scales.
// info.format_version 0 means kFormatVersion. Throws fcabert::Error.
void write_model_file(const std::string& path, const ModelInfo& info, const std::vector<TensorData>& tensors);

// Metadata <-> JSON text (the "__metadata__" values), shared by reader, writer and inspect.
std::string model_info_to_json(const ModelInfo& info, bool include_vocab);

}  // namespace fcabert
