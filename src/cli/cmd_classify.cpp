// fcabert classify: one prediction per input line, in input order, streamed in batches
// (classify::classify_lines in include/fcabert/classify.h does the work and describes what
// happens to awkward input; README.md documents it for users). This file adds the output:
// - PredictionWriter formats each row (text, jsonl, tsv); a bad row skipped with
//   --skip-bad-rows gets an error row (PredictionWriter::write_error), so that output rows
//   stay one per input line;
// - a line that stops the run: every result before it has been written and flushed to
//   stdout; with --output FILE nothing is renamed into FILE (all or nothing);
// - --output FILE: results go to a temporary next to FILE, renamed when the run succeeds;
//   SIGINT / SIGTERM remove it (exit 130 / 143; see src/io/output_file.h);
// - --shard K/N: the rows of this shard's batches are rendered as usual, batch by batch, into
//   a shard file (include/fcabert/classify_shards.h); classify-merge joins the shard files
//   into exactly the output of one unsharded run (docs/SCALE_OUT.md).
#include <spdlog/spdlog.h>

#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "cli/commands.h"
#include "cli/long_text_options.h"
#include "cli/precision_option.h"
#include "cli/prediction_writer.h"
#include "cli/progress.h"
#include "cli/schedule_options.h"
#include "fcabert/classify.h"
#include "fcabert/classify_shards.h"
#include "fcabert/engine.h"
#include "fcabert/error.h"
#include "fcabert/fca.h"
#include "fcabert/input.h"
#include "fcabert/shard.h"
#include "io/output_file.h"

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
  std::string output;               // empty: stdout
  std::string shard;                // --shard K/N; empty: the whole input, printed as usual
  std::optional<double> threshold;  // --threshold (multi-label heads only); unset: 0.5
  LongTextFlags long_texts;
  std::string input_format = "text";  // --input-format
  TableOptions table;                 // --text-column, --pair-column, --id-column
  ScheduleFlags schedule;
};

constexpr double kDefaultThreshold = 0.5;

struct MergeOptions {
  std::vector<std::string> shards;
  std::string output;  // empty: stdout
  bool quiet = false;
};

// Adds what the user should do to a Stopped error: the results before the line are on
// stdout, or (--output) nothing was written at all.
[[noreturn]] void rethrow_stopped(const classify::Stopped& stop, const std::string& output) {
  const std::string fix = stop.bad_row() ? "fix the line or use --skip-bad-rows" : "fix the input";
  if (!output.empty())
    throw Error(std::string(stop.what()) + " (" + output + " was not written; " + fix + ")");
  throw Error(std::string(stop.what()) + " (the results of the lines before it were written; " + fix + ")");
}

void warn_about(const classify::Summary& summary, int64_t max_windows = 0) {
  if (summary.empty > 0) spdlog::warn("{} empty line(s) were classified as empty texts", summary.empty);
  if (summary.windowed > 0)
    spdlog::info("{} line(s) were longer than {} tokens and ran as several windows", summary.windowed,
                 summary.max_len);
  if (summary.truncated > 0 && max_windows > 0)
    spdlog::warn("{} line(s) needed more than {} windows (--max-windows) and were truncated",
                 summary.truncated, max_windows);
  else if (summary.truncated > 0)
    spdlog::warn("{} line(s) were longer than {} tokens and were truncated", summary.truncated,
                 summary.max_len);
  if (summary.skipped > 0)
    spdlog::warn("{} bad line(s) were skipped (--skip-bad-rows); each has an error row in the output",
                 summary.skipped);
}

// The output settings that shape the rendered rows: the shards of one job must share them.
std::string output_settings(const ClassifyOptions& options, const classify::Options& run,
                            const LineReader& reader) {
  return nlohmann::json{{"format", options.format},
                        {"explain", options.explain},
                        {"name_sources", reader.multiple_sources()},
                        {"threshold", options.threshold.value_or(kDefaultThreshold)},
                        {"long", options.long_texts.mode},
                        {"input_format", options.input_format},
                        {"text_column", options.table.text},
                        {"pair_column", options.table.pair},
                        {"id_column", options.table.id},
                        {"header", options.table.header},
                        {"stride", run.stride},
                        {"max_windows", run.max_windows}}
      .dump();
}

