// Host (VMM) side: TD build, KVM_SET_MEMORY_ATTRIBUTES / gmem conversion, fallocate punch
// hole, KVM_PRE_FAULT_MEMORY, pins, op dispatch and teardown (DOMAIN.md 3, SEMANTICS.md).
#include <algorithm>
#include <cerrno>

#include "domain/case_file.h"
#include "domain/describe.h"
#include "runners/sim/sim_host.h"

namespace tdxhp::sim {

const Memslot* SimHost::slot_of(Gfn g) const {
  for (const Memslot& m : core_.cfg.slots)
    if (m.range().contains(g) && live_[slot_index(m)]) return &m;
  return nullptr;
}

const Memslot* SimHost::slot_covering(const GfnRange& r) const {
  if (r.empty()) return nullptr;
  const Memslot* m = slot_of(r.start);
  return m && m->range().covers(r) ? m : nullptr;
}

int SimHost::setup(const Config& cfg, std::string* why) {
  if (std::string err = validate_config(cfg); !err.empty()) {
    if (why) *why = err;
    return -EINVAL;
  }
  core_.cfg = cfg;
  tdx_.seam().configure(cfg.features.dynamic_pamt, cfg.max_private_level == Level::L1G);
  live_.assign(cfg.slots.size(), true);
  lpage_.assign(cfg.slots.size(), LpageInfo{});
  for (const Memslot& m : core_.cfg.slots) {
    gmem_.push_back(std::make_unique<GmemFile>(m.id, m.gmem_offset + m.npages, cfg.backing));
    if (in_place()) {
      const auto uniform = uniform_after(m, {m.base_gfn, 0}, Attr::Private);
      gmem_.back()->split_fresh_when([uniform](uint64_t a, uint64_t b) { return !uniform(a, b); });
    }
    attrs_.assign(m.base_gfn, m.base_gfn + m.npages, cfg.initially_private ? Attr::Private : Attr::Shared);
  }
  core_.log.seamcall("TDH.MNG.CREATE", 0, Level::L4K, 0, tdx::kSuccess);
  // KVM_TDX_INIT_MEM_REGION: TDH.MEM.PAGE.ADD at 4K only (L4348-4351).
  for (const GfnRange& r : cfg.build_pages) {
    for (Gfn g = r.start; g < r.end(); ++g) {
      const Memslot* m = slot_of(g);
      if (!m || *attrs_.at(g) != Attr::Private) {
        if (why) *why = "build page " + hex(g) + " is not private memory of a slot";
        return -EINVAL;
      }
      if (private_.at(g)) continue;
      const Pfn pfn = gmem(*m).ensure(index_of(*m, g), alloc_, core_.log);
      // INIT_MEM_REGION maps through the fault path, whose level tdx_gmem_max_mapping_level
      // keeps at 4K before RUNNABLE (L4448-4452). MUT-BUILD-HUGE drops that: the mirror gets a
      // huge leaf (its KVM_BUG_ON, L4401, is gone too), and no 4K PAGE.ADD can follow.
      if (const Level l = private_max_level(*m, g, Level::L2M); l > Level::L4K) {
        const Gfn block = align_down(g, l);
        if (ensure_page_tables(block, l)) {
          if (why) *why = "TD build failed at " + hex(g) + " (KVM_BUG_ON)";
          return -EIO;
        }
        private_.assign(block, block + pages_in(l), Leaf{l, gmem(*m).pfn(index_of(*m, block)) - block});
        core_.log.leaf(EventKind::MapLeaf, true, block, l, pages_in(l));
        private_data_.assign(g, g + 1, PageData{0, true});
        continue;
      }
      if (ensure_page_tables(g, Level::L4K) || tdx_.add_page(g, pfn)) {
        if (why) *why = "TD build failed at " + hex(g) + " (KVM_BUG_ON)";
        return -EIO;
      }
      private_.assign(g, g + 1, Leaf{Level::L4K, pfn - g});
      private_data_.assign(g, g + 1, PageData{0, true});
      core_.log.leaf(EventKind::MapLeaf, true, g, Level::L4K, 1);
    }
  }
  core_.log.seamcall("TDH.MR.FINALIZE", 0, Level::L4K, 0, tdx::kSuccess);  // KVM_TDX_FINALIZE_VM
  tdx_.finalize();
  core_.runnable = true;
  set_up_ = true;
  first_observation_ = true;
  return 0;
}

Outcome SimHost::apply(const Op& op) {
  Outcome o;
  if (!set_up_) {
    o.err = -EINVAL;
    o.note = "no VM: setup did not succeed";
    return o;
  }
  if (core_.dead) {  // KVM_BUG_ON'd VM: every ioctl fails
    o.err = -EIO;
    return o;
  }
  // vCPU 1's op: the engine holds it and runs it (queued cleared) at the next op's first
  // mmu_lock drop or after that op (SEMANTICS.md "Queued guest ops"); nothing happens now.
  if (is_queued(op)) {
    o.note = "queued on vCPU 1";
    return o;
  }
  struct Depth {
    int& d;
    explicit Depth(int& x) : d(x) { ++d; }
    ~Depth() { --d; }
  } depth(apply_depth_);
  if (apply_depth_ == 1) {
    drop_hook_ran_ = false;
    in_flight_ = {};
    running_op_ = op;  // described only if vCPU 1 runs inside it (hot path)
  } else {
    core_.log.note(EventKind::Note, "mmu_lock",
                   "vCPU 1 runs " + describe(op) + " while " + describe(running_op_) + " has mmu_lock dropped for the split-cache top-up");
  }
  std::visit(
      [&](const auto& x) {
        using T = std::decay_t<decltype(x)>;
        if constexpr (std::is_same_v<T, Convert> || std::is_same_v<T, MapGpa>) {
          o.err = convert(x.range, x.to);
        } else if constexpr (std::is_same_v<T, PunchHole>) {
          o.err = punch(x.range);
        } else if constexpr (std::is_same_v<T, Prefault>) {
          o.err = prefault(x.range);
        } else if constexpr (std::is_same_v<T, Access>) {
          o = access(x);
        } else if constexpr (std::is_same_v<T, Accept>) {
          o = accept(x);
        } else if constexpr (std::is_same_v<T, Pin>) {
          o.err = pin(x.range, +1);
        } else if constexpr (std::is_same_v<T, Unpin>) {
          o.err = pin(x.range, -1);
        } else if constexpr (std::is_same_v<T, DiscardShared>) {
          o.err = discard_shared(x.range);
        } else if constexpr (std::is_same_v<T, DeleteSlot>) {
          o.err = delete_slot(x.slot);
        } else if constexpr (std::is_same_v<T, AddSlot>) {
          o.err = add_slot(x.slot);
        } else {
          static_assert(std::is_same_v<T, Inject>);
          o.err = core_.faults.arm(x);
        }
      },
      op);
  if (apply_depth_ == 1) in_flight_ = {};
  if (core_.dead && o.err == 0) o.err = -EIO;
  return o;
}

// The parts of r that lie in memslots, in gfn order, with their slots.
std::vector<std::pair<const Memslot*, GfnRange>> SimHost::slot_parts(const GfnRange& r) const {
  std::vector<std::pair<const Memslot*, GfnRange>> out;
  for (const Memslot& m : core_.cfg.slots) {
    const Gfn s = std::max(r.start, m.base_gfn), e = std::min(r.end(), m.range().end());
    if (s < e && live_[slot_index(m)]) out.push_back({&m, {s, e - s}});
  }
  std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a.second.start < b.second.start; });
  return out;
}

