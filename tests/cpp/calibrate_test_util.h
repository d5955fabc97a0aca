#pragma once
// For the calibrate tests: a tiny random 4-layer BERT model file (4 layers so that
// monotonicity has something to constrain) whose vocabulary has real words, so that plain
// text tokenizes: "the", "a", "good", "bad", "movie" and "word10" ... "word49".
#include <string>

#include "fcabert/model_file.h"
#include "test_model_tiny_bert.h"

namespace fcabert::calibrate_test {

// Writes the model to `path` (its matrices stored as `matrix_dtype`) and returns its metadata.
inline ModelInfo write_tiny_model(const std::string& path, HeadKind kind, bool pair,
                                  DType matrix_dtype = DType::kF32) {
  ModelInfo info;
  info.bert = model_test::tiny_config();
  info.bert.num_layers = 4;
  info.head = model_test::tiny_head(kind);
  info.head.pair_input = pair;
  info.head.task = "";
  info.tokenizer.vocab = {"[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "the", "a", "good", "bad", "movie"};
  while (static_cast<int64_t>(info.tokenizer.vocab.size()) < info.bert.vocab_size)
    info.tokenizer.vocab.push_back("word" + std::to_string(info.tokenizer.vocab.size()));
  info.tokenizer.max_len = info.bert.max_position_embeddings;
  info.provenance_json = R"({"source":"test_calibrate_search"})";
  const int64_t outputs = static_cast<int64_t>(info.head.labels.size());
  std::vector<TensorData> tensors = model_test::random_bert_tensors(info.bert, outputs, 23);
  for (TensorData& t : tensors)
    if (t.shape.size() == 2) t.dtype = matrix_dtype;
  write_model_file(path, info, tensors);
  return info;
}

}  // namespace fcabert::calibrate_test
