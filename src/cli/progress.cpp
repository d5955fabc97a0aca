#include "cli/progress.h"

#include <spdlog/spdlog.h>
#include <unistd.h>

#include <cstdio>

namespace fcabert::cli {

Progress::Progress(std::string what, bool enabled)
    : what_(std::move(what)),
      enabled_(enabled),
      draw_(enabled && isatty(STDERR_FILENO)),
      start_(std::chrono::steady_clock::now()),
      last_draw_(start_) {}

double Progress::seconds() const {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
}

void Progress::update(int64_t items, uint64_t bytes_done, uint64_t bytes_total) {
  if (!draw_) return;
  auto now = std::chrono::steady_clock::now();
  if (now - last_draw_ < std::chrono::milliseconds(200)) return;
  last_draw_ = now;
  const double rate = items / std::max(seconds(), 1e-9);
  if (bytes_total > 0) {
    const double fraction = std::min(1.0, static_cast<double>(bytes_done) / bytes_total);
    const int width = 30, filled = static_cast<int>(fraction * width);
    std::fprintf(stderr, "\r[%-*s] %3.0f%%  %lld %s  %.1f/s ", width, std::string(filled, '#').c_str(),
                 fraction * 100, static_cast<long long>(items), what_.c_str(), rate);
  } else {
    std::fprintf(stderr, "\r%lld %s  %.1f/s ", static_cast<long long>(items), what_.c_str(), rate);
  }
  std::fflush(stderr);
}

void Progress::finish(int64_t items) {
  if (draw_) std::fprintf(stderr, "\r\033[K");
  if (!enabled_) return;
  const double secs = seconds();
  spdlog::info("{} {} in {:.2f} s ({:.1f} {}/s)", items, what_, secs, items / std::max(secs, 1e-9), what_);
}

}  // namespace fcabert::cli
