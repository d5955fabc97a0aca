// Packing encodings into one token list with per-sequence offsets.
#include <gtest/gtest.h>

#include "fcabert/error.h"
#include "model/packed_batch.h"
#include "test_model_tiny_bert.h"

namespace fcabert::model {
namespace {

Encoding encoding(std::vector<int32_t> ids, std::vector<int32_t> types) {
  return Encoding{ids, types, false};
}

TEST(PackBatch, ConcatenatesWithOffsetsAndPositions) {
  PackedBatch packed;
  pack_batch({encoding({1, 2, 3}, {0, 0, 1}), encoding({4}, {0}), encoding({5, 6}, {0, 1})},
             model_test::tiny_config(), packed);
  EXPECT_EQ(packed.ids, (std::vector<int32_t>{1, 2, 3, 4, 5, 6}));
  EXPECT_EQ(packed.type_ids, (std::vector<int32_t>{0, 0, 1, 0, 0, 1}));
  EXPECT_EQ(packed.positions, (std::vector<int32_t>{0, 1, 2, 0, 0, 1}));
  EXPECT_EQ(packed.offsets, (std::vector<int64_t>{0, 3, 4, 6}));
  EXPECT_EQ(packed.tokens(), 6);
  EXPECT_EQ(packed.sequences(), 3);
  EXPECT_EQ(packed.longest(), 3);
}

TEST(PackBatch, ReusesTheBatchAndLeavesItIntactOnError) {
  PackedBatch packed;
  const BertConfig config = model_test::tiny_config();
  pack_batch({encoding({1, 2}, {0, 0})}, config, packed);
  EXPECT_THROW(pack_batch({encoding({7}, {0}), encoding({}, {})}, config, packed), Error);
  EXPECT_EQ(packed.offsets, (std::vector<int64_t>{0, 2}));
  pack_batch({}, config, packed);
  EXPECT_EQ(packed.tokens(), 0);
  EXPECT_EQ(packed.sequences(), 0);
}

}  // namespace
}  // namespace fcabert::model
