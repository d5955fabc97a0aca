// fcabert tokenize: the WordPiece pieces and ids of each input line, exactly what Hugging
// Face's BertTokenizer(...)(text, truncation=True, max_length=N) produces (docs/TOKENIZER.md).
//
// Behaviour on awkward input:
// - lines end at "\n" only; a trailing "\r" stays part of the line (it is whitespace to the
//   tokenizer, so it changes no token, but nothing is silently rewritten);
// - an empty line gives [CLS] [SEP] (pairs: an empty column gives an empty segment);
// - invalid UTF-8 (the error gives the byte offset in the line), or a pair line without exactly two
// tab-separated columns, stops the run
//   with an error naming FILE:LINE; every line before it has been written.
#include <cstdint>
#include <iostream>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "cli/commands.h"
#include "fcabert/error.h"
#include "fcabert/input.h"
#include "fcabert/model_file.h"
#include "fcabert/tokenizer.h"

namespace fcabert::cli {
namespace {

struct TokenizeOptions {
  std::vector<std::string> inputs;
  std::string model;
  std::string vocab;
  bool cased = false;
  bool pairs = false;
  std::optional<int64_t> max_len;  // unset: the model's (or 512 with --vocab)
  std::string format = "text";
};

// Buffers the output and writes it to std::cout in large blocks.
class Output {
 public:
  ~Output() { flush(); }
  std::string& buffer() { return buffer_; }
  void line_done() {
    buffer_ += '\n';
    if (buffer_.size() >= (1u << 16)) flush();
  }
  void flush() {
    if (!buffer_.empty()) std::cout.write(buffer_.data(), static_cast<std::streamsize>(buffer_.size()));
    buffer_.clear();
    std::cout.flush();
  }

 private:
  std::string buffer_;
};

void append_json_string(std::string_view text, std::string& out) {
  static const char* hex = "0123456789abcdef";
  out += '"';
  for (const char c : text) {
    const auto u = static_cast<unsigned char>(c);
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (u < 0x20) {
      out += "\\u00";
      out += hex[u >> 4];
      out += hex[u & 15];
    } else {
      out += c;
    }
  }
  out += '"';
}

template <typename T, typename Append>
void append_list(const std::vector<T>& values, std::string_view separator, Append append, std::string& out) {
  for (size_t i = 0; i < values.size(); ++i) {
    if (i > 0) out += separator;
    append(values[i], out);
  }
}

void write_line(const Tokenizer& tokenizer, const InputLine& line, const Encoding& encoding, bool jsonl,
                bool name_source, std::string& out) {
  const auto piece = [&](int32_t id, std::string& o) { o += tokenizer.id_to_token(id); };
  const auto quoted_piece = [&](int32_t id, std::string& o) {
    append_json_string(tokenizer.id_to_token(id), o);
  };
  const auto number = [](int32_t value, std::string& o) { o += std::to_string(value); };
  if (!jsonl) {
    append_list(encoding.ids, " ", piece, out);
    out += '\t';
    append_list(encoding.ids, " ", number, out);
    return;
  }
  out += '{';
  if (name_source) {
    out += "\"file\": ";
    append_json_string(line.source, out);
    out += ", ";
  }
  out += "\"line\": " + std::to_string(line.number) + ", \"tokens\": [";
  append_list(encoding.ids, ", ", quoted_piece, out);
  out += "], \"input_ids\": [";
  append_list(encoding.ids, ", ", number, out);
  out += "], \"token_type_ids\": [";
  append_list(encoding.type_ids, ", ", number, out);
  out += "]}";
}

void run_tokenize(const TokenizeOptions& options) {
  if (options.format != "text" && options.format != "jsonl")
    throw Error("--format must be text or jsonl, not '" + options.format + "'");
  LineReader reader(options.inputs);  // checks the input files first

  TokenizerConfig config;
  bool pairs = options.pairs;
  if (!options.vocab.empty()) {
    config.vocab = Tokenizer::read_vocab_file(options.vocab);
    config.lowercase = !options.cased;  // like bert-base-uncased unless --cased
    config.max_len = 512;
  } else {
    const ModelFile model = ModelFile::open(options.model);
    config = model.info().tokenizer;
    pairs = pairs || model.info().head.pair_input;
  }
  const int64_t max_len = options.max_len.value_or(config.max_len);
  const int64_t minimum = pairs ? 3 : 2;
  if (max_len < minimum)
    throw Error("--max-len " + std::to_string(max_len) +
                " is too small: " + (pairs ? "[CLS] a [SEP] b [SEP]" : "[CLS] text [SEP]") +
                " needs at least " + std::to_string(minimum));
  const Tokenizer tokenizer(std::move(config));

  const bool jsonl = options.format == "jsonl";
  Output output;
  InputLine line;
  while (reader.next(line)) {
    Encoding encoding;
    try {
      encoding = encode_line(tokenizer, line, pairs, max_len);
    } catch (const Error&) {
      output.flush();  // everything before the bad line is written
      throw;
    }
    write_line(tokenizer, line, encoding, jsonl, reader.multiple_sources(), output.buffer());
    output.line_done();
  }
}

}  // namespace

void register_tokenize(CLI::App& app) {
  auto options = std::make_shared<TokenizeOptions>();
  options->model = default_model_path();
  CLI::App* cmd = app.add_subcommand(
      "tokenize",
      "print the WordPiece tokens and ids of each line (identical to Hugging Face's BertTokenizer)");
  cmd->add_option("inputs", options->inputs,
                  "text files, one text per line (with --pairs: two TSV columns); "
                  "none or '-' reads stdin");
  auto* model = cmd->add_option("-m,--model", options->model, "take the tokenizer from this model file")
                    ->capture_default_str();
  auto* vocab =
      cmd->add_option("--vocab", options->vocab, "use this vocab.txt instead of a model (lower-cases)");
  model->excludes(vocab);
  cmd->add_flag("--cased", options->cased, "with --vocab: keep case and accents (bert-base-cased)")
      ->needs(vocab);
  cmd->add_flag("--pairs", options->pairs,
                "lines are sentence pairs: two tab-separated columns "
                "(implied by a pair model)");
  cmd->add_option("--max-len", options->max_len,
                  "truncate to this many tokens, [CLS]/[SEP] included "
                  "(default: the model's; 512 with --vocab)");
  cmd->add_option("-f,--format", options->format, "output: text (tokens TAB ids) or jsonl")
      ->capture_default_str();
  cmd->callback([options] { run_tokenize(*options); });
}

}  // namespace fcabert::cli
