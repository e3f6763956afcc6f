// The yardstick for time to detect (issue 16): a uniform op generator with none of the
// default generator's knowledge. Op kinds, gfns, range ends and accept levels are drawn
// uniformly; configs come from the shipped config generator. Kept in bench/ only: it is a
// baseline to measure the default generator against, never a way to run the suite.
#pragma once

#include <vector>

#include "generators/op_gen.h"

namespace tdxhp::bench {

std::vector<Op> uniform_ops(gen::Choices& ch, const gen::OpContext& ctx);

}  // namespace tdxhp::bench
