// Where a result comes from: the tdxhp version and commit, and the host's kernel release. Every
// output that may travel (results, KTAP, JUnit, reports) records them.
#pragma once

#include <string>

namespace tdxhp {

std::string tdxhp_version();  // "0.6.0"
std::string tdxhp_commit();   // git describe of the build's tree, "-dirty" when it had changes
std::string kernel_release(); // uname -r of the host running tdxhp

}  // namespace tdxhp
