#include "runners/sim/faults.h"

#include <cerrno>

namespace tdxhp::sim {

int FaultPlan::arm(const Inject& in) {
  const bool seamcall_site = in.site == FaultSite::Block || in.site == FaultSite::Track || in.site == FaultSite::Demote;
  const bool alloc_site = in.site == FaultSite::SplitCacheTopup || in.site == FaultSite::FolioSplit;
  const bool valid = (seamcall_site && in.fault == FaultKind::Busy) ||
                     (in.site == FaultSite::Demote && in.fault == FaultKind::InterruptedRestartable) ||
                     (alloc_site && in.fault == FaultKind::NoMem);
  if (!valid || in.count == 0) return -EINVAL;
  auto& slot = armed_[static_cast<int>(in.site)][static_cast<int>(in.fault)];
  slot += in.count;
  return 0;
}

bool FaultPlan::take(FaultSite site, FaultKind kind) {
  auto& slot = armed_[static_cast<int>(site)][static_cast<int>(kind)];
  if (slot == 0) return false;
  --slot;
  return true;
}

}  // namespace tdxhp::sim
