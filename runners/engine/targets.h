// Builds targets by name: "sim" (with MUT-* switches), "kvm" or "kvm/<flavour>" when built.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "domain/target.h"

namespace tdxhp::engine {

// Returns null with *why set when the target is unknown, not built here, or a mutant is unknown.
std::unique_ptr<Target> make_target(const std::string& name, const std::vector<std::string>& mutants,
                                    uint64_t seed, std::string* why);
bool is_real_target(const std::string& name);
bool kvm_built();

}  // namespace tdxhp::engine
