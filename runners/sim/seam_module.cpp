#include "runners/sim/seam_module.h"

namespace tdxhp::sim {

namespace {
using tdx::kOperandIdRcx, tdx::kOperandIdR8, tdx::kOperandIdRax;

Level lower(Level l) { return static_cast<Level>(static_cast<int>(l) - 1); }
bool guest_accessible(SeptState s) { return s == SeptState::Mapped || s == SeptState::BlockedW; }
bool blocked(SeptState s) { return s == SeptState::Blocked || s == SeptState::PendingBlocked; }
// A leaf the host may BLOCK / DEMOTE / REMOVE (sept_state_lookup.c rows; BLOCKEDW and the
// PENDING_BLOCKEDW of the export flow are never reached here).
bool host_leaf(SeptState s) {
  return s == SeptState::Mapped || s == SeptState::Pending || s == SeptState::Blocked || s == SeptState::PendingBlocked;
}
bool present_table(const SeptTable* t) { return t && (t->state == SeptState::NlMapped || t->state == SeptState::NlBlocked); }
}  // namespace

const char* name(SeptState s) {
  switch (s) {
    case SeptState::Free: return "FREE";
    case SeptState::NlMapped: return "NL_MAPPED";
    case SeptState::NlBlocked: return "NL_BLOCKED";
    case SeptState::Pending: return "PENDING";
    case SeptState::Mapped: return "MAPPED";
    case SeptState::Blocked: return "BLOCKED";
    case SeptState::PendingBlocked: return "PENDING_BLOCKED";
    case SeptState::BlockedW: return "BLOCKEDW";
    case SeptState::Removed: return "REMOVED";
  }
  return "?";
}

// Host-side walks (walk_private_gpa) step through present non-leaf entries; the 512G and 1G
// tables above the 1G entries always exist once the TD is built.
bool SeamModule::walk_reaches(Gfn s, Gfn e, Level level) const {
  if (level == Level::L1G) return true;
  auto covered = [&](const IntervalMap<SeptTable>& t) {
    return t.all_of(s, e, [](const SeptTable& x) { return present_table(&x); });
  };
  return covered(tables_1g_) && (level == Level::L2M || covered(tables_2m_));
}

uint64_t SeamModule::check_free_4k(Pfn p, uint64_t npages, uint64_t operand) const {
  if (pages_.any(p, p + npages)) return tdx::kPageMetadataIncorrect | operand;  // not PT_NDA
  if (dpamt_) {
    const Pfn lo = align_down(p, Level::L2M), hi = align_down(p + npages - 1, Level::L2M) + pages_in(Level::L2M);
    if (!pairs_.all_of(lo, hi, [](bool) { return true; })) return tdx::kMissingPamtPagePair | operand;
  }
  return tdx::kSuccess;
}

std::optional<std::pair<Gfn, uint64_t>> SeamModule::first_bad_leaf(Gfn s, Gfn e, Level level) const {
  std::optional<std::pair<Gfn, uint64_t>> bad;
  auto free_entry = [&](Gfn g) {  // no leaf: a FREE entry or a page table at `level`, or no walk
    return std::pair{g, (walk_reaches(g, g + 1, level) ? tdx::kEptEntryStateIncorrect : tdx::kEptWalkFailed) | kOperandIdRcx};
  };
  Gfn cur = s;
  leaves_.for_each(s, e, [&](uint64_t a, uint64_t b, const SeptLeaf& l) {
    if (bad) return;
    if (a > cur) {
      bad = free_entry(cur);
    } else if (l.level > level) {  // the walk stops at a larger leaf above `level`
      bad = std::pair{a, tdx::kEptWalkFailed | kOperandIdRcx};
    } else if (l.level < level || !host_leaf(l.state)) {  // a page table, or a leaf in a wrong state
      bad = std::pair{a, tdx::kEptEntryStateIncorrect | kOperandIdRcx};
    }
    cur = b;
  });
  if (!bad && cur < e) bad = free_entry(cur);
  return bad;
}

std::optional<std::pair<Gfn, uint64_t>> SeamModule::first_untracked(Gfn s, Gfn e) const {
  std::optional<std::pair<Gfn, uint64_t>> bad;
  leaves_.for_each(s, e, [&](uint64_t a, uint64_t, const SeptLeaf& l) {
    if (bad) return;
    if (!blocked(l.state)) bad = std::pair{a, tdx::kGpaRangeNotBlocked | kOperandIdRcx};
    else if (!tlb_tracked(l.bepoch)) bad = std::pair{a, tdx::kTlbTrackingNotDone | kOperandIdRcx};
  });
  return bad;
}

// TDH.MEM.SEPT.ADD: the entry at entry_level must be FREE; the new page becomes PT_EPT.
uint64_t SeamModule::sept_add(Gfn gfn, Level entry_level, Pfn page) {
  if (entry_level == Level::L4K) return tdx::kOperandInvalid | kOperandIdRcx;
  const Gfn block = align_down(gfn, entry_level), end = block + pages_in(entry_level);
  if (!walk_reaches(block, block + 1, entry_level)) return tdx::kEptWalkFailed | kOperandIdRcx;
  if (tables(entry_level).at(block) || leaves_.any(block, end)) return tdx::kEptEntryStateIncorrect | kOperandIdRcx;
  if (uint64_t st = check_free_4k(page, 1, kOperandIdR8)) return st;
  tables(entry_level).assign(block, end, SeptTable{SeptState::NlMapped, page, 0});
  pages_.assign(page, page + 1, PageUse::Sept);
  return tdx::kSuccess;
}

// TDH.MEM.PAGE.ADD: INITIALIZED only, 4K, FREE entry under a page table, page PT_NDA.
uint64_t SeamModule::page_add(Gfn gfn, Pfn pfn) {
  if (op_state_ != OpState::Initialized) return tdx::kOpStateIncorrect;
  if (!walk_reaches(gfn, gfn + 1, Level::L4K)) return tdx::kEptWalkFailed | kOperandIdRcx;
  if (leaves_.at(gfn)) return tdx::kEptEntryStateIncorrect | kOperandIdRcx;
  if (uint64_t st = check_free_4k(pfn, 1, kOperandIdR8)) return st;
  leaves_.assign(gfn, gfn + 1, SeptLeaf{Level::L4K, SeptState::Mapped, pfn - gfn, 0});
  pages_.assign(pfn, pfn + 1, PageUse::Guest);
  return tdx::kSuccess;
}

// TDH.MEM.PAGE.AUG: 4K or 2M into FREE entries (a 2M AUG over a page table is NL_MAPPED and
// refused); a 4K page PT_NDA with a PAMT pair, a 2M page aligned with all 512 pages PT_NDA
// and no pair (check_and_lock_free_range_hpa, pamt_is_2mb_range_free). Leaves come PENDING.
uint64_t SeamModule::page_aug(Gfn gfn, Level level, uint64_t npages, Pfn pfn) {
  const Level top = aug_1g_ ? Level::L1G : Level::L2M;
  if (level > top || !is_aligned(gfn, level)) return tdx::kOperandInvalid | kOperandIdRcx;
  const Gfn e = gfn + npages;
  if (!walk_reaches(gfn, e, level)) return tdx::kEptWalkFailed | kOperandIdRcx;
  if (leaves_.any(gfn, e) || (level >= Level::L2M && tables_2m_.any(gfn, e)) ||
      (level == Level::L1G && tables_1g_.any(gfn, e)))
    return tdx::kEptEntryStateIncorrect | kOperandIdRcx;
  if (level == Level::L4K) {
    if (uint64_t st = check_free_4k(pfn, npages, kOperandIdR8)) return st;
  } else {
    if (!is_aligned(pfn, level)) return tdx::kOperandInvalid | kOperandIdR8;
    if (pages_.any(pfn, pfn + npages) || (dpamt_ && pairs_.any(pfn, pfn + npages)))
      return tdx::kPageMetadataIncorrect | kOperandIdR8;
  }
  leaves_.assign(gfn, e, SeptLeaf{level, SeptState::Pending, pfn - gfn, 0});
  pages_.assign(pfn, pfn + npages, PageUse::Guest);
  return tdx::kSuccess;
}

// TDH.MEM.RANGE.BLOCK: MAPPED -> BLOCKED, PENDING -> PENDING_BLOCKED, NL_MAPPED -> NL_BLOCKED,
// recording the TD epoch; blocked again is GPA_RANGE_ALREADY_BLOCKED, FREE is refused.
uint64_t SeamModule::range_block(Gfn gfn, Level level, uint64_t npages) {
  const Gfn e = gfn + npages;
  if (level > Level::L4K && tables(level).at(gfn)) {  // a page table at `level`: all its children
    SeptTable t = *tables(level).at(gfn);
    if (t.state == SeptState::NlBlocked) return tdx::kGpaRangeAlreadyBlocked | kOperandIdRcx;
    t.state = SeptState::NlBlocked;
    t.bepoch = td_epoch_;
    tables(level).assign(align_down(gfn, level), align_down(gfn, level) + pages_in(level), t);
    return tdx::kSuccess;
  }
  if (auto bad = first_bad_leaf(gfn, e, level)) return bad->second;
  if (leaves_.any_of(gfn, e, [](const SeptLeaf& l) { return blocked(l.state); }))
    return tdx::kGpaRangeAlreadyBlocked | kOperandIdRcx;
  const uint64_t epoch = td_epoch_;
  leaves_.update(gfn, e, [epoch](uint64_t, uint64_t, SeptLeaf& l) {
    l.state = l.state == SeptState::Mapped ? SeptState::Blocked : SeptState::PendingBlocked;
    l.bepoch = epoch;
  });
  return tdx::kSuccess;
}

// TDH.MEM.TRACK: refused while a vCPU still runs in the previous epoch (the kick after the
// last TRACK has not happened); else the epoch advances.
uint64_t SeamModule::track() {
  if (vcpu_epoch_ + 1 == td_epoch_) return tdx::kPreviousTlbEpochBusy;
  ++td_epoch_;
  return tdx::kSuccess;
}

// TDH.MEM.PAGE.DEMOTE: a 2M/1G leaf (not a page table: a block already split is refused);
// once RUNNABLE it must be blocked and TLB-tracked. The children keep the accept state
// (sept_unblock on the template: BLOCKED -> MAPPED, PENDING_BLOCKED -> PENDING) and the parent
// becomes NL_MAPPED, no UNBLOCK needed. With Dynamic PAMT the guest 2M range gets its page
// pair (pamt_demote, page_count 512) and the new S-EPT page needs one for its own range.
uint64_t SeamModule::page_demote(Gfn gfn, Level level, Pfn new_sept_page) {
  if (level == Level::L4K || !is_aligned(gfn, level)) return tdx::kOperandInvalid | kOperandIdRcx;
  const Gfn e = gfn + pages_in(level);
  if (auto bad = first_bad_leaf(gfn, e, level)) return bad->second;
  if (tracking_required())
    if (auto bad = first_untracked(gfn, e)) return bad->second;
  if (uint64_t st = check_free_4k(new_sept_page, 1, kOperandIdR8)) return st;
  const SeptLeaf parent = *leaves_.at(gfn);
  const Level to = lower(level);
  leaves_.update(gfn, e, [to](uint64_t, uint64_t, SeptLeaf& l) {
    l.level = to;
    l.state = l.state == SeptState::Blocked ? SeptState::Mapped : l.state == SeptState::PendingBlocked ? SeptState::Pending : l.state;
    l.bepoch = 0;
  });
  tables(level).assign(gfn, e, SeptTable{SeptState::NlMapped, new_sept_page, 0});
  pages_.assign(new_sept_page, new_sept_page + 1, PageUse::Sept);
  if (dpamt_ && level == Level::L2M) {
    const Pfn base = gfn + parent.delta;
    pairs_.assign(base, base + pages_in(Level::L2M), true);
  }
  return tdx::kSuccess;
}

// TDH.MEM.PAGE.REMOVE: a leaf of exactly `level` (a 4K REMOVE inside a 2M leaf fails the walk,
// a 2M REMOVE of a page table the entry state); once RUNNABLE blocked and tracked. The entry
// becomes FREE and its pages PT_NDA (the kernel clears them: no zeroing here).
uint64_t SeamModule::page_remove(Gfn gfn, Level level, uint64_t npages) {
  const Gfn e = gfn + npages;
  if (auto bad = first_bad_leaf(gfn, e, level)) return bad->second;
  if (tracking_required())
    if (auto bad = first_untracked(gfn, e)) return bad->second;
  leaves_.for_each(gfn, e, [&](uint64_t a, uint64_t b, const SeptLeaf& l) { pages_.erase(a + l.delta, b + l.delta); });
  leaves_.erase(gfn, e);
  return tdx::kSuccess;
}

// TDH.PHYMEM.PAGE.WBINVD: only a page the TD no longer holds (PT_NDA).
uint64_t SeamModule::page_wbinvd(Pfn pfn, uint64_t npages) {
  return pages_.any(pfn, pfn + npages) ? tdx::kPageMetadataIncorrect | kOperandIdRcx : tdx::kSuccess;
}

// TDH.PHYMEM.PAMT.ADD: the 2M range must be PT_NDA at 2M: no pair yet and no 2M page there.
uint64_t SeamModule::pamt_add(Pfn pfn_2m) {
  if (!dpamt_) return tdx::kOperandInvalid | kOperandIdRax;
  if (!is_aligned(pfn_2m, Level::L2M)) return tdx::kOperandInvalid | kOperandIdRcx;
  const Pfn e = pfn_2m + pages_in(Level::L2M);
  if (pairs_.at(pfn_2m) || pages_.any(pfn_2m, e)) return tdx::kHpaRangeNotFree | kOperandIdRcx;
  pairs_.assign(pfn_2m, e, true);
  return tdx::kSuccess;
}

// TDH.PHYMEM.PAMT.REMOVE: a pair must be there and all 512 4K entries PT_NDA.
uint64_t SeamModule::pamt_remove(Pfn pfn_2m) {
  if (!dpamt_) return tdx::kOperandInvalid | kOperandIdRax;
  const Pfn e = pfn_2m + pages_in(Level::L2M);
  if (!is_aligned(pfn_2m, Level::L2M) || !pairs_.at(pfn_2m)) return tdx::kNoPamtPagePair | kOperandIdRcx;
  if (pages_.any(pfn_2m, e)) return tdx::kPamtPageNotEmpty;
  pairs_.erase(pfn_2m, e);
  return tdx::kSuccess;
}

void SeamModule::teardown() {
  leaves_.clear();
  tables_2m_.clear();
  tables_1g_.clear();
  pages_.clear();  // PAMT pairs stay: the kernel's puts return them with PAMT.REMOVE
}

std::optional<uint64_t> SeamModule::accept_without_exit(Gfn g, Level a) const {
  const SeptLeaf* l = leaves_.at(g);
  // Case 1: the walk stops at a larger leaf: guest-accessible -> ALREADY_ACCEPTED with that
  // leaf's level, no exit (1.1); PENDING or blocked -> exit (1.2).
  if (l && l->level > a)
    return guest_accessible(l->state) ? std::optional(tdx::with_level(tdx::kPageAlreadyAccepted, l->level)) : std::nullopt;
  // The guest walk stops at any entry that is not a present, unblocked page table (case 2: exit).
  auto open = [&](const IntervalMap<SeptTable>& t) { const SeptTable* x = t.at(g); return x && x->state == SeptState::NlMapped; };
  if (!open(tables_1g_)) return std::nullopt;
  if (a == Level::L2M) {
    // Case 3: a page table at 2M (even with g's own 4K leaf gone): SIZE_MISMATCH, no exit.
    if (tables_2m_.at(g)) return tdx::with_level(tdx::kPageSizeMismatch, a);
  } else if (!open(tables_2m_)) {
    return std::nullopt;
  }
  if (!l) return std::nullopt;  // FREE at a: exit, KVM maps it
  if (guest_accessible(l->state)) return tdx::with_level(tdx::kPageAlreadyAccepted, a);
  if (l->state == SeptState::Pending) return tdx::kSuccess;  // accept() commits it
  return std::nullopt;  // blocked: exit
}

void SeamModule::accept(Gfn g, Level a) {
  const Gfn s = align_down(g, a);
  leaves_.update(s, s + pages_in(a), [](uint64_t, uint64_t, SeptLeaf& l) { l.state = SeptState::Mapped; });
}

}  // namespace tdxhp::sim
