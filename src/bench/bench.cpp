#include "bench/bench.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <fstream>

#include "bench/allocation_counter.h"
#include "cli/precision_option.h"
#include "fcabert/error.h"
#include "fcabert/fca.h"
#include "fcabert/flops.h"
#include "fcabert/metrics.h"
#include "fcabert/precision.h"
#include "fcabert/runner.h"
#include "kernels/matmul_bench.h"
#include "kernels/parallel.h"
#include "model/loaded_model.h"

namespace fcabert::bench {
namespace {

using json = nlohmann::json;
using Clock = std::chrono::steady_clock;

double ms_since(Clock::time_point start) {
  return std::chrono::duration<double, std::milli>(Clock::now() - start).count();
}

double percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const double pos = p * static_cast<double>(v.size() - 1);
  const size_t lo = static_cast<size_t>(pos);
  const size_t hi = std::min(lo + 1, v.size() - 1);
  return v[lo] + (pos - static_cast<double>(lo)) * (v[hi] - v[lo]);
}

// A count for the report; null in a build that cannot count (allocation_counting_available).
template <class T>
json count_or_null(T count) {
  return allocation_counting_available() ? json(count) : json(nullptr);
}

}  // namespace

int64_t proc_status_bytes(const std::string& key) {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(key + ":", 0) == 0) return std::atoll(line.c_str() + key.size() + 1) * 1024;
  }
  return 0;
}

std::vector<Encoding> read_tokens(const std::string& path, int64_t limit) {
  std::ifstream in(path);
  if (!in) throw Error("cannot open the token file " + path + " (--tokens)");
  std::vector<Encoding> out;
  std::string line;
  int64_t number = 0;
  while (std::getline(in, line) && (limit <= 0 || static_cast<int64_t>(out.size()) < limit)) {
    ++number;
    if (line.empty()) continue;
    try {
      const json j = json::parse(line);
      Encoding e;
      e.ids = j.at("ids").get<std::vector<int32_t>>();
      e.type_ids = j.contains("type_ids") ? j.at("type_ids").get<std::vector<int32_t>>()
                                          : std::vector<int32_t>(e.ids.size(), 0);
      out.push_back(std::move(e));
    } catch (const json::exception& e) {
      throw Error(path + ":" + std::to_string(number) + ": not a token line (" + e.what() + ")");
    }
  }
  if (out.empty()) throw Error(path + ": no token lines");
  return out;
}

Bench::Bench(const BenchOptions& options) : options_(options) {
  const auto start = Clock::now();
  model_ = Model::load(options.model, cli::load_options(options.threads, options.precision));
  load_ms_ = ms_since(start);
  SessionOptions session_options;
  session_options.schedule = cli::resolve_schedule(options.schedule, model_->info());
  // Two clock reads around each GEMM call (~26 per batch for MiniLM): gives the time spent
  // in the linear layers, for their GFLOP/s.
  session_options.time_layers = true;
  session_ = std::make_unique<Session>(model_, session_options);
  const std::vector<Encoding> all = read_tokens(options.tokens, options.limit);
  batches_ = batches_of(all, plan_batches(all, options.batch_size, BatchOrder::kInput));
  sequences_ = static_cast<int64_t>(all.size());
  for (const Encoding& encoding : all) tokens_ += static_cast<int64_t>(encoding.ids.size());
  if (!allocation_counting_available()) {
    spdlog::warn(
        "this fcabert-bench is built with a sanitizer, which owns malloc: no allocation "
        "counts (forward_allocations, forward_allocations_outside_onednn and "
        "run_allocations_per_batch are null)");
  }
  count_flops_and_run_allocations();
  count_forward_allocations();
}

json Bench::pass() {
  std::vector<double> batch_ms;
  batch_ms.reserve(batches_.size());
  double linear_ms = 0;
  const auto start = Clock::now();
  for (const std::vector<Encoding>& batch : batches_) {
    const auto t0 = Clock::now();
    session_->run(batch);
    batch_ms.push_back(ms_since(t0));
    linear_ms += session_->last_timings().linear_ms;
  }
  const double total = ms_since(start);
  return json{{"pass_ms", total},
              {"encoder_linear_ms", linear_ms},
              {"encoder_linear_gflops",
               linear_ms > 0 ? static_cast<double>(flops_encoder_linear_) / (linear_ms * 1e6) : 0.0},
              {"batch_ms_median", metrics::median(batch_ms)},
              {"batch_ms_p90", percentile(batch_ms, 0.9)},
              {"examples_per_s", 1000.0 * static_cast<double>(sequences_) / total},
              {"peak_rss_bytes", proc_status_bytes("VmHWM")}};
}

