// Guest side: data access (with #VE on PENDING pages), TDG.MEM.PAGE.ACCEPT with the EPT
// violation that carries the accept level (L230-277, L2436-2503), MapGPA.
#include <cerrno>

#include "domain/describe.h"
#include "runners/sim/sim_host.h"

namespace tdxhp::sim {

Outcome SimHost::access(const Access& a) {
  Outcome o;
  const Memslot* m = slot_of(a.gfn);
  if (!m) {
    o.err = -EFAULT;
    return o;
  }
  if (*attrs_.at(a.gfn) == Attr::Shared) {
    if (!shared_.at(a.gfn)) map_shared(*m, a.gfn);
    if (a.write) {
      shared_data_.assign(a.gfn, a.gfn + 1, a.value);
    } else {
      const uint64_t* v = shared_data_.at(a.gfn);
      o.read = v ? *v : 0;
    }
    return o;
  }
  if (!private_.at(a.gfn)) {
    if (int r = fault_private(*m, a.gfn, core_.cfg.max_private_level)) {
      o.err = r;
      return o;
    }
  }
  if (!private_.at(a.gfn)->accepted) {  // touching a PENDING page: #VE in the guest
    o.ve = true;
    return o;
  }
  if (a.write) {
    private_data_.assign(a.gfn, a.gfn + 1, PageData{a.value, false});
  } else {
    const PageData* d = private_data_.at(a.gfn);
    o.read = !d ? 0 : d->add_pattern ? (0xADD0000000000000ULL | a.gfn) : d->value;
  }
  return o;
}

// tdx_honor_guest_accept_level (L2436-2503): split the faulting block down to the accept level
// on the mirror root, then set GUEST_INHIBIT above it (at A+1, and A+2 for a 4K accept).
int SimHost::honor_guest_accept_level(const Memslot& m, Gfn g, Level a) {
  (void)m;
  if (a != Level::L4K && a != Level::L2M) return 0;
  const Level up = static_cast<Level>(static_cast<int>(a) + 1);
  auto set_bits = [&] {
    set_inhibit(g, up);
    if (a == Level::L4K) set_inhibit(g, Level::L1G);
  };
  // MUT-INHIBIT-BEFORE-SPLIT: the bits go in before the test that guards the split.
  if (core_.mut(Mutant::InhibitBeforeSplit)) set_bits();
  const bool inhibited = up == Level::L2M ? inhibit_2m_.at(g) != nullptr : inhibit_1g_.at(g) != nullptr;
  if (inhibited) return 0;
  // attr_filter = KVM_FILTER_PRIVATE: the split is for the mirror root (L14465-14466).
  if (int r = split_cross_boundary({align_down(g, a), pages_in(a)}, !core_.mut(Mutant::WrongRoot))) return r;
  set_bits();
  return 0;
}

Outcome SimHost::accept(const Accept& a) {
  Outcome o;
  if (a.level > Level::L1G || !is_aligned(a.gfn, a.level)) {
    o.tdx_status = tdx::kOperandInvalid;
    return o;
  }
  const Memslot* m = slot_of(a.gfn);
  if (!m || *attrs_.at(a.gfn) == Attr::Shared) {  // memory-fault exit; userspace does not convert
    o.err = -EFAULT;
    return o;
  }
  const Leaf* leaf = private_.at(a.gfn);
  if (!leaf || leaf->level > a.level) {
    core_.log.note(EventKind::Note, "ept-violation", "ACCEPT exit with accept level " + std::string(name(a.level)),
                   a.gfn, a.level);
    if (!core_.mut(Mutant::IgnoreAccept)) {
      if (int r = honor_guest_accept_level(*m, a.gfn, a.level)) {
        o.err = r;
        return o;
      }
    }
    if (!private_.at(a.gfn)) {
      if (int r = fault_private(*m, a.gfn, a.level)) {
        o.err = r;
        return o;
      }
    }
    leaf = private_.at(a.gfn);
    if (leaf->level > a.level) {
      // KVM left the larger leaf: the module would exit again on every retry of the ACCEPT.
      o.tdx_status = tdx::kPageSizeMismatch | static_cast<uint64_t>(a.level);
      o.note = "EPT violation repeats: mapping stays " + std::string(name(leaf->level));
      return o;
    }
  }
  if (leaf->level < a.level) {  // no exit, no inhibit; the guest typically retries at 4K
    o.tdx_status = tdx::kPageSizeMismatch | static_cast<uint64_t>(a.level);
    return o;
  }
  const Gfn s = a.gfn, e = a.gfn + pages_in(a.level);
  if (private_.all_of(s, e, [](const Leaf& l) { return l.accepted; })) {
    o.tdx_status = tdx::kPageAlreadyAccepted;
    return o;
  }
  private_.update(s, e, [](uint64_t, uint64_t, Leaf& l) { l.accepted = true; });
  private_data_.erase(s, e);  // the module zeroes a page on accept
  core_.log.note(EventKind::Note, "TDG.MEM.PAGE.ACCEPT", "pages accepted", s, a.level);
  o.tdx_status = tdx::kSuccess;
  return o;
}

}  // namespace tdxhp::sim
