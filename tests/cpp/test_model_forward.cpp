// The dense forward pass of a whole tiny BERT (random weights built in memory) against the
// naive reference, packed vs one sequence at a time, scratch reuse, concurrency, and the
// errors raised for bad input and bad weights.
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <thread>

#include "fcabert/error.h"
#include "model/bert_classifier.h"
#include "model/encoder_layer.h"
#include "model/weights.h"
#include "test_model_tiny_bert.h"

namespace fcabert::model {
namespace {

using model_test::random_bert_tensors;
using model_test::random_encoding;
using model_test::ReferenceBert;
using model_test::tiny_config;
using model_test::tiny_head;

class TinyBert : public ::testing::Test {
 protected:
  TinyBert()
      : config_(tiny_config()),
        head_(tiny_head()),
        tensors_(random_bert_tensors(config_, 3, 2024)),
        weights_(tensors_),
        net_(config_, head_, weights_, 2) {}

  std::vector<Encoding> batch(const std::vector<int64_t>& lengths, uint32_t seed = 5) const {
    std::mt19937 rng(seed);
    std::vector<Encoding> out;
    for (int64_t n : lengths) out.push_back(random_encoding(n, config_, rng));
    return out;
  }

  std::vector<Prediction> run(const std::vector<Encoding>& encodings) const {
    Workspace ws(net_.engine(), net_.workspace_spec());
    return net_.predict(encodings, ws);
  }

  std::string error_of(const std::vector<Encoding>& encodings) const {
    try {
      run(encodings);
    } catch (const Error& e) {
      return e.what();
    }
    return "(no error)";
  }

