// The public API end to end: write a tiny model file, Model::load it, tokenize, run
// Sessions, compare with the naive reference.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <optional>
#include <random>
#include <thread>

#include "fcabert/engine.h"
#include "fcabert/error.h"
#include "fcabert/model_file.h"
#include "format/bf16.h"
#include "model/bert_classifier.h"
#include "model/weights.h"
#include "test_model_tiny_bert.h"

namespace fcabert {
namespace {

using model_test::random_bert_tensors;
using model_test::ReferenceBert;

ModelInfo tiny_model_info() {
  ModelInfo info;
  info.bert = model_test::tiny_config();
  info.head = model_test::tiny_head();
  info.tokenizer.vocab = model_test::tiny_vocab(info.bert, {"the", "a", "good", "bad", "movie"});
  info.tokenizer.max_len = info.bert.max_position_embeddings;
  info.provenance_json = R"({"source":"test_model_end_to_end"})";
  return info;
}

std::string temp_model_path(const std::string& name) {
  return ::testing::TempDir() + "fcabert_model_e2e_" + std::to_string(::getpid()) + "_" + name + ".fcab";
}

class EndToEnd : public ::testing::TestWithParam<DType> {
 protected:
  void SetUp() override {
    info_ = tiny_model_info();
    tensors_ = random_bert_tensors(info_.bert, 3, 99);
    if (GetParam() == DType::kBF16) {
      // Round the matrices to bf16 here, so the fp32 reference sees exactly the values the
      // engine widens back at load.
      for (TensorData& t : tensors_) {
        if (t.shape.size() != 2) continue;
        t.dtype = DType::kBF16;
        for (float& v : t.values) v = format::bf16_to_f32(format::f32_to_bf16(v));
      }
    }
    if (GetParam() == DType::kI8)
      for (TensorData& t : tensors_)
        if (t.shape.size() == 2) t.dtype = DType::kI8;
    path_ = temp_model_path(dtype_name(GetParam()));
    write_model_file(path_, info_, tensors_);
    if (GetParam() == DType::kI8) {
      // The reference sees the dequantized matrices the engine loads (the quantization itself
      // is tested in test_format_roundtrip.cpp).
      const ModelFile file = ModelFile::open(path_);
      for (TensorData& t : tensors_) t.values = file.read_f32(t.name, t.shape);
    }
  }
  void TearDown() override { std::remove(path_.c_str()); }

