// A registry property as a RapidCheck property: generate a scenario for the target's caps,
// run it in lockstep, fail on the first violation of the property's invariants.
#pragma once

#include <atomic>
#include <functional>
#include <memory>

#include "domain/target.h"
#include "generators/profile.h"
#include "properties/lockstep.h"
#include "properties/registry.h"

namespace tdxhp {

using TargetFactory = std::function<std::unique_ptr<Target>()>;

// The engine sees every case: before (pending case file on real targets) and after (counters).
struct CaseHooks {
  std::function<void(const Scenario&)> before;
  std::function<void(const Scenario&, const LockstepResult&)> after;
};

struct PropertyRun {
  const PropertyInfo* info = nullptr;
  gen::GenProfile profile;
  TargetFactory make_target;
  // Mutant hunting: a case counts as failing only if it also passes on this reference target
  // (the clean sim), so the shrunk case shows the mutant's bug, not a bug the clean sim shares.
  TargetFactory make_reference;
  CaseHooks hooks;
  const std::atomic<bool>* interrupt = nullptr;  // SIGINT/SIGTERM: end the running case early
  std::function<bool()> budget_over;             // true: skip remaining cases of this batch
};

// The body RapidCheck calls once per case (and per shrink attempt).
std::function<void()> rc_property(PropertyRun run);

}  // namespace tdxhp