// --threshold: only a multi-label head has one.
double threshold_for(const ClassifyOptions& options, const HeadConfig& head, const std::string& model) {
  if (options.threshold && head.kind != HeadKind::kMultiLabel)
    throw Error("--threshold applies to multi-label models only; " + model + " has a " +
                head_kind_name(head.kind) + " head (one label per text: no threshold)");
  const double threshold = options.threshold.value_or(kDefaultThreshold);
  if (!(threshold >= 0 && threshold <= 1))
    throw Error("--threshold " + std::to_string(threshold) + ": expected a probability between 0 and 1");
  return threshold;
}

// Takes what `buffer` holds and empties it.
std::string take(std::ostringstream& buffer) {
  std::string text = buffer.str();
  buffer.str("");
  return text;
}

// --input-format and the table flags.
TableOptions table_options(const ClassifyOptions& options) {
  TableOptions table = options.table;
  table.format = parse_input_format(options.input_format);
  if (table.format == InputFormat::kText && !table.id.empty())
    throw Error("--id-column needs a table input: --input-format tsv, csv or jsonl");
  if (!table.header && table.format != InputFormat::kTsv && table.format != InputFormat::kCsv)
    throw Error("--no-header applies to --input-format tsv and csv");
  return table;
}

// The library's options, once the model (and so max_len) is known.
classify::Options library_options(const ClassifyOptions& options, int64_t max_len, const Shard& shard) {
  classify::Options run_options{options.batch_size, max_len, options.skip_bad_rows, shard};
  apply_long_text_flags(options.long_texts, run_options);
  if (run_options.long_texts == classify::LongTexts::kWindow && options.explain)
    throw Error("--explain shows one sequence per text; it does not combine with --long window");
  return run_options;
}

