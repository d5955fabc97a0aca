// fcabert profile: FLOPs and time per layer, the FCA schedule against the dense model.
//
// Two Sessions share one loaded Model: the FCA one (the file's schedule or the flags') and a
// dense one, both timing their layers. The input (a text file, or synthetic sequences of a
// given length) is tokenized once; then every batch runs on both Sessions, interleaved
// (which one goes first alternates), --repeat times. Times are medians over the repeats.
// FLOPs are exact for what the engine ran: they come from the per-sequence traces (real
// token counts, no padding; docs/PROFILE.md, include/fcabert/flops.h). --padded-length N adds the
// papers' convention: the analytic FLOPs of one input of N tokens. docs/PROFILE.md explains
// the report.
#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "cli/commands.h"
#include "cli/line_encoding.h"
#include "cli/line_reader.h"
#include "cli/output_file.h"
#include "cli/precision_option.h"
#include "cli/progress.h"
#include "cli/schedule_options.h"
#include "cli/svg_chart.h"
#include "fcabert/engine.h"
#include "fcabert/error.h"
#include "fcabert/fca.h"
#include "fcabert/flops.h"
#include "fcabert/metrics.h"
#include "fcabert/runner.h"

namespace fcabert::cli {
namespace {

using Json = nlohmann::ordered_json;

struct ProfileOptions {
  std::string input;  // a file, "-" for stdin, or empty with --synthetic-length
  std::string model;
  std::optional<int64_t> synthetic_length;
  std::optional<int64_t> synthetic_count;
  int64_t batch_size = 32;
  int threads = 2;
  std::string precision = "fp32";  // --precision
  int64_t max_len = 0;             // 0 = the model's default
  int repeat = 3;
  int64_t limit = 0;  // 0 = every line
  bool json = false;
  std::optional<int64_t> padded_length;
  std::string plot;
  bool quiet = false;
  ScheduleFlags schedule;
};

constexpr int64_t kDefaultSyntheticCount = 64;

// ---------------------------------------------------------------------------------------
// Input

struct Inputs {
  std::vector<Encoding> encodings;
  std::string source;  // the file name, "<stdin>" or "synthetic"
  int64_t empty_lines = 0;
  int64_t truncated = 0;
};

int64_t minimum_length(const ModelInfo& info) { return info.head.pair_input ? 3 : 2; }

Inputs read_file_inputs(LineReader& reader, const ProfileOptions& options, const Model& model) {
  const ModelInfo& info = model.info();
  const int64_t max_len = resolve_max_len(options.max_len, info);
  Inputs inputs;
  InputLine line;
  while ((options.limit == 0 || static_cast<int64_t>(inputs.encodings.size()) < options.limit) &&
         reader.next(line)) {
    inputs.source = line.source;
    inputs.empty_lines += line.text.empty();
    inputs.encodings.push_back(encode_line(model.tokenizer(), line, info.head.pair_input, max_len));
    inputs.truncated += inputs.encodings.back().truncated;
  }
  if (inputs.encodings.empty())
    throw Error((options.input == "-" ? std::string("<stdin>") : options.input) +
                ": no input lines; profile needs at least one example (or use --synthetic-length)");
  if (inputs.empty_lines > 0)
    spdlog::warn("{} empty line(s) were profiled as empty texts", inputs.empty_lines);
  if (inputs.truncated > 0)
    spdlog::warn("{} line(s) were longer than {} tokens and were truncated", inputs.truncated, max_len);
  return inputs;
}

// A deterministic 64-bit mix (splitmix64), so synthetic inputs are the same everywhere.
uint64_t mix(uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

// Sequences of exactly `length` tokens: [CLS], ordinary vocabulary ids, [SEP] (pair models:
// [CLS] a [SEP] b [SEP] with the two segments of nearly equal length).
Inputs synthetic_inputs(const ProfileOptions& options, const Model& model) {
  const ModelInfo& info = model.info();
  const int64_t length = *options.synthetic_length,
                count = options.synthetic_count.value_or(kDefaultSyntheticCount);
  const int64_t minimum = minimum_length(info), maximum = info.bert.max_position_embeddings;
  if (length < minimum || length > maximum)
    throw Error("--synthetic-length " + std::to_string(length) + " is out of range for this model; use " +
                std::to_string(minimum) + ".." + std::to_string(maximum) +
                " (tokens, [CLS] and [SEP] included)");
  if (count < 1) throw Error("--synthetic-count must be at least 1, got " + std::to_string(count));

  const Tokenizer& tokenizer = model.tokenizer();
  const TokenizerConfig& config = tokenizer.config();
  const std::vector<int32_t> specials = tokenizer.pieces_to_ids({config.cls_token, config.sep_token});
  // Ordinary tokens: everything but bracketed specials such as [PAD], [MASK], [unused0].
  std::vector<int32_t> ordinary;
  for (size_t id = 0; id < config.vocab.size(); ++id) {
    const std::string& token = config.vocab[id];
    const bool bracketed = token.size() > 2 && token.front() == '[' && token.back() == ']';
    if (!token.empty() && !bracketed) ordinary.push_back(static_cast<int32_t>(id));
  }
  if (ordinary.empty()) throw Error("the model's vocabulary has no ordinary tokens for synthetic inputs");

  Inputs inputs;
  inputs.source = "synthetic";
  const int64_t second_start =
      info.head.pair_input ? 1 + (length - 3 + 1) / 2 + 1 : length;  // after 1st [SEP]
  for (int64_t s = 0; s < count; ++s) {
    Encoding encoding;
    encoding.ids.resize(static_cast<size_t>(length));
    encoding.type_ids.assign(static_cast<size_t>(length), 0);
    for (int64_t i = 0; i < length; ++i) {
      const uint64_t pick = mix(static_cast<uint64_t>(s) * 1000003ULL + static_cast<uint64_t>(i));
      encoding.ids[i] = ordinary[pick % ordinary.size()];
      if (i >= second_start) encoding.type_ids[i] = 1;
    }
    encoding.ids.front() = specials[0];
    encoding.ids.back() = specials[1];
    if (info.head.pair_input) encoding.ids[second_start - 1] = specials[1];
    inputs.encodings.push_back(std::move(encoding));
  }
  return inputs;
}

// ---------------------------------------------------------------------------------------
// Running and timing

// What one pass over all batches measured on one Session.
struct PassTimes {
  double wall_ms = 0;  // sum of Session::run wall times
  double embeddings_ms = 0;
  std::vector<double> layer_ms;
  double head_ms = 0;
};

struct Run {
  Session session;
  std::vector<PassTimes> passes;  // one per repeat
  FlopsTally tally;
  Run(std::shared_ptr<const Model> model, SessionOptions options, const ModelInfo& info)
      : session(std::move(model), std::move(options)), tally(info.bert, info.head.outputs()) {}
};

// Adds one batch's exact FLOPs (from the traces) to the run's tally. Counts the sequences
// whose per-layer token counts differ from the schedule's prediction (an engine bug).
int64_t tally_batch(Run& run, const std::vector<Encoding>& batch,
                    const std::vector<Prediction>& predictions) {
  const int64_t layers = run.tally.config().num_layers;
  const FcaSchedule& schedule = run.session.schedule();
  int64_t mismatches = 0;
  for (size_t i = 0; i < batch.size(); ++i) {
    const SequenceTrace& trace = predictions[i].trace;
    const int64_t n0 = static_cast<int64_t>(batch[i].ids.size());
    if (static_cast<int64_t>(trace.layers.size()) != layers || trace.tokens != n0) {
      ++mismatches;
      run.tally.add_sequence_analytic(schedule, n0);
      continue;
    }
    const std::vector<fca::ReductionShape> predicted = fca::schedule_shapes(schedule, layers, n0);
    for (int64_t l = 0; l < layers; ++l) {
      const fca::ReductionShape &got = trace.layers[static_cast<size_t>(l)],
                                &want = predicted[static_cast<size_t>(l)];
      if (got.rows_in != want.rows_in || got.rows_out != want.rows_out) ++mismatches;
    }
    tally_trace(run.tally, schedule.pooling, trace);
  }
  return mismatches;
}

// Medians over the repeats, stage by stage.
struct MedianTimes {
  double wall_ms = 0, embeddings_ms = 0, head_ms = 0;
  std::vector<double> layer_ms;
  std::vector<double> wall_ms_per_repeat;
};

MedianTimes medians(const std::vector<PassTimes>& passes, int64_t num_layers) {
  MedianTimes result;
  std::vector<double> embeddings, head;
  for (const PassTimes& pass : passes) {
    result.wall_ms_per_repeat.push_back(pass.wall_ms);
    embeddings.push_back(pass.embeddings_ms);
    head.push_back(pass.head_ms);
  }
  result.wall_ms = metrics::median(result.wall_ms_per_repeat);
  result.embeddings_ms = metrics::median(embeddings);
  result.head_ms = metrics::median(head);
  for (int64_t l = 0; l < num_layers; ++l) {
    std::vector<double> values;
    for (const PassTimes& pass : passes)
      values.push_back(l < static_cast<int64_t>(pass.layer_ms.size()) ? pass.layer_ms[l] : 0.0);
    result.layer_ms.push_back(metrics::median(values));
  }
  return result;
}

void run_batch(Run& run, const std::vector<Encoding>& batch, PassTimes& pass, bool tally,
               int64_t& mismatches) {
  const auto start = std::chrono::steady_clock::now();
  const std::vector<Prediction> predictions = run.session.run(batch);
  pass.wall_ms += std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
  const LayerTimings& timings = run.session.last_timings();
  pass.embeddings_ms += timings.embeddings_ms;
  pass.head_ms += timings.head_ms;
  if (pass.layer_ms.size() < timings.layer_ms.size()) pass.layer_ms.resize(timings.layer_ms.size(), 0.0);
  for (size_t l = 0; l < timings.layer_ms.size(); ++l) pass.layer_ms[l] += timings.layer_ms[l];
  if (tally) mismatches += tally_batch(run, batch, predictions);
}

// ---------------------------------------------------------------------------------------
// Reporting

struct Report {
  const ProfileOptions& options;
  const Model& model;
  const Inputs& inputs;
  const Run& fca;
  const Run& dense;
  MedianTimes fca_times, dense_times;
  std::optional<FlopsTally> padded_dense, padded_fca;

  int64_t sequences() const { return static_cast<int64_t>(inputs.encodings.size()); }
  double reduction_ratio() const { return fca.tally.reduction_ratio(dense.tally); }
  double speedup() const { return fca_times.wall_ms > 0 ? dense_times.wall_ms / fca_times.wall_ms : 0.0; }
  static double per_second(int64_t items, double ms) { return ms > 0 ? items / (ms / 1000) : 0.0; }
};

double percent(int64_t part, int64_t whole) {
  return whole > 0 ? 100.0 * static_cast<double>(part) / static_cast<double>(whole) : 0.0;
}

std::string format(const char* pattern, double value) {
  char text[64];
  std::snprintf(text, sizeof text, pattern, value);
  return text;
}

std::string gflops(int64_t flops) { return format("%.3f", static_cast<double>(flops) / 1e9); }
std::string millis(double ms) { return format("%.2f", ms); }

std::string model_name(const Model& model) {
  std::string name = std::filesystem::path(model.path()).filename().string();
  if (!model.info().head.task.empty()) name += " (" + model.info().head.task + ")";
  return name;
}

// A text table with right-aligned columns (the first column left-aligned).
class Table {
 public:
  void row(std::vector<std::string> cells) { rows_.push_back(std::move(cells)); }
  void rule() { rows_.emplace_back(); }
  void print(std::ostream& out) const {
    std::vector<size_t> widths;
    for (const auto& row : rows_)
      for (size_t c = 0; c < row.size(); ++c) {
        if (widths.size() <= c) widths.push_back(0);
        widths[c] = std::max(widths[c], row[c].size());
      }
    size_t total = 0;
    for (size_t width : widths) total += width + 2;
    for (const auto& row : rows_) {
      if (row.empty()) {
        out << std::string(total > 2 ? total - 2 : 0, '-') << '\n';
        continue;
      }
      std::string line;
      for (size_t c = 0; c < row.size(); ++c) {
        const std::string pad(widths[c] - row[c].size(), ' ');
        line += c == 0 ? row[c] + pad : pad + row[c];
        if (c + 1 < row.size()) line += "  ";
      }
      out << line << '\n';
    }
  }

 private:
  std::vector<std::vector<std::string>> rows_;
};

double sum(const std::vector<double>& values) {
  double total = 0;
  for (double value : values) total += value;
  return total;
}

void print_text(const Report& report, std::ostream& out) {
  const ModelInfo& info = report.model.info();
  const BertConfig& bert = info.bert;
  const FlopsTally& fca = report.fca.tally;
  const FlopsTally& dense = report.dense.tally;
  const int64_t n = report.sequences();
  const ProfileOptions& options = report.options;

  out << "model     " << report.model.path() << "  (L" << bert.num_layers << " d" << bert.hidden_size << " f"
      << bert.intermediate_size << " H" << bert.num_heads << ")\n";
  out << "input     " << report.inputs.source << ": " << n << " sequences, " << fca.tokens()
      << " tokens (mean " << format("%.1f", static_cast<double>(fca.tokens()) / static_cast<double>(n))
      << ")\n";
  const FcaSchedule& schedule = report.fca.session.schedule();
  out << "schedule  " << fca::describe_schedule(schedule) << "  vs dense";
  if (!schedule.enabled() && !options.schedule.dense)
    out << "  (the model file has no FCA schedule: give one with --keep-ratios)";
  out << '\n';
  out << "run       threads " << options.threads << ", batch size " << options.batch_size << ", "
      << options.repeat << (options.repeat == 1 ? " repeat" : " repeats (times are medians)") << "\n\n";

  Table table;
  table.row({"layer", "tok_in", "tok_out", "GF_linear", "GF_attn", "GF_fca", "GF_total", "%dense", "ms_fca",
             "ms_dense"});
  table.rule();
  for (int64_t l = 0; l < bert.num_layers; ++l) {
    const LayerFlops& f = fca.layers()[l];
    const LayerFlops& d = dense.layers()[l];
    table.row({std::to_string(l), std::to_string(f.tokens_in), std::to_string(f.tokens_out),
               gflops(f.linear()), gflops(f.attention()), gflops(f.fca()), gflops(f.total()),
               format("%.1f", percent(f.total(), d.total())), millis(report.fca_times.layer_ms[l]),
               millis(report.dense_times.layer_ms[l])});
  }
  table.rule();
  const LayerFlops fe = fca.encoder(), de = dense.encoder();
  table.row({"layers", std::to_string(fe.tokens_in), std::to_string(fe.tokens_out), gflops(fe.linear()),
             gflops(fe.attention()), gflops(fe.fca()), gflops(fe.total()),
             format("%.1f", percent(fe.total(), de.total())), millis(sum(report.fca_times.layer_ms)),
             millis(sum(report.dense_times.layer_ms))});
  const int64_t fca_outer = fca.embedding() + fca.pooler() + fca.classifier();
  const int64_t dense_outer = dense.embedding() + dense.pooler() + dense.classifier();
  table.row({"emb+pool+cls", "", "", "", "", "", gflops(fca_outer),
             format("%.1f", percent(fca_outer, dense_outer)),
             millis(report.fca_times.embeddings_ms + report.fca_times.head_ms),
             millis(report.dense_times.embeddings_ms + report.dense_times.head_ms)});
  table.row({"total", "", "", "", "", "", gflops(fca.total()),
             format("%.1f", percent(fca.total(), dense.total())), millis(report.fca_times.wall_ms),
             millis(report.dense_times.wall_ms)});
  table.print(out);

  const double per_example = 1e6 * static_cast<double>(n);  // FLOPs -> MFLOPs per example
  out << "\nGF = GFLOPs summed over all sequences (multiply-add = 2; real token counts, no padding).\n"
      << "ms = wall time per pass over the input; 'total' is the whole Session::run time.\n\n";
  out << "FLOPs        FCA " << gflops(fca.total()) << " G (" << format("%.2f", fca.total() / per_example)
      << " M/example)   dense " << gflops(dense.total()) << " G ("
      << format("%.2f", dense.total() / per_example) << " M/example)\n";
  out << "reduction    " << format("%.3f", report.reduction_ratio()) << "x fewer FLOPs (dense / FCA)\n";
  out << "MACs         FCA " << gflops(fca.macs()) << " G   dense " << gflops(dense.macs())
      << " G   (matrix products only)\n";
  out << "elementwise  FCA " << gflops(fca.elementwise()) << " GFLOPs   dense " << gflops(dense.elementwise())
      << " GFLOPs   (softmax, LayerNorm, GELU, biases, residuals; not in the headline)\n";
  out << "time         FCA " << millis(report.fca_times.wall_ms) << " ms   dense "
      << millis(report.dense_times.wall_ms) << " ms   speed-up " << format("%.3f", report.speedup())
      << "x (dense / FCA)\n";
  out << "throughput   FCA " << format("%.1f", Report::per_second(n, report.fca_times.wall_ms))
      << " examples/s   dense " << format("%.1f", Report::per_second(n, report.dense_times.wall_ms))
      << " examples/s\n";

  if (report.padded_dense) {
    const FlopsTally& pd = *report.padded_dense;
    const FlopsTally& pf = *report.padded_fca;
    out << "\npadded-input convention (as papers count): one input of " << *options.padded_length
        << " tokens, analytic\n\n";
    Table padded;
    padded.row({"layer", "tok_in", "tok_out", "GF_dense", "GF_fca", "%dense"});
    padded.rule();
    for (int64_t l = 0; l < bert.num_layers; ++l) {
      const LayerFlops& f = pf.layers()[l];
      const LayerFlops& d = pd.layers()[l];
      padded.row({std::to_string(l), std::to_string(f.tokens_in), std::to_string(f.tokens_out),
                  gflops(d.total()), gflops(f.total()), format("%.1f", percent(f.total(), d.total()))});
    }
    padded.rule();
    padded.row({"layers", "", "", gflops(pd.encoder().total()), gflops(pf.encoder().total()),
                format("%.1f", percent(pf.encoder().total(), pd.encoder().total()))});
    padded.row({"total", "", "", gflops(pd.total()), gflops(pf.total()),
                format("%.1f", percent(pf.total(), pd.total()))});
    padded.print(out);
    out << "\ndense        linear " << gflops(pd.encoder().linear()) << " G, attention "
        << gflops(pd.encoder().attention()) << " G, encoder " << gflops(pd.encoder().total()) << " G, total "
        << gflops(pd.total()) << " G, MACs " << gflops(pd.macs()) << " G\n";
    out << "FCA          linear " << gflops(pf.encoder().linear()) << " G, attention "
        << gflops(pf.encoder().attention()) << " G, FCA step " << gflops(pf.encoder().fca()) << " G, total "
        << gflops(pf.total()) << " G, MACs " << gflops(pf.macs()) << " G\n";
    out << "reduction    " << format("%.3f", pf.reduction_ratio(pd)) << "x fewer FLOPs at "
        << *options.padded_length << " tokens\n";
  }
}

Json times_json(const MedianTimes& times) {
  return {{"wall_ms", times.wall_ms},
          {"wall_ms_per_repeat", times.wall_ms_per_repeat},
          {"embeddings_ms", times.embeddings_ms},
          {"layer_ms", times.layer_ms},
          {"head_ms", times.head_ms}};
}

Json report_json(const Report& report) {
  const ModelInfo& info = report.model.info();
  const BertConfig& bert = info.bert;
  const FlopsTally& fca = report.fca.tally;
  const FlopsTally& dense = report.dense.tally;
  const ProfileOptions& options = report.options;
  const int64_t n = report.sequences();

  std::vector<int64_t> lengths;
  lengths.reserve(report.inputs.encodings.size());
  for (const Encoding& encoding : report.inputs.encodings)
    lengths.push_back(static_cast<int64_t>(encoding.ids.size()));
  Json input = {{"source", report.inputs.source}, {"sequences", n}, {"tokens", fca.tokens()}};
  if (options.synthetic_length) input["synthetic_length"] = *options.synthetic_length;
  input["empty_lines"] = report.inputs.empty_lines;
  input["truncated"] = report.inputs.truncated;
  input["lengths"] = lengths;

  Json layers = Json::array();
  for (int64_t l = 0; l < bert.num_layers; ++l) {
    const LayerFlops& f = fca.layers()[l];
    const LayerFlops& d = dense.layers()[l];
    layers.push_back({{"layer", l},
                      {"tokens_in", f.tokens_in},
                      {"tokens_out", f.tokens_out},
                      {"flops_linear", f.linear()},
                      {"flops_attention", f.attention()},
                      {"flops_fca", f.fca()},
                      {"flops_total", f.total()},
                      {"dense_flops_total", d.total()},
                      {"percent_of_dense", percent(f.total(), d.total())},
                      {"ms_fca", report.fca_times.layer_ms[l]},
                      {"ms_dense", report.dense_times.layer_ms[l]}});
  }

  Json json = {
      {"model", report.model.path()},
      {"geometry",
       {{"layers", bert.num_layers},
        {"hidden", bert.hidden_size},
        {"intermediate", bert.intermediate_size},
        {"heads", bert.num_heads}}},
      {"input", std::move(input)},
      {"schedule", fca::schedule_to_json(report.fca.session.schedule())},
      {"threads", options.threads},
      {"batch_size", options.batch_size},
      {"repeats", options.repeat},
      {"convention",
       "FLOPs: multiply-add = 2, real token counts (no padding); MACs = matrix-product "
       "multiply-adds; elementwise not in the headline (docs/PROFILE.md)"},
      {"layers", std::move(layers)},
      {"totals",
       {{"flops_fca", fca.total()},
        {"flops_dense", dense.total()},
        {"macs_fca", fca.macs()},
        {"macs_dense", dense.macs()},
        {"elementwise_fca", fca.elementwise()},
        {"elementwise_dense", dense.elementwise()},
        {"reduction_ratio", report.reduction_ratio()},
        {"wall_ms_fca", report.fca_times.wall_ms},
        {"wall_ms_dense", report.dense_times.wall_ms},
        {"speedup", report.speedup()},
        {"examples_per_s_fca", Report::per_second(n, report.fca_times.wall_ms)},
        {"examples_per_s_dense", Report::per_second(n, report.dense_times.wall_ms)}}},
      {"fca", fca.to_json()},
      {"dense", dense.to_json()},
      {"timings", {{"fca", times_json(report.fca_times)}, {"dense", times_json(report.dense_times)}}}};
  if (report.padded_dense) {
    json["padded"] = {{"length", *options.padded_length},
                      {"per_example", true},
                      {"dense", report.padded_dense->to_json()},
                      {"fca", report.padded_fca->to_json()},
                      {"reduction_ratio", report.padded_fca->reduction_ratio(*report.padded_dense)}};
  } else {
    json["padded"] = nullptr;
  }
  return json;
}

void write_plot(const Report& report, const std::string& path) {
  const int64_t layers = report.model.info().bert.num_layers;
  svg::BarChart flops{"FLOPs per layer (summed over " + std::to_string(report.sequences()) + " sequences)",
                      "layer",
                      "GFLOPs",
                      {},
                      {{"dense", "#9a9a9a", {}}, {"FCA", "#2f6db5", {}}}};
  svg::BarChart time{"wall time per layer (median of " + std::to_string(report.options.repeat) + ")",
                     "layer",
                     "ms",
                     {},
                     {{"dense", "#9a9a9a", {}}, {"FCA", "#d9822b", {}}}};
  for (int64_t l = 0; l < layers; ++l) {
    flops.categories.push_back(std::to_string(l));
    time.categories.push_back(std::to_string(l));
    flops.series[0].values.push_back(static_cast<double>(report.dense.tally.layers()[l].total()) / 1e9);
    flops.series[1].values.push_back(static_cast<double>(report.fca.tally.layers()[l].total()) / 1e9);
    time.series[0].values.push_back(std::max(0.0, report.dense_times.layer_ms[l]));
    time.series[1].values.push_back(std::max(0.0, report.fca_times.layer_ms[l]));
  }
  svg::Document document;
  document.title = model_name(report.model) + ": dense vs FCA — " + format("%.2f", report.reduction_ratio()) +
                   "x fewer FLOPs, " + format("%.2f", report.speedup()) + "x faster";
  document.subtitle = "FCA: " + fca::describe_schedule(report.fca.session.schedule()) + "\n" +
                      report.inputs.source + ", " + std::to_string(report.sequences()) + " sequences, " +
                      std::to_string(report.fca.tally.tokens()) + " tokens; " +
                      std::to_string(report.options.threads) + " threads, batch " +
                      std::to_string(report.options.batch_size);
  document.charts = {std::move(flops), std::move(time)};
  write_file_atomically(path, svg::render(document));
}

// ---------------------------------------------------------------------------------------
// The command

void check_options(const ProfileOptions& options) {
  const bool synthetic = options.synthetic_length.has_value();
  if (synthetic && !options.input.empty()) throw Error("give either FILE or --synthetic-length, not both");
  if (!synthetic && options.input.empty())
    throw Error(
        "nothing to profile: give a text FILE (one example per line, '-' for stdin) or --synthetic-length N");
  if (!synthetic && options.synthetic_count) throw Error("--synthetic-count needs --synthetic-length");
  if (synthetic && options.max_len > 0)
    throw Error("--max-len applies to FILE input; synthetic inputs have --synthetic-length tokens");
  if (synthetic && options.limit > 0) throw Error("--limit applies to FILE input; use --synthetic-count");
  if (options.batch_size < 1) throw Error("--batch-size must be at least 1");
  if (options.threads < 1) throw Error("--threads must be at least 1");
  if (options.repeat < 1) throw Error("--repeat must be at least 1");
  if (options.limit < 0) throw Error("--limit must be at least 1 (or 0 for every line)");
}

void run_profile(const ProfileOptions& options) {
  check_options(options);
  std::optional<LineReader> reader;
  if (!options.synthetic_length)
    reader.emplace(std::vector<std::string>{options.input});  // checks the file first

  std::shared_ptr<const Model> model =
      Model::load(options.model, load_options(options.threads, options.precision));
  const ModelInfo& info = model->info();
  const std::optional<FcaSchedule> resolved = resolve_schedule(options.schedule, info);
  if (options.padded_length && (*options.padded_length < minimum_length(info) ||
                                *options.padded_length > info.bert.max_position_embeddings))
    throw Error("--padded-length " + std::to_string(*options.padded_length) +
                " is out of range for this model; use " + std::to_string(minimum_length(info)) + ".." +
                std::to_string(info.bert.max_position_embeddings));

  const Inputs inputs =
      reader ? read_file_inputs(*reader, options, *model) : synthetic_inputs(options, *model);
  const std::vector<std::vector<Encoding>> batches =
      batches_of(inputs.encodings, plan_batches(inputs.encodings, options.batch_size, BatchOrder::kInput));

  SessionOptions fca_options;
  fca_options.schedule = resolved;
  fca_options.time_layers = true;
  SessionOptions dense_options;
  dense_options.schedule = FcaSchedule{};
  dense_options.time_layers = true;
  Run fca(model, fca_options, info);
  Run dense(model, dense_options, info);
  spdlog::debug("profile: {} vs dense, {} sequences in {} batches, {} repeats",
                fca::describe_schedule(fca.session.schedule()), inputs.encodings.size(), batches.size(),
                options.repeat);

  // One untimed batch on each Session first: the first run sizes the scratch buffers.
  fca.session.run(batches.front());
  dense.session.run(batches.front());

  const int64_t sequences = static_cast<int64_t>(inputs.encodings.size());
  const uint64_t work = static_cast<uint64_t>(sequences) * 2 * static_cast<uint64_t>(options.repeat);
  Progress progress("sequence runs", !options.quiet);
  int64_t mismatches = 0, done = 0;
  for (int r = 0; r < options.repeat; ++r) {
    fca.passes.emplace_back();
    dense.passes.emplace_back();
    for (size_t b = 0; b < batches.size(); ++b) {
      // Interleaved, alternating which Session goes first, so drift on a shared machine
      // (frequency, other jobs) hits both alike.
      const bool fca_first = (b + static_cast<size_t>(r)) % 2 == 0;
      for (int turn = 0; turn < 2; ++turn) {
        Run& run = (turn == 0) == fca_first ? fca : dense;
        run_batch(run, batches[b], run.passes.back(), r == 0, mismatches);
      }
      done += 2 * static_cast<int64_t>(batches[b].size());
      progress.update(done, static_cast<uint64_t>(done), work);
    }
  }
  progress.finish(done);
  if (mismatches > 0)
    spdlog::warn(
        "the engine's per-layer token counts differ from the schedule's prediction in {} place(s); "
        "the FLOPs follow what the engine ran",
        mismatches);

  Report report{options,
                *model,
                inputs,
                fca,
                dense,
                medians(fca.passes, info.bert.num_layers),
                medians(dense.passes, info.bert.num_layers),
                std::nullopt,
                std::nullopt};
  if (options.padded_length) {
    report.padded_dense.emplace(info.bert, fca.tally.num_labels());
    report.padded_fca.emplace(info.bert, fca.tally.num_labels());
    report.padded_dense->add_sequence_analytic(FcaSchedule{}, *options.padded_length);
    report.padded_fca->add_sequence_analytic(fca.session.schedule(), *options.padded_length);
  }
  if (!options.plot.empty()) {
    write_plot(report, options.plot);
    if (!options.quiet) spdlog::info("wrote {}", options.plot);
  }
  if (options.json)
    std::cout << report_json(report).dump(2) << '\n';
  else
    print_text(report, std::cout);
  std::cout.flush();
}

}  // namespace

void register_profile(CLI::App& app) {
  auto options = std::make_shared<ProfileOptions>();
  options->model = default_model_path();
  CLI::App* cmd = app.add_subcommand(
      "profile",
      "FLOPs and time per layer, FCA vs dense, on a text file or synthetic inputs (docs/PROFILE.md)");
  cmd->add_option("input", options->input,
                  "text file, one example per line (pair models: two TSV columns); '-' reads stdin");
  cmd->add_option("-m,--model", options->model, "model file")->capture_default_str();
  cmd->add_option("--synthetic-length", options->synthetic_length,
                  "instead of FILE: synthetic inputs of exactly N tokens ([CLS] and [SEP] included)");
  cmd->add_option("--synthetic-count", options->synthetic_count,
                  "how many synthetic inputs (default " + std::to_string(kDefaultSyntheticCount) + ")");
  cmd->add_option("-b,--batch-size", options->batch_size, "sequences per packed batch")
      ->capture_default_str();
  cmd->add_option("-t,--threads", options->threads, "CPU threads (also used by oneDNN)")
      ->capture_default_str();
  cmd->add_option("--max-len", options->max_len,
                  "truncate FILE lines to this many tokens (default: the model's)");
  cmd->add_option("-r,--repeat", options->repeat, "passes over the input per Session; times are medians")
      ->capture_default_str();
  cmd->add_option("--limit", options->limit, "profile only the first N lines of FILE");
  cmd->add_flag("--json", options->json, "print one JSON object instead of the table");
  cmd->add_option("--padded-length", options->padded_length,
                  "also report the analytic FLOPs of one input padded to N tokens (papers' convention)");
  cmd->add_option("--plot", options->plot,
                  "write an SVG chart of FLOPs and ms per layer, dense vs FCA, to FILE");
  cmd->add_flag("-q,--quiet", options->quiet, "no progress bar and no summary line on stderr");
  add_schedule_flags(cmd, options->schedule);
  add_precision_flag(cmd, options->precision);
  cmd->callback([options] { run_profile(*options); });
}

}  // namespace fcabert::cli
