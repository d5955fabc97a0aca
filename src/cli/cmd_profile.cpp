// fcabert profile: FLOPs and time per layer, the FCA schedule against the dense model
// (include/fcabert/profile.h does the work; docs/PROFILE.md explains the report). This file
// reads the flags and the input text, calls profile::run and prints.
#include <spdlog/spdlog.h>

#include <cstdint>
#include <iostream>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "cli/commands.h"
#include "cli/long_text_options.h"
#include "cli/precision_option.h"
#include "cli/progress.h"
#include "cli/schedule_options.h"
#include "fcabert/engine.h"
#include "fcabert/error.h"
#include "fcabert/input.h"
#include "fcabert/profile.h"
#include "io/output_file.h"

namespace fcabert::cli {
namespace {

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
  LongTextFlags long_texts;
};

// Every line of FILE (or the first --limit), encoded as classify encodes it.
profile::Inputs read_file_inputs(LineReader& reader, const ProfileOptions& options, const Model& model) {
  const ModelInfo& info = model.info();
  const int64_t max_len = resolve_max_len(options.max_len, info);
  classify::Options windows;  // --long window: every window is an input
  apply_long_text_flags(options.long_texts, windows);
  const bool windowed = windows.long_texts == classify::LongTexts::kWindow;
  if (windowed && info.head.pair_input)
    throw Error("--long window takes single-text models; this model takes sentence pairs");
  const WindowOptions window_options =
      windowed ? make_window_options(max_len, windows.stride, windows.max_windows) : WindowOptions{};
  profile::Inputs inputs;
  InputLine line;
  for (int64_t lines = 0; (options.limit == 0 || lines < options.limit) && reader.next(line); ++lines) {
    inputs.source = line.source;
    inputs.empty_lines += line.text.empty();
    if (windowed) {
      for (Encoding& window : encode_line_windows(model.tokenizer(), line, window_options))
        inputs.encodings.push_back(std::move(window));
    } else {
      inputs.encodings.push_back(encode_line(model.tokenizer(), line, info.head.pair_input, max_len));
    }
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

profile::Options library_options(const ProfileOptions& options, const ModelInfo& info) {
  profile::Options result;
  result.schedule = resolve_schedule(options.schedule, info);
  result.batch_size = options.batch_size;
  result.repeat = options.repeat;
  result.padded_length = options.padded_length;
  return result;
}

void run_profile(const ProfileOptions& options) {
  check_options(options);
  std::optional<LineReader> reader;
  if (!options.synthetic_length)
    reader.emplace(std::vector<std::string>{options.input});  // checks the file first

  std::shared_ptr<const Model> model =
      Model::load(options.model, load_options(options.threads, options.precision));
  const profile::Options profile_options = library_options(options, model->info());
  profile::validate(profile_options, model->info());
  const profile::Inputs inputs =
      reader ? read_file_inputs(*reader, options, *model)
             : profile::synthetic_inputs(*model, *options.synthetic_length,
                                         options.synthetic_count.value_or(profile::kDefaultSyntheticCount));

  Progress progress("sequence runs", !options.quiet);
  int64_t runs = 0;
  const profile::Report report =
      profile::run(model, inputs, profile_options, [&](int64_t done, int64_t total) {
        runs = done;
        progress.update(done, static_cast<uint64_t>(done), static_cast<uint64_t>(total));
      });
  progress.finish(runs);
  if (!options.plot.empty()) {
    write_file_atomically(options.plot, profile::render_chart(report));
    if (!options.quiet) spdlog::info("wrote {}", options.plot);
  }
  if (options.json)
    std::cout << profile::report_to_json(report) << '\n';
  else
    profile::write_text_report(report, std::cout);
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
  cmd->add_option(
      "--synthetic-count", options->synthetic_count,
      "how many synthetic inputs (default " + std::to_string(profile::kDefaultSyntheticCount) + ")");
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
  add_long_text_flags(cmd, options->long_texts);
  cmd->add_flag("-q,--quiet", options->quiet, "no progress bar and no summary line on stderr");
  add_schedule_flags(cmd, options->schedule);
  add_precision_flag(cmd, options->precision);
  cmd->callback([options] { run_profile(*options); });
}

}  // namespace fcabert::cli
