// Fault injection as ops (FoundationDB BUGGIFY style): Inject arms the next N attempts at a site.
// Deterministic: a site fails exactly when armed, never at random; per site in arming order.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <utility>
#include <vector>

#include "domain/types.h"

namespace tdxhp::sim {

class FaultPlan {
 public:
  // 0, or -EINVAL for a site/status pair that cannot happen (SEMANTICS.md "Inject").
  int arm(const Inject& in);
  // Consumes one armed attempt at `site`: the status to return (0 for an allocation site's
  // -ENOMEM), or nullopt when nothing is armed there.
  std::optional<uint64_t> take(FaultSite site);
  void clear() { armed_ = {}; }

 private:
  // (status, attempts left) per site, oldest first. A vector: an empty one costs no allocation,
  // and a plan is built per case (a deque allocates even when empty).
  std::array<std::vector<std::pair<uint64_t, uint32_t>>, kFaultSites> armed_;
};

}  // namespace tdxhp::sim
