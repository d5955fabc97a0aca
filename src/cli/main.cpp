// fcabert: the command-line entry point. Parses the global flags, dispatches to a
// subcommand and turns any exception into one clear error line and exit code 1.
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <cstdlib>
#include <filesystem>
#include <iostream>

#include "cli/commands.h"
#include "fcabert/error.h"

namespace fcabert::cli {

std::string default_model_path() {
  if (const char* env = std::getenv("FCABERT_DEFAULT_MODEL"); env && *env) return env;
  return (std::filesystem::path(FCABERT_SOURCE_DIR) / "models" / "sst2-minilm-l6.fcab").string();
}

}  // namespace fcabert::cli

namespace {

void configure_logging(int verbosity) {
  auto logger = spdlog::stderr_color_mt("fcabert");
  logger->set_pattern("[%^%l%$] %v");
  spdlog::set_default_logger(logger);
  spdlog::set_level(verbosity >= 2 ? spdlog::level::debug
                    : verbosity == 1 ? spdlog::level::info
                    : verbosity < 0  ? spdlog::level::err
                                     : spdlog::level::warn);
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"fcabert: BERT text classification on CPU with FCA token reduction"};
  app.set_version_flag("--version", std::string("fcabert ") + FCABERT_VERSION);
  app.require_subcommand(1);
  int verbose = 0;
  app.add_flag("-v,--verbose", verbose, "more logging on stderr (-vv for debug)");
  fcabert::cli::register_classify(app);
  fcabert::cli::register_tokenize(app);
  fcabert::cli::register_inspect(app);
  app.parse_complete_callback([&] { configure_logging(verbose); });

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  } catch (const fcabert::Error& e) {
    std::cerr << "fcabert: error: " << e.what() << "\n";
    return 1;
  } catch (const std::exception& e) {
    std::cerr << "fcabert: internal error: " << e.what() << "\n";
    return 2;
  }
  return 0;
}
