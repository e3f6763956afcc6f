#include "runners/sim/tdx_module.h"

#include <cerrno>

#include "domain/describe.h"

namespace tdxhp::sim {

uint64_t TdxModule::seamcall(const char* name, FaultSite site, bool injectable, Gfn gfn, Level level,
                             uint64_t npages) {
  uint64_t status = tdx::kSuccess;
  if (injectable && c_.faults.take(site, FaultKind::Busy)) status = tdx::kOperandBusy;
  else if (injectable && site == FaultSite::Demote && c_.faults.take(site, FaultKind::InterruptedRestartable))
    status = tdx::kInterruptedRestartable;
  c_.log.seamcall(name, gfn, level, npages, status);
  return status;
}

uint64_t TdxModule::do_no_vcpus(const char* name, FaultSite site, Gfn gfn, Level level, uint64_t npages,
                                bool retry) {
  uint64_t err = seamcall(name, site, true, gfn, level, npages);
  if (tdx::status_class(err) == tdx::kOperandBusy && retry) {
    c_.log.note(EventKind::Kick, "kick", "all vCPUs kicked out of the TD for the retry", gfn, level);
    // The module guarantees the retry with no vCPU inside succeeds (L1580-1589).
    err = seamcall(name, site, false, gfn, level, npages);
  }
  return err;
}

void TdxModule::pamt_set(Pfn pfn_2m, uint32_t to, bool sept) {
  auto& refs = sept ? sept_pamt_ref_ : pamt_ref_;
  if (to == 0) refs.erase(pfn_2m);
  else refs[pfn_2m] = to;
  if (!sept) c_.log.pamt_changed.insert(pfn_2m);
}

// tdx_pamt_get/put: only 4K mappings hold DPAMT refcounts (L3328-3352). Refcounts are per
// 2M physical range, so a run of pages is applied one 2M range at a time.
void TdxModule::pamt_adjust(Pfn first, uint64_t npages, bool sept, bool get) {
  if (!c_.dynamic_pamt()) return;
  auto& refs = sept ? sept_pamt_ref_ : pamt_ref_;
  for (Pfn p = first; p < first + npages;) {
    const Pfn base = align_down(p, Level::L2M);
    const uint64_t n = std::min(first + npages, base + 512) - p;
    const uint32_t old = refs.count(base) ? refs.at(base) : 0;
    if (get) {
      pamt_set(base, old + static_cast<uint32_t>(n), sept);
    } else if (old < n) {
      c_.log.kernel_log.push_back("WARN: DPAMT refcount underflow for 2M pfn range " + hex(base));
      pamt_set(base, 0, sept);
    } else {
      pamt_set(base, old - static_cast<uint32_t>(n), sept);
    }
    p += n;
  }
}

int TdxModule::add_page(Gfn gfn, Pfn pfn) {
  pamt_get(pfn, 1);
  seamcall("TDH.MEM.PAGE.ADD", FaultSite::Block, false, gfn, Level::L4K, 1);
  return 0;
}

int TdxModule::aug(Gfn gfn, Level level, Pfn pfn) {
  // KVM_BUG_ON in tdx_sept_set_private_spte: no huge AUG before RUNNABLE (L4395-4402).
  if (level != Level::L4K && (!c_.runnable || !c_.cfg.tdx_huge_page) && !c_.mut(Mutant::BuildHuge)) {
    c_.bug_on("huge AUG at " + hex(gfn) + " while huge pages are not allowed");
    return -EIO;
  }
  if (level == Level::L4K) pamt_get(pfn, 1);
  seamcall("TDH.MEM.PAGE.AUG", FaultSite::Block, false, gfn, level, pages_in(level));
  return 0;
}

void TdxModule::aug_4k_run(Gfn gfn, uint64_t npages, const std::vector<std::pair<Pfn, uint64_t>>& pfn_runs) {
  for (auto [pfn, n] : pfn_runs) pamt_get(pfn, n);
  seamcall("TDH.MEM.PAGE.AUG", FaultSite::Block, false, gfn, Level::L4K, npages);
}

int TdxModule::remove(Gfn gfn, Level level, uint64_t npages, Pfn pfn) {
  uint64_t err = do_no_vcpus("TDH.MEM.RANGE.BLOCK", FaultSite::Block, gfn, level, npages, true);
  if (err != tdx::kSuccess) {
    c_.bug_on("TDH.MEM.RANGE.BLOCK failed with " + tdx_status_name(err));
    return -EIO;
  }
  err = do_no_vcpus("TDH.MEM.TRACK", FaultSite::Track, gfn, level, npages, true);
  if (err != tdx::kSuccess) {
    c_.bug_on("TDH.MEM.TRACK failed with " + tdx_status_name(err));
    return -EIO;
  }
  c_.log.note(EventKind::Kick, "kick", "TLB shootdown after TRACK", gfn, level);
  seamcall("TDH.MEM.PAGE.REMOVE", FaultSite::Block, false, gfn, level, npages);
  seamcall("TDH.PHYMEM.PAGE.WBINVD", FaultSite::Block, false, gfn, level, npages);
  if (level == Level::L4K) pamt_put(pfn, npages);
  return 0;
}

int TdxModule::split(Gfn gfn, Level level, Pfn guest_pfn, Pfn sept_page) {
  if (!c_.runnable || level == Level::L4K) {  // KVM_BUG_ON at L1600-1602
    c_.bug_on("split of a " + std::string(name(level)) + " leaf at " + hex(gfn) + " before RUNNABLE");
    return -EIO;
  }
  uint64_t err = do_no_vcpus("TDH.MEM.RANGE.BLOCK", FaultSite::Block, gfn, level, pages_in(level), true);
  if (err != tdx::kSuccess) {
    c_.bug_on("TDH.MEM.RANGE.BLOCK failed with " + tdx_status_name(err));
    return -EIO;
  }
  err = do_no_vcpus("TDH.MEM.TRACK", FaultSite::Track, gfn, level, pages_in(level), true);
  if (err != tdx::kSuccess) {
    c_.bug_on("TDH.MEM.TRACK failed with " + tdx_status_name(err));
    return -EIO;
  }
  c_.log.note(EventKind::Kick, "kick", "TLB shootdown after TRACK", gfn, level);
  pamt_get(sept_page, 1, true);  // tdx_pamt_get(new_sept_page)
  c_.log.seamcall("TDH.PHYMEM.PAMT.ADD", gfn, level, 1, tdx::kSuccess);

  // tdh_mem_page_demote(): no bit 51 -> TDX_SW_ERROR before any SEAMCALL (L826).
  if (!c_.cfg.features.enhanced_demote_interruptibility) {
    err = tdx::kSwError;
    c_.log.seamcall("TDH.MEM.PAGE.DEMOTE", gfn, level, pages_in(level), err);
  } else {
    err = do_no_vcpus("TDH.MEM.PAGE.DEMOTE", FaultSite::Demote, gfn, level, pages_in(level),
                      !c_.mut(Mutant::NoBusyRetry));
    // v3 never retries INTERRUPTED_RESTARTABLE: there is no bound on it (L14243-14250).
    while (err == tdx::kInterruptedRestartable && c_.mut(Mutant::RestartLoop)) {
      ++c_.log.restart_retries;
      err = seamcall("TDH.MEM.PAGE.DEMOTE", FaultSite::Demote, true, gfn, level, pages_in(level));
    }
  }
  dequeue_for_split();  // under prealloc_split_cache_lock, around the DEMOTE
  if (err != tdx::kSuccess) {
    if (!c_.mut(Mutant::PamtLeak)) pamt_put(sept_page, 1, true);  // L4255: return the new S-EPT page's pair
    c_.bug_on("TDH.MEM.PAGE.DEMOTE failed with " + tdx_status_name(err));
    return -EIO;
  }
  // DPAMT: the guest 2M range now has 512 4K entries (atomic_cmpxchg 0 -> PTRS_PER_PMD, L4311).
  if (c_.dynamic_pamt() && level == Level::L2M && !c_.mut(Mutant::PamtLeak)) {
    Pfn base = align_down(guest_pfn, Level::L2M);
    if (pamt_refcount(base) != 0) c_.log.kernel_log.push_back("WARN: DPAMT refcount of " + hex(base) + " not 0 at demote");
    pamt_set(base, 512);
  }
  return 0;
}

Pfn TdxModule::alloc_sept_page() {
  Pfn p;
  if (!free_sept_.empty()) {
    p = free_sept_.back();
    free_sept_.pop_back();
  } else {
    p = next_sept_pfn_++;
  }
  ++sept_in_use_;
  return p;
}

void TdxModule::free_sept_page(Pfn p, bool put_pamt) {
  if (put_pamt) pamt_put(p, 1, true);
  free_sept_.push_back(p);
  --sept_in_use_;
}

// The cache must hold one split's pages above its minimum (L12482-12524).
bool TdxModule::need_topup() const { return cache_count_ < cache_min() + pages_per_split(); }

int TdxModule::topup() {
  if (c_.faults.take(FaultSite::SplitCacheTopup, FaultKind::NoMem)) {
    c_.log.note(EventKind::Note, "split-cache-topup", "-ENOMEM");
    return -ENOMEM;
  }
  const uint64_t target = cache_min() + pages_per_split();
  if (cache_count_ < target) cache_count_ = target;
  c_.log.note(EventKind::Note, "split-cache-topup", "cache filled to " + std::to_string(cache_count_) + " pages");
  return 0;
}

void TdxModule::dequeue_for_split() {
  uint64_t n = pages_per_split();
  cache_count_ = cache_count_ >= n ? cache_count_ - n : 0;
  if (cache_count_ < cache_min()) ++cache_underflows_;
}

void TdxModule::teardown_reclaim() {
  c_.log.seamcall("TDH.PHYMEM.PAGE.RECLAIM", 0, Level::L4K, 0, tdx::kSuccess);
  cache_count_ = 0;
}

}  // namespace tdxhp::sim
