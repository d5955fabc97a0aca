#include "fcabert/shard.h"

#include <stdexcept>

#include "fcabert/error.h"

namespace fcabert {

void validate_shard(const Shard& shard, const std::string& option) {
  if (shard.count < 1 || shard.index < 1 || shard.index > shard.count)
    throw Error(option + " '" + shard.to_string() + "': need 1 <= K <= N (shard K of N)");
}

Shard parse_shard(const std::string& text, const std::string& option) {
  const size_t slash = text.find('/');
  Shard shard;
  try {
    if (slash == std::string::npos) throw std::invalid_argument("no slash");
    size_t used = 0;
    shard.index = std::stoll(text.substr(0, slash), &used);
    if (used != slash) throw std::invalid_argument("junk");
    shard.count = std::stoll(text.substr(slash + 1), &used);
    if (used != text.size() - slash - 1) throw std::invalid_argument("junk");
  } catch (const std::exception&) {
    throw Error(option + " '" + text + "': expected K/N, e.g. 2/8 (shard K of N, 1-based)");
  }
  validate_shard(shard, option);
  return shard;
}

}  // namespace fcabert
