#pragma once
// Helpers for the model-file tests: a tiny valid model, temp files, and header surgery
// to craft broken files.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <cstdint>
#include <fstream>
#include <functional>
#include <iterator>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "fcabert/error.h"
#include "fcabert/model_file.h"

namespace fcabert::format_test {

// vocab 10, hidden 8, 2 heads, 2 layers, intermediate 16, 16 positions, 2 labels.
inline ModelInfo tiny_info() {
  ModelInfo info;
  info.bert.vocab_size = 10;
  info.bert.hidden_size = 8;
  info.bert.num_layers = 2;
  info.bert.num_heads = 2;
  info.bert.intermediate_size = 16;
  info.bert.max_position_embeddings = 16;
  info.bert.type_vocab_size = 2;
  info.bert.layer_norm_eps = 1e-12f;
  info.tokenizer.vocab = {"[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "the", "a", "good", "bad", "movie"};
  info.tokenizer.max_len = 16;
  info.head.labels = {"negative", "positive"};
  info.head.task = "sst2";
  info.fca.keep_ratios = {0.7, 0.5};
  info.fca.clusters = 3;
  info.provenance_json = R"({"source":"unit test","seed":7})";
  return info;
}

// Deterministic values that are not exactly representable in bf16.
inline std::vector<float> test_values(size_t count, size_t salt) {
  std::vector<float> values(count);
  for (size_t i = 0; i < count; ++i)
    values[i] = static_cast<float>(std::sin(0.37 * double(i + 1) + double(salt)));
  return values;
}

// All expected tensors; 2-D weights stored as `matrix_dtype`, 1-D tensors as F32.
inline std::vector<TensorData> tiny_tensors(const ModelInfo& info, DType matrix_dtype = DType::kF32) {
  std::vector<TensorData> tensors;
  for (const auto& spec : expected_tensors(info.bert, static_cast<int64_t>(info.head.labels.size()))) {
    size_t numel = 1;
    for (int64_t dim : spec.shape) numel *= static_cast<size_t>(dim);
    const DType dtype = spec.shape.size() == 2 ? matrix_dtype : DType::kF32;
    tensors.push_back({spec.name, spec.shape, test_values(numel, tensors.size()), dtype});
  }
  return tensors;
}

inline std::string temp_path(const std::string& name) {
  return ::testing::TempDir() + "fcabert_test_" + std::to_string(::getpid()) + "_" + name;
}

inline std::string read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

inline void write_bytes(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

inline uint64_t header_length(const std::string& bytes) {
  uint64_t length = 0;
  for (int i = 7; i >= 0; --i) length = (length << 8) | static_cast<uint8_t>(bytes[static_cast<size_t>(i)]);
  return length;
}

inline std::string encode_u64(uint64_t value) {
  std::string bytes(8, '\0');
  for (int i = 0; i < 8; ++i) bytes[static_cast<size_t>(i)] = static_cast<char>((value >> (8 * i)) & 0xff);
  return bytes;
}

// Replaces the header text (edited by `edit`), re-padding it; the data section is kept.
inline void rewrite_header_text(const std::string& path, const std::function<void(std::string&)>& edit) {
  const std::string bytes = read_bytes(path);
  const uint64_t length = header_length(bytes);
  std::string text = bytes.substr(8, length);
  text.erase(text.find_last_not_of(' ') + 1);
  edit(text);
  text.append((64 - (8 + text.size()) % 64) % 64, ' ');
  write_bytes(path, encode_u64(text.size()) + text + bytes.substr(8 + length));
}

// Same, editing the parsed header JSON.
inline void rewrite_header(const std::string& path, const std::function<void(nlohmann::json&)>& edit) {
  rewrite_header_text(path, [&](std::string& text) {
    auto json = nlohmann::json::parse(text);
    edit(json);
    text = json.dump();
  });
}

// Runs `open` and checks it throws fcabert::Error naming the path and containing `phrase`.
inline void expect_open_error(const std::string& path, const std::string& phrase) {
  try {
    ModelFile::open(path);
    ADD_FAILURE() << "expected an error containing \"" << phrase << "\" for " << path;
  } catch (const Error& e) {
    const std::string message = e.what();
    EXPECT_NE(message.find(path), std::string::npos) << "message does not name the file: " << message;
    EXPECT_NE(message.find(phrase), std::string::npos) << "expected \"" << phrase << "\" in: " << message;
  }
}

}  // namespace fcabert::format_test
