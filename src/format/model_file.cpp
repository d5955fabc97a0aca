// ModelFile: map, validate (header, metadata, tensor table, expected tensors), then serve
// tensors by name.
#include "fcabert/model_file.h"

#include <cstring>
#include <unordered_map>

#include "format/bf16.h"
#include "format/errors.h"
#include "format/header.h"
#include "format/int8.h"
#include "format/mapped_file.h"
#include "format/metadata.h"
#include "format/validate.h"

namespace fcabert {

using format::file_error;
using format::kReconvertHint;
using format::shape_string;
using format::tensor_error;

struct ModelFile::Impl {
  std::string path;
  format::MappedFile mapping;
  uint64_t data_start = 0;
  ModelInfo info;
  std::vector<TensorInfo> tensors;
  std::unordered_map<std::string, size_t> index;  // name -> position in tensors
};

namespace {

std::string geometry(const ModelInfo& info) {
  return "hidden_size " + std::to_string(info.bert.hidden_size) + ", intermediate_size " +
         std::to_string(info.bert.intermediate_size) + ", vocab_size " +
         std::to_string(info.bert.vocab_size) + ", " + std::to_string(info.head.labels.size()) +
         " head output(s)";
}

// A "_scale" tensor whose I8 tensor is in the file (check_int8_tensors has checked the pair).
bool is_int8_scale(const TensorInfo& tensor, const std::vector<TensorInfo>& tensors,
                   const std::unordered_map<std::string, size_t>& index) {
  const std::string owner = format::int8_tensor_of_scale(tensor.name);
  if (owner.empty()) return false;
  const auto found = index.find(owner);
  return found != index.end() && tensors[found->second].dtype == DType::kI8;
}

// Every expected tensor is present with its shape, and nothing else is in the file but the
// scales of its I8 tensors.
void check_expected_tensors(const std::string& path, const ModelInfo& info,
                            const std::vector<TensorInfo>& tensors,
                            const std::unordered_map<std::string, size_t>& index) {
  // expected_tensors makes 16 specs per layer: bound the layer count by what the file holds
  // first, so that a corrupt "num_layers": 1000000000000 is refused instead of allocated
  // (I8 scales make the count larger, so the bound stays safe).
  if (static_cast<uint64_t>(info.bert.num_layers) > tensors.size() / 16)
    throw file_error(path, "metadata \"config\": num_layers " + std::to_string(info.bert.num_layers) +
                               " needs 16 tensors per layer, but the file has only " +
                               std::to_string(tensors.size()) +
                               "; the file is incomplete or its metadata is corrupt; " + kReconvertHint);
  const auto specs = expected_tensors(info.bert, static_cast<int64_t>(info.head.labels.size()));
  std::unordered_map<std::string, size_t> expected;
  size_t missing = 0;
  const TensorSpec* first_missing = nullptr;
  for (const auto& spec : specs) {
    expected.emplace(spec.name, expected.size());
    const auto found = index.find(spec.name);
    if (found == index.end()) {
      if (missing++ == 0) first_missing = &spec;
      continue;
    }
    const TensorInfo& tensor = tensors[found->second];
    if (tensor.shape != spec.shape)
      throw tensor_error(path, spec.name,
                         "shape " + shape_string(tensor.shape) + " does not match " +
                             shape_string(spec.shape) + " implied by the metadata (" + geometry(info) +
                             "); " + kReconvertHint);
  }
  if (first_missing)
    throw tensor_error(path, first_missing->name,
                       "missing tensor (expected shape " + shape_string(first_missing->shape) + ")" +
                           (missing > 1 ? " and " + std::to_string(missing - 1) + " more missing" : "") +
                           "; the file is incomplete; " + kReconvertHint);
  for (const auto& tensor : tensors)
    if (!expected.count(tensor.name) && !is_int8_scale(tensor, tensors, index))
      throw tensor_error(
          path, tensor.name,
          std::string("unexpected tensor: not part of a BertForSequenceClassification model with "
                      "this config (format_version 1 allows no extra tensors but the \"_scale\" of "
                      "each I8 tensor); ") +
              kReconvertHint);
}

std::unordered_map<std::string, size_t> index_by_name(const std::vector<TensorInfo>& tensors) {
  std::unordered_map<std::string, size_t> index;
  for (size_t i = 0; i < tensors.size(); ++i) index.emplace(tensors[i].name, i);
  return index;
}

}  // namespace

const char* dtype_name(DType dtype) {
  switch (dtype) {
    case DType::kF32:
      return "F32";
    case DType::kBF16:
      return "BF16";
    case DType::kI8:
      return "I8";
  }
  return "?";  // not reached: every DType is handled above (-Wswitch checks it)
}

int64_t TensorInfo::numel() const {
  int64_t count = 1;
  for (int64_t dim : shape) count *= dim;  // overflow-checked when the file was read
  return count;
}

namespace format {

ValidatedModel validate_model_bytes(const std::string& path, const uint8_t* bytes, uint64_t size) {
  ValidatedModel model;
  try {
    const Header header = read_header(path, bytes, size);
    model.data_start = header.data_start;
    model.info = parse_metadata(path, header.json);
    model.tensors = read_tensor_table(path, header);
    const auto index = index_by_name(model.tensors);
    check_int8_tensors(path, model.tensors, index, bytes, header.data_start);
    check_expected_tensors(path, model.info, model.tensors, index);
  } catch (const nlohmann::json::exception& e) {  // a check this reader forgot: still a clean error
    throw file_error(path, std::string("malformed header: ") + e.what() + "; " + kReconvertHint);
  }
  return model;
}

}  // namespace format

ModelFile ModelFile::open(const std::string& path) {
  auto impl = std::make_unique<Impl>();
  impl->path = path;
  impl->mapping = format::MappedFile::open(path);
  format::ValidatedModel model =
      format::validate_model_bytes(path, impl->mapping.data(), impl->mapping.size());
  impl->data_start = model.data_start;
  impl->info = std::move(model.info);
  impl->tensors = std::move(model.tensors);
  impl->index = index_by_name(impl->tensors);
  return ModelFile(std::move(impl));
}

ModelFile::ModelFile(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
ModelFile::ModelFile(ModelFile&&) noexcept = default;
ModelFile& ModelFile::operator=(ModelFile&&) noexcept = default;
ModelFile::~ModelFile() = default;

const std::string& ModelFile::path() const { return impl_->path; }
const ModelInfo& ModelFile::info() const { return impl_->info; }
const std::vector<TensorInfo>& ModelFile::tensors() const { return impl_->tensors; }
uint64_t ModelFile::file_size() const { return impl_->mapping.size(); }

bool ModelFile::has_tensor(const std::string& name) const { return impl_->index.count(name) != 0; }

const TensorInfo& ModelFile::tensor(const std::string& name) const {
  const auto found = impl_->index.find(name);
  if (found == impl_->index.end()) throw tensor_error(impl_->path, name, "no such tensor in the model file");
  return impl_->tensors[found->second];
}

const uint8_t* ModelFile::data(const std::string& name) const {
  return impl_->mapping.data() + impl_->data_start + tensor(name).offset;
}

std::vector<float> ModelFile::read_f32(const std::string& name, const std::vector<int64_t>& expected) const {
  const TensorInfo& info = tensor(name);
  if (info.shape != expected)
    throw tensor_error(
        impl_->path, name,
        "shape " + shape_string(info.shape) + " does not match the expected " + shape_string(expected));
  const uint8_t* bytes = data(name);
  std::vector<float> values(static_cast<size_t>(info.numel()));
  switch (info.dtype) {
    case DType::kF32:
      if (!values.empty()) std::memcpy(values.data(), bytes, values.size() * sizeof(float));
      break;
    case DType::kBF16:
      for (size_t i = 0; i < values.size(); ++i) {
        uint16_t bits;
        std::memcpy(&bits, bytes + 2 * i, sizeof bits);
        values[i] = format::bf16_to_f32(bits);
      }
      break;
    case DType::kI8:  // 2-D with a valid "_scale" tensor: checked at open
      format::dequantize_int8_rows(bytes, data(scale_tensor_name(name)), info.shape[0], info.shape[1],
                                   values.data());
      break;
  }
  return values;
}

}  // namespace fcabert
