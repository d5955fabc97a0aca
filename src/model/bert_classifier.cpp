#include "model/bert_classifier.h"

#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <exception>
#include <string>

#include "fcabert/error.h"
#include "kernels/parallel.h"
#include "model/prediction.h"

namespace fcabert::model {
namespace {

// Wall-clock laps for ForwardOptions::timings (steady_clock; only read when timing).
class Stopwatch {
 public:
  explicit Stopwatch(bool on) {
    if (on) last_ = std::chrono::steady_clock::now();
  }
  // Stores the milliseconds since the previous lap (or the start) and starts the next one.
  void lap(double& ms) {
    const auto now = std::chrono::steady_clock::now();
    ms = std::chrono::duration<double, std::milli>(now - last_).count();
    last_ = now;
  }

 private:
  std::chrono::steady_clock::time_point last_;
};

void require(bool ok, const std::string& message) {
  if (!ok) throw Error("unsupported model: " + message);
}

std::vector<EncoderLayer> bind_layers(const dnnl::engine& engine, const WeightSource& weights,
                                      const BertConfig& config, const LayerPrecisions& precisions) {
  std::vector<EncoderLayer> layers;
  layers.reserve(static_cast<size_t>(config.num_layers));
  for (int64_t l = 0; l < config.num_layers; ++l) {
    layers.emplace_back(engine, weights, "bert.encoder.layer." + std::to_string(l) + ".", config, precisions);
  }
  return layers;
}

// Runs before any member is bound, so a bad config fails with a clear message rather than
// a tensor-shape error.
const BertConfig& checked(const BertConfig& config, const HeadConfig& head, int threads) {
  check_supported(config, head);
  if (threads < 1) throw Error("threads must be at least 1, got " + std::to_string(threads));
  return config;
}

}  // namespace

void check_supported(const BertConfig& config, const HeadConfig& head) {
  require(config.vocab_size > 0 && config.hidden_size > 0 && config.num_layers > 0 && config.num_heads > 0 &&
              config.intermediate_size > 0 && config.max_position_embeddings > 0 &&
              config.type_vocab_size > 0,
          "every size in the BERT config must be positive");
  require(config.hidden_size % config.num_heads == 0, "hidden_size " + std::to_string(config.hidden_size) +
                                                          " is not a multiple of num_heads " +
                                                          std::to_string(config.num_heads));
  require(config.hidden_act == "gelu",
          "hidden_act \"" + config.hidden_act + "\" (only \"gelu\", the erf form, is implemented)");
  require(config.pooler_act == "tanh" || config.pooler_act == "relu",
          "pooler_act \"" + config.pooler_act + "\" (tanh or relu)");
  require(!(config.layer_norm_eps < 0.f), "layer_norm_eps must not be negative");
  require(!head.labels.empty(), "the head has no labels");
  require(head.kind != HeadKind::kRegression || head.labels.size() == 1,
          "a regression head has exactly one output, got " + std::to_string(head.labels.size()));
}

BertClassifier::BertClassifier(const BertConfig& config, const HeadConfig& head, const WeightSource& weights,
                               int threads, Precision precision)
    : config_(checked(config, head, threads)),
      head_(head),
      threads_(threads),
      precision_(precision),
      layer_precisions_(LayerPrecisions::for_model(
          precision, LayerPrecisions::int8_down_projection_here(),
          kernels::bf16_attention_supported(config_.hidden_size / config_.num_heads))),
      engine_(dnnl::engine::kind::cpu, 0),
      embeddings_(weights, "bert.embeddings.", config),
      layers_(bind_layers(engine_, weights, config, layer_precisions_)),
      pooler_(engine_, weights, "bert.pooler.", config),
      classifier_(engine_, weights, "classifier.", config.hidden_size,
                  static_cast<int64_t>(head.labels.size())) {}

WorkspaceSpec BertClassifier::workspace_spec() const {
  WorkspaceSpec spec;
  spec.hidden = config_.hidden_size;
  spec.intermediate = config_.intermediate_size;
  spec.num_heads = config_.num_heads;
  spec.num_labels = classifier_.num_labels();
  spec.num_layers = config_.num_layers;
  spec.threads = threads_;
  spec.matmul_precision = precision_;
  spec.converted_input_bytes_per_row = layer_precisions_.converted_input_bytes_per_row(config_);
  spec.per_row_int8 = layer_precisions_.per_row_int8();
  spec.dnnl_scratchpad_bytes = std::max(pooler_.scratchpad_bytes(), classifier_.scratchpad_bytes());
  for (const EncoderLayer& layer : layers_) {
    spec.dnnl_scratchpad_bytes = std::max(spec.dnnl_scratchpad_bytes, layer.scratchpad_bytes());
  }
  return spec;
}

std::vector<Prediction> BertClassifier::predict(const std::vector<Encoding>& batch, Workspace& ws,
                                                const ForwardOptions& options) const {
  if (options.schedule) fca::validate_schedule(*options.schedule, config_.num_layers);
  pack_batch(batch, config_, ws.batch);
  if (ws.batch.sequences() == 0) return {};
  forward(ws, options);
  return predictions(ws, options.explain);
}

void BertClassifier::prepare(Workspace& ws, bool fca) const {
  kernels::use_threads(threads_);
  ws.reserve(ws.batch.tokens(), ws.batch.sequences(), ws.batch.longest(), fca);
}

void BertClassifier::forward(Workspace& ws, const ForwardOptions& options) const {
  const FcaSchedule* schedule =
      options.schedule != nullptr && options.schedule->enabled() ? options.schedule : nullptr;
  prepare(ws, schedule != nullptr);
  Stopwatch clock(options.timings != nullptr);
  const PackedBatch& batch = ws.batch;
  const int64_t sequences = batch.sequences();
  FcaScratch& fca = ws.fca;
  fca.offsets.assign(batch.offsets.begin(), batch.offsets.end());  // capacity reserved
  fca.shapes.resize(static_cast<size_t>(sequences * config_.num_layers));
  if (options.explain) {
    fca.identities.resize(static_cast<size_t>(sequences));
    fca.kept.resize(static_cast<size_t>(sequences));
    for (int64_t s = 0; s < sequences; ++s) {
      fca.identities[s] = fca::initial_identities(batch.offsets[s + 1] - batch.offsets[s]);
      fca.kept[s].assign(static_cast<size_t>(config_.num_layers), {});
    }
  }
  if (options.timings) {
    options.timings->layer_ms.assign(layers_.size(), 0.0);
    options.timings->linear_ms = 0;
  }
  double* linear_ms = options.timings ? &options.timings->linear_ms : nullptr;

  // x: the hidden states; spare: where a reducing layer writes its shorter rows (then the
  // two swap, so x may end in either buffer).
  float* x = ws.hidden();
  float* spare = schedule ? fca.hidden() : nullptr;
  embeddings_.forward(batch, x);
  if (options.timings) clock.lap(options.timings->embeddings_ms);
  for (size_t l = 0; l < layers_.size(); ++l) {
    const int64_t layer = static_cast<int64_t>(l);
    // Whether a sequence reduces depends only on its row counts, so it is known before
    // attention: the column sums are gathered only in layers where something reduces.
    const bool reduces = plan_layer(layer, schedule, ws);
    kernels::AttentionExtras extras;
    if (reduces) extras = {fca.column_sums(), fca.diagonal()};
    layers_[l].attention_block(fca.offsets, x, ws, extras, linear_ms);
    if (reduces) {
      // FCA step (docs/FCA.md): the FFN of this layer and everything after it
      // run on the reduced rows.
      reduce_layer(layer, *schedule, options.explain, x, spare, ws);
      std::swap(x, spare);
      fca.offsets.swap(fca.next_offsets);
    } else if (options.explain) {
      for (int64_t s = 0; s < sequences; ++s) fca.kept[s][l] = fca.identities[s];
    }
    layers_[l].feed_forward_block(fca.offsets.back(), x, ws, linear_ms);
    if (options.timings) clock.lap(options.timings->layer_ms[l]);
  }
  // Row 0 of every sequence is still its [CLS]: FCA always keeps it first.
  pooler_.forward(x, fca.offsets, ws, ws.pooled());
  classifier_.forward(ws.pooled(), sequences, ws, ws.logits());
  if (options.timings) clock.lap(options.timings->head_ms);
}

bool BertClassifier::plan_layer(int64_t layer, const FcaSchedule* schedule, Workspace& ws) const {
  const PackedBatch& batch = ws.batch;
  const std::vector<int64_t>& offsets = ws.fca.offsets;
  const int64_t sequences = batch.sequences();
  fca::ReductionShape* shapes = ws.fca.shapes.data() + layer * sequences;
  bool any = false;
  for (int64_t s = 0; s < sequences; ++s) {
    const int64_t n = offsets[s + 1] - offsets[s];
    if (schedule == nullptr) {
      shapes[s] = fca::reduction_shape(n, n, 0);  // dense: keep every row
      continue;
    }
    const int64_t original = batch.offsets[s + 1] - batch.offsets[s];
    shapes[s] =
        fca::reduction_shape(n, fca::keep_count(schedule->keep_ratios[layer], original), schedule->clusters);
    any = any || shapes[s].reduce;
  }
  return any;
}

void BertClassifier::reduce_layer(int64_t layer, const FcaSchedule& schedule, bool explain, const float* in,
                                  float* out, Workspace& ws) const {
  FcaScratch& fca = ws.fca;
  const int64_t sequences = ws.batch.sequences();
  const int64_t d = config_.hidden_size, heads = config_.num_heads;
  const fca::ReductionShape* shapes = fca.shapes.data() + layer * sequences;
  const std::vector<int64_t>& offsets = fca.offsets;
  std::vector<int64_t>& next = fca.next_offsets;
  next.resize(static_cast<size_t>(sequences + 1));  // capacity reserved
  next[0] = 0;
  for (int64_t s = 0; s < sequences; ++s) next[s + 1] = next[s] + shapes[s].rows_out;

  // Each sequence's output rows are known up front, so sequences reduce independently; each
  // thread plans with its own ReductionPlan. Per sequence: a copy of n*d floats, an
  // O(n log n) selection and m*d multiply-adds of pooling, so small batches stay serial.
  const int threads =
      sequences > 1 && kernels::worth_parallel(offsets.back() * d) ? static_cast<int>(fca.plans.size()) : 1;
  std::exception_ptr failure;
  const auto reduce_one = [&](int64_t s) {
    try {
      const int64_t first = offsets[s], n = offsets[s + 1] - first;
      const float* rows = in + first * d;
      float* dst = out + next[s] * d;
      const fca::ReductionShape& shape = shapes[s];
      if (!shape.reduce) {
        std::memcpy(dst, rows, static_cast<size_t>(n * d) * sizeof(float));
        if (explain) fca.kept[s][layer] = fca.identities[s];
        return;
      }
      fca::ReductionPlan& plan = fca.plans[static_cast<size_t>(omp_get_thread_num())];
      double* scores = fca.scores() + first;
      // The kernel left this sequence's per-head column sums at heads * first ([head][row]).
      fca::scores_from_column_sums(fca.column_sums() + heads * first, fca.diagonal() + heads * first, heads,
                                   n, heads, scores);
      fca::plan_reduction(scores, n, shape.keep, schedule.clusters, plan);
      fca::apply_reduction(plan, scores, rows, d, schedule.pooling, dst);
      if (explain) {
        std::vector<fca::RowIdentity> after = fca::map_identities(plan, layer, fca.identities[s]);
        fca.kept[s][layer].assign(after.begin(),
                                  after.begin() + static_cast<std::ptrdiff_t>(plan.fine.size()));
        fca.identities[s] = std::move(after);
      }
    } catch (...) {
#pragma omp critical(fcabert_reduce_failure)
      if (!failure) failure = std::current_exception();
    }
  };
  // A serial run opens no parallel region at all (a serialized one makes libgomp allocate).
  if (threads > 1) {
#pragma omp parallel for schedule(dynamic) num_threads(threads)
    for (int64_t s = 0; s < sequences; ++s) reduce_one(s);
  } else {
    for (int64_t s = 0; s < sequences; ++s) reduce_one(s);
  }
  if (failure) std::rethrow_exception(failure);
}

std::vector<Prediction> BertClassifier::predictions(Workspace& ws, bool explain) const {
  const int64_t labels = classifier_.num_labels();
  const int64_t sequences = ws.batch.sequences();
  const std::vector<int64_t>& offsets = ws.batch.offsets;
  std::vector<Prediction> out(static_cast<size_t>(sequences));
  for (int64_t s = 0; s < sequences; ++s) {
    Prediction& prediction = out[s];
    const float* logits = ws.logits() + s * labels;
    prediction.logits.assign(logits, logits + labels);
    set_probabilities(prediction, head_.kind);
    SequenceTrace& trace = prediction.trace;
    trace.tokens = offsets[s + 1] - offsets[s];
    trace.layers.reserve(layers_.size());
    for (size_t l = 0; l < layers_.size(); ++l) trace.layers.push_back(ws.fca.shapes[l * sequences + s]);
    if (explain) trace.kept = std::move(ws.fca.kept[s]);
  }
  return out;
}

}  // namespace fcabert::model
