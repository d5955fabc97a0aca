// GLUE readers: row counts on the real dev files, fixtures for MNLI / QQP, malformed rows.
#include <gtest/gtest.h>

#include <filesystem>
#include <string>
#include <vector>

#include "fcabert/error.h"
#include "fcabert/glue.h"

namespace fcabert::glue {
namespace {

std::string shared(const std::string& relative) {
  return std::string(FCABERT_SHARED_DATA) + "/glue/" + relative;
}
std::string fixture(const std::string& relative) {
  return std::string(FCABERT_SOURCE_DIR) + "/tests/data/glue_fixtures/" + relative;
}

struct DevCount {
  Task task;
  const char* folder;
  size_t rows;
};

TEST(GlueReader, RowCountsOnEveryDevFile) {
  const std::vector<DevCount> counts = {{Task::kCoLA, "CoLA", 1043}, {Task::kSST2, "SST-2", 872},
                                        {Task::kMRPC, "MRPC", 408},  {Task::kSTSB, "STS-B", 1500},
                                        {Task::kQNLI, "QNLI", 5463}, {Task::kRTE, "RTE", 277},
                                        {Task::kWNLI, "WNLI", 71}};
  for (const DevCount& c : counts) {
    const std::string path = shared(std::string(c.folder) + "/dev.tsv");
    if (!std::filesystem::exists(path)) GTEST_SKIP() << path << " not present";
    const Split split = read_split(c.task, path);
    EXPECT_EQ(split.examples.size(), c.rows) << c.folder;
    EXPECT_EQ(split.skipped, 0) << c.folder;
    EXPECT_EQ(split.name, "dev");
  }
}

TEST(GlueReader, FieldsOfKnownRows) {
  const std::string cola = shared("CoLA/dev.tsv");
  if (!std::filesystem::exists(cola)) GTEST_SKIP();
  const Split c = read_split(Task::kCoLA, cola);
  EXPECT_EQ(c.examples.front().line, 1);  // no header
  EXPECT_EQ(c.examples.back().line, 1043);
  EXPECT_FALSE(c.examples.back().text_a.empty());  // last line without '\n' is read whole

  const Split m = read_split(Task::kMRPC, shared("MRPC/dev.tsv"));
  EXPECT_EQ(m.examples.front().line, 2);  // the BOM header is skipped
  EXPECT_FALSE(m.examples.front().text_b.empty());

  const Split s = read_split(Task::kSTSB, shared("STS-B/dev.tsv"));
  for (const Example& e : s.examples) {
    EXPECT_GE(e.score, 0.0);
    EXPECT_LE(e.score, 5.0);
  }
  // QNLI keeps stray leading quotes (no quote handling) and still has 5463 rows.
  const Split q = read_split(Task::kQNLI, shared("QNLI/dev.tsv"));
  int quoted = 0;
  for (const Example& e : q.examples) quoted += !e.text_b.empty() && e.text_b.front() == '"';
  EXPECT_GT(quoted, 0);
}

TEST(GlueReader, MnliFixtureBothSplits) {
  const std::vector<std::string> files = resolve_data_files(Task::kMNLI, fixture("MNLI"));
  ASSERT_EQ(files.size(), 2u);
  const Split matched = read_split(Task::kMNLI, files[0]);
  const Split mismatched = read_split(Task::kMNLI, files[1]);
  EXPECT_EQ(matched.name, "dev_matched");
  EXPECT_EQ(mismatched.name, "dev_mismatched");
  ASSERT_EQ(matched.examples.size(), 5u);
  EXPECT_EQ(mismatched.examples.size(), 4u);
  EXPECT_EQ(matched.examples[0].text_a, "The cat slept on the warm mat all afternoon.");
  EXPECT_EQ(matched.examples[0].label, 0);  // contradiction
  EXPECT_EQ(matched.examples[1].label, 1);  // entailment (gold, not label1..5's majority check)
  EXPECT_EQ(matched.examples[2].label, 2);  // neutral
  EXPECT_EQ(matched.examples[3].text_a, "He said the \"plan\" would never work.");
}

TEST(GlueReader, QqpFixture) {
  const Split split = read_split(Task::kQQP, fixture("QQP/dev.tsv"));
  ASSERT_EQ(split.examples.size(), 6u);
  EXPECT_EQ(split.examples[0].label, 1);
  EXPECT_EQ(split.examples[1].label, 0);
  EXPECT_EQ(split.examples[4].text_a, "\"Is it going to rain tomorrow?");
}

TEST(GlueReader, MalformedRowNamesFileAndLine) {
  const std::string path = fixture("bad/sst2_bad.tsv");
  try {
    read_split(Task::kSST2, path);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    const std::string message = e.what();
    EXPECT_NE(message.find(path + ":3:"), std::string::npos) << message;
    EXPECT_NE(message.find("columns"), std::string::npos) << message;
  }
  ReadOptions skip;
  skip.skip_bad_rows = true;
  const Split split = read_split(Task::kSST2, path, skip);
  EXPECT_EQ(split.skipped, 2);  // line 3 (no tab), line 5 (label 2)
  EXPECT_EQ(split.examples.size(), 3u);
}

TEST(GlueReader, BadLabelMessage) {
  try {
    parse_split(Task::kRTE, "index\ts1\ts2\tlabel\n0\ta\tb\tmaybe\n", "x.tsv");
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("x.tsv:2: unknown label 'maybe'"), std::string::npos) << e.what();
  }
  EXPECT_THROW(parse_split(Task::kSTSB, "h\n1\t2\t3\t4\t5\t6\t7\ta\tb\tfive\n", "s.tsv"), Error);
}

// Hostile rows (docs/ROBUSTNESS.md): scores that strtod accepts but that are no gold score,
// rows of nothing but tabs, a 1 MB cell, NUL bytes; each is refused or read, never a crash.
TEST(GlueReader, NonFiniteScoresAreBadRows) {
  for (const char* score : {"nan", "NaN", "inf", "-inf", "infinity", "1e999"}) {
    const std::string text = std::string("h\n1\t2\t3\t4\t5\t6\t7\ta\tb\t") + score + "\n";
    try {
      parse_split(Task::kSTSB, text, "s.tsv");
      ADD_FAILURE() << score << " accepted";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("s.tsv:2: the score '" + std::string(score) +
                                           "' is not a finite number"),
                std::string::npos)
          << e.what();
    }
    ReadOptions skip;
    skip.skip_bad_rows = true;
    const Split split = parse_split(Task::kSTSB, text + "1\t2\t3\t4\t5\t6\t7\ta\tb\t4.5\n", "s.tsv", skip);
    EXPECT_EQ(split.skipped, 1) << score;
    ASSERT_EQ(split.examples.size(), 1u);
    EXPECT_EQ(split.examples[0].score, 4.5);
  }
}

