#include "runners/sim/tdx_module.h"

#include <cerrno>

#include "domain/describe.h"
#include "runners/sim/mutants.h"

namespace tdxhp::sim {

uint64_t TdxModule::seamcall(const char* name, std::optional<FaultSite> site, Gfn gfn, Level level, uint64_t npages) {
  uint64_t status = tdx::kSuccess;
  if (site)
    if (auto armed = c_.faults.take(*site)) status = *armed;  // injected: the call does not run
  c_.log.seamcall(name, gfn, level, npages, status);
  return status;
}

uint64_t TdxModule::do_no_vcpus(const char* name, FaultSite site, Gfn gfn, Level level, uint64_t npages, bool retry) {
  uint64_t err = seamcall(name, site, gfn, level, npages);
  if (tdx::status_class(err) == tdx::kOperandBusy && retry) {
    c_.log.note(EventKind::Kick, "kick", "all vCPUs kicked out of the TD for the retry", gfn, level);
    // With no vCPU inside, the module's retry succeeds (L1580-1589); an injected fault still hits it.
    err = seamcall(name, site, gfn, level, npages);
  }
  return err;
}

int TdxModule::bug_unless_ok(uint64_t err, const char* name) {
  if (err == tdx::kSuccess) return 0;
  c_.bug_on(std::string(name) + " failed with " + tdx_status_name(err));  // TDX_BUG_ON (L1604-1614)
  return -EIO;
}

void TdxModule::pamt_set(Pfn pfn_2m, uint32_t to, bool sept, bool pair_calls) {
  auto& refs = sept ? sept_pamt_ref_ : pamt_ref_;
  const uint32_t from = refs.count(pfn_2m) ? refs.at(pfn_2m) : 0;
  if (to == 0) refs.erase(pfn_2m);
  else refs[pfn_2m] = to;
  if (!sept) c_.log.pamt_changed.insert(pfn_2m);
  // tdx_pamt_get/put: a 2M range gets its PAMT page pair on 0 -> 1 and returns it on 1 -> 0
  // (L3328-3352); the pair DEMOTE takes comes with the SEAMCALL (pair_calls false).
  if (pair_calls && from == 0 && to > 0) c_.log.seamcall("TDH.PHYMEM.PAMT.ADD", 0, Level::L2M, 1, tdx::kSuccess);
  if (pair_calls && from > 0 && to == 0) c_.log.seamcall("TDH.PHYMEM.PAMT.REMOVE", 0, Level::L2M, 1, tdx::kSuccess);
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
  seamcall("TDH.MEM.PAGE.ADD", std::nullopt, gfn, Level::L4K, 1);  // at build, before any inject
  return 0;
}

// tdx_mem_page_aug: BUSY retries the fault (RET_PF_RETRY), see fault_path_call.
int TdxModule::aug(Gfn gfn, Level level, Pfn pfn) {
  // KVM_BUG_ON in tdx_sept_set_private_spte: no huge AUG before RUNNABLE (L4395-4402).
  if (level != Level::L4K && (!c_.runnable || !c_.cfg.tdx_huge_page) && !c_.mut(Mutant::BuildHuge)) {
    c_.bug_on("huge AUG at " + hex(gfn) + " while huge pages are not allowed");
    return -EIO;
  }
  if (level == Level::L4K) pamt_get(pfn, 1);
  const int err = fault_path_call("TDH.MEM.PAGE.AUG", FaultSite::Aug, gfn, level, pages_in(level));
  if (err && level == Level::L4K) pamt_put(pfn, 1);  // L3339-3342: only a 4K AUG got a pair
  return err;
}

int TdxModule::aug_4k_run(Gfn gfn, uint64_t npages, const std::vector<std::pair<Pfn, uint64_t>>& pfn_runs) {
  for (auto [pfn, n] : pfn_runs) pamt_get(pfn, n);
  const int err = fault_path_call("TDH.MEM.PAGE.AUG", FaultSite::Aug, gfn, Level::L4K, npages);
  if (err)
    for (auto [pfn, n] : pfn_runs) pamt_put(pfn, n);
  return err;
}

// A SEAMCALL on KVM's fault path (tdx_mem_page_aug, tdx_sept_link_private_spt): BUSY is
// -EBUSY and the fault is retried, each retry a fresh call; any other error is TDX_BUG_ON.
int TdxModule::fault_path_call(const char* name, FaultSite site, Gfn gfn, Level level, uint64_t npages) {
  uint64_t err = seamcall(name, site, gfn, level, npages);
  while (tdx::status_class(err) == tdx::kOperandBusy) {
    c_.log.note(EventKind::Note, "fault", std::string(name) + " busy: -EBUSY, the fault is retried", gfn, level);
    err = seamcall(name, site, gfn, level, npages);
  }
  return bug_unless_ok(err, name);
}

int TdxModule::sept_add(Gfn gfn, Level level) { return fault_path_call("TDH.MEM.SEPT.ADD", FaultSite::SeptAdd, gfn, level, 1); }

int TdxModule::no_vcpus_or_bug(const char* name, FaultSite site, Gfn gfn, Level level, uint64_t npages) {
  return bug_unless_ok(do_no_vcpus(name, site, gfn, level, npages, true), name);
}

// tdx_sept_remove_private_spte: BLOCK, TRACK and REMOVE each through tdh_do_no_vcpus (BUSY: kick,
// retry once), then WBINVD; whatever still fails is TDX_BUG_ON.
int TdxModule::remove(Gfn gfn, Level level, uint64_t npages, Pfn pfn) {
  if (int e = block_and_track(gfn, level, npages)) return e;
  if (int e = no_vcpus_or_bug("TDH.MEM.PAGE.REMOVE", FaultSite::Remove, gfn, level, npages)) return e;
  if (int e = bug_unless_ok(seamcall("TDH.PHYMEM.PAGE.WBINVD", FaultSite::Wbinvd, gfn, level, npages),
                            "TDH.PHYMEM.PAGE.WBINVD"))
    return e;
  if (level == Level::L4K) pamt_put(pfn, npages);
  return 0;
}

// BLOCK, then tdx_track: TRACK, and every vCPU is kicked (TLB shootdown).
int TdxModule::block_and_track(Gfn gfn, Level level, uint64_t npages) {
  if (int e = no_vcpus_or_bug("TDH.MEM.RANGE.BLOCK", FaultSite::Block, gfn, level, npages)) return e;
  if (int e = no_vcpus_or_bug("TDH.MEM.TRACK", FaultSite::Track, gfn, level, npages)) return e;
  c_.log.note(EventKind::Kick, "kick", "TLB shootdown after TRACK", gfn, level);
  return 0;
}

int TdxModule::split(Gfn gfn, Level level, Pfn guest_pfn, Pfn sept_page) {
  if (!c_.runnable || level == Level::L4K) {  // KVM_BUG_ON at L1600-1602
    c_.bug_on("split of a " + std::string(name(level)) + " leaf at " + hex(gfn) + " before RUNNABLE");
    return -EIO;
  }
  if (int e = block_and_track(gfn, level, pages_in(level))) return e;
  pamt_get(sept_page, 1, true);  // tdx_pamt_get(new_sept_page)

  uint64_t err;
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
      err = seamcall("TDH.MEM.PAGE.DEMOTE", FaultSite::Demote, gfn, level, pages_in(level));
    }
  }
  dequeue_for_split();  // under prealloc_split_cache_lock, around the DEMOTE
  if (err != tdx::kSuccess) {  // TDX_BUG_ON_2, then the new S-EPT page's pair goes back (L4255)
    const int e = bug_unless_ok(err, "TDH.MEM.PAGE.DEMOTE");
    if (!c_.mut(Mutant::PamtLeak)) pamt_put(sept_page, 1, true);
    return e;
  }
  // DPAMT: the guest 2M range now has 512 4K entries (atomic_cmpxchg 0 -> PTRS_PER_PMD, L4311).
  if (c_.dynamic_pamt() && level == Level::L2M && !c_.mut(Mutant::PamtLeak)) {
    Pfn base = align_down(guest_pfn, Level::L2M);
    if (pamt_refcount(base) != 0) c_.log.kernel_log.push_back("WARN: DPAMT refcount of " + hex(base) + " not 0 at demote");
    pamt_set(base, 512, false, false);
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
  if (c_.faults.take(FaultSite::SplitCacheTopup)) {
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