int SimHost::convert(const GfnRange& r, Attr to) {
  if (r.empty()) return -EINVAL;
  const auto parts = slot_parts(r);
  if (in_place()) {
    // One gmem ioctl per slot's file, in gfn order; gfns outside every slot have no gmem to
    // convert (tdxhp's VMM: a range with no slot at all is -EINVAL). The first error stops it.
    if (parts.empty()) return -EINVAL;
    for (const auto& [m, part] : parts)
      if (!attrs_.all_of(part.start, part.end(), [to](Attr a) { return a == to; }))
        if (int e = convert_in_place(*m, part, to)) return e;
    return 0;
  }
  // KVM_SET_MEMORY_ATTRIBUTES takes any gfn range: attributes are per VM, slots or not. Gfns
  // never set are shared (attribute 0).
  bool already = true;
  attrs_.for_each(r.start, r.end(), [&](uint64_t, uint64_t, Attr a) { already = already && a == to; });
  attrs_.for_each_gap(r.start, r.end(), [&](uint64_t, uint64_t) { already = already && to == Attr::Shared; });
  return already ? 0 : convert_per_vm(r, parts, to);
}

// KVM_SET_MEMORY_ATTRIBUTES (kvm_vm_set_mem_attributes, L3040-3110): one pass, under an mmu
// invalidation that also covers the huge blocks around each slot part's ends. To shared, the
// leaves crossing each slot part's edges are split and its private leaves zapped; to private,
// its shared leaves are zapped. Then the attributes of the whole range change, holes included.
int SimHost::convert_per_vm(const GfnRange& r, const std::vector<std::pair<const Memslot*, GfnRange>>& parts, Attr to) {
  for (const auto& [m, part] : parts) begin_invalidation(attr_invalidation_range(*m, part));
  if (to == Attr::Private) {
    for (const auto& [m, part] : parts) zap_shared(part.start, part.end());
    set_attrs(r, Attr::Private);
    shared_data_.erase(r.start, r.end());
    return 0;
  }
  auto split = [&](const GfnRange& part) -> int {
    if (core_.mut(Mutant::NoSplitZap) || core_.mut(Mutant::NoAttrSplit)) return 0;
    return split_cross_boundary(part, true);
  };
  auto zap = [&](const GfnRange& part) {
    const Gfn end = part.end() - (core_.mut(Mutant::ConvertZapShort) ? 1 : 0);  // MUT-CONVERT-ZAP-SHORT
    return zap_private(part.start, end, core_.mut(Mutant::NoAttrSplit));
  };
  int e = 0;
  if (core_.mut(Mutant::SlotPartialZap)) {
    // v3 splits and unmaps slot by slot (kvm_handle_gfn_range): a later slot's failed split
    // returns after earlier slots lost their private pages (L3017-3027, docs/findings.md F2).
    for (const auto& [m, part] : parts)
      if ((e = split(part)) || (e = zap(part))) break;
  } else {
    // Every split first, then every zap: nothing is lost when a split fails.
    for (const auto& [m, part] : parts)
      if ((e = split(part))) break;
    for (size_t i = 0; !e && i < parts.size(); ++i) e = zap(parts[i].second);
  }
  if (e) {
    // MUT-BOOLRET: `bool ret` turns -ENOMEM into 1 (L2056); the caller takes it as "done" and
    // sets the attributes with the private leaves still mapped.
    if (core_.mut(Mutant::BoolRet) && e < 0 && !core_.dead) {
      set_attrs(r, Attr::Shared);
      return 1;
    }
    // v3 jumps past kvm_mmu_invalidate_end on this error (L3096-3098): the invalidation never
    // ends and every later fault in its range retries forever (docs/findings.md F1).
    if (core_.mut(Mutant::InvalidateLeak) && in_flight_.invalidating) leak_invalidation(*in_flight_.invalidating);
    return e;
  }
  set_attrs(r, Attr::Shared);
  return 0;
}

