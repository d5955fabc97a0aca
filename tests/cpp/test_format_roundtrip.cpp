// Model file: write a tiny model, read it back (fp32, bf16 and int8), check layout and metadata.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <cstring>

#include "fcabert/digest.h"
#include "format/bf16.h"
#include "format/header.h"
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

// An I8 tensor read back: each row's scale is max|row| / 127, the row's largest magnitude
// becomes +-127, and every value is within half a scale step of what was written.
void expect_int8_round_trip(const ModelFile& file, const TensorData& written) {
  const int64_t rows = written.shape[0], cols = written.shape[1];
  const TensorInfo& scale_info = file.tensor(scale_tensor_name(written.name));
  EXPECT_EQ(scale_info.dtype, DType::kF32);
  const std::vector<float> scales = file.read_f32(scale_info.name, {rows});
  const std::vector<float> values = file.read_f32(written.name, written.shape);
  const auto* codes = reinterpret_cast<const int8_t*>(file.data(written.name));
  for (int64_t r = 0; r < rows; ++r) {
    float largest = 0.f;
    int largest_code = 0;
    for (int64_t c = 0; c < cols; ++c) {
      const size_t i = static_cast<size_t>(r * cols + c);
      largest = std::max(largest, std::fabs(written.values[i]));
      largest_code = std::max(largest_code, std::abs(int{codes[i]}));
      ASSERT_EQ(values[i], static_cast<float>(codes[i]) * scales[r]) << "row " << r << " column " << c;
      // |x / s - round(x / s)| <= 1/2, plus float rounding of the quotient and the product.
      ASSERT_LE(std::fabs(values[i] - written.values[i]), scales[r] * (0.5f + 1e-5f))
          << "row " << r << " column " << c;
    }
    ASSERT_EQ(scales[r], largest / 127.f) << "row " << r;
    ASSERT_EQ(largest_code, largest > 0.f ? 127 : 0) << "row " << r;
  }
}

TEST_P(RoundTrip, TensorsReadBack) {
  const ModelFile file = ModelFile::open(path_);
  const size_t matrices = static_cast<size_t>(std::count_if(
      tensors_.begin(), tensors_.end(), [](const TensorData& t) { return t.shape.size() == 2; }));
  // I8 matrices come with one "_scale" tensor each.
  ASSERT_EQ(file.tensors().size(), tensors_.size() + (GetParam() == DType::kI8 ? matrices : 0));
  for (const auto& written : tensors_) {
    SCOPED_TRACE(written.name);
    ASSERT_TRUE(file.has_tensor(written.name));
    EXPECT_EQ(file.tensor(written.name).dtype, written.dtype);
    EXPECT_EQ(file.tensor(written.name).shape, written.shape);
    const std::vector<float> values = file.read_f32(written.name, written.shape);
    ASSERT_EQ(values.size(), written.values.size());
    if (written.dtype == DType::kI8) {
      expect_int8_round_trip(file, written);
      continue;
    }
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
    EXPECT_EQ(reinterpret_cast<uintptr_t>(file.data(tensor.name)) % format::dtype_size(tensor.dtype), 0u);
  }
  EXPECT_EQ(data_start + end, bytes.size());
}

INSTANTIATE_TEST_SUITE_P(Dtypes, RoundTrip, ::testing::Values(DType::kF32, DType::kBF16, DType::kI8),
                         [](const auto& param) { return std::string(dtype_name(param.param)); });

TensorData& find_tensor(std::vector<TensorData>& tensors, const std::string& name) {
  for (auto& t : tensors)
    if (t.name == name) return t;
  throw std::logic_error("no tensor " + name);
}

// Hand-made rows whose codes can be worked out by hand: scales 1, 0 and 0.25 are exact, and so
// are the quotients, so the ties (x / scale = k + 1/2) show the rounding: to even.
TEST(Int8, HandMadeTensorHasExactCodesAndScales) {
  const ModelInfo info = tiny_info();
  std::vector<TensorData> tensors = tiny_tensors(info);
  TensorData& pooler = find_tensor(tensors, "bert.pooler.dense.weight");
  pooler.dtype = DType::kI8;
  const std::vector<float> rows[3] = {
      {127.f, 0.5f, 1.5f, 2.5f, -0.5f, -2.5f, -127.f, 63.5f},       // scale 1
      {0.f, 0.f, 0.f, 0.f, 0.f, 0.f, 0.f, 0.f},                     // scale 0: stored as zeros
      {-31.75f, 8.f, 0.125f, 0.375f, 10.f, -0.0625f, 31.75f, 1.f},  // scale 0.25
  };
  for (size_t r = 0; r < 3; ++r) std::copy(rows[r].begin(), rows[r].end(), pooler.values.begin() + 8 * r);
  const std::string path = temp_path("int8_hand_made.fcab");
  write_model_file(path, info, tensors);
  const ModelFile file = ModelFile::open(path);
  const auto* codes = reinterpret_cast<const int8_t*>(file.data("bert.pooler.dense.weight"));
  const std::vector<int8_t> expected_codes = {127,  0,  2, 2, 0,  -2, -127, 64,  //
                                              0,    0,  0, 0, 0,  0,  0,    0,   //
                                              -127, 32, 0, 2, 40, 0,  127,  4};
  EXPECT_EQ(std::vector<int8_t>(codes, codes + 24), expected_codes);
  const std::vector<float> scales = file.read_f32("bert.pooler.dense.weight_scale", {8});
  EXPECT_EQ(scales[0], 1.f);
  EXPECT_EQ(scales[1], 0.f);
  EXPECT_EQ(scales[2], 0.25f);
  const std::vector<float> values = file.read_f32("bert.pooler.dense.weight", {8, 8});
  const std::vector<float> expected_values = {127.f,   0.f, 2.f, 2.f,  0.f,  -2.f, -127.f, 64.f,  //
                                              0.f,     0.f, 0.f, 0.f,  0.f,  0.f,  0.f,    0.f,   //
                                              -31.75f, 8.f, 0.f, 0.5f, 10.f, 0.f,  31.75f, 1.f};
  EXPECT_EQ(std::vector<float>(values.begin(), values.begin() + 24), expected_values);
  std::remove(path.c_str());
}

