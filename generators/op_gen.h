// RapidCheck generators for op sequences, biased the way the bugs live (issue 4):
// ranges whose ends sit at every alignment class (4K, 2M, 1G, slot edge), re-use of a few hot
// 2M/1G regions, sub-ranges of huge mappings, conversions back and forth, accept levels that
// disagree with the mapping, and injected faults. Every op is runnable in any state, so every
// subsequence RapidCheck keeps while shrinking is runnable too.
#pragma once

#include <rapidcheck.h>

#include <vector>

#include "domain/types.h"
#include "generators/profile.h"

namespace tdxhp::gen {

// The regions a scenario keeps coming back to: 2M-aligned gfns inside the slots.
struct OpContext {
  Config config;
  GenProfile profile;
  std::vector<Gfn> hot;
};

rc::Gen<OpContext> op_context(const Config& config, const GenProfile& profile);
rc::Gen<GfnRange> range_near(const OpContext& ctx, Gfn block);
// One motif: a short run of ops that exercises one bug shape; shrinking may drop any of them.
rc::Gen<std::vector<Op>> motif(const OpContext& ctx);
rc::Gen<std::vector<Op>> ops(const OpContext& ctx);

}  // namespace tdxhp::gen
