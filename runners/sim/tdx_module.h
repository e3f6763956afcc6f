// KVM's tdx.c side of the TDX module: SEAMCALL wrappers with their statuses, the
// BUSY -> kick -> retry-once rule (tdh_do_no_vcpus), TDX_BUG_ON, Dynamic PAMT refcounts
// (tdx_pamt_get/put) and the per-VM split cache (prealloc_split_cache + its lock). The module
// itself, which refuses what the real one refuses, is SeamModule.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <utility>
#include <vector>

#include "runners/sim/core.h"
#include "runners/sim/seam_module.h"

namespace tdxhp::sim {

// 2M pfn range -> DPAMT refcount, nonzero only, in a sorted vector: a few hundred ranges at
// most, and a std::map's node per new range was a malloc on the 4K map/unmap path.
class PamtRefs {
 public:
  using Entry = std::pair<Pfn, int32_t>;
  int32_t get(Pfn p) const {
    const size_t i = lower(p);
    return i < v_.size() && v_[i].first == p ? v_[i].second : 0;
  }
  void set(Pfn p, int32_t to) {
    const size_t i = lower(p);
    const auto it = v_.begin() + static_cast<std::ptrdiff_t>(i);
    const bool there = i < v_.size() && v_[i].first == p;
    if (to == 0) {
      if (there) v_.erase(it);
    } else if (there) {
      v_[i].second = to;
    } else {
      v_.insert(it, {p, to});
    }
  }
  size_t size() const { return v_.size(); }
  std::vector<Entry>::const_iterator begin() const { return v_.begin(); }
  std::vector<Entry>::const_iterator end() const { return v_.end(); }

 private:
  // The index of p's entry, or of where it would go.
  size_t lower(Pfn p) const {
    return static_cast<size_t>(
        std::lower_bound(v_.begin(), v_.end(), p, [](const Entry& e, Pfn x) { return e.first < x; }) - v_.begin());
  }
  std::vector<Entry> v_;  // ascending pfn
};

class TdxModule {
 public:
  explicit TdxModule(SimCore& core) : c_(core) {}

  // TDH.MEM.PAGE.ADD (build time, 4K only; L4348-4351) / TDH.MEM.PAGE.AUG.
  int add_page(Gfn gfn, Pfn pfn);
  int aug(Gfn gfn, Level level, Pfn pfn);
  // 4K AUGs of gfns [gfn, gfn + npages) whose pfns are the given (first pfn, count) runs.
  int aug_4k_run(Gfn gfn, uint64_t npages, const std::vector<std::pair<Pfn, uint64_t>>& pfn_runs);
  // TDH.MEM.SEPT.ADD of S-EPT page `page` as the table under gfn's entry at entry_level
  // (tdx_sept_link_private_spt; a 4K table goes under a 2M entry).
  int sept_add(Gfn gfn, Level entry_level, Pfn page);
  // tdx_sept_remove_private_spte for a run of same-level leaves at [gfn, gfn + npages) whose
  // pfns are the given (first pfn, count) runs: BLOCK, TRACK, REMOVE, WBINVD.
  using PfnRuns = std::vector<std::pair<Pfn, uint64_t>>;
  int remove(Gfn gfn, Level level, uint64_t npages, const PfnRuns& pfn_runs);
  // tdx_sept_split_private_spte: BLOCK -> TRACK/kick -> PAMT_ADD(new S-EPT page) -> DEMOTE;
  // no UNBLOCK after a successful DEMOTE (seed 004, L1580-1611, L4245-4313).
  int split(Gfn gfn, Level level, Pfn guest_pfn, Pfn sept_page);

  void finalize() { seam_.finalize(); }  // TDH.MR.FINALIZE: the TD is RUNNABLE
  // S-EPT page-table pages (each one DPAMT-refcounted while in use).
  Pfn alloc_sept_page();
  int sept_page_in_use(Pfn p) { return pamt_get(p, 1, true); }  // fault path: tdx_pamt_get(new S-EPT page)
  void free_sept_page(Pfn, bool put_pamt);
  const PamtRefs& pamt_refs() const { return pamt_ref_; }
  const SeamModule& seam() const { return seam_; }
  SeamModule& seam() { return seam_; }

