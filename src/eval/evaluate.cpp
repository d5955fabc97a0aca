// Running a GLUE evaluation (include/fcabert/evaluate.h): read, tokenize, run in packed
// batches, score.
#include "fcabert/evaluate.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "fcabert/digest.h"
#include "fcabert/error.h"
#include "fcabert/runner.h"

namespace fcabert::eval {
namespace {

using Json = nlohmann::ordered_json;

glue::Task resolve_task(const Options& options) {
  if (options.data.empty()) throw Error("no evaluation data given: name a GLUE task folder or a .tsv file");
  if (options.task) return *options.task;
  glue::Task task;
  if (!glue::detect_task(options.data, task))
    throw Error("cannot tell the GLUE task from '" + options.data +
                "' (no folder named SST-2, CoLA, MRPC, STS-B, QQP, MNLI, QNLI, RTE or WNLI); give --task");
  return task;
}

// The model must have the task's kind of head and input.
void check_model_fits(const glue::TaskInfo& task, const Model& model) {
  const ModelInfo& info = model.info();
  if (info.head.kind == HeadKind::kMultiLabel)
    throw Error("GLUE tasks are single-label, but the model " + model.path() +
                " is multi-label (a sigmoid per label); classify --format jsonl gives its labels and "
                "probabilities to score with your own metric");
  const bool model_regression = info.head.kind == HeadKind::kRegression;
  if (model_regression != task.regression)
    throw Error("task " + task.name + " is " + (task.regression ? "a regression" : "a classification") +
                " task but the model " + model.path() + " has a " +
                (model_regression ? "regression" : "classification") + " head");
  if (info.head.pair_input != task.pair)
    throw Error("task " + task.name + " takes " + (task.pair ? "sentence pairs" : "single sentences") +
                " but the model " + model.path() + " takes " +
                (info.head.pair_input ? "sentence pairs" : "single sentences"));
}

// model output m -> task class (by label name, glue::label_map); empty for regression.
std::vector<int> model_to_task_classes(glue::Task task_id, const glue::TaskInfo& task,
                                       const ModelInfo& info) {
  std::vector<int> model_to_task;
  if (task.regression) return model_to_task;
  const std::vector<int> task_to_model = glue::label_map(task_id, info.head.labels);
  model_to_task.assign(task_to_model.size(), 0);
  for (size_t t = 0; t < task_to_model.size(); ++t)
    model_to_task[static_cast<size_t>(task_to_model[t])] = static_cast<int>(t);
  return model_to_task;
}

// A shard's part of a split: the length-sorted batches of the whole split, as an unsharded
// run makes them, whose batch number b has shard.owns(b). Every batch, and so every result,
// is the unsharded run's (int8's per-batch input scales included).
struct ShardWork {
  std::vector<int64_t> indices;     // the shard's examples within the split, in index order
  std::vector<Encoding> encodings;  // theirs, in the same order
  BatchPlan plan;                   // the shard's batches, over `encodings`
};

ShardWork shard_work(std::vector<Encoding> all, int64_t batch_size, const Shard& shard) {
  const BatchPlan whole = plan_batches(all, batch_size, BatchOrder::kByLength);
  std::vector<bool> owned(all.size(), false);
  for (size_t b = 0; b < whole.batches(); ++b)
    if (shard.owns(static_cast<int64_t>(b)))
      for (size_t p = whole.begin(b); p < whole.end(b); ++p) owned[whole.order[p]] = true;
  ShardWork work;
  std::vector<size_t> position(all.size());  // example index -> its place in work.encodings
  for (size_t i = 0; i < all.size(); ++i) {
    if (!owned[i]) continue;
    position[i] = work.encodings.size();
    work.indices.push_back(static_cast<int64_t>(i));
    work.encodings.push_back(std::move(all[i]));
  }
  work.plan.batch_size = whole.batch_size;
  for (size_t b = 0; b < whole.batches(); ++b)
    if (shard.owns(static_cast<int64_t>(b)))
      for (size_t p = whole.begin(b); p < whole.end(b); ++p)
        work.plan.order.push_back(position[whole.order[p]]);
  return work;
}

SideResult side_result(const glue::TaskInfo& task, const std::vector<int>& model_to_task,
                       const glue::Split& split, const std::vector<int64_t>& indices, const RunResult& run) {
  SideResult side;
  if (!task.regression) side.matrix = metrics::ConfusionMatrix(static_cast<int>(task.label_names.size()));
  for (size_t j = 0; j < indices.size(); ++j) {
    const glue::Example& example = split.examples[static_cast<size_t>(indices[j])];
    const std::vector<float>& logits = run.predictions[j].logits;
    if (task.regression)
      side.pairs.emplace_back(indices[j], static_cast<double>(logits.at(0)), example.score);
    else
      side.matrix.add(example.label, model_to_task.at(metrics::argmax(logits)));
  }
  side.examples = static_cast<int64_t>(indices.size());
  side.tokens = run.flops.tokens();
  side.flops = run.flops.total();
  side.dense_flops = run.flops.dense_total();
  side.seconds = run.seconds;
  return side;
}

// Adds one side's prediction (and probabilities, by task label name) to a predictions row.
void describe_prediction(Json& row, const glue::TaskInfo& task, const std::vector<int>& model_to_task,
                         const Prediction& prediction, const char* prediction_key, const char* values_key) {
  if (task.regression) {
    row[prediction_key] = prediction.logits.at(0);
    return;
  }
  const int predicted = model_to_task[metrics::argmax(prediction.logits)];
  row[prediction_key] = task.label_names[static_cast<size_t>(predicted)];
  Json probabilities = Json::object();
  for (size_t t = 0; t < task.label_names.size(); ++t)
    for (size_t m = 0; m < model_to_task.size(); ++m)
      if (model_to_task[m] == static_cast<int>(t))
        probabilities[task.label_names[t]] = prediction.probabilities.at(m);
  row[values_key] = probabilities;
}

std::string prediction_line(const glue::TaskInfo& task, const std::vector<int>& model_to_task,
                            const glue::Split& split, int64_t index, const Prediction& fca,
                            const Prediction* dense) {
  const glue::Example& example = split.examples[static_cast<size_t>(index)];
  Json row;
  row["split"] = split.name;
  row["index"] = index;
  row["line"] = example.line;
  describe_prediction(row, task, model_to_task, fca, "prediction", "probabilities");
  if (task.regression)
    row["gold"] = example.score;
  else
    row["gold"] = task.label_names[static_cast<size_t>(example.label)];
  if (dense) describe_prediction(row, task, model_to_task, *dense, "dense_prediction", "dense_probabilities");
  return row.dump();
}

// Everything one split needs that is the same for every split.
struct Evaluation {
  glue::Task task_id;
  const glue::TaskInfo& task;
  const Model& model;
  const Options& options;
  int64_t max_len;
  std::vector<int> model_to_task;
  std::vector<Session*> sessions;  // FCA first, then dense with compare_dense
  const Callbacks& callbacks;
};

SplitResult evaluate_split(const Evaluation& e, const glue::Split& split) {
  SplitResult result;
  result.name = split.name;
  result.file = split.path;
  result.skipped = split.skipped;
  result.split_examples = static_cast<int64_t>(split.examples.size());
  if (e.options.limit > 0) result.split_examples = std::min(result.split_examples, e.options.limit);
  // Every shard encodes the whole split: the batches are planned over all of it.
  std::vector<Encoding> all;
  all.reserve(static_cast<size_t>(result.split_examples));
  for (int64_t i = 0; i < result.split_examples; ++i) {
    const glue::Example& example = split.examples[static_cast<size_t>(i)];
    all.push_back(encode_example(e.model.tokenizer(), example.text_a,
                                 e.task.pair ? std::optional<std::string_view>(example.text_b) : std::nullopt,
                                 e.max_len, split.path + ":" + std::to_string(example.line)));
  }
  const ShardWork work = shard_work(std::move(all), e.options.batch_size, e.options.shard);
  const std::vector<int64_t>& indices = work.indices;
  if (result.split_examples == 0)
    throw Error(split.path + ": no examples to evaluate; the metrics need at least one example");
  if (indices.empty())
    throw Error(split.path + ": no examples to evaluate in shard " + e.options.shard.to_string() + ": the " +
                std::to_string(result.split_examples) + " examples make only " +
                std::to_string((result.split_examples + e.options.batch_size - 1) / e.options.batch_size) +
                " batch(es) of " + std::to_string(e.options.batch_size) +
                ", and a shard runs whole batches; use fewer shards or a smaller --batch-size");
  for (const Encoding& encoding : work.encodings) result.truncated += encoding.truncated;
  if (e.callbacks.split_started) e.callbacks.split_started(result, indices.size());
  const std::vector<RunResult> runs =
      run_batches(e.sessions, work.encodings, work.plan, e.callbacks.batch_done);

  result.fca = side_result(e.task, e.model_to_task, split, indices, runs[0]);
  if (runs.size() > 1) result.dense = side_result(e.task, e.model_to_task, split, indices, runs[1]);
  if (e.callbacks.split_finished) e.callbacks.split_finished(result);
  if (result.truncated > 0)
    spdlog::warn("{}: {} example(s) were longer than {} tokens and were truncated", split.path,
                 result.truncated, e.max_len);
  if (e.callbacks.prediction)
    for (size_t j = 0; j < indices.size(); ++j)
      e.callbacks.prediction(prediction_line(e.task, e.model_to_task, split, indices[j],
                                             runs[0].predictions[j],
                                             runs.size() > 1 ? &runs[1].predictions[j] : nullptr));
  return result;
}

}  // namespace

metrics::Scores score(const glue::TaskInfo& task, const SideResult& side) {
  if (!task.regression) return metrics::score_classification(side.matrix, task.glue_metric, task.positive);
  auto sorted = side.pairs;
  std::sort(sorted.begin(), sorted.end());
  metrics::RegressionPairs pairs;
  for (const auto& [index, prediction, gold] : sorted) pairs.add(prediction, gold);
  return metrics::score_regression(pairs);
}

Dataset read_dataset(const Options& options) {
  Dataset dataset;
  dataset.task = resolve_task(options);
  glue::ReadOptions read_options;
  read_options.skip_bad_rows = options.skip_bad_rows;
  for (const std::string& file : glue::resolve_data_files(dataset.task, options.data)) {
    dataset.splits.push_back(glue::read_split(dataset.task, file, read_options));
    if (dataset.splits.back().skipped > 0)
      spdlog::warn("{}: skipped {} malformed row(s)", file, dataset.splits.back().skipped);
  }
  return dataset;
}

Report evaluate(const std::shared_ptr<const Model>& model, const Dataset& dataset, const Options& options,
                const Callbacks& callbacks) {
  validate_shard(options.shard, "shard");
  if (options.limit < 0) throw Error("the example limit must be at least 0 (0: every example)");
  const glue::Task task_id = dataset.task;
  const glue::TaskInfo& task = glue::task_info(task_id);
  check_model_fits(task, *model);

  SessionOptions fca_options;
  fca_options.schedule = options.schedule;
  Session session(model, fca_options);
  std::optional<Session> dense_session;
  if (options.compare_dense) dense_session.emplace(model, SessionOptions{FcaSchedule{}, false, false});
  Evaluation e{task_id,
               task,
               *model,
               options,
               resolve_max_len(options.max_len, model->info()),
               model_to_task_classes(task_id, task, model->info()),
               {&session},
               callbacks};
  if (dense_session) e.sessions.push_back(&*dense_session);

  Report report;
  report.task = task.name;
  report.model = model->path();
  report.model_sha256 = file_sha256(model->path());
  report.precision = model->precision().arithmetic;
  report.fcabert_version = version();
  report.schedule = session.schedule();
  report.shard_count = options.shard.count;
  report.shards = {options.shard.index};
  report.max_len = e.max_len;
  report.limit = options.limit;
  for (const glue::Split& split : dataset.splits) report.splits.push_back(evaluate_split(e, split));
  return report;
}

}  // namespace fcabert::eval
