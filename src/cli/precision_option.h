#pragma once
// The --precision flag shared by classify, eval, profile and fcabert-bench:
//   --precision fp32|bf16|int8|auto   the arithmetic of the encoder's GEMMs (LoadOptions::precision)
#include <CLI/CLI.hpp>
#include <string>

#include "fcabert/engine.h"

namespace fcabert::cli {

// Adds --precision to `command`, storing the name ("fp32" by default) in `precision`.
void add_precision_flag(CLI::App* command, std::string& precision);

// LoadOptions for `threads` and a --precision value; throws fcabert::Error for a bad name.
LoadOptions load_options(int threads, const std::string& precision);

}  // namespace fcabert::cli
