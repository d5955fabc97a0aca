#include "cli/schedule_options.h"

#include <sstream>

#include "fcabert/error.h"
#include "fcabert/fca.h"

namespace fcabert::cli {

void add_schedule_flags(CLI::App* command, ScheduleFlags& flags) {
  command->add_option("--keep-ratios", flags.keep_ratios,
                      "FCA keep ratio per layer, e.g. 1,1,0.8,0.6,0.5,0.4 (default: the model's schedule)");
  command->add_option("--clusters", flags.clusters, "FCA clusters C per layer (0 = drop the other tokens)");
  command->add_option("--pooling", flags.pooling, "FCA cluster pooling: weighted or mean");
  command->add_flag("--dense", flags.dense, "turn FCA off: run every layer on all tokens");
}

std::optional<FcaSchedule> resolve_schedule(const ScheduleFlags& flags, const ModelInfo& info) {
  const bool overridden = !flags.keep_ratios.empty() || flags.clusters || flags.pooling;
  if (flags.dense) {
    if (overridden) throw Error("--dense cannot be combined with --keep-ratios, --clusters or --pooling");
    return FcaSchedule{};
  }
  if (!overridden) return std::nullopt;
  FcaSchedule schedule = info.fca;
  if (!flags.keep_ratios.empty()) {
    schedule = fca::parse_schedule(flags.keep_ratios, flags.clusters.value_or(schedule.clusters),
                                   flags.pooling.value_or(fca::pooling_name(schedule.pooling)));
  } else {
    if (!schedule.enabled())
      throw Error("this model has no FCA schedule; --clusters and --pooling need --keep-ratios too");
    if (flags.clusters) schedule.clusters = *flags.clusters;
    if (flags.pooling) schedule.pooling = fca::parse_pooling(*flags.pooling);
  }
  try {
    fca::validate_schedule(schedule, info.bert.num_layers);
  } catch (const Error& e) {
    throw Error(std::string("--keep-ratios: ") + e.what());
  }
  return schedule;
}

}  // namespace fcabert::cli
