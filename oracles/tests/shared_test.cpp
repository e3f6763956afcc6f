// Shared host memory (SEMANTICS.md "Backing", DiscardShared) and queued guest ops:
// INV-CONTIG for per-VM shared leaves, INV-ATTR with a private 4K page inside a 2M shared
// range, the madvise rules, and the queueing step.
#include "oracles/tests/trace.h"

namespace tdxhp::test {
namespace {

constexpr Pfn kHost = 0x4000000;  // host pfns of the shared memory (unrelated to gmem)

// A per-VM TD whose first 2M block [0, 512) is shared, over shared memory of kind `k`.
Trace shared_block(BackingKind k, uint64_t hva_offset = 0) {
  Config c = td(BackingKind::Page4K, 4 * k2M);
  c.shared_backing = k;
  c.slots[0].hva_offset = hva_offset;
  Trace t(c);
  t.setup();
  t.step(Convert{{0, k2M}, Attr::Shared}, ok());
  return t;
}

Obs shared_2m(Gfn g) { return Obs().shared({g, k2M}, {leaf(g, L2M, kHost + g)}); }

TEST(SharedContig, HugeShared2MOverHugetlbIsAllowed) {
  Trace t = shared_block(BackingKind::Hugetlb2M);
  t.step(Access{5, true, 1}, ok(), shared_2m(0));
  EXPECT_CLEAN(t);
}

TEST(SharedContig, Shared2MOver4KHostPagesIsReported) {
  Trace t = shared_block(BackingKind::Page4K);
  auto v = t.step(Access{5, true, 1}, ok(), shared_2m(0));
  EXPECT_REPORTS(v, "INV-CONTIG");
}

TEST(SharedContig, Shared2MAtAMisalignedHvaIsReported) {
  Trace t = shared_block(BackingKind::Hugetlb2M, 1);
  auto v = t.step(Access{5, true, 1}, ok(), shared_2m(0));
  EXPECT_REPORTS(v, "INV-CONTIG");
}

TEST(SharedContig, Shared1GOverThpIsReported) {
  Config c = td(BackingKind::Page4K, 2 * k1G);
  c.shared_backing = BackingKind::Thp2M;
  c.initially_private = false;
  Trace t(c);
  t.setup();
  auto v = t.step(Access{5}, ok(), Obs().shared({0, k1G}, {leaf(0, L1G, kHost)}));
  EXPECT_REPORTS(v, "INV-CONTIG");
}

// A partial MADV_DONTNEED splits the THP's PMD: the block maps 4K on the host from then on,
// so KVM must not map it 2M again; discarding the whole block makes 2M possible again.
TEST(SharedContig, ThpPartlyDiscardedMaps4KOnly) {
  Trace t = shared_block(BackingKind::Thp2M);
  t.step(Access{5, true, 1}, ok(), shared_2m(0));
  t.step(DiscardShared{{7, 1}}, ok(), Obs().shared({0, k2M}));
  auto v = t.step(Access{5, false}, reads(1), shared_2m(0));
  EXPECT_REPORTS(v, "INV-CONTIG");
}

TEST(SharedContig, ThpPartlyDiscardedThen4KIsAllowedAndWholeDiscardRestores2M) {
  Trace t = shared_block(BackingKind::Thp2M);
  t.step(Access{5, true, 1}, ok(), shared_2m(0));
  t.step(DiscardShared{{7, 1}}, ok(), Obs().shared({0, k2M}));
  t.step(Access{5, false}, reads(1), Obs().shared({5, 1}, {leaf(5, L4K, kHost + 5)}));
  t.step(Access{7, false}, reads(0), Obs().shared({7, 1}, {leaf(7, L4K, kHost + 7)}));
  t.step(DiscardShared{{0, k2M}}, ok(), Obs().shared({0, k2M}));
  t.step(Access{5, false}, reads(0), shared_2m(0));
  EXPECT_CLEAN(t);
}

TEST(SharedData, DiscardedSharedPagesReadZero) {
  Trace t = shared_block(BackingKind::Hugetlb2M);
  t.step(Access{5, true, 0x77}, ok(), shared_2m(0));
  t.step(DiscardShared{{0, k2M}}, ok(), Obs().shared({0, k2M}));
  auto v = t.step(Access{5, false}, reads(0x77), shared_2m(0));
  EXPECT_REPORTS(v, "INV-DATA");
}

// mm/madvise.c: hugetlb needs a huge-aligned start (-EINVAL) and rounds the end down.
TEST(SharedDiscard, HugetlbUnalignedStartFailsAndChangesNothing) {
  Trace t = shared_block(BackingKind::Hugetlb2M);
  t.step(Access{5, true, 0x77}, ok(), shared_2m(0));
  EXPECT_REPORTS(t.step(DiscardShared{{1, k2M}}, ok()), "INV-ATOMIC");
  t.step(DiscardShared{{1, k2M}}, fails(-EINVAL));
  t.step(Access{5, false}, reads(0x77));
  EXPECT_EQ(ids(t.all), (std::set<std::string>{"INV-ATOMIC"})) << words(t.all);
}

TEST(SharedDiscard, HugetlbEndRoundsDownSoAShortDiscardFreesNothing) {
  Trace t = shared_block(BackingKind::Hugetlb2M);
  t.step(Access{5, true, 0x77}, ok(), shared_2m(0));
  t.step(DiscardShared{{0, 100}}, ok());
  t.step(Access{5, false}, reads(0x77));
  EXPECT_CLEAN(t);
}

TEST(SharedDiscard, OutsideOneSlotIsEinval) {
  Trace t = shared_block(BackingKind::Hugetlb2M);
  t.step(DiscardShared{{4 * k2M - 1, 2}}, fails(-EINVAL));
  EXPECT_REPORTS(t.step(DiscardShared{{4 * k2M - 1, 2}}, ok()), "INV-ATOMIC");
}

// TDX filters the notifier to shared (L3054): a discard never zaps a private leaf.
TEST(SharedDiscard, ZappingAPrivateLeafOnTdxIsReported) {
  Trace t = shared_block(BackingKind::Hugetlb2M);
  t.step(Access{k2M}, ve(), Obs().priv({k2M, k2M}, {leaf(k2M, L2M, 0x100000 + k2M)})
                                .gmem(k2M, k2M, {folios(k2M, k2M, 0x100000 + k2M, 9)}));
  auto v = t.step(DiscardShared{{0, 2 * k2M}}, ok(), Obs().shared({0, k2M}).priv({k2M, k2M}));
  EXPECT_REPORTS(v, "INV-NOOVERZAP");
}

// INV-ATTR: a 2M shared range with one private 4K page inside maps no 2M shared leaf.
TEST(SharedAttr, Shared2MOverAPrivate4KPageIsReported) {
  Trace t = shared_block(BackingKind::Hugetlb2M);
  t.step(Convert{{9, 1}, Attr::Private}, ok());
  auto v = t.step(Access{5, true, 1}, ok(), shared_2m(0));
  EXPECT_REPORTS(v, "INV-ATTR");
}

// SEMANTICS.md "Queued guest ops": the queueing step does nothing.
TEST(Queued, QueueingStepReturnsZeroOnAnInterleavingTarget) {
  Trace t = shared_block(BackingKind::Hugetlb2M);
  t.step(Access{5, true, 1, true}, ok());
  EXPECT_CLEAN(t);
  EXPECT_REPORTS(t.step(Access{5, true, 1, true}, ok(), shared_2m(0)), "INV-ATOMIC");
}

TEST(Queued, ATargetWithoutInterleavingSaysUnsupported) {
  Caps k = tdx_caps();
  k.has.erase(Cap::Interleaving);
  Config c = td();
  Trace t(c, k);
  t.setup();
  t.step(Accept{0, L4K, true}, unsupported());
  EXPECT_CLEAN(t);
  EXPECT_REPORTS(t.step(Accept{0, L4K, true}, ok()), "INV-ATOMIC");
}

}  // namespace
}  // namespace tdxhp::test
