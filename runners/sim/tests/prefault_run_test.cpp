// KVM_PRE_FAULT_MEMORY maps the unmapped private 4K gfns of a block as one run (one AUG and one
// map event with npages); the leaves, pfns and DPAMT refcounts must be what page-by-page faults
// give (INV-PAMT, L3328-3352).
#include <gtest/gtest.h>

#include <map>

#include "runners/sim/tests/sim_test_util.h"

namespace tdxhp::simtest {
namespace {

constexpr Gfn kBase = 0x100000;

Config td(BackingKind backing) {
  Config c;
  c.slots = {Memslot{0, kBase, 0x1000, 0, 0}};
  c.backing = backing;
  c.features.dynamic_pamt = true;
  return c;
}

// DPAMT refcount per 2M pfn range after the run, from every observation's changes.
std::map<Pfn, uint32_t> pamt_refs(const SimRun& r) {
  std::map<Pfn, uint32_t> refs;
  for (const Observation& o : r.observations)
    if (o.internals)
      for (const SimInternals::PamtRef& p : o.internals->pamt_changes) refs[p.pfn_2m] = p.refcount;
  return refs;
}

uint64_t private_4k_pages(const SimRun& r, Gfn s, Gfn e) {
  uint64_t n = 0;
  r.private_leaves.for_each(s, e, [&](uint64_t a, uint64_t b, const LeafAt& l) {
    if (l.level == Level::L4K) n += b - a;
  });
  return n;
}

TEST(PrefaultRun, FillsTheHoleOfASplitBlockOnly) {
  // A pending 2M leaf split by a 1-page conversion: 511 4K leaves around a hole. The faulted
  // hole coalesces with its neighbours, which must not be mapped (and PAMT-counted) again.
  const Gfn hole = kBase + 0xff;
  SimRun r = run({td(BackingKind::Hugetlb2M),
                  {Access{kBase + 0x100, false, 0}, Convert{{hole, 1}, Attr::Shared}, Convert{{hole, 1}, Attr::Private},
                   Prefault{{kBase, 0x200}}}});
  ASSERT_FALSE(r.bug_on) << r.events;
  EXPECT_EQ(private_4k_pages(r, kBase, kBase + 0x200), 0x200u);
  const auto refs = pamt_refs(r);
  uint64_t total = 0;
  for (auto [pfn, count] : refs) total += count;
  EXPECT_EQ(total, 0x200u) << r.events;  // one DPAMT 4K entry per mapped 4K page
}

TEST(PrefaultRun, FourKBackingMapsEveryPageOfOneRunOf4KFolios) {
  SimRun r = run({td(BackingKind::Page4K), {Prefault{{kBase + 0x200, 0x200}}}});
  ASSERT_FALSE(r.bug_on) << r.events;
  EXPECT_EQ(private_4k_pages(r, kBase + 0x200, kBase + 0x400), 0x200u);
  // Sequential 4K faults get consecutive pfns (SEMANTICS "Backing"): one leaf run, 4K folios.
  uint64_t pieces = 0;
  r.private_leaves.for_each(kBase + 0x200, kBase + 0x400, [&](uint64_t, uint64_t, const LeafAt&) { ++pieces; });
  EXPECT_EQ(pieces, 1u);
  for (const Observation& o : r.observations)
    for (const BackingWindow& w : o.backing_windows)
      for (const BackingRun& b : w.runs) EXPECT_EQ(b.folio_order, 0) << "index " << b.index;
  uint64_t total = 0;
  for (auto [pfn, count] : pamt_refs(r)) total += count;
  EXPECT_EQ(total, 0x200u);
  EXPECT_NE(r.events.find("TDH.MEM.PAGE.AUG"), std::string::npos);
}

}  // namespace
}  // namespace tdxhp::simtest