// The gmem conversion ioctl in place (__kvm_gmem_set_attributes, guest_memfd.c :990-1027 of
// the v3 stack): guest_memfd's invalidate lock is held for the whole ioctl, and the range is
// converted one huge page (folio) at a time, each batch under its own mmu invalidation rounded
// out to the folio (shared/reviews/conversion-race-analysis.md R1-R3). A failing batch stops
// the ioctl: the batches before it stay converted (the ioctl reports the error offset).
int SimHost::convert_in_place(const Memslot& m, const GfnRange& r, Attr to) {
  GmemFile& f = gmem(m);
  // MUT-UNLOCKED-CONVERT: the whole range in one pass, under an invalidation of exactly the
  // range and without the invalidate lock: R1-R3 broken (how the sim once modelled it).
  const bool unlocked = core_.mut(Mutant::UnlockedConvert);
  if (!unlocked) in_flight_.locked = &f;
  const uint64_t batch = unlocked ? 0 : f.conversion_batch();
  for (Gfn bs = r.start; bs < r.end();) {
    Gfn be = r.end();
    if (batch) {
      const uint64_t i = index_of(m, bs);
      be = std::min(be, bs + (i / batch + 1) * batch - i);
    }
    const GfnRange b{bs, be - bs};
    // kvm_gmem_convert: only a to-private batch checks for folio users (pins, L9600-9610).
    if (to == Attr::Private && f.any_pinned(index_of(m, bs), index_of(m, be))) return -EAGAIN;
    if (batch) {
      const uint64_t lo = std::max(index_of(m, bs) / batch * batch, m.gmem_offset);
      const uint64_t hi = std::min((index_of(m, be) + batch - 1) / batch * batch, m.gmem_offset + m.npages);
      begin_invalidation({m.base_gfn + (lo - m.gmem_offset), hi - lo});
    } else {
      begin_invalidation(b);
    }
    if (int e = to == Attr::Shared ? to_shared_steps(m, b) : to_private_steps(m, b)) return e;
    in_flight_.pass_done = true;
    bs = be;
  }
  return 0;
}

