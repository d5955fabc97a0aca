// Session: a Model plus the scratch one thread needs to run it, and the run settings
// (the effective FCA schedule, explain, timings).
#include "fcabert/engine.h"
#include "fcabert/error.h"
#include "model/bert_classifier.h"
#include "model/loaded_model.h"
#include "model/workspace.h"

namespace fcabert {
namespace {

const model::BertClassifier& network_of(const std::shared_ptr<const Model>& model) {
  if (!model) throw Error("Session needs a model, got a null pointer");
  return *model->internals().network;
}

// SessionOptions::schedule if set, else the model file's; checked against the layer count.
FcaSchedule effective_schedule(const Model& model, const SessionOptions& options) {
  const int64_t layers = model.info().bert.num_layers;
  if (options.schedule) {
    try {
      fca::validate_schedule(*options.schedule, layers);
    } catch (const Error& e) {
      throw Error(std::string("invalid FCA schedule for ") + model.path() + ": " + e.what());
    }
    return *options.schedule;
  }
  try {
    fca::validate_schedule(model.info().fca, layers);
  } catch (const Error& e) {
    throw Error(model.path() + ": the model file's FCA schedule is invalid: " + e.what());
  }
  return model.info().fca;
}

}  // namespace

struct Session::Scratch {
  Scratch(const model::BertClassifier& net, FcaSchedule fca_schedule, const SessionOptions& options)
      : network(net), workspace(net.engine(), net.workspace_spec()), schedule(std::move(fca_schedule)) {
    forward.schedule = &schedule;
    forward.explain = options.explain;
    if (options.time_layers) forward.timings = &timings;
  }
  const model::BertClassifier& network;
  model::Workspace workspace;
  FcaSchedule schedule;
  LayerTimings timings;
  model::ForwardOptions forward;
};

Session::Session(std::shared_ptr<const Model> model, SessionOptions options) : model_(std::move(model)) {
  const model::BertClassifier& network = network_of(model_);
  scratch_ = std::make_unique<Scratch>(network, effective_schedule(*model_, options), options);
}

Session::~Session() = default;

std::vector<Prediction> Session::run(const std::vector<Encoding>& batch) {
  if (scratch_->forward.timings) {
    // Zeroed in place (an empty batch or a rejected one leaves zeros, not the last run's).
    LayerTimings& timings = scratch_->timings;
    timings.embeddings_ms = timings.head_ms = timings.linear_ms = 0;
    timings.layer_ms.assign(static_cast<size_t>(model_->info().bert.num_layers), 0.0);
  }
  return scratch_->network.predict(batch, scratch_->workspace, scratch_->forward);
}

const FcaSchedule& Session::schedule() const { return scratch_->schedule; }

const LayerTimings& Session::last_timings() const { return scratch_->timings; }
size_t Session::workspace_bytes() const { return scratch_->workspace.reserved_bytes(); }

}  // namespace fcabert
