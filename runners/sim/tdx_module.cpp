#include "runners/sim/tdx_module.h"

#include <cerrno>

#include "domain/describe.h"
#include "runners/sim/mutants.h"

namespace tdxhp::sim {

template <class Handler>
uint64_t TdxModule::seamcall(std::string_view name, std::optional<FaultSite> site, Gfn gfn, Level level, uint64_t npages,
                             Handler&& run) {
  std::optional<uint64_t> armed;
  if (site) armed = c_.faults.take(*site);  // injected: the call does not run, nothing changes
  const uint64_t status = armed ? *armed : run();
  c_.log.seamcall(name, gfn, level, npages, status);
  return status;
}

void TdxModule::kick_all_vcpus(const char* why, Gfn gfn, Level level) {
  seam_.vcpus_kicked();
  c_.log.note(EventKind::Kick, "kick", why, gfn, level);
}

template <class Handler>
uint64_t TdxModule::do_no_vcpus(std::string_view name, FaultSite site, Gfn gfn, Level level, uint64_t npages, bool retry,
                                Handler&& run) {
  uint64_t err = seamcall(name, site, gfn, level, npages, run);
  if (tdx::status_class(err) == tdx::kOperandBusy && retry) {
    kick_all_vcpus("all vCPUs kicked out of the TD for the retry", gfn, level);
    // With no vCPU inside, the module's retry succeeds (L1580-1589); an injected fault still hits it.
    err = seamcall(name, site, gfn, level, npages, run);
  }
  return err;
}

int TdxModule::bug_unless_ok(uint64_t err, std::string_view name) {
  if (err == tdx::kSuccess) return 0;
  c_.bug_on(std::string(name) + " failed with " + tdx_status_name(err));  // TDX_BUG_ON (L1604-1614)
  return -EIO;
}

void TdxModule::pamt_set(Pfn pfn_2m, int32_t to, bool sept) {
  auto& refs = sept ? sept_pamt_ref_ : pamt_ref_;
  refs.set(pfn_2m, to);
  if (!sept) c_.log.pamt_changed.push_back(pfn_2m);
}

// tdx_pamt_get (arch/x86/virt/vmx/tdx/tdx.c of the DPAMT series): atomic_inc_not_zero, else
// under pamt_lock TDH.PHYMEM.PAMT.ADD and refcount 1 (also on HPA_RANGE_NOT_FREE: a racing
// put has not removed the pair yet); any other status fails the get (-EIO, pr_err).
int TdxModule::pamt_get_range(Pfn base, uint64_t n, bool sept) {
  auto& refs = sept ? sept_pamt_ref_ : pamt_ref_;
  int32_t ref = refs.get(base);
  while (n > 0) {
    if (ref != 0) {  // a negative refcount (a put too many) counts up towards 0 first
      const int32_t k = ref < 0 ? static_cast<int32_t>(std::min<uint64_t>(n, -static_cast<int64_t>(ref))) : static_cast<int32_t>(n);
      ref += k;
      n -= static_cast<uint64_t>(k);
      continue;
    }
    const uint64_t st = seamcall("TDH.PHYMEM.PAMT.ADD", std::nullopt, base, Level::L2M, 1, [&] { return seam_.pamt_add(base); });
    if (st != tdx::kSuccess && tdx::status_class(st) != tdx::kHpaRangeNotFree) {
      pamt_set(base, ref, sept);
      c_.log.kernel_log.push_back("tdx: TDH_PHYMEM_PAMT_ADD failed: " + tdx_status_name(st));
      return -EIO;
    }
    ref = 1;
    --n;
  }
  pamt_set(base, ref, sept);
  return 0;
}

// tdx_pamt_put: atomic_dec_and_test; only the 1 -> 0 step calls TDH.PHYMEM.PAMT.REMOVE (a
// failure puts the ref back and WARNs, seed 001 patch 18). A put too many leaves it below 0.
void TdxModule::pamt_put_range(Pfn base, uint64_t n, bool sept) {
  auto& refs = sept ? sept_pamt_ref_ : pamt_ref_;
  int32_t ref = refs.get(base);
  while (n > 0) {
    if (ref != 1) {
      const uint64_t k = ref > 1 ? std::min<uint64_t>(n, static_cast<uint64_t>(ref - 1)) : n;
      ref -= static_cast<int32_t>(k);
      n -= k;
      continue;
    }
    ref = 0;
    --n;
    const uint64_t st = seamcall("TDH.PHYMEM.PAMT.REMOVE", std::nullopt, base, Level::L2M, 1, [&] { return seam_.pamt_remove(base); });
    if (st != tdx::kSuccess) {
      ref = 1;
      c_.log.kernel_log.push_back("WARN: TDH_PHYMEM_PAMT_REMOVE failed: " + tdx_status_name(st));
    }
  }
  pamt_set(base, ref, sept);
}

// Only 4K mappings hold DPAMT refcounts (L3328-3352); refcounts are per 2M physical range, so
// a run of pages is applied one 2M range at a time.
int TdxModule::pamt_get(Pfn first, uint64_t npages, bool sept) {
  if (!c_.dynamic_pamt()) return 0;
  for (Pfn p = first; p < first + npages;) {
    const Pfn base = align_down(p, Level::L2M);
    const uint64_t n = std::min(first + npages, base + 512) - p;
    if (int e = pamt_get_range(base, n, sept)) {
      if (p > first) pamt_put(first, p - first, sept);  // the pages got so far go back
      return e;
    }
    p += n;
  }
  return 0;
}

void TdxModule::pamt_put(Pfn first, uint64_t npages, bool sept) {
  if (!c_.dynamic_pamt()) return;
  for (Pfn p = first; p < first + npages;) {
    const Pfn base = align_down(p, Level::L2M);
    const uint64_t n = std::min(first + npages, base + 512) - p;
    pamt_put_range(base, n, sept);
    p += n;
  }
}

int TdxModule::add_page(Gfn gfn, Pfn pfn) {
  if (int e = pamt_get(pfn, 1)) return e;
  // At build, before any Inject can run.
  const uint64_t st = seamcall("TDH.MEM.PAGE.ADD", std::nullopt, gfn, Level::L4K, 1, [&] { return seam_.page_add(gfn, pfn); });
  const int e = bug_unless_ok(st, "TDH.MEM.PAGE.ADD");
  if (e) pamt_put(pfn, 1);
  return e;
}

// tdx_sept_set_private_spte -> tdx_mem_page_aug, once per fault attempt: take the DPAMT refs,
// AUG, and when it fails put them back (L3339-3342), after the TDX_BUG_ON inside
// tdx_mem_page_aug; BUSY is -EBUSY and the fault is retried.
template <class Get, class Put, class Handler>
int TdxModule::aug_attempts(Gfn gfn, Level level, uint64_t npages, Get&& get, Put&& put, Handler&& run) {
  for (;;) {
    if (int e = get()) return e;
    const uint64_t err = seamcall("TDH.MEM.PAGE.AUG", FaultSite::Aug, gfn, level, npages, run);
    const bool busy = tdx::status_class(err) == tdx::kOperandBusy;
    const int e = busy ? -EBUSY : bug_unless_ok(err, "TDH.MEM.PAGE.AUG");
    if (err) put();
    if (!busy) return e;
    c_.log.note(EventKind::Note, "fault", "TDH.MEM.PAGE.AUG busy: -EBUSY, the fault is retried", gfn, level);
  }
}

int TdxModule::aug(Gfn gfn, Level level, Pfn pfn) {
  // KVM_BUG_ON in tdx_sept_set_private_spte: no huge AUG before RUNNABLE (L4395-4402).
  if (level != Level::L4K && (!c_.runnable || !c_.cfg.tdx_huge_page) && !c_.mut(Mutant::BuildHuge)) {
    c_.bug_on("huge AUG at " + hex(gfn) + " while huge pages are not allowed");
    return -EIO;
  }
  const uint64_t n = pages_in(level);
  return aug_attempts(
      gfn, level, n, [&] { return level == Level::L4K ? pamt_get(pfn, 1) : 0; },
      [&] {  // MUT-AUG-FAIL-PAMT: the put is not limited to the 4K AUG that got a ref.
        if (level == Level::L4K || c_.mut(Mutant::AugFailPamt)) pamt_put(pfn, 1);
      },
      [&] { return seam_.page_aug(gfn, level, n, pfn); });
}

// The same for gfns [gfn, gfn + npages) faulting at 4K, logged as one AUG of npages.
int TdxModule::aug_4k_run(Gfn gfn, uint64_t npages, const std::vector<std::pair<Pfn, uint64_t>>& pfn_runs) {
  auto get = [&] {
    for (size_t i = 0; i < pfn_runs.size(); ++i)
      if (int e = pamt_get(pfn_runs[i].first, pfn_runs[i].second)) {
        for (size_t j = 0; j < i; ++j) pamt_put(pfn_runs[j].first, pfn_runs[j].second);
        return e;
      }
    return 0;
  };
  auto put = [&] {
    for (auto [pfn, n] : pfn_runs) pamt_put(pfn, n);
  };
  auto run = [&] {
    for (Gfn g = gfn; auto [pfn, n] : pfn_runs) {
      if (uint64_t st = seam_.page_aug(g, Level::L4K, n, pfn)) return st;
      g += n;
    }
    return tdx::kSuccess;
  };
  return aug_attempts(gfn, Level::L4K, npages, get, put, run);
}

// A SEAMCALL on KVM's fault path (tdx_sept_link_private_spt): BUSY is -EBUSY and the fault is
// retried, each retry a fresh call; any other error is TDX_BUG_ON.
template <class Handler>
int TdxModule::fault_path_call(std::string_view name, FaultSite site, Gfn gfn, Level level, uint64_t npages, Handler&& run) {
  uint64_t err = seamcall(name, site, gfn, level, npages, run);
  while (tdx::status_class(err) == tdx::kOperandBusy) {
    c_.log.note(EventKind::Note, "fault", std::string(name) + " busy: -EBUSY, the fault is retried", gfn, level);
    err = seamcall(name, site, gfn, level, npages, run);
  }
  return bug_unless_ok(err, name);
}

int TdxModule::sept_add(Gfn gfn, Level entry_level, Pfn page) {
  return fault_path_call("TDH.MEM.SEPT.ADD", FaultSite::SeptAdd, gfn, entry_level, 1,
                         [&] { return seam_.sept_add(gfn, entry_level, page); });
}

template <class Handler>
int TdxModule::no_vcpus_or_bug(std::string_view name, FaultSite site, Gfn gfn, Level level, uint64_t npages, Handler&& run) {
  return bug_unless_ok(do_no_vcpus(name, site, gfn, level, npages, true, run), name);
}

// tdx_sept_remove_private_spte: BLOCK, TRACK and REMOVE each through tdh_do_no_vcpus (BUSY: kick,
// retry once), then WBINVD; whatever still fails is TDX_BUG_ON.
int TdxModule::remove(Gfn gfn, Level level, uint64_t npages, const PfnRuns& pfn_runs) {
  if (int e = block_and_track(gfn, level, npages)) return e;
  if (int e = no_vcpus_or_bug("TDH.MEM.PAGE.REMOVE", FaultSite::Remove, gfn, level, npages,
                              [&] { return seam_.page_remove(gfn, level, npages); }))
    return e;
  // WBINVD is issued per 4K page of the removed leaves: logged at 4K, one event for the run.
  const uint64_t wb = seamcall("TDH.PHYMEM.PAGE.WBINVD", FaultSite::Wbinvd, gfn, Level::L4K, npages, [&] {
    for (auto [pfn, n] : pfn_runs)
      if (uint64_t st = seam_.page_wbinvd(pfn, n)) return st;
    return tdx::kSuccess;
  });
  if (int e = bug_unless_ok(wb, "TDH.PHYMEM.PAGE.WBINVD")) return e;
  for (auto [pfn, n] : pfn_runs) {
    if (level == Level::L4K) {
      pamt_put(pfn, n);
    } else if (c_.mut(Mutant::PamtPut2M)) {  // the bug: tdx_pamt_put(page) without the level check
      for (uint64_t i = 0; i < n; i += pages_in(level)) pamt_put(pfn + i, 1);
    }
  }
  return 0;
}

// BLOCK, then tdx_track: TRACK, and every vCPU is kicked (TLB shootdown). MUT-NO-BLOCK and
// MUT-NO-TRACK drop one half; the module's REMOVE / DEMOTE then refuse.
int TdxModule::block_and_track(Gfn gfn, Level level, uint64_t npages) {
  if (!c_.mut(Mutant::NoBlock))
    if (int e = no_vcpus_or_bug("TDH.MEM.RANGE.BLOCK", FaultSite::Block, gfn, level, npages,
                                [&] { return seam_.range_block(gfn, level, npages); }))
      return e;
  if (c_.mut(Mutant::NoTrack)) return 0;
  // TRACK is TD-wide: logged without a gfn range.
  if (int e = no_vcpus_or_bug("TDH.MEM.TRACK", FaultSite::Track, 0, Level::L4K, 0, [&] { return seam_.track(); }))
    return e;
  kick_all_vcpus("TLB shootdown after TRACK", gfn, level);
  return 0;
}

int TdxModule::split(Gfn gfn, Level level, Pfn guest_pfn, Pfn sept_page) {
  if (!c_.runnable || level == Level::L4K) {  // KVM_BUG_ON at L1600-1602
    c_.bug_on("split of a " + std::string(name(level)) + " leaf at " + hex(gfn) + " before RUNNABLE");
    return -EIO;
  }
  if (int e = block_and_track(gfn, level, pages_in(level))) return e;
  if (int e = pamt_get(sept_page, 1, true)) return e;  // tdx_pamt_get(new_sept_page)

  uint64_t err;
  auto demote = [&] { return seam_.page_demote(gfn, level, sept_page); };
  // tdh_mem_page_demote(): no bit 51 -> TDX_SW_ERROR before any SEAMCALL (L826).
  if (!c_.cfg.features.enhanced_demote_interruptibility) {
    err = tdx::kSwError;
    c_.log.seamcall("TDH.MEM.PAGE.DEMOTE", gfn, level, pages_in(level), err);
  } else {
    err = do_no_vcpus("TDH.MEM.PAGE.DEMOTE", FaultSite::Demote, gfn, level, pages_in(level),
                      !c_.mut(Mutant::NoBusyRetry), demote);
    // v3 never retries INTERRUPTED_RESTARTABLE: there is no bound on it (L14243-14250).
    while (err == tdx::kInterruptedRestartable && c_.mut(Mutant::RestartLoop)) {
      ++c_.log.restart_retries;
      err = seamcall("TDH.MEM.PAGE.DEMOTE", FaultSite::Demote, gfn, level, pages_in(level), demote);
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
