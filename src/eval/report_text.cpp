// The human-readable evaluation report (eval::write_text_report).
#include <algorithm>
#include <optional>
#include <ostream>
#include <string>
#include <vector>

#include "eval/text_table.h"
#include "fcabert/evaluate.h"
#include "fcabert/fca.h"

namespace fcabert::eval {
namespace {

std::string shard_text(const Report& report) {
  if (report.shard_count == 1) return "all";
  if (static_cast<int64_t>(report.shards.size()) == report.shard_count)
    return "all " + std::to_string(report.shard_count) + " shards merged";
  std::string text;
  for (int64_t k : report.shards) text += (text.empty() ? "" : ",") + std::to_string(k);
  return "shard " + text + " of " + std::to_string(report.shard_count);
}

double per_second(int64_t examples, double seconds) { return seconds > 0 ? examples / seconds : 0.0; }

// The metrics, FLOPs and time rows of one split: one column per side that ran.
class SplitTable {
 public:
  SplitTable(const SplitResult& split, bool merged) : split_(split), dense_(split.dense), merged_(merged) {
    rows_.push_back(dense_ ? TextRow{"", "FCA", "dense", "FCA - dense"} : TextRow{"", "FCA"});
  }

  void add_metrics(const glue::TaskInfo& task) {
    const metrics::Scores fca = score(task, split_.fca);
    std::optional<metrics::Scores> dense;
    if (dense_) dense = score(task, *dense_);
    for (size_t i = 0; i < fca.values.size(); ++i)
      metric_row(fca.values[i].first, fca.values[i].second, dense ? dense->values[i].second : 0.0);
    metric_row("GLUE score", fca.glue, dense ? dense->glue : 0.0);
  }

  void add_flops() {
    const SideResult& f = split_.fca;
    const double n = static_cast<double>(std::max<int64_t>(1, f.examples));
    const int64_t dense_flops = dense_ ? dense_->flops : f.dense_flops;
    row("GFLOPs total", fixed(f.flops / 1e9, 3), fixed(dense_flops / 1e9, 3));
    row("MFLOPs / example", fixed(f.flops / n / 1e6, 2), fixed(dense_flops / n / 1e6, 2));
    row("FLOPs reduction", fixed(f.flops > 0 ? static_cast<double>(dense_flops) / f.flops : 0.0, 3) + "x",
        "1x");
    if (!dense_) rows_.push_back({"dense GFLOPs (analytic)", fixed(f.dense_flops / 1e9, 3)});
  }

  void add_time() {
    const SideResult& f = split_.fca;
    row(merged_ ? "time (s, summed)" : "time (s)", fixed(f.seconds, 2),
        dense_ ? fixed(dense_->seconds, 2) : "");
    row("examples/s", fixed(per_second(f.examples, f.seconds), 1),
        dense_ ? fixed(per_second(dense_->examples, dense_->seconds), 1) : "");
    if (dense_) row("speed-up", fixed(f.seconds > 0 ? dense_->seconds / f.seconds : 0.0, 3) + "x", "1x");
  }

  const std::vector<TextRow>& rows() const { return rows_; }

 private:
  void metric_row(const std::string& name, double f, double d) {
    if (dense_)
      rows_.push_back(
          {name, fixed(100 * f, 2), fixed(100 * d, 2), (f >= d ? "+" : "") + fixed(100 * (f - d), 2)});
    else
      rows_.push_back({name, fixed(100 * f, 2)});
  }

  void row(const std::string& name, const std::string& fca, const std::string& dense) {
    if (dense_)
      rows_.push_back({name, fca, dense, ""});
    else
      rows_.push_back({name, fca});
  }

  const SplitResult& split_;
  const std::optional<SideResult>& dense_;
  bool merged_;
  std::vector<TextRow> rows_;
};

void write_confusion_matrix(const glue::TaskInfo& task, const metrics::ConfusionMatrix& matrix,
                            std::ostream& out) {
  out << "\n  confusion matrix (rows gold, columns predicted; FCA): " << task.label_names.size()
      << " classes\n";
  std::vector<TextRow> rows;
  TextRow header = {""};
  for (const std::string& name : task.label_names) header.push_back(name);
  rows.push_back(header);
  for (int g = 0; g < matrix.classes(); ++g) {
    TextRow r = {task.label_names[static_cast<size_t>(g)]};
    for (int p = 0; p < matrix.classes(); ++p) r.push_back(std::to_string(matrix.at(g, p)));
    rows.push_back(r);
  }
  write_text_table(rows, out);
}

void write_split(const glue::TaskInfo& task, const SplitResult& split, std::ostream& out, bool merged) {
  out << "\nsplit " << split.name << ": " << split.file << "\n  " << split.fca.examples << " examples";
  if (split.fca.examples != split.split_examples) out << " of " << split.split_examples;
  out << ", " << split.fca.tokens << " tokens";
  if (split.skipped > 0) out << ", " << split.skipped << " malformed row(s) skipped";
  if (split.truncated > 0) out << ", " << split.truncated << " truncated";
  out << "\n\n";
  SplitTable table(split, merged);
  table.add_metrics(task);
  table.add_flops();
  table.add_time();
  write_text_table(table.rows(), out);
  if (!task.regression) write_confusion_matrix(task, split.fca.matrix, out);
}

}  // namespace

void write_text_report(const Report& report, std::ostream& out, bool merged) {
  const glue::TaskInfo& task = glue::task_info(glue::parse_task(report.task));
  out << "task       " << task.name << " (" << task.dir_name << "), GLUE metric " << task.glue_metric << '\n';
  out << "model      " << report.model << " (SHA-256 " << report.model_sha256.substr(0, 12) << "..., "
      << report.precision << ")\n";
  out << "schedule   " << fca::describe_schedule(report.schedule) << '\n';
  out << "examples   " << shard_text(report) << '\n';
  for (const SplitResult& split : report.splits) write_split(task, split, out, merged);
  out << "\nmetrics in %; FLOPs: multiply-add = 2, real token counts, no padding (include/fcabert/flops.h)\n";
}

}  // namespace fcabert::eval
