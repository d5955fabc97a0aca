#pragma once
// The output of `classify --shard K/N` and what `classify-merge` does with it (docs/SCALE_OUT.md).
//
// A shard of a classify job (include/fcabert/classify.h: every N-th batch of input lines)
// writes a shard file: JSON lines, first a header with everything the shards of one job must
// share, then one record per batch holding the batch's rendered output (the bytes an unsharded
// run would have printed for those lines, in any format: the caller renders), then an end
// record with the input's line count and SHA-256. A shard that failed or is still running has
// no end record.
//
// merge_shards() writes the rendered output of every batch in input order, so the merged
// output is byte for byte what one unsharded run prints. It refuses, naming the file: a file
// that is not a shard file, an incomplete shard, a shard given twice or missing, and shards of
// different jobs (model SHA-256, precision, engine version, schedule, batch size, max_len,
// --skip-bad-rows, the caller's output settings, or the input lines read).
#include <cstdint>
#include <iosfwd>
#include <string>
#include <string_view>
#include <vector>

#include "fcabert/classify.h"
#include "fcabert/engine.h"
#include "fcabert/shard.h"

namespace fcabert::classify {

// What must agree between the shards of one job, written first in every shard file.
struct ShardHeader {
  Shard shard;
  std::string fcabert_version;
  std::string model;         // the model file's path as given (shown, not compared)
  std::string model_sha256;  // of the model file (compared)
  std::string precision;     // "fp32", "bf16", "int8": what the engine ran
  std::string schedule;      // the Session's FCA schedule as JSON text
  int64_t batch_size = 0;
  int64_t max_len = 0;  // resolved
  bool skip_bad_rows = false;
  std::string output;    // the caller's output settings (format, ...), compared as text
  std::string preamble;  // printed once before the first row (e.g. a TSV header); may be empty
};

// The header for a shard run of `session` with `options` (model digest, precision, schedule
// and versions filled in). `output` and `preamble` are the caller's.
ShardHeader shard_header(const Session& session, const Options& options, std::string output,
                         std::string preamble);

// Writes a shard file to `out`: the header at construction, then each batch, then the end
// record. Stream errors throw fcabert::Error.
class ShardWriter {
 public:
  ShardWriter(std::ostream& out, ShardHeader header);

  // One batch: `rows` input lines from the 0-based line `first_line` (InputLine::index), and
  // the bytes rendered for them.
  void write_batch(int64_t first_line, int64_t rows, std::string_view rendered);
  // The end record, from the run's Summary; a merge refuses a shard file without it.
  void finish(const Summary& summary);

 private:
  std::ostream& out_;
  ShardHeader header_;
  int64_t next_batch_ = 0;  // 0-based batch index within the whole input
};

// Merges the shard files at `paths` (in any order) into `out`: the preamble, then every
// batch's rendered bytes in input order. Checks every file's header and end record before
// the first byte is written. Returns the whole job's Summary (counts summed over shards).
// Throws fcabert::Error naming the file as described above.
Summary merge_shards(const std::vector<std::string>& paths, std::ostream& out);

}  // namespace fcabert::classify
