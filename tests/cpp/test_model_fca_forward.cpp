// FCA token reduction inside the whole forward pass (docs/FCA.md): a tiny random BERT run by
// the engine with FCA schedules against a naive double-precision implementation written
// here straight from docs/FCA.md, one sequence at a time, with its own loops (it calls none
// of the engine's FCA code). Also: ratio 1 = dense, pass-through cases, k = 1, C = 0, mean
// vs weighted, exact ties, token-type pairs, packed batch = one at a time, traces =
// fca::schedule_shapes, scratch reuse.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "fcabert/error.h"
#include "fcabert/fca.h"
#include "model/bert_classifier.h"
#include "model/weights.h"
#include "test_model_tiny_bert.h"

namespace fcabert::model {
namespace {

using model_test::random_bert_tensors;
using model_test::random_encoding;
using model_test::ReferenceBert;
using model_test::tiny_config;
using model_test::tiny_head;

// ---- the naive FCA reference -----------------------------------------------------------
using model_test::Matrix;

struct NaiveLayer {
  int64_t tokens_in = 0;
  int64_t tokens_out = 0;
  bool reduced = false;
  std::vector<std::string> kept;  // "17" or "c0.1"
  double margin = INFINITY;       // score gap between the last fine row and the best coarse one
};

struct NaiveResult {
  std::vector<double> logits;
  std::vector<NaiveLayer> layers;
};

class NaiveFcaBert : public ReferenceBert {
 public:
  using ReferenceBert::ReferenceBert;

  NaiveResult run(const Encoding& e, const FcaSchedule& schedule) const {
    const int64_t n0 = static_cast<int64_t>(e.ids.size());
    Matrix x = embed(e);
    std::vector<std::string> ids;
    for (int64_t t = 0; t < n0; ++t) ids.push_back(std::to_string(t));

    NaiveResult result;
    for (int64_t l = 0; l < c_.num_layers; ++l) {
      const std::string p = "bert.encoder.layer." + std::to_string(l) + ".";
      const int64_t n = static_cast<int64_t>(x.size());
      std::vector<Matrix> probs;  // [H][n][n]
      const Matrix context = self_attention(x, p, &probs);
      Matrix h = layer_norm(add(linear(context, p + "attention.output.dense."), x),
                            p + "attention.output.LayerNorm.");

      NaiveLayer trace;
      trace.tokens_in = n;
      trace.kept = ids;
      if (schedule.enabled()) {
        // docs/FCA.md §2 and §3.
        const int64_t k = std::max<int64_t>(
            1, static_cast<int64_t>(std::ceil(schedule.keep_ratios[l] * static_cast<double>(n0) - 1e-9)));
        const int64_t m = n - k, C = schedule.clusters;
        if (C > 0 ? m > C : m > 0) {
          trace.reduced = true;
          h = reduce(h, probs, k, C, schedule.pooling, l, ids, trace);
        }
      }
      Matrix inter = linear(h, p + "intermediate.dense.");
      gelu(inter);
      x = layer_norm(add(linear(inter, p + "output.dense."), h), p + "output.LayerNorm.");
      trace.tokens_out = static_cast<int64_t>(x.size());
      result.layers.push_back(trace);
    }
    result.logits = head(x);
    return result;
  }

