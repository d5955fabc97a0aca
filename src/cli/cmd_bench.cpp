// fcabert bench: timed passes over pre-tokenized inputs, as JSON, for tools/bench/run_bench.py
// (docs/PERF.md). Three modes:
//   fcabert bench --tokens T.jsonl [...]          warm-up, then --repeat timed passes; one JSON
//   fcabert bench --tokens T.jsonl --serve [...]  one JSON line when loaded, then one timed pass
//                                                 per "run" line on stdin (a driver interleaves
//                                                 several engines pass by pass), "quit" ends
//   fcabert bench --gemm [...]                    oneDNN matmul GFLOP/s, fp32, bf16 and int8
// The token file has one JSON object per line: {"ids": [...], "type_ids": [...]} (type_ids
// optional), exactly what the model sees; the driver tokenizes once for every engine.
//
// Allocation check: this binary counts calls to the malloc family (the hooks below forward
// to glibc), so the report can say how many allocations one steady-state forward pass makes
// (the encoder on a packed batch, outputs excluded) and how many a whole Session::run makes.
#include <malloc.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "cli/commands.h"
#include "cli/precision_option.h"
#include "cli/schedule_options.h"
#include "fcabert/engine.h"
#include "fcabert/error.h"
#include "fcabert/fca.h"
#include "fcabert/flops.h"
#include "fcabert/metrics.h"
#include "fcabert/runner.h"
#include "kernels/matmul_bench.h"
#include "kernels/parallel.h"
#include "model/loaded_model.h"

// ---- allocation counter: glibc's allocator behind counting entry points ----
extern "C" {
void* __libc_malloc(size_t size);
void* __libc_calloc(size_t count, size_t size);
void* __libc_realloc(void* p, size_t size);
void* __libc_memalign(size_t alignment, size_t size);
}

namespace {
std::atomic<long long> g_allocations{0};
std::atomic<long long> g_onednn_allocations{0};  // made while a Linear was inside oneDNN
inline void count_allocation() {
  g_allocations.fetch_add(1, std::memory_order_relaxed);
  if (fcabert::kernels::onednn_calls_in_flight() > 0)
    g_onednn_allocations.fetch_add(1, std::memory_order_relaxed);
}
}  // namespace

extern "C" {
void* malloc(size_t size) {
  count_allocation();
  return __libc_malloc(size);
}
void* calloc(size_t count, size_t size) {
  count_allocation();
  return __libc_calloc(count, size);
}
void* realloc(void* p, size_t size) {
  count_allocation();
  return __libc_realloc(p, size);
}
void* memalign(size_t alignment, size_t size) {
  count_allocation();
  return __libc_memalign(alignment, size);
}
void* aligned_alloc(size_t alignment, size_t size) {
  count_allocation();
  return __libc_memalign(alignment, size);
}
int posix_memalign(void** out, size_t alignment, size_t size) {
  count_allocation();
  void* p = __libc_memalign(alignment, size);
  if (p == nullptr) return ENOMEM;
  *out = p;
  return 0;
}
}

