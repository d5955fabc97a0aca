// Model file: every way a file can be broken gives an fcabert::Error naming the file and
// the problem, never a crash or a huge allocation.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <cstdio>
#include <cstring>
#include <limits>

#include "format_test_util.h"

namespace fcabert {
namespace {

using format_test::expect_open_error;
using format_test::read_bytes;
using format_test::rewrite_header;
using format_test::rewrite_header_text;
using format_test::temp_path;
using format_test::tiny_info;
using format_test::tiny_tensors;
using format_test::write_bytes;
using nlohmann::json;

class Corrupt : public ::testing::Test {
 protected:
  void SetUp() override {
    const auto* test = ::testing::UnitTest::GetInstance()->current_test_info();
    path_ = temp_path(std::string("corrupt_") + test->name() + ".fcab");
    info_ = tiny_info();
    tensors_ = tiny_tensors(info_);
  }
  void TearDown() override { std::remove(path_.c_str()); }

  void write() { write_model_file(path_, info_, tensors_); }
  void write_without(const std::string& name) {
    std::vector<TensorData> kept;
    for (const auto& t : tensors_)
      if (t.name != name) kept.push_back(t);
    write_model_file(path_, info_, kept);
  }
  TensorData& tensor(const std::string& name) {
    for (auto& t : tensors_)
      if (t.name == name) return t;
    throw std::logic_error("no tensor " + name);
  }
  std::string metadata_value(const std::string& key) {
    std::string value;
    rewrite_header(path_, [&](json& header) { value = header["__metadata__"][key]; });
    return value;
  }
  void set_metadata_value(const std::string& key, const std::string& value) {
    rewrite_header(path_, [&](json& header) { header["__metadata__"][key] = value; });
  }

