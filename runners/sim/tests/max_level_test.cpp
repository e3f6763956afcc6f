// One test per max-mapping-level rule of a private fault (SEMANTICS.md "Max mapping level").
#include <gtest/gtest.h>

#include "runners/sim/tests/sim_test_util.h"

namespace tdxhp::simtest {
namespace {

constexpr Gfn kBase = 0x100000;

Config td() {
  Config c;
  c.slots = {Memslot{0, kBase, 0x1000, 0, 0}};
  c.backing = BackingKind::Hugetlb2M;
  return c;
}

int level_after_access(const Config& c, Gfn g, const std::vector<std::string>& mutants = {}) {
  return private_level(run({c, {Access{g, false, 0}}}, mutants), g);
}

TEST(MaxLevel, TwoMWhenEverythingAllows) { EXPECT_EQ(level_after_access(td(), kBase + 3), 1); }  // L4526

TEST(MaxLevel, FourKWhenTdxHugePageIsOff) {  // L4448-4452
  Config c = td();
  c.tdx_huge_page = false;
  EXPECT_EQ(level_after_access(c, kBase), 0);
}

TEST(MaxLevel, FourKWithoutBit51) {  // L4401-4403, L4463
  Config c = td();
  c.features.enhanced_demote_interruptibility = false;
  EXPECT_EQ(level_after_access(c, kBase), 0);
}

TEST(MaxLevel, FourKAtSlotEdge) {  // L4437: the 2M block must lie inside the slot
  Config c = td();
  c.slots[0].npages = 0x1100;
  EXPECT_EQ(level_after_access(c, kBase + 0x1080), 0);
}

TEST(MaxLevel, FourKWhenGmemOffsetMisaligned) {  // L4437: gfn and gmem index equally aligned
  Config c = td();
  c.slots[0].gmem_offset = 1;
  EXPECT_EQ(level_after_access(c, kBase + 0x200), 0);
}

TEST(MaxLevel, HvaMisalignmentDoesNotMatter) {  // L4526-4527 (MUT-HVA-ALIGN breaks it)
  Config c = td();
  c.slots[0].hva_offset = 1;
  EXPECT_EQ(level_after_access(c, kBase), 1);
  EXPECT_EQ(level_after_access(c, kBase, {"MUT-HVA-ALIGN"}), 0);
}

TEST(MaxLevel, FourKOverMixedAttributes) {  // L4436
  SimRun r = run({td(), {Convert{{kBase + 7, 1}, Attr::Shared}, Access{kBase, false, 0}}});
  EXPECT_EQ(private_level(r, kBase), 0);
}

TEST(MaxLevel, FourKAfterGuestInhibit) {  // L2238, L2284-2295
  SimRun r = run({td(), {Accept{kBase + 1, Level::L4K}, Access{kBase + 2, false, 0}}});
  EXPECT_EQ(private_level(r, kBase + 2), 0);
}

TEST(MaxLevel, NoPromotionOverBuildTimePageTable) {  // seed 000, L1342
  Config c = td();
  c.build_pages = {{kBase, 1}};
  const std::vector<Op> ops{Convert{{kBase, 1}, Attr::Shared}, Convert{{kBase, 1}, Attr::Private},
                            Accept{kBase, Level::L2M}, Access{kBase, false, 0}};
  SimRun r = run({c, ops});
  // The 2M entry is still a page table: the module answers the 2M accept itself (case 3).
  EXPECT_EQ(r.outcomes[2].tdx_status, tdx::kPageSizeMismatch | 1);
  EXPECT_EQ(private_level(r, kBase), 0);  // the guest's fault maps 4K
  // MUT-PROMOTE: KVM zaps the 4K leaves and AUGs 2M over the page table; the module refuses
  // (tdh_mem_page_aug: the 2M entry is NL_MAPPED, not FREE) and the TD dies.
  SimRun promo = run({c, ops}, {"MUT-PROMOTE"});
  EXPECT_TRUE(promo.bug_on);
  EXPECT_NE(promo.events.find("TDH.MEM.PAGE.AUG gfn 0x100000 2M x512 -> TDX_EPT_ENTRY_STATE_INCORRECT|RCX"), std::string::npos)
      << promo.events;
  EXPECT_NE(private_level(promo, kBase), 1);
}

TEST(MaxLevel, FourKFolioLimitsUnderFolioContract) {  // L678, L4636
  Config c = td();
  c.backing = BackingKind::Page4K;
  EXPECT_EQ(level_after_access(c, kBase), 0);
}

TEST(MaxLevel, NeverAboveTwoMAsShipped) {  // L4454: 1G folio, 2M leaf
  Config c = td();
  c.backing = BackingKind::Hugetlb1G;
  c.slots[0].npages = 0x40000;
  EXPECT_EQ(level_after_access(c, kBase), 1);
  c.max_private_level = Level::L1G;  // the what-if knob
  EXPECT_EQ(level_after_access(c, kBase), 2);
}

TEST(MaxLevel, BuildPagesAreFourK) {  // L4348-4351, L4401
  Config c = td();
  c.build_pages = {{kBase + 0x200, 4}};
  SimRun r = run({c, {}});
  EXPECT_EQ(private_level(r, kBase + 0x200), 0);
  EXPECT_EQ(private_level(r, kBase + 0x203), 0);
}

// SEMANTICS.md "Memslots": deleting a slot zaps its leaves and drops its GUEST_INHIBIT; the
// mirror page table under a 2M region stays, so the re-added slot still maps it 4K.
TEST(Memslot, DeleteZapsLeavesKeepsPageTablesAddBackRefaults) {
  Config c = td();
  SimRun r = run({c, {Access{kBase, false, 0}, Accept{kBase + 5, Level::L4K}, DeleteSlot{0}, Access{kBase, false, 0},
                      AddSlot{0}, AddSlot{0}, Accept{kBase, Level::L2M}, Access{kBase + 5, false, 0}}});
  EXPECT_EQ(r.outcomes[2].err, 0);
  EXPECT_EQ(r.outcomes[3].err, -EFAULT);  // no slot: a memory-fault exit
  EXPECT_EQ(r.outcomes[4].err, 0);
  EXPECT_EQ(r.outcomes[5].err, -EEXIST);
  EXPECT_EQ(r.outcomes[6].tdx_status, tdx::kPageSizeMismatch | 1);  // the page table outlived the slot
  EXPECT_TRUE(r.outcomes[7].ve);  // refaulted PENDING
  EXPECT_EQ(private_level(r, kBase + 5), 0);
  EXPECT_EQ(r.observations[3].internals->guest_inhibit_blocks, 0u);  // the slot's lpage_info went with it
  EXPECT_GT(r.observations[2].internals->guest_inhibit_blocks, 0u);
}

TEST(Memslot, DeletingAMissingSlotIsEinval) {
  SimRun r = run({td(), {DeleteSlot{7}, DeleteSlot{0}, DeleteSlot{0}, AddSlot{7}}});
  EXPECT_EQ(r.outcomes[0].err, -EINVAL);
  EXPECT_EQ(r.outcomes[1].err, 0);
  EXPECT_EQ(r.outcomes[2].err, -EINVAL);
  EXPECT_EQ(r.outcomes[3].err, -EINVAL);
}

}  // namespace
}  // namespace tdxhp::simtest
