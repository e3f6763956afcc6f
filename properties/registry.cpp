#include "properties/registry.h"

#include <algorithm>

#include "domain/describe.h"

namespace tdxhp {

const std::vector<PropertyInfo>& properties() {
  static const std::vector<PropertyInfo> v = {
      {"mapping-legal", "every private leaf is allowed by backing, attributes, slot, level cap and page-table history",
       {"INV-CONTIG", "INV-ORDER", "INV-ATTR", "INV-SLOT", "INV-LEVELCAP", "INV-NOPROMOTE"},
       {Cap::PrivateMemory, Cap::LeafLevels}, {}},
      {"accept-level", "guest accepts follow the mapping they meet; GUEST_INHIBIT is one-way; 2M stays reachable",
       {"INV-ACCEPT", "INV-LIVE"}, {Cap::Accept, Cap::LeafLevels}, {}},
      {"precise-conversion", "convert/punch zap exactly their range, split only at its edges",
       {"INV-NOOVERZAP", "INV-PRECISE", "INV-NOOVERSPLIT"}, {Cap::PrivateMemory, Cap::LeafLevels},
       {Cap::Attributes, Cap::PunchHole}},
      {"data-atomic", "the guest reads back its data; failed ops change nothing it can see",
       {"INV-DATA", "INV-ATOMIC"}, {Cap::GuestData}, {}},
      {"busy-retry", "BUSY is retried after a kick, nothing loops, no KVM_BUG_ON on legal sequences",
       {"INV-BUSY"}, {Cap::PrivateMemory}, {Cap::FaultInjection, Cap::KernelLog, Cap::EventLog}},
      {"sim-internals", "DPAMT refcounts balance and the split cache never goes below its minimum",
       {"INV-PAMT", "INV-CACHE"}, {Cap::Internals}, {}},
  };
  return v;
}

const PropertyInfo* find_property(std::string_view id) {
  for (auto& p : properties())
    if (p.id == id) return &p;
  return nullptr;
}

const PropertyInfo* property_for_invariant(std::string_view inv) {
  for (auto& p : properties())
    if (std::find(p.invariants.begin(), p.invariants.end(), inv) != p.invariants.end()) return &p;
  return nullptr;
}

std::optional<std::string> skip_reason(const PropertyInfo& p, const Caps& caps) {
  auto why = [&](Cap c) {
    auto it = caps.missing.find(c);
    return std::string(name(c)) + (it != caps.missing.end() ? " (" + it->second + ")" : "");
  };
  for (Cap c : p.needs_all)
    if (!caps(c)) return "needs " + why(c);
  if (!p.needs_any.empty() && std::none_of(p.needs_any.begin(), p.needs_any.end(), [&](Cap c) { return caps(c); })) {
    std::string s = "needs one of";
    for (Cap c : p.needs_any) s += " " + why(c);
    return s;
  }
  return std::nullopt;
}

gen::GenProfile profile_for(const PropertyInfo& p, const Caps& caps) {
  gen::GenProfile g;
  g.caps = caps;
  if (p.id == "accept-level") {
    g.w_touch_accept = 6, g.w_round_trip = 6, g.w_prefault = 3, g.w_fault = 1;
  } else if (p.id == "precise-conversion") {
    g.w_partial_convert = 7, g.w_punch = 3, g.w_touch_accept = 1;
  } else if (p.id == "data-atomic") {
    g.w_fault = 5, g.w_pin = 3, g.w_partial_convert = 4, g.w_punch = 3;
  } else if (p.id == "busy-retry" || p.id == "sim-internals") {
    g.w_fault = 7, g.w_partial_convert = 3, g.w_touch_accept = 2;
    if (p.id == "sim-internals") g.w_race = 5;  // INV-CACHE: vCPU 1 at the top-up's mmu_lock drop
  } else if (p.id == "mapping-legal") {
    g.w_shared_huge = 4;
  }
  return g;
}

}  // namespace tdxhp