void SimHost::set_attrs(const GfnRange& r, Attr a) {
  attrs_.assign(r.start, r.end(), a);
  core_.log.dirty_attrs.push_back(r);
}

void SimHost::leak_invalidation(const GfnRange& r) {
  const Gfn lo = leaked_invalidation_ ? std::min(leaked_invalidation_->start, r.start) : r.start;
  const Gfn hi = leaked_invalidation_ ? std::max(leaked_invalidation_->end(), r.end()) : r.end();
  leaked_invalidation_ = GfnRange{lo, hi - lo};
}

bool SimHost::fault_retries_forever(Gfn g) {
  if (!leaked_invalidation_ || !leaked_invalidation_->contains(g)) return false;
  core_.log.fault_retries += 1000;  // the watchdog's signal ends KVM_RUN / KVM_PRE_FAULT_MEMORY
  core_.log.note(EventKind::Note, "fault", "RET_PF_RETRY without end: gfn in an invalidation that never ended", g);
  return true;
}

void SimHost::begin_invalidation(const GfnRange& r) {
  if (r.empty()) return;
  if (leaked_invalidation_) leak_invalidation(r);  // in_progress never returns to 0: the range only grows
  if (!in_flight_.invalidating) {
    in_flight_.invalidating = r;
    return;
  }
  const Gfn lo = std::min(in_flight_.invalidating->start, r.start);
  const Gfn hi = std::max(in_flight_.invalidating->end(), r.end());
  in_flight_.invalidating = GfnRange{lo, hi - lo};  // kvm_mmu_invalidate_range_add: min/max
}

// kvm_pre_set_memory_attributes adds the range; kvm_arch_pre_set_memory_attributes adds the
// 2M and 1G blocks around its head and tail that lie in the slot and are not mixed, so that no
// fault builds a huge page over gfns whose attributes are changing (upstream mmu.c, "attributes
// vs. hugepage race" fix, aAJsDVg5RNfSpiYX@google.com).
GfnRange SimHost::attr_invalidation_range(const Memslot& m, const GfnRange& r) const {
  Gfn lo = r.start, hi = r.end();
  for (Level l : {Level::L2M, Level::L1G}) {
    const uint64_t n = pages_in(l);
    const Gfn head = align_down(r.start, l), tail = align_down(r.end() - 1, l);
    auto add = [&](Gfn b) {
      if (b < m.base_gfn || b + n > m.range().end()) return;
      const Attr first = *attrs_.at(b);
      if (!attrs_.all_of(b, b + n, [first](Attr a) { return a == first; })) return;  // mixed
      lo = std::min(lo, b);
      hi = std::max(hi, b + n);
    };
    if (head != r.start || head + n > r.end()) add(head);
    if (tail != head && tail + n > r.end()) add(tail);
  }
  return {lo, hi - lo};
}

