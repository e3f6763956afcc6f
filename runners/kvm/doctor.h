// `tdxhp doctor` (issue 14): every host fact the kvm flavours need, ok or missing with the
// exact command that fixes it. Reads only (sysfs, procfs, ioctls on VMs it closes again);
// changes nothing, unlike `tdxhp caps`, which also recovers state a killed run left behind.
#pragma once

#include <string>
#include <vector>

namespace tdxhp::kvm {

struct DoctorCheck {
  std::string name;    // the fact, e.g. "kvm_intel.tdx_huge_page"
  bool ok = false;
  std::string detail;  // what was read, and why it matters
  std::string fix;     // missing only: the command (or step) that fixes it
  std::string needed_for;  // which flavour or observation needs it
};

struct DoctorFlavour {
  std::string name;    // kvm/tdx, kvm/swprot, kvm/plain
  std::string absent;  // empty: usable
};

struct DoctorReport {
  std::vector<DoctorCheck> checks;
  std::vector<DoctorFlavour> flavours;
  bool usable() const;
};

DoctorReport doctor();

}  // namespace tdxhp::kvm