namespace fcabert::cli {
namespace {

using json = nlohmann::json;
using Clock = std::chrono::steady_clock;

struct BenchOptions {
  std::string model;
  std::string tokens;
  int64_t batch_size = 32;
  int threads = 2;
  std::string precision = "fp32";  // --precision
  int64_t limit = 0;
  int repeat = 5;
  int warmup = 1;
  bool serve = false;
  bool gemm = false;
  bool quick = false;
  ScheduleFlags schedule;
};

double ms_since(Clock::time_point start) {
  return std::chrono::duration<double, std::milli>(Clock::now() - start).count();
}

// VmHWM / VmRSS of this process, in bytes (0 when /proc is not there).
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
  if (!in) throw Error("cannot open the token file " + path);
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

double percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const double pos = p * static_cast<double>(v.size() - 1);
  const size_t lo = static_cast<size_t>(pos);
  const size_t hi = std::min(lo + 1, v.size() - 1);
  return v[lo] + (pos - static_cast<double>(lo)) * (v[hi] - v[lo]);
}

// One engine configuration over one token file, cut into batches.
class Bench {
 public:
  explicit Bench(const BenchOptions& options) : options_(options) {
    const auto start = Clock::now();
    model_ = Model::load(options.model, load_options(options.threads, options.precision));
    load_ms_ = ms_since(start);
    SessionOptions session_options;
    session_options.schedule = resolve_schedule(options.schedule, model_->info());
    // Two clock reads around each GEMM call (~26 per batch for MiniLM): gives the time spent
    // in the linear layers, for their GFLOP/s.
    session_options.time_layers = true;
    session_ = std::make_unique<Session>(model_, session_options);
    const std::vector<Encoding> all = read_tokens(options.tokens, options.limit);
    batches_ = batches_of(all, plan_batches(all, options.batch_size, BatchOrder::kInput));
    sequences_ = static_cast<int64_t>(all.size());
    for (const Encoding& encoding : all) tokens_ += static_cast<int64_t>(encoding.ids.size());
    count_flops_and_allocations();
  }

