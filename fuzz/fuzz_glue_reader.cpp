// libFuzzer target: the GLUE TSV readers. The first byte picks the task (all nine) and
// whether malformed rows are skipped; the rest is the file's text.
#include <cstdint>
#include <string>

#include "fcabert/error.h"
#include "fcabert/glue.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  const auto& tasks = fcabert::glue::all_tasks();
  const auto task = tasks[data[0] % tasks.size()];
  fcabert::glue::ReadOptions options;
  options.skip_bad_rows = (data[0] & 0x80) != 0;
  const std::string text(reinterpret_cast<const char*>(data + 1), size - 1);
  try {
    const auto split = fcabert::glue::parse_split(task, text, "fuzz/dev.tsv", options);
    const auto& info = fcabert::glue::task_info(task);
    for (const auto& example : split.examples) {
      if (example.line < 1) __builtin_trap();
      if (!info.regression &&
          (example.label < 0 || example.label >= static_cast<int>(info.label_names.size())))
        __builtin_trap();
    }
  } catch (const fcabert::Error&) {
  }
  return 0;
}
