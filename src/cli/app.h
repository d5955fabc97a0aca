#pragma once
// What both executables (fcabert, fcabert-bench) do around their own flags: logs on stderr
// with a -v/--verbose flag, and every exception turned into one error line and an exit code.
#include <CLI/CLI.hpp>
#include <string>

namespace fcabert::cli {

// Sends spdlog to stderr (results go to stdout) at level info, and adds -v/--verbose
// (debug; -vv trace) to `app`.
void configure_logging(CLI::App& app, const std::string& program);

// Parses argv, which runs the callbacks; returns the exit code: 0, CLI11's for a parse error
// or --help, 1 for a fcabert::Error and 2 for any other exception, each reported as one line
// "<program>: error: ..." on stderr.
int parse_and_run(CLI::App& app, int argc, char** argv, const std::string& program);

}  // namespace fcabert::cli
