// Classifies sentences through fcabert's public C++ API: load a model file, tokenize each
// sentence, run the batch through a Session, print the most likely label and its probability
// ("label<TAB>probability" per sentence, the format of `fcabert classify`).
//
//   classify_sentence MODEL SENTENCE...
#include <fcabert/engine.h>
#include <fcabert/error.h>

#include <algorithm>
#include <cstdio>
#include <iterator>
#include <vector>

int main(int argc, char** argv) {
  if (argc < 3) {
    std::fprintf(stderr, "usage: %s MODEL SENTENCE...\n", argv[0]);
    return 2;
  }
  try {
    const auto model = fcabert::Model::load(argv[1]);
    const fcabert::ModelInfo& info = model->info();
    if (info.head.kind != fcabert::HeadKind::kClassification || info.head.pair_input) {
      std::fprintf(stderr, "%s: this example needs a single-sentence classification model\n", argv[1]);
      return 2;
    }
    std::vector<fcabert::Encoding> batch;
    for (int i = 2; i < argc; ++i)
      batch.push_back(model->tokenizer().encode(argv[i], info.tokenizer.max_len));

    fcabert::Session session(model);  // the model file's FCA schedule, if it has one
    for (const fcabert::Prediction& prediction : session.run(batch)) {
      const auto& p = prediction.probabilities;
      const auto best = std::distance(p.begin(), std::max_element(p.begin(), p.end()));
      std::printf("%s\t%.4f\n", info.head.labels[best].c_str(), p[best]);
    }
  } catch (const fcabert::Error& e) {
    std::fprintf(stderr, "classify_sentence: error: %s\n", e.what());
    return 1;
  }
  return 0;
}
