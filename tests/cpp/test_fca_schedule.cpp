// FCA schedule: parsing, validation messages, keep counts and predicted row counts.
#include <gtest/gtest.h>

#include <cmath>
#include <string>

#include "fcabert/error.h"
#include "fcabert/fca.h"

namespace fcabert::fca {
namespace {

// The message of the fcabert::Error that `f` throws ("" if it throws none).
template <typename F>
std::string error_of(F&& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

TEST(FcaSchedule, ParsesCommaSeparatedRatios) {
  const FcaSchedule s = parse_schedule(" 1, 0.9 ,0.8,0.8,\t0.5 ", 4, "mean");
  ASSERT_EQ(s.keep_ratios.size(), 5u);
  EXPECT_EQ(s.keep_ratios[0], 1.0);
  EXPECT_EQ(s.keep_ratios[1], 0.9);
  EXPECT_EQ(s.keep_ratios[2], 0.8);
  EXPECT_EQ(s.keep_ratios[3], 0.8);
  EXPECT_EQ(s.keep_ratios[4], 0.5);
  EXPECT_EQ(s.clusters, 4);
  EXPECT_EQ(s.pooling, Pooling::kMean);
  EXPECT_TRUE(s.enabled());
  EXPECT_EQ(parse_schedule("1e-1", 0, "weighted").keep_ratios.at(0), 0.1);
  EXPECT_EQ(parse_schedule("1", 0, "weighted").pooling, Pooling::kWeighted);
  EXPECT_NO_THROW(validate_schedule(s, 5));
}

TEST(FcaSchedule, PoolingNames) {
  EXPECT_EQ(parse_pooling("weighted"), Pooling::kWeighted);
  EXPECT_EQ(parse_pooling("mean"), Pooling::kMean);
  EXPECT_STREQ(pooling_name(Pooling::kWeighted), "weighted");
  EXPECT_STREQ(pooling_name(Pooling::kMean), "mean");
  const std::string message = error_of([] { parse_pooling("max"); });
  EXPECT_NE(message.find("\"max\""), std::string::npos) << message;
  EXPECT_NE(message.find("weighted"), std::string::npos) << message;
  EXPECT_NE(message.find("mean"), std::string::npos) << message;
  EXPECT_NE(error_of([] { parse_schedule("1", 2, "Weighted"); }).find("\"Weighted\""), std::string::npos);
}

TEST(FcaSchedule, UnparsableNumbersNameLayerAndText) {
  std::string message = error_of([] { parse_schedule("1,abc,0.5", 2, "weighted"); });
  EXPECT_NE(message.find("layer 1"), std::string::npos) << message;
  EXPECT_NE(message.find("\"abc\""), std::string::npos) << message;
  message = error_of([] { parse_schedule("1,,0.5", 2, "weighted"); });
  EXPECT_NE(message.find("layer 1"), std::string::npos) << message;
  message = error_of([] { parse_schedule("1,0.5,", 2, "weighted"); });
  EXPECT_NE(message.find("layer 2"), std::string::npos) << message;
  message = error_of([] { parse_schedule("0.5x", 2, "weighted"); });
  EXPECT_NE(message.find("\"0.5x\""), std::string::npos) << message;
  message = error_of([] { parse_schedule("1;0.5", 2, "weighted"); });
  EXPECT_NE(message.find("layer 0"), std::string::npos) << message;
  message = error_of([] { parse_schedule("  ", 2, "weighted"); });
  EXPECT_NE(message.find("empty"), std::string::npos) << message;
  EXPECT_NE(message.find("--dense"), std::string::npos) << message;
}

TEST(FcaSchedule, RatioOutOfRangeNamesLayerAndValue) {
  std::string message = error_of([] { parse_schedule("1,1.5", 2, "weighted"); });
  EXPECT_NE(message.find("layer 1"), std::string::npos) << message;
  EXPECT_NE(message.find("1.5"), std::string::npos) << message;
  EXPECT_NE(message.find("(0, 1]"), std::string::npos) << message;
  message = error_of([] { parse_schedule("0", 2, "weighted"); });
  EXPECT_NE(message.find("layer 0 is 0;"), std::string::npos) << message;
  message = error_of([] { parse_schedule("1,0.5,-0.25", 2, "weighted"); });
  EXPECT_NE(message.find("layer 2 is -0.25"), std::string::npos) << message;
  message = error_of([] { parse_schedule("nan", 2, "weighted"); });
  EXPECT_NE(message.find("(0, 1]"), std::string::npos) << message;
  // Exactly 1 is allowed, anything above is not.
  EXPECT_NO_THROW(parse_schedule("1", 0, "weighted"));
  EXPECT_NE(error_of([] { parse_schedule("1.0000001", 0, "weighted"); }), "");
}

TEST(FcaSchedule, IncreasingRatiosNameBothLayers) {
  const std::string message = error_of([] { parse_schedule("1,0.5,0.8", 2, "weighted"); });
  EXPECT_NE(message.find("layer 2 keeps 0.8"), std::string::npos) << message;
  EXPECT_NE(message.find("layer 1 keeps 0.5"), std::string::npos) << message;
}

TEST(FcaSchedule, NegativeClusters) {
  const std::string message = error_of([] { parse_schedule("1,0.5", -1, "weighted"); });
  EXPECT_NE(message.find(">= 0"), std::string::npos) << message;
  EXPECT_NE(message.find("-1"), std::string::npos) << message;
  EXPECT_NO_THROW(parse_schedule("1,0.5", 0, "weighted"));
}

TEST(FcaSchedule, ValidateChecksTheLayerCount) {
  FcaSchedule s = parse_schedule("1,0.9,0.8", 2, "weighted");
  std::string message = error_of([&] { validate_schedule(s, 12); });
  EXPECT_NE(message.find("has 3 keep ratios"), std::string::npos) << message;
  EXPECT_NE(message.find("expected 12"), std::string::npos) << message;
  EXPECT_NO_THROW(validate_schedule(s, 3));
  // Dense (no ratios) fits any model.
  EXPECT_NO_THROW(validate_schedule(FcaSchedule{}, 12));
  // A schedule from elsewhere (the model file) gets the value checks too.
  s.keep_ratios = {1.0, 0.5, 0.7};
  message = error_of([&] { validate_schedule(s, 3); });
  EXPECT_NE(message.find("layer 2 keeps 0.7"), std::string::npos) << message;
  s.keep_ratios = {1.0, 0.5, 0.0};
  message = error_of([&] { validate_schedule(s, 3); });
  EXPECT_NE(message.find("layer 2 is 0;"), std::string::npos) << message;
  s.keep_ratios = {1.0, 0.5, 0.5};
  s.clusters = -3;
  message = error_of([&] { validate_schedule(s, 3); });
  EXPECT_NE(message.find("-3"), std::string::npos) << message;
}

TEST(FcaSchedule, KeepCount) {
  EXPECT_EQ(keep_count(0.5, 10), 5);
  EXPECT_EQ(keep_count(0.51, 10), 6);
  EXPECT_EQ(keep_count(1.0, 128), 128);
  EXPECT_EQ(keep_count(0.01, 10), 1);   // ceil(0.1) = 1
  EXPECT_EQ(keep_count(0.001, 10), 1);  // never below 1
  EXPECT_EQ(keep_count(1e-12, 10), 1);  // ceil(1e-11 - 1e-9) = 0 -> 1
  EXPECT_EQ(keep_count(0.3, 10), 3);
  // The 1e-9: 0.14 * 50 = 7.000000000000001 and 0.56 * 50 = 28.000000000000004 in double.
  EXPECT_GT(0.14 * 50, 7.0);
  EXPECT_EQ(keep_count(0.14, 50), 7);
  EXPECT_EQ(keep_count(0.56, 50), 28);
  // 0.29 * 100 = 28.999999999999996 rounds up to 29.
  EXPECT_EQ(keep_count(0.29, 100), 29);
  // A ratio that went through float is a different number: 0.3f * 10 = 3.0000001192...
  EXPECT_EQ(keep_count(static_cast<double>(0.3f), 10), 4);
}

TEST(FcaSchedule, ReductionShape) {
  // m = 5 > C = 2: reduce to k + C.
  ReductionShape s = reduction_shape(10, 5, 2);
  EXPECT_TRUE(s.reduce);
  EXPECT_EQ(s.fine, 5);
  EXPECT_EQ(s.coarse, 5);
  EXPECT_EQ(s.clusters, 2);
  EXPECT_EQ(s.pooled_rows, 5);
  EXPECT_EQ(s.rows_out, 7);
  // m = 2 <= C = 2: pass through.
  s = reduction_shape(6, 4, 2);
  EXPECT_FALSE(s.reduce);
  EXPECT_EQ(s.rows_out, 6);
  EXPECT_EQ(s.fine, 6);
  EXPECT_EQ(s.clusters, 0);
  EXPECT_EQ(s.coarse, 0);
  // k >= n: pass through.
  EXPECT_FALSE(reduction_shape(4, 9, 0).reduce);
  EXPECT_EQ(reduction_shape(4, 9, 0).rows_out, 4);
  // C = 0: drop as soon as m > 0.
  s = reduction_shape(6, 5, 0);
  EXPECT_TRUE(s.reduce);
  EXPECT_EQ(s.rows_out, 5);
  EXPECT_EQ(s.coarse, 1);
  EXPECT_EQ(s.pooled_rows, 0);
  EXPECT_FALSE(reduction_shape(6, 6, 0).reduce);
}

TEST(FcaSchedule, ScheduleShapes) {
  const FcaSchedule s = parse_schedule("1,0.5,0.3", 2, "weighted");
  const std::vector<ReductionShape> shapes = schedule_shapes(s, 3, 10);
  ASSERT_EQ(shapes.size(), 3u);
  // Layer 0: k = 10 >= n: pass. Layer 1: k = 5, m = 5 > 2 -> 7. Layer 2: k = 3, m = 4 > 2 -> 5.
  EXPECT_FALSE(shapes[0].reduce);
  EXPECT_EQ(shapes[0].rows_out, 10);
  EXPECT_EQ(shapes[1].rows_in, 10);
  EXPECT_EQ(shapes[1].rows_out, 7);
  EXPECT_EQ(shapes[2].rows_in, 7);
  EXPECT_EQ(shapes[2].keep, 3);
  EXPECT_EQ(shapes[2].rows_out, 5);
  // Dense: nothing changes.
  for (const ReductionShape& shape : schedule_shapes(FcaSchedule{}, 3, 10)) {
    EXPECT_FALSE(shape.reduce);
    EXPECT_EQ(shape.rows_out, 10);
  }
  EXPECT_THROW(schedule_shapes(s, 4, 10), Error);
  EXPECT_THROW(schedule_shapes(s, 3, 0), Error);
}

}  // namespace
}  // namespace fcabert::fca