json Bench::describe() const {
  const ModelInfo& info = model_->info();
  const auto& net = *model_->internals().network;
  const FcaSchedule& schedule = session_->schedule();
  return json{{"model", options_.model},
              {"geometry",
               {{"layers", info.bert.num_layers},
                {"hidden", info.bert.hidden_size},
                {"intermediate", info.bert.intermediate_size},
                {"heads", info.bert.num_heads}}},
              {"precision", precision_name(model_->precision().precision)},
              {"precision_requested", options_.precision},
              {"arithmetic", model_->precision().arithmetic},
              {"precision_reason", model_->precision().reason},
              {"schedule", fca::describe_schedule(schedule)},
              {"fca", schedule.enabled()},
              {"threads", options_.threads},
              {"batch_size", options_.batch_size},
              {"batches", batches_.size()},
              {"sequences", sequences_},
              {"tokens", tokens_},
              {"load_ms", load_ms_},
              {"flops_per_pass", flops_total_},
              {"linear_flops_per_pass", flops_linear_},
              {"encoder_linear_flops_per_pass", flops_encoder_linear_},
              {"weights_file_bytes", weights_file_bytes()},
              {"forward_allocations", count_or_null(forward_allocations_)},
              {"forward_allocations_outside_onednn",
               count_or_null(forward_allocations_ - forward_onednn_allocations_)},
              {"run_allocations_per_batch", count_or_null(run_allocations_per_batch_)},
              {"workspace_bytes", workspace_bytes_},
              {"dnnl", backend_version()},
              {"encoder_threads", net.threads()}};
}

int64_t Bench::weights_file_bytes() const {
  std::ifstream f(options_.model, std::ios::binary | std::ios::ate);
  return f ? static_cast<int64_t>(f.tellg()) : 0;
}

// One untimed pass for the FLOPs (from the engine's own traces), then a second one with the
// allocations of each whole Session::run counted (the first has sized every buffer).
void Bench::count_flops_and_run_allocations() {
  const ModelInfo& info = model_->info();
  FlopsTally tally(info.bert, info.head.outputs());
  const Pooling pooling = session_->schedule().pooling;
  for (const std::vector<Encoding>& batch : batches_) {
    for (const Prediction& p : session_->run(batch)) tally_trace(tally, pooling, p.trace);
  }
  long long run_allocations = 0;
  for (const std::vector<Encoding>& batch : batches_) {
    run_allocations += count_allocations([&] { session_->run(batch); }).total;
  }
  flops_total_ = tally.total();
  flops_linear_ = tally.encoder().linear() + tally.pooler() + tally.classifier();
  flops_encoder_linear_ = tally.encoder().linear();
  run_allocations_per_batch_ = static_cast<double>(run_allocations) / static_cast<double>(batches_.size());
}

// The steady-state forward pass (the encoder on a packed batch, outputs excluded) on a private
// Workspace of the same network: each batch once to size every buffer, then again counted.
void Bench::count_forward_allocations() {
  const ModelInfo& info = model_->info();
  const auto& net = *model_->internals().network;
  model::Workspace ws(net.engine(), net.workspace_spec());
  model::ForwardOptions forward;
  forward.schedule = &session_->schedule();
  for (const std::vector<Encoding>& batch : batches_) {
    model::pack_batch(batch, info.bert, ws.batch);
    net.forward(ws, forward);
  }
  forward_allocations_ = forward_onednn_allocations_ = 0;
  for (const std::vector<Encoding>& batch : batches_) {
    model::pack_batch(batch, info.bert, ws.batch);  // reuses its capacity: not counted
    const AllocationCounts counts = count_allocations([&] { net.forward(ws, forward); });
    forward_allocations_ += counts.total;
    forward_onednn_allocations_ += counts.in_onednn;
  }
  workspace_bytes_ = static_cast<int64_t>(ws.reserved_bytes());
}

json run_gemm(const BenchOptions& options) {
  kernels::use_threads(options.threads);
  const double seconds = options.quick ? 0.05 : 0.5;
  struct Shape {
    int64_t m, k, n;
  };
  // Large square-ish products for the peak, and the engine's own shapes at batch 32.
  std::vector<Shape> shapes = {{1024, 1024, 4096}, {2048, 768, 3072}, {1024, 384, 1536}, {1024, 1536, 384}};
  if (options.quick) shapes = {{256, 256, 512}};
  json rows = json::array();
  json peak = json::object();
  for (const auto precision : {Precision::kFp32, Precision::kBf16, Precision::kInt8}) {
    const char* name = precision_name(precision);
    double best = 0;
    for (const Shape& s : shapes) {
      for (const bool engine_linear : {false, true}) {
        const kernels::MatmulBenchResult r =
            kernels::benchmark_matmul(s.m, s.k, s.n, precision, engine_linear, seconds);
        rows.push_back({{"precision", name},
                        {"m", r.m},
                        {"k", r.k},
                        {"n", r.n},
                        {"engine_linear", r.engine_linear},
                        {"implementation", r.implementation},
                        {"median_ms", r.median_ms},
                        {"calls", r.calls},
                        {"gflops", r.gflops},
                        {"gflops_per_cpu", r.gflops_per_cpu}});
        best = std::max(best, r.gflops);
      }
    }
    peak[name] = best;
  }
  return json{
      {"threads", options.threads}, {"dnnl", backend_version()}, {"peak_gflops", peak}, {"gemm", rows}};
}

}  // namespace fcabert::bench
