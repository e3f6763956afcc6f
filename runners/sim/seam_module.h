// The TDX module itself, as the SEAMCALL handlers of intel/tdx-module see the TD: S-EPT entry
// states per level, the TD's op state, the TLB epoch, and the PAMT books (page ownership and,
// with Dynamic PAMT, the 4K PAMT page pairs). Each handler checks the real preconditions and
// returns the real status with the operand id or level the module puts in the low bits; a
// refused call changes nothing. KVM's side (tdx.c: retries, TDX_BUG_ON, refcounts) is
// TdxModule; the guest's ACCEPT and data accesses read this S-EPT too.
//
// Everything is kept as gfn / pfn intervals: a run of npages equal leaves stands for the
// npages / pages_in(level) calls KVM issues in gfn order. A refused run commits nothing (the
// real calls before the refused one would have): every refusal ends in KVM_BUG_ON, after which
// the TD runs nothing that could tell the two apart.
//
// Sources (release in brackets, file under src/ unless said): sept_state_lookup.c and
// op_state_lookup.c (include/auto_gen) [1.5.01]; vmm_dispatcher/api_calls/tdh_mem_sept_add.c,
// tdh_mem_page_add.c, tdh_mem_page_aug.c, tdh_mem_range_block.c, tdh_mem_track.c,
// tdh_mem_page_demote.c, tdh_mem_page_remove.c, tdh_phymem_page_wbinvd.c [1.5.01, 1.5.34];
// tdh_phymem_pamt_add.c, tdh_phymem_pamt_remove.c, common/helpers/helpers.c,
// common/memory_handlers/pamt_manager.c [2.0.04, 2.0.12]; is_tlb_tracked() in
// common/helpers/helpers.h [1.5.01]. ../shared/reviews/tdx-module-audit.md has the walk-through.
#pragma once

#include <cstdint>
#include <optional>

#include "domain/interval_map.h"
#include "domain/types.h"

namespace tdxhp::sim {

// S-EPT entry states (sept_state_lookup.c). BLOCKEDW, REMOVED and the EXPORTED_* states belong
// to write-blocking and live migration, which KVM's TDX code never starts: nothing here
// reaches them, and each handler's table lists them only where the module allows them.
enum class SeptState : uint8_t { Free, NlMapped, NlBlocked, Pending, Mapped, Blocked, PendingBlocked, BlockedW, Removed };
const char* name(SeptState s);

// TDCS.OP_STATE: ADD only before finalize; tracking is required only once RUNNABLE.
enum class OpState : uint8_t { Initialized, Runnable };

struct SeptLeaf {
  Level level = Level::L4K;
  SeptState state = SeptState::Pending;
  uint64_t delta = 0;   // pfn - gfn
  uint64_t bepoch = 0;  // TD epoch recorded by BLOCK
  bool operator==(const SeptLeaf&) const = default;
};

// A non-leaf entry (NL_MAPPED / NL_BLOCKED) at 2M or 1G, holding the S-EPT page of the level below.
struct SeptTable {
  SeptState state = SeptState::NlMapped;
  Pfn page = 0;
  uint64_t bepoch = 0;
  bool operator==(const SeptTable&) const = default;
};

class SeamModule {
 public:
  // At TD creation. `aug_1g`: the what-if config max_private_level = 1G stands for a module that
  // AUGs 1G pages; no release read does (verify_page_info_input(LVL_PT, LVL_PD) in
  // tdh_mem_page_aug.c), so with the shipped 2M cap a 1G AUG is TDX_OPERAND_INVALID.
  void configure(bool dynamic_pamt, bool aug_1g) {
    dpamt_ = dynamic_pamt;
    aug_1g_ = aug_1g;
  }

  // ---- host SEAMCALLs
  uint64_t sept_add(Gfn gfn, Level entry_level, Pfn page);  // a table of entry_level - 1 under gfn's entry
  uint64_t page_add(Gfn gfn, Pfn pfn);                       // build time, 4K, MAPPED
  uint64_t page_aug(Gfn gfn, Level level, uint64_t npages, Pfn pfn);  // PENDING leaves
  uint64_t range_block(Gfn gfn, Level level, uint64_t npages);
  uint64_t track();
  uint64_t page_demote(Gfn gfn, Level level, Pfn new_sept_page);
  uint64_t page_remove(Gfn gfn, Level level, uint64_t npages);
  uint64_t page_wbinvd(Pfn pfn, uint64_t npages);
  uint64_t pamt_add(Pfn pfn_2m);
  uint64_t pamt_remove(Pfn pfn_2m);
  void finalize() { op_state_ = OpState::Runnable; }  // TDH.MR.FINALIZE
  // KVM's kick after TRACK (KVM_REQ_OUTSIDE_GUEST_MODE): every vCPU left the TD, so none is
  // counted in an old epoch; they come back in the current one.
  void vcpus_kicked() { vcpu_epoch_ = td_epoch_; }
  // The HKID is gone (TD_TEARDOWN): every page is reclaimed (PT_NDA); the page pairs wait
  // for the kernel's PAMT.REMOVE.
  void teardown();

