#include "runners/sim/faults.h"

#include <cerrno>

namespace tdxhp::sim {

int FaultPlan::arm(const Inject& in) {
  // A SEAMCALL site fails with an error status, an allocation site with -ENOMEM (status 0).
  const bool valid = is_seamcall_site(in.site) ? in.status != tdx::kSuccess : in.status == 0;
  if (!valid || in.count == 0) return -EINVAL;
  armed_[static_cast<size_t>(in.site)].push_back({in.status, in.count});
  return 0;
}

std::optional<uint64_t> FaultPlan::take(FaultSite site) {
  auto& q = armed_[static_cast<size_t>(site)];
  if (q.empty()) return std::nullopt;
  const uint64_t status = q.front().first;
  if (--q.front().second == 0) q.erase(q.begin());
  return status;
}

}  // namespace tdxhp::sim
