#pragma once
// The FCA schedule flags shared by classify, profile, eval and fcabert-bench:
//   --keep-ratios 1,0.9,...  --clusters C  --pooling weighted|mean  --dense
// Each overrides only its own part of the model file's schedule.
#include <CLI/CLI.hpp>
#include <cstdint>
#include <optional>
#include <string>

#include "fcabert/config.h"

namespace fcabert::cli {

struct ScheduleFlags {
  std::string keep_ratios;
  std::optional<int64_t> clusters;
  std::optional<std::string> pooling;
  bool dense = false;
};

void add_schedule_flags(CLI::App* command, ScheduleFlags& flags);

// The schedule a Session should run (unset = the file's own), validated against the model;
// throws fcabert::Error naming the flag that is wrong.
std::optional<FcaSchedule> resolve_schedule(const ScheduleFlags& flags, const ModelInfo& info);

}  // namespace fcabert::cli
