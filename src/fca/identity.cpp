// Row identities for --explain: an original token position, or the cluster "c<layer>.<group>".
#include <algorithm>
#include <nlohmann/json.hpp>
#include <string>

#include "fcabert/error.h"
#include "fca/reduction.h"

namespace fcabert::fca {

RowIdentity RowIdentity::token(int64_t position) {
  RowIdentity identity;
  identity.position = static_cast<int32_t>(position);
  return identity;
}

RowIdentity RowIdentity::cluster(int64_t layer, int64_t group) {
  RowIdentity identity;
  identity.layer = static_cast<int32_t>(layer);
  identity.group = static_cast<int32_t>(group);
  return identity;
}

std::string RowIdentity::to_string() const {
  if (!is_cluster()) return std::to_string(position);
  return "c" + std::to_string(layer) + "." + std::to_string(group);
}

nlohmann::ordered_json to_json_value(const RowIdentity& identity) {
  if (identity.is_cluster()) return identity.to_string();
  return identity.position;
}

std::vector<RowIdentity> initial_identities(int64_t original_length) {
  std::vector<RowIdentity> identities;
  identities.reserve(static_cast<size_t>(std::max<int64_t>(original_length, 0)));
  for (int64_t i = 0; i < original_length; ++i) identities.push_back(RowIdentity::token(i));
  return identities;
}

std::vector<RowIdentity> map_identities(const ReductionPlan& plan, int64_t layer,
                                        const std::vector<RowIdentity>& identities) {
  if (static_cast<int64_t>(identities.size()) != plan.rows_in())
    throw Error("FCA: " + std::to_string(identities.size()) + " row identities for a plan over " +
                std::to_string(plan.rows_in()) + " rows");
  std::vector<RowIdentity> result;
  result.reserve(static_cast<size_t>(plan.rows_out()));
  for (const int64_t row : plan.fine) result.push_back(identities[row]);
  for (int64_t g = 0; g < plan.clusters(); ++g) result.push_back(RowIdentity::cluster(layer, g));
  return result;
}

}  // namespace fcabert::fca
