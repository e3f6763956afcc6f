// Leaf-shape invariants: INV-CONTIG (incl. SC-1G-FOLIO), INV-ORDER, INV-ATTR, INV-SLOT,
// INV-LEVELCAP, INV-NOPROMOTE (SC-PROMOTE). Each: one trace that breaks it, one that does not.
#include "oracles/tests/trace.h"

namespace tdxhp::test {
namespace {

TEST(Contig, TwoMegLeafOverOneFolioIsLegal) {
  Trace t(td());
  t.setup();
  t.step(Access{0x200}, ve(), mapped_2m(0x200));
  EXPECT_CLEAN(t);
}

TEST(Contig, TwoMegLeafOverFourKFoliosBreaksFolioContract) {
  Trace t(td(BackingKind::Thp2M));
  t.setup();
  auto v = t.step(Access{0x200}, ve(),
                  Obs().priv({0x200, k2M}, {leaf(0x200, L2M, pfn(0x200))}).gmem(0x200, k2M, {folios(0x200, k2M, pfn(0x200), 0)}));
  EXPECT_REPORTS(v, "INV-CONTIG");
  EXPECT_EQ(v.at(0).range, (GfnRange{0x200, k2M}));
}

TEST(Contig, LeafOverNonContiguousPagesBreaksEvenContiguousContract) {
  Config c = td();
  c.contract = Contract::Contiguous;
  Trace t(c);
  t.setup();
  auto v = t.step(Access{0x200}, ve(),
                  Obs().priv({0x200, k2M}, {leaf(0x200, L2M, pfn(0x200))})
                      .gmem(0x200, k2M, {folios(0x200, 0x100, pfn(0x200), 0), folios(0x300, 0x100, 0x900000, 0)}));
  EXPECT_REPORTS(v, "INV-CONTIG");
}

TEST(Contig, LeafOverHoleIsReported) {
  Trace t(td());
  t.setup();
  auto v = t.step(Access{0x200}, ve(), Obs().priv({0x200, k2M}, {leaf(0x200, L2M, pfn(0x200))}));
  EXPECT_REPORTS(v, "INV-CONTIG");
}

// SC-1G-FOLIO (L5167-5169, L5617-5621): a 2M leaf inside a 1G folio; converting one 4K
// elsewhere splits the whole folio 1G -> 4K in place. The neighbouring 2M leaf now spans 512
// order-0 folios that are still physically contiguous.
std::vector<Violation> one_gig_folio_trace(Contract contract) {
  Config c = td(BackingKind::Hugetlb1G);
  c.attr_mode = AttrMode::InPlace;
  c.contract = contract;
  Trace t(c);
  t.setup();
  t.step(Access{0x0}, ve(), Obs().priv({0, k2M}, {leaf(0, L2M, pfn(0))}).gmem(0, k1G, {folios(0, k1G, pfn(0), 18)}));
  t.step(Convert{{0x401, 1}, Attr::Shared}, ok(), Obs().gmem(0, k1G, {folios(0, k1G, pfn(0), 0)}));
  return t.all;
}

TEST(Contig, OneGigFolioSplitUnderTwoMegLeafBreaksFolioContract) {
  auto v = one_gig_folio_trace(Contract::Folio);
  EXPECT_REPORTS(v, "INV-CONTIG");
  EXPECT_EQ(v.at(0).range, (GfnRange{0, k2M}));
  EXPECT_NE(v.at(0).seen.find("order-0 folio"), std::string::npos) << v.at(0).seen;
}

TEST(Contig, OneGigFolioSplitUnderTwoMegLeafIsLegalUnderContiguousContract) {
  auto v = one_gig_folio_trace(Contract::Contiguous);
  EXPECT_TRUE(v.empty()) << words(v);
}

TEST(Contig, MisalignedPfnIsReported) {
  Trace t(td());
  t.setup();
  auto v = t.step(Access{0x200}, ve(),
                  Obs().priv({0x200, k2M}, {leaf(0x200, L2M, pfn(0x201))}).gmem(0x200, k2M, {folios(0x200, k2M, pfn(0x201), 9)}));
  EXPECT_REPORTS(v, "INV-CONTIG");
}

// INV-ORDER (L4502-4521): in place, KVM must split the 2M leaf before gmem splits the folio.
std::vector<Violation> partial_convert_in_place(bool folio_split_first) {
  Config c = td();
  c.attr_mode = AttrMode::InPlace;
  Trace t(c);
  t.setup();
  t.step(Access{0x200}, ve(), mapped_2m(0x200));
  Obs o;
  if (folio_split_first) o.event(folio_split(0x200, k2M, 9, 0));
  o.event(leaf_event(EventKind::SplitLeaf, 0x200, L2M)).event(leaf_event(EventKind::ZapLeaf, 0x201, L4K));
  if (!folio_split_first) o.event(folio_split(0x200, k2M, 9, 0));
  o.priv({0x200, k2M}, {leaves(0x200, 1, L4K, pfn(0x200)), leaves(0x202, 0x1fe, L4K, pfn(0x202))})
      .gmem(0x200, k2M, {folios(0x200, k2M, pfn(0x200), 0)});
  t.step(Convert{{0x201, 1}, Attr::Shared}, ok(), o);
  return t.all;
}

TEST(Order, SplitLeafThenFolioIsLegal) {
  auto v = partial_convert_in_place(false);
  EXPECT_TRUE(v.empty()) << words(v);
}

TEST(Order, FolioSplitWhileMappedTwoMegIsReported) {  // MUT-SPLIT-BEFORE-UNMAP
  auto v = partial_convert_in_place(true);
  EXPECT_REPORTS(v, "INV-ORDER");
}

// A folio of slot 0's file that runs past the slot's end says nothing about the next slot's
// leaves (two slots, gmem offset 1: found by the clean sim).
TEST(Order, FolioSplitPastSlotEndIgnoresNeighbourSlot) {
  Config c = td(BackingKind::Hugetlb2M, 0x1000);
  c.attr_mode = AttrMode::InPlace;
  c.slots[0].gmem_offset = 1;
  c.slots.push_back(Memslot{1, 0x1000, 0x1000, 0, 0});
  Trace t(c);
  t.setup();
  t.step(Access{0x1000}, ve(),
         Obs().priv({0x1000, k2M}, {leaf(0x1000, L2M, 0x900000)}).gmem(0, k2M, {folios(0, k2M, 0x900000, 9, 1)}, 1));
  t.step(Convert{{0xfff, 1}, Attr::Shared}, ok(), Obs().event(folio_split(0x1000, k2M, 9, 0)));
  EXPECT_CLEAN(t);
}

TEST(Attr, PartialConvertThatSplitsIsLegal) {
  Trace t(td());
  t.setup();
  t.step(Access{0x200}, ve(), mapped_2m(0x200));
  t.step(Convert{{0x201, 1}, Attr::Shared}, ok(),
         Obs().priv({0x200, k2M}, {leaves(0x200, 1, L4K, pfn(0x200)), leaves(0x202, 0x1fe, L4K, pfn(0x202))}));
  EXPECT_CLEAN(t);
}

TEST(Attr, TwoMegLeafLeftOverMixedAttributesIsReported) {  // MUT-NO-ATTR-SPLIT
  Trace t(td());
  t.setup();
  t.step(Access{0x200}, ve(), mapped_2m(0x200));
  auto v = t.step(Convert{{0x201, 1}, Attr::Shared}, ok(),
                  Obs().priv({0x200, k2M}, {leaf(0x200, L2M, pfn(0x200))}));
  EXPECT_REPORTS(v, "INV-ATTR");
  EXPECT_REPORTS(v, "INV-PRECISE");
}

TEST(Attr, SharedLeafOverPrivateGfnIsReported) {
  Trace t(td());
  t.setup();
  auto v = t.step(Access{0x200}, ve(), Obs().shared({0x200, 1}, {leaf(0x200, L4K, 0x5000)}));
  EXPECT_REPORTS(v, "INV-ATTR");
}

TEST(Slot, MisalignedHvaDoesNotMatterForPrivateTwoMeg) {
  Config c = td();
  c.slots[0].hva_offset = 1;
  Trace t(c);
  t.setup();
  t.step(Access{0x200}, ve(), mapped_2m(0x200));
  EXPECT_CLEAN(t);
}

TEST(Slot, TwoMegLeafWithMisalignedGmemIndexIsReported) {
  Config c = td();
  c.slots[0].gmem_offset = 0x100;  // gfn 0x200 is gmem index 0x300
  Trace t(c);
  t.setup();
  auto v = t.step(Access{0x200}, ve(),
                  Obs().priv({0x200, k2M}, {leaf(0x200, L2M, pfn(0x200))})
                      .gmem(0x300, k2M, {folios(0x300, k2M, pfn(0x200), 9)}));
  EXPECT_REPORTS(v, "INV-SLOT");
}

TEST(Slot, LeafAcrossTwoSlotsIsReported) {
  Config c = td(BackingKind::Hugetlb2M, 0x300);
  c.slots.push_back(Memslot{1, 0x300, 0x300, 0, 0});
  Trace t(c);
  t.setup();
  auto v = t.step(Access{0x200}, ve(), Obs().priv({0x200, k2M}, {leaf(0x200, L2M, pfn(0x200))}));
  EXPECT_REPORTS(v, "INV-SLOT");
}

TEST(LevelCap, BuildPagesAtFourKAreLegal) {
  Config c = td();
  c.build_pages = {{0x200, 4}};
  Trace t(c);
  t.setup();
  t.step(Access{0x201, false}, reads(0xADD0000000000201ULL));
  EXPECT_CLEAN(t);
}

TEST(LevelCap, HugeLeafBeforeRunnableIsReported) {  // MUT-BUILD-HUGE
  Config c = td();
  c.build_pages = {{0x200, k2M}};
  Trace t(c);
  Obs o;
  o.priv({0x200, k2M}, {leaf(0x200, L2M, pfn(0x200))}).gmem(0, 2 * k1G, {folios(0x200, k2M, pfn(0x200), 9)});
  Oracle& oracle = t.oracle;
  auto v = oracle.after_setup(o);
  EXPECT_REPORTS(v, "INV-LEVELCAP");
  EXPECT_EQ(v.at(0).step, kSetupStep);
}

TEST(LevelCap, TwoMegWithTdxHugePageOffIsReported) {
  Config c = td();
  c.tdx_huge_page = false;
  Trace t(c);
  t.setup();
  EXPECT_REPORTS(t.step(Access{0x200}, ve(), mapped_2m(0x200)), "INV-LEVELCAP");
  EXPECT_TRUE(t.step(Access{0x400}, ve(), Obs().priv({0x400, 1}, {leaf(0x400, L4K, pfn(0x400))}).gmem(0x400, k2M, {folios(0x400, k2M, pfn(0x400), 9)})).empty());
}

TEST(LevelCap, DemoteWithoutBitFiftyOneIsReported) {  // SC-OLD-MODULE, MUT-NO-FEATURE-GATE
  Config c = td();
  c.features.enhanced_demote_interruptibility = false;
  Trace t(c);
  t.setup();
  auto v = t.step(Accept{0x200, L4K}, ok(), Obs().event(seamcall("TDH.MEM.PAGE.DEMOTE", 0x200, L2M)));
  EXPECT_REPORTS(v, "INV-LEVELCAP");
}

// SC-PROMOTE (seed 000): a build page gives the 2M region a page table; convert the page to
// shared and back, then a 2M accept must still map 4K.
std::vector<Violation> promote_trace(Level mapped_at) {
  Config c = td();
  c.build_pages = {{0x200, 1}};
  Trace t(c);
  t.setup();
  t.step(Convert{{0x200, 1}, Attr::Shared}, ok(), Obs().priv({0x200, 1}));
  t.step(Convert{{0x200, 1}, Attr::Private}, ok());
  // The 2M entry is still a page table: a 2M accept is a size mismatch with no exit (module case 3).
  t.step(Accept{0x200, L2M}, status(tdx::kPageSizeMismatch | 1));
  if (mapped_at == L4K)
    t.step(Access{0x200}, ve(), Obs().priv({0x200, 1}, {leaf(0x200, L4K, pfn(0x200))}));
  else  // a guest fault that replaces the page table by a 2M leaf
    t.step(Access{0x200}, ve(), Obs().priv({0x200, k2M}, {leaf(0x200, L2M, pfn(0x200))}));
  return t.all;
}

TEST(NoPromote, StaysFourKAfterZapOfBuildPage) {
  auto v = promote_trace(L4K);
  EXPECT_TRUE(v.empty()) << words(v);
}

TEST(NoPromote, TwoMegOverOldPageTableIsReported) {  // MUT-PROMOTE
  auto v = promote_trace(L2M);
  EXPECT_REPORTS(v, "INV-NOPROMOTE");
}

// SEMANTICS.md "Memslots".
TEST(Memslot, DeletionMustZapItsLeaves) {
  Trace t(td());
  t.setup();
  t.step(Access{0x200}, ve(), mapped_2m(0x200));
  t.step(DeleteSlot{0}, ok(), Obs().priv({0x200, k2M}));
  t.step(Access{0x200}, fails(-EFAULT));
  t.step(AddSlot{0}, ok());
  t.step(Access{0x200}, ve(), mapped_2m(0x200));
  EXPECT_CLEAN(t);
  Trace kept(td());
  kept.setup();
  kept.step(Access{0x200}, ve(), mapped_2m(0x200));
  EXPECT_REPORTS(kept.step(DeleteSlot{0}, ok()), "INV-PRECISE");  // its 2M leaf is still mapped
}

TEST(Memslot, PageTableOutlivesTheSlot) {  // INV-NOPROMOTE across delete and add back
  Trace t(td());
  t.setup();
  t.step(Access{0x200}, ve(), Obs().priv({0x200, 1}, {leaf(0x200, L4K, pfn(0x200))}).gmem(0x200, k2M, {folios(0x200, k2M, pfn(0x200), 9)}));
  t.step(DeleteSlot{0}, ok(), Obs().priv({0x200, 1}));
  t.step(AddSlot{0}, ok());
  EXPECT_CLEAN(t);
  EXPECT_REPORTS(t.step(Access{0x200}, ve(), mapped_2m(0x200)), "INV-NOPROMOTE");
}

}  // namespace
}  // namespace tdxhp::test
