// libFuzzer target: the model-file reader on arbitrary bytes (header length, header JSON,
// metadata, tensor table, offsets, dtypes, shapes, expected tensors). A clean
// fcabert::Error is the expected outcome for almost every input; anything else (a crash,
// a sanitizer report, an escaped exception, a tensor outside the input) is a finding.
#include <cstdint>
#include <cstring>
#include <vector>

#include "fcabert/error.h"
#include "format/validate.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  // Copy so that the bytes live in a heap block of exactly `size` bytes: ASan then flags
  // any read past the end of the "file".
  std::vector<uint8_t> bytes(data, data + size);
  try {
    const auto model = fcabert::format::validate_model_bytes("fuzz.fcab", bytes.data(), bytes.size());
    // Every tensor the reader accepted must lie inside the input: touch its first and last byte.
    volatile uint8_t sink = 0;
    for (const auto& tensor : model.tensors) {
      if (model.data_start + tensor.offset + tensor.nbytes > bytes.size()) __builtin_trap();
      if (tensor.nbytes == 0) continue;
      sink ^= bytes[model.data_start + tensor.offset];
      sink ^= bytes[model.data_start + tensor.offset + tensor.nbytes - 1];
    }
    (void)sink;
  } catch (const fcabert::Error&) {
  }
  return 0;
}