  // Split cache (L3474-3518, L12467-12524): top-up outside mmu_lock, dequeue under its lock.
  bool need_topup() const;
  int topup();          // -ENOMEM when the allocation fails (injected)
  void dequeue_for_split();

  // The HKID is freed: the module reclaims every page (TD_TEARDOWN), then the kernel drops
  // the DPAMT refs of reclaimed 4K guest pages and S-EPT pages.
  void begin_teardown() { seam_.teardown(); }
  void teardown_reclaim();  // TDH.PHYMEM.PAGE.RECLAIM of the TD's control pages
  void release_guest_pages(const std::vector<std::pair<Pfn, uint64_t>>& runs) {
    for (auto [p, n] : runs) pamt_put(p, n);
  }

  // Internals (sim only).
  // A PAMT page pair per 2M range in use, guest memory and S-EPT pages alike.
  uint64_t pamt_pages_in_use() const { return 2 * (pamt_ref_.size() + sept_pamt_ref_.size()); }
  int32_t pamt_refcount(Pfn pfn_2m) const { return pamt_ref_.get(pfn_2m); }
  uint64_t cache_count() const { return cache_count_; }
  uint64_t cache_min() const { return c_.dynamic_pamt() ? 4 : 0; }  // 2 pairs with DPAMT (L3781-3824)
  uint64_t cache_underflows() const { return cache_underflows_; }
  uint64_t sept_pages() const { return sept_in_use_; }

 private:
  // One SEAMCALL, logged with its status: an armed fault at `site` is returned instead of
  // running it; else the module's handler `run` answers.
  template <class Handler>
  uint64_t seamcall(std::string_view name, std::optional<FaultSite> site, Gfn gfn, Level level, uint64_t npages, Handler&& run);
  // tdh_do_no_vcpus(): on BUSY kick every vCPU out of the TD and retry once (L1580-1589).
  template <class Handler>
  uint64_t do_no_vcpus(std::string_view name, FaultSite site, Gfn gfn, Level level, uint64_t npages, bool retry, Handler&& run);
  // TDX_BUG_ON: 0 on success, else KVM_BUG_ON (the TD is dead) and -EIO (L1604-1614).
  int bug_unless_ok(uint64_t err, std::string_view name);
  template <class Handler>
  int fault_path_call(std::string_view name, FaultSite site, Gfn gfn, Level level, uint64_t npages, Handler&& run);
  template <class Get, class Put, class Handler>
  int aug_attempts(Gfn gfn, Level level, uint64_t npages, Get&& get, Put&& put, Handler&& run);
  template <class Handler>
  int no_vcpus_or_bug(std::string_view name, FaultSite site, Gfn gfn, Level level, uint64_t npages, Handler&& run);
  int block_and_track(Gfn gfn, Level level, uint64_t npages);
  void kick_all_vcpus(const char* why, Gfn gfn, Level level);
  // tdx_pamt_get/put per page, one 2M range at a time. `sept`: the page is an S-EPT page; its
  // refs are kept apart from guest memory's, whose refcount must equal the 4K guest mappings
  // (what pamt_changes reports, SEMANTICS.md). get fails (-EIO) when PAMT.ADD does.
  int pamt_get(Pfn first, uint64_t npages, bool sept = false);
  void pamt_put(Pfn first, uint64_t npages, bool sept = false);
  int pamt_get_range(Pfn base, uint64_t n, bool sept);
  void pamt_put_range(Pfn base, uint64_t n, bool sept);
  void pamt_set(Pfn pfn_2m, int32_t to, bool sept = false);
  uint64_t pages_per_split() const { return c_.dynamic_pamt() ? 5 : 1; }  // S-EPT page (+ 2 PAMT pairs)

  SimCore& c_;
  SeamModule seam_;
  // guest 2M pfn range -> DPAMT 4K-entry refcount (an atomic_t: a put too many goes below 0),
  // nonzero only
  PamtRefs pamt_ref_;
  PamtRefs sept_pamt_ref_;  // the same for S-EPT page-table pages
  uint64_t cache_count_ = 0;
  uint64_t cache_underflows_ = 0;
  Pfn next_sept_pfn_ = Pfn{1} << 32;  // S-EPT pages come from their own physical area
  std::vector<Pfn> free_sept_;
  uint64_t sept_in_use_ = 0;
};

}  // namespace tdxhp::sim
