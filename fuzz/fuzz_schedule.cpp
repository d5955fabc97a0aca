// libFuzzer target: the FCA schedule parser (--keep-ratios, --clusters, --pooling) and what
// is computed from a schedule that parses: validation against a layer count and the
// per-layer shapes for a few sequence lengths. Input: "RATIOS\nCLUSTERS\nPOOLING".
#include <charconv>
#include <cstdint>
#include <string_view>

#include "fcabert/error.h"
#include "fcabert/fca.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  const size_t first = input.find('\n');
  const std::string_view ratios = input.substr(0, first);
  std::string_view rest = first == std::string_view::npos ? std::string_view() : input.substr(first + 1);
  const size_t second = rest.find('\n');
  const std::string_view clusters_text = rest.substr(0, second);
  const std::string_view pooling = second == std::string_view::npos ? "weighted" : rest.substr(second + 1);
  int64_t clusters = 0;
  std::from_chars(clusters_text.data(), clusters_text.data() + clusters_text.size(), clusters);
  try {
    const fcabert::FcaSchedule schedule = fcabert::fca::parse_schedule(ratios, clusters, pooling);
    const auto layers = static_cast<int64_t>(schedule.keep_ratios.size());
    fcabert::fca::validate_schedule(schedule, layers);
    if (layers > 64 || schedule.clusters > 1'000'000) return 0;  // keep the shape walk cheap
    for (int64_t n0 : {1, 2, 7, 128, 512}) {
      const auto shapes = fcabert::fca::schedule_shapes(schedule, layers, n0);
      int64_t rows = n0;
      for (const auto& shape : shapes) {
        if (shape.rows_in != rows) __builtin_trap();
        const int64_t out = shape.fine + shape.clusters;
        if (out < 1 || out > rows) __builtin_trap();
        rows = out;
      }
    }
  } catch (const fcabert::Error&) {
  }
  return 0;
}