  ModelInfo info_;
  std::vector<TensorData> tensors_;
  std::string path_;
};

// Tolerance 2e-5 absolute on logits (see test_model_forward.cpp).
TEST_P(EndToEnd, LoadTokenizeRunMatchesReference) {
  const std::shared_ptr<const Model> model = Model::load(path_, LoadOptions{2});
  EXPECT_EQ(model->path(), path_);
  EXPECT_EQ(model->info().bert.num_layers, 2);
  EXPECT_EQ(model->options().threads, 2);

  std::vector<Encoding> batch{model->tokenizer().encode("the good movie", 40),
                              model->tokenizer().encode_pair("a bad movie", "the movie", 40),
                              model->tokenizer().encode("", 40)};
  std::mt19937 rng(3);
  batch.push_back(model_test::random_encoding(40, info_.bert, rng));
  ASSERT_EQ(batch[0].ids, (std::vector<int32_t>{2, 5, 7, 9, 3}));

  Session session(model);
  const std::vector<Prediction> predictions = session.run(batch);
  ASSERT_EQ(predictions.size(), batch.size());
  const ReferenceBert reference(info_.bert, tensors_);
  for (size_t s = 0; s < batch.size(); ++s) {
    const std::vector<double> expected = reference.logits(batch[s]);
    ASSERT_EQ(predictions[s].logits.size(), 3u);
    ASSERT_EQ(predictions[s].probabilities.size(), 3u);
    for (size_t k = 0; k < 3; ++k)
      EXPECT_NEAR(predictions[s].logits[k], expected[k], 2e-5) << "sequence " << s;
  }
}

TEST_P(EndToEnd, SessionsOnSeveralThreadsShareOneModel) {
  const std::shared_ptr<const Model> model = Model::load(path_, LoadOptions{1});
  std::mt19937 rng(4);
  std::vector<Encoding> batch;
  for (int64_t n : {5, 17, 1, 40}) batch.push_back(model_test::random_encoding(n, info_.bert, rng));
  const std::vector<Prediction> expected = Session(model).run(batch);
  std::vector<std::vector<Prediction>> results(3);
  std::vector<std::thread> threads;
  for (auto& result : results) {
    threads.emplace_back([&] {
      Session session(model);
      for (int i = 0; i < 5; ++i) result = session.run(batch);
    });
  }
  for (auto& t : threads) t.join();
  for (const auto& result : results) {
    ASSERT_EQ(result.size(), expected.size());
    for (size_t s = 0; s < expected.size(); ++s)
      for (size_t k = 0; k < 3; ++k) EXPECT_NEAR(result[s].logits[k], expected[s].logits[k], 1e-6);
  }
}

TEST_P(EndToEnd, SessionRejectsBadInputAndStaysUsable) {
  Session session(Model::load(path_));
  Encoding bad{{2, 50, 3}, {0, 0, 0}, false};
  EXPECT_THROW(session.run({bad}), Error);
  Encoding good{{2, 7, 3}, {0, 0, 0}, false};
  EXPECT_EQ(session.run({good}).size(), 1u);
  EXPECT_TRUE(session.run({}).empty());
}

TEST_P(EndToEnd, WorkspaceGrowsToTheLargestBatchAndIsReused) {
  Session session(Model::load(path_));
  const Encoding small{{2, 7, 3}, {0, 0, 0}, false};
  Encoding large{{2}, {0}, false};  // [CLS] 30 words [SEP]
  for (int i = 0; i < 30; ++i) large.ids.push_back(5 + i % 20);
  large.ids.push_back(3);
  large.type_ids.assign(large.ids.size(), 0);
  session.run({small});
  const size_t after_small = session.workspace_bytes();
  EXPECT_GT(after_small, 0u);
  session.run({large, large, large});
  const size_t after_large = session.workspace_bytes();
  EXPECT_GT(after_large, after_small);
  session.run({small});
  EXPECT_EQ(session.workspace_bytes(), after_large);  // kept for the next large batch
}

// The file and the values it holds, given in memory, run the same arithmetic: a bf16 table
// that stays bf16 (the embeddings) and is widened row by row gives the logits, bit for bit,
// that its values widened at load give.
TEST_P(EndToEnd, TheFileGivesTheLogitsOfItsValuesInMemory) {
  const ModelFile file = ModelFile::open(path_);
  const model::BertClassifier from_file(info_.bert, info_.head, model::ModelFileWeights(file), 2);
  const model::BertClassifier from_memory(info_.bert, info_.head, model::TensorMap(tensors_), 2);
  std::mt19937 rng(6);
  std::vector<Encoding> batch;
  for (int64_t n : {3, 40, 1, 17}) batch.push_back(model_test::random_encoding(n, info_.bert, rng));
  model::Workspace file_ws(from_file.engine(), from_file.workspace_spec());
  model::Workspace memory_ws(from_memory.engine(), from_memory.workspace_spec());
  const std::vector<Prediction> expected = from_memory.predict(batch, memory_ws);
  const std::vector<Prediction> actual = from_file.predict(batch, file_ws);
  ASSERT_EQ(actual.size(), expected.size());
  for (size_t s = 0; s < expected.size(); ++s)
    EXPECT_EQ(actual[s].logits, expected[s].logits) << "sequence " << s;
}

// read_bf16 hands out a tensor's bits only when it is stored as bf16 with the asked shape;
// otherwise the caller reads it with read(), which names what is wrong.
TEST_P(EndToEnd, Bf16BitsOnlyForABf16TensorOfTheAskedShape) {
  const ModelFile file = ModelFile::open(path_);
  const model::ModelFileWeights weights(file);
  const std::string name = "bert.embeddings.word_embeddings.weight";
  const std::vector<int64_t> shape{info_.bert.vocab_size, info_.bert.hidden_size};
  const std::optional<std::vector<uint16_t>> bits = weights.read_bf16(name, shape);
  ASSERT_EQ(bits.has_value(), GetParam() == DType::kBF16);
  if (bits) {
    const std::vector<float> widened = weights.read(name, shape);
    ASSERT_EQ(bits->size(), widened.size());
    for (size_t i = 0; i < widened.size(); ++i) ASSERT_EQ(format::bf16_to_f32((*bits)[i]), widened[i]) << i;
  }
  EXPECT_FALSE(weights.read_bf16(name, {shape[1], shape[0]}).has_value());
  EXPECT_FALSE(weights.read_bf16("bert.embeddings.no_such_table", shape).has_value());
  EXPECT_FALSE(weights.read_bf16("bert.embeddings.LayerNorm.weight", {info_.bert.hidden_size}).has_value());
  try {
    weights.read(name, {shape[1], shape[0]});
    ADD_FAILURE() << "read a table in the wrong shape";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(name), std::string::npos) << e.what();
  }
}

INSTANTIATE_TEST_SUITE_P(Dtypes, EndToEnd, ::testing::Values(DType::kF32, DType::kBF16, DType::kI8),
                         [](const ::testing::TestParamInfo<DType>& info) { return dtype_name(info.param); });

TEST(ModelLoad, FailsClearly) {
  EXPECT_THROW(Model::load("/nonexistent/model.fcab"), Error);
  EXPECT_THROW(Model::load("/nonexistent/model.fcab", LoadOptions{0}), Error);
  EXPECT_THROW(Session(nullptr), Error);
}

TEST(ModelLoad, RefusesAnUnsupportedActivationNamingTheFile) {
  ModelInfo info = tiny_model_info();
  info.bert.hidden_act = "relu";
  const std::string path = temp_model_path("relu");
  write_model_file(path, info, random_bert_tensors(info.bert, 3, 1));
  try {
    Model::load(path);
    ADD_FAILURE() << "loaded a relu model";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(path), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("relu"), std::string::npos) << e.what();
  }
  std::remove(path.c_str());
}

}  // namespace
}  // namespace fcabert
