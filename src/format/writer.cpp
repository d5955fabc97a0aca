// write_model_file and format::write_model: the same layout the reader expects and
// tools/convert.py writes.
#include "format/writer.h"

#include <cmath>
#include <cstring>
#include <fstream>
#include <set>
#include <unordered_map>

#include "fcabert/model_file.h"
#include "format/bf16.h"
#include "format/errors.h"
#include "format/header.h"
#include "format/int8.h"
#include "format/metadata.h"

namespace fcabert {
namespace {

using format::kAlignment;

// One tensor as it is stored: its header entry, and either the TensorData whose values are
// encoded as it is written (F32, BF16), or bytes made beforehand (I8 codes and the scales
// computed for them: 1 byte per element plus 4 per row, so the plan stays small).
struct StoredTensor {
  std::string name;
  DType dtype = DType::kF32;
  std::vector<int64_t> shape;
  uint64_t nbytes = 0;
  const TensorData* source = nullptr;
  std::vector<uint8_t> bytes;
};

Error tensor_write_error(const std::string& path, const std::string& name, const std::string& what) {
  return Error(path + ": write_model_file: tensor \"" + name + "\" " + what);
}

std::vector<uint8_t> encode_values(const TensorData& tensor) {
  std::vector<uint8_t> bytes(tensor.values.size() * format::dtype_size(tensor.dtype));
  if (tensor.dtype == DType::kF32) {
    if (!bytes.empty()) std::memcpy(bytes.data(), tensor.values.data(), bytes.size());
    return bytes;
  }
  for (size_t i = 0; i < tensor.values.size(); ++i) {
    const uint16_t bits = format::f32_to_bf16(tensor.values[i]);
    std::memcpy(bytes.data() + 2 * i, &bits, sizeof bits);
  }
  return bytes;
}

void check_tensor(const std::string& path, const TensorData& tensor) {
  int64_t numel = 1;
  for (int64_t dim : tensor.shape)
    if (dim < 0 || __builtin_mul_overflow(numel, dim, &numel))
      throw tensor_write_error(path, tensor.name,
                               "has an invalid shape " + format::shape_string(tensor.shape));
  if (static_cast<uint64_t>(numel) != tensor.values.size())
    throw tensor_write_error(path, tensor.name,
                             "has shape " + format::shape_string(tensor.shape) + " but " +
                                 std::to_string(tensor.values.size()) + " values");
  if (tensor.dtype == DType::kI8 && tensor.shape.size() != 2)
    throw tensor_write_error(
        path, tensor.name,
        "has shape " + format::shape_string(tensor.shape) +
            ": dtype I8 (one scale per row) is only for 2-D tensors; store it as F32 or BF16");
}

void check_tensors(const std::string& path, const std::vector<TensorData>& tensors) {
  std::set<std::string> names;
  for (const auto& tensor : tensors) {
    check_tensor(path, tensor);
    if (!names.insert(tensor.name).second)
      throw Error(path + ": write_model_file: duplicate tensor \"" + tensor.name + "\"");
  }
}

void check_finite(const std::string& path, const TensorData& tensor) {
  const int64_t cols = tensor.shape[1];
  for (size_t i = 0; i < tensor.values.size(); ++i)
    if (!std::isfinite(tensor.values[i]))
      throw tensor_write_error(path, tensor.name,
                               "cannot be stored as I8: the value at row " + std::to_string(i / cols) +
                                   ", column " + std::to_string(i % cols) + " is not finite");
}

// The scales given for an I8 tensor (its "_scale" tensor in the same list): F32, one per row,
// finite and >= 0, as the reader requires.
const std::vector<float>& checked_given_scales(const std::string& path, const TensorData& tensor,
                                               const TensorData& scale) {
  const std::vector<int64_t> rows{tensor.shape[0]};
  if (scale.dtype != DType::kF32 || scale.shape != rows)
    throw tensor_write_error(path, scale.name,
                             std::string("holds the scales of I8 tensor \"") + tensor.name +
                                 "\" and must be F32 " + format::shape_string(rows) + ", not " +
                                 dtype_name(scale.dtype) + " " + format::shape_string(scale.shape));
  for (size_t r = 0; r < scale.values.size(); ++r)
    if (!std::isfinite(scale.values[r]) || scale.values[r] < 0.f)
      throw tensor_write_error(path, scale.name,
                               "scale of row " + std::to_string(r) + " is not finite and >= 0");
  return scale.values;
}

// An I8 tensor's codes, quantized row by row, and (unless `given` holds them) its scales.
void plan_int8(const std::string& path, const TensorData& tensor, const TensorData* given,
               std::vector<StoredTensor>& stored) {
  check_finite(path, tensor);
  const int64_t rows = tensor.shape[0], cols = tensor.shape[1];
  std::vector<float> scales(static_cast<size_t>(rows));
  if (given) {
    scales = checked_given_scales(path, tensor, *given);
  } else {
    for (int64_t r = 0; r < rows; ++r)
      scales[r] = format::int8_row_scale(tensor.values.data() + r * cols, cols);
  }
  StoredTensor codes{tensor.name, DType::kI8, tensor.shape, tensor.values.size(), nullptr, {}};
  codes.bytes.resize(tensor.values.size());
  for (int64_t r = 0; r < rows; ++r)
    format::quantize_int8_row(tensor.values.data() + r * cols, cols, scales[r],
                              reinterpret_cast<int8_t*>(codes.bytes.data()) + r * cols);
  stored.push_back(std::move(codes));
  if (given) return;  // written as the F32 tensor it is
  StoredTensor scale{scale_tensor_name(tensor.name), DType::kF32, {rows}, 4 * scales.size(), nullptr, {}};
  scale.bytes.resize(scale.nbytes);
  if (!scales.empty()) std::memcpy(scale.bytes.data(), scales.data(), scale.nbytes);
  stored.push_back(std::move(scale));
}

// File order: tensors whose size is a multiple of 64 bytes first (so each starts 64-aligned),
// then the others by decreasing element size (F32, BF16, I8): every tensor stays aligned to
// its element size. Within a group, the order given.
std::vector<const StoredTensor*> storage_order(const std::vector<StoredTensor>& stored) {
  std::vector<const StoredTensor*> order;
  for (const auto& t : stored)
    if (t.nbytes % kAlignment == 0) order.push_back(&t);
  for (DType dtype : {DType::kF32, DType::kBF16, DType::kI8})
    for (const auto& t : stored)
      if (t.nbytes % kAlignment != 0 && t.dtype == dtype) order.push_back(&t);
  return order;
}

// Every check before anything is written, then what each stored tensor is made of.
std::vector<StoredTensor> plan_storage(const std::string& path, const std::vector<TensorData>& tensors) {
  check_tensors(path, tensors);
  std::unordered_map<std::string, const TensorData*> by_name;
  for (const auto& tensor : tensors) by_name.emplace(tensor.name, &tensor);
  std::vector<StoredTensor> stored;
  for (const auto& tensor : tensors) {
    if (tensor.dtype == DType::kI8) {
      const auto given = by_name.find(scale_tensor_name(tensor.name));
      plan_int8(path, tensor, given == by_name.end() ? nullptr : given->second, stored);
      continue;
    }
    const uint64_t nbytes = tensor.values.size() * format::dtype_size(tensor.dtype);
    stored.push_back(StoredTensor{tensor.name, tensor.dtype, tensor.shape, nbytes, &tensor, {}});
  }
  return stored;
}

// The header text, padded with spaces so that the data section starts at a multiple of 64.
std::string header_text(const ModelInfo& info, const std::vector<const StoredTensor*>& order) {
  nlohmann::ordered_json header;
  header[format::kMetadataKey] = format::metadata_to_json(info);
  uint64_t offset = 0;
  for (const StoredTensor* tensor : order) {
    header[tensor->name] = {{"dtype", dtype_name(tensor->dtype)},
                            {"shape", tensor->shape},
                            {"data_offsets", {offset, offset + tensor->nbytes}}};
    offset += tensor->nbytes;
  }
  std::string text = header.dump();
  const size_t padded = (format::kHeaderLengthBytes + text.size() + kAlignment - 1) / kAlignment * kAlignment;
  text.append(padded - format::kHeaderLengthBytes - text.size(), ' ');
  return text;
}

void write_u64_le(std::ostream& out, uint64_t value) {
  char bytes[8];
  for (int i = 0; i < 8; ++i) bytes[i] = static_cast<char>((value >> (8 * i)) & 0xff);
  out.write(bytes, sizeof bytes);
}

void write_planned(std::ostream& out, const ModelInfo& info, const std::vector<StoredTensor>& stored) {
  const auto order = storage_order(stored);
  const std::string header = header_text(info, order);
  write_u64_le(out, header.size());
  out.write(header.data(), static_cast<std::streamsize>(header.size()));
  for (const StoredTensor* tensor : order) {
    const auto encoded = tensor->source ? encode_values(*tensor->source) : std::vector<uint8_t>();
    const auto& bytes = tensor->source ? encoded : tensor->bytes;
    out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
  }
}

}  // namespace

namespace format {

void write_model(std::ostream& out, const std::string& name, const ModelInfo& info,
                 const std::vector<TensorData>& tensors) {
  write_planned(out, info, plan_storage(name, tensors));
}

}  // namespace format

void write_model_file(const std::string& path, const ModelInfo& info,
                      const std::vector<TensorData>& tensors) {
  const auto stored = plan_storage(path, tensors);  // every check before the file is created
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  if (!out) throw Error(path + ": cannot open for writing: " + std::strerror(errno));
  write_planned(out, info, stored);
  out.close();
  if (!out) throw Error(path + ": write failed: " + std::strerror(errno));
}

}  // namespace fcabert
