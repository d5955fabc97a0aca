// Shard files of classify --shard K/N and their merge (include/fcabert/classify_shards.h).
#include <algorithm>
#include <fstream>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <ostream>
#include <utility>

#include "fcabert/classify_shards.h"
#include "fcabert/digest.h"
#include "fcabert/error.h"
#include "fcabert/fca.h"

namespace fcabert::classify {
namespace {

using Json = nlohmann::ordered_json;
constexpr const char* kShardFormat = "fcabert-classify-shard";
constexpr int kShardVersion = 1;

std::string dump(const Json& json) {
  return json.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

// The fields of a header that the shards of one job must share, with their names for errors.
std::vector<std::pair<std::string, std::string>> compared_fields(const ShardHeader& h) {
  return {{"shard count", std::to_string(h.shard.count)},
          {"model (SHA-256 of the file)", h.model_sha256},
          {"precision", h.precision},
          {"fcabert version", h.fcabert_version},
          {"schedule", h.schedule},
          {"batch size", std::to_string(h.batch_size)},
          {"max_len", std::to_string(h.max_len)},
          {"--skip-bad-rows setting", h.skip_bad_rows ? "on" : "off"},
          {"output settings", h.output},
          {"preamble", h.preamble}};
}

Json header_json(const ShardHeader& h) {
  return {{"format", kShardFormat},
          {"format_version", kShardVersion},
          {"shard", h.shard.index},
          {"shard_count", h.shard.count},
          {"fcabert_version", h.fcabert_version},
          {"model", h.model},
          {"model_sha256", h.model_sha256},
          {"precision", h.precision},
          {"schedule", Json::parse(h.schedule)},
          {"batch_size", h.batch_size},
          {"max_len", h.max_len},
          {"skip_bad_rows", h.skip_bad_rows},
          {"output", h.output},
          {"preamble", h.preamble}};
}

ShardHeader header_from_json(const Json& in) {
  if (!in.is_object() || in.value("format", std::string()) != kShardFormat)
    throw Error("not an fcabert classify shard file (its first line has no \"format\": \"" +
                std::string(kShardFormat) + "\"); give the files that classify --shard wrote");
  if (in.at("format_version").get<int>() != kShardVersion)
    throw Error("shard file format version " + in.at("format_version").dump() +
                " is not supported (this fcabert reads " + std::to_string(kShardVersion) + ")");
  ShardHeader h;
  h.shard = {in.at("shard").get<int64_t>(), in.at("shard_count").get<int64_t>()};
  validate_shard(h.shard, "its shard");
  h.fcabert_version = in.at("fcabert_version").get<std::string>();
  h.model = in.at("model").get<std::string>();
  h.model_sha256 = in.at("model_sha256").get<std::string>();
  h.precision = in.at("precision").get<std::string>();
  h.schedule = dump(in.at("schedule"));
  h.batch_size = in.at("batch_size").get<int64_t>();
  if (h.batch_size < 1) throw Error("its batch_size must be at least 1");
  h.max_len = in.at("max_len").get<int64_t>();
  h.skip_bad_rows = in.at("skip_bad_rows").get<bool>();
  h.output = in.at("output").get<std::string>();
  h.preamble = in.at("preamble").get<std::string>();
  return h;
}

// Rows of batch `b` in an input of `lines` lines.
int64_t batch_rows(int64_t b, int64_t batch_size, int64_t lines) {
  return std::max<int64_t>(0, std::min(batch_size, lines - b * batch_size));
}

// One shard file being merged: its header, its end record, then its batches in order.
class ShardFile {
 public:
  explicit ShardFile(std::string path) : path_(std::move(path)), in_(path_, std::ios::binary) {
    if (!in_) throw Error(path_ + ": cannot open the shard file (check the path and the permissions)");
    wrap([&] {
      std::string first;
      if (!std::getline(in_, first)) throw Error("empty file, not a classify shard file");
      const Json header = Json::parse(first, nullptr, false);
      if (header.is_discarded() || !header.is_object())
        throw Error(
            "not an fcabert classify shard file (its first line is not a JSON object); give the files "
            "that classify --shard wrote");
      header_ = header_from_json(header);
      read_end();
    });
  }

  const std::string& path() const { return path_; }
  const ShardHeader& header() const { return header_; }
  const Summary& end() const { return end_; }

  // Reads the next batch record and checks that it is batch `b` with `rows` rows; returns its
  // rendered bytes.
  std::string next_batch(int64_t b, int64_t rows) {
    std::string text;
    wrap([&] {
      const Json record = next_record("batch " + std::to_string(b));
      if (record.value("batch", int64_t{-1}) != b ||
          record.value("first_line", int64_t{-1}) != b * header_.batch_size ||
          record.value("rows", int64_t{-1}) != rows)
        throw Error("expected batch " + std::to_string(b) + " (" + std::to_string(rows) +
                    " rows from line index " + std::to_string(b * header_.batch_size) + "), found " +
                    dump(record).substr(0, 120) + "; the file is damaged: rerun this shard");
      text = record.at("text").get<std::string>();
    });
    return text;
  }

  // Checks that the end record follows the last batch.
  void expect_end() {
    wrap([&] {
      if (!next_record("the end record").value("end", false))
        throw Error("more batches than its input has; the file is damaged: rerun this shard");
    });
  }

 private:
  // Runs `step`, prefixing any error with the file's name.
  template <typename Step>
  void wrap(Step step) {
    try {
      step();
    } catch (const Error& e) {
      throw Error(path_ + ": " + e.what());
    } catch (const nlohmann::json::exception& e) {
      throw Error(path_ + ": malformed shard file (" + std::string(e.what()) + ")");
    }
  }

  static Json parse(const std::string& line) {
    Json json = Json::parse(line, nullptr, false);
    if (json.is_discarded()) throw Error("a line is not JSON; the file is damaged: rerun this shard");
    return json;
  }

  Json next_record(const std::string& what) {
    std::string line;
    if (!std::getline(in_, line))
      throw Error("ends before " + what + "; the file is damaged: rerun this shard");
    return parse(line);
  }

  // The last line must be the end record; reads it without reading the batches before it.
  void read_end() {
    const std::streamoff after_header = in_.tellg();
    if (after_header < 0)  // the header line has no newline: nothing follows it
      throw Error("shard " + header_.shard.to_string() +
                  " is incomplete (no end record): its run failed or is still running; rerun that shard");
    in_.seekg(0, std::ios::end);
    const std::streamoff size = in_.tellg();
    const std::streamoff tail_size = std::min<std::streamoff>(size - after_header, 1 << 16);
    std::string tail(static_cast<size_t>(tail_size), '\0');
    in_.seekg(size - tail_size);
    in_.read(tail.data(), tail_size);
    if (!tail.empty() && tail.back() == '\n') tail.pop_back();
    const size_t start = tail.rfind('\n');
    const std::string last = start == std::string::npos ? tail : tail.substr(start + 1);
    const Json record = Json::parse(last, nullptr, false);
    if (record.is_discarded() || !record.is_object() || !record.value("end", false))
      throw Error("shard " + header_.shard.to_string() +
                  " is incomplete (no end record): its run failed or is still running; rerun that shard");
    end_.lines_read = record.at("lines_read").get<int64_t>();
    end_.input_sha256 = record.at("input_sha256").get<std::string>();
    end_.lines = record.at("rows").get<int64_t>();
    end_.empty = record.at("empty").get<int64_t>();
    end_.truncated = record.at("truncated").get<int64_t>();
    end_.skipped = record.at("skipped").get<int64_t>();
    end_.max_len = header_.max_len;
    in_.clear();
    in_.seekg(after_header);
  }

  std::string path_;
  std::ifstream in_;
  ShardHeader header_;
  Summary end_;
};

// Throws unless `file` is a shard of the same job as `first`.
void check_same_job(const ShardFile& first, const ShardFile& file) {
  const auto a = compared_fields(first.header()), b = compared_fields(file.header());
  for (size_t i = 0; i < a.size(); ++i)
    if (a[i].second != b[i].second)
      throw Error(file.path() + " and " + first.path() + " differ in " + a[i].first + ": " +
                  b[i].second.substr(0, 200) + " against " + a[i].second.substr(0, 200) +
                  "; merge only the shards of one job");
  if (file.end().lines_read != first.end().lines_read || file.end().input_sha256 != first.end().input_sha256)
    throw Error(file.path() + ": it read other input lines than " + first.path() + " (" +
                std::to_string(file.end().lines_read) + " lines, SHA-256 " +
                file.end().input_sha256.substr(0, 12) + "... against " +
                std::to_string(first.end().lines_read) + ", " + first.end().input_sha256.substr(0, 12) +
                "...); every shard must read the same input");
}

// Orders the files by shard index; throws for a shard given twice or missing.
std::vector<ShardFile*> by_shard(std::vector<std::unique_ptr<ShardFile>>& files) {
  const int64_t count = files.front()->header().shard.count;
  std::vector<ShardFile*> ordered(static_cast<size_t>(count), nullptr);
  for (auto& file : files) {
    ShardFile*& slot = ordered[static_cast<size_t>(file->header().shard.index - 1)];
    if (slot)
      throw Error("shard " + file->header().shard.to_string() + " appears in both " + slot->path() + " and " +
                  file->path() + "; give each shard once");
    slot = file.get();
  }
  std::string missing;
  for (int64_t k = 1; k <= count; ++k)
    if (!ordered[static_cast<size_t>(k - 1)]) missing += (missing.empty() ? "" : ", ") + std::to_string(k);
  if (!missing.empty())
    throw Error("shard(s) " + missing + " of " + std::to_string(count) +
                " are missing; give classify-merge every shard's file");
  return ordered;
}

// Throws unless each shard's end record counts the rows of exactly its batches.
void check_row_counts(const std::vector<ShardFile*>& shards) {
  const ShardHeader& h = shards.front()->header();
  const int64_t lines = shards.front()->end().lines_read;
  std::vector<int64_t> expected(shards.size(), 0);
  for (int64_t b = 0; b * h.batch_size < lines; ++b)
    expected[static_cast<size_t>(b % h.shard.count)] += batch_rows(b, h.batch_size, lines);
  for (size_t k = 0; k < shards.size(); ++k)
    if (shards[k]->end().lines != expected[k])
      throw Error(shards[k]->path() + ": it holds " + std::to_string(shards[k]->end().lines) +
                  " rows, not the " + std::to_string(expected[k]) +
                  " of its batches; the file is damaged: rerun this shard");
}

}  // namespace

ShardHeader shard_header(const Session& session, const Options& options, std::string output,
                         std::string preamble) {
  ShardHeader h;
  h.shard = options.shard;
  h.fcabert_version = version();
  h.model = session.model().path();
  h.model_sha256 = file_sha256(session.model().path());
  h.precision = session.model().precision().arithmetic;
  h.schedule = dump(fca::schedule_to_json(session.schedule()));
  h.batch_size = options.batch_size;
  h.max_len = resolve_max_len(options.max_len, session.model().info());
  h.skip_bad_rows = options.skip_bad_rows;
  h.output = std::move(output);
  h.preamble = std::move(preamble);
  return h;
}

ShardWriter::ShardWriter(std::ostream& out, ShardHeader header) : out_(out), header_(std::move(header)) {
  validate_shard(header_.shard);
  if (header_.batch_size < 1) throw Error("shard file: the batch size must be at least 1");
  out_ << dump(header_json(header_)) << '\n';
  if (!out_) throw Error("shard file: cannot write its header (disk full?)");
}

void ShardWriter::write_batch(int64_t first_line, int64_t rows, std::string_view rendered) {
  const int64_t b = first_line / header_.batch_size;
  if (first_line % header_.batch_size != 0 || !header_.shard.owns(b) || b < next_batch_ || rows < 1 ||
      rows > header_.batch_size)
    throw Error("shard file: batch at line index " + std::to_string(first_line) + " with " +
                std::to_string(rows) + " rows is not a batch of shard " + header_.shard.to_string() +
                " after batch " + std::to_string(next_batch_ - 1));
  next_batch_ = b + 1;
  const Json record = {
      {"batch", b}, {"first_line", first_line}, {"rows", rows}, {"text", std::string(rendered)}};
  out_ << dump(record) << '\n';
  if (!out_) throw Error("shard file: cannot write batch " + std::to_string(b) + " (disk full?)");
}

void ShardWriter::finish(const Summary& summary) {
  const Json record = {{"end", true},
                       {"lines_read", summary.lines_read},
                       {"input_sha256", summary.input_sha256},
                       {"rows", summary.lines},
                       {"empty", summary.empty},
                       {"truncated", summary.truncated},
                       {"skipped", summary.skipped}};
  out_ << dump(record) << '\n';
  out_.flush();
  if (!out_) throw Error("shard file: cannot write its end record (disk full?)");
}

Summary merge_shards(const std::vector<std::string>& paths, std::ostream& out) {
  if (paths.empty()) throw Error("classify-merge needs the shard files that classify --shard wrote");
  std::vector<std::unique_ptr<ShardFile>> files;
  for (const std::string& path : paths) files.push_back(std::make_unique<ShardFile>(path));
  for (const auto& file : files) check_same_job(*files.front(), *file);
  const std::vector<ShardFile*> shards = by_shard(files);
  check_row_counts(shards);

  const ShardHeader& h = shards.front()->header();
  Summary merged = shards.front()->end();
  merged.lines = merged.empty = merged.truncated = merged.skipped = 0;
  for (const ShardFile* shard : shards) {
    merged.lines += shard->end().lines;
    merged.empty += shard->end().empty;
    merged.truncated += shard->end().truncated;
    merged.skipped += shard->end().skipped;
  }
  out << h.preamble;
  for (int64_t b = 0; b * h.batch_size < merged.lines_read; ++b)
    out << shards[static_cast<size_t>(b % h.shard.count)]->next_batch(
        b, batch_rows(b, h.batch_size, merged.lines_read));
  for (ShardFile* shard : shards) shard->expect_end();
  out.flush();
  if (!out) throw Error("classify-merge: cannot write the merged output (disk full?)");
  return merged;
}

}  // namespace fcabert::classify
