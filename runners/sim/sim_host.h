// The simulated host: guest_memfd files, KVM's mirror TDP MMU + direct root, lpage_info, the
// TD lifecycle, and the TDX module. Methods live in one file per concept:
//   mirror_mmu.cpp  leaves, page tables, max mapping level, split/zap (tdp_mmu.c, mmu.c)
//   guest.cpp       guest access / accept / MapGPA (TDCALLs, EPT violations)
//   host_ops.cpp    setup (TD build), convert, punch, prefault, pin, teardown
//   observe.cpp     windowed observations
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "domain/interval_map.h"
#include "domain/types.h"
#include "runners/sim/core.h"
#include "runners/sim/gmem.h"
#include "runners/sim/tdx_module.h"

namespace tdxhp::sim {

// One run of same-level leaves whose pfns are gfn + delta. KVM does not know the accept state
// of a private page: the TDX module's S-EPT (SeamModule) holds it.
struct Leaf {
  Level level = Level::L4K;
  uint64_t delta = 0;
  bool operator==(const Leaf&) const = default;
};

// What a private page holds: a value the guest wrote, or the build-time ADD pattern.
struct PageData {
  uint64_t value = 0;
  bool add_pattern = false;  // 0xADD0000000000000 | gfn (SEMANTICS "Setup")
  bool operator==(const PageData&) const = default;
};

class SimHost {
 public:
  explicit SimHost(uint64_t seed) : seed_(seed), alloc_(seed), tdx_(core_) {}

  SimCore& core() { return core_; }
  int setup(const Config& cfg, std::string* why);
  Outcome apply(const Op& op);
  Observation observe();
  void observe_into(Observation& o);  // observe(), reusing o's buffers
  Observation teardown();
  // Cap::Interleaving (domain/target.h): called once per top-level op, at its first mmu_lock
  // drop; the engine applies and observes vCPU 1's held ops inside it.
  void set_mmu_lock_drop_hook(std::function<void()> hook) { drop_hook_ = std::move(hook); }

 private:
  // ---- layout
  const Memslot* slot_of(Gfn g) const;
  const Memslot* slot_covering(const GfnRange& r) const;  // the one slot holding all of r
  GmemFile& gmem(const Memslot& m) { return *gmem_[slot_index(m)]; }
  size_t slot_index(const Memslot& m) const { return static_cast<size_t>(&m - core_.cfg.slots.data()); }
  static uint64_t index_of(const Memslot& m, Gfn g) { return m.gmem_offset + (g - m.base_gfn); }
  bool all_private(Gfn s, Gfn e) const {
    return attrs_.all_of(s, e, [](Attr a) { return a == Attr::Private; });
  }
  bool in_place() const { return core_.cfg.attr_mode == AttrMode::InPlace; }

  // ---- mirror_mmu.cpp
  Level private_max_level(const Memslot& m, Gfn g, Level cap);
  bool backing_allows(const Memslot& m, Gfn block, Level level);
  bool has_page_table(Gfn g, Level level) const;
  int ensure_page_tables(Gfn g, Level leaf_level);  // TDH.MEM.SEPT.ADD; -EIO when it fails
  int fault_private(const Memslot& m, Gfn g, Level cap);
  int map_private_4k_run(const Memslot& m, Gfn s, Gfn e);  // unmapped private gfns under page tables
  void map_shared(const Memslot& m, Gfn g);
  Level shared_host_level(const Memslot& m, Gfn g) const;  // per-VM host page behind gfn g
  // The gfns of host (HVA) page indices [a, b) of the slot's shared memory, clipped to the slot.
  GfnRange gfns_of_host_pages(const Memslot& m, uint64_t a, uint64_t b) const;
  // One level down, with split-cache top-up. Returns 0 without splitting when the leaf at g
  // changed while mmu_lock was dropped: the caller looks at the leaf again.
  int split_private_leaf(Gfn g);
  // The top-up's mmu_lock drop: vCPU 1's held ops run here (once per top-level op). True
  // when they did, so the caller must look at its leaf afresh.
  bool mmu_lock_dropped(Gfn g, Level level);
  // Whether a fault of vCPU 1 at gfn g, at this drop point, waits for the running op
  // (SEMANTICS.md "Queued guest ops"): it needs guest_memfd's invalidate lock (R1) and retries
  // while g is being invalidated (R2) (shared/reviews/conversion-race-analysis.md).
  bool fault_waits(Gfn g) const;
  int split_cross_boundary(const GfnRange& r, bool mirror);
  int zap_private(Gfn s, Gfn e, bool only_inside);
  void zap_shared(Gfn s, Gfn e);
  void set_inhibit(const Memslot& m, Gfn g, Level level);

  // ---- guest.cpp
  Outcome access(const Access& a);
  Outcome accept(const Accept& a);
  uint64_t accept_pending(Gfn g, Level a);
  int honor_guest_accept_level(const Memslot& m, Gfn g, Level a);

