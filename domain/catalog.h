// The IDs of DOMAIN.md: invariants (section 4), scenarios (5), mutants (6). Stable strings.
#pragma once

#include <string_view>
#include <vector>

namespace tdxhp {

struct InvariantInfo {
  std::string_view id, summary, source;
};
struct MutantInfo {
  std::string_view id, behaviour, caught_by, source;  // caught_by: comma-separated INV-*
};
struct ScenarioInfo {
  std::string_view id, summary, source;
};

const std::vector<InvariantInfo>& invariants();
const std::vector<MutantInfo>& mutants();
const std::vector<ScenarioInfo>& scenarios();

const InvariantInfo* find_invariant(std::string_view id);
const MutantInfo* find_mutant(std::string_view id);
const ScenarioInfo* find_scenario(std::string_view id);

}  // namespace tdxhp
