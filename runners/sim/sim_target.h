// The simulated host as a Target (domain/target.h): deterministic for a given seed and case.
#pragma once

#include <cstdint>
#include <memory>

#include "domain/target.h"

namespace tdxhp {

std::unique_ptr<Target> make_sim_target(uint64_t seed = 0);

}  // namespace tdxhp
