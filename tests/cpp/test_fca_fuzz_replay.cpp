// Replays fuzz/corpus/schedule/ and fuzz/regressions/schedule/ through the schedule fuzz target.
#include <algorithm>

#include "fuzz_replay.h"

#define LLVMFuzzerTestOneInput fuzz_schedule_one_input
#include "../../fuzz/fuzz_schedule.cpp"
#undef LLVMFuzzerTestOneInput

namespace fcabert {
namespace {

TEST(FuzzReplay, ScheduleInputs) {
  EXPECT_GT(fuzz_replay::replay("schedule", fuzz_schedule_one_input), 0u)
      << "no seeds in fuzz/corpus/schedule";
}

}  // namespace
}  // namespace fcabert