  // ---- guest TDCALLs
  // TDG.MEM.PAGE.ACCEPT at level a (4K/2M, aligned: the caller checked verify_page_info_input):
  // the status when no EPT violation exit happens, or nullopt for the exit
  // (tdg_mem_page_accept.c, check_tdaccept_failure(): same in 1.5.01 and 2.0.04).
  std::optional<uint64_t> accept_without_exit(Gfn g, Level a) const;
  void accept(Gfn g, Level a);  // a PENDING leaf of a becomes MAPPED (init_sept_4k_page zeroes it)
  const SeptLeaf* leaf(Gfn g) const { return leaves_.at(g); }
  const IntervalMap<SeptLeaf>& leaves() const { return leaves_; }
  bool has_table(Gfn g, Level entry_level) const { return tables(entry_level).at(g) != nullptr; }
  uint64_t td_epoch() const { return td_epoch_; }
  bool dynamic_pamt() const { return dpamt_; }
  bool has_pamt_pair(Pfn pfn_2m) const { return pairs_.at(pfn_2m) != nullptr; }

 private:
  enum class PageUse : uint8_t { Guest, Sept };  // PAMT PT_REG (guest page) / PT_EPT
  IntervalMap<SeptTable>& tables(Level entry_level) { return entry_level == Level::L2M ? tables_2m_ : tables_1g_; }
  const IntervalMap<SeptTable>& tables(Level entry_level) const {
    return entry_level == Level::L2M ? tables_2m_ : tables_1g_;
  }
  // secure_ept_walk to `level` for every gfn of [s, e): the entries above must be present page
  // tables (NL_MAPPED); else TDX_EPT_WALK_FAILED.
  bool walk_reaches(Gfn s, Gfn e, Level level) const;
  // is_tlb_tracked(): TRACK has moved the epoch past bepoch and no vCPU still runs in it.
  bool tlb_tracked(uint64_t bepoch) const {
    return bepoch + 1 < td_epoch_ || (bepoch + 1 == td_epoch_ && vcpu_epoch_ != bepoch);
  }
  bool tracking_required() const { return op_state_ == OpState::Runnable; }  // op_state_lookup.c
  // A 4K page the TD is given (guest page at 4K or S-EPT page): PAMT entry PT_NDA and, with
  // Dynamic PAMT, its 2M range backed by a page pair (non_shared_hpa_metadata_check_and_lock).
  uint64_t check_free_4k(Pfn p, uint64_t npages, uint64_t operand) const;
  // First gfn of [s, e) whose entry is not a `level` leaf the host may BLOCK / DEMOTE / REMOVE,
  // with its status (EPT_WALK_FAILED when a larger leaf stops the walk, EPT_ENTRY_STATE_INCORRECT
  // otherwise).
  std::optional<std::pair<Gfn, uint64_t>> first_bad_leaf(Gfn s, Gfn e, Level level) const;
  // REMOVE / DEMOTE of a blocked leaf once RUNNABLE: first gfn not BLOCKED, or not tracked.
  std::optional<std::pair<Gfn, uint64_t>> first_untracked(Gfn s, Gfn e) const;

  bool dpamt_ = false;
  bool aug_1g_ = false;
  OpState op_state_ = OpState::Initialized;
  uint64_t td_epoch_ = 1;    // TDCS epoch_tracking.td_epoch
  uint64_t vcpu_epoch_ = 1;  // the epoch the running vCPUs entered in (their refcount)
  IntervalMap<SeptLeaf> leaves_;                // gfn -> leaf entry at its level
  IntervalMap<SeptTable> tables_2m_, tables_1g_;  // gfn (whole entry range) -> non-leaf entry
  IntervalMap<PageUse> pages_;                  // pfn -> PAMT page type other than PT_NDA
  IntervalMap<bool> pairs_;                     // pfn (whole 2M range) -> DPAMT page pair installed
};

}  // namespace tdxhp::sim
