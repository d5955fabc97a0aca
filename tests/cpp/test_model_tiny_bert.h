#pragma once
// For the model tests: a tiny BERT with random weights (Hugging Face tensor names), random
// encodings, and a naive double-precision BertForSequenceClassification written straight
// from the formulas, one sequence at a time, to compare the engine against.
#include <cmath>
#include <cstdint>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "fcabert/config.h"
#include "fcabert/model_file.h"
#include "fcabert/tokenizer.h"

namespace fcabert::model_test {

// vocab 50, hidden 32, 2 layers, 4 heads (head dim 8), intermediate 64, 40 positions.
inline BertConfig tiny_config() {
  BertConfig c;
  c.vocab_size = 50;
  c.hidden_size = 32;
  c.num_layers = 2;
  c.num_heads = 4;
  c.intermediate_size = 64;
  c.max_position_embeddings = 40;
  c.type_vocab_size = 2;
  c.layer_norm_eps = 1e-12f;
  return c;
}

inline HeadConfig tiny_head(HeadKind kind = HeadKind::kClassification) {
  HeadConfig h;
  h.kind = kind;
  h.labels = kind == HeadKind::kRegression ? std::vector<std::string>{"score"}
                                           : std::vector<std::string>{"a", "b", "c"};
  return h;
}

// A vocabulary of vocab_size tokens: the BERT specials ([PAD]=0, [UNK]=1, [CLS]=2, [SEP]=3,
// [MASK]=4), then `words`, then "word<id>" fillers.
inline std::vector<std::string> tiny_vocab(const BertConfig& c, const std::vector<std::string>& words = {}) {
  std::vector<std::string> vocab = {"[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"};
  vocab.insert(vocab.end(), words.begin(), words.end());
  while (static_cast<int64_t>(vocab.size()) < c.vocab_size)
    vocab.push_back("word" + std::to_string(vocab.size()));
  return vocab;
}

// Weights scaled so activations stay O(1) through the layers (std ~0.02 like a fresh BERT
// would make attention uniform and hide indexing bugs).
inline std::vector<TensorData> random_bert_tensors(const BertConfig& c, int64_t num_labels, uint32_t seed) {
  std::mt19937 rng(seed);
  std::vector<TensorData> tensors;
  auto add = [&](const std::string& name, std::vector<int64_t> shape, float center, float spread) {
    int64_t count = 1;
    for (int64_t d : shape) count *= d;
    std::uniform_real_distribution<float> dist(center - spread, center + spread);
    std::vector<float> values(count);
    for (float& v : values) v = dist(rng);
    tensors.push_back(TensorData{name, std::move(shape), std::move(values), DType::kF32});
  };
  auto linear = [&](const std::string& prefix, int64_t in, int64_t out) {
    add(prefix + "weight", {out, in}, 0.f, 1.7f / std::sqrt(static_cast<float>(in)));
    add(prefix + "bias", {out}, 0.f, 0.1f);
  };
  auto norm = [&](const std::string& prefix, int64_t dim) {
    add(prefix + "weight", {dim}, 1.f, 0.2f);
    add(prefix + "bias", {dim}, 0.f, 0.2f);
  };
  const int64_t d = c.hidden_size, f = c.intermediate_size;
  add("bert.embeddings.word_embeddings.weight", {c.vocab_size, d}, 0.f, 1.f);
  add("bert.embeddings.position_embeddings.weight", {c.max_position_embeddings, d}, 0.f, 0.5f);
  add("bert.embeddings.token_type_embeddings.weight", {c.type_vocab_size, d}, 0.f, 0.5f);
  norm("bert.embeddings.LayerNorm.", d);
  for (int64_t l = 0; l < c.num_layers; ++l) {
    const std::string p = "bert.encoder.layer." + std::to_string(l) + ".";
    linear(p + "attention.self.query.", d, d);
    linear(p + "attention.self.key.", d, d);
    linear(p + "attention.self.value.", d, d);
    linear(p + "attention.output.dense.", d, d);
    norm(p + "attention.output.LayerNorm.", d);
    linear(p + "intermediate.dense.", d, f);
    linear(p + "output.dense.", f, d);
    norm(p + "output.LayerNorm.", d);
  }
  linear("bert.pooler.dense.", d, d);
  linear("classifier.", d, num_labels);
  return tensors;
}

inline Encoding random_encoding(int64_t length, const BertConfig& c, std::mt19937& rng) {
  std::uniform_int_distribution<int32_t> id(0, static_cast<int32_t>(c.vocab_size - 1));
  Encoding e;
  const int64_t first_segment = (length + 1) / 2;  // a pair: second half has type 1
  for (int64_t t = 0; t < length; ++t) {
    e.ids.push_back(id(rng));
    e.type_ids.push_back(t < first_segment ? 0 : 1);
  }
  return e;
}

// ---- the naive reference -------------------------------------------------------------
// An FCA schedule for tests.
inline FcaSchedule schedule(std::vector<double> ratios, int64_t clusters,
                            Pooling pooling = Pooling::kWeighted) {
  FcaSchedule s;
  s.keep_ratios = std::move(ratios);
  s.clusters = clusters;
  s.pooling = pooling;
  return s;
}

using Matrix = std::vector<std::vector<double>>;  // [rows][cols]

class ReferenceBert {
 public:
  ReferenceBert(const BertConfig& config, const std::vector<TensorData>& tensors) : c_(config) {
    for (const TensorData& t : tensors) w_[t.name] = std::vector<double>(t.values.begin(), t.values.end());
  }

