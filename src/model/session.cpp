// Session: a Model plus the scratch one thread needs to run it.
#include "fcabert/engine.h"
#include "fcabert/error.h"
#include "model/bert_classifier.h"
#include "model/loaded_model.h"
#include "model/workspace.h"

namespace fcabert {

struct Session::Scratch {
  explicit Scratch(const model::BertClassifier& net)
      : network(net), workspace(net.engine(), net.workspace_spec()) {}
  const model::BertClassifier& network;
  model::Workspace workspace;
};

Session::Session(std::shared_ptr<const Model> model) : model_(std::move(model)) {
  if (!model_) throw Error("Session needs a model, got a null pointer");
  const auto* loaded = dynamic_cast<const model::LoadedModel*>(model_.get());
  if (!loaded) throw Error("Session needs a model created by Model::load");
  scratch_ = std::make_unique<Scratch>(loaded->network());
}

Session::~Session() = default;

std::vector<Prediction> Session::run(const std::vector<Encoding>& batch) {
  return scratch_->network.predict(batch, scratch_->workspace);
}

}  // namespace fcabert
