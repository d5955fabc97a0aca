// FLOPs accounting; the formulas are stated in include/fcabert/flops.h.
#include "fcabert/flops.h"

#include <algorithm>
#include <nlohmann/json.hpp>
#include <string>

#include "fcabert/error.h"

namespace fcabert {
namespace {

void check_geometry(const BertConfig& config) {
  if (config.hidden_size < 1 || config.intermediate_size < 1 || config.num_heads < 1 || config.num_layers < 0)
    throw Error("FLOPs: the BERT geometry is incomplete (hidden " + std::to_string(config.hidden_size) +
                ", intermediate " + std::to_string(config.intermediate_size) + ", heads " +
                std::to_string(config.num_heads) + ", layers " + std::to_string(config.num_layers) + ")");
}

nlohmann::ordered_json layer_json(const LayerFlops& flops) {
  return {{"tokens_in", flops.tokens_in},
          {"tokens_out", flops.tokens_out},
          {"linear_qkvo", flops.linear_qkvo},
          {"ffn", flops.ffn},
          {"attention_scores", flops.attention_scores},
          {"attention_context", flops.attention_context},
          {"fca_scoring", flops.fca_scoring},
          {"fca_pooling", flops.fca_pooling},
          {"linear", flops.linear()},
          {"attention", flops.attention()},
          {"fca", flops.fca()},
          {"total", flops.total()},
          {"macs", flops.macs()},
          {"elementwise", flops.elementwise}};
}

}  // namespace

LayerFlops& LayerFlops::operator+=(const LayerFlops& other) {
  tokens_in += other.tokens_in;
  tokens_out += other.tokens_out;
  linear_qkvo += other.linear_qkvo;
  ffn += other.ffn;
  attention_scores += other.attention_scores;
  attention_context += other.attention_context;
  fca_scoring += other.fca_scoring;
  fca_pooling += other.fca_pooling;
  elementwise += other.elementwise;
  return *this;
}

LayerFlops layer_flops(const BertConfig& config, int64_t n_in, int64_t n_out, int64_t pooled_rows,
                       int64_t clusters_made, Pooling pooling, bool reduced) {
  check_geometry(config);
  if (n_in < 0 || n_out < 0 || pooled_rows < 0 || clusters_made < 0)
    throw Error("FLOPs: negative token count (n_in " + std::to_string(n_in) + ", n_out " +
                std::to_string(n_out) + ", pooled " + std::to_string(pooled_rows) + ", clusters " +
                std::to_string(clusters_made) + ")");
  const int64_t n = n_in, n2 = n_out, d = config.hidden_size, f = config.intermediate_size,
                h = config.num_heads;
  LayerFlops flops;
  flops.tokens_in = n;
  flops.tokens_out = n2;
  flops.linear_qkvo = 2 * n * d * 4 * d;
  flops.ffn = 2 * n2 * d * f * 2;
  flops.attention_scores = 2 * n * n * d;
  flops.attention_context = 2 * n * n * d;
  if (reduced) {
    const int64_t m = pooled_rows, c = clusters_made;
    flops.fca_scoring = h * n * n;
    if (c > 0) flops.fca_pooling = pooling == Pooling::kWeighted ? 2 * m * d + 3 * m : m * d + c * d;
  }
  flops.elementwise = 5 * h * n * n + 12 * n * d + 9 * n2 * d + 6 * n2 * f;
  return flops;
}

LayerFlops layer_flops(const BertConfig& config, const fca::ReductionShape& shape, Pooling pooling) {
  return layer_flops(config, shape.rows_in, shape.rows_out, shape.pooled_rows, shape.clusters, pooling,
                     shape.reduce);
}

int64_t embedding_flops(const BertConfig& config, int64_t original_length) {
  return 2 * original_length * config.hidden_size;
}

int64_t pooler_flops(const BertConfig& config) { return 2 * config.hidden_size * config.hidden_size; }

int64_t classifier_flops(const BertConfig& config, int64_t num_labels) {
  return 2 * config.hidden_size * num_labels;
}

FlopsTally::FlopsTally(const BertConfig& config, int64_t num_labels)
    : config_(config),
      num_labels_(num_labels),
      layers_(static_cast<size_t>(std::max<int64_t>(config.num_layers, 0))) {
  check_geometry(config);
  if (num_labels < 1)
    throw Error("FLOPs: the classifier needs at least one output, got " + std::to_string(num_labels));
}

void FlopsTally::add_layer(int64_t layer, const LayerFlops& flops) {
  if (layer < 0 || layer >= static_cast<int64_t>(layers_.size()))
    throw Error("FLOPs: layer " + std::to_string(layer) + " does not exist (the model has " +
                std::to_string(layers_.size()) + " layers)");
  layers_[layer] += flops;
}

void FlopsTally::add_sequence(int64_t original_length) {
  if (original_length < 1)
    throw Error("FLOPs: a sequence has at least one token, got " + std::to_string(original_length));
  const int64_t n0 = original_length, d = config_.hidden_size;
  ++sequences_;
  tokens_ += n0;
  embedding_ += embedding_flops(config_, n0);
  pooler_ += pooler_flops(config_);
  classifier_ += classifier_flops(config_, num_labels_);
  extra_elementwise_ += 7 * n0 * d + 2 * d + num_labels_;
  const LayerFlops dense_layer = layer_flops(config_, n0, n0, 0, 0, Pooling::kWeighted, false);
  dense_total_ += config_.num_layers * dense_layer.total() + embedding_flops(config_, n0) +
                  pooler_flops(config_) + classifier_flops(config_, num_labels_);
}

void FlopsTally::add_sequence_analytic(const FcaSchedule& schedule, int64_t original_length) {
  const std::vector<fca::ReductionShape> shapes =
      fca::schedule_shapes(schedule, config_.num_layers, original_length);
  add_sequence(original_length);
  for (size_t layer = 0; layer < shapes.size(); ++layer)
    add_layer(static_cast<int64_t>(layer), layer_flops(config_, shapes[layer], schedule.pooling));
}

void FlopsTally::merge(const FlopsTally& other) {
  if (other.config_.hidden_size != config_.hidden_size ||
      other.config_.intermediate_size != config_.intermediate_size ||
      other.config_.num_heads != config_.num_heads || other.layers_.size() != layers_.size() ||
      other.num_labels_ != num_labels_)
    throw Error("FLOPs: cannot merge tallies of different model geometries");
  for (size_t i = 0; i < layers_.size(); ++i) layers_[i] += other.layers_[i];
  sequences_ += other.sequences_;
  tokens_ += other.tokens_;
  embedding_ += other.embedding_;
  pooler_ += other.pooler_;
  classifier_ += other.classifier_;
  extra_elementwise_ += other.extra_elementwise_;
  dense_total_ += other.dense_total_;
}

LayerFlops FlopsTally::encoder() const {
  LayerFlops sum;
  for (const LayerFlops& layer : layers_) sum += layer;
  return sum;
}

int64_t FlopsTally::total() const { return encoder().total() + embedding_ + pooler_ + classifier_; }

int64_t FlopsTally::macs() const { return encoder().macs() + (pooler_ + classifier_) / 2; }

int64_t FlopsTally::elementwise() const { return encoder().elementwise + extra_elementwise_; }

double FlopsTally::reduction_ratio(const FlopsTally& dense) const {
  const int64_t mine = total();
  return mine > 0 ? static_cast<double>(dense.total()) / static_cast<double>(mine) : 0.0;
}

double FlopsTally::reduction_ratio() const {
  const int64_t mine = total();
  return mine > 0 ? static_cast<double>(dense_total_) / static_cast<double>(mine) : 0.0;
}

nlohmann::ordered_json FlopsTally::to_json() const {
  nlohmann::ordered_json layers = nlohmann::ordered_json::array();
  for (size_t i = 0; i < layers_.size(); ++i) {
    nlohmann::ordered_json row = {{"layer", i}};
    row.update(layer_json(layers_[i]));
    layers.push_back(std::move(row));
  }
  return {{"convention",
           "FLOPs, a multiply-add = 2; macs = matrix-product multiply-adds; elementwise not in total"},
          {"sequences", sequences_},
          {"tokens", tokens_},
          {"layers", std::move(layers)},
          {"totals", layer_json(encoder())},
          {"embedding", embedding_},
          {"pooler", pooler_},
          {"classifier", classifier_},
          {"total", total()},
          {"macs", macs()},
          {"elementwise", elementwise()},
          {"dense_total", dense_total_},
          {"reduction_ratio", reduction_ratio()}};
}

std::string FlopsTally::to_json_string(int indent) const { return to_json().dump(indent); }

}  // namespace fcabert
