// Model::load: file -> validated metadata -> tokenizer -> network bound to its weights.
#include <oneapi/dnnl/dnnl.h>
#include <spdlog/spdlog.h>

#include <chrono>
#include <string>

#include "fcabert/engine.h"
#include "fcabert/error.h"
#include "fcabert/model_file.h"
#include "kernels/parallel.h"
#include "model/loaded_model.h"
#include "model/precision_choice.h"
#include "model/weights.h"

namespace fcabert {

const char* version() { return FCABERT_VERSION; }

std::string backend_version() {
  const dnnl_version_t* v = dnnl_version();
  return "oneDNN " + std::to_string(v->major) + "." + std::to_string(v->minor) + "." +
         std::to_string(v->patch);
}
Model::Model(std::unique_ptr<const Internals> internals) : internals_(std::move(internals)) {}
Model::~Model() = default;

const ModelInfo& Model::info() const { return internals_->info; }
const std::string& Model::path() const { return internals_->path; }
const Tokenizer& Model::tokenizer() const { return internals_->tokenizer; }
const LoadOptions& Model::options() const { return internals_->options; }
const PrecisionChoice& Model::precision() const { return internals_->precision; }

std::shared_ptr<const Model> Model::load(const std::string& path, const LoadOptions& options) {
  if (options.threads < 1) throw Error("threads must be at least 1, got " + std::to_string(options.threads));
  // oneDNN here runs on OpenMP, so this one setting drives both (for the loading thread;
  // each Session re-applies it on its own thread).
  kernels::use_threads(options.threads);
  const auto start = std::chrono::steady_clock::now();

  ModelFile file = ModelFile::open(path);
  const ModelInfo& info = file.info();
  try {
    model::check_supported(info.bert, info.head);
  } catch (const Error& e) {
    throw Error(path + ": " + e.what());
  }
  Tokenizer tokenizer(info.tokenizer);
  PrecisionChoice precision = model::choose_precision(options.precision, info.bert);
  auto network = std::make_unique<const model::BertClassifier>(
      info.bert, info.head, model::ModelFileWeights(file), options.threads, precision.precision);
  precision.arithmetic = network->layer_precisions().describe();
  if (options.precision == Precision::kAuto)
    spdlog::info("precision {}, {}", precision.arithmetic, precision.reason);

  const double ms =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
  spdlog::debug("loaded {} ({} layers, hidden {}, {} labels, {} threads, {}) in {:.0f} ms", path,
                info.bert.num_layers, info.bert.hidden_size, info.head.labels.size(), options.threads,
                precision.arithmetic, ms);
  auto internals = std::unique_ptr<Internals>(
      new Internals{path, info, std::move(tokenizer), options, std::move(precision), std::move(network)});
  return std::shared_ptr<const Model>(new Model(std::move(internals)));
}

}  // namespace fcabert
