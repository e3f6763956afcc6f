// Where a result comes from: the tdxhp version and commit, and the host's kernel release. Every
// output that may travel (results, KTAP, JUnit, reports) records them.
#pragma once

#include <string>

namespace tdxhp {

std::string tdxhp_version();  // "0.6.0"
std::string tdxhp_commit();   // git describe of the build's tree, "-dirty" when it had changes
std::string kernel_release(); // uname -r of the host running tdxhp
// The loaded TDX module's "major.minor.update" from /sys/devices/faux/tdx_host/version (added by the
// TDX module update series, Documentation/ABI/testing/sysfs-devices-faux-tdx-host), or "" when the
// kernel has no such file.
std::string tdx_module_version();
// What a result on `target` ("sim", "kvm/tdx", ...) can say about the TDX module it ran against.
std::string tdx_module_for(const std::string& target);

}  // namespace tdxhp
