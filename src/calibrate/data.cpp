// Calibration text: GLUE task folders and files, or plain text, sampled with a seeded shuffle.
#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <optional>
#include <random>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include "fcabert/calibrate.h"
#include "fcabert/error.h"
#include "fcabert/glue.h"

namespace fcabert::calibrate {
namespace {

namespace fs = std::filesystem;

struct Text {
  int64_t line = 0;
  std::string a, b;
};

std::vector<Text> read_plain(const std::string& path, bool pair) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error(path + ": cannot open the calibration file");
  std::vector<Text> texts;
  std::string line;
  int64_t number = 0;
  while (std::getline(in, line)) {
    ++number;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (number == 1 && line.rfind("\xEF\xBB\xBF", 0) == 0) line.erase(0, 3);
    if (line.find_first_not_of(" \t") == std::string::npos) continue;
    Text t;
    t.line = number;
    if (pair) {
      const size_t tab = line.find('\t');
      if (tab == std::string::npos || line.find('\t', tab + 1) != std::string::npos)
        throw Error(path + ":" + std::to_string(number) +
                    ": the model takes sentence pairs: give exactly two tab-separated columns");
      t.a = line.substr(0, tab);
      t.b = line.substr(tab + 1);
    } else {
      t.a = line;
    }
    texts.push_back(std::move(t));
  }
  return texts;
}

std::vector<Text> read_glue(glue::Task task, const std::string& path, bool model_pair) {
  const glue::TaskInfo& info = glue::task_info(task);
  if (info.pair != model_pair)
    throw Error(path + ": task " + info.name + " has " + (info.pair ? "sentence pairs" : "single sentences") +
                " but the model takes " + (model_pair ? "sentence pairs" : "single sentences"));
  const glue::Split split = glue::read_split(task, path);
  std::vector<Text> texts;
  for (const glue::Example& e : split.examples) texts.push_back(Text{e.line, e.text_a, e.text_b});
  return texts;
}

bool looks_held_out(const fs::path& file) {
  const std::string stem = file.stem().string();
  return stem.rfind("dev", 0) == 0 || stem.rfind("test", 0) == 0;
}

}  // namespace

Data load_data(const Model& model, const std::string& data, const DataOptions& options) {
  if (data.empty()) throw Error("--data is required: a GLUE task folder, a .tsv file or a text file");
  if (options.limit < 0) throw Error("--limit must be >= 0");
  const ModelInfo& info = model.info();
  const bool pair = info.head.pair_input;
  std::error_code error;
  const fs::path path(data);
  Data out;
  std::vector<Text> texts;

  auto task_for = [&](glue::Task& task) {
    if (!options.task.empty()) {
      task = glue::parse_task(options.task);
      return true;
    }
    if (glue::detect_task(data, task)) return true;
    if (!info.head.task.empty()) {
      try {
        task = glue::parse_task(info.head.task);
        return true;
      } catch (const Error&) {
      }
    }
    return false;
  };

  if (fs::is_directory(path, error)) {
    glue::Task task;
    if (!task_for(task))
      throw Error(data +
                  ": cannot tell the GLUE task (no folder named SST-2, MRPC, ... and the model names " +
                  "none); give --task");
    const fs::path file = path / (options.split + ".tsv");
    if (!fs::is_regular_file(file, error))
      throw Error(data + ": no " + options.split +
                  ".tsv in this folder; choose another --split or give a file");
    out.source = file.string();
    texts = read_glue(task, out.source, pair);
  } else if (fs::is_regular_file(path, error)) {
    out.source = data;
    glue::Task task;
    if (path.extension() == ".tsv" && task_for(task))
      texts = read_glue(task, data, pair);
    else
      texts = read_plain(data, pair);
  } else {
    throw Error(data + ": no such file or folder");
  }
  out.held_out_warning = looks_held_out(fs::path(out.source));
  out.available = static_cast<int64_t>(texts.size());
  if (texts.empty()) throw Error(out.source + ": no examples to calibrate on (the file is empty)");

  const int64_t max_len = resolve_max_len(options.max_len, info);
  if (options.min_tokens < 0) throw Error("--min-tokens must be >= 0");
  std::vector<Encoding> all;
  all.reserve(texts.size());
  for (const Text& t : texts)
    all.push_back(encode_example(model.tokenizer(), t.a,
                                 pair ? std::optional<std::string_view>(t.b) : std::nullopt, max_len,
                                 out.source + ":" + std::to_string(t.line)));
  std::vector<size_t> index;
  for (size_t i = 0; i < all.size(); ++i)
    if (static_cast<int64_t>(all[i].ids.size()) >= options.min_tokens) index.push_back(i);
  out.eligible = static_cast<int64_t>(index.size());
  if (index.empty())
    throw Error(out.source + ": no example has at least " + std::to_string(options.min_tokens) +
                " tokens (--min-tokens)");

  // A seeded Fisher-Yates shuffle with raw mt19937_64 draws (the same sample on every
  // standard library), then back to file order.
  if (options.limit > 0 && options.limit < out.eligible) {
    std::mt19937_64 rng(options.seed);
    for (size_t i = index.size() - 1; i > 0; --i) std::swap(index[i], index[rng() % (i + 1)]);
    index.resize(static_cast<size_t>(options.limit));
    std::sort(index.begin(), index.end());
  }
  for (size_t i : index) {
    if (all[i].truncated) ++out.truncated;
    out.tokens += static_cast<int64_t>(all[i].ids.size());
    out.encodings.push_back(std::move(all[i]));
  }
  return out;
}

}  // namespace fcabert::calibrate