  // One timed pass over every batch: the pass and each batch in milliseconds.
  json pass() {
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

  json describe() const {
    const ModelInfo& info = model_->info();
    const auto& net = *model_->internals().network;
    const FcaSchedule& schedule = session_->schedule();
    return json{{"model", options_.model},
                {"geometry",
                 {{"layers", info.bert.num_layers},
                  {"hidden", info.bert.hidden_size},
                  {"intermediate", info.bert.intermediate_size},
                  {"heads", info.bert.num_heads}}},
                {"precision", options_.precision},
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
                {"forward_allocations", forward_allocations_},
                {"forward_allocations_outside_onednn", forward_allocations_ - forward_onednn_allocations_},
                {"run_allocations_per_batch", run_allocations_per_batch_},
                {"workspace_bytes", workspace_bytes_},
                {"dnnl", backend_version()},
                {"encoder_threads", net.threads()}};
  }

 private:
  int64_t weights_file_bytes() const {
    std::ifstream f(options_.model, std::ios::binary | std::ios::ate);
    return f ? static_cast<int64_t>(f.tellg()) : 0;
  }

  // One untimed pass: FLOPs from the engine's own traces, then the allocation check on a
  // private Workspace of the same network (each batch once to size it, then again counted).
  void count_flops_and_allocations() {
    const ModelInfo& info = model_->info();
    FlopsTally tally(info.bert, info.head.outputs());
    const Pooling pooling = session_->schedule().pooling;
    long long run_allocations = 0;
    for (int round = 0; round < 2; ++round) {
      for (const std::vector<Encoding>& batch : batches_) {
        const long long before = g_allocations.load();
        const std::vector<Prediction> out = session_->run(batch);
        if (round == 1) run_allocations += g_allocations.load() - before;
        if (round == 0) {
          for (const Prediction& p : out) tally_trace(tally, pooling, p.trace);
        }
      }
    }
    flops_total_ = tally.total();
    flops_linear_ = tally.encoder().linear() + tally.pooler() + tally.classifier();
    flops_encoder_linear_ = tally.encoder().linear();
    run_allocations_per_batch_ = static_cast<double>(run_allocations) / static_cast<double>(batches_.size());

    const auto& net = *model_->internals().network;
    model::Workspace ws(net.engine(), net.workspace_spec());
    model::ForwardOptions forward;
    forward.schedule = &session_->schedule();
    for (const std::vector<Encoding>& batch : batches_) {  // sizes every buffer
      model::pack_batch(batch, info.bert, ws.batch);
      net.forward(ws, forward);
    }
    forward_allocations_ = forward_onednn_allocations_ = 0;
    for (const std::vector<Encoding>& batch : batches_) {
      model::pack_batch(batch, info.bert, ws.batch);  // reuses its capacity: not counted
      const long long before = g_allocations.load(), onednn_before = g_onednn_allocations.load();
      net.forward(ws, forward);
      forward_allocations_ += g_allocations.load() - before;
      forward_onednn_allocations_ += g_onednn_allocations.load() - onednn_before;
    }
    workspace_bytes_ = static_cast<int64_t>(ws.reserved_bytes());
  }

  BenchOptions options_;
  std::shared_ptr<const Model> model_;
  std::unique_ptr<Session> session_;
  std::vector<std::vector<Encoding>> batches_;
  int64_t sequences_ = 0, tokens_ = 0;
  double load_ms_ = 0;
  int64_t flops_total_ = 0, flops_linear_ = 0, flops_encoder_linear_ = 0, workspace_bytes_ = 0;
  long long forward_allocations_ = 0, forward_onednn_allocations_ = 0;
  double run_allocations_per_batch_ = 0;
};

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
      for (const bool runtime_rows : {false, true}) {
        const kernels::MatmulBenchResult r =
            kernels::benchmark_matmul(s.m, s.k, s.n, precision, runtime_rows, seconds);
        rows.push_back({{"precision", name},
                        {"m", r.m},
                        {"k", r.k},
                        {"n", r.n},
                        {"runtime_rows", r.runtime_rows},
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

void run_bench(const BenchOptions& options) {
  if (options.threads < 1) throw Error("--threads must be at least 1");
  if (options.gemm) {
    std::cout << run_gemm(options).dump() << std::endl;
    return;
  }
  if (options.tokens.empty()) throw Error("bench needs --tokens FILE (or --gemm)");
  if (options.batch_size < 1) throw Error("--batch-size must be at least 1");
  if (options.repeat < 1) throw Error("--repeat must be at least 1");
  Bench bench(options);
  for (int i = 0; i < options.warmup; ++i) bench.pass();
  json report = bench.describe();
  if (options.serve) {
    std::cout << report.dump() << std::endl;
    std::string command;
    while (std::getline(std::cin, command)) {
      if (command == "quit") break;
      if (command != "run") throw Error("bench --serve: unknown command \"" + command + "\" (run or quit)");
      std::cout << bench.pass().dump() << std::endl;
    }
    return;
  }
  json passes = json::array();
  std::vector<double> pass_ms;
  for (int i = 0; i < options.repeat; ++i) {
    passes.push_back(bench.pass());
    pass_ms.push_back(passes.back()["pass_ms"].get<double>());
  }
  report["passes"] = passes;
  report["pass_ms_median"] = metrics::median(pass_ms);
  report["peak_rss_bytes"] = proc_status_bytes("VmHWM");
  std::cout << report.dump() << std::endl;
}

}  // namespace

void register_bench(CLI::App& app) {
  auto options = std::make_shared<BenchOptions>();
  options->model = default_model_path();
  CLI::App* cmd = app.add_subcommand(
      "bench", "time passes over pre-tokenized inputs (JSON), or oneDNN's matmul peak (--gemm)");
  cmd->add_option("-m,--model", options->model, "model file")->capture_default_str();
  cmd->add_option("--tokens", options->tokens,
                  "JSONL token file: {\"ids\": [...], \"type_ids\": [...]} per line");
  cmd->add_option("-b,--batch-size", options->batch_size, "sequences per packed batch")
      ->capture_default_str();
  cmd->add_option("-t,--threads", options->threads, "CPU threads (also used by oneDNN)")
      ->capture_default_str();
  cmd->add_option("--limit", options->limit, "use only the first N token lines");
  cmd->add_option("-r,--repeat", options->repeat, "timed passes (without --serve)")->capture_default_str();
  cmd->add_option("--warmup", options->warmup, "untimed passes first")->capture_default_str();
  cmd->add_flag("--serve", options->serve, "one timed pass per \"run\" line on stdin, one JSON line each");
  cmd->add_flag("--gemm", options->gemm, "measure oneDNN matmul GFLOP/s (fp32, bf16, int8) instead");
  cmd->add_flag("--quick", options->quick, "--gemm: one small shape, short timings (smoke tests)");
  add_schedule_flags(cmd, options->schedule);
  add_precision_flag(cmd, options->precision);
  cmd->callback([options] { run_bench(*options); });
}

}  // namespace fcabert::cli
