// Which SC-* shapes (DOMAIN.md section 5) a scenario's op sequence contains. Judged from the
// ops and config alone, so it is the same on every target; a run counts these per case.
#pragma once

#include <string_view>
#include <vector>

#include "domain/types.h"

namespace tdxhp::gen {

// The SC-* ids, sorted; literals (a run classifies every case, so this allocates once).
std::vector<std::string_view> scenario_shapes(const Scenario& s);

}  // namespace tdxhp::gen