  BertConfig config_;
  HeadConfig head_;
  std::vector<TensorData> tensors_;
  TensorMap weights_;
  BertClassifier net_;
};

// Tolerance 2e-5 absolute on logits of magnitude ~1 (the parity target is 1e-4).
TEST_F(TinyBert, MatchesNaiveReference) {
  const ReferenceBert reference(config_, tensors_);
  const std::vector<Encoding> encodings = batch({1, 2, 7, 23, 40, 5, 12});
  const std::vector<Prediction> predictions = run(encodings);
  ASSERT_EQ(predictions.size(), encodings.size());
  double worst = 0;
  for (size_t s = 0; s < encodings.size(); ++s) {
    SCOPED_TRACE("sequence " + std::to_string(s) + " of length " + std::to_string(encodings[s].ids.size()));
    const std::vector<double> expected = reference.logits(encodings[s]);
    ASSERT_EQ(predictions[s].logits.size(), expected.size());
    double max = -INFINITY, sum = 0;
    for (double v : expected) max = std::max(max, v);
    for (double v : expected) sum += std::exp(v - max);
    for (size_t k = 0; k < expected.size(); ++k) {
      EXPECT_NEAR(predictions[s].logits[k], expected[k], 2e-5);
      EXPECT_NEAR(predictions[s].probabilities[k], std::exp(expected[k] - max) / sum, 1e-5);
      worst = std::max(worst, std::fabs(predictions[s].logits[k] - expected[k]));
    }
  }
  RecordProperty("max_abs_logit_error", std::to_string(worst));
}

// Head size 32, as in MiniLM / BERT-base (multiples of 16 take the attention kernel's
// register-blocked path; the tiny config's head size 8 takes the generic one).
TEST(BertClassifierWide, MatchesNaiveReference) {
  BertConfig config = tiny_config();
  config.hidden_size = 64;
  config.num_heads = 2;
  config.intermediate_size = 128;
  const std::vector<TensorData> tensors = random_bert_tensors(config, 3, 11);
  const BertClassifier net(config, tiny_head(), TensorMap(tensors), 2);
  Workspace ws(net.engine(), net.workspace_spec());
  std::mt19937 rng(8);
  std::vector<Encoding> encodings;
  for (int64_t n : {1, 3, 4, 5, 16, 17, 40}) encodings.push_back(random_encoding(n, config, rng));
  const std::vector<Prediction> predictions = net.predict(encodings, ws);
  const ReferenceBert reference(config, tensors);
  for (size_t s = 0; s < encodings.size(); ++s) {
    const std::vector<double> expected = reference.logits(encodings[s]);
    for (size_t k = 0; k < expected.size(); ++k) {
      EXPECT_NEAR(predictions[s].logits[k], expected[k], 2e-5) << "sequence " << s;
    }
  }
}

// A sequence's logits do not depend on what else is in the batch. oneDNN may take another
// GEMM code path for another row count, so equality is up to 1e-6, not bitwise.
TEST_F(TinyBert, PackedBatchEqualsEachSequenceAlone) {
  const std::vector<Encoding> encodings = batch({9, 1, 31, 4, 40, 2}, 77);
  const std::vector<Prediction> packed = run(encodings);
  for (size_t s = 0; s < encodings.size(); ++s) {
    const std::vector<Prediction> alone = run({encodings[s]});
    for (size_t k = 0; k < alone[0].logits.size(); ++k) {
      EXPECT_NEAR(packed[s].logits[k], alone[0].logits[k], 1e-6) << "sequence " << s;
    }
  }
}

TEST_F(TinyBert, ReusedWorkspaceGivesTheSameResults) {
  Workspace ws(net_.engine(), net_.workspace_spec());
  const std::vector<Encoding> big = batch({30, 40, 17}, 1), small = batch({3, 5}, 2);
  const std::vector<Prediction> big_first = net_.predict(big, ws);
  const std::vector<Prediction> small_after_big = net_.predict(small, ws);
  const std::vector<Prediction> big_again = net_.predict(big, ws);
  const std::vector<Prediction> small_fresh = run(small);
  for (size_t s = 0; s < big.size(); ++s) EXPECT_EQ(big_first[s].logits, big_again[s].logits);
  for (size_t s = 0; s < small.size(); ++s) EXPECT_EQ(small_after_big[s].logits, small_fresh[s].logits);
}

// The thread-safety contract: one immutable network, one Workspace per thread.
TEST_F(TinyBert, ConcurrentWorkspacesShareOneNetwork) {
  const std::vector<Encoding> encodings = batch({12, 40, 3, 25});
  const std::vector<Prediction> expected = run(encodings);
  std::vector<std::vector<Prediction>> results(3);
  std::vector<std::thread> threads;
  for (auto& result : results) {
    threads.emplace_back([&] {
      Workspace ws(net_.engine(), net_.workspace_spec());
      for (int i = 0; i < 10; ++i) result = net_.predict(encodings, ws);
    });
  }
  for (auto& t : threads) t.join();
  for (const auto& result : results) {
    ASSERT_EQ(result.size(), expected.size());
    for (size_t s = 0; s < expected.size(); ++s) {
      for (size_t k = 0; k < expected[s].logits.size(); ++k) {
        EXPECT_NEAR(result[s].logits[k], expected[s].logits[k], 1e-6);
      }
    }
  }
}

TEST_F(TinyBert, OneThreadAgreesWithTwo) {
  const BertClassifier single(config_, head_, weights_, 1);
  const std::vector<Encoding> encodings = batch({8, 33, 1});
  Workspace ws(single.engine(), single.workspace_spec());
  const std::vector<Prediction> one = single.predict(encodings, ws);
  const std::vector<Prediction> two = run(encodings);
  for (size_t s = 0; s < encodings.size(); ++s)
    for (size_t k = 0; k < one[s].logits.size(); ++k) EXPECT_NEAR(one[s].logits[k], two[s].logits[k], 1e-6);
}

TEST_F(TinyBert, EmptyBatchGivesNoPredictions) { EXPECT_TRUE(run({}).empty()); }

TEST_F(TinyBert, RejectsBadInputNamingTheSequence) {
  std::vector<Encoding> encodings = batch({4, 4});
  encodings[1].ids.clear();
  encodings[1].type_ids.clear();
  EXPECT_NE(error_of(encodings).find("sequence 1 is empty"), std::string::npos) << error_of(encodings);

  encodings = batch({4, 41});
  EXPECT_NE(error_of(encodings).find("sequence 1 has 41 tokens; the model takes at most 40"),
            std::string::npos)
      << error_of(encodings);

  encodings = batch({4, 4});
  encodings[0].ids[2] = 50;
  EXPECT_NE(error_of(encodings).find("sequence 0, token 2: id 50 is outside the vocabulary"),
            std::string::npos)
      << error_of(encodings);
  encodings[0].ids[2] = -1;
  EXPECT_NE(error_of(encodings).find("id -1"), std::string::npos) << error_of(encodings);

  encodings = batch({4, 4});
  encodings[1].type_ids[3] = 2;
  EXPECT_NE(error_of(encodings).find("token type 2"), std::string::npos) << error_of(encodings);

  encodings = batch({4});
  encodings[0].type_ids.pop_back();
  EXPECT_NE(error_of(encodings).find("4 token ids but 3 token type ids"), std::string::npos)
      << error_of(encodings);
}

TEST(BertClassifierLoad, RegressionHeadHasNoProbabilities) {
  const BertConfig config = tiny_config();
  const TensorMap weights(random_bert_tensors(config, 1, 3));
  const BertClassifier net(config, tiny_head(HeadKind::kRegression), weights, 2);
  Workspace ws(net.engine(), net.workspace_spec());
  std::mt19937 rng(1);
  const std::vector<Prediction> out = net.predict({random_encoding(6, config, rng)}, ws);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].logits.size(), 1u);
  EXPECT_TRUE(out[0].probabilities.empty());
}