// A [64, 48] matrix whose values both writers compute exactly alike in float32 (integers,
// one division, a power of two; every 13th row zero). tests/python/test_convert.py
// (test_int8_quantization_matches_the_cpp_writer) quantizes the same matrix with
// tools/fcabert_model.py and checks the same digests: the two writers store identical bytes.
std::vector<float> cross_check_matrix() {
  std::vector<float> values(64 * 48);
  for (int r = 0; r < 64; ++r)
    for (int c = 0; c < 48; ++c)
      values[static_cast<size_t>(r * 48 + c)] =
          r % 13 == 0 ? 0.f
                      : static_cast<float>((r * 37 + c * 11) % 255 - 127) / static_cast<float>(3 + r % 7) *
                            std::ldexp(1.f, r % 9 - 4);
  return values;
}

inline constexpr const char* kCrossCheckCodesSha256 =
    "94cbc230439518b5eee842c038eb4a933ba820d1a4aeec3e3f2953ac067a5d44";
inline constexpr const char* kCrossCheckScalesSha256 =
    "692e5f5d5b2d74d95d97c66928c23aaa945bbebd85e214224bbbec13dd47c94d";

TEST(Int8, QuantizationMatchesThePythonWriter) {
  ModelInfo info = tiny_info();
  info.bert.vocab_size = 64;  // the word embeddings become the [64, 48] matrix
  info.bert.hidden_size = 48;
  info.bert.num_heads = 2;
  info.bert.intermediate_size = 48;
  while (info.tokenizer.vocab.size() < 64)
    info.tokenizer.vocab.push_back("w" + std::to_string(info.tokenizer.vocab.size()));
  std::vector<TensorData> tensors = tiny_tensors(info);
  TensorData& words = find_tensor(tensors, "bert.embeddings.word_embeddings.weight");
  words.values = cross_check_matrix();
  words.dtype = DType::kI8;
  const std::string path = temp_path("int8_cross_check.fcab");
  write_model_file(path, info, tensors);
  const ModelFile file = ModelFile::open(path);
  auto digest = [&](const std::string& name) {
    Sha256 sha;
    sha.update(std::string_view(reinterpret_cast<const char*>(file.data(name)), file.tensor(name).nbytes));
    return sha.hex_digest();
  };
  EXPECT_EQ(digest("bert.embeddings.word_embeddings.weight"), kCrossCheckCodesSha256);
  EXPECT_EQ(digest("bert.embeddings.word_embeddings.weight_scale"), kCrossCheckScalesSha256);
  std::remove(path.c_str());
}

// Given its "_scale" tensor, the writer quantizes with those scales (clamping to +-127), so
// that a file read back is copied bit for bit.
TEST(Int8, GivenScalesAreUsedAndCodesClamp) {
  const ModelInfo info = tiny_info();
  std::vector<TensorData> tensors = tiny_tensors(info, DType::kI8);
  const TensorData& pooler = find_tensor(tensors, "bert.pooler.dense.weight");
  std::vector<float> scales(8, 0.001f);  // far below max|row| / 127: most codes clamp
  scales[1] = 0.f;
  scales[2] = 0.5f;
  tensors.push_back({"bert.pooler.dense.weight_scale", {8}, scales, DType::kF32});
  const std::string path = temp_path("int8_given_scales.fcab");
  write_model_file(path, info, tensors);
  const ModelFile file = ModelFile::open(path);
  EXPECT_EQ(file.read_f32("bert.pooler.dense.weight_scale", {8}), scales);
  const auto* codes = reinterpret_cast<const int8_t*>(file.data("bert.pooler.dense.weight"));
  int clamped = 0;
  for (int r : {0, 1, 2}) {
    for (int c = 0; c < 8; ++c) {
      const size_t i = static_cast<size_t>(8 * r + c);
      const float quotient = scales[r] == 0.f ? 0.f : std::nearbyint(pooler.values[i] / scales[r]);
      EXPECT_EQ(codes[i], static_cast<int8_t>(std::clamp(quotient, -127.f, 127.f))) << "row " << r;
      clamped += std::fabs(quotient) > 127.f;
    }
  }
  EXPECT_GT(clamped, 4);
  // Read back and written again with its scales: the same bytes.
  std::vector<TensorData> copy;
  for (const TensorInfo& t : file.tensors())
    copy.push_back({t.name, t.shape, file.read_f32(t.name, t.shape), t.dtype});
  const std::string again = temp_path("int8_given_scales_copy.fcab");
  write_model_file(again, info, copy);
  EXPECT_EQ(format_test::read_bytes(again), format_test::read_bytes(path));
  std::remove(path.c_str());
  std::remove(again.c_str());
}

