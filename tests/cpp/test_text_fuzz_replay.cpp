// Replays fuzz/corpus/tokenizer/ and fuzz/regressions/tokenizer/ through the tokenizer fuzz target.
#include <algorithm>

#include "fuzz_replay.h"

#define LLVMFuzzerTestOneInput fuzz_tokenizer_one_input
#include "../../fuzz/fuzz_tokenizer.cpp"
#undef LLVMFuzzerTestOneInput

namespace fcabert {
namespace {

TEST(FuzzReplay, TokenizerInputs) {
  EXPECT_GT(fuzz_replay::replay("tokenizer", fuzz_tokenizer_one_input), 0u)
      << "no seeds in fuzz/corpus/tokenizer";
}

}  // namespace
}  // namespace fcabert
