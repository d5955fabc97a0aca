#pragma once
// What a Model holds (Model::Internals, opaque in include/fcabert/engine.h): metadata,
// tokenizer and the bound network. Sessions (and fcabert-bench) run the network.
#include <memory>
#include <string>

#include "fcabert/engine.h"
#include "model/bert_classifier.h"

namespace fcabert {

struct Model::Internals {
  std::string path;
  ModelInfo info;
  Tokenizer tokenizer;
  LoadOptions options;
  PrecisionChoice precision;
  std::unique_ptr<const model::BertClassifier> network;
};

}  // namespace fcabert
