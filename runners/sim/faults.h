// Fault injection as ops (FoundationDB BUGGIFY style): Inject arms the next N hits of a site.
// Deterministic: a site fails exactly when armed, never at random.
#pragma once

#include <array>
#include <cstdint>

#include "domain/types.h"

namespace tdxhp::sim {

class FaultPlan {
 public:
  // 0, or -EINVAL for a site/fault pair that cannot happen (SEMANTICS.md "Inject").
  int arm(const Inject& in);
  // Consumes one armed fault of `kind` at `site`; true when this hit must fail.
  bool take(FaultSite site, FaultKind kind);
  void clear() { armed_ = {}; }

 private:
  static constexpr int kSites = 5, kKinds = 3;
  std::array<std::array<uint32_t, kKinds>, kSites> armed_{};
};

}  // namespace tdxhp::sim
