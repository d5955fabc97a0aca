#pragma once
// Loading a model and running it on packed, ragged batches (no padding, DESIGN §3).
//
// Thread safety: a loaded Model is immutable and may be shared by any number of threads;
// each thread runs its own Session (a Session owns its scratch buffers and is not
// thread-safe itself).
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "fcabert/config.h"
#include "fcabert/tokenizer.h"

namespace fcabert {

struct LoadOptions {
  int threads = 2;  // also given to oneDNN / OpenMP
};

class Model {
 public:
  // Reads and validates the model file, converts bf16 weights to fp32 and prepares the
  // oneDNN primitives. Throws fcabert::Error.
  static std::shared_ptr<const Model> load(const std::string& path, const LoadOptions& options = {});

  virtual ~Model() = default;
  virtual const ModelInfo& info() const = 0;
  virtual const std::string& path() const = 0;
  virtual const Tokenizer& tokenizer() const = 0;
  virtual const LoadOptions& options() const = 0;  // as given to load()
};

// The output for one input sequence.
struct Prediction {
  std::vector<float> logits;         // one per head output
  std::vector<float> probabilities;  // softmax of logits; empty for regression
};

class Session {
 public:
  explicit Session(std::shared_ptr<const Model> model);
  ~Session();
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;

  // Runs one packed batch; returns one Prediction per encoding, in the same order. Throws
  // fcabert::Error, before any computation, for an empty sequence, a sequence longer than
  // max_position_embeddings, or an id outside the vocabulary / token-type range. An empty
  // batch gives an empty result. Scratch grows to the largest batch seen and is reused.
  std::vector<Prediction> run(const std::vector<Encoding>& batch);

  const Model& model() const { return *model_; }

 private:
  struct Scratch;
  std::shared_ptr<const Model> model_;
  std::unique_ptr<Scratch> scratch_;
};

}  // namespace fcabert