// To shared, one in-place pass: split the private leaves that straddle its edges, split the
// folio where it becomes mixed, zap, set attributes.
int SimHost::to_shared_steps(const Memslot& m, const GfnRange& r) {
  GmemFile& f = gmem(m);
  const uint64_t is = index_of(m, r.start), ie = index_of(m, r.end());
  const auto uniform = uniform_after(m, r, Attr::Shared);
  auto folio_split = [&] {
    return f.split_for_conversion(is, ie, uniform, core_.faults, core_.log);
  };

  // MUT-SPLIT-BEFORE-UNMAP: gmem splits the folio before KVM has split/zapped (L4519-4521).
  if (core_.mut(Mutant::SplitBeforeUnmap))
    if (int e = folio_split()) return e;
  if (!core_.mut(Mutant::NoSplitZap) && !core_.mut(Mutant::NoAttrSplit)) {
    if (int e = split_cross_boundary(r, true)) {
      // MUT-BOOLRET: `bool ret` turns -ENOMEM into 1 (L2056); the caller takes it as "done"
      // and sets the attributes with the private leaves still mapped.
      if (core_.mut(Mutant::BoolRet) && e < 0 && !core_.dead) {
        set_attrs(r, Attr::Shared);
        return 1;
      }
      return e;
    }
  }
  // Clean order: every step that can fail runs before the zap, the point of no return
  // (L4507-4510, L4718-4736). The v3 stack's kvm_gmem_convert restructures the folio after
  // the zap instead (guest_memfd.c :977-980): MUT-ZAP-THEN-FAIL, docs/findings.md.
  if (!core_.mut(Mutant::SplitBeforeUnmap) && !core_.mut(Mutant::ZapThenFail))
    if (int e = folio_split()) return e;
  if (int e = zap_private(r.start, r.end(), core_.mut(Mutant::NoAttrSplit))) return e;
  zap_shared(r.start, r.end());  // kvm_gmem_zap: KVM_FILTER_SHARED | PRIVATE
  if (core_.mut(Mutant::ZapThenFail) && !core_.mut(Mutant::SplitBeforeUnmap))
    if (int e = folio_split()) return e;
  set_attrs(r, Attr::Shared);
  return 0;
}

// Would gmem index range [a, b) of m's file be all one attribute once r is `to`? Indices
// outside the slot are never converted: they stay private.
std::function<bool(uint64_t, uint64_t)> SimHost::uniform_after(const Memslot& m, const GfnRange& r, Attr to) const {
  const uint64_t is = index_of(m, r.start), ie = index_of(m, r.end());
  return [this, &m, is, ie, to](uint64_t a, uint64_t b) {
    bool any_shared = false, any_private = false;
    (to == Attr::Shared ? any_shared : any_private) = std::min(b, ie) > std::max(a, is);
    auto visit = [&](uint64_t x, uint64_t y) {  // index stretch outside r
      if (x >= y) return;
      const uint64_t lo = std::max(x, m.gmem_offset), hi = std::min(y, m.gmem_offset + m.npages);
      if (lo > x || hi < y) any_private = true;
      if (lo < hi) {
        const Gfn gs = m.base_gfn + (lo - m.gmem_offset), ge = m.base_gfn + (hi - m.gmem_offset);
        if (!any_shared && attrs_.any_of(gs, ge, [](Attr v) { return v == Attr::Shared; })) any_shared = true;
        if (!any_private && !attrs_.all_of(gs, ge, [](Attr v) { return v == Attr::Shared; })) any_private = true;
      }
    };
    visit(a, std::min(b, is));
    visit(std::max(a, ie), b);
    return !(any_shared && any_private);
  };
}

