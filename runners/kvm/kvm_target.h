// The real-KVM target (DESIGN.md "Targets": kvm). Flavours tdx / swprot / plain are chosen
// by probing this host; each reports what it can and cannot do through Caps.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "domain/target.h"

namespace tdxhp::kvm {

struct Probe {
  std::string flavour;              // "tdx" | "swprot" | "plain" | "" (best available)
  Caps caps;                        // of that flavour
  std::vector<std::string> report;  // human lines: what works, what not, why
};

Probe probe();

// flavour "" picks the best available (tdx > swprot > plain). nullptr with *why when the
// flavour cannot run on this host.
// The shared side of each slot comes from Config::shared_backing (the case file), so a replay
// builds the same host memory the run did.
std::unique_ptr<Target> make_target(const std::string& flavour, std::string* why);

// Why a flavour cannot run on this host (empty when it can). Reads only.
std::string flavour_absence(const std::string& flavour);

}  // namespace tdxhp::kvm