 private:
  // docs/FCA.md §4-§7 for one sequence: h [n][d] and the layer's probabilities.
  static Matrix reduce(const Matrix& h, const std::vector<Matrix>& probs, int64_t k, int64_t C,
                       Pooling pooling, int64_t layer, std::vector<std::string>& ids, NaiveLayer& trace) {
    const int64_t n = static_cast<int64_t>(h.size()), heads = static_cast<int64_t>(probs.size());
    std::vector<double> score(n, 0.0);
    for (int64_t j = 0; j < n; ++j) {
      for (int64_t hh = 0; hh < heads; ++hh)
        for (int64_t i = 0; i < n; ++i)
          if (i != j) score[j] += probs[hh][i][j];
      score[j] /= static_cast<double>(heads);
    }
    // Rows 1..n-1 by descending score, the lower row first on equal scores.
    std::vector<int64_t> order;
    for (int64_t j = 1; j < n; ++j) order.push_back(j);
    std::stable_sort(order.begin(), order.end(), [&](int64_t a, int64_t b) { return score[a] > score[b]; });
    if (k - 1 >= 1 && k - 1 < n - 1) trace.margin = score[order[k - 2]] - score[order[k - 1]];
    std::vector<bool> fine(n, false);
    fine[0] = true;
    for (int64_t r = 0; r < k - 1; ++r) fine[order[r]] = true;

    Matrix out;
    std::vector<std::string> new_ids, kept;
    std::vector<int64_t> coarse;
    for (int64_t j = 0; j < n; ++j) {
      if (fine[j]) {
        out.push_back(h[j]);
        kept.push_back(ids[j]);
      } else {
        coarse.push_back(j);
      }
    }
    new_ids = kept;
    const int64_t m = static_cast<int64_t>(coarse.size());
    const int64_t c = std::min(C, m);
    int64_t start = 0;
    for (int64_t g = 0; g < c; ++g) {
      const int64_t size = m / c + (g < m % c ? 1 : 0);
      double total = 0;
      for (int64_t i = start; i < start + size; ++i) total += std::exp(score[coarse[i]]);
      std::vector<double> row(h[0].size(), 0.0);
      for (int64_t i = start; i < start + size; ++i) {
        const double weight =
            pooling == Pooling::kMean ? 1.0 / static_cast<double>(size) : std::exp(score[coarse[i]]) / total;
        for (size_t e = 0; e < row.size(); ++e) row[e] += weight * h[coarse[i]][e];
      }
      out.push_back(row);
      new_ids.push_back("c" + std::to_string(layer) + "." + std::to_string(g));
      start += size;
    }
    trace.kept = kept;
    ids = new_ids;
    return out;
  }
};

// ---- helpers ---------------------------------------------------------------------------------

using model_test::schedule;

std::string describe(const FcaSchedule& s) {
  std::ostringstream out;
  out << "keep";
  for (double r : s.keep_ratios) out << " " << r;
  out << " C=" << s.clusters << " " << fca::pooling_name(s.pooling);
  return out.str();
}

std::vector<std::string> strings(const std::vector<fca::RowIdentity>& identities) {
  std::vector<std::string> out;
  for (const fca::RowIdentity& id : identities) out.push_back(id.to_string());
  return out;
}

std::vector<std::string> positions(int64_t begin, int64_t end) {
  std::vector<std::string> out;
  for (int64_t i = begin; i < end; ++i) out.push_back(std::to_string(i));
  return out;
}

void expect_same_shape(const fca::ReductionShape& a, const fca::ReductionShape& b, const std::string& where) {
  EXPECT_EQ(a.rows_in, b.rows_in) << where;
  EXPECT_EQ(a.keep, b.keep) << where;
  EXPECT_EQ(a.reduce, b.reduce) << where;
  EXPECT_EQ(a.fine, b.fine) << where;
  EXPECT_EQ(a.coarse, b.coarse) << where;
  EXPECT_EQ(a.clusters, b.clusters) << where;
  EXPECT_EQ(a.pooled_rows, b.pooled_rows) << where;
  EXPECT_EQ(a.rows_out, b.rows_out) << where;
}

// A tiny BERT with 4 layers (so clusters get kept or pooled again in later layers).
class FcaTinyBert : public ::testing::Test {
 protected:
  explicit FcaTinyBert(BertConfig config = four_layers(), uint32_t seed = 2024)
      : config_(config),
        tensors_(random_bert_tensors(config_, 3, seed)),
        weights_(tensors_),
        net_(config_, tiny_head(), weights_, 2),
        reference_(config_, tensors_) {}

  static BertConfig four_layers() {
    BertConfig c = tiny_config();
    c.num_layers = 4;
    return c;
  }