// A multi-label head: each probability is the sigmoid of its own logit (they need not sum to 1),
// and labels_above() picks those strictly above the threshold.
TEST(BertClassifierLoad, MultiLabelHeadHasASigmoidPerLabel) {
  const BertConfig config = tiny_config();
  const TensorMap weights(random_bert_tensors(config, 3, 5));
  const BertClassifier net(config, tiny_head(HeadKind::kMultiLabel), weights, 2);
  Workspace ws(net.engine(), net.workspace_spec());
  std::mt19937 rng(2);
  const std::vector<Prediction> out =
      net.predict({random_encoding(6, config, rng), random_encoding(9, config, rng)}, ws);
  ASSERT_EQ(out.size(), 2u);
  for (const Prediction& p : out) {
    ASSERT_EQ(p.probabilities.size(), 3u);
    std::vector<size_t> expected;
    for (size_t i = 0; i < 3; ++i) {
      EXPECT_FLOAT_EQ(p.probabilities[i], 1.0f / (1.0f + std::exp(-p.logits[i])));
      if (p.probabilities[i] > 0.5f) expected.push_back(i);
    }
    EXPECT_EQ(labels_above(p, 0.5), expected);
  }
  Prediction fixed;
  fixed.probabilities = {0.2f, 0.5f, 0.9f};
  EXPECT_EQ(labels_above(fixed, 0.5), (std::vector<size_t>{2}));  // strictly above
  EXPECT_EQ(labels_above(fixed, 0.0), (std::vector<size_t>{0, 1, 2}));
  EXPECT_TRUE(labels_above(fixed, 1.0).empty());
  EXPECT_THROW(labels_above(fixed, 1.5), Error);
  EXPECT_THROW(labels_above(fixed, std::nan("")), Error);
}

std::string load_error(const BertConfig& config, const HeadConfig& head,
                       const std::vector<TensorData>& tensors, int threads = 2) {
  try {
    BertClassifier net(config, head, TensorMap(tensors), threads);
  } catch (const Error& e) {
    return e.what();
  }
  return "(no error)";
}

TEST(BertClassifierLoad, MissingOrMisshapenTensorsFailAtLoadNamingTheTensor) {
  const BertConfig config = tiny_config();
  std::vector<TensorData> tensors = random_bert_tensors(config, 3, 3);
  std::vector<TensorData> missing;
  for (const TensorData& t : tensors)
    if (t.name != "bert.encoder.layer.1.attention.self.key.bias") missing.push_back(t);
  EXPECT_EQ(load_error(config, tiny_head(), missing),
            "missing tensor bert.encoder.layer.1.attention.self.key.bias");

  for (TensorData& t : tensors) {
    if (t.name == "bert.encoder.layer.0.intermediate.dense.weight") t.shape = {32, 64};
  }
  EXPECT_NE(load_error(config, tiny_head(), tensors)
                .find("bert.encoder.layer.0.intermediate.dense.weight has shape [32, 64], expected [64, 32]"),
            std::string::npos);
}

TEST(BertClassifierLoad, RefusesWhatItCannotRun) {
  const BertConfig good = tiny_config();
  const std::vector<TensorData> tensors = random_bert_tensors(good, 3, 3);
  BertConfig bad = good;
  bad.num_heads = 5;
  EXPECT_NE(load_error(bad, tiny_head(), tensors).find("not a multiple of num_heads"), std::string::npos);
  bad = good;
  bad.hidden_act = "relu";
  EXPECT_NE(load_error(bad, tiny_head(), tensors).find("hidden_act \"relu\""), std::string::npos);
  HeadConfig head = tiny_head(HeadKind::kRegression);
  head.labels = {"x", "y"};
  EXPECT_NE(load_error(good, head, tensors).find("exactly one output"), std::string::npos);
  head.labels.clear();
  EXPECT_NE(load_error(good, head, tensors).find("no labels"), std::string::npos);
  EXPECT_NE(load_error(good, tiny_head(), tensors, 0).find("threads must be at least 1"), std::string::npos);
}

