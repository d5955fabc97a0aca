// Reading the safetensors container: the header length, the JSON header and the tensor table.
#include "format/header.h"

#include <algorithm>
#include <limits>
#include <optional>
#include <set>
#include <string_view>

#include "format/errors.h"
#include "format/json_limits.h"

namespace fcabert::format {
namespace {

uint64_t decode_u64_le(const uint8_t* bytes) {
  uint64_t value = 0;
  for (int i = 7; i >= 0; --i) value = (value << 8) | bytes[i];
  return value;
}

std::string megabytes(uint64_t bytes) { return std::to_string(bytes / 1'000'000) + " MB"; }

uint64_t checked_header_length(const std::string& path, const uint8_t* bytes, uint64_t file_size) {
  if (file_size == 0)
    throw file_error(path, std::string("file is empty (0 bytes); not a model file; ") + kReconvertHint);
  if (file_size < kHeaderLengthBytes)
    throw file_error(path, "file is truncated: " + std::to_string(file_size) +
                               " bytes, shorter than the 8-byte header length at byte offset 0; " +
                               kReconvertHint);
  const uint64_t length = decode_u64_le(bytes);
  if (length > kMaxHeaderBytes)
    throw file_error(path, "header length " + std::to_string(length) + " (at byte offset 0) exceeds the " +
                               megabytes(kMaxHeaderBytes) +
                               " limit; the file is corrupt or not a model file");
  if (length > file_size - kHeaderLengthBytes)
    throw file_error(path, "file is truncated: the header declares " + std::to_string(length) +
                               " bytes of JSON but only " + std::to_string(file_size - kHeaderLengthBytes) +
                               " bytes follow the length field; " + kReconvertHint);
  if (length < 2)
    throw file_error(path, "header is not valid JSON: it is only " + std::to_string(length) + " bytes");
  return length;
}

// Parses the header text; duplicate keys (which JSON parsers silently merge) are refused.
nlohmann::json parse_header_json(const std::string& path, std::string_view text) {
  std::vector<std::set<std::string>> open_objects;
  std::optional<std::string> duplicate;
  bool duplicate_is_tensor = false;
  auto watch_keys = [&](int /*depth*/, nlohmann::json::parse_event_t event, nlohmann::json& parsed) {
    using Event = nlohmann::json::parse_event_t;
    if (event == Event::object_start) open_objects.emplace_back();
    if (event == Event::object_end && !open_objects.empty()) open_objects.pop_back();
    if (event == Event::key && !open_objects.empty() && !duplicate) {
      std::string key = parsed.get<std::string>();
      if (!open_objects.back().insert(key).second) {
        duplicate_is_tensor = open_objects.size() == 1;
        duplicate = std::move(key);
      }
    }
  };
  nlohmann::json json;
  try {
    json = parse_bounded<nlohmann::json>(text, watch_keys);
  } catch (const JsonTooDeep&) {
    throw file_error(path, "header JSON is nested more than " + std::to_string(kMaxJsonDepth) +
                               " levels deep; the file is corrupt or not a model file");
  } catch (const nlohmann::json::parse_error& e) {
    throw file_error(path, "header is not valid JSON near byte offset " +
                               std::to_string(kHeaderLengthBytes + e.byte) + ": " + e.what() +
                               "; the file is corrupt; " + kReconvertHint);
  }
  if (duplicate && duplicate_is_tensor)
    throw file_error(path, "duplicate tensor name \"" + *duplicate + "\" in the header; " + kReconvertHint);
  if (duplicate)
    throw file_error(path, "duplicate key \"" + *duplicate + "\" in the header JSON; " + kReconvertHint);
  if (!json.is_object())
    throw file_error(
        path, "header is not a JSON object; the file is not a model file; " + std::string(kReconvertHint));
  return json;
}

std::optional<DType> parse_dtype(const std::string& text) {
  if (text == "F32") return DType::kF32;
  if (text == "BF16") return DType::kBF16;
  if (text == "I8") return DType::kI8;
  return std::nullopt;
}

DType entry_dtype(const std::string& path, const std::string& name, const nlohmann::json& entry) {
  const auto found = entry.find("dtype");
  if (found == entry.end() || !found->is_string())
    throw tensor_error(path, name, "header entry has no \"dtype\" string; " + std::string(kReconvertHint));
  const auto dtype = parse_dtype(found->get<std::string>());
  if (!dtype)
    throw tensor_error(
        path, name,
        "unsupported dtype \"" + found->get<std::string>() +
            "\"; this build reads F32, BF16 and I8 (int8 with per-row scales); re-run tools/convert.py "
            "with --dtype fp32, bf16 or int8");
  return *dtype;
}

int64_t checked_dimension(const std::string& path, const std::string& name, const nlohmann::json& dim) {
  if (dim.is_number_unsigned()) {
    const auto value = dim.get<uint64_t>();
    if (value > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()))
      throw tensor_error(path, name,
                         "dimension " + std::to_string(value) + " overflows int64; the header is corrupt; " +
                             std::string(kReconvertHint));
    return static_cast<int64_t>(value);
  }
  if (dim.is_number_integer()) {
    const auto value = dim.get<int64_t>();
    if (value < 0)
      throw tensor_error(path, name,
                         "negative dimension " + std::to_string(value) +
                             " in shape; the header is corrupt; " + std::string(kReconvertHint));
    return value;
  }
  throw tensor_error(path, name,
                     "shape dimension " + brief(dim) + " is not an integer; the header is corrupt; " +
                         std::string(kReconvertHint));
}

std::vector<int64_t> entry_shape(const std::string& path, const std::string& name,
                                 const nlohmann::json& entry) {
  const auto found = entry.find("shape");
  if (found == entry.end() || !found->is_array())
    throw tensor_error(path, name, "header entry has no \"shape\" array; " + std::string(kReconvertHint));
  std::vector<int64_t> shape;
  for (const auto& dim : *found) shape.push_back(checked_dimension(path, name, dim));
  return shape;
}

// numel * element size, refusing int64 overflow and anything larger than the data section.
uint64_t checked_byte_size(const std::string& path, const std::string& name,
                           const std::vector<int64_t>& shape, DType dtype, uint64_t data_size) {
  int64_t numel = 1;
  for (int64_t dim : shape)
    if (__builtin_mul_overflow(numel, dim, &numel))
      throw tensor_error(path, name,
                         "shape " + shape_string(shape) +
                             ": element count overflows int64; the header is corrupt; " + kReconvertHint);
  int64_t bytes = 0;
  if (__builtin_mul_overflow(numel, static_cast<int64_t>(dtype_size(dtype)), &bytes))
    throw tensor_error(path, name,
                       "shape " + shape_string(shape) +
                           ": byte size overflows int64; the header is corrupt; " + kReconvertHint);
  if (static_cast<uint64_t>(bytes) > data_size)
    throw tensor_error(path, name,
                       "shape " + shape_string(shape) + " needs " + std::to_string(bytes) + " bytes of " +
                           dtype_name(dtype) + ", more than the whole data section (" +
                           std::to_string(data_size) +
                           " bytes); the file is truncated or the header is corrupt");
  return static_cast<uint64_t>(bytes);
}

std::pair<uint64_t, uint64_t> entry_offsets(const std::string& path, const std::string& name,
                                            const nlohmann::json& entry) {
  const auto found = entry.find("data_offsets");
  if (found == entry.end() || !found->is_array() || found->size() != 2 || !(*found)[0].is_number_unsigned() ||
      !(*found)[1].is_number_unsigned())
    throw tensor_error(
        path, name,
        std::string("\"data_offsets\" must be two non-negative integers [begin, end]; ") + kReconvertHint);
  return {(*found)[0].get<uint64_t>(), (*found)[1].get<uint64_t>()};
}

TensorInfo read_entry(const std::string& path, const std::string& name, const nlohmann::json& entry,
                      const Header& header) {
  if (!entry.is_object())
    throw tensor_error(path, name, "header entry is not a JSON object; " + std::string(kReconvertHint));
  TensorInfo info;
  info.name = name;
  info.dtype = entry_dtype(path, name, entry);
  info.shape = entry_shape(path, name, entry);
  const uint64_t needed = checked_byte_size(path, name, info.shape, info.dtype, header.data_size);
  const auto [begin, end] = entry_offsets(path, name, entry);
  const std::string where = "data_offsets [" + std::to_string(begin) + ", " + std::to_string(end) + "]";
  if (begin > end)
    throw tensor_error(path, name,
                       where + ": begin is after end; the header is corrupt; " + std::string(kReconvertHint));
  if (end > header.data_size)
    throw tensor_error(path, name,
                       where + " (file bytes " + std::to_string(header.data_start + begin) + ".." +
                           std::to_string(header.data_start + end) + ") extends past the end of the file (" +
                           std::to_string(header.data_start + header.data_size) +
                           " bytes); the file is truncated; " + kReconvertHint);
  if (end - begin != needed)
    throw tensor_error(path, name,
                       where + " span " + std::to_string(end - begin) + " bytes but " +
                           dtype_name(info.dtype) + " " + shape_string(info.shape) + " needs " +
                           std::to_string(needed) + " bytes; the header is corrupt; " + kReconvertHint);
  if ((header.data_start + begin) % dtype_size(info.dtype) != 0)
    throw tensor_error(path, name,
                       "data at file byte offset " + std::to_string(header.data_start + begin) +
                           " is not aligned to its " + std::to_string(dtype_size(info.dtype)) +
                           "-byte elements; " + kReconvertHint);
  info.offset = begin;
  info.nbytes = end - begin;
  return info;
}

// The tensors must cover the data section exactly, in offset order (as safetensors requires).
void check_tiling(const std::string& path, const std::vector<TensorInfo>& tensors, const Header& header) {
  std::vector<const TensorInfo*> by_offset;
  for (const auto& tensor : tensors) by_offset.push_back(&tensor);
  std::stable_sort(by_offset.begin(), by_offset.end(), [](const TensorInfo* a, const TensorInfo* b) {
    return a->offset != b->offset ? a->offset < b->offset : a->nbytes < b->nbytes;
  });
  uint64_t covered = 0;
  const TensorInfo* previous = nullptr;
  for (const TensorInfo* tensor : by_offset) {
    if (tensor->offset < covered)
      throw tensor_error(path, tensor->name,
                         "data at file byte offset " + std::to_string(header.data_start + tensor->offset) +
                             " overlaps tensor \"" + previous->name + "\"; the header is corrupt; " +
                             std::string(kReconvertHint));
    if (tensor->offset > covered)
      throw tensor_error(
          path, tensor->name,
          "gap of " + std::to_string(tensor->offset - covered) + " unused bytes at file byte offset " +
              std::to_string(header.data_start + covered) +
              " before this tensor (safetensors requires contiguous tensors); " + kReconvertHint);
    covered = tensor->offset + tensor->nbytes;
    previous = tensor;
  }
  if (covered != header.data_size)
    throw file_error(path, std::to_string(header.data_size - covered) +
                               " trailing bytes at file byte offset " +
                               std::to_string(header.data_start + covered) +
                               " after the last tensor; the file is corrupt; " + kReconvertHint);
}

}  // namespace

uint64_t dtype_size(DType dtype) {
  switch (dtype) {
    case DType::kF32:
      return 4;
    case DType::kBF16:
      return 2;
    case DType::kI8:
      return 1;
  }
  return 4;  // not reached: every DType is handled above (-Wswitch checks it)
}

Header read_header(const std::string& path, const uint8_t* bytes, uint64_t file_size) {
  const uint64_t length = checked_header_length(path, bytes, file_size);
  const std::string_view text(reinterpret_cast<const char*>(bytes + kHeaderLengthBytes), length);
  Header header;
  header.json = parse_header_json(path, text);
  header.data_start = kHeaderLengthBytes + length;
  header.data_size = file_size - header.data_start;
  return header;
}

std::vector<TensorInfo> read_tensor_table(const std::string& path, const Header& header) {
  std::vector<TensorInfo> tensors;
  for (const auto& [name, entry] : header.json.items())
    if (name != kMetadataKey) tensors.push_back(read_entry(path, name, entry, header));
  check_tiling(path, tensors, header);
  std::sort(tensors.begin(), tensors.end(),
            [](const TensorInfo& a, const TensorInfo& b) { return a.offset < b.offset; });
  return tensors;
}

}  // namespace fcabert::format