  // ---- host_ops.cpp
  int convert(const GfnRange& r, Attr to);
  std::vector<std::pair<const Memslot*, GfnRange>> slot_parts(const GfnRange& r) const;
  int convert_per_vm(const GfnRange& r, const std::vector<std::pair<const Memslot*, GfnRange>>& parts, Attr to);
  int convert_in_place(const Memslot& m, const GfnRange& r, Attr to);
  int to_shared_steps(const Memslot& m, const GfnRange& r);
  int to_private_steps(const Memslot& m, const GfnRange& r);
  std::function<bool(uint64_t, uint64_t)> uniform_after(const Memslot& m, const GfnRange& r, Attr to) const;
  void begin_invalidation(const GfnRange& r);
  void set_attrs(const GfnRange& r, Attr a);  // and report the range in the next observation
  // MUT-INVALIDATE-LEAK: an mmu invalidation that never ends (mmu_invalidate_in_progress stays
  // up, so its range only grows); a fault in it retries forever.
  void leak_invalidation(const GfnRange& r);
  bool fault_retries_forever(Gfn g);
  GfnRange attr_invalidation_range(const Memslot& m, const GfnRange& r) const;
  int punch(const GfnRange& r);
  int prefault(const GfnRange& r);
  int pin(const GfnRange& r, int delta);
  int discard_shared(const GfnRange& r);
  int delete_slot(uint32_t id);
  int add_slot(uint32_t id);
  void mark_thp_pmd_splits(const Memslot& m, uint64_t hs, uint64_t he);

  // ---- observe.cpp
  Observation collect(bool everything);
  void collect_into(bool everything, Observation& o);  // collect(), reusing o's buffers
  void internals_into(bool everything, SimInternals& in);  // sorts the step log's pamt_changed

  uint64_t seed_;
  SimCore core_;
  PfnAllocator alloc_;
  TdxModule tdx_;
  std::vector<std::unique_ptr<GmemFile>> gmem_;
  std::vector<bool> live_;           // per config slot: present (deleted by DeleteSlot)
  IntervalMap<Attr> attrs_;          // per-gfn attributes (KVM's, or gmem's in place)
  IntervalMap<Leaf> private_;        // mirror root leaves (== S-EPT)
  IntervalMap<Leaf> shared_;         // direct root leaves
  IntervalMap<Pfn> pt_2m_, pt_1g_;   // mirror regions with a page table under them -> its S-EPT page
  // Per config slot, its lpage_info's GUEST_INHIBIT bits at 2M and 1G (one-way while the slot
  // lives; hugepage_set_guest_inhibit(slot, gfn, level), L2303-2313).
  struct LpageInfo {
    IntervalMap<bool> inhibit[2];  // [0] 2M blocks, [1] 1G blocks
  };
  std::vector<LpageInfo> lpage_;
  uint64_t inhibit_blocks_ = 0;
  IntervalMap<bool>& inhibit_map(const Memslot& m, Level l) { return lpage_[slot_index(m)].inhibit[l == Level::L1G]; }
  bool inhibited(const Memslot& m, Gfn g, Level l) const { return lpage_[slot_index(m)].inhibit[l == Level::L1G].at(g); }
  void clear_inhibit(const Memslot& m, Gfn s, Gfn e);  // the blocks of [s, e) lose their bits
  IntervalMap<PageData> private_data_;
  IntervalMap<uint64_t> shared_data_;
  // Per-VM THP shared memory: gfns whose 2M host block had its PMD split by a partial
  // MADV_DONTNEED, so the host maps them 4K until the whole block is discarded.
  IntervalMap<bool> thp_pmd_split_;
  std::function<void()> drop_hook_;
  // What the running top-level op holds while it may drop mmu_lock (R1, R2): guest_memfd's
  // invalidate lock (in-place conversion, punch hole) and its mmu invalidation range
  // (kvm_mmu_invalidate_range_add keeps one interval, min start to max end).
  struct InFlight {
    const GmemFile* locked = nullptr;
    std::optional<GfnRange> invalidating;
    // A pass of the op has already changed state: vCPU 1 no longer runs at a drop point, since
    // its sub-step is checked against the state the op started from (sim rule, SEMANTICS.md).
    bool pass_done = false;
  } in_flight_;
  std::optional<GfnRange> leaked_invalidation_;
  int apply_depth_ = 0;          // > 0 inside apply; 2 for a held op run at a drop point
  bool drop_hook_ran_ = false;   // this top-level op already dropped mmu_lock with the hook
  Op running_op_;                // the top-level op, for the interleaving notes
  std::vector<GfnRange> backing_spans_;  // collect()'s per-slot scratch, kept to avoid a malloc per step
  bool first_observation_ = true;
  bool set_up_ = false;
};

}  // namespace tdxhp::sim