  std::string path_;
  ModelInfo info_;
  std::vector<TensorData> tensors_;
};

TEST_F(Corrupt, ValidFileOpens) {
  write();
  EXPECT_NO_THROW(ModelFile::open(path_));
}

TEST_F(Corrupt, NonExistentFile) { expect_open_error(path_ + ".missing", "No such file"); }

TEST_F(Corrupt, Directory) { expect_open_error(::testing::TempDir(), "is a directory"); }

TEST_F(Corrupt, EmptyFile) {
  write_bytes(path_, "");
  expect_open_error(path_, "file is empty");
}

TEST_F(Corrupt, TruncatedAtSeveralCutPoints) {
  write();
  const std::string bytes = read_bytes(path_);
  const size_t data_start = 8 + format_test::header_length(bytes);
  for (size_t cut : {size_t{1}, size_t{7}, size_t{8}, size_t{9}, size_t{100}, data_start - 1, data_start,
                     data_start + 1, data_start + 1000, bytes.size() - 8, bytes.size() - 1}) {
    SCOPED_TRACE("cut at " + std::to_string(cut));
    write_bytes(path_, bytes.substr(0, cut));
    expect_open_error(path_, "truncated");
  }
}

TEST_F(Corrupt, TruncatedAtEveryLengthNeverCrashes) {
  write();
  const std::string bytes = read_bytes(path_);
  for (size_t cut = 0; cut < bytes.size(); cut += 61) {  // ~150 cut points
    write_bytes(path_, bytes.substr(0, cut));
    EXPECT_THROW(ModelFile::open(path_), Error) << "cut at " << cut;
  }
}

TEST_F(Corrupt, HeaderBytesFlippedNeverCrash) {
  write();
  const std::string bytes = read_bytes(path_);
  const size_t data_start = 8 + format_test::header_length(bytes);
  for (size_t i = 0; i < data_start; i += 53) {  // ~100 positions x 3 values
    for (char value : {'"', '9', '\xff'}) {
      std::string broken = bytes;
      broken[i] = value;
      write_bytes(path_, broken);
      try {
        ModelFile::open(path_);  // some flips are harmless (e.g. inside a token string)
      } catch (const Error&) {
      }
    }
  }
}

TEST_F(Corrupt, HeaderJsonSyntax) {
  const std::vector<std::function<void(std::string&)>> breakages = {
      [](std::string& text) { text.insert(1, "#"); },                     // stray character
      [](std::string& text) { text.pop_back(); },                         // no closing brace
      [](std::string& text) { text[text.rfind("]},")] = ')'; },           // broken array
      [](std::string& text) { text = text.substr(0, text.size() / 2); },  // cut in the middle
  };
  for (size_t i = 0; i < breakages.size(); ++i) {
    SCOPED_TRACE("breakage " + std::to_string(i));
    write();
    rewrite_header_text(path_, breakages[i]);
    expect_open_error(path_, "header is not valid JSON near byte offset");
  }
}

TEST_F(Corrupt, HeaderNotAnObject) {
  write();
  rewrite_header_text(path_, [](std::string& text) { text = "[" + text + "]"; });
  expect_open_error(path_, "header is not a JSON object");
}

TEST_F(Corrupt, HeaderLengthLargerThanFile) {
  write();
  std::string bytes = read_bytes(path_);
  bytes.replace(0, 8, format_test::encode_u64(bytes.size()));
  write_bytes(path_, bytes);
  expect_open_error(path_, "file is truncated: the header declares");
}

TEST_F(Corrupt, TwoGigabyteHeaderLength) {
  write();
  std::string bytes = read_bytes(path_);
  bytes.replace(0, 8, format_test::encode_u64(uint64_t{2} << 30));
  write_bytes(path_, bytes);
  expect_open_error(path_, "exceeds the 100 MB limit");
}

TEST_F(Corrupt, MissingMetadata) {
  write();
  rewrite_header(path_, [](json& header) { header.erase("__metadata__"); });
  expect_open_error(path_, "has no \"__metadata__\"");
}

TEST_F(Corrupt, PlainSafetensorsFormat) {
  write();
  set_metadata_value("format", "pt");
  expect_open_error(path_, "not an fcabert model file");
}

TEST_F(Corrupt, MetadataValueNotAString) {
  write();
  rewrite_header(path_, [](json& header) { header["__metadata__"]["config"] = json::object(); });
  expect_open_error(path_, "metadata \"config\" is not a string");
}

TEST_F(Corrupt, MissingMetadataEntry) {
  write();
  rewrite_header(path_, [](json& header) { header["__metadata__"].erase("fca"); });
  expect_open_error(path_, "metadata has no \"fca\" entry");
}

TEST_F(Corrupt, UnknownFormatVersion) {
  info_.format_version = 2;
  write();
  expect_open_error(path_, "unsupported format_version \"2\"; this build reads format_version \"1\"");
}

TEST_F(Corrupt, MissingTensor) {
  write_without("bert.encoder.layer.1.output.dense.weight");
  expect_open_error(
      path_, "tensor \"bert.encoder.layer.1.output.dense.weight\": missing tensor (expected shape [8, 16])");
}

TEST_F(Corrupt, WrongShape) {
  tensor("bert.pooler.dense.weight").shape = {8, 4};
  tensor("bert.pooler.dense.weight").values.resize(32);
  write();
  expect_open_error(path_, "tensor \"bert.pooler.dense.weight\": shape [8, 4] does not match [8, 8]");
}

TEST_F(Corrupt, ClassifierDoesNotMatchLabels) {
  info_.head.labels = {"a", "b", "c"};
  write();
  expect_open_error(path_, "tensor \"classifier.weight\": shape [2, 8] does not match [3, 8]");
}

TEST_F(Corrupt, UnexpectedExtraTensor) {
  tensors_.push_back({"bert.encoder.layer.2.output.dense.bias", {8}, std::vector<float>(8), DType::kF32});
  write();
  expect_open_error(path_, "tensor \"bert.encoder.layer.2.output.dense.bias\": unexpected tensor");
}

TEST_F(Corrupt, OffsetsPastTheEnd) {
  write();
  const uint64_t size = read_bytes(path_).size();
  rewrite_header(path_, [&](json& header) {
    header["bert.pooler.dense.bias"]["data_offsets"] = {size, size + 32};
  });
  expect_open_error(path_, "tensor \"bert.pooler.dense.bias\": data_offsets");
  expect_open_error(path_, "extends past the end of the file");
}

TEST_F(Corrupt, OffsetsBeginAfterEnd) {
  write();
  rewrite_header(path_, [](json& header) { header["bert.pooler.dense.bias"]["data_offsets"] = {64, 32}; });
  expect_open_error(path_, "begin is after end");
}

TEST_F(Corrupt, OffsetsSpanWrongSize) {
  write();
  rewrite_header(path_, [](json& header) {
    auto& offsets = header["bert.pooler.dense.bias"]["data_offsets"];
    offsets[1] = offsets[1].get<uint64_t>() - 4;
  });
  expect_open_error(path_, "span 28 bytes but F32 [8] needs 32 bytes");
}

TEST_F(Corrupt, OffsetsNegative) {
  write();
  rewrite_header(path_, [](json& header) { header["bert.pooler.dense.bias"]["data_offsets"] = {-32, 0}; });
  expect_open_error(path_, "\"data_offsets\" must be two non-negative integers");
}

TEST_F(Corrupt, OverlappingOffsets) {
  write();
  rewrite_header(path_, [](json& header) {
    header["bert.pooler.dense.bias"]["data_offsets"] =
        header["bert.embeddings.LayerNorm.bias"]["data_offsets"];
  });
  expect_open_error(path_, "overlaps tensor");
}

TEST_F(Corrupt, GapBetweenTensors) {
  write();
  std::string bytes = read_bytes(path_);
  rewrite_header(path_, [&](json& header) {
    for (auto& [name, entry] : header.items()) {
      if (name == "__metadata__") continue;
      auto& offsets = entry["data_offsets"];
      if (offsets[0].get<uint64_t>() > 0)
        offsets = {offsets[0].get<uint64_t>() + 64, offsets[1].get<uint64_t>() + 64};
    }
  });
  write_bytes(path_, read_bytes(path_) + std::string(64, '\0'));
  expect_open_error(path_, "gap of 64 unused bytes");
}

TEST_F(Corrupt, TrailingBytes) {
  write();
  write_bytes(path_, read_bytes(path_) + std::string(16, '\0'));
  expect_open_error(path_, "16 trailing bytes");
}

TEST_F(Corrupt, DuplicateTensorNames) {
  write();
  std::string entry;
  rewrite_header(path_, [&](json& header) { entry = header["bert.pooler.dense.bias"].dump(); });
  rewrite_header_text(
      path_, [&](std::string& text) { text.insert(1, "\"bert.pooler.dense.bias\":" + entry + ","); });
  expect_open_error(path_, "duplicate tensor name \"bert.pooler.dense.bias\"");
}

TEST_F(Corrupt, TeraElementShape) {
  write();
  rewrite_header(path_, [](json& header) {
    header["bert.pooler.dense.weight"]["shape"] = {1000000, 1000000};
  });
  expect_open_error(path_,
                    "shape [1000000, 1000000] needs 4000000000000 bytes of F32, more than the whole data");
}

TEST_F(Corrupt, NegativeDimension) {
  write();
  rewrite_header(path_, [](json& header) { header["bert.pooler.dense.bias"]["shape"] = {-8}; });
  expect_open_error(path_, "negative dimension -8");
}

TEST_F(Corrupt, NonIntegerDimension) {
  write();
  rewrite_header(path_, [](json& header) { header["bert.pooler.dense.bias"]["shape"] = {8.5}; });
  expect_open_error(path_, "is not an integer");
}

TEST_F(Corrupt, OverflowingDimensions) {
  write();
  rewrite_header(path_, [](json& header) {
    header["bert.pooler.dense.weight"]["shape"] = {uint64_t{1} << 32, uint64_t{1} << 32, 4};
  });
  expect_open_error(path_, "element count overflows int64");
  rewrite_header(path_, [](json& header) {
    header["bert.pooler.dense.weight"]["shape"] = {uint64_t{1} << 61, 2};
  });
  expect_open_error(path_, "byte size overflows int64");
  rewrite_header(path_, [](json& header) { header["bert.pooler.dense.weight"]["shape"] = {~uint64_t{0}}; });
  expect_open_error(path_, "dimension 18446744073709551615 overflows int64");
}

TEST_F(Corrupt, UnknownDtype) {
  write();
  rewrite_header(path_, [](json& header) { header["bert.pooler.dense.bias"]["dtype"] = "F16"; });
  expect_open_error(path_, "tensor \"bert.pooler.dense.bias\": unsupported dtype \"F16\"");
  expect_open_error(path_, "this build reads F32, BF16 and I8 (int8 with per-row scales)");
}

// ---- I8 tensors and their "_scale" companions

class CorruptInt8 : public Corrupt {
 protected:
  void SetUp() override {
    Corrupt::SetUp();
    tensors_ = tiny_tensors(info_, DType::kI8);
  }
  // Overwrites the F32 value `index` of tensor `name` in the data section.
  void overwrite_f32(const std::string& name, size_t index, float value) {
    std::string bytes = read_bytes(path_);
    const uint64_t length = format_test::header_length(bytes);
    const uint64_t begin = json::parse(bytes.substr(8, length))[name]["data_offsets"][0];
    std::memcpy(&bytes[8 + length + begin + 4 * index], &value, sizeof value);
    write_bytes(path_, bytes);
  }
};

TEST_F(CorruptInt8, ValidFileOpens) {
  write();
  const ModelFile file = ModelFile::open(path_);
  EXPECT_EQ(file.tensor("bert.pooler.dense.weight").dtype, DType::kI8);
  EXPECT_EQ(file.tensor("bert.pooler.dense.weight_scale").shape, (std::vector<int64_t>{8}));
}

TEST_F(CorruptInt8, ZeroScaleIsAccepted) {  // an all-zero row
  std::fill(tensor("bert.pooler.dense.weight").values.begin(),
            tensor("bert.pooler.dense.weight").values.begin() + 8, 0.f);
  write();
  const ModelFile file = ModelFile::open(path_);
  EXPECT_EQ(file.read_f32("bert.pooler.dense.weight_scale", {8})[0], 0.f);
  const std::vector<float> row = file.read_f32("bert.pooler.dense.weight", {8, 8});
  EXPECT_EQ(std::vector<float>(row.begin(), row.begin() + 8), std::vector<float>(8, 0.f));
}

TEST_F(CorruptInt8, ScaleWithoutItsInt8Tensor) {
  tensors_ = tiny_tensors(info_);  // F32 matrices
  tensors_.push_back({"bert.pooler.dense.weight_scale", {8}, std::vector<float>(8, 1.f), DType::kF32});
  write();
  expect_open_error(
      path_,
      "tensor \"bert.pooler.dense.weight_scale\": scale tensor for \"bert.pooler.dense.weight\", "
      "which is F32, not I8");
  tensors_.back().name = "bert.pooler.nothing_scale";
  write();
  expect_open_error(path_,
                    "tensor \"bert.pooler.nothing_scale\": scale tensor without its I8 tensor "
                    "\"bert.pooler.nothing\"");
  expect_open_error(path_, "re-convert the checkpoint with tools/convert.py");
}

TEST_F(CorruptInt8, Int8TensorWithoutItsScale) {
  write();
  rewrite_header(path_, [](json& header) {
    header["bert.pooler.dense.weight_scales"] = header["bert.pooler.dense.weight_scale"];
    header.erase("bert.pooler.dense.weight_scale");
  });
  expect_open_error(
      path_,
      "tensor \"bert.pooler.dense.weight\": I8 tensor without its scale tensor "
      "\"bert.pooler.dense.weight_scale\" (F32 [8], one scale per row); the file is incomplete");
}

TEST_F(CorruptInt8, OneDimensionalInt8Tensor) {
  write();
  rewrite_header(path_, [](json& header) {  // 32 bytes: 8 F32 values or 32 I8 ones
    header["bert.pooler.dense.bias"]["dtype"] = "I8";
    header["bert.pooler.dense.bias"]["shape"] = {32};
  });
  expect_open_error(
      path_,
      "tensor \"bert.pooler.dense.bias\": dtype I8 (int8 with one scale per row) is only for 2-D "
      "tensors, but the shape is [32]");
}

TEST_F(CorruptInt8, ScaleOfTheWrongShape) {
  write();
  rewrite_header(path_, [](json& header) { header["bert.pooler.dense.weight_scale"]["shape"] = {2, 4}; });
  expect_open_error(
      path_,
      "tensor \"bert.pooler.dense.weight_scale\": the scales of I8 tensor "
      "\"bert.pooler.dense.weight\" [8, 8] must be F32 [8] (one per row), but this is F32 [2, 4]");
}

TEST_F(CorruptInt8, ScaleOfTheWrongDtype) {
  write();
  rewrite_header(path_, [](json& header) {  // the same 32 bytes as BF16
    header["bert.pooler.dense.weight_scale"]["dtype"] = "BF16";
    header["bert.pooler.dense.weight_scale"]["shape"] = {16};
  });
  expect_open_error(path_, "must be F32 [8] (one per row), but this is BF16 [16]");
}

TEST_F(CorruptInt8, NonFiniteOrNegativeScale) {
  const std::pair<float, const char*> cases[] = {
      {std::nanf(""), "scale of row 3 is nan"},
      {std::numeric_limits<float>::infinity(), "scale of row 3 is inf"},
      {-0.5f, "scale of row 3 is -0.5"},
  };
  for (const auto& [value, phrase] : cases) {
    SCOPED_TRACE(phrase);
    write();
    overwrite_f32("classifier.weight_scale", 1, 1.f);  // a finite change is fine
    EXPECT_NO_THROW(ModelFile::open(path_));
    write();
    overwrite_f32("bert.encoder.layer.1.output.dense.weight_scale", 3, value);
    expect_open_error(path_,
                      std::string("tensor \"bert.encoder.layer.1.output.dense.weight_scale\": ") + phrase);
    expect_open_error(path_, "scales must be finite and >= 0; the file is corrupt");
  }
}

TEST_F(CorruptInt8, ScalesAreTheOnlyExtraTensorsAllowed) {
  tensors_.push_back({"bert.encoder.layer.2.output.dense.bias", {8}, std::vector<float>(8), DType::kF32});
  write();
  expect_open_error(path_, "tensor \"bert.encoder.layer.2.output.dense.bias\": unexpected tensor");
  tensors_.back() = {
      "bert.encoder.layer.2.output.dense.weight", {8, 16}, std::vector<float>(128, 1.f), DType::kI8};
  write();  // an unexpected I8 tensor with its scale: the tensor is refused
  expect_open_error(path_, "tensor \"bert.encoder.layer.2.output.dense.weight\": unexpected tensor");
}

TEST_F(Corrupt, MisalignedTensor) {
  write();
  rewrite_header(path_, [](json& header) {
    auto& offsets = header["bert.pooler.dense.bias"]["data_offsets"];
    offsets = {offsets[0].get<uint64_t>() + 2, offsets[1].get<uint64_t>() + 2};
  });
  expect_open_error(path_, "is not aligned to its 4-byte elements");
}

TEST_F(Corrupt, VocabSizeMismatch) {
  info_.bert.vocab_size = 11;
  write();
  expect_open_error(path_,
                    "vocabulary size mismatch: the vocabulary has 10 tokens but config vocab_size is 11");
}

TEST_F(Corrupt, SpecialTokenNotInVocab) {
  info_.tokenizer.cls_token = "<s>";
  write();
  expect_open_error(path_, "\"cls_token\" \"<s>\" is not in the vocabulary");
}

TEST_F(Corrupt, HiddenNotDivisibleByHeads) {
  info_.bert.num_heads = 3;
  write();
  expect_open_error(path_, "hidden_size 8 is not divisible by num_heads 3");
}

TEST_F(Corrupt, UnsupportedActivation) {
  info_.bert.hidden_act = "relu";
  write();
  expect_open_error(path_, "supports only \"gelu\"");
}

TEST_F(Corrupt, NonPositiveConfigValue) {
  write();
  auto config = json::parse(metadata_value("config"));
  config["num_layers"] = 0;
  set_metadata_value("config", config.dump());
  expect_open_error(path_, "metadata \"config\": \"num_layers\" must be positive, got 0");
}

TEST_F(Corrupt, MissingConfigKey) {
  write();
  auto config = json::parse(metadata_value("config"));
  config.erase("type_vocab_size");
  set_metadata_value("config", config.dump());
  expect_open_error(path_, "metadata \"config\": \"type_vocab_size\" is missing");
}

TEST_F(Corrupt, MetadataSectionNotJson) {
  write();
  set_metadata_value("head", "{labels: [a]}");
  expect_open_error(path_, "metadata \"head\" is not valid JSON");
}

TEST_F(Corrupt, BadSchedules) {
  for (const auto& ratios : {std::vector<double>{0.5}, {0.5, 0.7}, {0.0, 0.0}, {1.5, 1.0}}) {
    info_.fca.keep_ratios = ratios;
    write();
    expect_open_error(path_, "metadata \"fca\"");
  }
}

TEST_F(Corrupt, RegressionWithTwoLabels) {
  info_.head.kind = HeadKind::kRegression;
  write();
  expect_open_error(path_, "a regression head has exactly one label");
}

}  // namespace
}  // namespace fcabert
