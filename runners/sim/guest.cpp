// Guest side: data access (with #VE on PENDING pages), TDG.MEM.PAGE.ACCEPT with the EPT
// violation that carries the accept level (L230-277, L2436-2503), MapGPA.
#include <cerrno>
#include <optional>

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
  const bool shared = *attrs_.at(a.gfn) == Attr::Shared;
  if (!(shared ? shared_.at(a.gfn) : private_.at(a.gfn)) && fault_retries_forever(a.gfn)) {
    o.err = -EINTR;
    return o;
  }
  if (!(shared ? shared_.at(a.gfn) : private_.at(a.gfn)) && fault_waits(a.gfn)) {
    o.waiting = true;  // vCPU 1's fault: runs again once the op it waits for has ended
    return o;
  }
  if (shared) {
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
  const SeptLeaf* sept = tdx_.seam().leaf(a.gfn);
  if (sept && sept->state == SeptState::Pending) {  // touching a PENDING page: #VE in the guest
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
  if (a != Level::L4K && a != Level::L2M) return 0;
  const Level up = static_cast<Level>(static_cast<int>(a) + 1);
  auto set_bits = [&] {
    set_inhibit(m, g, up);
    if (a == Level::L4K) set_inhibit(m, g, Level::L1G);
  };
  // MUT-INHIBIT-BEFORE-SPLIT: the bits go in before the test that guards the split.
  if (core_.mut(Mutant::InhibitBeforeSplit)) set_bits();
  if (inhibited(m, g, up)) return 0;
  // attr_filter = KVM_FILTER_PRIVATE: the split is for the mirror root (L14465-14466).
  if (int r = split_cross_boundary({align_down(g, a), pages_in(a)}, !core_.mut(Mutant::WrongRoot))) return r;
  set_bits();
  return 0;
}

// A PENDING leaf of A becomes MAPPED; init_sept_4k_page() zeroes each page.
uint64_t SimHost::accept_pending(Gfn g, Level a) {
  const Gfn s = align_down(g, a), e = s + pages_in(a);
  tdx_.seam().accept(g, a);
  core_.log.dirty_private.push_back({s, e - s});  // the S-EPT state changed: observe it
  private_data_.erase(s, e);
  core_.log.note(EventKind::Note, "TDG.MEM.PAGE.ACCEPT", "pages accepted", s, a);
  return tdx::kSuccess;
}

Outcome SimHost::accept(const Accept& a) {
  Outcome o;
  // verify_page_info_input(gpa, LVL_PT, LVL_PD): 4K or 2M only, aligned; else OPERAND_INVALID+RCX.
  if (a.level > Level::L2M || !is_aligned(a.gfn, a.level)) {
    o.tdx_status = tdx::kOperandInvalid | tdx::kOperandIdRcx;
    return o;
  }
  if (auto st = tdx_.seam().accept_without_exit(a.gfn, a.level)) {
    o.tdx_status = *st == tdx::kSuccess ? accept_pending(a.gfn, a.level) : *st;
    return o;
  }
  // The EPT violation carrying A (tdx_handle_ept_violation, L2512-2515): KVM honours the
  // accept level first, for any gfn of a slot, then faults.
  const Memslot* m = slot_of(a.gfn);
  if (!m) {
    o.err = -EFAULT;
    return o;
  }
  core_.log.note(EventKind::Note, "ept-violation", "ACCEPT exit with accept level " + std::string(name(a.level)),
                 a.gfn, a.level);
  if (!core_.mut(Mutant::IgnoreAccept)) {
    if (int r = honor_guest_accept_level(*m, a.gfn, a.level)) {
      o.err = r;
      return o;
    }
  }
  if (*attrs_.at(a.gfn) == Attr::Shared) {  // private GPA, shared gfn: memory-fault exit
    o.err = -EFAULT;
    return o;
  }
  if (fault_retries_forever(a.gfn)) {
    o.err = -EINTR;
    return o;
  }
  if (fault_waits(a.gfn)) {  // vCPU 1: the fault retries until the op ends; the TDCALL then re-runs
    o.waiting = true;
    return o;
  }
  if (!private_.at(a.gfn)) {  // the fault: GUEST_INHIBIT, not A itself, bounds its level
    if (int r = fault_private(*m, a.gfn, core_.cfg.max_private_level)) {
      o.err = r;
      return o;
    }
  }
  // The guest re-executes the ACCEPT against what KVM left.
  if (auto st = tdx_.seam().accept_without_exit(a.gfn, a.level)) {
    o.tdx_status = *st == tdx::kSuccess ? accept_pending(a.gfn, a.level) : *st;
    return o;
  }
  // KVM left a larger PENDING leaf: the module would exit again on every retry (a hung vCPU).
  o.tdx_status = tdx::with_level(tdx::kPageSizeMismatch, a.level);
  o.note = "EPT violation repeats: mapping stays " + std::string(name(private_.at(a.gfn)->level));
  return o;
}

}  // namespace tdxhp::sim
