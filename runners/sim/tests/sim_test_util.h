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

struct SimRun {
  int setup_err = 0;
  std::vector<Outcome> outcomes;
  std::vector<Observation> observations;  // [0] after setup, then one per op
  IntervalMap<LeafAt> private_leaves, shared_leaves;
  std::string events;      // every event, one line each
  std::string fingerprint; // outcomes + final leaves + backing + internals (no event log)
  Observation after_teardown;
  bool bug_on = false;
};

Scenario scenario_of(const std::string& case_path);
SimRun run(const Scenario& s, const std::vector<std::string>& mutants = {}, uint64_t seed = 0);
std::string fixture_dir();
// Level of the private leaf at gfn, or -1 when unmapped.
int private_level(const SimRun& r, Gfn g);

}  // namespace tdxhp::simtest
