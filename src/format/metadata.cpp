// Model metadata: parsing + validation of the "__metadata__" values, and their JSON form.
#include "format/metadata.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdlib>
#include <limits>
#include <set>

#include "fcabert/model_file.h"
#include "format/errors.h"
#include "format/header.h"
#include "format/json_limits.h"

namespace fcabert::format {
namespace {

// One metadata value (a JSON object) being read; errors name the file and the key.
class Section {
 public:
  Section(const std::string& path, std::string key, nlohmann::json object)
      : path_(path), key_(std::move(key)), object_(std::move(object)) {}

  Error error(const std::string& what) const {
    return file_error(path_, "metadata \"" + key_ + "\": " + what + "; " + kReconvertHint);
  }

  const nlohmann::json& field(const std::string& name) const {
    const auto found = object_.find(name);
    if (found == object_.end()) throw error("\"" + name + "\" is missing");
    return *found;
  }

  int64_t integer(const std::string& name) const {
    const auto& value = field(name);
    if (value.is_number_unsigned() && value.get<uint64_t>() > uint64_t{std::numeric_limits<int64_t>::max()})
      throw error("\"" + name + "\" is out of range");
    if (!value.is_number_integer()) throw error("\"" + name + "\" must be an integer, got " + brief(value));
    return value.get<int64_t>();
  }

  int64_t positive(const std::string& name) const {
    const int64_t value = integer(name);
    if (value <= 0) throw error("\"" + name + "\" must be positive, got " + std::to_string(value));
    return value;
  }

  double number(const std::string& name) const {
    const auto& value = field(name);
    if (!value.is_number()) throw error("\"" + name + "\" must be a number, got " + brief(value));
    return value.get<double>();
  }

  bool boolean(const std::string& name) const {
    const auto& value = field(name);
    if (!value.is_boolean()) throw error("\"" + name + "\" must be true or false, got " + brief(value));
    return value.get<bool>();
  }

  std::optional<bool> optional_boolean(const std::string& name) const {
    const auto& value = field(name);
    if (value.is_null()) return std::nullopt;
    if (!value.is_boolean()) throw error("\"" + name + "\" must be true, false or null, got " + brief(value));
    return value.get<bool>();
  }

  bool has(const std::string& name) const { return object_.contains(name); }

  std::string string(const std::string& name) const {
    const auto& value = field(name);
    if (!value.is_string()) throw error("\"" + name + "\" must be a string, got " + brief(value));
    return value.get<std::string>();
  }

  std::vector<std::string> strings(const std::string& name) const {
    const auto& value = field(name);
    if (!value.is_array()) throw error("\"" + name + "\" must be an array of strings");
    std::vector<std::string> result;
    result.reserve(value.size());
    for (const auto& item : value) {
      if (!item.is_string())
        throw error("\"" + name + "\"[" + std::to_string(result.size()) + "] must be a string, got " +
                    brief(item));
      result.push_back(item.get<std::string>());
    }
    return result;
  }

  std::vector<double> numbers(const std::string& name) const {
    const auto& value = field(name);
    if (!value.is_array()) throw error("\"" + name + "\" must be an array of numbers");
    std::vector<double> result;
    for (const auto& item : value) {
      if (!item.is_number())
        throw error("\"" + name + "\"[" + std::to_string(result.size()) + "] must be a number, got " +
                    brief(item));
      result.push_back(item.get<double>());
    }
    return result;
  }

