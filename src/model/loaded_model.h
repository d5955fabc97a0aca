#pragma once
// The Model that Model::load returns: metadata, tokenizer and the bound network.
#include <memory>
#include <string>

#include "fcabert/engine.h"
#include "model/bert_classifier.h"

namespace fcabert::model {

class LoadedModel final : public Model {
 public:
  LoadedModel(std::string path, ModelInfo info, Tokenizer tokenizer, LoadOptions options,
              std::unique_ptr<const BertClassifier> network);

  const ModelInfo& info() const override;
  const std::string& path() const override;
  const Tokenizer& tokenizer() const override;
  const LoadOptions& options() const override;
  const BertClassifier& network() const { return *network_; }

 private:
  std::string path_;
  ModelInfo info_;
  Tokenizer tokenizer_;
  LoadOptions options_;
  std::unique_ptr<const BertClassifier> network_;
};

}  // namespace fcabert::model