// Writer refusals: I8 is for 2-D tensors of finite values, and given scales must fit.
TEST(Int8, WriterRefusals) {
  const ModelInfo info = tiny_info();
  const std::string path = temp_path("int8_refused.fcab");
  auto expect_refused = [&](std::vector<TensorData> tensors, const std::string& phrase) {
    try {
      write_model_file(path, info, tensors);
      ADD_FAILURE() << "expected an error containing \"" << phrase << "\"";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(phrase), std::string::npos) << e.what();
      EXPECT_NE(std::string(e.what()).find(path), std::string::npos) << e.what();
    }
  };
  std::vector<TensorData> tensors = tiny_tensors(info);
  find_tensor(tensors, "bert.pooler.dense.bias").dtype = DType::kI8;
  expect_refused(tensors,
                 "tensor \"bert.pooler.dense.bias\" has shape [8]: dtype I8 (one scale per row) is only for "
                 "2-D tensors");
  tensors = tiny_tensors(info, DType::kI8);
  find_tensor(tensors, "classifier.weight").values[9] = std::nanf("");
  expect_refused(
      tensors,
      "tensor \"classifier.weight\" cannot be stored as I8: the value at row 1, column 1 is not finite");
  tensors = tiny_tensors(info, DType::kI8);
  tensors.push_back({"classifier.weight_scale", {3}, {1.f, 1.f, 1.f}, DType::kF32});
  expect_refused(tensors,
                 "tensor \"classifier.weight_scale\" holds the scales of I8 tensor \"classifier.weight\" and "
                 "must be F32 [2], not F32 [3]");
  tensors = tiny_tensors(info, DType::kI8);
  tensors.push_back({"classifier.weight_scale", {2}, {1.f, -1.f}, DType::kF32});
  expect_refused(tensors, "scale of row 1 is not finite and >= 0");
  EXPECT_FALSE(std::ifstream(path).good()) << "a refused file must not be created";
}

// With BF16 and I8 tensors of sizes that are not multiples of 64 (hidden size 9: odd I8
// sizes), every tensor still starts at a multiple of its element size and the tensors tile the
// data section: the writer stores the unaligned rest by decreasing element size.
TEST(Int8, MixedDtypesStayAlignedAndTileTheFile) {
  ModelInfo info = tiny_info();
  info.bert.hidden_size = 9;
  info.bert.num_heads = 3;
  info.bert.vocab_size = 11;
  info.tokenizer.vocab.push_back("film");
  info.head.labels = {"a", "b", "c"};
  std::vector<TensorData> tensors = tiny_tensors(info, DType::kI8);
  bool as_bf16 = false;  // every other matrix, starting with the word embeddings as I8
  for (TensorData& t : tensors) {
    if (t.shape.size() != 2) continue;
    if (as_bf16) t.dtype = DType::kBF16;
    as_bf16 = !as_bf16;
  }
  const std::string path = temp_path("int8_mixed.fcab");
  write_model_file(path, info, tensors);
  const ModelFile file = ModelFile::open(path);  // refuses a misaligned tensor
  EXPECT_EQ(file.tensor("bert.embeddings.word_embeddings.weight").dtype, DType::kI8);
  EXPECT_EQ(file.tensor("bert.embeddings.word_embeddings.weight").nbytes, 99u);  // 11 x 9: odd
  EXPECT_EQ(file.tensor("bert.embeddings.position_embeddings.weight").dtype, DType::kBF16);
  uint64_t end = 0;
  for (const TensorInfo& tensor : file.tensors()) {
    EXPECT_EQ(tensor.offset, end) << tensor.name;
    EXPECT_EQ(tensor.offset % format::dtype_size(tensor.dtype), 0u) << tensor.name;
    if (tensor.nbytes % 64 == 0) {
      EXPECT_EQ(tensor.offset % 64, 0u) << tensor.name;
    }
    end = tensor.offset + tensor.nbytes;
  }
  const std::string bytes = format_test::read_bytes(path);
  EXPECT_EQ(8 + format_test::header_length(bytes) + end, bytes.size());
  std::remove(path.c_str());
}

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
