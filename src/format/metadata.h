#pragma once
// The "__metadata__" of a model file: a string -> string map whose values are JSON texts
// (config, tokenizer, head, fca, provenance). Parsing validates every value.
#include <nlohmann/json.hpp>
#include <string>

#include "fcabert/config.h"

namespace fcabert::format {

// The format_version strings this build reads.
inline constexpr const char* kReadableVersions = "\"1\"";

// Parses and validates the metadata of the header object `header` (format name and version
// first, then config, tokenizer, head and FCA schedule, each checked against the config).
ModelInfo parse_metadata(const std::string& path, const nlohmann::json& header);

// The "__metadata__" object the writer stores (all values are strings).
nlohmann::ordered_json metadata_to_json(const ModelInfo& info);

nlohmann::ordered_json config_to_json(const BertConfig& config);
nlohmann::ordered_json tokenizer_to_json(const TokenizerConfig& tokenizer, bool include_vocab);
nlohmann::ordered_json head_to_json(const HeadConfig& head);
nlohmann::ordered_json fca_to_json(const FcaSchedule& fca);

}  // namespace fcabert::format