TEST(GlueReader, DegenerateRows) {
  ReadOptions skip;
  skip.skip_bad_rows = true;
  const std::string big(1 << 20, 'x');
  const Split split = parse_split(
      Task::kSST2,
      std::string("sentence\tlabel\n\t\t\t\n\n") + big + "\t1\n" + std::string("a\0b", 3) + "\t0\n\t",
      "d.tsv", skip);
  ASSERT_EQ(split.examples.size(), 2u);
  EXPECT_EQ(split.examples[0].text_a.size(), big.size());
  EXPECT_EQ(split.examples[0].line, 4);
  EXPECT_EQ(split.examples[1].text_a, std::string("a\0b", 3));
  EXPECT_EQ(split.skipped, 3);  // "\t\t\t" (label ''), "" (one column), "\t" (label '')
}

TEST(GlueReader, BomCrAndMissingFinalNewline) {
  const Split split = parse_split(Task::kSST2, "\xEF\xBB\xBFsentence\tlabel\r\nok \t1\r\nbad \t0", "m.tsv");
  ASSERT_EQ(split.examples.size(), 2u);
  EXPECT_EQ(split.examples[1].text_a, "bad ");
  EXPECT_EQ(split.examples[1].label, 0);
}

TEST(GlueTasks, ParseAndDetect) {
  EXPECT_EQ(parse_task("SST-2"), Task::kSST2);
  EXPECT_EQ(parse_task("sts-b"), Task::kSTSB);
  EXPECT_EQ(parse_task("mnli"), Task::kMNLI);
  EXPECT_THROW(parse_task("squad"), Error);
  Task task;
  ASSERT_TRUE(detect_task("/data/glue/CoLA", task));
  EXPECT_EQ(task, Task::kCoLA);
  ASSERT_TRUE(detect_task("/data/glue/STS-B/dev.tsv", task));
  EXPECT_EQ(task, Task::kSTSB);
  ASSERT_TRUE(detect_task("glue/RTE/", task));
  EXPECT_EQ(task, Task::kRTE);
  EXPECT_FALSE(detect_task("/tmp/somewhere/file.tsv", task));
  EXPECT_THROW(resolve_data_files(Task::kSST2, "/nonexistent/SST-2"), Error);
}

TEST(GlueLabels, MatchedByNameNotPosition) {
  EXPECT_EQ(label_map(Task::kSST2, {"negative", "positive"}), (std::vector<int>{0, 1}));
  EXPECT_EQ(label_map(Task::kSST2, {"Positive", "NEGATIVE"}), (std::vector<int>{1, 0}));
  EXPECT_EQ(label_map(Task::kMNLI, {"entailment", "neutral", "contradiction"}), (std::vector<int>{2, 0, 1}));
  EXPECT_EQ(label_map(Task::kRTE, {"not-entailment", "entailment"}), (std::vector<int>{1, 0}));
  try {
    label_map(Task::kCoLA, {"negative", "positive"});
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("unacceptable,acceptable"), std::string::npos) << e.what();
  }
  EXPECT_THROW(label_map(Task::kSST2, {"positive", "positive"}), Error);
  EXPECT_THROW(label_map(Task::kSST2, {"negative", "positive", "neutral"}), Error);
}

}  // namespace
}  // namespace fcabert::glue