// To private, one in-place pass: split a folio the pass leaves mixed (may fail: -ENOMEM); zap
// the shared leaves (never private ones: the per-VM path's KVM_FILTER_SHARED, L3054-3055); set
// attributes; merge folios where a whole block is private again.
int SimHost::to_private_steps(const Memslot& m, const GfnRange& r) {
  if (int e = gmem(m).split_for_conversion(index_of(m, r.start), index_of(m, r.end()),
                                           uniform_after(m, r, Attr::Private), core_.faults, core_.log))
    return e;
  // The v3 stack's kvm_gmem_zap() uses KVM_FILTER_SHARED | KVM_FILTER_PRIVATE for every
  // conversion (kvm_gmem_get_invalidate_filter, guest_memfd.c): private leaves overlapping a
  // to-private pass are zapped whole, accepted data and all (docs/findings.md F3).
  if (core_.mut(Mutant::PrivateZapToPrivate))
    if (int e = zap_private(r.start, r.end(), false)) return e;
  zap_shared(r.start, r.end());
  set_attrs(r, Attr::Private);
  shared_data_.erase(r.start, r.end());
  if (!core_.mut(Mutant::NoMerge)) {  // L4730-4737
    auto all_private_idx = [&](uint64_t a, uint64_t b) {
      const uint64_t lo = std::max(a, m.gmem_offset), hi = std::min(b, m.gmem_offset + m.npages);
      return lo >= hi || all_private(m.base_gfn + (lo - m.gmem_offset), m.base_gfn + (hi - m.gmem_offset));
    };
    gmem(m).merge_after_private(index_of(m, r.start), index_of(m, r.end()), all_private_idx, core_.log);
  }
  return 0;
}

int SimHost::punch(const GfnRange& r) {
  const Memslot* m = slot_covering(r);
  if (!m) return -EINVAL;
  GmemFile& f = gmem(*m);
  const uint64_t is = index_of(*m, r.start);
  const uint64_t g = f.punch_granule();
  if (is % g != 0 || index_of(*m, r.end()) % g != 0) return -EINVAL;  // hugetlb/THP gmem: whole folios only (L12324-12328)
  // MUT-PUNCH-PAST-END: one page more is invalidated and truncated, within the slot.
  const bool past = core_.mut(Mutant::PunchPastEnd) && r.end() < m->range().end();
  const GfnRange span{r.start, r.npages + (past ? 1 : 0)};
  const uint64_t ie = index_of(*m, span.end());
  in_flight_.locked = &f;  // kvm_gmem_punch_hole holds the invalidate lock and invalidates r
  begin_invalidation(span);
  if (!core_.mut(Mutant::NoSplitZap))
    if (int e = split_cross_boundary(span, true)) return e;
  if (int e = zap_private(span.start, span.end(), false)) return e;
  if (in_place()) {
    zap_shared(span.start, span.end());
    shared_data_.erase(span.start, span.end());
  }
  f.punch(is, ie, core_.log);
  return 0;
}

