// Which SC-* shapes (DOMAIN.md section 5) a scenario's op sequence contains. Judged from the
// ops and config alone, so it is the same on every target; a run counts these per case.
#pragma once

#include <string>
#include <vector>

#include "domain/types.h"

namespace tdxhp::gen {

std::vector<std::string> scenario_shapes(const Scenario& s);

}  // namespace tdxhp::gen
