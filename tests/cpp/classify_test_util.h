#pragma once
// The fixture of the classify tests: a tiny random BERT (max_len 6) in a temporary folder, and
// input files written into it.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "fcabert/engine.h"
#include "fcabert/model_file.h"
#include "test_model_tiny_bert.h"

namespace fcabert {

class ClassifyLines : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::path(::testing::TempDir()) / ("fcabert_classify_" + std::to_string(::getpid()));
    std::filesystem::create_directories(dir_);
    ModelInfo info;
    info.bert = model_test::tiny_config();
    info.head = model_test::tiny_head();
    info.tokenizer.vocab = model_test::tiny_vocab(info.bert, {"the", "a", "good", "bad", "movie"});
    info.tokenizer.max_len = 6;
    const std::string model = (dir_ / "tiny.fcab").string();
    write_model_file(model, info, model_test::random_bert_tensors(info.bert, 3, 13));
    model_ = Model::load(model, LoadOptions{1});
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  std::string write_lines(const std::string& name, const std::vector<std::string>& lines) const {
    const std::string path = (dir_ / name).string();
    std::ofstream out(path, std::ios::binary);
    for (const std::string& line : lines) out << line << '\n';
    return path;
  }

  std::filesystem::path dir_;
  std::shared_ptr<const Model> model_;
};

}  // namespace fcabert
