// profile::write_text_report: the per-layer table of `fcabert profile` and its summary.
#include <ostream>
#include <string>
#include <vector>

#include "eval/text_table.h"
#include "fcabert/fca.h"
#include "fcabert/profile.h"

namespace fcabert::profile {
namespace {

using eval::fixed;
using eval::TextRow;

double percent(int64_t part, int64_t whole) {
  return whole > 0 ? 100.0 * static_cast<double>(part) / static_cast<double>(whole) : 0.0;
}

std::string gflops(int64_t flops) { return fixed(static_cast<double>(flops) / 1e9, 3); }
std::string millis(double ms) { return fixed(ms, 2); }
std::string share(int64_t part, int64_t whole) { return fixed(percent(part, whole), 1); }

double sum(const std::vector<double>& values) {
  double total = 0;
  for (double value : values) total += value;
  return total;
}

void write_header(const Report& report, std::ostream& out) {
  const BertConfig& bert = report.bert;
  const int64_t n = report.sequences();
  const int64_t tokens = report.fca.flops.tokens();
  out << "model     " << report.model_path << "  (L" << bert.num_layers << " d" << bert.hidden_size << " f"
      << bert.intermediate_size << " H" << bert.num_heads << ")\n";
  out << "input     " << report.source << ": " << n << " sequences, " << tokens << " tokens (mean "
      << fixed(static_cast<double>(tokens) / static_cast<double>(n), 1) << ")\n";
  out << "schedule  " << fca::describe_schedule(report.fca.schedule) << "  vs dense";
  if (!report.fca.schedule.enabled() && report.schedule_from_file)
    out << "  (the model file has no FCA schedule: give one with --keep-ratios)";
  out << '\n';
  out << "run       threads " << report.threads << ", precision " << report.precision << ", batch size "
      << report.batch_size << ", " << report.repeats
      << (report.repeats == 1 ? " repeat" : " repeats (times are medians)") << "\n\n";
}

// One row per layer, then the encoder, the outer parts and the whole run.
void write_layer_table(const Report& report, std::ostream& out) {
  const FlopsTally& fca = report.fca.flops;
  const FlopsTally& dense = report.dense.flops;
  const StageTimes &fca_ms = report.fca.times, &dense_ms = report.dense.times;
  std::vector<TextRow> rows;
  rows.push_back({"layer", "tok_in", "tok_out", "GF_linear", "GF_attn", "GF_fca", "GF_total", "%dense",
                  "ms_fca", "ms_dense"});
  rows.emplace_back();
  for (int64_t l = 0; l < report.bert.num_layers; ++l) {
    const LayerFlops& f = fca.layers()[l];
    const LayerFlops& d = dense.layers()[l];
    rows.push_back({std::to_string(l), std::to_string(f.tokens_in), std::to_string(f.tokens_out),
                    gflops(f.linear()), gflops(f.attention()), gflops(f.fca()), gflops(f.total()),
                    share(f.total(), d.total()), millis(fca_ms.layer_ms[l]), millis(dense_ms.layer_ms[l])});
  }
  rows.emplace_back();
  const LayerFlops fe = fca.encoder(), de = dense.encoder();
  rows.push_back({"layers", std::to_string(fe.tokens_in), std::to_string(fe.tokens_out), gflops(fe.linear()),
                  gflops(fe.attention()), gflops(fe.fca()), gflops(fe.total()), share(fe.total(), de.total()),
                  millis(sum(fca_ms.layer_ms)), millis(sum(dense_ms.layer_ms))});
  const int64_t fca_outer = fca.embedding() + fca.pooler() + fca.classifier();
  const int64_t dense_outer = dense.embedding() + dense.pooler() + dense.classifier();
  rows.push_back({"emb+pool+cls", "", "", "", "", "", gflops(fca_outer), share(fca_outer, dense_outer),
                  millis(fca_ms.embeddings_ms + fca_ms.head_ms),
                  millis(dense_ms.embeddings_ms + dense_ms.head_ms)});
  rows.push_back({"total", "", "", "", "", "", gflops(fca.total()), share(fca.total(), dense.total()),
                  millis(fca_ms.wall_ms), millis(dense_ms.wall_ms)});
  eval::write_text_table(rows, out, 0);
}

void write_summary(const Report& report, std::ostream& out) {
  const FlopsTally& fca = report.fca.flops;
  const FlopsTally& dense = report.dense.flops;
  const int64_t n = report.sequences();
  const double per_example = 1e6 * static_cast<double>(n);  // FLOPs -> MFLOPs per example
  out << "\nGF = GFLOPs summed over all sequences (multiply-add = 2; real token counts, no padding).\n"
      << "ms = wall time per pass over the input; 'total' is the whole Session::run time.\n\n";
  out << "FLOPs        FCA " << gflops(fca.total()) << " G (" << fixed(fca.total() / per_example, 2)
      << " M/example)   dense " << gflops(dense.total()) << " G (" << fixed(dense.total() / per_example, 2)
      << " M/example)\n";
  out << "reduction    " << fixed(report.reduction_ratio(), 3) << "x fewer FLOPs (dense / FCA)\n";
  out << "MACs         FCA " << gflops(fca.macs()) << " G   dense " << gflops(dense.macs())
      << " G   (matrix products only)\n";
  out << "elementwise  FCA " << gflops(fca.elementwise()) << " GFLOPs   dense " << gflops(dense.elementwise())
      << " GFLOPs   (softmax, LayerNorm, GELU, biases, residuals; not in the headline)\n";
  out << "time         FCA " << millis(report.fca.times.wall_ms) << " ms   dense "
      << millis(report.dense.times.wall_ms) << " ms   speed-up " << fixed(report.speedup(), 3)
      << "x (dense / FCA)\n";
  out << "throughput   FCA " << fixed(Report::per_second(n, report.fca.times.wall_ms), 1)
      << " examples/s   dense " << fixed(Report::per_second(n, report.dense.times.wall_ms), 1)
      << " examples/s\n";
}

// The papers' convention: one input padded to Report::padded_length tokens, analytic.
void write_padded(const Report& report, std::ostream& out) {
  const FlopsTally& pd = *report.padded_dense;
  const FlopsTally& pf = *report.padded_fca;
  out << "\npadded-input convention (as papers count): one input of " << *report.padded_length
      << " tokens, analytic\n\n";
  std::vector<TextRow> rows;
  rows.push_back({"layer", "tok_in", "tok_out", "GF_dense", "GF_fca", "%dense"});
  rows.emplace_back();
  for (int64_t l = 0; l < report.bert.num_layers; ++l) {
    const LayerFlops& f = pf.layers()[l];
    const LayerFlops& d = pd.layers()[l];
    rows.push_back({std::to_string(l), std::to_string(f.tokens_in), std::to_string(f.tokens_out),
                    gflops(d.total()), gflops(f.total()), share(f.total(), d.total())});
  }
  rows.emplace_back();
  rows.push_back({"layers", "", "", gflops(pd.encoder().total()), gflops(pf.encoder().total()),
                  share(pf.encoder().total(), pd.encoder().total())});
  rows.push_back({"total", "", "", gflops(pd.total()), gflops(pf.total()), share(pf.total(), pd.total())});
  eval::write_text_table(rows, out, 0);
  out << "\ndense        linear " << gflops(pd.encoder().linear()) << " G, attention "
      << gflops(pd.encoder().attention()) << " G, encoder " << gflops(pd.encoder().total()) << " G, total "
      << gflops(pd.total()) << " G, MACs " << gflops(pd.macs()) << " G\n";
  out << "FCA          linear " << gflops(pf.encoder().linear()) << " G, attention "
      << gflops(pf.encoder().attention()) << " G, FCA step " << gflops(pf.encoder().fca()) << " G, total "
      << gflops(pf.total()) << " G, MACs " << gflops(pf.macs()) << " G\n";
  out << "reduction    " << fixed(pf.reduction_ratio(pd), 3) << "x fewer FLOPs at " << *report.padded_length
      << " tokens\n";
}

}  // namespace

void write_text_report(const Report& report, std::ostream& out) {
  write_header(report, out);
  write_layer_table(report, out);
  write_summary(report, out);
  if (report.padded_dense) write_padded(report, out);
}

}  // namespace fcabert::profile