  std::vector<double> logits(const Encoding& e) const {
    Matrix x = embed(e);
    for (int64_t l = 0; l < c_.num_layers; ++l) x = layer(x, "bert.encoder.layer." + std::to_string(l) + ".");
    return head(x);
  }

 protected:
  // The pieces, shared with the naive FCA reference in test_model_fca_forward.cpp.
  Matrix embed(const Encoding& e) const {
    const int64_t n = static_cast<int64_t>(e.ids.size()), d = c_.hidden_size;
    Matrix x(n, std::vector<double>(d));
    for (int64_t t = 0; t < n; ++t) {
      for (int64_t i = 0; i < d; ++i) {
        x[t][i] = w("bert.embeddings.word_embeddings.weight")[e.ids[t] * d + i] +
                  w("bert.embeddings.position_embeddings.weight")[t * d + i] +
                  w("bert.embeddings.token_type_embeddings.weight")[e.type_ids[t] * d + i];
      }
    }
    return layer_norm(x, "bert.embeddings.LayerNorm.");
  }

  // Pooler on row 0 ([CLS]) and the classifier.
  std::vector<double> head(const Matrix& x) const {
    Matrix pooled = linear(Matrix{x[0]}, "bert.pooler.dense.");
    for (double& v : pooled[0]) v = std::tanh(v);
    return linear(pooled, "classifier.")[0];
  }

  const std::vector<double>& w(const std::string& name) const { return w_.at(name); }

  Matrix linear(const Matrix& x, const std::string& prefix) const {
    const std::vector<double>& weight = w(prefix + "weight");
    const std::vector<double>& bias = w(prefix + "bias");
    const size_t in = x[0].size(), out = bias.size();
    Matrix y(x.size(), std::vector<double>(out));
    for (size_t r = 0; r < x.size(); ++r) {
      for (size_t o = 0; o < out; ++o) {
        double sum = bias[o];
        for (size_t i = 0; i < in; ++i) sum += x[r][i] * weight[o * in + i];
        y[r][o] = sum;
      }
    }
    return y;
  }

  Matrix layer_norm(const Matrix& x, const std::string& prefix) const {
    const std::vector<double>& gamma = w(prefix + "weight");
    const std::vector<double>& beta = w(prefix + "bias");
    Matrix y = x;
    for (auto& row : y) {
      double mean = 0, var = 0;
      for (double v : row) mean += v;
      mean /= row.size();
      for (double v : row) var += (v - mean) * (v - mean);
      var /= row.size();
      for (size_t i = 0; i < row.size(); ++i) {
        row[i] = (row[i] - mean) / std::sqrt(var + c_.layer_norm_eps) * gamma[i] + beta[i];
      }
    }
    return y;
  }

  static Matrix add(const Matrix& a, const Matrix& b) {
    Matrix y = a;
    for (size_t r = 0; r < y.size(); ++r)
      for (size_t i = 0; i < y[r].size(); ++i) y[r][i] += b[r][i];
    return y;
  }

  // Multi-head attention; when `probs` is given it receives the probabilities [H][n][n].
  Matrix self_attention(const Matrix& x, const std::string& p, std::vector<Matrix>* probs = nullptr) const {
    const Matrix q = linear(x, p + "attention.self.query.");
    const Matrix k = linear(x, p + "attention.self.key.");
    const Matrix v = linear(x, p + "attention.self.value.");
    const size_t n = x.size();
    const int64_t heads = c_.num_heads, dh = c_.hidden_size / heads;
    Matrix context(n, std::vector<double>(c_.hidden_size, 0.0));
    if (probs) probs->assign(heads, Matrix(n, std::vector<double>(n)));
    for (int64_t h = 0; h < heads; ++h) {
      for (size_t i = 0; i < n; ++i) {
        std::vector<double> a(n);
        double max = -INFINITY, sum = 0;
        for (size_t j = 0; j < n; ++j) {
          double dot = 0;
          for (int64_t c = 0; c < dh; ++c) dot += q[i][h * dh + c] * k[j][h * dh + c];
          a[j] = dot / std::sqrt(static_cast<double>(dh));
          max = std::max(max, a[j]);
        }
        for (double& s : a) sum += s = std::exp(s - max);
        for (double& s : a) s /= sum;
        for (size_t j = 0; j < n; ++j)
          for (int64_t c = 0; c < dh; ++c) context[i][h * dh + c] += a[j] * v[j][h * dh + c];
        if (probs) (*probs)[h][i] = a;
      }
    }
    return context;
  }

  static void gelu(Matrix& x) {
    for (auto& row : x)
      for (double& v : row) v = 0.5 * v * (1.0 + std::erf(v / std::sqrt(2.0)));
  }

  Matrix layer(const Matrix& x, const std::string& p) const {
    const Matrix attended = layer_norm(add(linear(self_attention(x, p), p + "attention.output.dense."), x),
                                       p + "attention.output.LayerNorm.");
    Matrix inter = linear(attended, p + "intermediate.dense.");
    gelu(inter);
    return layer_norm(add(linear(inter, p + "output.dense."), attended), p + "output.LayerNorm.");
  }

  BertConfig c_;
  std::map<std::string, std::vector<double>> w_;
};

}  // namespace fcabert::model_test
