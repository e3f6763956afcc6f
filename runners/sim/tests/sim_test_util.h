// Runs a scenario on the sim and folds the windowed observations into whole-guest state.
#pragma once

#include <string>
#include <vector>

#include "domain/interval_map.h"
#include "domain/types.h"

namespace tdxhp::simtest {

struct LeafAt {
  Level level = Level::L4K;
  uint64_t delta = 0;  // pfn - gfn
  bool operator==(const LeafAt&) const = default;
};

// A held vCPU 1 op as it finally ran: at the mmu_lock drop of op `during`, or after it.
struct Vcpu1Run {
  size_t op = 0;       // index of the queued op in the scenario
  size_t during = 0;   // index of the op it ran during / after
  bool at_drop = false;
  Outcome outcome;
};

struct SimRun {
  int setup_err = 0;
  std::vector<Outcome> outcomes;   // one per op; a queued op's own outcome says "queued"
  std::vector<Vcpu1Run> vcpu1;     // held ops in the order they ran
  std::vector<int> drop_hook_calls;  // per op: how often the sim called the mmu_lock-drop hook
  std::vector<Observation> observations;  // [0] after setup, then one per op
  IntervalMap<LeafAt> private_leaves, shared_leaves;
  std::string events;      // every event, one line each
  std::string fingerprint; // outcomes + final leaves + backing + internals (no event log)
  Observation after_teardown;
  bool bug_on = false;
};

Scenario scenario_of(const std::string& case_path);
// Plays the engine's vCPU 1 (properties/lockstep.cpp) too: queued ops are held and run at
// the next op's first mmu_lock drop, or after it from the first one that must wait.
SimRun run(const Scenario& s, const std::vector<std::string>& mutants = {}, uint64_t seed = 0);
std::string fixture_dir();
// Level of the private leaf at gfn, or -1 when unmapped.
int private_level(const SimRun& r, Gfn g);

}  // namespace tdxhp::simtest
