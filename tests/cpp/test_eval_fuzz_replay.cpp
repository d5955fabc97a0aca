// Replays fuzz/corpus/glue_reader/ and fuzz/regressions/glue_reader/ through the glue_reader fuzz target.
#include <algorithm>

#include "fuzz_replay.h"

#define LLVMFuzzerTestOneInput fuzz_glue_reader_one_input
#include "../../fuzz/fuzz_glue_reader.cpp"
#undef LLVMFuzzerTestOneInput

namespace fcabert {
namespace {

TEST(FuzzReplay, GlueReaderInputs) {
  EXPECT_GT(fuzz_replay::replay("glue_reader", fuzz_glue_reader_one_input), 0u)
      << "no seeds in fuzz/corpus/glue_reader";
}

}  // namespace
}  // namespace fcabert
