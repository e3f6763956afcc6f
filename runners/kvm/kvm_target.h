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

// Settings no domain Config field carries yet.
struct KvmOptions {
  // swprot: backing of each slot's *shared* memory (userspace_addr): 4K (THP off), THP, or
  // hugetlb 2M/1G. Config::backing names guest_memfd folios, 4K-only in 6.12, so configs with
  // a huge Config::backing are refused rather than run with expectations the kernel cannot meet.
  BackingKind shared_backing = BackingKind::Page4K;
};

// flavour "" picks the best available (tdx > swprot > plain). nullptr with *why when the
// flavour cannot run on this host.
std::unique_ptr<Target> make_target(const std::string& flavour, std::string* why);
std::unique_ptr<Target> make_target(const std::string& flavour, std::string* why, const KvmOptions& options);

}  // namespace tdxhp::kvm
