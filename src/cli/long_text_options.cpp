#include "cli/long_text_options.h"

#include "fcabert/error.h"

namespace fcabert::cli {

void add_long_text_flags(CLI::App* cmd, LongTextFlags& flags) {
  const classify::Options defaults;
  cmd->add_option("--long", flags.mode,
                  "texts longer than --max-len: truncate, or window (single-text models: consecutive "
                  "windows of --max-len tokens, their logits averaged)")
      ->capture_default_str();
  cmd->add_option("--stride", flags.stride,
                  "--long window: word pieces shared by consecutive windows (default: a quarter of a window, "
                  "(max-len - 2) / 4)");
  cmd->add_option("--max-windows", flags.max_windows,
                  "--long window: at most this many windows per text; the rest is truncated (" +
                      std::to_string(defaults.max_windows) + ")");
}

void apply_long_text_flags(const LongTextFlags& flags, classify::Options& options) {
  if (flags.mode == "window") {
    options.long_texts = classify::LongTexts::kWindow;
  } else if (flags.mode != "truncate") {
    throw Error("--long '" + flags.mode + "': use truncate or window");
  } else if (flags.stride || flags.max_windows) {
    throw Error("--stride and --max-windows apply to --long window");
  }
  options.stride = flags.stride.value_or(options.stride);
  options.max_windows = flags.max_windows.value_or(options.max_windows);
}

}  // namespace fcabert::cli
