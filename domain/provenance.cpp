#include "domain/provenance.h"

#include <sys/utsname.h>

#include <fstream>

#include "tdxhp_version.h"

namespace tdxhp {

std::string tdxhp_version() { return TDXHP_VERSION; }
std::string tdxhp_commit() { return TDXHP_COMMIT; }

std::string kernel_release() {
  utsname u{};
  return uname(&u) == 0 ? u.release : "unknown";
}

std::string tdx_module_version() {
  // Read once per process: every checkpoint's three result files ask for it.
  static const std::string version = [] {
    std::ifstream in("/sys/devices/faux/tdx_host/version");
    std::string v;
    if (!in || !std::getline(in, v)) return std::string();
    if (v.size() > 32) v.resize(32);  // a version, not a file: never carry more into a report
    return v;
  }();
  return version;
}

std::string tdx_module_for(const std::string& target) {
  if (target.rfind("sim", 0) == 0) return "simulated (domain/SEMANTICS.md, The TDX module's own rules)";
  if (target.find("tdx") == std::string::npos) return "none (" + target + " runs no TD)";
  const std::string v = tdx_module_version();
  return v.empty() ? "unknown (no /sys/devices/faux/tdx_host/version on this kernel)" : v;
}

}  // namespace tdxhp
