// Several --flops-target values and the file names they give (include/fcabert/calibrate.h).
#include <algorithm>
#include <cstdio>
#include <string>
#include <vector>

#include "fcabert/calibrate.h"
#include "fcabert/error.h"

namespace fcabert::calibrate {

std::vector<double> parse_targets(const std::string& text) {
  std::vector<double> targets;
  size_t begin = 0;
  while (begin <= text.size()) {
    const size_t comma = std::min(text.find(',', begin), text.size());
    const std::string item = text.substr(begin, comma - begin);
    size_t used = 0;
    double value = 0;
    try {
      value = std::stod(item, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    while (used < item.size() && item[used] == ' ') ++used;
    if (item.empty() || used != item.size())
      throw Error("--flops-target '" + text +
                  "': expected a number in (0, 1] or a comma-separated list, e.g. 0.5");
    targets.push_back(value);
    begin = comma + 1;
  }
  return targets;
}

std::string target_text(double target) {
  char text[32];
  std::snprintf(text, sizeof text, "%g", target);
  return text;
}

std::string output_for(const std::string& pattern, double target) {
  static const std::string kPlaceholder = "{target}";
  std::string out = pattern;
  const size_t at = out.find(kPlaceholder);
  if (at != std::string::npos) out.replace(at, kPlaceholder.size(), target_text(target));
  return out;
}

}  // namespace fcabert::calibrate
