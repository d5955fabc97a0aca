// write_model_file and format::write_model: the same layout the reader expects and
// tools/convert.py writes.
#include "format/writer.h"

#include <cstring>
#include <fstream>
#include <set>

#include "fcabert/model_file.h"
#include "format/bf16.h"
#include "format/errors.h"
#include "format/header.h"
#include "format/metadata.h"

namespace fcabert {
namespace {

using format::kAlignment;

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
      throw Error(path + ": write_model_file: tensor \"" + tensor.name + "\" has an invalid shape " +
                  format::shape_string(tensor.shape));
  if (static_cast<uint64_t>(numel) != tensor.values.size())
    throw Error(path + ": write_model_file: tensor \"" + tensor.name + "\" has shape " +
                format::shape_string(tensor.shape) + " but " + std::to_string(tensor.values.size()) +
                " values");
}

// File order: tensors whose size is a multiple of 64 bytes first (so each starts 64-aligned),
// then the other F32 tensors, then the rest; every tensor stays aligned to its element size.
std::vector<const TensorData*> storage_order(const std::vector<TensorData>& tensors) {
  std::vector<const TensorData*> order;
  auto bytes = [](const TensorData& t) { return t.values.size() * format::dtype_size(t.dtype); };
  for (const auto& t : tensors)
    if (bytes(t) % kAlignment == 0) order.push_back(&t);
  for (const auto& t : tensors)
    if (bytes(t) % kAlignment != 0 && t.dtype == DType::kF32) order.push_back(&t);
  for (const auto& t : tensors)
    if (bytes(t) % kAlignment != 0 && t.dtype != DType::kF32) order.push_back(&t);
  return order;
}

// The header text, padded with spaces so that the data section starts at a multiple of 64.
std::string header_text(const ModelInfo& info, const std::vector<const TensorData*>& order) {
  nlohmann::ordered_json header;
  header[format::kMetadataKey] = format::metadata_to_json(info);
  uint64_t offset = 0;
  for (const TensorData* tensor : order) {
    const uint64_t nbytes = tensor->values.size() * format::dtype_size(tensor->dtype);
    header[tensor->name] = {{"dtype", dtype_name(tensor->dtype)},
                            {"shape", tensor->shape},
                            {"data_offsets", {offset, offset + nbytes}}};
    offset += nbytes;
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

void check_tensors(const std::string& path, const std::vector<TensorData>& tensors) {
  std::set<std::string> names;
  for (const auto& tensor : tensors) {
    check_tensor(path, tensor);
    if (!names.insert(tensor.name).second)
      throw Error(path + ": write_model_file: duplicate tensor \"" + tensor.name + "\"");
  }
}

void write_checked(std::ostream& out, const ModelInfo& info, const std::vector<TensorData>& tensors) {
  const auto order = storage_order(tensors);
  const std::string header = header_text(info, order);
  write_u64_le(out, header.size());
  out.write(header.data(), static_cast<std::streamsize>(header.size()));
  for (const TensorData* tensor : order) {
    const auto bytes = encode_values(*tensor);
    out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
  }
}

}  // namespace

namespace format {

void write_model(std::ostream& out, const std::string& name, const ModelInfo& info,
                 const std::vector<TensorData>& tensors) {
  check_tensors(name, tensors);
  write_checked(out, info, tensors);
}

}  // namespace format

void write_model_file(const std::string& path, const ModelInfo& info,
                      const std::vector<TensorData>& tensors) {
  check_tensors(path, tensors);  // before the file is created
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  if (!out) throw Error(path + ": cannot open for writing: " + std::strerror(errno));
  write_checked(out, info, tensors);
  out.close();
  if (!out) throw Error(path + ": write failed: " + std::strerror(errno));
}

}  // namespace fcabert
