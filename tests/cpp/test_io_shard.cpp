// --shard K/N (include/fcabert/shard.h): parsing, range checks and which items a shard owns.
#include <gtest/gtest.h>

#include <string>

#include "fcabert/error.h"
#include "fcabert/shard.h"

namespace fcabert {
namespace {

TEST(Shard, ParsesKOfN) {
  const Shard shard = parse_shard("2/8");
  EXPECT_EQ(shard.index, 2);
  EXPECT_EQ(shard.count, 8);
  EXPECT_EQ(shard.to_string(), "2/8");
  EXPECT_EQ(parse_shard("1/1").count, 1);
}

TEST(Shard, RefusesAnythingElseNamingTheOption) {
  for (const std::string bad :
       {"", "2", "2/", "/8", "a/8", "2/8x", "2 /8", "0/8", "9/8", "1/0", "-1/2", "2/8/1"}) {
    try {
      parse_shard(bad, "--shard");
      ADD_FAILURE() << "'" << bad << "' was accepted";
    } catch (const Error& e) {
      EXPECT_EQ(std::string(e.what()).rfind("--shard ", 0), 0u) << e.what();
    }
  }
  EXPECT_THROW(validate_shard({3, 2}), Error);
  EXPECT_NO_THROW(validate_shard({2, 2}));
}

TEST(Shard, OwnsEveryNthItemFromTheKth) {
  const Shard second{2, 3};
  std::string owned;
  for (int64_t i = 0; i < 9; ++i) owned += second.owns(i) ? '1' : '0';
  EXPECT_EQ(owned, "010010010");
  EXPECT_TRUE(Shard{}.owns(5));
}

}  // namespace
}  // namespace fcabert