int SimHost::prefault(const GfnRange& r) {
  if (r.empty()) return -EINVAL;
  for (Gfn cur = r.start; cur < r.end();) {
    const Memslot* m = slot_of(cur);
    // No slot: a shared gfn is an emulated (no-slot) fault, -ENOENT; a private one (per-VM
    // attributes cover holes too) cannot be private without gmem: a memory-fault exit, -EFAULT
    // (kvm_mmu_faultin_pfn_private: !kvm_slot_can_be_private(NULL)).
    if (!m) return attrs_.at(cur) && *attrs_.at(cur) == Attr::Private ? -EFAULT : -ENOENT;
    const Gfn stop = std::min(r.end(), m->base_gfn + m->npages);
    if (*attrs_.at(cur) == Attr::Shared) {
      cur = std::min(stop, attrs_.piece_end(cur));
    } else if (private_.at(cur)) {
      cur = std::min(stop, private_.piece_end(cur));
    } else {
      if (fault_retries_forever(cur)) return -EINTR;  // kvm_tdp_map_page loops until a signal
      if (int e = fault_private(*m, cur, core_.cfg.max_private_level)) return e;
      const Leaf* l = private_.at(cur);
      if (l->level == Level::L4K && !core_.mut(Mutant::Promote)) {
        // Its page tables now exist, so every unmapped private gfn left in this 2M block faults
        // at 4K too (private_max_level): map them as one run instead of page by page.
        // The new leaf may have coalesced with mapped neighbours, so look from cur + 1 itself.
        Gfn run_end = std::min({stop, align_down(cur, Level::L2M) + pages_in(Level::L2M), attrs_.piece_end(cur)});
        if (run_end > cur + 1)
          run_end = private_.at(cur + 1) ? cur + 1 : std::min(run_end, private_.next_start(cur + 1));
        if (leaked_invalidation_ && leaked_invalidation_->overlaps({cur + 1, run_end > cur + 1 ? run_end - cur - 1 : 0}))
          run_end = std::max(cur + 1, leaked_invalidation_->start);  // the next fault there retries forever
        if (run_end > cur + 1)
          if (int e = map_private_4k_run(*m, cur + 1, run_end)) return e;
        cur = run_end;
        continue;
      }
      cur = std::min(stop, align_down(cur, l->level) + pages_in(l->level));
    }
  }
  return 0;
}

int SimHost::pin(const GfnRange& r, int delta) {
  const Memslot* m = slot_covering(r);
  if (!m) return -EINVAL;
  gmem(*m).pin(index_of(*m, r.start), index_of(*m, r.end()), delta);
  return 0;
}

// KVM_SET_USER_MEMORY_REGION2 with size 0: kvm_arch_flush_shadow_memslot() zaps every leaf of the
// slot, private ones through BLOCK/TRACK/REMOVE (their pages leave the TD), but a TD's mirror
// page tables stay until teardown (kvm_mmu_zap_memslot zaps leaves only; tdx_sept_free_private_spt
// refuses while the HKID is assigned, upstream tdx.c). The slot's lpage_info (GUEST_INHIBIT,
// MIXED) goes with it; guest_memfd keeps its folios and, in place, its attributes; per-VM
// attributes belong to the VM (SEMANTICS.md "Memslots").
int SimHost::delete_slot(uint32_t id) {
  const Memslot* m = nullptr;
  for (const Memslot& x : core_.cfg.slots)
    if (x.id == id && live_[slot_index(x)]) m = &x;
  if (!m) return -EINVAL;  // no such slot to delete
  if (int e = zap_private(m->base_gfn, m->range().end(), false)) return e;
  zap_shared(m->base_gfn, m->range().end());
  clear_inhibit(*m, m->base_gfn, m->range().end());  // its lpage_info goes with it
  live_[slot_index(*m)] = false;
  return 0;
}

int SimHost::add_slot(uint32_t id) {
  const Memslot* m = nullptr;
  for (const Memslot& x : core_.cfg.slots)
    if (x.id == id) m = &x;
  if (!m) return -EINVAL;                        // not a slot of this config
  if (live_[slot_index(*m)]) return -EEXIST;     // tdxhp's VMM adds only a deleted slot back
  live_[slot_index(*m)] = true;                  // fresh lpage_info: no GUEST_INHIBIT
  core_.log.dirty_attrs.push_back(m->range());   // its gfns are memory again
  return 0;
}

