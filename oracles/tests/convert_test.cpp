// Host range ops: INV-NOOVERZAP, INV-PRECISE, INV-NOOVERSPLIT, INV-ATOMIC, and the scenarios
// SC-PARTIAL-CONVERT, SC-PUNCH-ALIGN, SC-PIN, SC-FAIL-MIDWAY, SC-BOUNDARY (16 TiB / 12 TiB).
#include "oracles/tests/trace.h"

namespace tdxhp::test {
namespace {

// A TD with accepted 2M leaves at each gfn of `at`, holding data 0x5a at their first page.
Trace with_accepted_2m(std::initializer_list<Gfn> at, Config c = td()) {
  Trace t(c);
  t.setup();
  for (Gfn g : at) {
    t.step(Access{g}, ve(), mapped_2m(g));
    t.step(Accept{g, L2M}, status(tdx::kSuccess));
    t.step(Access{g, true, 0x5a}, ok());
  }
  return t;
}

// SC-PARTIAL-CONVERT (L7283-7307): convert one 4K inside an accepted 2M leaf: split, zap only
// that page; neighbours stay ACCEPTED with data; converted back, a 2M accept is a mismatch.
TEST(NoOverZap, PartialConvertSplitsAndKeepsNeighbours) {
  Trace t = with_accepted_2m({0x200});
  t.step(Convert{{0x201, 1}, Attr::Shared}, ok(),
         Obs().priv({0x200, k2M}, {leaves(0x200, 1, L4K, pfn(0x200)), leaves(0x202, 0x1fe, L4K, pfn(0x202))}));
  t.step(Access{0x200, false}, reads(0x5a));
  t.step(Convert{{0x201, 1}, Attr::Private}, ok());
  t.step(Accept{0x200, L2M}, status(tdx::kPageSizeMismatch | 1));
  t.step(Accept{0x201, L4K}, status(tdx::kSuccess), Obs().priv({0x201, 1}, {leaf(0x201, L4K, pfn(0x201))}));
  t.step(Access{0x201, false}, reads(0));
  EXPECT_CLEAN(t);
}

TEST(NoOverZap, ZappingTheWholeLeafIsReported) {  // MUT-NO-SPLIT-ZAP
  Trace t = with_accepted_2m({0x200});
  auto v = t.step(Convert{{0x201, 1}, Attr::Shared}, ok(), Obs().priv({0x200, k2M}));
  EXPECT_REPORTS(v, "INV-NOOVERZAP");
  EXPECT_EQ(v.at(0).range, (GfnRange{0x200, 1}));
}

TEST(NoOverZap, HeadOnlyBoundarySplitIsReported) {  // MUT-HEAD-ONLY: end leaf zapped whole
  Trace t = with_accepted_2m({0x200, 0x400});
  auto v = t.step(Convert{{0x300, 0x180}, Attr::Shared}, ok(),
                  Obs().priv({0x200, 2 * k2M}, {leaves(0x200, 0x100, L4K, pfn(0x200))}));
  EXPECT_REPORTS(v, "INV-NOOVERZAP");
  EXPECT_EQ(v.at(0).range, (GfnRange{0x480, 0x180}));
}

TEST(Precise, ConvertToSharedZapsTheRange) {
  Trace t = with_accepted_2m({0x200});
  t.step(Convert{{0x200, k2M}, Attr::Shared}, ok(), Obs().priv({0x200, k2M}));
  EXPECT_CLEAN(t);
}

TEST(Precise, PrivateLeafLeftInConvertedRangeIsReported) {
  Trace t = with_accepted_2m({0x200});
  auto v = t.step(Convert{{0x200, k2M}, Attr::Shared}, ok());
  EXPECT_REPORTS(v, "INV-PRECISE");
  EXPECT_EQ(v.at(0).range, (GfnRange{0x200, k2M}));
}

TEST(Precise, PunchLeavingAPrivateLeafIsReported) {
  Trace t = with_accepted_2m({0x200});
  EXPECT_REPORTS(t.step(PunchHole{{0x200, k2M}}, ok(), Obs().gmem(0x200, k2M)), "INV-PRECISE");
}

TEST(NoOverSplit, OnlyTheRangeLeafIsZapped) {
  Trace t = with_accepted_2m({0x0, 0x200, 0x400});
  t.step(Convert{{0x200, k2M}, Attr::Shared}, ok(), Obs().priv({0x200, k2M}));
  EXPECT_CLEAN(t);
}

TEST(NoOverSplit, SplittingALeafOutsideTheRangeIsReported) {  // MUT-OVERSPLIT
  Trace t = with_accepted_2m({0x0, 0x200, 0x400});
  auto v = t.step(Convert{{0x200, k2M}, Attr::Shared}, ok(),
                  Obs().priv({0x200, 2 * k2M}, {leaves(0x400, k2M, L4K, pfn(0x400))}));
  EXPECT_REPORTS(v, "INV-NOOVERSPLIT");
  EXPECT_EQ(v.at(0).range, (GfnRange{0x400, k2M}));
}

TEST(NoOverSplit, SplitWithoutAnyRangeOpIsReported) {
  Trace t = with_accepted_2m({0x200});
  EXPECT_REPORTS(t.step(Prefault{{0x200, 1}}, ok(), Obs().priv({0x200, k2M}, {leaves(0x200, k2M, L4K, pfn(0x200))})),
                 "INV-NOOVERSPLIT");
}

// MUT-1G-MISS (L11525-11527), on the 1G what-if: a 2M-aligned convert inside a 1G leaf must
// split it to 2M and zap only the 2M leaf in range.
Trace with_1g_leaf() {
  Config c = td(BackingKind::Hugetlb1G);
  c.max_private_level = L1G;
  Trace t(c);
  t.setup();
  t.step(Access{0x0}, ve(), Obs().priv({0, k1G}, {leaf(0, L1G, pfn(0))}).gmem(0, k1G, {folios(0, k1G, pfn(0), 18)}));
  return t;
}

TEST(NoOverZap, TwoMegAlignedConvertInsideOneGigLeafSplitsToTwoMeg) {
  Trace t = with_1g_leaf();
  t.step(Convert{{0x200, k2M}, Attr::Shared}, ok(),
         Obs().priv({0, k1G}, {leaves(0, k2M, L2M, pfn(0)), leaves(0x400, k1G - 0x400, L2M, pfn(0x400))}));
  EXPECT_CLEAN(t);
}

TEST(NoOverZap, OneGigLeafZappedWholeIsReported) {  // MUT-1G-MISS
  Trace t = with_1g_leaf();
  EXPECT_REPORTS(t.step(Convert{{0x200, k2M}, Attr::Shared}, ok(), Obs().priv({0, k1G})), "INV-NOOVERZAP");
}

TEST(NoOverSplit, OneGigLeafSplitToFourKForATwoMegRangeIsReported) {
  Trace t = with_1g_leaf();
  auto v = t.step(Convert{{0x200, k2M}, Attr::Shared}, ok(),
                  Obs().priv({0, k1G}, {leaves(0, k2M, L4K, pfn(0)), leaves(0x400, k1G - 0x400, L2M, pfn(0x400))}));
  EXPECT_REPORTS(v, "INV-NOOVERSPLIT");
  EXPECT_EQ(v.at(0).range, (GfnRange{0, k2M}));
}

TEST(NoOverSplit, EightKInsideTwoMegSplitsOnlyThatLeaf) {  // SC-BOUNDARY: 8K range inside a 2M leaf
  Trace t = with_accepted_2m({0x200, 0x400});
  t.step(Convert{{0x2fe, 2}, Attr::Shared}, ok(),
         Obs().priv({0x200, k2M}, {leaves(0x200, 0xfe, L4K, pfn(0x200)), leaves(0x300, 0x100, L4K, pfn(0x300))}));
  t.step(Access{0x400, false}, reads(0x5a));
  EXPECT_CLEAN(t);
}

// SC-FAIL-MIDWAY: split-cache top-up fails with -ENOMEM: error, still private, data intact.
TEST(Atomic, FailedConvertChangesNothing) {
  Trace t = with_accepted_2m({0x200});
  t.step(Inject{FaultSite::SplitCacheTopup, 0, 1}, ok());
  t.step(Convert{{0x201, 1}, Attr::Shared}, fails(-ENOMEM));
  t.step(Access{0x200, false}, reads(0x5a));
  t.step(Access{0x201, false}, reads(0));
  EXPECT_CLEAN(t);
}

TEST(Atomic, ZapThenFailIsReported) {  // MUT-ZAP-THEN-FAIL
  Trace t = with_accepted_2m({0x200});
  t.step(Inject{FaultSite::SplitCacheTopup, 0, 1}, ok());
  auto v = t.step(Convert{{0x201, 1}, Attr::Shared}, fails(-ENOMEM), Obs().priv({0x200, k2M}));
  EXPECT_REPORTS(v, "INV-ATOMIC");
}

TEST(Atomic, PositiveReturnIsReported) {  // MUT-BOOLRET
  Trace t = with_accepted_2m({0x200});
  t.step(Inject{FaultSite::SplitCacheTopup, 0, 1}, ok());
  auto v = t.step(Convert{{0x201, 1}, Attr::Shared}, fails(1));
  EXPECT_REPORTS(v, "INV-ATOMIC");
}

TEST(Atomic, NoMemWithoutInjectionIsReported) {
  Trace t = with_accepted_2m({0x200});
  EXPECT_REPORTS(t.step(Convert{{0x201, 1}, Attr::Shared}, fails(-ENOMEM)), "INV-ATOMIC");
}

// SC-PUNCH-ALIGN (L12324-12328).
TEST(Atomic, UnalignedPunchOnHugetlbFailsAndChangesNothing) {
  Trace t = with_accepted_2m({0x200});
  t.step(PunchHole{{0x201, 1}}, fails(-EINVAL));
  t.step(PunchHole{{0x400, k2M}}, ok(), Obs().priv({0x400, k2M}).gmem(0x400, k2M));
  EXPECT_CLEAN(t);
  EXPECT_REPORTS(t.step(PunchHole{{0x201, 1}}, ok()), "INV-ATOMIC");
}

TEST(Atomic, FailedPunchFreeingPagesIsReported) {
  Trace t = with_accepted_2m({0x200});
  EXPECT_REPORTS(t.step(PunchHole{{0x201, 1}}, fails(-EINVAL), Obs().gmem(0x200, k2M)), "INV-ATOMIC");
}

// SC-PIN (L9600-9610): in place, guest_memfd checks for folio users only on shared -> private;
// pinned shared pages make that -EAGAIN until unpinned. Private -> shared ignores pins.
TEST(Atomic, PinnedInPlaceConvertToPrivateIsEagainUntilUnpinned) {
  Config c = td();
  c.attr_mode = AttrMode::InPlace;
  Trace t = with_accepted_2m({0x200}, c);
  t.step(Pin{{0x200, 4}}, ok());
  t.step(Convert{{0x200, k2M}, Attr::Shared}, ok(), Obs().priv({0x200, k2M}));
  t.step(Convert{{0x200, k2M}, Attr::Private}, fails(-EAGAIN));
  t.step(Unpin{{0x200, 4}}, ok());
  t.step(Convert{{0x200, k2M}, Attr::Private}, ok());
  EXPECT_CLEAN(t);
  t.step(Convert{{0x200, k2M}, Attr::Shared}, ok());
  t.step(Pin{{0x200, 4}}, ok());
  EXPECT_REPORTS(t.step(Convert{{0x200, k2M}, Attr::Private}, ok()), "INV-ATOMIC");
}

// Per VM, KVM_SET_MEMORY_ATTRIBUTES takes any gfn range, slots or not (kvm_vm_set_mem_attributes);
// in place there is no gmem outside a slot to convert.
TEST(Atomic, ConvertOutsideSlots) {
  Trace t(td());
  t.setup();
  t.step(Convert{{2 * k1G - 1, 2}, Attr::Shared}, ok(), Obs().attrs({2 * k1G - 1, 2}, {{2 * k1G - 1, 2}}));
  t.step(Convert{{2 * k1G, 1}, Attr::Shared}, ok());  // a hole's attributes are shared already
  t.step(Access{2 * k1G}, fails(-EFAULT));
  t.step(Prefault{{2 * k1G - 1, 2}}, fails(-ENOENT));
  EXPECT_CLEAN(t);
  EXPECT_REPORTS(t.step(Convert{{2 * k1G - 1, 2}, Attr::Private}, fails(-EINVAL)), "INV-ATOMIC");
  Config c = td();
  c.attr_mode = AttrMode::InPlace;
  Trace in_place(c);
  in_place.setup();
  in_place.step(Convert{{2 * k1G, 2}, Attr::Shared}, fails(-EINVAL));
  EXPECT_CLEAN(in_place);
  EXPECT_REPORTS(in_place.step(Convert{{2 * k1G, 2}, Attr::Shared}, ok()), "INV-ATOMIC");
}

// SC-BOUNDARY (L11606-11626, L11810-11812): a 16 TiB gmem slot, a 12 TiB punch whose edges
// split two 2M leaves... rather, whose 2M-aligned edges fall next to mapped leaves. The
// oracle's state and work stay a handful of interval pieces, whatever the range length.
constexpr uint64_t k16T = uint64_t{16} << 28;  // pages of 4K
constexpr uint64_t k12T = uint64_t{12} << 28;

std::vector<Violation> boundary_trace(bool leave_last_leaf, size_t* pieces_before, size_t* pieces_after) {
  Trace t(td(BackingKind::Hugetlb2M, k16T));
  t.setup();
  const Gfn s = k1G, e = k1G + k12T;  // punch [1G, 1G + 12T)
  for (Gfn g : {s - k2M, s, e - k2M, e}) {
    t.step(Access{g}, ve(), mapped_2m(g));
    t.step(Accept{g, L2M}, status(tdx::kSuccess));
  }
  *pieces_before = t.oracle.state_pieces();
  Obs punch;
  if (leave_last_leaf)
    punch.priv({s, k12T - k2M}).gmem(s, k12T - k2M);
  else
    punch.priv({s, k12T}).gmem(s, k12T);
  t.step(PunchHole{{s, k12T}}, ok(), punch);
  *pieces_after = t.oracle.state_pieces();
  t.step(Access{s - k2M, false}, reads(0));
  t.step(Access{e, false}, reads(0));
  return t.all;
}

TEST(Boundary, TwelveTebibytePunchOnSixteenTebibyteSlotStaysSmall) {
  size_t before = 0, after = 0;
  auto v = boundary_trace(false, &before, &after);
  EXPECT_TRUE(v.empty()) << words(v);
  EXPECT_LT(before, 64u);
  EXPECT_LE(after, before);
}

TEST(Boundary, LeafLeftAtTheFarEdgeIsReported) {
  size_t before = 0, after = 0;
  auto v = boundary_trace(true, &before, &after);
  EXPECT_REPORTS(v, "INV-PRECISE");
  const Gfn last = k1G + k12T - k2M;
  EXPECT_EQ(v.at(0).range, (GfnRange{last, k2M}));
  EXPECT_LT(after, 64u);
}

// The attributes the target shows are checked after every step, not only when a later op
// happens to touch them.
TEST(ObservedAttrs, ConversionShowsExactlyItsRange) {
  Trace t = with_accepted_2m({0x200});
  t.step(Convert{{0x201, 1}, Attr::Shared}, ok(),
         Obs().priv({0x200, k2M}, {leaf(0x200, L4K, pfn(0x200)), leaves(0x202, k2M - 2, L4K, pfn(0x202))})
             .attrs({0x201, 1}, {{0x201, 1}}));
  EXPECT_CLEAN(t);
}

TEST(ObservedAttrs, ConversionThatLeavesAGfnPrivateIsReported) {
  Trace t = with_accepted_2m({0x200});
  EXPECT_REPORTS(t.step(Convert{{0x201, 2}, Attr::Shared}, ok(),
                        Obs().priv({0x200, k2M}, {leaf(0x200, L4K, pfn(0x200)), leaves(0x203, k2M - 3, L4K, pfn(0x203))})
                            .attrs({0x201, 2}, {{0x201, 1}})),
                 "INV-PRECISE");
}

TEST(ObservedAttrs, FailedConversionChangingAttributesIsReported) {  // MUT-BOOLRET's twin
  Trace t = with_accepted_2m({0x200});
  t.step(Inject{FaultSite::SplitCacheTopup, 0, 1}, ok());
  EXPECT_REPORTS(t.step(Convert{{0x201, 1}, Attr::Shared}, fails(-ENOMEM), Obs().attrs({0x201, 1}, {{0x201, 1}})),
                 "INV-ATOMIC");
}

TEST(ObservedAttrs, AttributeChangedOutsideTheOpIsReported) {
  Trace t = with_accepted_2m({0x200});
  EXPECT_REPORTS(t.step(Access{0x200, false}, reads(0x5a), Obs().attrs({0x300, 1}, {{0x300, 1}})), "INV-ATOMIC");
}

// In place, folios follow the attributes: a split when part of a huge folio goes shared, a
// merge only when the whole block is private again (L4523, L4730-4737).
TEST(InPlaceFolios, HugeFolioLeftMixedIsReported) {
  Config c = td();
  c.attr_mode = AttrMode::InPlace;
  Trace t = with_accepted_2m({0x200}, c);
  EXPECT_REPORTS(t.step(Convert{{0x201, 1}, Attr::Shared}, ok(),
                        Obs().priv({0x200, k2M}, {leaf(0x200, L4K, pfn(0x200)), leaves(0x202, k2M - 2, L4K, pfn(0x202))})),
                 "INV-ATTR");
}

TEST(InPlaceFolios, MergeOverAMixedBlockIsReported) {
  Config c = td();
  c.attr_mode = AttrMode::InPlace;
  Trace t = with_accepted_2m({0x200}, c);
  Obs split = Obs()
                  .priv({0x200, k2M}, {leaf(0x200, L4K, pfn(0x200)), leaves(0x203, k2M - 3, L4K, pfn(0x203))})
                  .gmem(0x200, k2M, {folios(0x200, k2M, pfn(0x200), 0)});
  split.event(leaf_event(EventKind::SplitLeaf, 0x200, L2M)).event(folio_split(0x200, k2M, 9, 0));
  t.step(Convert{{0x201, 2}, Attr::Shared}, ok(), split);
  EXPECT_CLEAN(t);
  Event merge = folio_split(0x200, k2M, 0, 9);
  merge.kind = EventKind::FolioMerge;
  EXPECT_REPORTS(t.step(Convert{{0x201, 1}, Attr::Private}, ok(),
                        Obs().gmem(0x200, k2M, {folios(0x200, k2M, pfn(0x200), 9)}).event(merge)),
                 "INV-ATTR");  // gfn 0x202 is still shared
}

}  // namespace
}  // namespace tdxhp::test