TEST(LayerPrecisions, Int8RunsTheFeedForwardDownProjectionAsAsked) {
  using kernels::Int8Scales;
  for (Int8DownProjection down : {Int8DownProjection::kPerRowInt8, Int8DownProjection::kBf16}) {
    const LayerPrecisions int8 = LayerPrecisions::for_model(Precision::kInt8, down, false);
    EXPECT_EQ(int8.qkv, Precision::kInt8);
    EXPECT_EQ(int8.attention_output, Precision::kInt8);
    EXPECT_EQ(int8.intermediate, Precision::kInt8);
    EXPECT_EQ(int8.output, down == Int8DownProjection::kBf16 ? Precision::kBf16 : Precision::kInt8);
    EXPECT_EQ(int8.output_int8_scales,
              down == Int8DownProjection::kPerRowInt8 ? Int8Scales::kPerRow : Int8Scales::kPerCall);
    EXPECT_EQ(int8.per_row_int8(), down == Int8DownProjection::kPerRowInt8);
    for (Precision uniform : {Precision::kFp32, Precision::kBf16}) {
      const LayerPrecisions p = LayerPrecisions::for_model(uniform, down, uniform == Precision::kBf16);
      EXPECT_EQ(p.qkv, uniform);
      EXPECT_EQ(p.attention_output, uniform);
      EXPECT_EQ(p.intermediate, uniform);
      EXPECT_EQ(p.output, uniform);
      EXPECT_FALSE(p.per_row_int8());
      EXPECT_EQ(p.describe(), precision_name(uniform));
    }
  }
  // The Session's conversion buffer holds the largest converted input per row: int8 reads f
  // u8 features when its f-wide down-projection input is quantized too, 2f bytes when it
  // goes to bf16; bf16 2f bytes; fp32 nothing.
  BertConfig config;
  config.hidden_size = 8;
  config.intermediate_size = 32;
  const LayerPrecisions int8_bf16_down =
      LayerPrecisions::for_model(Precision::kInt8, Int8DownProjection::kBf16, false);
  const LayerPrecisions int8_rows_down =
      LayerPrecisions::for_model(Precision::kInt8, Int8DownProjection::kPerRowInt8, false);
  EXPECT_EQ(int8_bf16_down.converted_input_bytes_per_row(config), 64);
  EXPECT_EQ(int8_rows_down.converted_input_bytes_per_row(config), 32);
  EXPECT_EQ(LayerPrecisions::for_model(Precision::kBf16, Int8DownProjection::kBf16, true)
                .converted_input_bytes_per_row(config),
            64);
  EXPECT_EQ(LayerPrecisions::for_model(Precision::kFp32, Int8DownProjection::kBf16, true)
                .converted_input_bytes_per_row(config),
            0);
  EXPECT_EQ(int8_bf16_down.describe(), "int8 (FFN down-projection bf16, attention fp32)");
  EXPECT_EQ(int8_rows_down.describe(), "int8 (FFN down-projection int8 per row, attention fp32)");
}

TEST(LayerPrecisions, Bf16AttentionOnlyForTheLowerPrecisions) {
  using kernels::AttentionArithmetic;
  constexpr Int8DownProjection kBf16Down = Int8DownProjection::kBf16;
  // fp32 stays exact even where bf16 attention would run.
  EXPECT_EQ(LayerPrecisions::for_model(Precision::kFp32, kBf16Down, true).attention,
            AttentionArithmetic::kFp32);
  EXPECT_EQ(LayerPrecisions::for_model(Precision::kFp32, kBf16Down, true).describe(), "fp32");
  const LayerPrecisions bf16 = LayerPrecisions::for_model(Precision::kBf16, kBf16Down, true);
  EXPECT_EQ(bf16.attention, AttentionArithmetic::kBf16);
  EXPECT_EQ(bf16.describe(), "bf16");
  EXPECT_EQ(LayerPrecisions::for_model(Precision::kBf16, kBf16Down, false).describe(),
            "bf16 (attention fp32)");
  const LayerPrecisions int8 = LayerPrecisions::for_model(Precision::kInt8, kBf16Down, true);
  EXPECT_EQ(int8.attention, AttentionArithmetic::kBf16);
  EXPECT_EQ(int8.describe(), "int8 (FFN down-projection bf16, attention bf16)");
  EXPECT_EQ(LayerPrecisions::for_model(Precision::kInt8, Int8DownProjection::kPerRowInt8, false).attention,
            AttentionArithmetic::kFp32);
}

}  // namespace
}  // namespace fcabert::model
