// Per-VM shared host memory (Config::shared_backing) and DiscardShared, i.e.
// madvise(MADV_DONTNEED) on it (SEMANTICS.md "Backing" and "Host ops").
#include <gtest/gtest.h>

#include <cerrno>

#include "runners/sim/tests/sim_test_util.h"

namespace tdxhp::simtest {
namespace {

constexpr Gfn kBase = 0x100000;  // 4 GiB, 1G-aligned

// A per-VM VM whose memory starts shared, so guest touches map the direct root.
Config shared_vm(BackingKind host, uint64_t npages = 0x1000, uint64_t hva_offset = 0) {
  Config c;
  c.slots = {Memslot{0, kBase, npages, 0, hva_offset}};
  c.backing = BackingKind::Page4K;  // gmem (private side) kind; must not matter for shared leaves
  c.shared_backing = host;
  c.initially_private = false;
  return c;
}

int shared_level(const SimRun& r, Gfn g) {
  const LeafAt* l = r.shared_leaves.at(g);
  return l ? static_cast<int>(l->level) : -1;
}

Outcome read(const SimRun& r, size_t op) { return r.outcomes.at(op); }

// ---------------------------------------------------------------- shared_backing levels

TEST(SharedBacking, HostLevelFollowsTheSharedKindNotTheGmemKind) {
  struct Want { BackingKind kind; int level; };
  for (Want w : {Want{BackingKind::Page4K, 0}, Want{BackingKind::Thp2M, 1}, Want{BackingKind::Hugetlb2M, 1},
                 Want{BackingKind::Hugetlb1G, 2}}) {
    SimRun r = run({shared_vm(w.kind, 0x40000), {Access{kBase + 5, false, 0}}});
    EXPECT_EQ(shared_level(r, kBase + 5), w.level) << static_cast<int>(w.kind);
  }
}

TEST(SharedBacking, MisalignedHvaMapsShared4K) {  // the HVA block must be naturally aligned
  for (BackingKind k : {BackingKind::Thp2M, BackingKind::Hugetlb2M, BackingKind::Hugetlb1G}) {
    SimRun r = run({shared_vm(k, 0x40000, 1), {Access{kBase + 5, false, 0}}});
    EXPECT_EQ(shared_level(r, kBase + 5), 0) << static_cast<int>(k);
  }
}

TEST(SharedBacking, OneGigHostPageStillMaps2MWhenTheSlotHoldsLessThan1G) {
  SimRun r = run({shared_vm(BackingKind::Hugetlb1G, 0x1000), {Access{kBase + 5, false, 0}}});
  EXPECT_EQ(shared_level(r, kBase + 5), 1);
}

// ---------------------------------------------------------------- DiscardShared -EINVAL paths

TEST(Discard, EmptyOrNotInsideOneSlotIsEinval) {
  SimRun r = run({shared_vm(BackingKind::Page4K),
                  {DiscardShared{{kBase, 0}}, DiscardShared{{kBase + 0xff0, 0x20}}, DiscardShared{{0x50000, 1}}}});
  EXPECT_EQ(r.outcomes[0].err, -EINVAL);
  EXPECT_EQ(r.outcomes[1].err, -EINVAL);
  EXPECT_EQ(r.outcomes[2].err, -EINVAL);
}

// mm/madvise.c madvise_dontneed_free_valid_vma: hugetlb start must be huge-aligned in HVA
// space; gfn alignment is not what counts.
TEST(Discard, HugetlbStartMisalignedInHvaSpaceIsEinval) {
  SimRun gfn_misaligned = run({shared_vm(BackingKind::Hugetlb2M), {DiscardShared{{kBase + 1, 0x200}}}});
  EXPECT_EQ(gfn_misaligned.outcomes[0].err, -EINVAL);
  // hva_offset 1: gfn kBase + 0x1ff sits at HVA page 0x200 (aligned), kBase + 0x200 does not.
  SimRun shifted = run({shared_vm(BackingKind::Hugetlb2M, 0x1000, 1),
                        {DiscardShared{{kBase + 0x1ff, 0x200}}, DiscardShared{{kBase + 0x200, 0x200}}}});
  EXPECT_EQ(shifted.outcomes[0].err, 0);
  EXPECT_EQ(shifted.outcomes[1].err, -EINVAL);
  SimRun one_g = run({shared_vm(BackingKind::Hugetlb1G, 0x40000), {DiscardShared{{kBase + 0x200, 0x200}}}});
  EXPECT_EQ(one_g.outcomes[0].err, -EINVAL);
}

TEST(Discard, HugetlbEndIsRoundedDown) {
  SimRun r = run({shared_vm(BackingKind::Hugetlb2M),
                  {Access{kBase, true, 0x11}, Access{kBase + 0x205, true, 0x22}, DiscardShared{{kBase, 0x300}},
                   Access{kBase, false, 0}, Access{kBase + 0x205, false, 0}}});
  EXPECT_EQ(r.outcomes[2].err, 0);
  EXPECT_EQ(read(r, 3).read, 0u);     // inside the rounded range: freed, refaults zero
  EXPECT_EQ(read(r, 4).read, 0x22u);  // past the rounded end: untouched
}

TEST(Discard, HugetlbRangeRoundedToNothingChangesNothing) {
  SimRun r = run({shared_vm(BackingKind::Hugetlb2M),
                  {Access{kBase, true, 0x11}, DiscardShared{{kBase, 0x1ff}}, Access{kBase, false, 0}}});
  EXPECT_EQ(r.outcomes[1].err, 0);
  EXPECT_EQ(shared_level(r, kBase), 1);  // the 2M shared leaf stayed
  EXPECT_EQ(read(r, 2).read, 0x11u);
  EXPECT_TRUE(r.observations[2].leaf_windows.empty());
}

// ---------------------------------------------------------------- what a discard does

TEST(Discard, ZapsEveryOverlappingSharedLeafWholeAndDataReadsZero) {
  SimRun r = run({shared_vm(BackingKind::Thp2M),
                  {Access{kBase + 5, true, 7}, Access{kBase + 6, true, 8}, DiscardShared{{kBase + 5, 1}}}});
  EXPECT_EQ(r.outcomes[2].err, 0);
  EXPECT_EQ(shared_level(r, kBase), -1);          // the 2M leaf around the 4K discard is gone whole
  EXPECT_EQ(shared_level(r, kBase + 0x1ff), -1);
  EXPECT_NE(r.events.find("zap shared gfn 0x100000 2M"), std::string::npos) << r.events;
  SimRun after = run({shared_vm(BackingKind::Thp2M),
                      {Access{kBase + 5, true, 7}, Access{kBase + 6, true, 8}, DiscardShared{{kBase + 5, 1}},
                       Access{kBase + 5, false, 0}, Access{kBase + 6, false, 0}}});
  EXPECT_EQ(read(after, 3).read, 0u);  // freed host page
  EXPECT_EQ(read(after, 4).read, 8u);  // its neighbour was not discarded
}

TEST(Discard, ThpPartialDiscardMaps4KUntilTheBlockIsDiscardedWhole) {
  SimRun r = run({shared_vm(BackingKind::Thp2M),
                  {Access{kBase, false, 0}, DiscardShared{{kBase + 0x10, 0x10}}, Access{kBase + 0x100, false, 0},
                   Access{kBase + 0x200, false, 0}}});
  EXPECT_EQ(shared_level(r, kBase + 0x100), 0);  // PMD split by the partial discard
  EXPECT_EQ(shared_level(r, kBase + 0x200), 1);  // the next 2M block was not touched
  SimRun whole = run({shared_vm(BackingKind::Thp2M),
                      {Access{kBase, false, 0}, DiscardShared{{kBase + 0x10, 0x10}}, DiscardShared{{kBase, 0x200}},
                       Access{kBase + 0x100, false, 0}}});
  EXPECT_EQ(shared_level(whole, kBase + 0x100), 1);  // discarded whole: a fresh THP may back it
}

TEST(Discard, ThpPartialDiscardAcrossTwoBlocksSplitsBothEdges) {
  SimRun r = run({shared_vm(BackingKind::Thp2M),
                  {DiscardShared{{kBase + 0x100, 0x480}}, Access{kBase, false, 0}, Access{kBase + 0x300, false, 0},
                   Access{kBase + 0x500, false, 0}, Access{kBase + 0x600, false, 0}}});
  EXPECT_EQ(shared_level(r, kBase), 0);          // head block, partly discarded
  EXPECT_EQ(shared_level(r, kBase + 0x300), 1);  // discarded whole
  EXPECT_EQ(shared_level(r, kBase + 0x500), 0);  // tail block, partly discarded
  EXPECT_EQ(shared_level(r, kBase + 0x600), 1);
}

TEST(Discard, HugetlbKeepsItsHostLevelAfterADiscard) {  // only THP has a PMD to split
  SimRun r = run({shared_vm(BackingKind::Hugetlb2M), {DiscardShared{{kBase, 0x200}}, Access{kBase + 3, false, 0}}});
  EXPECT_EQ(shared_level(r, kBase + 3), 1);
}

// TDX: the notifier's attr_filter is KVM_FILTER_SHARED (L3054), the mirror root stays.
TEST(Discard, NeverZapsPrivateLeaves) {
  Config c = shared_vm(BackingKind::Hugetlb2M);
  c.initially_private = true;
  c.backing = BackingKind::Hugetlb2M;
  SimRun r = run({c, {Prefault{{kBase, 0x200}}, Convert{{kBase + 0x200, 0x200}, Attr::Shared},
                      Access{kBase + 0x200, false, 0}, DiscardShared{{kBase, 0x400}}}});
  EXPECT_EQ(r.outcomes[3].err, 0);
  EXPECT_EQ(private_level(r, kBase), 1);
  EXPECT_EQ(shared_level(r, kBase + 0x200), -1);
  for (const Event& e : r.observations[4].events)  // [0] is setup; the discard is op 3
    EXPECT_FALSE(e.kind == EventKind::ZapLeaf && e.is_private) << r.events;
}

// In place the HVA maps gmem: the notifier zaps the shared leaves, gmem keeps the data.
TEST(Discard, InPlaceZapsSharedLeavesAndKeepsData) {
  Config c = shared_vm(BackingKind::Hugetlb2M);
  c.attr_mode = AttrMode::InPlace;
  c.backing = BackingKind::Hugetlb2M;
  SimRun r = run({c, {Access{kBase + 3, true, 0x33}, DiscardShared{{kBase + 3, 1}}, Access{kBase + 3, false, 0}}});
  EXPECT_EQ(r.outcomes[1].err, 0);
  EXPECT_NE(r.events.find("zap shared gfn 0x100000 2M"), std::string::npos) << r.events;
  EXPECT_EQ(read(r, 2).read, 0x33u);
}

}  // namespace
}  // namespace tdxhp::simtest
