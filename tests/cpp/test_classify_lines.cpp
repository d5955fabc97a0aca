// Classifying a stream of lines through the public API (include/fcabert/classify.h): rows
// in input order and batch by batch, the same predictions as one Session::run per line,
// awkward lines counted, a bad row stopping the run after the rows before it, or skipped.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "classify_test_util.h"
#include "fcabert/classify.h"

namespace fcabert {
namespace {

struct Collected {
  std::vector<std::string> texts;  // per row: the line's text, or "error: ..." for a bad row
  std::vector<int64_t> numbers;
  std::vector<std::vector<float>> logits;
  std::vector<size_t> batch_sizes;
};

classify::BatchCallback collect(Collected& out) {
  return [&out](const std::vector<classify::Row>& rows) {
    out.batch_sizes.push_back(rows.size());
    for (const classify::Row& row : rows) {
      out.numbers.push_back(row.line->number);
      if (row.error) {
        EXPECT_EQ(row.prediction, nullptr);
        out.texts.push_back("error: " + *row.error);
        out.logits.emplace_back();
      } else {
        out.texts.push_back(row.line->text);
        out.logits.push_back(row.prediction->logits);
      }
    }
  };
}

TEST_F(ClassifyLines, RowsComeBackInInputOrderBatchByBatchWithTheSessionsPredictions) {
  const std::vector<std::string> lines = {"the good movie", "bad", "", "a a a a a a a a", "movie", "the"};
  LineReader reader({write_lines("in.txt", lines)});
  Session session(model_);
  Collected got;
  const classify::Summary summary =
      classify::classify_lines(session, reader, {4, 0, false, {}}, collect(got));
  EXPECT_EQ(got.texts, lines);
  EXPECT_EQ(got.numbers, (std::vector<int64_t>{1, 2, 3, 4, 5, 6}));
  EXPECT_EQ(got.batch_sizes, (std::vector<size_t>{4, 2}));
  EXPECT_EQ(summary.lines, 6);
  EXPECT_EQ(summary.empty, 1);
  EXPECT_EQ(summary.truncated, 1);  // eight words > max_len 6
  EXPECT_EQ(summary.skipped, 0);
  EXPECT_EQ(summary.max_len, 6);
  for (size_t i = 0; i < lines.size(); ++i) {
    const Encoding alone = model_->tokenizer().encode(lines[i], 6);
    const std::vector<float> expected = session.run({alone}).front().logits;
    ASSERT_EQ(got.logits[i].size(), expected.size());
    for (size_t k = 0; k < expected.size(); ++k) EXPECT_NEAR(got.logits[i][k], expected[k], 1e-4f) << i;
  }
}

TEST_F(ClassifyLines, ABadRowStopsTheRunAfterTheRowsBeforeIt) {
  const std::string path = write_lines("bad.txt", {"good", "bad", "the \xff movie", "movie"});
  LineReader reader({path});
  Session session(model_);
  Collected got;
  try {
    classify::classify_lines(session, reader, {8, 0, false, {}}, collect(got));
    FAIL() << "the invalid UTF-8 line did not stop the run";
  } catch (const classify::Stopped& e) {
    EXPECT_EQ(std::string(e.what()).rfind(path + ":3: invalid UTF-8", 0), 0u) << e.what();
  }
  EXPECT_EQ(got.texts, (std::vector<std::string>{"good", "bad"}));  // its batch's lines before it
}

TEST_F(ClassifyLines, SkipBadRowsGivesAnErrorRowAndGoesOn) {
  const std::string path = write_lines("skip.txt", {"good", "the \xff movie", "movie"});
  LineReader reader({path});
  Session session(model_);
  Collected got;
  const classify::Summary summary = classify::classify_lines(session, reader, {2, 0, true, {}}, collect(got));
  ASSERT_EQ(got.texts.size(), 3u);
  EXPECT_EQ(got.texts[0], "good");
  EXPECT_EQ(got.texts[1].rfind("error: " + path + ":2: invalid UTF-8", 0), 0u) << got.texts[1];
  EXPECT_EQ(got.texts[2], "movie");
  EXPECT_EQ(summary.skipped, 1);
  EXPECT_EQ(summary.lines, 3);
}

// --long window: a long line runs as its windows (Tokenizer::encode_windows) in the batch, and
// its row is the mean of what each window gives when run alone.
TEST_F(ClassifyLines, ALongLineRunsAsWindowsWhoseLogitsAreAveraged) {
  const std::string long_line = "the good movie a bad plot the movie a good the bad a movie";  // 14 words
  LineReader reader({write_lines("long.txt", {"good", long_line, "a movie"})});
  Session session(model_);
  classify::Options options{4, 0, false, {}};
  options.long_texts = classify::LongTexts::kWindow;
  options.stride = 1;
  options.max_windows = 16;
  std::vector<int64_t> windows;
  std::vector<std::vector<float>> logits;
  const classify::Summary summary =
      classify::classify_lines(session, reader, options, [&](const std::vector<classify::Row>& rows) {
        for (const classify::Row& row : rows) {
          windows.push_back(row.windows);
          logits.push_back(row.prediction->logits);
        }
      });
  // max_len 6: 4 word pieces per window, each 3 after the one before: 14 words in 5 windows.
  const std::vector<Encoding> expected_windows = model_->tokenizer().encode_windows(long_line, {6, 1, 16});
  ASSERT_EQ(expected_windows.size(), 5u);
  EXPECT_EQ(windows, (std::vector<int64_t>{1, 5, 1}));
  EXPECT_EQ(summary.windowed, 1);
  EXPECT_EQ(summary.truncated, 0);
  std::vector<float> mean(logits[1].size(), 0.0f);
  for (const Encoding& window : expected_windows) {
    const std::vector<float> alone = session.run({window}).front().logits;
    for (size_t k = 0; k < mean.size(); ++k)
      mean[k] += alone[k] / static_cast<float>(expected_windows.size());
  }
  for (size_t k = 0; k < mean.size(); ++k) EXPECT_NEAR(logits[1][k], mean[k], 1e-5f);
  const std::vector<float> short_alone = session.run({model_->tokenizer().encode("good", 6)}).front().logits;
  for (size_t k = 0; k < short_alone.size(); ++k) EXPECT_NEAR(logits[0][k], short_alone[k], 1e-5f);

  // At most max_windows windows: the rest of the text is cut and counted.
  LineReader again({write_lines("long2.txt", {long_line})});
  options.max_windows = 2;
  const classify::Summary cut =
      classify::classify_lines(session, again, options, [&](const std::vector<classify::Row>& rows) {
        EXPECT_EQ(rows.front().windows, 2);
        EXPECT_TRUE(rows.front().encoding->truncated);
      });
  EXPECT_EQ(cut.truncated, 1);
}

TEST_F(ClassifyLines, RejectsABatchSizeBelowOneAndABadMaxLen) {
  LineReader reader({write_lines("one.txt", {"good"})});
  Session session(model_);
  EXPECT_THROW(classify::classify_lines(session, reader, {0, 0, false, {}}, {}), Error);
  EXPECT_THROW(classify::classify_lines(session, reader, {1, 1, false, {}}, {}), Error);  // below [CLS] [SEP]
}

}  // namespace
}  // namespace fcabert
