// Model file: write a tiny model, read it back (fp32 and bf16), check layout and metadata.
#include <gtest/gtest.h>

#include <cstdio>
#include <cstring>

#include "format/bf16.h"
#include "format_test_util.h"

namespace fcabert {
namespace {

using format_test::temp_path;
using format_test::tiny_info;
using format_test::tiny_tensors;

class RoundTrip : public ::testing::TestWithParam<DType> {
 protected:
  void SetUp() override {
    path_ = temp_path(std::string("roundtrip_") + dtype_name(GetParam()) + ".fcab");
    info_ = tiny_info();
    tensors_ = tiny_tensors(info_, GetParam());
    write_model_file(path_, info_, tensors_);
  }
  void TearDown() override { std::remove(path_.c_str()); }

  std::string path_;
  ModelInfo info_;
  std::vector<TensorData> tensors_;
};

TEST_P(RoundTrip, TensorsReadBack) {
  const ModelFile file = ModelFile::open(path_);
  ASSERT_EQ(file.tensors().size(), tensors_.size());
  for (const auto& written : tensors_) {
    SCOPED_TRACE(written.name);
    ASSERT_TRUE(file.has_tensor(written.name));
    EXPECT_EQ(file.tensor(written.name).dtype, written.dtype);
    EXPECT_EQ(file.tensor(written.name).shape, written.shape);
    const std::vector<float> values = file.read_f32(written.name, written.shape);
    ASSERT_EQ(values.size(), written.values.size());
    for (size_t i = 0; i < values.size(); ++i) {
      if (written.dtype == DType::kF32) {
        ASSERT_EQ(values[i], written.values[i]);
      } else {  // rounded to nearest even; bf16 keeps 8 significant bits: relative error <= 2^-8
        ASSERT_EQ(values[i], format::bf16_to_f32(format::f32_to_bf16(written.values[i])));
        ASSERT_NEAR(values[i], written.values[i], std::fabs(written.values[i]) / 256);
      }
    }
  }
}

TEST_P(RoundTrip, MetadataReadsBack) {
  const ModelFile file = ModelFile::open(path_);
  const ModelInfo& info = file.info();
  EXPECT_EQ(info.format_version, kFormatVersion);
  EXPECT_EQ(info.bert.vocab_size, 10);
  EXPECT_EQ(info.bert.hidden_size, 8);
  EXPECT_EQ(info.bert.num_layers, 2);
  EXPECT_EQ(info.bert.num_heads, 2);
  EXPECT_EQ(info.bert.intermediate_size, 16);
  EXPECT_EQ(info.bert.max_position_embeddings, 16);
  EXPECT_EQ(info.bert.type_vocab_size, 2);
  EXPECT_FLOAT_EQ(info.bert.layer_norm_eps, 1e-12f);
  EXPECT_EQ(info.bert.hidden_act, "gelu");
  EXPECT_EQ(info.tokenizer.vocab, info_.tokenizer.vocab);
  EXPECT_TRUE(info.tokenizer.lowercase);
  EXPECT_FALSE(info.tokenizer.strip_accents.has_value());
  EXPECT_EQ(info.tokenizer.max_len, 16);
  EXPECT_EQ(info.tokenizer.cls_token, "[CLS]");
  EXPECT_EQ(info.head.kind, HeadKind::kClassification);
  EXPECT_EQ(info.head.labels, (std::vector<std::string>{"negative", "positive"}));
  EXPECT_EQ(info.head.task, "sst2");
  EXPECT_FALSE(info.head.pair_input);
  EXPECT_EQ(info.fca.keep_ratios, (std::vector<double>{0.7, 0.5}));
  EXPECT_EQ(info.fca.clusters, 3);
  EXPECT_EQ(info.fca.pooling, Pooling::kWeighted);
  EXPECT_EQ(nlohmann::json::parse(info.provenance_json), nlohmann::json::parse(info_.provenance_json));
}

TEST_P(RoundTrip, LayoutIsAlignedSafetensors) {
  const std::string bytes = format_test::read_bytes(path_);
  const uint64_t data_start = 8 + format_test::header_length(bytes);
  EXPECT_EQ(data_start % 64, 0u);
  const ModelFile file = ModelFile::open(path_);
  EXPECT_EQ(file.file_size(), bytes.size());
  const uint8_t* base = file.data(file.tensors().front().name) - file.tensors().front().offset;
  uint64_t end = 0;
  for (const TensorInfo& tensor : file.tensors()) {  // contiguous, in file order
    EXPECT_EQ(tensor.offset, end) << tensor.name;
    end = tensor.offset + tensor.nbytes;
    if (tensor.nbytes % 64 == 0) {
      EXPECT_EQ(tensor.offset % 64, 0u) << tensor.name;
    }
    EXPECT_EQ(file.data(tensor.name), base + tensor.offset);
    EXPECT_EQ(reinterpret_cast<uintptr_t>(file.data(tensor.name)) % (tensor.dtype == DType::kF32 ? 4 : 2),
              0u);
  }
  EXPECT_EQ(data_start + end, bytes.size());
}

INSTANTIATE_TEST_SUITE_P(Dtypes, RoundTrip, ::testing::Values(DType::kF32, DType::kBF16),
                         [](const auto& param) { return std::string(dtype_name(param.param)); });

TEST(ModelFile, MultiLabelHeadKind) {
  ModelInfo info = tiny_info();
  info.head.kind = HeadKind::kMultiLabel;
  const std::string path = temp_path("multi_label.fcab");
  write_model_file(path, info, tiny_tensors(info));
  EXPECT_EQ(ModelFile::open(path).info().head.kind, HeadKind::kMultiLabel);
  std::remove(path.c_str());
  for (HeadKind kind : {HeadKind::kClassification, HeadKind::kMultiLabel, HeadKind::kRegression})
    EXPECT_EQ(parse_head_kind(head_kind_name(kind)), kind);
  EXPECT_STREQ(head_kind_name(HeadKind::kMultiLabel), "multi_label");
  EXPECT_THROW(parse_head_kind("multi-label"), Error);
}

TEST(ModelFile, PoolerActivationRoundTripsAndDefaultsToTanh) {
  ModelInfo info = tiny_info();
  EXPECT_EQ(info.bert.pooler_act, "tanh");
  info.bert.pooler_act = "relu";  // a converted DistilBERT
  const std::string path = temp_path("relu_pooler.fcab");
  write_model_file(path, info, tiny_tensors(info));
  EXPECT_EQ(ModelFile::open(path).info().bert.pooler_act, "relu");
  std::remove(path.c_str());
  info.bert.pooler_act = "sigmoid";
  write_model_file(path, info, tiny_tensors(info));
  EXPECT_THROW(ModelFile::open(path), Error);
  std::remove(path.c_str());
}

TEST(ModelFile, RegressionDenseAndPairMetadata) {
  ModelInfo info = tiny_info();
  info.head.kind = HeadKind::kRegression;
  info.head.labels = {"score"};
  info.head.pair_input = true;
  info.head.task = "stsb";
  info.fca = FcaSchedule{};
  info.fca.pooling = Pooling::kMean;
  info.tokenizer.strip_accents = false;
  info.tokenizer.lowercase = false;
  const std::string path = temp_path("regression.fcab");
  write_model_file(path, info, tiny_tensors(info));
  const ModelFile file = ModelFile::open(path);
  EXPECT_EQ(file.info().head.kind, HeadKind::kRegression);
  EXPECT_TRUE(file.info().head.pair_input);
  EXPECT_FALSE(file.info().fca.enabled());
  EXPECT_EQ(file.info().fca.pooling, Pooling::kMean);
  ASSERT_TRUE(file.info().tokenizer.strip_accents.has_value());
  EXPECT_FALSE(*file.info().tokenizer.strip_accents);
  EXPECT_EQ(file.tensor("classifier.weight").shape, (std::vector<int64_t>{1, 8}));
  std::remove(path.c_str());
}

TEST(ModelFile, ReadF32ChecksShapeAndName) {
  const ModelInfo info = tiny_info();
  const std::string path = temp_path("names.fcab");
  write_model_file(path, info, tiny_tensors(info));
  const ModelFile file = ModelFile::open(path);
  EXPECT_EQ(file.read_f32("bert.pooler.dense.bias", {8}).size(), 8u);
  try {
    file.read_f32("bert.pooler.dense.weight", {8, 4});
    ADD_FAILURE() << "expected a shape error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("bert.pooler.dense.weight"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("[8, 4]"), std::string::npos) << e.what();
  }
  EXPECT_FALSE(file.has_tensor("nope"));
  EXPECT_THROW(file.tensor("nope"), Error);
  std::remove(path.c_str());
}

TEST(ModelFile, ModelInfoJsonWithAndWithoutVocab) {
  const ModelInfo info = tiny_info();
  const auto full = nlohmann::json::parse(model_info_to_json(info, true));
  const auto brief = nlohmann::json::parse(model_info_to_json(info, false));
  EXPECT_EQ(full["format"], "fcabert");
  EXPECT_EQ(full["config"]["hidden_size"], 8);
  EXPECT_EQ(full["config"]["layer_norm_eps"], 1e-12);
  EXPECT_EQ(full["tokenizer"]["vocab"].size(), 10u);
  EXPECT_EQ(full["tokenizer"]["vocab_size"], 10);
  EXPECT_FALSE(brief["tokenizer"].contains("vocab"));
  EXPECT_EQ(brief["tokenizer"]["vocab_size"], 10);
  EXPECT_EQ(brief["head"]["labels"], nlohmann::json({"negative", "positive"}));
  EXPECT_EQ(brief["fca"]["keep_ratios"], nlohmann::json({0.7, 0.5}));
  EXPECT_EQ(brief["provenance"]["seed"], 7);
}

TEST(Bf16, RoundsToNearestEven) {
  EXPECT_EQ(format::f32_to_bf16(1.0f), 0x3f80);
  EXPECT_EQ(format::bf16_to_f32(0x3f80), 1.0f);
  float halfway;  // 1 + 2^-8: exactly between two bf16 values; ties go to the even one (1.0)
  const uint32_t bits = 0x3f808000u;
  std::memcpy(&halfway, &bits, sizeof halfway);
  EXPECT_EQ(format::f32_to_bf16(halfway), 0x3f80);
  EXPECT_TRUE(std::isnan(format::bf16_to_f32(format::f32_to_bf16(std::nanf("")))));
  EXPECT_EQ(format::bf16_to_f32(format::f32_to_bf16(-2.5f)), -2.5f);
}

}  // namespace
}  // namespace fcabert
