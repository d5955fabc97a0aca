#include "cli/app.h"

#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <cstdint>
#include <exception>
#include <iostream>

#include "fcabert/error.h"

namespace fcabert::cli {

void configure_logging(CLI::App& app, const std::string& program) {
  auto logger = spdlog::stderr_color_mt(program);
  logger->set_pattern("[%^%l%$] %v");
  spdlog::set_default_logger(logger);
  spdlog::set_level(spdlog::level::info);
  // Option callbacks run before the subcommand's callback, so the level is set in time.
  app.add_flag_function(
      "-v,--verbose",
      [](std::int64_t count) { spdlog::set_level(count >= 2 ? spdlog::level::trace : spdlog::level::debug); },
      "more logging on stderr (-vv for trace)");
}

int parse_and_run(CLI::App& app, int argc, char** argv, const std::string& program) {
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  } catch (const Error& e) {
    std::cerr << program << ": error: " << e.what() << "\n";
    return 1;
  } catch (const std::exception& e) {
    std::cerr << program << ": internal error: " << e.what() << "\n";
    return 2;
  }
  return 0;
}

}  // namespace fcabert::cli
