// fcabert-bench: timed passes over pre-tokenized inputs, as JSON, for tools/bench/run_bench.py
// (docs/PERF.md). Its own executable, not a subcommand of fcabert, because it counts heap
// allocations by replacing the malloc family (allocation_counter.cpp), which must not wrap
// every allocation of the CLI's other commands. Three modes:
//   fcabert-bench --tokens T.jsonl [...]          warm-up, then --repeat timed passes; one JSON
//   fcabert-bench --tokens T.jsonl --serve [...]  one JSON line when loaded, then one timed pass
//                                                 per "run" line on stdin (a driver interleaves
//                                                 several engines pass by pass), "quit" ends
//   fcabert-bench --gemm [...]                    oneDNN matmul GFLOP/s, fp32, bf16 and int8
// The token file has one JSON object per line: {"ids": [...], "type_ids": [...]} (type_ids
// optional), exactly what the model sees; the driver tokenizes once for every engine.
#include <iostream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "bench/bench.h"
#include "cli/app.h"
#include "cli/default_model.h"
#include "cli/precision_option.h"
#include "cli/schedule_options.h"
#include "fcabert/engine.h"
#include "fcabert/error.h"
#include "fcabert/metrics.h"

namespace fcabert::bench {
namespace {

using json = nlohmann::json;

void add_flags(CLI::App& app, BenchOptions& options) {
  app.add_option("-m,--model", options.model, "model file")->capture_default_str();
  app.add_option("--tokens", options.tokens,
                 "JSONL token file: {\"ids\": [...], \"type_ids\": [...]} per line");
  app.add_option("-b,--batch-size", options.batch_size, "sequences per packed batch")->capture_default_str();
  app.add_option("-t,--threads", options.threads, "CPU threads (also used by oneDNN)")->capture_default_str();
  app.add_option("--limit", options.limit, "use only the first N token lines");
  app.add_option("-r,--repeat", options.repeat, "timed passes (without --serve)")->capture_default_str();
  app.add_option("--warmup", options.warmup, "untimed passes first")->capture_default_str();
  app.add_flag("--serve", options.serve, "one timed pass per \"run\" line on stdin, one JSON line each");
  app.add_flag("--gemm", options.gemm, "measure oneDNN matmul GFLOP/s (fp32, bf16, int8) instead");
  app.add_flag("--quick", options.quick, "--gemm: one small shape, short timings (smoke tests)");
  cli::add_schedule_flags(&app, options.schedule);
  cli::add_precision_flag(&app, options.precision);
}

void check_options(const BenchOptions& options) {
  if (options.threads < 1) throw Error("--threads must be at least 1");
  if (options.gemm) return;
  if (options.tokens.empty()) throw Error("--tokens FILE is needed (or --gemm)");
  if (options.batch_size < 1) throw Error("--batch-size must be at least 1");
  if (options.repeat < 1) throw Error("--repeat must be at least 1");
}

// --serve: the description once, then one pass per "run" line until "quit" or end of input.
void serve(Bench& bench) {
  std::cout << bench.describe().dump() << std::endl;
  std::string command;
  while (std::getline(std::cin, command)) {
    if (command == "quit") break;
    if (command != "run") throw Error("--serve: unknown command \"" + command + "\" on stdin (run or quit)");
    std::cout << bench.pass().dump() << std::endl;
  }
}

// Without --serve: the description with --repeat timed passes and their median, one JSON.
void repeat_passes(const BenchOptions& options, Bench& bench) {
  json report = bench.describe();
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

void run(const BenchOptions& options) {
  check_options(options);
  if (options.gemm) {
    std::cout << run_gemm(options).dump() << std::endl;
    return;
  }
  Bench bench(options);
  for (int i = 0; i < options.warmup; ++i) bench.pass();
  if (options.serve) {
    serve(bench);
  } else {
    repeat_passes(options, bench);
  }
}

}  // namespace
}  // namespace fcabert::bench

int main(int argc, char** argv) {
  CLI::App app{
      "fcabert-bench: time passes of fcabert over pre-tokenized inputs (JSON), or oneDNN's matmul "
      "peak (--gemm)"};
  app.set_version_flag("--version", std::string("fcabert-bench ") + fcabert::version());
  fcabert::cli::configure_logging(app, "fcabert-bench");
  fcabert::bench::BenchOptions options;
  options.model = fcabert::cli::default_model_path();
  fcabert::bench::add_flags(app, options);
  app.callback([&options] { fcabert::bench::run(options); });
  return fcabert::cli::parse_and_run(app, argc, argv, "fcabert-bench");
}