  std::vector<Encoding> batch(const std::vector<int64_t>& lengths, uint32_t seed = 5) const {
    std::mt19937 rng(seed);
    std::vector<Encoding> out;
    for (int64_t n : lengths) out.push_back(random_encoding(n, config_, rng));
    return out;
  }

  std::vector<Prediction> run(const std::vector<Encoding>& encodings, const FcaSchedule* fca,
                              bool explain = true) const {
    Workspace ws(net_.engine(), net_.workspace_spec());
    ForwardOptions options;
    options.schedule = fca;
    options.explain = explain;
    return net_.predict(encodings, ws, options);
  }

  // Logits within `tolerance` of the naive reference, traces (shapes, kept identities)
  // identical to it and to fca::schedule_shapes.
  void expect_matches_reference(const std::vector<Encoding>& encodings, const FcaSchedule& fca,
                                double tolerance = 2e-5) const {
    SCOPED_TRACE(describe(fca));
    const std::vector<Prediction> predictions = run(encodings, &fca);
    ASSERT_EQ(predictions.size(), encodings.size());
    for (size_t s = 0; s < encodings.size(); ++s) {
      const int64_t n0 = static_cast<int64_t>(encodings[s].ids.size());
      const std::string where = "sequence " + std::to_string(s) + " of " + std::to_string(n0) + " tokens";
      SCOPED_TRACE(where);
      const NaiveResult expected = reference_.run(encodings[s], fca);
      const Prediction& got = predictions[s];
      ASSERT_EQ(got.logits.size(), expected.logits.size());
      for (size_t k = 0; k < expected.logits.size(); ++k)
        EXPECT_NEAR(got.logits[k], expected.logits[k], tolerance);

      EXPECT_EQ(got.trace.tokens, n0);
      const std::vector<fca::ReductionShape> shapes = fca::schedule_shapes(fca, config_.num_layers, n0);
      ASSERT_EQ(got.trace.layers.size(), shapes.size());
      ASSERT_EQ(got.trace.kept.size(), shapes.size());
      for (size_t l = 0; l < shapes.size(); ++l) {
        const std::string layer = "layer " + std::to_string(l);
        expect_same_shape(got.trace.layers[l], shapes[l], layer);
        EXPECT_EQ(got.trace.layers[l].rows_in, expected.layers[l].tokens_in) << layer;
        EXPECT_EQ(got.trace.layers[l].rows_out, expected.layers[l].tokens_out) << layer;
        EXPECT_EQ(got.trace.layers[l].reduce, expected.layers[l].reduced) << layer;
        EXPECT_EQ(strings(got.trace.kept[l]), expected.layers[l].kept)
            << layer << ": reference score gap at the cut " << expected.layers[l].margin;
      }
    }
  }

