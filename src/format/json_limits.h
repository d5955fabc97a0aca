#pragma once
// Bounded JSON for untrusted model files. nlohmann::json parses iteratively, but dump() and
// comparisons recurse once per nesting level: a header holding a million nested arrays
// parses fine and then overflows the stack when an error message quotes it. Every JSON text
// the reader parses goes through parse_bounded (nesting refused past kMaxJsonDepth, far
// deeper than any real header: 3 levels), and messages quote values through brief().
#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <type_traits>

#include "fcabert/error.h"

namespace fcabert::format {

inline constexpr int kMaxJsonDepth = 64;

// Thrown out of the parser callback when the nesting gets too deep; the caller turns it
// into a message naming the file.
struct JsonTooDeep {};

// An extra check run for every parse event (the header's duplicate-key watch); may be empty.
using JsonWatch = std::function<void(int depth, nlohmann::json::parse_event_t event, nlohmann::json& parsed)>;

// Parses `text` as Json (nlohmann::json or ordered_json); throws JsonTooDeep for nesting
// deeper than kMaxJsonDepth and nlohmann::json::parse_error for invalid JSON.
template <class Json>
Json parse_bounded(std::string_view text, const JsonWatch& watch = nullptr) {
  auto callback = [&](int depth, nlohmann::json::parse_event_t event, Json& parsed) {
    using Event = nlohmann::json::parse_event_t;
    if ((event == Event::object_start || event == Event::array_start) && depth >= kMaxJsonDepth)
      throw JsonTooDeep{};
    if constexpr (std::is_same_v<Json, nlohmann::json>)
      if (watch) watch(depth, event, parsed);
    return true;
  };
  return Json::parse(text.begin(), text.end(), callback);
}

// A value for an error message: its JSON text, cut to `limit` characters.
inline std::string brief(const nlohmann::json& value, size_t limit = 60) {
  std::string text = value.dump();
  if (text.size() > limit) text = text.substr(0, limit) + "...";
  return text;
}

}  // namespace fcabert::format
