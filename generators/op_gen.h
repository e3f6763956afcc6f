// Op sequences, biased the way the bugs live (issue 4): ranges whose ends sit at every
// alignment class (4K, 2M, 1G, slot edge), re-use of a few hot 2M/1G regions, sub-ranges of
// huge mappings, conversions back and forth, accept levels that disagree with the mapping, and
// injected faults. Every op is runnable in any state, so every sequence the shrinker keeps is
// runnable too. Drawn from Choices (generators/choices.h).
#pragma once

#include <vector>

#include "domain/types.h"
#include "generators/choices.h"
#include "generators/profile.h"

namespace tdxhp::gen {

// What one case's ops are drawn against: its config, the profile, and the regions the case
// keeps coming back to (2M-aligned gfns inside the slots).
struct OpContext {
  const Config& config;
  const GenProfile& profile;
  std::vector<Gfn> hot;
};

OpContext draw_context(Choices& ch, const Config& config, const GenProfile& profile);
GfnRange range_near(Choices& ch, const OpContext& ctx, Gfn block);
// One motif: a short run of ops that exercises one bug shape; shrinking may drop any of them.
std::vector<Op> motif(Choices& ch, const OpContext& ctx);
// The case's ops: up to size * 12 / 100 motifs, or a swarm (generators/swarm_gen.h).
std::vector<Op> draw_ops(Choices& ch, const OpContext& ctx, int size);

}  // namespace tdxhp::gen