 private:
  const std::string& path_;
  std::string key_;
  nlohmann::json object_;
};

// The metadata object: string values only, as safetensors requires.
const nlohmann::json& metadata_object(const std::string& path, const nlohmann::json& header) {
  const auto found = header.find(kMetadataKey);
  if (found == header.end())
    throw file_error(path,
                     "header has no \"__metadata__\": this is a plain safetensors file, not an fcabert model "
                     "file; convert the checkpoint with tools/convert.py");
  if (!found->is_object())
    throw file_error(path, "\"__metadata__\" is not a JSON object; " + std::string(kReconvertHint));
  for (const auto& [key, value] : found->items())
    if (!value.is_string())
      throw file_error(path, "metadata \"" + key +
                                 "\" is not a string (safetensors metadata values are strings); " +
                                 kReconvertHint);
  return *found;
}

std::string metadata_string(const std::string& path, const nlohmann::json& metadata, const std::string& key) {
  const auto found = metadata.find(key);
  if (found == metadata.end())
    throw file_error(path, "metadata has no \"" + key + "\" entry; " + std::string(kReconvertHint));
  return found->get<std::string>();
}

void check_format_name(const std::string& path, const nlohmann::json& metadata) {
  const auto found = metadata.find("format");
  if (found == metadata.end())
    throw file_error(path,
                     "metadata has no \"format\" entry: not an fcabert model file; convert the checkpoint "
                     "with tools/convert.py");
  if (found->get<std::string>() != kFormatName)
    throw file_error(path,
                     "metadata format is \"" + found->get<std::string>() + "\", not \"" + kFormatName +
                         "\": this is not an fcabert model file (a plain safetensors checkpoint?); convert "
                         "it with tools/convert.py");
}

int check_format_version(const std::string& path, const nlohmann::json& metadata) {
  const std::string version = metadata_string(path, metadata, "format_version");
  if (version != std::to_string(kFormatVersion))
    throw file_error(path, "unsupported format_version \"" + version +
                               "\"; this build reads format_version " + kReadableVersions +
                               "; use the fcabert release that wrote it, or re-convert the "
                               "checkpoint with this release's tools/convert.py");
  return kFormatVersion;
}

Section parse_section(const std::string& path, const nlohmann::json& metadata, const std::string& key) {
  const std::string text = metadata_string(path, metadata, key);
  nlohmann::json object;
  try {
    object = parse_bounded<nlohmann::json>(text);
  } catch (const JsonTooDeep&) {
    throw file_error(path, "metadata \"" + key + "\" is nested more than " + std::to_string(kMaxJsonDepth) +
                               " levels deep; " + kReconvertHint);
  } catch (const nlohmann::json::parse_error& e) {
    throw file_error(path,
                     "metadata \"" + key + "\" is not valid JSON (" + e.what() + "); " + kReconvertHint);
  }
  if (!object.is_object())
    throw file_error(path, "metadata \"" + key + "\" is not a JSON object; " + kReconvertHint);
  return Section(path, key, std::move(object));
}

BertConfig parse_config(const Section& section) {
  BertConfig config;
  config.vocab_size = section.positive("vocab_size");
  config.hidden_size = section.positive("hidden_size");
  config.num_layers = section.positive("num_layers");
  config.num_heads = section.positive("num_heads");
  config.intermediate_size = section.positive("intermediate_size");
  config.max_position_embeddings = section.positive("max_position_embeddings");
  config.type_vocab_size = section.positive("type_vocab_size");
  const double eps = section.number("layer_norm_eps");
  if (!(eps > 0 && eps < 1))
    throw section.error("\"layer_norm_eps\" must be in (0, 1), got " + nlohmann::json(eps).dump());
  config.layer_norm_eps = static_cast<float>(eps);
  config.hidden_act = section.string("hidden_act");
  if (config.hidden_act != "gelu")
    throw section.error("\"hidden_act\" is \"" + config.hidden_act +
                        "\"; this build supports only \"gelu\" (erf)");
  config.pooler_act = section.has("pooler_act") ? section.string("pooler_act") : "tanh";  // absent: BERT's
  if (config.pooler_act != "tanh" && config.pooler_act != "relu")
    throw section.error("\"pooler_act\" is \"" + config.pooler_act + "\"; expected \"tanh\" or \"relu\"");
  if (config.hidden_size % config.num_heads != 0)
    throw section.error("hidden_size " + std::to_string(config.hidden_size) +
                        " is not divisible by num_heads " + std::to_string(config.num_heads));
  return config;
}

// A linear scan: four lookups in a 30k-token vocabulary cost less than building a set of it
// (about 4 ms of a MiniLM model load in `perf`).
void check_token_in_vocab(const Section& section, const std::vector<std::string>& vocab,
                          const std::string& key, const std::string& token) {
  if (std::find(vocab.begin(), vocab.end(), token) == vocab.end())
    throw section.error("\"" + key + "\" \"" + token + "\" is not in the vocabulary");
}

TokenizerConfig parse_tokenizer(const Section& section, const BertConfig& config) {
  TokenizerConfig tokenizer;
  tokenizer.lowercase = section.boolean("lowercase");
  tokenizer.strip_accents = section.optional_boolean("strip_accents");
  tokenizer.tokenize_chinese_chars = section.boolean("tokenize_chinese_chars");
  tokenizer.max_len = section.integer("max_len");
  if (tokenizer.max_len < 2 || tokenizer.max_len > config.max_position_embeddings)
    throw section.error("\"max_len\" " + std::to_string(tokenizer.max_len) +
                        " must be in 2..max_position_embeddings (" +
                        std::to_string(config.max_position_embeddings) + ")");
  tokenizer.unk_token = section.string("unk_token");
  tokenizer.cls_token = section.string("cls_token");
  tokenizer.sep_token = section.string("sep_token");
  tokenizer.pad_token = section.string("pad_token");
  tokenizer.vocab = section.strings("vocab");
  if (static_cast<int64_t>(tokenizer.vocab.size()) != config.vocab_size)
    throw section.error("vocabulary size mismatch: the vocabulary has " +
                        std::to_string(tokenizer.vocab.size()) + " tokens but config vocab_size is " +
                        std::to_string(config.vocab_size));
  const std::vector<std::string>& vocab = tokenizer.vocab;
  check_token_in_vocab(section, vocab, "unk_token", tokenizer.unk_token);
  check_token_in_vocab(section, vocab, "cls_token", tokenizer.cls_token);
  check_token_in_vocab(section, vocab, "sep_token", tokenizer.sep_token);
  check_token_in_vocab(section, vocab, "pad_token", tokenizer.pad_token);
  return tokenizer;
}

HeadConfig parse_head(const Section& section) {
  HeadConfig head;
  const std::string kind = section.string("kind");
  try {
    head.kind = parse_head_kind(kind);
  } catch (const Error&) {
    throw section.error("\"kind\" is \"" + kind +
                        "\"; expected \"classification\", \"multi_label\" or \"regression\"");
  }
  head.labels = section.strings("labels");
  if (head.labels.empty()) throw section.error("\"labels\" is empty; a head needs at least one output");
  if (head.kind == HeadKind::kRegression && head.labels.size() != 1)
    throw section.error("a regression head has exactly one label, got " + std::to_string(head.labels.size()));
  const std::set<std::string> unique(head.labels.begin(), head.labels.end());
  if (unique.size() != head.labels.size()) throw section.error("\"labels\" contains a duplicate name");
  head.pair_input = section.boolean("pair_input");
  head.task = section.string("task");
  return head;
}

std::vector<double> parse_keep_ratios(const Section& section, int64_t num_layers) {
  const std::vector<double> ratios = section.numbers("keep_ratios");
  if (!ratios.empty() && static_cast<int64_t>(ratios.size()) != num_layers)
    throw section.error("\"keep_ratios\" has " + std::to_string(ratios.size()) +
                        " values; expected none (dense) or " + std::to_string(num_layers) +
                        " (one per layer)");
  for (size_t i = 0; i < ratios.size(); ++i) {
    if (!(ratios[i] > 0 && ratios[i] <= 1))
      throw section.error("keep ratio " + nlohmann::json(ratios[i]).dump() + " of layer " +
                          std::to_string(i) + " is not in (0, 1]");
    if (i > 0 && ratios[i] > ratios[i - 1])
      throw section.error("keep ratios must be non-increasing, but layer " + std::to_string(i) +
                          " keeps more than layer " + std::to_string(i - 1));
  }
  return ratios;
}

FcaSchedule parse_fca(const Section& section, int64_t num_layers) {
  FcaSchedule fca;
  fca.keep_ratios = parse_keep_ratios(section, num_layers);
  fca.clusters = section.integer("clusters");
  if (fca.clusters < 0) throw section.error("\"clusters\" must be >= 0, got " + std::to_string(fca.clusters));
  const std::string pooling = section.string("pooling");
  if (pooling == "weighted") {
    fca.pooling = Pooling::kWeighted;
  } else if (pooling == "mean") {
    fca.pooling = Pooling::kMean;
  } else {
    throw section.error("\"pooling\" is \"" + pooling + "\"; expected \"weighted\" or \"mean\"");
  }
  return fca;
}

std::string parse_provenance(const std::string& path, const nlohmann::json& metadata) {
  const std::string text = metadata_string(path, metadata, "provenance");
  nlohmann::ordered_json parsed;
  try {
    parsed = parse_bounded<nlohmann::ordered_json>(text);
  } catch (const JsonTooDeep&) {
    throw file_error(path, "metadata \"provenance\" is nested more than " + std::to_string(kMaxJsonDepth) +
                               " levels deep; " + kReconvertHint);
  } catch (const nlohmann::json::parse_error&) {
    // not an object: refused below
  }
  if (!parsed.is_object())
    throw file_error(path, "metadata \"provenance\" is not a JSON object; " + std::string(kReconvertHint));
  return parsed.dump();
}

// The shortest decimal that reads back as `value` (so 0.7f is stored as 0.7, not 0.699999988).
double shortest_double(float value) {
  char buffer[32];
  const auto result = std::to_chars(buffer, buffer + sizeof buffer, value);
  *result.ptr = '\0';
  return std::strtod(buffer, nullptr);
}

}  // namespace

ModelInfo parse_metadata(const std::string& path, const nlohmann::json& header) {
  const nlohmann::json& metadata = metadata_object(path, header);
  check_format_name(path, metadata);
  ModelInfo info;
  info.format_version = check_format_version(path, metadata);
  info.bert = parse_config(parse_section(path, metadata, "config"));
  info.tokenizer = parse_tokenizer(parse_section(path, metadata, "tokenizer"), info.bert);
  info.head = parse_head(parse_section(path, metadata, "head"));
  info.fca = parse_fca(parse_section(path, metadata, "fca"), info.bert.num_layers);
  info.provenance_json = parse_provenance(path, metadata);
  return info;
}

nlohmann::ordered_json config_to_json(const BertConfig& config) {
  return {{"vocab_size", config.vocab_size},
          {"hidden_size", config.hidden_size},
          {"num_layers", config.num_layers},
          {"num_heads", config.num_heads},
          {"intermediate_size", config.intermediate_size},
          {"max_position_embeddings", config.max_position_embeddings},
          {"type_vocab_size", config.type_vocab_size},
          {"layer_norm_eps", shortest_double(config.layer_norm_eps)},
          {"hidden_act", config.hidden_act},
          {"pooler_act", config.pooler_act}};
}

nlohmann::ordered_json tokenizer_to_json(const TokenizerConfig& tokenizer, bool include_vocab) {
  nlohmann::ordered_json json = {
      {"lowercase", tokenizer.lowercase},
      {"strip_accents", tokenizer.strip_accents ? nlohmann::ordered_json(*tokenizer.strip_accents) : nullptr},
      {"tokenize_chinese_chars", tokenizer.tokenize_chinese_chars},
      {"max_len", tokenizer.max_len},
      {"unk_token", tokenizer.unk_token},
      {"cls_token", tokenizer.cls_token},
      {"sep_token", tokenizer.sep_token},
      {"pad_token", tokenizer.pad_token},
      {"vocab_size", tokenizer.vocab.size()}};
  if (include_vocab) json["vocab"] = tokenizer.vocab;
  return json;
}

nlohmann::ordered_json head_to_json(const HeadConfig& head) {
  return {{"kind", head_kind_name(head.kind)},
          {"labels", head.labels},
          {"pair_input", head.pair_input},
          {"task", head.task}};
}

nlohmann::ordered_json fca_to_json(const FcaSchedule& fca) {
  return {{"keep_ratios", fca.keep_ratios},
          {"clusters", fca.clusters},
          {"pooling", fca.pooling == Pooling::kMean ? "mean" : "weighted"}};
}

namespace {

// As stored: the vocabulary itself, without the derived "vocab_size".
nlohmann::ordered_json stored_tokenizer_json(const TokenizerConfig& tokenizer) {
  nlohmann::ordered_json json = tokenizer_to_json(tokenizer, true);
  json.erase("vocab_size");
  return json;
}

}  // namespace

nlohmann::ordered_json metadata_to_json(const ModelInfo& info) {
  const int version = info.format_version == 0 ? kFormatVersion : info.format_version;
  const std::string provenance = info.provenance_json.empty() ? "{}" : info.provenance_json;
  if (!nlohmann::json::parse(provenance, nullptr, false).is_object())
    throw Error("write_model_file: provenance_json is not a JSON object: " + provenance);
  return {{"format", kFormatName},
          {"format_version", std::to_string(version)},
          {"config", config_to_json(info.bert).dump()},
          {"tokenizer", stored_tokenizer_json(info.tokenizer).dump()},
          {"head", head_to_json(info.head).dump()},
          {"fca", fca_to_json(info.fca).dump()},
          {"provenance", provenance}};
}

}  // namespace fcabert::format