void run_classify(const ClassifyOptions& options) {
  if (options.threads < 1) throw Error("--threads must be at least 1");
  if (options.batch_size < 1) throw Error("--batch-size must be at least 1");
  const OutputFormat format = parse_output_format(options.format);
  const bool sharded = !options.shard.empty();
  const Shard shard = sharded ? parse_shard(options.shard) : Shard{};
  const TableOptions table = table_options(options);
  LineReader reader(options.inputs, table);  // checks the input files before the model loads

  auto model = Model::load(options.model, load_options(options.threads, options.precision));
  reader.set_pair_input(model->info().head.pair_input);
  const double threshold = threshold_for(options, model->info().head, options.model);
  SessionOptions session_options;
  session_options.schedule = resolve_schedule(options.schedule, model->info());
  session_options.explain = options.explain;
  Session session(model, session_options);
  spdlog::debug("FCA schedule: {}", fca::describe_schedule(session.schedule()));
  const classify::Options run_options =  // max_len checked before any output
      library_options(options, resolve_max_len(options.max_len, model->info()), shard);
  const bool windows = run_options.long_texts == classify::LongTexts::kWindow;
  std::unique_ptr<OutputFile> output_file;
  if (!options.output.empty()) output_file = std::make_unique<OutputFile>(options.output);
  std::ostream& out = output_file ? output_file->stream() : std::cout;
  std::ostringstream rendered;  // --shard: a batch's rows, before they go into the shard file
  PredictionWriter writer(sharded ? rendered : out, format, model->info().head, model->tokenizer(),
                          reader.multiple_sources(), options.explain, threshold, windows, !table.id.empty());
  std::optional<classify::ShardWriter> shard_file;
  if (sharded)
    shard_file.emplace(
        out, classify::shard_header(session, run_options, output_settings(options, run_options, reader),
                                    take(rendered)));
  Progress progress("examples", !options.quiet);
  int64_t done = 0;
  const auto write_batch = [&](const std::vector<classify::Row>& rows) {
    for (const classify::Row& row : rows) {
      if (row.error)
        writer.write_error(*row.line, *row.error);
      else
        writer.write(*row.line, *row.encoding, *row.prediction, row.windows);
    }
    if (shard_file)
      shard_file->write_batch(rows.front().line->index, static_cast<int64_t>(rows.size()), take(rendered));
    writer.flush();  // results so far are complete even if a later line is bad
    done += static_cast<int64_t>(rows.size());
    progress.update(done, reader.bytes_read(), reader.bytes_total());
  };
  classify::Summary summary;
  try {
    summary = classify::classify_lines(session, reader, run_options, write_batch);
  } catch (const classify::Stopped& stop) {
    rethrow_stopped(stop, options.output);
  }
  if (shard_file) shard_file->finish(summary);
  if (output_file) output_file->commit();
  progress.finish(summary.lines);
  warn_about(summary, windows ? run_options.max_windows : 0);
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
  cmd->add_option("-f,--format", options->format, "output: text, jsonl, tsv or csv")->capture_default_str();
  cmd->add_flag("-q,--quiet", options->quiet, "no progress bar and no summary line");
  cmd->add_option("-o,--output", options->output,
                  "write the results to this file (through a temporary renamed on success) instead of "
                  "stdout");
  cmd->add_flag("--skip-bad-rows", options->skip_bad_rows,
                "warn about, count and skip bad lines (invalid UTF-8, wrong column count) instead of "
                "stopping; each gets an error row in the output");
  cmd->add_flag("--explain", options->explain,
                "show what FCA did per layer: token counts and the tokens kept (text, jsonl)");
  cmd->add_option("--threshold", options->threshold,
                  "multi-label models: a text has every label whose probability (sigmoid) is above this "
                  "(default 0.5)");
  add_long_text_flags(cmd, options->long_texts);
  cmd->add_option("--input-format", options->input_format,
                  "text (one example per line; pairs: two TSV columns), or a table: tsv or csv (with a "
                  "header row) or jsonl (one JSON object per line)")
      ->capture_default_str();
  cmd->add_option("--text-column,--text-field", options->table.text, "tables: the column (field) of the text")
      ->capture_default_str();
  cmd->add_option("--pair-column,--pair-field", options->table.pair,
                  "tables, pair models: the column (field) of the second text")
      ->capture_default_str();
  cmd->add_flag("!--no-header", options->table.header,
                "tsv, csv: the files have no header row; name columns by number (--text-column 2)");
  cmd->add_option("--id-column,--id-field", options->table.id,
                  "tables: a column (field) carried into every output row as \"id\"");
  cmd->add_option("--shard", options->shard,
                  "classify only shard K/N (every N-th batch of lines, from the K-th) and write a shard file "
                  "for classify-merge instead of the results");
  add_schedule_flags(cmd, options->schedule);
  add_precision_flag(cmd, options->precision);
  cmd->callback([options] { run_classify(*options); });
}

namespace {

void run_classify_merge(const MergeOptions& options) {
  std::unique_ptr<OutputFile> output_file;
  if (!options.output.empty()) output_file = std::make_unique<OutputFile>(options.output);
  const classify::Summary summary =
      classify::merge_shards(options.shards, output_file ? output_file->stream() : std::cout);
  if (output_file) output_file->commit();
  if (!options.quiet)
    spdlog::info("merged {} shard file(s): {} rows for {} input lines", options.shards.size(), summary.lines,
                 summary.lines_read);
  warn_about(summary);
}

}  // namespace

void register_classify_merge(CLI::App& app) {
  auto options = std::make_shared<MergeOptions>();
  CLI::App* cmd = app.add_subcommand(
      "classify-merge",
      "join the shard files of `classify --shard K/N` into the output of one unsharded run");
  cmd->add_option("shards", options->shards, "every shard's file, in any order")->required();
  cmd->add_option("-o,--output", options->output,
                  "write the merged results to this file (through a temporary renamed on success) instead of "
                  "stdout");
  cmd->add_flag("-q,--quiet", options->quiet, "no summary line");
  cmd->callback([options] { run_classify_merge(*options); });
}

}  // namespace fcabert::cli
