#pragma once
// A one-line progress display on stderr (only when stderr is a terminal) and the summary
// line at the end of a long job.
#include <chrono>
#include <cstdint>
#include <string>

namespace fcabert::cli {

class Progress {
 public:
  // `enabled` = the user did not ask for --quiet; the bar itself also needs a terminal.
  Progress(std::string what, bool enabled);

  // Called after each batch; redraws at most a few times per second.
  void update(int64_t items, uint64_t bytes_done, uint64_t bytes_total);
  // Clears the bar and logs "N <what> in S s (R <what>/s)".
  void finish(int64_t items);
  double seconds() const;

 private:
  std::string what_;
  bool enabled_;
  bool draw_;
  std::chrono::steady_clock::time_point start_, last_draw_;
};

}  // namespace fcabert::cli
