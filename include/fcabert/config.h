#pragma once
// Plain descriptions of a model, as stored in the model file's metadata (docs/MODEL_FORMAT.md).
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace fcabert {

// BERT geometry, from the Hugging Face config.json of the source checkpoint.
struct BertConfig {
  int64_t vocab_size = 0;
  int64_t hidden_size = 0;
  int64_t num_layers = 0;
  int64_t num_heads = 0;
  int64_t intermediate_size = 0;
  int64_t max_position_embeddings = 0;
  int64_t type_vocab_size = 0;
  float layer_norm_eps = 1e-12f;
  std::string hidden_act = "gelu";  // only "gelu" (erf) is supported
  // The activation after the pooler's dense layer: "tanh" (BERT's pooler) or "relu"
  // (DistilBERT's pre_classifier, converted to the pooler).
  std::string pooler_act = "tanh";
};

// BertTokenizer settings and the full WordPiece vocabulary (id = index).
struct TokenizerConfig {
  std::vector<std::string> vocab;
  bool lowercase = true;
  // Hugging Face semantics: unset means "strip accents iff lowercase".
  std::optional<bool> strip_accents;
  bool tokenize_chinese_chars = true;
  int64_t max_len = 512;  // default truncation length, special tokens included
  std::string unk_token = "[UNK]";
  std::string cls_token = "[CLS]";
  std::string sep_token = "[SEP]";
  std::string pad_token = "[PAD]";
};

// What the classifier's outputs mean:
// - kClassification: one class per text; probabilities are the softmax of the logits;
// - kMultiLabel: any number of labels per text (Hugging Face's
//   "multi_label_classification"); each label's probability is the sigmoid of its logit, and
//   a text has every label whose probability is above a threshold (label_set());
// - kRegression: one output, the score itself.
enum class HeadKind { kClassification, kMultiLabel, kRegression };

// The name a model file uses for a head kind ("classification", "multi_label",
// "regression"), and back (throws fcabert::Error for any other name).
const char* head_kind_name(HeadKind kind);
HeadKind parse_head_kind(const std::string& name);

// What the classifier's outputs mean.
struct HeadConfig {
  HeadKind kind = HeadKind::kClassification;
  std::vector<std::string> labels;  // one name per output; regression: one name, e.g. "score"
  bool pair_input = false;          // true for sentence-pair tasks (MRPC, RTE, ...)
  std::string task;                 // e.g. "sst2"; empty when unknown

  // The classifier's outputs: one per label (a regression head has one), at least 1.
  int64_t outputs() const { return labels.empty() ? 1 : static_cast<int64_t>(labels.size()); }
};

enum class Pooling { kWeighted, kMean };

// The FCA token-reduction schedule (docs/FCA.md). Empty keep_ratios = dense model.
struct FcaSchedule {
  std::vector<double> keep_ratios;  // one per layer, in (0, 1], non-increasing
  int64_t clusters = 0;             // C; 0 = drop the remaining tokens (PoWER-BERT)
  Pooling pooling = Pooling::kWeighted;
  bool enabled() const { return !keep_ratios.empty(); }
};

// Everything the metadata says about a model.
struct ModelInfo {
  int format_version = 0;
  BertConfig bert;
  TokenizerConfig tokenizer;
  HeadConfig head;
  FcaSchedule fca;
  std::string provenance_json;  // free-form JSON object: source checkpoint, converter, date
};

}  // namespace fcabert
