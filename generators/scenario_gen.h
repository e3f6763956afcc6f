// The whole generated case: a valid config, then ops aimed at that config's hot regions.
#pragma once

#include <ostream>
#include <rapidcheck.h>

#include "domain/types.h"
#include "generators/profile.h"

namespace tdxhp {
// RapidCheck prints counterexamples with these (found by ADL).
void showValue(const Scenario& s, std::ostream& os);
void showValue(const Op& op, std::ostream& os);
}  // namespace tdxhp

namespace tdxhp::gen {
class Choices;

rc::Gen<Scenario> scenario(const GenProfile& profile);
// The case that `ch` draws: config first, then the hot regions, then the ops. The same record
// draws the same case; scenario() shrinks by editing the record and drawing again.
Scenario draw_scenario(Choices& ch, const GenProfile& profile, int size);
}  // namespace tdxhp::gen
