// The tensors of a BertForSequenceClassification model and the shapes its config implies.
// tools/fcabert_model.py (expected_tensors) is the Python mirror of this list.
#include "fcabert/model_file.h"

namespace fcabert {
namespace {

void add_linear(std::vector<TensorSpec>& specs, const std::string& prefix, int64_t out, int64_t in) {
  specs.push_back({prefix + ".weight", {out, in}});
  specs.push_back({prefix + ".bias", {out}});
}

void add_layer_norm(std::vector<TensorSpec>& specs, const std::string& prefix, int64_t size) {
  specs.push_back({prefix + ".weight", {size}});
  specs.push_back({prefix + ".bias", {size}});
}

void add_encoder_layer(std::vector<TensorSpec>& specs, const BertConfig& config, int64_t layer) {
  const int64_t d = config.hidden_size, f = config.intermediate_size;
  const std::string prefix = "bert.encoder.layer." + std::to_string(layer);
  add_linear(specs, prefix + ".attention.self.query", d, d);
  add_linear(specs, prefix + ".attention.self.key", d, d);
  add_linear(specs, prefix + ".attention.self.value", d, d);
  add_linear(specs, prefix + ".attention.output.dense", d, d);
  add_layer_norm(specs, prefix + ".attention.output.LayerNorm", d);
  add_linear(specs, prefix + ".intermediate.dense", f, d);
  add_linear(specs, prefix + ".output.dense", d, f);
  add_layer_norm(specs, prefix + ".output.LayerNorm", d);
}

}  // namespace

std::vector<TensorSpec> expected_tensors(const BertConfig& config, int64_t num_outputs) {
  const int64_t d = config.hidden_size;
  std::vector<TensorSpec> specs = {
      {"bert.embeddings.word_embeddings.weight", {config.vocab_size, d}},
      {"bert.embeddings.position_embeddings.weight", {config.max_position_embeddings, d}},
      {"bert.embeddings.token_type_embeddings.weight", {config.type_vocab_size, d}},
  };
  add_layer_norm(specs, "bert.embeddings.LayerNorm", d);
  for (int64_t layer = 0; layer < config.num_layers; ++layer) add_encoder_layer(specs, config, layer);
  add_linear(specs, "bert.pooler.dense", d, d);
  add_linear(specs, "classifier", num_outputs, d);
  return specs;
}

}  // namespace fcabert
