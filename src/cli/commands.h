#pragma once
// The fcabert command line: main.cpp builds the CLI::App and each subcommand lives in its
// own cmd_<name>.cpp, which registers its options and a callback. Callbacks only parse and
// call the library; they throw fcabert::Error, which main() turns into one error line.
#include <CLI/CLI.hpp>

#include "cli/default_model.h"  // every subcommand's -m/--model default

namespace fcabert::cli {

void register_classify(CLI::App& app);
void register_classify_merge(CLI::App& app);
void register_tokenize(CLI::App& app);
void register_inspect(CLI::App& app);
void register_profile(CLI::App& app);
void register_eval(CLI::App& app);
void register_eval_merge(CLI::App& app);
void register_calibrate(CLI::App& app);

}  // namespace fcabert::cli
