// Precision::kAuto: the candidates, the pick rule, and Model::load resolving it to a real
// precision that a Session then runs exactly as if it had been requested by name.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <stdexcept>

#include "fcabert/engine.h"
#include "fcabert/error.h"
#include "fcabert/model_file.h"
#include "kernels/linear.h"
#include "model/precision_choice.h"
#include "test_model_tiny_bert.h"

namespace fcabert {
namespace {

using model::pick_fastest;

TEST(PrecisionName, AutoRoundTrips) {
  EXPECT_EQ(parse_precision("auto"), Precision::kAuto);
  EXPECT_STREQ(precision_name(Precision::kAuto), "auto");
  try {
    parse_precision("fastest");
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("fp32, bf16, int8 or auto"), std::string::npos);
  }
}

TEST(AutoCandidates, Bf16OnlyWhereItIsNative) {
  EXPECT_EQ(model::auto_candidates(true),
            (std::vector<Precision>{Precision::kFp32, Precision::kBf16, Precision::kInt8}));
  EXPECT_EQ(model::auto_candidates(false), (std::vector<Precision>{Precision::kFp32, Precision::kInt8}));
}

TEST(PickFastest, ALessExactPrecisionMustBeClearlyFaster) {
  using P = Precision;
  EXPECT_EQ(pick_fastest({}), P::kFp32);
  EXPECT_EQ(pick_fastest({{P::kFp32, 2.0}, {P::kBf16, 1.5}, {P::kInt8, 1.2}}), P::kInt8);
  // 5% faster is within the noise: the more exact one stays.
  EXPECT_EQ(pick_fastest({{P::kFp32, 2.0}, {P::kBf16, 1.9}, {P::kInt8, 2.5}}), P::kFp32);
  EXPECT_EQ(pick_fastest({{P::kFp32, 2.0}, {P::kBf16, 1.0}, {P::kInt8, 0.95}}), P::kBf16);
  EXPECT_EQ(pick_fastest({{P::kFp32, 2.0}, {P::kInt8, 1.8}}), P::kInt8);  // exactly the margin
  EXPECT_EQ(pick_fastest({{P::kFp32, 1.0}, {P::kInt8, 3.0}}), P::kFp32);  // int8 without VNNI, say
}

TEST(LinearKernel, RefusesAnUnresolvedAuto) {
  const dnnl::engine engine(dnnl::engine::kind::cpu, 0);
  const std::vector<float> weight(16, 0.f), bias(4, 0.f);
  EXPECT_THROW(
      kernels::Linear(engine, weight.data(), bias.data(), 4, 4, kernels::Epilogue::kNone, Precision::kAuto),
      std::logic_error);
}

class AutoLoad : public ::testing::Test {
 protected:
  void SetUp() override {
    ModelInfo info;
    info.bert = model_test::tiny_config();
    info.head = model_test::tiny_head();
    info.tokenizer.vocab = model_test::tiny_vocab(info.bert, {"the", "good", "movie"});
    info.tokenizer.max_len = info.bert.max_position_embeddings;
    info.provenance_json = R"({"source":"test_model_precision_choice"})";
    path_ = ::testing::TempDir() + "fcabert_auto_" + std::to_string(::getpid()) + ".fcab";
    write_model_file(path_, info, model_test::random_bert_tensors(info.bert, 3, 5));
  }
  void TearDown() override { std::remove(path_.c_str()); }
  std::string path_;
};

TEST_F(AutoLoad, ResolvesToATimedCandidateAndRunsItExactly) {
  const auto automatic = Model::load(path_, LoadOptions{1, Precision::kAuto});
  const PrecisionChoice& choice = automatic->precision();
  EXPECT_EQ(automatic->options().precision, Precision::kAuto);  // options() stays as given
  EXPECT_EQ(choice.requested, Precision::kAuto);
  EXPECT_NE(choice.precision, Precision::kAuto);
  const std::vector<Precision> candidates = model::auto_candidates(kernels::native_bf16_matmul());
  ASSERT_EQ(choice.timings.size(), candidates.size());
  for (size_t i = 0; i < candidates.size(); ++i) {
    EXPECT_EQ(choice.timings[i].precision, candidates[i]);
    EXPECT_GT(choice.timings[i].layer_gemm_ms, 0.0);
  }
  EXPECT_EQ(choice.precision, pick_fastest(choice.timings));
  EXPECT_NE(choice.reason.find("auto: one layer's GEMMs on 256 rows took fp32 "), std::string::npos)
      << choice.reason;
  EXPECT_EQ(choice.arithmetic.rfind(precision_name(choice.precision), 0), 0u) << choice.arithmetic;

  // The same logits as loading the chosen precision by name.
  const auto named = Model::load(path_, LoadOptions{1, choice.precision});
  EXPECT_EQ(named->precision().reason, "requested");
  EXPECT_TRUE(named->precision().timings.empty());
  EXPECT_EQ(named->precision().arithmetic, choice.arithmetic);
  const std::vector<Encoding> batch{automatic->tokenizer().encode("the good movie", 16),
                                    automatic->tokenizer().encode("movie", 16)};
  Session a(automatic), b(named);
  const std::vector<Prediction> pa = a.run(batch), pb = b.run(batch);
  ASSERT_EQ(pa.size(), pb.size());
  for (size_t s = 0; s < pa.size(); ++s) EXPECT_EQ(pa[s].logits, pb[s].logits) << "sequence " << s;
}

TEST_F(AutoLoad, ANamedPrecisionIsTakenAsIs) {
  for (Precision p : {Precision::kFp32, Precision::kInt8}) {
    const auto model = Model::load(path_, LoadOptions{1, p});
    EXPECT_EQ(model->precision().requested, p);
    EXPECT_EQ(model->precision().precision, p);
    EXPECT_EQ(model->precision().reason, "requested");
  }
  EXPECT_EQ(Model::load(path_, LoadOptions{1, Precision::kFp32})->precision().arithmetic, "fp32");
}

}  // namespace
}  // namespace fcabert
