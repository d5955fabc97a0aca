// fcabert: the command-line entry point. Parses the global flags, dispatches to a
// subcommand and turns any exception into one clear error line and exit code 1.
#include <string>

#include "cli/app.h"
#include "cli/commands.h"
#include "fcabert/engine.h"
#include "io/output_file.h"

int main(int argc, char** argv) {
  CLI::App app{"fcabert: BERT text classification on CPU with FCA token reduction"};
  app.set_version_flag("--version", std::string("fcabert ") + fcabert::version());
  app.require_subcommand(1);
  app.fallthrough();  // global flags may also follow the subcommand
  fcabert::cli::configure_logging(app, "fcabert");
  // An interrupted run leaves no half-written output file: SIGINT / SIGTERM remove the open
  // temporaries and exit 130 / 143 (src/io/output_file.h). The library only does it if asked.
  fcabert::remove_temporaries_on_signals();
  fcabert::cli::register_classify(app);
  fcabert::cli::register_classify_merge(app);
  fcabert::cli::register_tokenize(app);
  fcabert::cli::register_inspect(app);
  fcabert::cli::register_profile(app);
  fcabert::cli::register_eval(app);
  fcabert::cli::register_eval_merge(app);
  fcabert::cli::register_calibrate(app);
  return fcabert::cli::parse_and_run(app, argc, argv, "fcabert");
}
