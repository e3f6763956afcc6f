// KVM's TDP MMU for a TD: the mirror root (private, propagated to the S-EPT through
// TdxModule) and the direct root (shared). Leaves, page tables, lpage_info, max mapping level,
// the cross-boundary split and the precise zap (tdp_mmu.c / mmu.c of the v3 series).
#include <algorithm>
#include <cerrno>
#include <span>

#include "runners/sim/sim_host.h"

namespace tdxhp::sim {

namespace {
Level lower(Level l) { return static_cast<Level>(static_cast<int>(l) - 1); }
}  // namespace

bool SimHost::has_page_table(Gfn block, Level level) const {
  return level == Level::L2M ? pt_2m_.at(block) != nullptr : pt_1g_.at(block) != nullptr;
}

// Building a leaf below a level needs the S-EPT page table of that level (non-leaf entry).
int SimHost::ensure_page_tables(Gfn g, Level leaf_level) {
  auto add = [&](IntervalMap<Pfn>& pts, Level region) {
    Gfn b = align_down(g, region);
    if (pts.at(b)) return 0;
    Pfn p = tdx_.alloc_sept_page();
    if (int e = tdx_.sept_page_in_use(p)) {
      tdx_.free_sept_page(p, false);
      return e;
    }
    if (int e = tdx_.sept_add(b, region, p)) {
      tdx_.free_sept_page(p, true);
      return e;
    }
    pts.assign(b, b + pages_in(region), p);
    return 0;
  };
  if (leaf_level < Level::L1G)
    if (int e = add(pt_1g_, Level::L1G)) return e;
  if (leaf_level < Level::L2M) return add(pt_2m_, Level::L2M);
  return 0;
}

bool SimHost::backing_allows(const Memslot& m, Gfn block, Level level) {
  GmemFile& f = gmem(m);
  uint64_t idx = index_of(m, block), n = pages_in(level);
  if (core_.cfg.contract == Contract::Folio) return f.in_one_folio(idx, n);  // L678, L4636
  return f.contiguous(idx, n);                                                // seed 002
}

// kvm_mmu_max_mapping_level + tdx_gmem_max_mapping_level (L4395-4463) + lpage_info (L2238,
// L2284-2295) + no promotion on the mirror (disallowed_hugepage_adjust, L1342).
Level SimHost::private_max_level(const Memslot& m, Gfn g, Level cap) {
  const Config& cfg = core_.cfg;
  // __tdx_bringup clears enable_tdx_huge_page on a module without bit 51 (L4401-4403).
  bool module_ok = cfg.features.enhanced_demote_interruptibility || core_.mut(Mutant::NoFeatureGate);
  bool param_ok = cfg.tdx_huge_page || core_.mut(Mutant::BuildHuge);
  bool runnable_ok = core_.runnable || core_.mut(Mutant::BuildHuge);
  if (!module_ok || !param_ok || !runnable_ok) return Level::L4K;
  Level top = std::min(cap, cfg.max_private_level);
  for (Level l = top; l > Level::L4K; l = lower(l)) {
    const uint64_t n = pages_in(l);
    const Gfn block = align_down(g, l);
    if (block < m.base_gfn || block + n > m.base_gfn + m.npages) continue;  // slot edges (L4437)
    if ((m.base_gfn & (n - 1)) != (m.gmem_offset & (n - 1))) continue;     // gfn vs gmem index
    if (core_.mut(Mutant::HvaAlign) && (m.hva_offset & (n - 1)) != 0) continue;  // L4526-4527
    if (!all_private(block, block + n)) continue;                            // MIXED (L4436)
    if (inhibited(m, g, l)) continue;  // GUEST_INHIBIT at this level
    if (!core_.mut(Mutant::Promote) && has_page_table(block, l)) continue;  // seed 000
    if (!backing_allows(m, block, l)) continue;
    return l;
  }
  return Level::L4K;
}

int SimHost::fault_private(const Memslot& m, Gfn g, Level cap) {
  GmemFile& f = gmem(m);
  f.ensure(index_of(m, g), alloc_, core_.log);
  const Level l = private_max_level(m, g, cap);
  const Gfn block = align_down(g, l);
  const uint64_t n = pages_in(l);
  if (l > Level::L4K && private_.any(block, block + n)) {
    // Only reachable with MUT-PROMOTE: the huge leaf replaces the page table's 4K leaves.
    if (int r = zap_private(block, block + n, false)) return r;
  }
  const Pfn pfn = f.pfn(index_of(m, block));
  if (int r = ensure_page_tables(block, l)) return r;
  if (int r = tdx_.aug(block, l, pfn)) return r;
  private_.assign(block, block + n, Leaf{l, pfn - block});
  core_.log.leaf(EventKind::MapLeaf, true, block, l, n);
  return 0;
}

// What fault_private does for each gfn of [s, e) when all of them fault at 4K, as one AUG and
// one map event carrying npages (like a REMOVE of a 4K run); pfns follow the folios.
int SimHost::map_private_4k_run(const Memslot& m, Gfn s, Gfn e) {
  GmemFile& f = gmem(m);
  f.ensure_range(index_of(m, s), index_of(m, e), alloc_, core_.log);
  std::vector<std::pair<Pfn, uint64_t>> pfn_runs;
  for (Gfn g = s; g < e;) {
    const uint64_t idx = index_of(m, g);
    const uint64_t n = std::min(e - g, f.piece_end(idx) - idx);  // pfns stay contiguous in one piece
    pfn_runs.push_back({f.pfn(idx), n});
    g += n;
  }
  if (int r = tdx_.aug_4k_run(s, e - s, pfn_runs)) return r;
  for (Gfn g = s; auto [pfn, n] : pfn_runs) {
    private_.assign(g, g + n, Leaf{Level::L4K, pfn - g});
    g += n;
  }
  core_.log.leaf(EventKind::MapLeaf, true, s, Level::L4K, e - s);
  return 0;
}

// Per-VM shared memory is anonymous host memory at the slot's HVA (SEMANTICS.md "Backing"):
// its page size by `shared_backing`; THP maps 4K once a partial MADV_DONTNEED split the 2M
// block's PMD. HVA alignment and the slot edges are map_shared's per-level checks.
Level SimHost::shared_host_level(const Memslot& m, Gfn g) const {
  const BackingKind kind = core_.cfg.shared_backing;
  if (kind == BackingKind::Thp2M) {
    const uint64_t host_block = align_down(m.hva_offset + (g - m.base_gfn), Level::L2M);
    const GfnRange block = gfns_of_host_pages(m, host_block, host_block + pages_in(Level::L2M));
    // MUT-THP-SPLIT-MISSED: the folio's size taken for the host mapping's.
    if (thp_pmd_split_.any(block.start, block.end()) && !core_.mut(Mutant::ThpSplitMissed)) return Level::L4K;
  }
  return page_level(kind);
}

GfnRange SimHost::gfns_of_host_pages(const Memslot& m, uint64_t a, uint64_t b) const {
  const uint64_t lo = std::max(a, m.hva_offset), hi = std::max(lo, std::min(b, m.hva_offset + m.npages));
  return {m.base_gfn + (lo - m.hva_offset), hi - lo};
}

void SimHost::map_shared(const Memslot& m, Gfn g) {
  GmemFile& f = gmem(m);
  // Per-VM: host pfns follow the HVA (hva_offset moves them), so a huge host page is mapped
  // huge only where gfn and HVA blocks coincide.
  auto host_pfn = [&](Gfn x) -> Pfn {
    return ((slot_index(m) + Pfn{2}) << 41) + m.hva_offset + (x - m.base_gfn);
  };
  // In place, shared memory is the gmem folio itself (its order bounds the leaf below).
  const Level host_top = in_place() ? page_level(core_.cfg.backing) : shared_host_level(m, g);
  if (in_place()) f.ensure(index_of(m, g), alloc_, core_.log);
  Level chosen = Level::L4K;
  for (Level l = host_top; l > Level::L4K; l = lower(l)) {
    const uint64_t n = pages_in(l);
    const Gfn block = align_down(g, l);
    if (block < m.base_gfn || block + n > m.base_gfn + m.npages) continue;
    // MUT-SHARED-MIXED: the MIXED lpage flag (L4436) consulted for private faults only.
    if (!core_.mut(Mutant::SharedMixed) && !attrs_.all_of(block, block + n, [](Attr a) { return a == Attr::Shared; }))
      continue;
    if (in_place()) {
      if ((m.base_gfn & (n - 1)) != (m.gmem_offset & (n - 1)) || !f.in_one_folio(index_of(m, block), n)) continue;
    } else if ((host_pfn(block) & (n - 1)) != 0) {
      continue;
    }
    chosen = l;
    break;
  }
  const Gfn block = align_down(g, chosen);
  const Pfn pfn = in_place() ? f.pfn(index_of(m, block)) : host_pfn(block);
  shared_.assign(block, block + pages_in(chosen), Leaf{chosen, pfn - block});
  core_.log.leaf(EventKind::MapLeaf, false, block, chosen, pages_in(chosen));
}

// The write mmu_lock is dropped for the split-cache top-up (L3474-3518): the first such drop
// of a top-level op is where vCPU 1's held ops run (SEMANTICS.md "Queued guest ops"). Their
// sub-steps are observed inside the hook, so this op's log so far is kept aside meanwhile.
bool SimHost::mmu_lock_dropped(Gfn g, Level level) {
  if (apply_depth_ != 1 || drop_hook_ran_ || !drop_hook_ || in_flight_.pass_done) return false;
  drop_hook_ran_ = true;
  const std::function<void()> hook = drop_hook_;
  StepLog outer = std::move(core_.log);
  core_.log = StepLog{};
  hook();
  // Whatever vCPU 1 did that was not observed inside the hook belongs to this step.
  outer.append(std::move(core_.log));
  core_.log = std::move(outer);
  core_.log.note(EventKind::Note, "mmu_lock", "retaken after the top-up; vCPU 1 ran at the drop point", g, level);
  return true;
}

bool SimHost::fault_waits(Gfn g) const {
  if (apply_depth_ < 2) return false;  // only vCPU 1 inside the drop hook runs beside an op
  const Memslot* m = slot_of(g);
  if (!m) return false;
  // R1: kvm_gmem_get_pfn() takes the invalidate lock shared (guest_memfd.c :1525); per-VM
  // shared memory is anonymous host memory and does not need it.
  const bool gmem_fault = in_place() || *attrs_.at(g) == Attr::Private;
  if (gmem_fault && in_flight_.locked == gmem_[slot_index(*m)].get()) return true;
  // R2: mmu_invalidate_retry_gfn() retries a fault whose gfn is being invalidated.
  return in_flight_.invalidating && in_flight_.invalidating->contains(g);
}

// tdp_mmu_split_huge_page on the mirror: top up the split cache with mmu_lock dropped, then
// split through tdx_sept_split_private_spte (L3474-3518, L1595-1611).
int SimHost::split_private_leaf(Gfn g) {
  const Leaf leaf = *private_.at(g);
  const Gfn block = align_down(g, leaf.level);
  const uint64_t n = pages_in(leaf.level);
  while (tdx_.need_topup()) {
    core_.log.note(EventKind::Note, "mmu_lock", "dropped for split-cache top-up", block, leaf.level);
    const int topup_err = tdx_.topup();                        // allocation runs with mmu_lock dropped ...
    const bool vcpu1_ran = mmu_lock_dropped(block, leaf.level);  // ... and so may vCPU 1
    if (core_.dead) return -EIO;  // vCPU 1 hit a KVM_BUG_ON meanwhile: the op stops here
    if (topup_err) return topup_err;
    // MUT-STALE-SPLIT: the walk goes on with the entry it read before the drop.
    if (vcpu1_ran && !core_.mut(Mutant::StaleSplit)) {
      // tdp_iter_restart: vCPU 1 may have split (or zapped) this leaf meanwhile; the caller
      // looks at the gfn afresh and splits only what still straddles.
      const Leaf* now = private_.at(g);
      if (!now || now->level != leaf.level || align_down(g, now->level) != block) return 0;
    }
    // Step (*) at L12481-12482: need_topup() again under the retaken lock, since vCPU 1's
    // fault path dequeues from the same per-VM cache. MUT-CACHE-RACE trusts the one top-up.
    if (core_.mut(Mutant::CacheRace)) break;
  }
  const Pfn sept = tdx_.alloc_sept_page();
  if (int r = tdx_.split(block, leaf.level, block + leaf.delta, sept)) {
    tdx_.free_sept_page(sept, false);  // its PAMT pair went back in TdxModule::split
    return r;
  }
  const Level to = lower(leaf.level);
  private_.update(block, block + n, [to](uint64_t, uint64_t, Leaf& v) { v.level = to; });
  (to == Level::L4K ? pt_2m_ : pt_1g_).assign(block, block + n, sept);
  core_.log.leaf(EventKind::SplitLeaf, true, block, leaf.level, n);
  return 0;
}

// kvm_split_cross_boundary_leafs (L2040-2086): split every leaf that overlaps r without lying
// inside it (iter_cross_boundary); only the two edges can have one, so work is per boundary.
int SimHost::split_cross_boundary(const GfnRange& r, bool mirror) {
  IntervalMap<Leaf>& root = mirror ? private_ : shared_;
  auto split_one = [&](Gfn x) -> int {
    if (mirror) return split_private_leaf(x);
    const Leaf leaf = *shared_.at(x);  // direct root: no S-EPT, no SEAMCALL
    const Gfn block = align_down(x, leaf.level);
    const Level to = lower(leaf.level);
    shared_.update(block, block + pages_in(leaf.level), [to](uint64_t, uint64_t, Leaf& v) { v.level = to; });
    core_.log.leaf(EventKind::SplitLeaf, false, block, leaf.level, pages_in(leaf.level));
    return 0;
  };
  auto crosses = [&](Gfn leaf_start, uint64_t n) { return !(leaf_start >= r.start && leaf_start + n <= r.end()); };

  struct Edge { Gfn probe, boundary; };
  const Edge edges[] = {{r.start, r.start}, {r.end() - 1, r.end()}};  // a fixed pair: no malloc per split
  const size_t n_edges = core_.mut(Mutant::HeadOnly) ? 1 : 2;          // seed 003
  for (const Edge& e : std::span(edges, n_edges)) {
    // MUT-1G-MISS: a 2M-aligned boundary is taken as needing no split (L11525-11527).
    if (core_.mut(Mutant::OneGMiss) && is_aligned(e.boundary, Level::L2M)) continue;
    for (const Leaf* l = root.at(e.probe); l && l->level > Level::L4K; l = root.at(e.probe)) {
      if (!crosses(align_down(e.probe, l->level), pages_in(l->level))) break;
      if (int err = split_one(e.probe)) return err;
    }
  }
  if (core_.mut(Mutant::Oversplit)) {
    // The bug: leaves inside the range are split as well (L10973-10976).
    std::vector<Gfn> huge;
    root.for_each(r.start, r.end(), [&](uint64_t a, uint64_t b, const Leaf& l) {
      for (Gfn x = a; l.level > Level::L4K && x < b; x += pages_in(l.level)) huge.push_back(x);
    });
    for (Gfn x : huge)
      for (const Leaf* l = root.at(x); l && l->level > Level::L4K; l = root.at(x))
        if (int err = split_one(x)) return err;
  }
  return 0;
}

// kvm_tdp_mmu_unmap_gfn_range on the mirror: every leaf overlapping [s, e) goes whole, which
// is why the boundary split comes first (L3238-3246). `only_inside` keeps straddling leaves.
int SimHost::zap_private(Gfn s, Gfn e, bool only_inside) {
  if (const Leaf* l = private_.at(s)) {
    Gfn b = align_down(s, l->level);
    if (b < s) s = only_inside ? b + pages_in(l->level) : b;
  }
  if (const Leaf* l = private_.at(e - 1)) {
    Gfn b = align_down(e - 1, l->level);
    if (b + pages_in(l->level) > e) e = only_inside ? b : b + pages_in(l->level);
  }
  if (s >= e) return 0;
  // Adjacent leaves of one level go as one run (one event per SEAMCALL kind), whatever their pfns.
  struct Run { Gfn a, b; Level level; TdxModule::PfnRuns pfns; };
  std::vector<Run> runs;
  private_.for_each(s, e, [&](uint64_t a, uint64_t b, const Leaf& l) {
    if (runs.empty() || runs.back().b != a || runs.back().level != l.level) runs.push_back({a, a, l.level, {}});
    runs.back().b = b;
    runs.back().pfns.push_back({a + l.delta, b - a});
  });
  // One erase of the zapped prefix, not one per run: each erase moves the maps' tails.
  auto drop_mapped = [&](Gfn end) {
    private_.erase(s, end);
    private_data_.erase(s, end);
  };
  for (const Run& r : runs) {
    if (int err = tdx_.remove(r.a, r.level, r.b - r.a, r.pfns)) {
      drop_mapped(r.a);
      return err;
    }
    core_.log.leaf(EventKind::ZapLeaf, true, r.a, r.level, r.b - r.a);
  }
  drop_mapped(e);
  if (core_.mut(Mutant::InhibitCleared) && !runs.empty())
    if (const Memslot* m = slot_of(s))  // the bug: GUEST_INHIBIT reset with the mapping (L274-277: one-way)
      clear_inhibit(*m, s, e);
  return 0;
}

void SimHost::zap_shared(Gfn s, Gfn e) {
  if (const Leaf* l = shared_.at(s)) s = align_down(s, l->level);
  if (const Leaf* l = shared_.at(e - 1)) e = align_down(e - 1, l->level) + pages_in(l->level);
  std::vector<std::tuple<Gfn, Gfn, Level>> pieces;
  shared_.for_each(s, e, [&](uint64_t a, uint64_t b, const Leaf& l) { pieces.emplace_back(a, b, l.level); });
  for (auto [a, b, level] : pieces) core_.log.leaf(EventKind::ZapLeaf, false, a, level, b - a);
  shared_.erase(s, e);
}

void SimHost::clear_inhibit(const Memslot& m, Gfn s, Gfn e) {
  for (Level lv : {Level::L2M, Level::L1G}) {
    IntervalMap<bool>& map = inhibit_map(m, lv);
    const Gfn a = align_down(s, lv), b = align_down(e + pages_in(lv) - 1, lv);
    map.for_each(a, b, [&](uint64_t x, uint64_t y, bool) { inhibit_blocks_ -= (y - x) / pages_in(lv); });
    map.erase(a, b);
  }
}

void SimHost::set_inhibit(const Memslot& m, Gfn g, Level level) {
  IntervalMap<bool>& map = inhibit_map(m, level);
  const Gfn b = align_down(g, level);
  if (map.at(b)) return;
  map.assign(b, b + pages_in(level), true);
  ++inhibit_blocks_;
  core_.log.note(EventKind::SetInhibit, "guest-inhibit", "GUEST_INHIBIT set", b, level);
}


}  // namespace tdxhp::sim
