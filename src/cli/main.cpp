// fcabert: the command-line entry point. Parses the global flags, dispatches to a
// subcommand and turns any exception into one clear error line and exit code 1.
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <cstdlib>
#include <filesystem>
#include <iostream>

#include "cli/commands.h"
#include "fcabert/engine.h"
#include "fcabert/error.h"
#include "io/output_file.h"

namespace fcabert::cli {

namespace {

constexpr const char* kDefaultModelFile = "sst2-minilm-l6.fcab";

// The folder of the running executable (Linux: /proc/self/exe); empty if it cannot be read.
std::filesystem::path executable_dir() {
  std::error_code error;
  const std::filesystem::path exe = std::filesystem::read_symlink("/proc/self/exe", error);
  return error ? std::filesystem::path() : exe.parent_path();
}

}  // namespace

std::string default_model_path() {
  if (const char* env = std::getenv("FCABERT_DEFAULT_MODEL"); env && *env) return env;
  // Relative to the executable, so that an installed (or moved) prefix works from any
  // directory: PREFIX/bin/fcabert -> PREFIX/share/fcabert/models/ (cmake --install), and
  // build/fcabert -> build/share/fcabert/models/ (a link to models/ made by CMake).
  const std::filesystem::path dir = executable_dir();
  const std::filesystem::path installed = dir / ".." / "share" / "fcabert" / "models" / kDefaultModelFile;
  const std::filesystem::path build_tree = dir / "share" / "fcabert" / "models" / kDefaultModelFile;
  std::error_code error;
  for (const auto& candidate : {installed, build_tree}) {
    // canonical: reports and --help name the file itself, not the build tree's link to it.
    if (!std::filesystem::is_regular_file(candidate, error)) continue;
    const std::filesystem::path file = std::filesystem::canonical(candidate, error);
    return (error ? candidate.lexically_normal() : file).string();
  }
  // Neither is there: name the installed location, so that the load error says where the
  // model was expected.
  return installed.lexically_normal().string();
}

}  // namespace fcabert::cli

namespace {

// Logs go to stderr; results go to stdout. Default level info (the summary lines).
void configure_logging() {
  auto logger = spdlog::stderr_color_mt("fcabert");
  logger->set_pattern("[%^%l%$] %v");
  spdlog::set_default_logger(logger);
  spdlog::set_level(spdlog::level::info);
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"fcabert: BERT text classification on CPU with FCA token reduction"};
  app.set_version_flag("--version", std::string("fcabert ") + fcabert::version());
  app.require_subcommand(1);
  app.fallthrough();  // global flags may also follow the subcommand
  configure_logging();
  // An interrupted run leaves no half-written output file: SIGINT / SIGTERM remove the open
  // temporaries and exit 130 / 143 (src/io/output_file.h). The library only does it if asked.
  fcabert::remove_temporaries_on_signals();
  // Option callbacks run before the subcommand's callback, so the level is set in time.
  app.add_flag_function(
      "-v,--verbose",
      [](std::int64_t count) { spdlog::set_level(count >= 2 ? spdlog::level::trace : spdlog::level::debug); },
      "more logging on stderr (-vv for trace)");
  fcabert::cli::register_classify(app);
  fcabert::cli::register_tokenize(app);
  fcabert::cli::register_inspect(app);
  fcabert::cli::register_profile(app);
  fcabert::cli::register_eval(app);
  fcabert::cli::register_eval_merge(app);
  fcabert::cli::register_calibrate(app);
  fcabert::cli::register_bench(app);

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
