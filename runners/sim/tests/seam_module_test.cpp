// The TDX module's state machine, one row per (SEAMCALL, entry state, level, epoch, op state):
// the status the real handler returns and the entry state it leaves, each row citing the
// module's file. The sim's SeamModule is held to every row; a refused call must change nothing.
//
// intel/tdx-module, src/vmm_dispatcher/api_calls/: tdh_mem_range_block.c, tdh_mem_track.c,
// tdh_mem_page_demote.c, tdh_mem_page_remove.c, tdh_mem_page_aug.c, tdh_mem_page_add.c,
// tdh_mem_sept_add.c, tdh_phymem_page_wbinvd.c [1.5.01; DEMOTE/REMOVE also 1.5.34];
// tdh_phymem_pamt_add.c, tdh_phymem_pamt_remove.c [2.0.04]; allowed states from
// include/auto_gen/sept_state_lookup.c and op_state_lookup.c [1.5.01]; is_tlb_tracked() in
// src/common/helpers/helpers.h [1.5.01]; check_and_lock_free_range_hpa() and
// non_shared_hpa_metadata_check_and_lock() in helpers.c, pamt_is_2mb_range_free() in
// pamt_manager.c [2.0.12].
#include <gtest/gtest.h>

#include <functional>
#include <optional>
#include <string>

#include "domain/describe.h"
#include "runners/sim/seam_module.h"

