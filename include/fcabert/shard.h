#pragma once
// One job split over workers or machines: shard K of N (1-based), as `--shard K/N` names it.
// What a shard holds is each command's business (eval: every N-th example, round-robin;
// classify: every N-th batch of input lines, include/fcabert/classify.h); this is the shared
// vocabulary and the one parser of "K/N".
#include <cstdint>
#include <string>

namespace fcabert {

struct Shard {
  int64_t index = 1;  // K, 1-based
  int64_t count = 1;  // N

  // Whether the 0-based item `i` (an example, a batch) belongs to this shard: i % N == K - 1.
  bool owns(int64_t i) const { return i % count == index - 1; }
  // "K/N".
  std::string to_string() const { return std::to_string(index) + "/" + std::to_string(count); }
};

// Parses "K/N" with 1 <= K <= N. Throws fcabert::Error naming `option` (e.g. "--shard") and
// the text for anything else.
Shard parse_shard(const std::string& text, const std::string& option = "--shard");

// Throws fcabert::Error (naming `option`) unless 1 <= K <= N.
void validate_shard(const Shard& shard, const std::string& option = "--shard");

}  // namespace fcabert
