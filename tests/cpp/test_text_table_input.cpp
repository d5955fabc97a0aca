// Table inputs of LineReader (include/fcabert/input.h): tsv and csv with a header row, jsonl
// objects; RFC 4180 quoting; bad records as errors on their row (never a shifted row), and
// what stops the input (a header without the column, a quote never closed).
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "fcabert/error.h"
#include "fcabert/input.h"

namespace fcabert {
namespace {

class TableInput : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::path(::testing::TempDir()) / ("fcabert_table_" + std::to_string(::getpid()));
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  std::string write(const std::string& name, const std::string& bytes) const {
    const std::string path = (dir_ / name).string();
    std::ofstream(path, std::ios::binary) << bytes;
    return path;
  }

  // Every record of `path`.
  static std::vector<InputLine> read_all(const std::string& path, TableOptions options) {
    LineReader reader({path}, options);
    std::vector<InputLine> records;
    InputLine record;
    while (reader.next(record)) records.push_back(record);
    return records;
  }

  static TableOptions csv(const std::string& text, const std::string& id = "") {
    TableOptions options;
    options.format = InputFormat::kCsv;
    options.text = text;
    options.id = id;
    return options;
  }

  std::filesystem::path dir_;
};

TEST_F(TableInput, CsvFollowsRfc4180) {
  const std::string path = write("r.csv",
                                 "id,review,stars\r\n"
                                 "1,\"A fine, moving film\",5\r\n"
                                 "2,\"He said \"\"dull\"\"\nand left\",1\n"
                                 "3,,3\n"
                                 "\"4\",plain,2");  // no final line break
  const std::vector<InputLine> records = read_all(path, csv("review", "id"));
  ASSERT_EQ(records.size(), 4u);
  EXPECT_EQ(records[0].text, "A fine, moving film");
  EXPECT_EQ(records[1].text, "He said \"dull\"\nand left");
  EXPECT_EQ(records[2].text, "");
  EXPECT_EQ(records[3].text, "plain");
  EXPECT_EQ(records[3].id, "4");
  // Each record names its first line; the multi-line record takes two.
  EXPECT_EQ(records[0].number, 2);
  EXPECT_EQ(records[1].number, 3);
  EXPECT_EQ(records[2].number, 5);
  EXPECT_EQ(records[3].number, 6);
  for (size_t i = 0; i < records.size(); ++i) {
    EXPECT_EQ(records[i].index, static_cast<int64_t>(i));
    EXPECT_TRUE(records[i].error.empty()) << records[i].error;
  }
  EXPECT_EQ(records[1].raw, "2,\"He said \"\"dull\"\"\nand left\",1");
}

TEST_F(TableInput, MalformedCsvRecordsAreErrorsOnTheirOwnRow) {
  const std::string path = write("bad.csv",
                                 "id,text\n"
                                 "1,ok\n"
                                 "2,too,many\n"
                                 "3,a\"quote\n"
                                 "4,\"closed\"trailing\n"
                                 "5,fine\n");
  const std::vector<InputLine> records = read_all(path, csv("text", "id"));
  ASSERT_EQ(records.size(), 5u);
  EXPECT_TRUE(records[0].error.empty());
  EXPECT_EQ(records[1].error, "has 3 fields but the header has 2");
  EXPECT_EQ(records[1].id, "2");  // kept for the error row
  EXPECT_NE(records[2].error.find("a quote inside an unquoted field"), std::string::npos);
  EXPECT_NE(records[3].error.find("text after the closing quote"), std::string::npos);
  EXPECT_TRUE(records[4].error.empty());
  EXPECT_EQ(records[4].text, "fine");
}

TEST_F(TableInput, WhatStopsTheInputNamesTheLine) {
  const auto error_of = [](const std::string& path, const TableOptions& options) -> std::string {
    try {
      read_all(path, options);
    } catch (const Error& e) {
      return e.what();
    }
    return "(no error)";
  };
  const std::string unclosed = write("unclosed.csv", "id,text\n1,ok\n2,\"never closed\n3,x\n");
  EXPECT_NE(error_of(unclosed, csv("text")).find(unclosed + ":3: a quoted field is never closed"),
            std::string::npos);
  // A quote left open at the end of one file is not closed by the next file.
  const std::string second = write("second.csv", "id,text\n5,\"x\"\n");
  {
    LineReader reader({unclosed, second}, csv("text"));
    InputLine record;
    ASSERT_TRUE(reader.next(record));
    try {
      reader.next(record);
      ADD_FAILURE() << "the open quote ran into the next file";
    } catch (const Error& e) {
      EXPECT_EQ(std::string(e.what()).rfind(unclosed + ":3:", 0), 0u) << e.what();
    }
  }
  const std::string other = write("other.csv", "id,review\n1,x\n");
  EXPECT_NE(
      error_of(other, csv("text")).find(other + ":1: the header has no column \"text\" (it has id, review)"),
      std::string::npos);
}

TEST_F(TableInput, TsvHeaderAndPairColumns) {
  const std::string path = write("p.tsv", "a\tb\tq\nfirst\tsecond\t\"x\"\n");
  TableOptions options;
  options.format = InputFormat::kTsv;
  options.text = "a";
  options.pair = "b";
  options.id = "q";
  LineReader reader({path}, options);
  reader.set_pair_input(true);
  InputLine record;
  ASSERT_TRUE(reader.next(record));
  EXPECT_EQ(record.text, "first");
  EXPECT_EQ(record.pair, "second");
  EXPECT_EQ(record.id, "\"x\"");  // tsv has no quoting
  EXPECT_FALSE(reader.next(record));
  EXPECT_THROW(reader.set_pair_input(false), Error);  // too late: input was read
}

TEST_F(TableInput, JsonlFieldsAndTheirErrors) {
  const std::string path = write("r.jsonl",
                                 "{\"id\": 7, \"text\": \"great\"}\n"
                                 "{\"txt\": \"x\"}\n"
                                 "\n"
                                 "{\"id\": \"a\", \"text\": 5}\n"
                                 "[1, 2]\n"
                                 "{\"id\": \"b\", \"text\": \"\"}\n");
  TableOptions options;
  options.format = InputFormat::kJsonl;
  options.id = "id";
  const std::vector<InputLine> records = read_all(path, options);
  ASSERT_EQ(records.size(), 6u);
  EXPECT_EQ(records[0].text, "great");
  EXPECT_EQ(records[0].id, "7");
  EXPECT_NE(records[1].error.find("no field \"text\""), std::string::npos);
  EXPECT_EQ(records[2].error, "an empty line, not a JSON object");
  EXPECT_NE(records[3].error.find("field \"text\" is number, not a string"), std::string::npos);
  EXPECT_EQ(records[3].id, "a");
  EXPECT_EQ(records[4].error, "not a JSON object");
  EXPECT_TRUE(records[5].error.empty());
  EXPECT_EQ(records[5].text, "");
  for (size_t i = 0; i < records.size(); ++i) EXPECT_EQ(records[i].number, static_cast<int64_t>(i + 1));
}

TEST_F(TableInput, WithoutAHeaderColumnsAreNumberedAndTheFirstRowIsARecord) {
  const std::string path = write("nh.csv", "7,\"first, text\"\n8,second\n");
  TableOptions options = csv("2", "1");
  options.header = false;
  const std::vector<InputLine> records = read_all(path, options);
  ASSERT_EQ(records.size(), 2u);
  EXPECT_EQ(records[0].text, "first, text");
  EXPECT_EQ(records[0].id, "7");
  EXPECT_EQ(records[0].number, 1);
  EXPECT_EQ(records[1].text, "second");
}

TEST_F(TableInput, FormatNames) {
  for (InputFormat format : {InputFormat::kText, InputFormat::kTsv, InputFormat::kCsv, InputFormat::kJsonl})
    EXPECT_EQ(parse_input_format(input_format_name(format)), format);
  EXPECT_THROW(parse_input_format("xlsx"), Error);
}

}  // namespace
}  // namespace fcabert
