// The swprot flavour end to end: private data in guest_memfd, conversions, hugetlb-backed
// shared memory, and (with the TDP MMU) leaf windows checked for INV-ATTR. SKIPs with the
// reason where KVM_X86_SW_PROTECTED_VM is absent (the vm target boots a kernel that has it).
#include <gtest/gtest.h>

#include <cerrno>

#include "domain/describe.h"
#include "runners/kvm/kvm_target.h"

namespace tdxhp::kvm {
namespace {

constexpr Gfn kSlot = 0x200;  // 2M aligned (512 pages)

Config one_slot() {
  Config c;
  c.backing = BackingKind::Page4K;  // guest_memfd folios: 4K in 6.12
  c.slots.push_back(Memslot{0, kSlot, 1024, 0, 0});
  return c;
}

// Every window run must lie in gfns of one attribute (INV-ATTR): private runs over private
// gfns, shared runs over shared ones. `shared` holds the shared gfn ranges.
void expect_no_mixed_leaf(const Observation& o, const std::vector<GfnRange>& shared) {
  for (const LeafWindow& w : o.leaf_windows)
    for (const LeafRun& r : w.runs) {
      bool any_shared = false, all_shared = true;
      for (Gfn g = r.range.start; g < r.range.end(); ++g) {
        bool s = false;
        for (const GfnRange& x : shared) s = s || x.contains(g);
        any_shared = any_shared || s;
        all_shared = all_shared && s;
      }
      EXPECT_TRUE(w.is_private ? !any_shared : all_shared)
          << (w.is_private ? "private" : "shared") << " leaf " << name(r.level) << " at gfn 0x"
          << std::hex << r.range.start << " covers gfns of the other attribute";
    }
}

TEST(KvmSwprot, PrivateDataSurvivesConversionOfItsNeighbour) {
  std::string why;
  auto t = make_target("swprot", &why);
  if (!t) GTEST_SKIP() << why;
  ASSERT_EQ(t->setup(one_slot(), &why), 0) << why;
  ASSERT_EQ(t->apply(Access{kSlot + 1, true, 0xabc}).err, 0);
  ASSERT_EQ(t->apply(Convert{{kSlot + 2, 1}, Attr::Shared}).err, 0);
  EXPECT_EQ(t->apply(Access{kSlot + 1, false, 0}).read.value_or(0), 0xabcu) << "INV-NOOVERZAP/INV-DATA";
  ASSERT_EQ(t->apply(Access{kSlot + 2, true, 0x5}).err, 0);
  EXPECT_EQ(t->apply(Access{kSlot + 2, false, 0}).read.value_or(0), 0x5u);
  EXPECT_EQ(t->apply(Convert{{kSlot + 1000, 100}, Attr::Shared}).err, -EINVAL) << "past the slot";
  EXPECT_TRUE(t->apply(Accept{kSlot, Level::L4K}).unsupported);
  Observation o = t->observe();
  EXPECT_TRUE(o.kernel_log.empty()) << o.kernel_log.front();
  t->teardown();
}

TEST(KvmSwprot, HugeGmemBackingIsRefusedNotRunWithWrongExpectations) {
  std::string why;
  auto t = make_target("swprot", &why);
  if (!t) GTEST_SKIP() << why;
  Config c = one_slot();
  c.backing = BackingKind::Hugetlb2M;
  EXPECT_EQ(t->setup(c, &why), -EOPNOTSUPP);
  EXPECT_NE(why.find("4K folios only"), std::string::npos) << why;
}

TEST(KvmSwprot, HugetlbSharedRangeWithOnePrivatePageHasNoMixedLeaf) {
  std::string why;
  auto t = make_target("swprot", &why, KvmOptions{BackingKind::Hugetlb2M});
  if (!t) GTEST_SKIP() << why;
  Config c = one_slot();
  c.initially_private = false;
  int r = t->setup(c, &why);
  if (r == -EOPNOTSUPP) GTEST_SKIP() << why;
  ASSERT_EQ(r, 0) << why;
  Observation first = t->observe();
  ASSERT_EQ(t->apply(Convert{{kSlot + 7, 1}, Attr::Private}).err, 0);
  std::vector<GfnRange> shared{{kSlot, 7}, {kSlot + 8, 1024 - 8}};
  for (Gfn g : {kSlot, kSlot + 7, kSlot + 511, kSlot + 512})
    ASSERT_EQ(t->apply(Access{g, true, g}).err, 0) << std::hex << g;
  for (Gfn g : {kSlot, kSlot + 7, kSlot + 511, kSlot + 512})
    EXPECT_EQ(t->apply(Access{g, false, 0}).read.value_or(0), g) << std::hex << g;
  Observation o = t->observe();
  EXPECT_TRUE(o.kernel_log.empty()) << o.kernel_log.front();
  if (!t->caps()(Cap::LeafLevels)) {
    t->teardown();
    GTEST_SKIP() << "data checked; leaf levels: " << t->caps().missing.at(Cap::LeafLevels);
  }
  ASSERT_TRUE(o.has_leaves);
  expect_no_mixed_leaf(o, shared);
  bool shared_2m = false;
  for (const LeafWindow& w : o.leaf_windows)
    for (const LeafRun& run : w.runs) shared_2m = shared_2m || (!w.is_private && run.level == Level::L2M);
  EXPECT_TRUE(shared_2m) << "the all-shared second 2M of hugetlb memory maps at 2M";
  t->teardown();
}

}  // namespace
}  // namespace tdxhp::kvm
