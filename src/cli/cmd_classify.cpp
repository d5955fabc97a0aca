// fcabert classify: one prediction per input line, in input order, streamed in batches.
//
// Behaviour on awkward input (documented in README.md):
// - an empty line is classified as an empty text ([CLS] [SEP]) and counted in a warning;
// - a line longer than --max-len tokens is truncated (counted in a warning; jsonl marks it);
// - invalid UTF-8, or a pair line without exactly two tab-separated columns (a bad row),
//   stops the run with an error naming FILE:LINE; every result before that line has been
//   written and flushed to stdout (the lines of its batch before it are run first). With
//   --output FILE nothing is renamed into FILE then (all or nothing; see output_file.h);
// - --skip-bad-rows: a bad row is warned about (FILE:LINE: reason) and counted, and gets an
//   error row in the output (PredictionWriter::write_error) so that output rows stay one per
//   input line; the run goes on;
// - --output FILE: results go to a temporary next to FILE, renamed when the run succeeds;
//   SIGINT / SIGTERM remove it (exit 130 / 143). Input is streamed: memory does not grow
//   with the number of lines.
#include <spdlog/spdlog.h>

#include <iostream>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "cli/commands.h"
#include "cli/line_encoding.h"
#include "cli/line_reader.h"
#include "cli/output_file.h"
#include "cli/precision_option.h"
#include "cli/prediction_writer.h"
#include "cli/progress.h"
#include "cli/schedule_options.h"
#include "fcabert/engine.h"
#include "fcabert/fca.h"
#include "fcabert/error.h"

namespace fcabert::cli {
namespace {

struct ClassifyOptions {
  std::vector<std::string> inputs;
  std::string model;
  int64_t batch_size = 32;
  int threads = 2;
  std::string precision = "fp32";  // --precision
  int64_t max_len = 0;             // 0 = the model's default
  std::string format = "text";
  bool quiet = false;
  bool explain = false;
  bool skip_bad_rows = false;
  std::string output;  // empty: stdout
  ScheduleFlags schedule;
};

void run_classify(const ClassifyOptions& options) {
  if (options.batch_size < 1) throw Error("--batch-size must be at least 1");
  if (options.threads < 1) throw Error("--threads must be at least 1");
  const OutputFormat format = parse_output_format(options.format);
  LineReader reader(options.inputs);  // checks the input files before the model loads

  auto model = Model::load(options.model, load_options(options.threads, options.precision));
  const ModelInfo& info = model->info();
  const int64_t max_len = resolve_max_len(options.max_len, info);
  SessionOptions session_options;
  session_options.schedule = resolve_schedule(options.schedule, info);
  session_options.explain = options.explain;
  Session session(model, session_options);
  spdlog::debug("FCA schedule: {}", fca::describe_schedule(session.schedule()));
  std::unique_ptr<OutputFile> output_file;
  if (!options.output.empty()) output_file = std::make_unique<OutputFile>(options.output);
  std::ostream& out = output_file ? output_file->stream() : std::cout;
  PredictionWriter writer(out, format, info.head, model->tokenizer(), reader.multiple_sources(),
                          options.explain);
  Progress progress("examples", !options.quiet);

  std::vector<InputLine> lines(static_cast<size_t>(options.batch_size));
  std::vector<std::optional<std::string>> bad(lines.size());  // per slot: why the line was skipped
  std::vector<Encoding> batch;
  int64_t done = 0, empty = 0, truncated = 0, skipped = 0;
  std::optional<Error> stop;  // a bad row, thrown once the lines before it are written
  while (!stop) {
    batch.clear();
    size_t count = 0;
    while (count < lines.size()) {
      try {
        if (!reader.next(lines[count])) break;
      } catch (const Error& e) {  // a read error, not a bad row: never skipped
        stop = e;
        break;
      }
      try {
        batch.push_back(encode_line(model->tokenizer(), lines[count], info.head.pair_input, max_len));
        bad[count].reset();
        empty += lines[count].text.empty();
        truncated += batch.back().truncated;
      } catch (const Error& e) {
        if (!options.skip_bad_rows) {
          stop = e;
          break;
        }
        spdlog::warn("{} (skipped)", e.what());
        bad[count] = e.what();
        ++skipped;
      }
      // The text is encoded; a huge line must not keep its buffer for the rest of the run.
      if (lines[count].text.capacity() > (size_t{1} << 20)) std::string().swap(lines[count].text);
      ++count;
    }
    if (count == 0) break;
    const std::vector<Prediction> predictions = session.run(batch);
    for (size_t i = 0, j = 0; i < count; ++i) {
      if (bad[i]) {
        writer.write_error(lines[i], *bad[i]);
      } else {
        writer.write(lines[i], batch[j], predictions[j]);
        ++j;
      }
    }
    writer.flush();  // results so far are complete even if a later line is bad
    done += static_cast<int64_t>(count);
    progress.update(done, reader.bytes_read(), reader.bytes_total());
  }
  if (stop) {
    if (output_file)
      throw Error(std::string(stop->what()) + " (" + options.output +
                  " was not written; fix the line or use " + "--skip-bad-rows)");
    throw Error(std::string(stop->what()) + " (the results of the lines before it were written; fix the " +
                "line or use --skip-bad-rows)");
  }
  if (output_file) output_file->commit();
  progress.finish(done);
  if (empty > 0) spdlog::warn("{} empty line(s) were classified as empty texts", empty);
  if (truncated > 0)
    spdlog::warn("{} line(s) were longer than {} tokens and were truncated", truncated, max_len);
  if (skipped > 0)
    spdlog::warn("{} bad line(s) were skipped (--skip-bad-rows); each has an error row in the output",
                 skipped);
}

}  // namespace

void register_classify(CLI::App& app) {
  auto options = std::make_shared<ClassifyOptions>();
  options->model = default_model_path();
  CLI::App* cmd = app.add_subcommand("classify", "classify each line of text files (or stdin) with a model");
  cmd->add_option("inputs", options->inputs,
                  "text files, one example per line (pair models: two TSV columns); "
                  "none or '-' reads stdin");
  cmd->add_option("-m,--model", options->model, "model file")->capture_default_str();
  cmd->add_option("-b,--batch-size", options->batch_size, "sequences per packed batch")
      ->capture_default_str();
  cmd->add_option("-t,--threads", options->threads, "CPU threads (also used by oneDNN)")
      ->capture_default_str();
  cmd->add_option("--max-len", options->max_len, "truncate to this many tokens (default: the model's)");
  cmd->add_option("-f,--format", options->format, "output: text, jsonl or tsv")->capture_default_str();
  cmd->add_flag("-q,--quiet", options->quiet, "no progress bar and no summary line");
  cmd->add_option("-o,--output", options->output,
                  "write the results to this file (through a temporary renamed on success) instead of "
                  "stdout");
  cmd->add_flag("--skip-bad-rows", options->skip_bad_rows,
                "warn about, count and skip bad lines (invalid UTF-8, wrong column count) instead of "
                "stopping; each gets an error row in the output");
  cmd->add_flag("--explain", options->explain,
                "show what FCA did per layer: token counts and the tokens kept (text, jsonl)");
  add_schedule_flags(cmd, options->schedule);
  add_precision_flag(cmd, options->precision);
  cmd->callback([options] { run_classify(*options); });
}

}  // namespace fcabert::cli
