#pragma once
// The whole model-file validation on bytes in memory (header, metadata, tensor table,
// expected tensors), without touching the file system. ModelFile::open runs it on the
// mapping; the fuzz target fuzz/fuzz_model_file.cpp runs it on arbitrary bytes.
#include <cstdint>
#include <string>
#include <vector>

#include "fcabert/config.h"
#include "fcabert/model_file.h"

namespace fcabert::format {

struct ValidatedModel {
  uint64_t data_start = 0;          // file offset of the data section
  ModelInfo info;                   // the parsed metadata
  std::vector<TensorInfo> tensors;  // in file (offset) order, each inside the data section
};

// Validates `size` bytes at `bytes` as a model file (`path` is used in messages only).
// Throws fcabert::Error; never reads outside [bytes, bytes + size) and allocates nothing in
// proportion to a size the file declares, only to what it contains.
ValidatedModel validate_model_bytes(const std::string& path, const uint8_t* bytes, uint64_t size);

}  // namespace fcabert::format
