// Runs one scenario step by step on a target with the oracle in lockstep (DESIGN.md "Shape"):
// apply, observe, let the oracle judge, stop at the first violation that counts.
#pragma once

#include <atomic>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <string>

#include "domain/target.h"
#include "domain/types.h"
#include "oracles/oracle.h"

namespace tdxhp {

// What one step did, for traces (replay --trace) and progress counters.
struct StepView {
  int64_t step;                 // op index, or kSetupStep / kTeardownStep
  const Op* op;                 // null for setup and teardown
  const Outcome* outcome;       // null for setup and teardown
  const Observation& observation;
  const std::vector<Violation>& violations;  // every violation the oracle reported, unfiltered
  const Oracle& oracle;
  // A queued guest op running later (SEMANTICS.md "Queued guest ops"): the step of the op
  // during which it ran, and whether at that op's mmu_lock drop or right after it.
  int64_t ran_during = -1;
  bool at_mmu_lock_drop = false;
};
using StepSink = std::function<void(const StepView&)>;

struct LockstepOptions {
  // Violations that count; empty = all. Observer faults, kernel WARNs, setup and crash
  // findings always count (counts_for_every_property).
  std::set<std::string> invariants;
  StepSink on_step;                            // optional
  const std::atomic<bool>* stop = nullptr;     // set by SIGINT/SIGTERM: end the case early
};

struct LockstepResult {
  bool ran = false;              // false: the target could not build this config (not a pass)
  std::string not_run_reason;
  bool interrupted = false;
  int64_t steps = 0;             // ops applied
  std::optional<Violation> violation;  // the first one that counts
  Evidence evidence;             // what the oracle looked at in this case
  const std::map<std::string, std::string>* coverage = nullptr;  // Oracle::coverage() for this case
  double seconds = 0;         // wall time of the case in lockstep
  double target_seconds = 0;  // of which inside the target's calls (the rest: oracle and checks)
};

LockstepResult run_lockstep(Target& target, const Scenario& s, const LockstepOptions& opt = {});
// run_lockstep, and where the target ran the case on a VM reset from an earlier case and saw
// a violation, once more on a new VM: that verdict counts. A violation only the reused VM
// shows is kept, marked as such (a KVM or tdxhp reset bug, not the case's).
LockstepResult run_confirmed(Target& target, const Scenario& s, const LockstepOptions& opt);

}  // namespace tdxhp
