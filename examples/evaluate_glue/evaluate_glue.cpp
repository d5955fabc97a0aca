// Evaluates a model on a GLUE dev set through fcabert's public C++ API and prints, per split,
// the task's metrics and the FLOPs: the numbers `fcabert eval` reports for the same model and
// data (the model file's own FCA schedule, batches of 32).
//
//   evaluate_glue MODEL DATA        DATA: a GLUE task folder such as .../glue/SST-2
#include <fcabert/engine.h>
#include <fcabert/error.h>
#include <fcabert/evaluate.h>

#include <cstdio>

int main(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: %s MODEL DATA\n", argv[0]);
    return 2;
  }
  try {
    fcabert::eval::Options options;
    options.data = argv[2];
    const fcabert::eval::Dataset dataset = fcabert::eval::read_dataset(options);
    const auto model = fcabert::Model::load(argv[1]);
    const fcabert::eval::Report report = fcabert::eval::evaluate(model, dataset, options);

    const fcabert::glue::TaskInfo& task = fcabert::glue::task_info(dataset.task);
    for (const fcabert::eval::SplitResult& split : report.splits) {
      const fcabert::metrics::Scores scores = fcabert::eval::score(task, split.fca);
      std::printf("%s %s: %lld examples\n", task.name.c_str(), split.name.c_str(),
                  static_cast<long long>(split.fca.examples));
      for (const auto& [name, value] : scores.values) std::printf("  %-12s %.2f\n", name.c_str(), 100 * value);
      std::printf("  %-12s %.3f\n", "GFLOPs", split.fca.flops / 1e9);
      std::printf("  %-12s %.3f\n", "dense GFLOPs", split.fca.dense_flops / 1e9);
    }
  } catch (const fcabert::Error& e) {
    std::fprintf(stderr, "evaluate_glue: error: %s\n", e.what());
    return 1;
  }
  return 0;
}
