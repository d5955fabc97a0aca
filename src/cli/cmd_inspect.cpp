// fcabert inspect: what a model file contains — metadata (task, labels, geometry, tokenizer,
// FCA schedule, provenance) and the tensor table — as text or as one JSON object.
#include <cstdio>
#include <iostream>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include "cli/commands.h"
#include "fcabert/error.h"
#include "fcabert/model_file.h"
#include "format/int8.h"

namespace fcabert::cli {
namespace {

using Json = nlohmann::ordered_json;

struct InspectOptions {
  std::string model;
  bool json = false;
  bool vocab = false;
};

constexpr size_t kShownTokens = 8;

struct Totals {
  int64_t tensors = 0;
  int64_t parameters = 0;  // the model's weights: the scales of I8 tensors are not counted
  uint64_t bytes = 0;
};

// The F32 "_scale" companions of the file's I8 tensors: part of the bytes, not of the weights.
struct ScaleTotals {
  int64_t tensors = 0;
  int64_t values = 0;
  uint64_t bytes = 0;
};

std::string megabytes(uint64_t bytes) {
  char text[32];
  std::snprintf(text, sizeof text, "%.3f", static_cast<double>(bytes) / 1e6);
  return text;
}

std::string shape_text(const std::vector<int64_t>& shape) {
  std::string text = "[";
  for (size_t i = 0; i < shape.size(); ++i) text += (i ? ", " : "") + std::to_string(shape[i]);
  return text + "]";
}

std::string join(const std::vector<std::string>& items, const std::string& separator) {
  std::string text;
  for (size_t i = 0; i < items.size(); ++i) text += (i ? separator : "") + items[i];
  return text;
}

bool is_int8_scale(const ModelFile& file, const TensorInfo& tensor) {
  const std::string owner = format::int8_tensor_of_scale(tensor.name);
  return !owner.empty() && file.has_tensor(owner) && file.tensor(owner).dtype == DType::kI8;
}

// Totals over all tensors (key "") and per dtype.
std::map<std::string, Totals> tensor_totals(const ModelFile& file) {
  std::map<std::string, Totals> totals;
  for (const TensorInfo& tensor : file.tensors()) {
    const int64_t parameters = is_int8_scale(file, tensor) ? 0 : tensor.numel();
    for (const std::string& key : {std::string(), std::string(dtype_name(tensor.dtype))}) {
      totals[key].tensors += 1;
      totals[key].parameters += parameters;
      totals[key].bytes += tensor.nbytes;
    }
  }
  return totals;
}

ScaleTotals scale_totals(const ModelFile& file) {
  ScaleTotals totals;
  for (const TensorInfo& tensor : file.tensors()) {
    if (!is_int8_scale(file, tensor)) continue;
    totals.tensors += 1;
    totals.values += tensor.numel();
    totals.bytes += tensor.nbytes;
  }
  return totals;
}

Json totals_json(const Totals& totals) {
  return {{"tensors", totals.tensors}, {"parameters", totals.parameters}, {"bytes", totals.bytes}};
}

Json inspect_json(const ModelFile& file, bool include_vocab) {
  Json json = {{"file", file.path()}, {"file_size", file.file_size()}};
  json.update(Json::parse(model_info_to_json(file.info(), include_vocab)));
  Json tensors = Json::array();
  for (const TensorInfo& tensor : file.tensors())
    tensors.push_back({{"name", tensor.name},
                       {"dtype", dtype_name(tensor.dtype)},
                       {"shape", tensor.shape},
                       {"offset", tensor.offset},
                       {"nbytes", tensor.nbytes}});
  json["tensors"] = std::move(tensors);
  auto totals = tensor_totals(file);
  Json by_dtype = Json::object();
  for (const auto& [dtype, dtype_totals] : totals)
    if (!dtype.empty()) by_dtype[dtype] = totals_json(dtype_totals);
  json["totals"] = totals_json(totals[""]);
  json["totals"]["by_dtype"] = std::move(by_dtype);
  const ScaleTotals scales = scale_totals(file);
  if (scales.tensors > 0)
    json["totals"]["i8_scales"] = {
        {"tensors", scales.tensors}, {"values", scales.values}, {"bytes", scales.bytes}};
  return json;
}

void print_line(std::ostream& out, const std::string& label, const std::string& text) {
  char padded[16];
  std::snprintf(padded, sizeof padded, "%-13s", label.c_str());
  out << padded << text << "\n";
}

std::string strip_accents_text(const std::optional<bool>& strip_accents) {
  if (!strip_accents) return "strip accents: when lowercasing";
  return *strip_accents ? "strip accents: yes" : "strip accents: no";
}

void print_model(std::ostream& out, const ModelFile& file) {
  const ModelInfo& info = file.info();
  const BertConfig& bert = info.bert;
  print_line(out, "file",
             file.path() + " (" + megabytes(file.file_size()) + " MB, " + std::to_string(file.file_size()) +
                 " bytes)");
  print_line(out, "format", std::string(kFormatName) + " version " + std::to_string(info.format_version));
  print_line(out, "task", info.head.task.empty() ? "(not recorded)" : info.head.task);
  print_line(out, "head",
             std::string(head_kind_name(info.head.kind)) + ", " + std::to_string(info.head.labels.size()) +
                 " output(s): " + join(info.head.labels, ", "));
  print_line(out, "input", info.head.pair_input ? "sentence pairs" : "single texts");
  print_line(out, "BERT",
             std::to_string(bert.num_layers) + " layers, hidden " + std::to_string(bert.hidden_size) + ", " +
                 std::to_string(bert.num_heads) + " heads, intermediate " +
                 std::to_string(bert.intermediate_size) + ", " + bert.hidden_act);
  char eps[32];
  std::snprintf(eps, sizeof eps, "%g", static_cast<double>(bert.layer_norm_eps));
  print_line(out, "",
             "vocab " + std::to_string(bert.vocab_size) + ", " +
                 std::to_string(bert.max_position_embeddings) + " positions, " +
                 std::to_string(bert.type_vocab_size) + " token types, layer_norm_eps " + eps);
}

void print_tokenizer(std::ostream& out, const TokenizerConfig& tokenizer) {
  const size_t shown = std::min(kShownTokens, tokenizer.vocab.size());
  const std::vector<std::string> first(tokenizer.vocab.begin(),
                                       tokenizer.vocab.begin() + static_cast<long>(shown));
  print_line(out, "tokenizer",
             std::to_string(tokenizer.vocab.size()) + " tokens: " + join(first, " ") +
                 (shown < tokenizer.vocab.size() ? " ..." : ""));
  print_line(out, "",
             std::string(tokenizer.lowercase ? "lowercase" : "cased") + ", " +
                 strip_accents_text(tokenizer.strip_accents) + ", " +
                 (tokenizer.tokenize_chinese_chars ? "splits" : "keeps") + " CJK characters, max_len " +
                 std::to_string(tokenizer.max_len));
  print_line(
      out, "",
      "special: " +
          join({tokenizer.unk_token, tokenizer.cls_token, tokenizer.sep_token, tokenizer.pad_token}, " "));
}

void print_fca(std::ostream& out, const FcaSchedule& fca) {
  if (!fca.enabled()) {
    print_line(out, "FCA", "dense (no token reduction)");
    return;
  }
  std::vector<std::string> ratios;
  for (double ratio : fca.keep_ratios) {
    char text[32];
    std::snprintf(text, sizeof text, "%g", ratio);
    ratios.push_back(text);
  }
  print_line(out, "FCA",
             "keep ratios " + join(ratios, " ") + "; clusters " + std::to_string(fca.clusters) +
                 (fca.clusters == 0 ? " (drop, PoWER-BERT)" : "") + ", " +
                 (fca.pooling == Pooling::kMean ? "mean" : "weighted") + " pooling");
}

void print_provenance(std::ostream& out, const std::string& provenance_json) {
  const auto provenance = Json::parse(provenance_json, nullptr, false);
  if (!provenance.is_object() || provenance.empty()) {
    print_line(out, "provenance", "(none)");
    return;
  }
  std::string label = "provenance";
  for (const auto& [key, value] : provenance.items()) {
    print_line(out, label, key + ": " + (value.is_string() ? value.get<std::string>() : value.dump()));
    label.clear();
  }
}

void print_tensor_table(std::ostream& out, const ModelFile& file) {
  size_t name_width = 4, shape_width = 5;
  for (const TensorInfo& tensor : file.tensors()) {
    name_width = std::max(name_width, tensor.name.size());
    shape_width = std::max(shape_width, shape_text(tensor.shape).size());
  }
  auto row = [&](const std::string& name, const std::string& dtype, const std::string& shape,
                 const std::string& mb) {
    char line[512];
    std::snprintf(line, sizeof line, "  %-*s  %-5s  %-*s  %10s\n", static_cast<int>(name_width), name.c_str(),
                  dtype.c_str(), static_cast<int>(shape_width), shape.c_str(), mb.c_str());
    out << line;
  };
  out << "\ntensors (" << file.tensors().size() << ", in file order; MB = 10^6 bytes):\n";
  row("name", "dtype", "shape", "MB");
  for (const TensorInfo& tensor : file.tensors())
    row(tensor.name, dtype_name(tensor.dtype), shape_text(tensor.shape), megabytes(tensor.nbytes));
  for (const auto& [dtype, totals] : tensor_totals(file))
    out << (dtype.empty() ? "total " : "  " + dtype + " ") << totals.tensors << " tensors, "
        << totals.parameters << " parameters, " << megabytes(totals.bytes) << " MB\n";
  const ScaleTotals scales = scale_totals(file);
  if (scales.tensors > 0)
    out << "  (F32 includes the " << scales.tensors << " \"" << kScaleSuffix
        << "\" tensors of the I8 tensors: " << scales.values << " per-row scales, not counted as parameters, "
        << megabytes(scales.bytes) << " MB)\n";
}

void print_vocab(std::ostream& out, const std::vector<std::string>& vocab) {
  out << "\nvocabulary (" << vocab.size() << " tokens, id<TAB>token):\n";
  for (size_t id = 0; id < vocab.size(); ++id) out << id << "\t" << vocab[id] << "\n";
}

void run_inspect(const InspectOptions& options) {
  const ModelFile file = ModelFile::open(options.model);
  if (options.json) {
    std::cout << inspect_json(file, options.vocab).dump(2) << "\n";
    return;
  }
  print_model(std::cout, file);
  print_tokenizer(std::cout, file.info().tokenizer);
  print_fca(std::cout, file.info().fca);
  print_provenance(std::cout, file.info().provenance_json);
  print_tensor_table(std::cout, file);
  if (options.vocab) print_vocab(std::cout, file.info().tokenizer.vocab);
  std::cout.flush();
}

}  // namespace

void register_inspect(CLI::App& app) {
  auto options = std::make_shared<InspectOptions>();
  options->model = default_model_path();
  CLI::App* cmd = app.add_subcommand("inspect", "show a model file's metadata and tensor table");
  cmd->add_option("MODEL", options->model, "model file (default: the bundled model)")->capture_default_str();
  cmd->add_flag("--json", options->json, "print one JSON object instead of text");
  cmd->add_flag("--vocab", options->vocab, "include the whole vocabulary (id order)");
  cmd->callback([options] { run_inspect(*options); });
}

}  // namespace fcabert::cli
