// Swarm testing (Groce et al., ISSTA 2012) beside the motifs: each case draws its own subset of
// op kinds and then ops from that subset with uniform ranges, levels and faults. The motifs aim
// at known bug shapes; the swarm reaches the shapes nobody wrote a motif for (a uniform
// generator found the in-place conversion race of shared/findings that 3.1M motif cases missed).
#pragma once

#include <vector>

#include "domain/types.h"
#include "generators/op_gen.h"

namespace tdxhp::gen {

std::vector<Op> swarm_ops(Choices& ch, const OpContext& ctx);

}  // namespace tdxhp::gen
