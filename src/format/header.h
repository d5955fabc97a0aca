#pragma once
// The safetensors container: 8-byte little-endian header length, JSON header, data section.
// Parses the header and the tensor table and checks them against the file's real size.
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "fcabert/model_file.h"

namespace fcabert::format {

inline constexpr uint64_t kHeaderLengthBytes = 8;
inline constexpr uint64_t kMaxHeaderBytes = 100'000'000;  // safetensors' limit too
inline constexpr uint64_t kAlignment = 64;                // data section start, and most tensors
inline constexpr const char* kMetadataKey = "__metadata__";

struct Header {
  nlohmann::json json;      // the header object: tensor entries and "__metadata__"
  uint64_t data_start = 0;  // file offset of the data section (8 + header length)
  uint64_t data_size = 0;   // bytes from data_start to the end of the file
};

// Checks the length field against the file size and parses the JSON (refusing duplicate keys).
Header read_header(const std::string& path, const uint8_t* bytes, uint64_t file_size);

// Every entry but "__metadata__": dtype, shape, offsets; then checks that the tensors tile the
// data section exactly (no overlap, no gap, nothing after the last tensor). In file order.
std::vector<TensorInfo> read_tensor_table(const std::string& path, const Header& header);

uint64_t dtype_size(DType dtype);

}  // namespace fcabert::format