  BertConfig config_;
  std::vector<TensorData> tensors_;
  TensorMap weights_;
  BertClassifier net_;
  NaiveFcaBert reference_;
};

const std::vector<int64_t> kMixedLengths{1, 2, 3, 5, 8, 13, 21, 34, 40, 17, 4, 6, 29};

// ---- engine vs the naive reference --------------------------------------------------------

TEST_F(FcaTinyBert, NaiveReferenceAgreesWithDenseEngine) {
  // The reference's dense path is the plain BERT the dense tests check; FCA is built on it.
  expect_matches_reference(batch(kMixedLengths), FcaSchedule{});
}

TEST_F(FcaTinyBert, WeightedPoolingMatchesNaiveReference) {
  expect_matches_reference(batch(kMixedLengths), schedule({1.0, 0.8, 0.5, 0.3}, 2));
  expect_matches_reference(batch(kMixedLengths, 6), schedule({0.7, 0.7, 0.6, 0.2}, 3));
}

TEST_F(FcaTinyBert, MeanPoolingMatchesNaiveReference) {
  expect_matches_reference(batch(kMixedLengths), schedule({0.9, 0.7, 0.5, 0.25}, 3, Pooling::kMean));
  expect_matches_reference(batch(kMixedLengths, 7), schedule({0.6, 0.5, 0.4, 0.4}, 1, Pooling::kMean));
}

TEST_F(FcaTinyBert, DroppingTokensMatchesNaiveReference) {  // C = 0: PoWER-BERT
  expect_matches_reference(batch(kMixedLengths), schedule({0.8, 0.6, 0.4, 0.2}, 0));
  expect_matches_reference(batch(kMixedLengths, 8), schedule({0.5, 0.5, 0.5, 0.5}, 0, Pooling::kMean));
}

TEST_F(FcaTinyBert, KeepOneTokenMatchesNaiveReference) {
  // k = 1 for every sequence here (0.01 * 40 < 1): [CLS] plus C clusters, or [CLS] alone.
  for (int64_t clusters : {0, 1, 2, 5}) {
    const FcaSchedule fca = schedule({0.01, 0.01, 0.01, 0.01}, clusters);
    expect_matches_reference(batch(kMixedLengths), fca);
    const std::vector<Prediction> out = run(batch({40, 1, 7}), &fca);
    EXPECT_EQ(out[0].trace.layers[0].rows_out, 1 + clusters);
    EXPECT_EQ(out[0].trace.kept[0], std::vector<fca::RowIdentity>{fca::RowIdentity::token(0)});
    EXPECT_EQ(out[0].trace.layers[3].rows_out, 1 + clusters);
  }
}

TEST_F(FcaTinyBert, MeanAndWeightedPoolingDiffer) {
  const std::vector<Encoding> encodings = batch({30, 25});
  const FcaSchedule weighted = schedule({0.5, 0.5, 0.5, 0.5}, 2);
  FcaSchedule mean = weighted;
  mean.pooling = Pooling::kMean;
  const std::vector<Prediction> a = run(encodings, &weighted), b = run(encodings, &mean);
  for (size_t s = 0; s < encodings.size(); ++s) {
    EXPECT_EQ(a[s].trace.kept[0], b[s].trace.kept[0]);  // the same selection in layer 0
    double diff = 0;
    for (size_t k = 0; k < a[s].logits.size(); ++k)
      diff = std::max(diff, static_cast<double>(std::fabs(a[s].logits[k] - b[s].logits[k])));
    EXPECT_GT(diff, 1e-4) << "sequence " << s;
  }
}

// Head size 32: the attention kernel's register-blocked path gathers the column sums.
class FcaWideBert : public FcaTinyBert {
 protected:
  FcaWideBert() : FcaTinyBert(wide(), 11) {}
  static BertConfig wide() {
    BertConfig c = four_layers();
    c.hidden_size = 64;
    c.num_heads = 2;
    c.intermediate_size = 128;
    return c;
  }
};

TEST_F(FcaWideBert, MatchesNaiveReference) {
  expect_matches_reference(batch(kMixedLengths), schedule({0.9, 0.6, 0.45, 0.3}, 2));
  expect_matches_reference(batch(kMixedLengths), schedule({0.9, 0.6, 0.45, 0.3}, 4, Pooling::kMean));
  expect_matches_reference(batch(kMixedLengths), schedule({0.6, 0.4, 0.3, 0.1}, 0));
}

// ---- pass-through and dense equivalence ------------------------------------------------------

TEST_F(FcaTinyBert, RatioOneEverywhereIsTheDenseForwardBitForBit) {
  const std::vector<Encoding> encodings = batch(kMixedLengths);
  const FcaSchedule ones = schedule({1, 1, 1, 1}, 4);
  const std::vector<Prediction> dense = run(encodings, nullptr), fca = run(encodings, &ones);
  for (size_t s = 0; s < encodings.size(); ++s) {
    EXPECT_EQ(dense[s].logits, fca[s].logits) << "sequence " << s;
    EXPECT_EQ(dense[s].probabilities, fca[s].probabilities) << "sequence " << s;
    const int64_t n0 = static_cast<int64_t>(encodings[s].ids.size());
    for (size_t l = 0; l < 4; ++l) {
      EXPECT_FALSE(fca[s].trace.layers[l].reduce);
      EXPECT_EQ(fca[s].trace.layers[l].rows_out, n0);
      EXPECT_EQ(strings(fca[s].trace.kept[l]), positions(0, n0));
      EXPECT_EQ(strings(dense[s].trace.kept[l]), positions(0, n0));
    }
  }
}

TEST_F(FcaTinyBert, SequencesShorterThanTheClustersPassThrough) {
  // C = 6: a sequence reduces only when m = n - k > 6, so sequences of up to 7 tokens never do.
  const FcaSchedule fca = schedule({0.5, 0.3, 0.2, 0.1}, 6);
  const std::vector<Encoding> short_ones = batch({1, 2, 3, 5, 6, 7});
  const std::vector<Prediction> dense = run(short_ones, nullptr), reduced = run(short_ones, &fca);
  for (size_t s = 0; s < short_ones.size(); ++s) {
    EXPECT_EQ(dense[s].logits, reduced[s].logits) << "sequence " << s;  // nothing reduced: same path
    for (const fca::ReductionShape& shape : reduced[s].trace.layers) EXPECT_FALSE(shape.reduce);
  }
  // Mixed with long sequences that do reduce, the short ones are copied through unchanged.
  std::vector<Encoding> mixed = short_ones;
  for (const Encoding& e : batch({40, 30}, 9)) mixed.push_back(e);
  const std::vector<Prediction> out = run(mixed, &fca);
  for (size_t s = 0; s < short_ones.size(); ++s)
    for (size_t k = 0; k < 3; ++k)
      EXPECT_NEAR(out[s].logits[k], dense[s].logits[k], 1e-6) << "sequence " << s;
  EXPECT_TRUE(out[6].trace.layers[0].reduce);
  expect_matches_reference(mixed, fca);
}

// ---- ties ----------------------------------------------------------------------------------

// Zero query and key weights make every attention row uniform, so every token gets exactly
// the same score: the lowest positions must win, in every layer.
class FcaUniformAttention : public FcaTinyBert {
 protected:
  FcaUniformAttention() : FcaTinyBert(four_layers(), 2024) {
    for (TensorData& t : tensors_) {
      if (t.name.find("attention.self.query.") != std::string::npos ||
          t.name.find("attention.self.key.") != std::string::npos)
        std::fill(t.values.begin(), t.values.end(), 0.f);
    }
    weights_ = TensorMap(tensors_);
    uniform_ = std::make_unique<BertClassifier>(config_, tiny_head(), weights_, 2);
    reference_ = NaiveFcaBert(config_, tensors_);
  }

