// Where gmem folios land physically (SEMANTICS "Backing"): huge folios never touch, 4K folios
// faulted at consecutive indices continue one run, and a freed page is never handed out again
// (a stale leaf must keep pointing at a pfn the file no longer has).
#include <gtest/gtest.h>

#include "runners/sim/gmem.h"

namespace tdxhp::sim {
namespace {

struct File4K {
  GmemFile f{0, 0x10000, BackingKind::Page4K};
  PfnAllocator alloc{3};
  StepLog log;
  Pfn at(uint64_t i) { return f.ensure(i, alloc, log); }
};

TEST(PfnAllocator, ConsecutiveFourKFaultsContinueOneRun) {
  File4K g;
  const Pfn a = g.at(0x40);
  EXPECT_EQ(g.at(0x41), a + 1);
  EXPECT_EQ(g.at(0x42), a + 2);
  EXPECT_EQ(g.f.folios().pieces(), 1u);         // one delta, still three order-0 folios
  EXPECT_EQ(g.f.piece(0x41)->order, 0);
}

TEST(PfnAllocator, AFreshFourKRunIsNever2MAlignedWithItsIndex) {
  File4K g;
  g.f.ensure_range(0x200, 0x400, g.alloc, g.log);  // a whole 2M block of 4K folios
  EXPECT_EQ(g.f.folios().pieces(), 1u);
  EXPECT_NE(g.f.pfn(0x200) & 511, 0u);
  EXPECT_FALSE(g.f.contiguous(0x200, 512));  // so not even the contiguous contract maps it 2M
  EXPECT_FALSE(g.f.in_one_folio(0x200, 512));
}

TEST(PfnAllocator, UnrelatedFaultsDoNotTouch) {
  File4K g;
  const Pfn a = g.at(0x40);
  const Pfn b = g.at(0x80);  // not index 0x41
  EXPECT_GT(b, a + 1);
  const Pfn c = g.at(0x3f);  // below a: its own run, not a - 1
  EXPECT_NE(c + 1, a);
}

TEST(PfnAllocator, AHugeFolioInBetweenEndsTheRun) {
  File4K g;
  const Pfn a = g.at(0x40);
  const Pfn huge = g.alloc.alloc(9);
  const Pfn b = g.at(0x41);
  EXPECT_NE(b, a + 1);
  EXPECT_TRUE(b + 1 <= huge || b >= huge + 512);
}

TEST(PfnAllocator, PunchedPagesAreNotHandedOutAgain) {
  File4K g;
  g.f.ensure_range(0x40, 0x48, g.alloc, g.log);
  const Pfn old = g.f.pfn(0x44);
  g.f.punch(0x44, 0x45, g.log);
  EXPECT_NE(g.at(0x44), old);  // refault in the middle: a fresh run
  const Pfn last = g.f.pfn(0x46) + 1;  // 0x47: the last page of the first run
  g.f.punch(0x47, 0x48, g.log);
  EXPECT_NE(g.at(0x47), last);  // its index - 1 is allocated, but was not the last page out
}

TEST(PfnAllocator, HugeFoliosStayApart) {
  PfnAllocator alloc(3);
  const Pfn a = alloc.alloc(9), b = alloc.alloc(9);
  EXPECT_EQ(a & 511, 0u);
  EXPECT_EQ(b & 511, 0u);
  EXPECT_GT(b, a + 512);
}

}  // namespace
}  // namespace tdxhp::sim
