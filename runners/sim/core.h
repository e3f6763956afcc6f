// State every sim component shares: config, mutant switches, armed faults, the step log and
// the TD's life (RUNNABLE after finalize, dead after KVM_BUG_ON).
#pragma once

#include <string>

#include "domain/types.h"
#include "runners/sim/faults.h"
#include "runners/sim/mutants.h"
#include "runners/sim/step_log.h"

namespace tdxhp::sim {

struct SimCore {
  Config cfg;
  Mutants mut;
  FaultPlan faults;
  StepLog log;
  bool runnable = false;
  bool dead = false;

  // KVM_BUG_ON: the VM is dead, every later ioctl returns -EIO (L1580-1589).
  void bug_on(const std::string& why) {
    if (dead) return;
    dead = true;
    log.note(EventKind::KvmBugOn, "KVM_BUG_ON", why);
    log.kernel_log.push_back("KVM_BUG_ON: " + why);
  }
  bool dynamic_pamt() const { return cfg.features.dynamic_pamt; }
};

}  // namespace tdxhp::sim