namespace tdxhp::sim {
namespace {

constexpr Gfn kB = 0x100000;          // 1G-aligned gfn block under test
constexpr Pfn kG = 0x40000;           // its guest pages (2M-aligned)
constexpr Pfn kS1 = 0x1000000, kS2 = 0x1000001, kSNew = 0x1000002;  // S-EPT pages
constexpr uint64_t k2M = 512;
using L = Level;
using S = SeptState;

// Every setup call must succeed, or the row would test another state than it says.
void ok(uint64_t st, const char* what) {
  if (st != tdx::kSuccess) throw std::runtime_error(std::string("setup ") + what + ": " + tdx_status_name(st));
}

struct Td {
  SeamModule m;
  explicit Td(bool dpamt) {
    m.configure(dpamt, false);
    if (dpamt) ok(m.pamt_add(align_down(kS1, L::L2M)), "PAMT.ADD for the S-EPT pages");
    ok(m.sept_add(kB, L::L1G, kS1), "SEPT.ADD 1G");  // the 2M-level table under the 1G entry
  }
  Td& table_2m() { ok(m.sept_add(kB, L::L2M, kS2), "SEPT.ADD 2M"); return *this; }
  Td& aug_2m() { ok(m.page_aug(kB, L::L2M, k2M, kG), "AUG 2M"); return *this; }
  Td& aug_4k() {
    if (m.dynamic_pamt() && !m.has_pamt_pair(kG)) ok(m.pamt_add(kG), "PAMT.ADD guest range");
    ok(m.page_aug(kB, L::L4K, 1, kG), "AUG 4K");
    return *this;
  }
  Td& accept(Level a) { m.accept(kB, a); return *this; }
  Td& block(Level l) { ok(m.range_block(kB, l, l == L::L4K ? 1 : k2M), "BLOCK"); return *this; }
  Td& track() { ok(m.track(), "TRACK"); return *this; }
  Td& kick() { m.vcpus_kicked(); return *this; }
  Td& runnable() { m.finalize(); return *this; }
};

struct Row {
  const char* call;
  const char* state;  // the entry the call meets, in the module's words
  bool dpamt;
  std::function<void(Td&)> setup;
  std::function<uint64_t(SeamModule&)> run;
  uint64_t status;
  std::optional<S> after;  // state of the leaf at kB afterwards (nullopt: no leaf)
  Level after_level;
  const char* source;
};

std::string row_name(const Row& r) { return std::string(r.call) + " on " + r.state; }

const std::vector<Row>& rows() {
  const uint64_t rcx = tdx::kOperandIdRcx, r8 = tdx::kOperandIdR8;
  auto block = [](Level l) { return [l](SeamModule& m) { return m.range_block(kB, l, l == L::L4K ? 1 : k2M); }; };
  auto demote = [](SeamModule& m) { return m.page_demote(kB, L::L2M, kSNew); };
  auto remove = [](Level l) { return [l](SeamModule& m) { return m.page_remove(kB, l, l == L::L4K ? 1 : k2M); }; };
  auto aug = [](Level l, Pfn p) { return [l, p](SeamModule& m) { return m.page_aug(kB, l, pages_in(l), p); }; };
  static const std::vector<Row> v = {
      // ---- TDH.MEM.RANGE.BLOCK (tdh_mem_range_block.c; allowed NL_MAPPED, MAPPED, PENDING, ...)
      {"BLOCK 2M", "MAPPED 2M leaf", false, [](Td& t) { t.runnable().aug_2m().accept(L::L2M); }, block(L::L2M),
       tdx::kSuccess, S::Blocked, L::L2M, "MAPPED -> BLOCKED, BEPOCH := TD_EPOCH"},
      {"BLOCK 2M", "PENDING 2M leaf", false, [](Td& t) { t.runnable().aug_2m(); }, block(L::L2M), tdx::kSuccess,
       S::PendingBlocked, L::L2M, "PENDING -> PENDING_BLOCKED"},
      {"BLOCK 2M", "BLOCKED 2M leaf", false, [](Td& t) { t.runnable().aug_2m().accept(L::L2M).block(L::L2M); },
       block(L::L2M), tdx::kGpaRangeAlreadyBlocked | rcx, S::Blocked, L::L2M, "already blocked: non-error status"},
      {"BLOCK 2M", "FREE 2M entry", false, [](Td& t) { t.runnable(); }, block(L::L2M),
       tdx::kEptEntryStateIncorrect | rcx, std::nullopt, L::L4K, "FREE is not in BLOCK's allowed states"},
      {"BLOCK 4K", "4K gfn inside a 2M leaf", false, [](Td& t) { t.runnable().aug_2m(); }, block(L::L4K),
       tdx::kEptWalkFailed | rcx, S::Pending, L::L2M, "walk to 4K stops at the 2M leaf"},
      // ---- TDH.MEM.TRACK (tdh_mem_track.c)
      {"TRACK", "vCPUs still in the previous epoch", false, [](Td& t) { t.runnable().track(); },
       [](SeamModule& m) { return m.track(); }, tdx::kPreviousTlbEpochBusy, std::nullopt, L::L4K,
       "refcount of epoch td_epoch-1 > 0: PREVIOUS_TLB_EPOCH_BUSY (not OPERAND_BUSY)"},
      {"TRACK", "vCPUs kicked after the last TRACK", false, [](Td& t) { t.runnable().track().kick(); },
       [](SeamModule& m) { return m.track(); }, tdx::kSuccess, std::nullopt, L::L4K, "td_epoch++"},
      // ---- TDH.MEM.PAGE.DEMOTE (tdh_mem_page_demote.c; allowed MAPPED, BLOCKED, PENDING, PENDING_BLOCKED)
      {"DEMOTE 2M", "MAPPED 2M leaf, RUNNABLE, not blocked", false, [](Td& t) { t.runnable().aug_2m().accept(L::L2M); },
       demote, tdx::kGpaRangeNotBlocked | rcx, S::Mapped, L::L2M, "tracking required once RUNNABLE: must be BLOCKED"},
      {"DEMOTE 2M", "BLOCKED 2M leaf, no TRACK", false, [](Td& t) { t.runnable().aug_2m().accept(L::L2M).block(L::L2M); },
       demote, tdx::kTlbTrackingNotDone | rcx, S::Blocked, L::L2M, "is_tlb_tracked(bepoch): epoch not advanced"},
      {"DEMOTE 2M", "BLOCKED 2M leaf, TRACK without the kick", false,
       [](Td& t) { t.runnable().aug_2m().accept(L::L2M).block(L::L2M).track(); }, demote,
       tdx::kTlbTrackingNotDone | rcx, S::Blocked, L::L2M, "is_tlb_tracked: a vCPU still runs in bepoch"},
      {"DEMOTE 2M", "BLOCKED 2M leaf, tracked", false,
       [](Td& t) { t.runnable().aug_2m().accept(L::L2M).block(L::L2M).track().kick(); }, demote, tdx::kSuccess,
       S::Mapped, L::L4K, "children unblocked, accept state kept (sept_unblock on the template)"},
      {"DEMOTE 2M", "PENDING_BLOCKED 2M leaf, tracked", false,
       [](Td& t) { t.runnable().aug_2m().block(L::L2M).track().kick(); }, demote, tdx::kSuccess, S::Pending, L::L4K,
       "PENDING_BLOCKED children come back PENDING"},
      {"DEMOTE 2M", "NL_BLOCKED 2M entry (block already split)", false,
       [](Td& t) { t.runnable().table_2m().aug_4k().block(L::L2M).track().kick(); }, demote,
       tdx::kEptEntryStateIncorrect | rcx, S::Pending, L::L4K, "a page table is not a demotable leaf"},
      {"DEMOTE 2M", "MAPPED 2M leaf, INITIALIZED", false, [](Td& t) { t.aug_2m().accept(L::L2M); }, demote,
       tdx::kSuccess, S::Mapped, L::L4K, "before finalize neither BLOCK nor TRACK is needed (op_state_lookup.c)"},
      {"DEMOTE 2M", "new S-EPT page already in use", false,
       [](Td& t) { t.runnable().aug_2m().accept(L::L2M).block(L::L2M).track().kick(); },
       [](SeamModule& m) { return m.page_demote(kB, L::L2M, kS1); }, tdx::kPageMetadataIncorrect | r8, S::Blocked,
       L::L2M, "check_and_lock_explicit_4k_private_hpa: the new page must be PT_NDA"},
      {"DEMOTE 4K", "MAPPED 4K leaf", false, [](Td& t) { t.runnable().table_2m().aug_4k().accept(L::L4K); },
       [](SeamModule& m) { return m.page_demote(kB, L::L4K, kSNew); }, tdx::kOperandInvalid | rcx, S::Mapped, L::L4K,
       "verify_page_info_input(LVL_PD, LVL_PDPT)"},
      // ---- TDH.MEM.PAGE.REMOVE (tdh_mem_page_remove.c)
      {"REMOVE 4K", "MAPPED 4K leaf, RUNNABLE, not blocked", false,
       [](Td& t) { t.runnable().table_2m().aug_4k().accept(L::L4K); }, remove(L::L4K),
       tdx::kGpaRangeNotBlocked | rcx, S::Mapped, L::L4K, "must be BLOCKED once RUNNABLE"},
      {"REMOVE 4K", "BLOCKED 4K leaf, no TRACK", false,
       [](Td& t) { t.runnable().table_2m().aug_4k().accept(L::L4K).block(L::L4K); }, remove(L::L4K),
       tdx::kTlbTrackingNotDone | rcx, S::Blocked, L::L4K, "is_tlb_tracked"},
      {"REMOVE 4K", "BLOCKED 4K leaf, tracked", false,
       [](Td& t) { t.runnable().table_2m().aug_4k().accept(L::L4K).block(L::L4K).track().kick(); }, remove(L::L4K),
       tdx::kSuccess, std::nullopt, L::L4K, "entry FREE, page PT_NDA"},
      {"REMOVE 4K", "4K gfn inside a BLOCKED 2M leaf", false,
       [](Td& t) { t.runnable().aug_2m().block(L::L2M).track().kick(); }, remove(L::L4K), tdx::kEptWalkFailed | rcx,
       S::PendingBlocked, L::L2M, "walk to 4K stops at the 2M leaf"},
      {"REMOVE 2M", "NL_MAPPED 2M entry", false, [](Td& t) { t.runnable().table_2m().aug_4k(); }, remove(L::L2M),
       tdx::kEptEntryStateIncorrect | rcx, S::Pending, L::L4K, "a page table is not a leaf"},
      {"REMOVE 2M", "FREE 2M entry", false, [](Td& t) { t.runnable(); }, remove(L::L2M),
       tdx::kEptEntryStateIncorrect | rcx, std::nullopt, L::L4K, "FREE is not in REMOVE's allowed states"},
      // ---- TDH.MEM.PAGE.AUG (tdh_mem_page_aug.c; allowed FREE, REMOVED)
      {"AUG 2M", "FREE 2M entry", false, [](Td& t) { t.runnable(); }, aug(L::L2M, kG), tdx::kSuccess, S::Pending,
       L::L2M, "leaf PENDING, no zeroing"},
      {"AUG 2M", "NL_MAPPED 2M entry (a page table)", false, [](Td& t) { t.runnable().table_2m(); }, aug(L::L2M, kG),
       tdx::kEptEntryStateIncorrect | rcx, std::nullopt, L::L4K, "no 2M leaf over a page table (no promotion)"},
      {"AUG 4K", "no 4K page table", false, [](Td& t) { t.runnable(); }, aug(L::L4K, kG), tdx::kEptWalkFailed | rcx,
       std::nullopt, L::L4K, "walk to 4K needs the 2M entry to be a page table"},
      {"AUG 4K", "PENDING 4K leaf", false, [](Td& t) { t.runnable().table_2m().aug_4k(); }, aug(L::L4K, kG + 1),
       tdx::kEptEntryStateIncorrect | rcx, S::Pending, L::L4K, "no AUG over a leaf"},
      {"AUG 1G", "FREE 1G entry", false, [](Td& t) { t.runnable(); }, aug(L::L1G, kG), tdx::kOperandInvalid | rcx,
       std::nullopt, L::L4K, "verify_page_info_input(LVL_PT, LVL_PD): 4K or 2M only"},
      {"AUG 2M", "FREE 2M entry, pfn not 2M-aligned", false, [](Td& t) { t.runnable(); }, aug(L::L2M, kG + 1),
       tdx::kOperandInvalid | r8, std::nullopt, L::L4K, "check_and_lock_free_range_hpa: HPA aligned to the size"},
      {"AUG 2M", "FREE 2M entry, a 4K page of the range in use", false,
       [](Td& t) { t.runnable().table_2m().aug_4k(); }, [](SeamModule& m) { return m.page_aug(kB + k2M, L::L2M, k2M, kG); },
       tdx::kPageMetadataIncorrect | r8, S::Pending, L::L4K, "pamt_is_2mb_range_free: all 512 pages PT_NDA"},
      {"AUG 4K", "DPAMT, no PAMT page pair for the range", true, [](Td& t) { t.runnable().table_2m(); },
       aug(L::L4K, kG), tdx::kMissingPamtPagePair | r8, std::nullopt, L::L4K,
       "non_shared_hpa_metadata_check_and_lock: MISSING_PAMT_PAGE_PAIR"},
      {"AUG 2M", "DPAMT, the range has a PAMT page pair", true,
       [](Td& t) { t.runnable(); ok(t.m.pamt_add(kG), "PAMT.ADD"); }, aug(L::L2M, kG),
       tdx::kPageMetadataIncorrect | r8, std::nullopt, L::L4K, "a 2M page needs its 2M PAMT entry PT_NDA"},
      // ---- TDH.MEM.PAGE.ADD (tdh_mem_page_add.c) and TDH.MEM.SEPT.ADD (tdh_mem_sept_add.c)
      {"ADD 4K", "FREE 4K entry, INITIALIZED", false, [](Td& t) { t.table_2m(); },
       [](SeamModule& m) { return m.page_add(kB, kG); }, tdx::kSuccess, S::Mapped, L::L4K, "MAPPED with the source's content"},
      {"ADD 4K", "FREE 4K entry, RUNNABLE", false, [](Td& t) { t.table_2m().runnable(); },
       [](SeamModule& m) { return m.page_add(kB, kG); }, tdx::kOpStateIncorrect, std::nullopt, L::L4K,
       "op_state_lookup.c: ADD only in INITIALIZED"},
      {"SEPT.ADD 2M", "PENDING 2M leaf", false, [](Td& t) { t.runnable().aug_2m(); },
       [](SeamModule& m) { return m.sept_add(kB, L::L2M, kSNew); }, tdx::kEptEntryStateIncorrect | rcx, S::Pending,
       L::L2M, "allowed FREE (or NL_MAPPED with allow_existing)"},
      {"SEPT.ADD 2M", "no 2M-level table under the 1G entry", false, [](Td& t) { t.runnable(); },
       [](SeamModule& m) { return m.sept_add(kB + 512 * k2M, L::L2M, kSNew); }, tdx::kEptWalkFailed | rcx, std::nullopt,
       L::L4K, "walk to the parent entry fails"},
      // ---- TDH.PHYMEM.PAGE.WBINVD, PAMT.ADD / PAMT.REMOVE (2.0.04)
      {"WBINVD", "page still mapped", false, [](Td& t) { t.runnable().aug_2m(); },
       [](SeamModule& m) { return m.page_wbinvd(kG, 1); }, tdx::kPageMetadataIncorrect | rcx, S::Pending, L::L2M,
       "only a page the TD no longer holds (PT_NDA)"},
      {"PAMT.ADD", "range that already has a pair", true, [](Td& t) { ok(t.m.pamt_add(kG), "PAMT.ADD"); },
       [](SeamModule& m) { return m.pamt_add(kG); }, tdx::kHpaRangeNotFree | rcx, std::nullopt, L::L4K,
       "2M PAMT node not PT_NDA: HPA_RANGE_NOT_FREE"},
      {"PAMT.ADD", "range mapped as a 2M page", true, [](Td& t) { t.runnable().aug_2m(); },
       [](SeamModule& m) { return m.pamt_add(kG); }, tdx::kHpaRangeNotFree | rcx, S::Pending, L::L2M,
       "2M PAMT node is PT_REG"},
      {"PAMT.REMOVE", "range without a pair", true, [](Td&) {}, [](SeamModule& m) { return m.pamt_remove(kG); },
       tdx::kNoPamtPagePair | rcx, std::nullopt, L::L4K, "node must be PT_PAMT"},
      {"PAMT.REMOVE", "range with a 4K page still in use", true, [](Td& t) { t.runnable().table_2m().aug_4k(); },
       [](SeamModule& m) { return m.pamt_remove(kG); }, tdx::kPamtPageNotEmpty, S::Pending, L::L4K,
       "all 512 4K entries must be PT_NDA"},
      {"PAMT.ADD", "Dynamic PAMT off", false, [](Td&) {}, [](SeamModule& m) { return m.pamt_add(kG); },
       tdx::kOperandInvalid | tdx::kOperandIdRax, std::nullopt, L::L4K, "DPAMT not enabled"},
  };
  return v;
}

TEST(SeamModuleStateMachine, EveryRowGivesTheModulesStatusAndState) {
  for (const Row& r : rows()) {
    SCOPED_TRACE(row_name(r) + " (" + r.source + ")");
    Td t(r.dpamt);
    ASSERT_NO_THROW(r.setup(t));
    const IntervalMap<SeptLeaf> before = t.m.leaves();
    const uint64_t before_epoch = t.m.td_epoch();
    EXPECT_EQ(tdx_status_name(r.run(t.m)), tdx_status_name(r.status));
    const SeptLeaf* l = t.m.leaf(kB);
    EXPECT_EQ(std::string(l ? name(l->state) : "no leaf"), std::string(r.after ? name(*r.after) : "no leaf"));
    if (l && r.after) {
      EXPECT_EQ(std::string(name(l->level)), std::string(name(r.after_level)));
    }
    if (r.status != tdx::kSuccess) {  // every check happens before the commit
      EXPECT_TRUE(t.m.leaves() == before) << "a refused call changed the S-EPT";
      EXPECT_EQ(t.m.td_epoch(), before_epoch);
    }
  }
}

// ACCEPT reads the same S-EPT (check_tdaccept_failure): the guest's view follows each host change.
TEST(SeamModuleStateMachine, AcceptReadsTheModulesEntries) {
  Td t(false);
  t.runnable().aug_2m();
  EXPECT_EQ(t.m.accept_without_exit(kB + 5, L::L4K), std::nullopt);  // PENDING 2M: exit (case 1.2)
  EXPECT_EQ(t.m.accept_without_exit(kB, L::L2M), std::optional<uint64_t>(tdx::kSuccess));
  t.accept(L::L2M);
  EXPECT_EQ(t.m.accept_without_exit(kB + 5, L::L4K), tdx::with_level(tdx::kPageAlreadyAccepted, L::L2M));
  t.block(L::L2M);
  EXPECT_EQ(t.m.accept_without_exit(kB, L::L2M), std::nullopt);  // BLOCKED: the walk stops, exit
  t.track().kick();
  ok(t.m.page_demote(kB, L::L2M, kSNew), "DEMOTE");
  EXPECT_EQ(t.m.accept_without_exit(kB + 5, L::L4K), tdx::with_level(tdx::kPageAlreadyAccepted, L::L4K));
  EXPECT_EQ(t.m.accept_without_exit(kB, L::L2M), tdx::with_level(tdx::kPageSizeMismatch, L::L2M));  // case 3
}

}  // namespace
}  // namespace tdxhp::sim
