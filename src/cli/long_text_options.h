#pragma once
// The flags for texts longer than --max-len that classify and profile share: --long
// truncate|window, --stride and --max-windows (include/fcabert/classify.h describes windows).
#include <CLI/CLI.hpp>
#include <cstdint>
#include <optional>
#include <string>

#include "fcabert/classify.h"

namespace fcabert::cli {

struct LongTextFlags {
  std::string mode = "truncate";               // --long
  std::optional<int64_t> stride, max_windows;  // only with --long window
};

void add_long_text_flags(CLI::App* cmd, LongTextFlags& flags);

// Sets long_texts, stride and max_windows of `options` from the flags. Throws fcabert::Error
// for an unknown --long, or --stride / --max-windows without --long window.
void apply_long_text_flags(const LongTextFlags& flags, classify::Options& options);

}  // namespace fcabert::cli
