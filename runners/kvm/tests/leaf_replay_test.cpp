// LeafReplay: kvmmmu records in, leaf windows and per-level counts out (the counts are what
// the binary stats pages_4k/2m/1g are checked against).
#include "runners/kvm/observers/leaf_replay.h"

#include <gtest/gtest.h>

namespace tdxhp::kvm {
namespace {

constexpr uint64_t kBase = 0x100000;  // scenario gfn 0 at 4 GiB
constexpr uint64_t kPresentLeaf = spte::kMmuPresent | 0x7;

uint64_t leaf_spte(Pfn pfn, int level) {
  return kPresentLeaf | (pfn << 12) | (level > 1 ? spte::kPageSize : 0);
}
SpteEvent changed(uint64_t kgfn, int level, uint64_t old_s, uint64_t new_s) {
  return SpteEvent{SpteEvent::SpteChanged, kgfn, level, old_s, new_s, 0, 0};
}
bool all_private(Gfn) { return true; }

TEST(LeafReplay, HugeLeafSplitThenPartialZapGivesPreciseWindows) {
  LeafReplay r(kBase, 0);
  const uint64_t g = kBase + 0x200;  // scenario gfn 0x200, 2M aligned
  const uint64_t table = spte::kMmuPresent | (0x999ULL << 12);  // non-leaf: no PageSize bit
  r.apply(changed(g, 2, 0, leaf_spte(0x40000, 2)), all_private);
  EXPECT_EQ(r.leaf_counts()[1], 1);
  r.apply(changed(g, 2, leaf_spte(0x40000, 2), table), all_private);  // split links a table
  r.apply(SpteEvent{SpteEvent::SplitHuge, g, 2, leaf_spte(0x40000, 2), 0, 0, 0}, all_private);
  EXPECT_EQ(r.leaf_counts()[1], 0);
  EXPECT_EQ(r.leaf_counts()[0], 512);
  r.apply(changed(g + 5, 1, leaf_spte(0x40005, 1), 0x5a0), all_private);  // zap one 4K
  EXPECT_EQ(r.leaf_counts()[0], 511);
  EXPECT_TRUE(r.anomalies().empty());

  auto w = r.windows({{0x200, 512}});
  ASSERT_EQ(w.size(), 2u);
  ASSERT_TRUE(w[0].is_private);
  ASSERT_EQ(w[0].runs.size(), 2u) << "4K runs on both sides of the zapped gfn";
  EXPECT_EQ(w[0].runs[0], (LeafRun{{0x200, 5}, Level::L4K, 0x40000}));
  EXPECT_EQ(w[0].runs[1], (LeafRun{{0x206, 506}, Level::L4K, 0x40006}));
  EXPECT_TRUE(w[1].runs.empty()) << "nothing in the shared root";
  auto dirty = r.take_dirty();
  ASSERT_EQ(dirty.size(), 1u);
  EXPECT_EQ(dirty[0], (GfnRange{0x200, 512}));
  EXPECT_TRUE(r.take_dirty().empty());
}

// Found on 6.12 (fixture INV-ATTR-shared-hugetlb-one-private-page): a fault that maps a 2M leaf
// where a page table held 4K leaves traces the new leaf first, then each child's removal
// (handle_changed_spte, then handle_removed_pt).
TEST(LeafReplay, HugeLeafReplacingATableDropsItsChildrenBeforeTheirRecords) {
  LeafReplay r(kBase, 0);
  const uint64_t g = kBase + 0x200;
  const uint64_t table = spte::kMmuPresent | (0x999ULL << 12);
  auto shared = [](Gfn) { return false; };
  r.apply(changed(g, 2, 0, table), shared);  // a table links in: not a leaf
  r.apply(changed(g + 1, 1, 0, leaf_spte(0x71, 1)), shared);
  r.apply(changed(g + 8, 1, 0, leaf_spte(0x78, 1)), shared);
  EXPECT_EQ(r.leaf_counts()[0], 2);
  r.take_dirty();
  r.apply(changed(g, 2, table, leaf_spte(0x800, 2)), shared);
  EXPECT_EQ(r.leaf_counts()[0], 0);
  EXPECT_EQ(r.leaf_counts()[1], 1);
  r.apply(changed(g + 1, 1, leaf_spte(0x71, 1), 0x5a0), shared);  // FROZEN_SPTE
  r.apply(changed(g + 8, 1, leaf_spte(0x78, 1), 0x5a0), shared);
  EXPECT_TRUE(r.anomalies().empty()) << r.anomalies().front();
  EXPECT_EQ(r.leaf_counts()[0], 0);
  auto w = r.windows({{0x200, 512}});
  ASSERT_EQ(w[1].runs.size(), 1u);
  EXPECT_EQ(w[1].runs[0], (LeafRun{{0x200, 512}, Level::L2M, 0x800}));
  // The 2M leaf's own zap afterwards is an ordinary removal.
  r.apply(changed(g, 2, leaf_spte(0x800, 2), 0x5a0), shared);
  EXPECT_EQ(r.leaf_counts()[1], 0);
  EXPECT_TRUE(r.anomalies().empty());
  // A later 4K leaf there is new again, not a skipped child.
  r.apply(changed(g + 3, 1, 0, leaf_spte(0x73, 1)), shared);
  EXPECT_EQ(r.leaf_counts()[0], 1);
}

TEST(LeafReplay, AttributeChoosesTheRootOfNewLeavesOnOneRootVms) {
  LeafReplay r(kBase, 0);
  auto odd_shared = [](Gfn g) { return g % 2 == 0; };
  r.apply(changed(kBase + 10, 1, 0, leaf_spte(0x10, 1)), odd_shared);
  r.apply(changed(kBase + 11, 1, 0, leaf_spte(0x11, 1)), odd_shared);
  auto w = r.windows({{10, 2}});
  ASSERT_EQ(w[0].runs.size(), 1u);
  EXPECT_EQ(w[0].runs[0], (LeafRun{{10, 1}, Level::L4K, 0x10}));
  ASSERT_EQ(w[1].runs.size(), 1u);
  EXPECT_EQ(w[1].runs[0], (LeafRun{{11, 1}, Level::L4K, 0x11}));
}

TEST(LeafReplay, SharedBitNamesTheDirectRootOfATd) {
  const uint64_t shared_bit = 1ULL << 39;  // gfn bit of GPA bit 51
  LeafReplay r(kBase, shared_bit);
  r.apply(changed((kBase + 3) | shared_bit, 1, 0, leaf_spte(0x77, 1)), all_private);
  auto w = r.windows({{3, 1}});
  EXPECT_TRUE(w[0].runs.empty());
  ASSERT_EQ(w[1].runs.size(), 1u);
  EXPECT_EQ(w[1].runs[0].range.start, 3u);
}

TEST(LeafReplay, UntracedRemovalIsAnAnomalyAndSmmIsIgnored) {
  LeafReplay r(kBase, 0);
  SpteEvent smm = changed(kBase, 1, 0, leaf_spte(1, 1));
  smm.as_id = 1;
  r.apply(smm, all_private);
  EXPECT_EQ(r.leaf_counts()[0], 0);
  r.apply(changed(kBase + 0x400, 2, leaf_spte(0x800, 2), 0), all_private);
  ASSERT_EQ(r.anomalies().size(), 1u);
  EXPECT_NE(r.anomalies()[0].find("did not hold"), std::string::npos) << r.anomalies()[0];
}

TEST(LeafReplay, FailedSplitLeavesTheHugeLeaf) {
  LeafReplay r(kBase, 0);
  r.apply(changed(kBase, 2, 0, leaf_spte(0x200, 2)), all_private);
  r.apply(SpteEvent{SpteEvent::SplitHuge, kBase, 2, leaf_spte(0x200, 2), 0, 0, -12}, all_private);
  EXPECT_EQ(r.leaf_counts()[1], 1);
  EXPECT_EQ(r.leaf_counts()[0], 0);
}

}  // namespace
}  // namespace tdxhp::kvm