  std::vector<Prediction> run_uniform(const std::vector<Encoding>& encodings, const FcaSchedule& fca) const {
    Workspace ws(uniform_->engine(), uniform_->workspace_spec());
    ForwardOptions options;
    options.schedule = &fca;
    options.explain = true;
    return uniform_->predict(encodings, ws, options);
  }

  std::unique_ptr<BertClassifier> uniform_;
};

TEST_F(FcaUniformAttention, TiesGoToTheLowestPositions) {
  for (const FcaSchedule& fca : {schedule({0.8, 0.6, 0.4, 0.2}, 2), schedule({0.8, 0.6, 0.4, 0.2}, 0),
                                 schedule({0.7, 0.5, 0.5, 0.3}, 3, Pooling::kMean)}) {
    SCOPED_TRACE(describe(fca));
    const std::vector<Encoding> encodings = batch({40, 23, 9, 2});
    const std::vector<Prediction> out = run_uniform(encodings, fca);
    for (size_t s = 0; s < encodings.size(); ++s) {
      SCOPED_TRACE("sequence " + std::to_string(s));
      const int64_t n0 = static_cast<int64_t>(encodings[s].ids.size());
      // The current rows' identities: fine rows first, clusters last, so the lowest rows
      // are always original tokens 0, 1, 2, ... (k shrinks with depth).
      for (size_t l = 0; l < 4; ++l) {
        const fca::ReductionShape& shape = out[s].trace.layers[l];
        const int64_t kept = shape.reduce ? shape.keep : shape.rows_in;
        if (shape.reduce) {
          EXPECT_EQ(strings(out[s].trace.kept[l]), positions(0, kept)) << "layer " << l;
        } else {
          ASSERT_EQ(static_cast<int64_t>(out[s].trace.kept[l].size()), shape.rows_in);
          EXPECT_EQ(out[s].trace.kept[l][0], fca::RowIdentity::token(0));
        }
      }
      if (n0 == 40) {
        EXPECT_TRUE(out[s].trace.layers[0].reduce);
      }
      // The naive reference (exact double ties) agrees, logits included.
      const NaiveResult expected = reference_.run(encodings[s], fca);
      for (size_t l = 0; l < 4; ++l) EXPECT_EQ(strings(out[s].trace.kept[l]), expected.layers[l].kept);
      for (size_t k = 0; k < 3; ++k) EXPECT_NEAR(out[s].logits[k], expected.logits[k], 2e-5);
    }
  }
}

// ---- batching and traces ---------------------------------------------------------------------

TEST_F(FcaTinyBert, PackedBatchEqualsEachSequenceAlone) {
  for (const FcaSchedule& fca : {schedule({0.9, 0.7, 0.5, 0.3}, 2), schedule({0.6, 0.4, 0.3, 0.2}, 0),
                                 schedule({0.9, 0.7, 0.5, 0.3}, 3, Pooling::kMean)}) {
    SCOPED_TRACE(describe(fca));
    const std::vector<Encoding> encodings = batch(kMixedLengths, 77);
    const std::vector<Prediction> packed = run(encodings, &fca);
    for (size_t s = 0; s < encodings.size(); ++s) {
      const std::vector<Prediction> alone = run({encodings[s]}, &fca);
      for (size_t k = 0; k < 3; ++k)
        EXPECT_NEAR(packed[s].logits[k], alone[0].logits[k], 1e-6) << "sequence " << s;
      EXPECT_EQ(packed[s].trace.tokens, alone[0].trace.tokens);
      ASSERT_EQ(packed[s].trace.layers.size(), alone[0].trace.layers.size());
      for (size_t l = 0; l < packed[s].trace.layers.size(); ++l)
        expect_same_shape(packed[s].trace.layers[l], alone[0].trace.layers[l], "layer " + std::to_string(l));
      EXPECT_EQ(packed[s].trace.kept, alone[0].trace.kept) << "sequence " << s;
    }
  }
}

TEST_F(FcaTinyBert, TracesFollowTheScheduleAndKeptNeedsExplain) {
  const FcaSchedule fca = schedule({0.85, 0.6, 0.35, 0.14}, 2, Pooling::kMean);
  const std::vector<Encoding> encodings = batch(kMixedLengths, 3);
  const std::vector<Prediction> quiet = run(encodings, &fca, /*explain=*/false);
  for (size_t s = 0; s < encodings.size(); ++s) {
    const int64_t n0 = static_cast<int64_t>(encodings[s].ids.size());
    EXPECT_EQ(quiet[s].trace.tokens, n0);
    EXPECT_TRUE(quiet[s].trace.kept.empty());
    const std::vector<fca::ReductionShape> shapes = fca::schedule_shapes(fca, 4, n0);
    ASSERT_EQ(quiet[s].trace.layers.size(), 4u);
    for (size_t l = 0; l < 4; ++l)
      expect_same_shape(quiet[s].trace.layers[l], shapes[l], "sequence " + std::to_string(s));
  }
  // Dense runs report every layer passing through.
  const std::vector<Prediction> dense = run(encodings, nullptr, false);
  for (size_t s = 0; s < encodings.size(); ++s) {
    const int64_t n0 = static_cast<int64_t>(encodings[s].ids.size());
    const std::vector<fca::ReductionShape> shapes = fca::schedule_shapes(FcaSchedule{}, 4, n0);
    for (size_t l = 0; l < 4; ++l) expect_same_shape(dense[s].trace.layers[l], shapes[l], "dense");
  }
}

TEST_F(FcaTinyBert, ScratchIsReusedAcrossBatchesAndSchedules) {
  Workspace ws(net_.engine(), net_.workspace_spec());
  const FcaSchedule fca = schedule({0.9, 0.7, 0.5, 0.3}, 2);
  ForwardOptions with_fca;
  with_fca.schedule = &fca;
  const std::vector<Encoding> big = batch({40, 33, 27, 12}, 1), small = batch({9, 5}, 2);
  const std::vector<Prediction> big_first = net_.predict(big, ws, with_fca);
  const size_t reserved = ws.reserved_bytes();
  const std::vector<Prediction> small_dense = net_.predict(small, ws);
  const std::vector<Prediction> small_fca = net_.predict(small, ws, with_fca);
  const std::vector<Prediction> big_again = net_.predict(big, ws, with_fca);
  EXPECT_EQ(ws.reserved_bytes(), reserved);  // nothing grew for batches that fit
  for (size_t s = 0; s < big.size(); ++s) EXPECT_EQ(big_first[s].logits, big_again[s].logits);
  const std::vector<Prediction> small_fresh = run(small, &fca);
  for (size_t s = 0; s < small.size(); ++s) EXPECT_EQ(small_fca[s].logits, small_fresh[s].logits);
  const std::vector<Prediction> dense_fresh = run(small, nullptr);
  for (size_t s = 0; s < small.size(); ++s) EXPECT_EQ(small_dense[s].logits, dense_fresh[s].logits);
}

TEST_F(FcaTinyBert, DenseRunsReserveNoFcaScratch) {
  Workspace dense_ws(net_.engine(), net_.workspace_spec()), fca_ws(net_.engine(), net_.workspace_spec());
  const std::vector<Encoding> encodings = batch({40, 30, 20});
  const FcaSchedule fca = schedule({0.9, 0.7, 0.5, 0.3}, 2);
  ForwardOptions with_fca;
  with_fca.schedule = &fca;
  net_.predict(encodings, dense_ws);
  net_.predict(encodings, fca_ws, with_fca);
  EXPECT_LT(dense_ws.reserved_bytes(), fca_ws.reserved_bytes());
  // [T, d] floats for the second hidden buffer, at least.
  EXPECT_GE(fca_ws.reserved_bytes() - dense_ws.reserved_bytes(), 90u * 32u * sizeof(float));
}

TEST_F(FcaTinyBert, RejectsAScheduleThatDoesNotFit) {
  Workspace ws(net_.engine(), net_.workspace_spec());
  ForwardOptions options;
  const FcaSchedule three = schedule({1, 0.5, 0.5}, 2);
  options.schedule = &three;
  EXPECT_THROW(net_.predict(batch({5}), ws, options), Error);
  const FcaSchedule rising = schedule({0.5, 0.6, 0.5, 0.5}, 2);
  options.schedule = &rising;
  EXPECT_THROW(net_.predict(batch({5}), ws, options), Error);
  // The workspace stays usable.
  EXPECT_EQ(net_.predict(batch({5}), ws).size(), 1u);
}

TEST_F(FcaTinyBert, OneThreadAgreesWithTwo) {
  const BertClassifier single(config_, tiny_head(), weights_, 1);
  const FcaSchedule fca = schedule({0.9, 0.6, 0.4, 0.2}, 2);
  const std::vector<Encoding> encodings = batch(kMixedLengths, 12);
  Workspace ws(single.engine(), single.workspace_spec());
  ForwardOptions options;
  options.schedule = &fca;
  options.explain = true;
  const std::vector<Prediction> one = single.predict(encodings, ws, options);
  const std::vector<Prediction> two = run(encodings, &fca);
  for (size_t s = 0; s < encodings.size(); ++s) {
    for (size_t k = 0; k < 3; ++k) EXPECT_NEAR(one[s].logits[k], two[s].logits[k], 1e-6);
    EXPECT_EQ(one[s].trace.kept, two[s].trace.kept);
  }
}

}  // namespace
}  // namespace fcabert::model