namespace fcabert {

std::string model_info_to_json(const ModelInfo& info, bool include_vocab) {
  nlohmann::ordered_json json = {
      {"format", kFormatName},
      {"format_version", info.format_version},
      {"config", format::config_to_json(info.bert)},
      {"tokenizer", format::tokenizer_to_json(info.tokenizer, include_vocab)},
      {"head", format::head_to_json(info.head)},
      {"fca", format::fca_to_json(info.fca)},
      {"provenance", nlohmann::ordered_json::parse(info.provenance_json.empty() ? "{}" : info.provenance_json,
                                                   nullptr, false)}};
  if (json["provenance"].is_discarded())
    json["provenance"] = info.provenance_json;  // not JSON: keep the text
  return json.dump();
}

const char* head_kind_name(HeadKind kind) {
  switch (kind) {
    case HeadKind::kClassification:
      return "classification";
    case HeadKind::kMultiLabel:
      return "multi_label";
    case HeadKind::kRegression:
      return "regression";
  }
  return "classification";
}

HeadKind parse_head_kind(const std::string& name) {
  for (HeadKind kind : {HeadKind::kClassification, HeadKind::kMultiLabel, HeadKind::kRegression})
    if (name == head_kind_name(kind)) return kind;
  throw Error("unknown head kind '" + name + "'; expected classification, multi_label or regression");
}

}  // namespace fcabert