// madvise(MADV_DONTNEED) on the slot's shared host memory (SEMANTICS.md "Host ops").
int SimHost::discard_shared(const GfnRange& r) {
  const Memslot* m = slot_covering(r);
  if (!m) return -EINVAL;
  const uint64_t hs = m->hva_offset + (r.start - m->base_gfn);  // host (HVA) page index
  uint64_t he = hs + r.npages;
  const BackingKind kind = core_.cfg.shared_backing;
  if (!in_place() && (kind == BackingKind::Hugetlb2M || kind == BackingKind::Hugetlb1G)) {
    // madvise_dontneed_free_valid_vma: a hugetlb start must be huge-page aligned, the end is
    // rounded down to the huge page size.
    const Level page = page_level(kind);
    if (!is_aligned(hs, page)) return -EINVAL;
    he = align_down(he, page);
    if (he <= hs) {
      core_.log.note(EventKind::Note, "madvise", "MADV_DONTNEED rounds to nothing on " + std::string(name(kind)), r.start);
      return 0;
    }
  }
  const GfnRange d{r.start, he - hs};
  // The mmu notifier zaps every shared leaf overlapping the range whole. The sim is a TD with
  // a mirror root: attr_filter = KVM_FILTER_SHARED (L3054), so private leaves stay.
  if (!core_.mut(Mutant::NotifierNoZap)) zap_shared(d.start, d.end());
  if (in_place()) {
    // Kernel choice: in place the HVA maps gmem itself; MADV_DONTNEED drops only the user PTEs
    // (the notifier zaps the shared leaves above), gmem keeps its folios, so data stays.
    core_.log.note(EventKind::Note, "madvise", "MADV_DONTNEED " + describe(d) + ": gmem pages stay", d.start);
    return 0;
  }
  shared_data_.erase(d.start, d.end());  // freed anonymous pages refault zero-filled
  if (kind == BackingKind::Thp2M) mark_thp_pmd_splits(*m, hs, he);
  core_.log.note(EventKind::Note, "madvise", "MADV_DONTNEED " + describe(d) + ": host pages freed", d.start);
  return 0;
}

// THP: a partial MADV_DONTNEED splits the 2M block's PMD (4K from then on); a block discarded
// whole is gone and may come back as a fresh THP. hs/he are host page indices of the slot.
void SimHost::mark_thp_pmd_splits(const Memslot& m, uint64_t hs, uint64_t he) {
  const uint64_t n = pages_in(Level::L2M);
  const uint64_t whole_lo = (hs + n - 1) & ~(n - 1), whole_hi = align_down(he, Level::L2M);
  if (whole_lo < whole_hi) {
    const GfnRange w = gfns_of_host_pages(m, whole_lo, whole_hi);
    thp_pmd_split_.erase(w.start, w.end());
  }
  for (uint64_t block : {align_down(hs, Level::L2M), align_down(he - 1, Level::L2M)}) {
    if (block >= whole_lo && block + n <= whole_hi) continue;  // discarded whole
    const GfnRange g = gfns_of_host_pages(m, block, block + n);
    thp_pmd_split_.assign(g.start, g.end(), true);
  }
}

Observation SimHost::teardown() {
  if (!set_up_) return Observation{};
  // The HKID is gone: KVM reclaims every private page and S-EPT page without BLOCK/REMOVE.
  private_.for_each([&](uint64_t a, uint64_t b, const Leaf& l) {
    core_.log.seamcall("TDH.PHYMEM.PAGE.RECLAIM", a, l.level, b - a, tdx::kSuccess);
    core_.log.leaf(EventKind::ZapLeaf, true, a, l.level, b - a);
  });
  tdx_.begin_teardown();
  std::vector<std::pair<Pfn, uint64_t>> fours;  // 4K leaves hold DPAMT refs
  private_.for_each([&](uint64_t a, uint64_t b, const Leaf& l) {
    if (l.level == Level::L4K) fours.push_back({a + l.delta, b - a});
  });
  tdx_.release_guest_pages(fours);
  shared_.for_each([&](uint64_t a, uint64_t b, const Leaf& l) { core_.log.leaf(EventKind::ZapLeaf, false, a, l.level, b - a); });
  for (auto* pts : {&pt_2m_, &pt_1g_}) pts->for_each([&](uint64_t, uint64_t, Pfn p) { tdx_.free_sept_page(p, true); });
  tdx_.teardown_reclaim();
  private_.clear();
  shared_.clear();
  pt_2m_.clear();
  pt_1g_.clear();
  private_data_.clear();
  Observation o = collect(false);
  set_up_ = false;
  return o;
}

}  // namespace tdxhp::sim
