// Replays fuzz/corpus/model_file/ and fuzz/regressions/model_file/ through the model_file fuzz target.
#include <algorithm>

#include "fuzz_replay.h"

#define LLVMFuzzerTestOneInput fuzz_model_file_one_input
#include "../../fuzz/fuzz_model_file.cpp"
#undef LLVMFuzzerTestOneInput

namespace fcabert {
namespace {

TEST(FuzzReplay, ModelFileInputs) {
  EXPECT_GT(fuzz_replay::replay("model_file", fuzz_model_file_one_input), 0u)
      << "no seeds in fuzz/corpus/model_file";
}

}  // namespace
}  // namespace fcabert
