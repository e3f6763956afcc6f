// Guest-side invariants: INV-ACCEPT (SC-ACCEPT4K-AFTER/BEFORE, SC-PREFAULT, one-way inhibit),
// INV-LIVE, INV-DATA, and targets without TDX accept.
#include "oracles/tests/trace.h"

namespace tdxhp::test {
namespace {

// SC-ACCEPT4K-AFTER (L230-243): touched -> 2M; accept 4K -> split, inhibit, success.
TEST(Accept, FourKAcceptOverTwoMegLeafSplitsAndSucceeds) {
  Trace t(td());
  t.setup();
  t.step(Access{0x200}, ve(), mapped_2m(0x200));
  t.step(Accept{0x200, L4K}, status(tdx::kSuccess), split_4k(0x200));
  t.step(Accept{0x201, L4K}, status(tdx::kSuccess));
  t.step(Accept{0x201, L4K}, status(tdx::kPageAlreadyAccepted));
  EXPECT_CLEAN(t);
}

TEST(Accept, FourKAcceptLeavingTwoMegLeafIsReported) {  // MUT-IGNORE-ACCEPT
  Trace t(td());
  t.setup();
  t.step(Access{0x200}, ve(), mapped_2m(0x200));
  auto v = t.step(Accept{0x200, L4K}, status(tdx::kSuccess));
  EXPECT_REPORTS(v, "INV-ACCEPT");
}

// SC-ACCEPT4K-BEFORE (L245-252) and the size mismatch of a 2M accept over 4K leaves.
TEST(Accept, FourKFirstThenTwoMegIsSizeMismatch) {
  Trace t(td());
  t.setup();
  t.step(Accept{0x200, L4K}, status(tdx::kSuccess),
         Obs().priv({0x200, 1}, {leaf(0x200, L4K, pfn(0x200))}).gmem(0x200, k2M, {folios(0x200, k2M, pfn(0x200), 9)}));
  t.step(Accept{0x200, L2M}, status(tdx::kPageSizeMismatch | 1));
  EXPECT_CLEAN(t);
  auto v = t.step(Accept{0x200, L2M}, status(tdx::kSuccess));
  EXPECT_REPORTS(v, "INV-ACCEPT");
}

TEST(Accept, WrongStatusForPendingLeafIsReported) {
  Trace t(td());
  t.setup();
  t.step(Access{0x200}, ve(), mapped_2m(0x200));
  EXPECT_REPORTS(t.step(Accept{0x200, L2M}, status(tdx::kPageAlreadyAccepted)), "INV-ACCEPT");
}

TEST(Accept, MisalignedAcceptIsOperandInvalid) {
  Trace t(td());
  t.setup();
  t.step(Accept{0x201, L2M}, status(tdx::kOperandInvalid | tdx::kOperandIdRcx));
  EXPECT_CLEAN(t);
  EXPECT_REPORTS(t.step(Accept{0x201, L2M}, status(tdx::kSuccess)), "INV-ACCEPT");
}

// SC-PREFAULT (L187-191): prefault 2M, accept 4K -> split on the exit.
TEST(Accept, PrefaultTwoMegThenFourKAccept) {
  Trace t(td());
  t.setup();
  t.step(Prefault{{0x200, k2M}}, ok(), mapped_2m(0x200));
  t.step(Accept{0x3ff, L4K}, status(tdx::kSuccess), split_4k(0x200));
  EXPECT_CLEAN(t);
}

// INV-ACCEPT one-way: after the exit-path 4K accept, the block never maps 2M again, through
// a convert to shared and back (MUT-INHIBIT-CLEARED).
TEST(Accept, InhibitSurvivesConversionRoundTrip) {
  Trace t(td());
  t.setup();
  t.step(Accept{0x200, L4K}, status(tdx::kSuccess),
         Obs().priv({0x200, 1}, {leaf(0x200, L4K, pfn(0x200))}).gmem(0x200, k2M, {folios(0x200, k2M, pfn(0x200), 9)}));
  t.step(Convert{{0x200, k2M}, Attr::Shared}, ok(), Obs().priv({0x200, k2M}));
  t.step(Convert{{0x200, k2M}, Attr::Private}, ok());
  EXPECT_CLEAN(t);
  auto v = t.step(Access{0x200}, ve(), mapped_2m(0x200));
  EXPECT_REPORTS(v, "INV-ACCEPT");
}

// A 4K accept of 0x200 (exit path: GUEST_INHIBIT on its 2M and 1G blocks) while the sim's
// counter says `count` inhibited blocks.
Trace after_4k_accept(uint64_t count) {
  Trace t(td());
  SimInternals in;
  in.guest_inhibit_blocks = count;
  t.setup();
  t.step(Accept{0x200, L4K}, status(tdx::kSuccess),
         Obs().priv({0x200, 1}, {leaf(0x200, L4K, pfn(0x200))})
             .gmem(0x200, k2M, {folios(0x200, k2M, pfn(0x200), 9)})
             .internals(in));
  return t;
}

TEST(Accept, InhibitCountDroppingIsReported) {
  Trace t = after_4k_accept(2);
  EXPECT_CLEAN(t);
  SimInternals in;
  in.guest_inhibit_blocks = 0;
  EXPECT_REPORTS(t.step(Convert{{0x200, 1}, Attr::Shared}, ok(), Obs().priv({0x200, 1}).internals(in)), "INV-ACCEPT");
}

// The counter drops but stays above the blocks the oracle itself knows inhibited: only the
// one-way rule can see it (checks_events.cpp; the vacuity audit's X12).
TEST(Accept, InhibitCountDroppingAboveKnownBlocksIsReported) {
  Trace t = after_4k_accept(5);
  EXPECT_CLEAN(t);
  SimInternals in;
  in.guest_inhibit_blocks = 3;  // still >= the 2 blocks (2M and 1G) the 4K accept inhibited
  auto v = t.step(Access{0x200, false}, reads(0), Obs().internals(in));
  EXPECT_REPORTS(v, "INV-ACCEPT");
  ASSERT_EQ(v.size(), 1u) << words(v);
  EXPECT_NE(v[0].expected.find("never cleared"), std::string::npos) << words(v);
}

// The exit path's split fails on an injected split-cache -ENOMEM: KVM returns before setting
// GUEST_INHIBIT (L2492-2499), so the 2M leaf stays and 2M remains possible.
TEST(Accept, FailedExitSplitSetsNoInhibit) {
  Trace t(td());
  t.setup();
  t.step(Access{0x200}, ve(), mapped_2m(0x200));
  t.step(Inject{FaultSite::SplitCacheTopup, 0, 1}, ok());
  SimInternals none;
  t.step(Accept{0x201, L4K}, fails(-ENOMEM), Obs().internals(none));
  t.step(Accept{0x200, L2M}, status(tdx::kSuccess));
  EXPECT_CLEAN(t);
  EXPECT_REPORTS(t.step(Accept{0x201, L4K}, fails(-ENOMEM)), "INV-ACCEPT");  // nothing armed any more
}

TEST(Accept, InhibitSetBeforeSplitIsReported) {  // MUT-INHIBIT-BEFORE-SPLIT
  Trace t(td());
  t.setup();
  t.step(Access{0x200}, ve(), mapped_2m(0x200));
  Obs o = split_4k(0x200);
  Event inhibit;
  inhibit.kind = EventKind::SetInhibit;
  o.event(inhibit).event(leaf_event(EventKind::SplitLeaf, 0x200, L2M));
  EXPECT_REPORTS(t.step(Accept{0x200, L4K}, status(tdx::kSuccess), o), "INV-ACCEPT");
}

TEST(Accept, SwProtectedTargetReportsAcceptUnsupported) {
  Caps k = caps_of({Cap::PrivateMemory, Cap::Attributes, Cap::LeafLevels, Cap::GuestData});
  Trace t(td(), k);
  t.setup();
  t.step(Accept{0x200, L2M}, unsupported());
  t.step(Access{0x200, true, 7}, ok(), Obs().priv({0x200, k2M}, {leaf(0x200, L2M, pfn(0x200))}));
  t.step(Access{0x200, false}, reads(7));
  t.step(Access{0x400, false}, reads(0));  // private, never written: zero
  EXPECT_CLEAN(t);
  EXPECT_FALSE(t.oracle.checkable().count("INV-ACCEPT"));
  EXPECT_REPORTS(t.step(Accept{0x200, L2M}, status(tdx::kSuccess)), "INV-ACCEPT");
}

TEST(Accept, AccessToAcceptedPageRaisingVeIsReported) {
  Trace t(td());
  t.setup();
  t.step(Access{0x200}, ve(), mapped_2m(0x200));
  t.step(Accept{0x200, L2M}, status(tdx::kSuccess));
  EXPECT_CLEAN(t);
  EXPECT_REPORTS(t.step(Access{0x200}, ve()), "INV-ACCEPT");
}

// INV-LIVE: everything allows 2M, the guest accepts 2M with nothing mapped.
TEST(Live, TwoMegAcceptYieldsTwoMegLeaf) {
  Config c = td();
  c.slots[0].hva_offset = 3;  // the HVA does not matter (MUT-HVA-ALIGN)
  Trace t(c);
  t.setup();
  t.step(Accept{0x200, L2M}, status(tdx::kSuccess), mapped_2m(0x200));
  EXPECT_CLEAN(t);
}

TEST(Live, TwoMegAcceptMappedFourKIsReported) {  // MUT-HVA-ALIGN / MUT-NO-MERGE shape
  Config c = td();
  c.slots[0].hva_offset = 3;
  Trace t(c);
  t.setup();
  auto v = t.step(Accept{0x200, L2M}, status(tdx::kPageSizeMismatch | 1),
                  Obs().priv({0x200, 1}, {leaf(0x200, L4K, pfn(0x200))}).gmem(0x200, k2M, {folios(0x200, k2M, pfn(0x200), 9)}));
  EXPECT_REPORTS(v, "INV-LIVE");
  EXPECT_FALSE(ids(v).count("INV-ACCEPT")) << words(v);  // the result itself is allowed
}

TEST(Live, FourKIsAllowedWhenBackingIsFourK) {
  Trace t(td(BackingKind::Page4K));
  t.setup();
  t.step(Accept{0x200, L2M}, status(tdx::kPageSizeMismatch | 1),
         Obs().priv({0x200, 1}, {leaf(0x200, L4K, pfn(0x200))}).gmem(0x200, 1, {folios(0x200, 1, pfn(0x200), 0)}));
  EXPECT_CLEAN(t);
}

TEST(Data, GuestReadsBackWhatItWrote) {
  Trace t(td());
  t.setup();
  t.step(Access{0x200}, ve(), mapped_2m(0x200));
  t.step(Accept{0x200, L2M}, status(tdx::kSuccess));
  t.step(Access{0x205, false}, reads(0));
  t.step(Access{0x205, true, 0xbeef}, ok());
  t.step(Access{0x205, false}, reads(0xbeef));
  t.step(Access{0x206, false}, reads(0));
  EXPECT_CLEAN(t);
  EXPECT_REPORTS(t.step(Access{0x205, false}, reads(0)), "INV-DATA");
}

TEST(Data, SharedPagesReadLastSharedWrite) {
  Config c = td();
  c.initially_private = false;
  Trace t(c);
  t.setup();
  t.step(Access{0x10, false}, reads(0x1234));  // never written: anything
  t.step(Access{0x10, true, 5}, ok());
  t.step(Access{0x10, false}, reads(5));
  EXPECT_CLEAN(t);
  EXPECT_REPORTS(t.step(Access{0x10, false}, reads(6)), "INV-DATA");
}

TEST(Data, PageSwappedUnderLeafIsReported) {
  Trace t(td());
  t.setup();
  t.step(Access{0x200}, ve(), mapped_2m(0x200));
  auto v = t.step(Access{0x200}, ve(), Obs().priv({0x200, k2M}, {leaf(0x200, L2M, 0x800000)}));
  EXPECT_REPORTS(v, "INV-DATA");
}

// The S-EPT states the target shows (PENDING / ACCEPTED) are checked after every step.
TEST(ObservedAccept, StatesFollowAugAndAccept) {
  Trace t(td());
  t.setup();
  t.step(Access{0x200}, ve(), mapped_2m(0x200).accepted({}));
  t.step(Accept{0x200, L2M}, status(tdx::kSuccess), Obs().priv({0x200, k2M}, {leaf(0x200, L2M, pfn(0x200))}).accepted({{0x200, k2M}}));
  EXPECT_CLEAN(t);
}

TEST(ObservedAccept, AcceptedPageShownPendingIsReported) {  // e.g. zapped and re-AUGed behind the guest's back
  Trace t(td());
  t.setup();
  t.step(Access{0x200}, ve(), mapped_2m(0x200));
  t.step(Accept{0x200, L2M}, status(tdx::kSuccess));
  EXPECT_REPORTS(t.step(Access{0x200, true, 7}, ok(), Obs().priv({0x200, k2M}, {leaf(0x200, L2M, pfn(0x200))}).accepted({{0x200, 3}})),
                 "INV-ACCEPT");
}

TEST(ObservedAccept, PendingPageShownAcceptedIsReported) {
  Trace t(td());
  t.setup();
  EXPECT_REPORTS(t.step(Access{0x200}, ve(), mapped_2m(0x200).accepted({{0x200, k2M}})), "INV-ACCEPT");
}

}  // namespace
}  // namespace tdxhp::test
