// `tdxhp replay`: re-runs a scenario deterministically and prints its steps in domain words;
// with trace, every step's outcome, the oracle's verdict and view, and the target's event log.
#pragma once

#include <atomic>
#include <iosfwd>
#include <string>
#include <vector>

#include "domain/case_file.h"
#include "domain/target.h"
#include "properties/lockstep.h"

namespace tdxhp::engine {

struct ReplayOptions {
  bool trace = false;              // per-step outcome, oracle verdict, event log
  std::set<std::string> invariants;  // empty: every invariant counts
  const std::atomic<bool>* stop = nullptr;  // SIGINT/SIGTERM: stop before the next step
};

// Runs s on target and writes one line per step ("step 2: convert ... -> ok"), marking the
// first violation. Returns the lockstep result.
LockstepResult replay_scenario(Target& target, const Scenario& s, const ReplayOptions& opt, std::ostream& out);

}  // namespace tdxhp::engine
