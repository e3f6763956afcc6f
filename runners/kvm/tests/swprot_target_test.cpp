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
  c.shared_backing = BackingKind::Page4K;
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
  // Attributes belong to the VM, not to a slot: KVM_SET_MEMORY_ATTRIBUTES takes a range past
  // the slot too (kvm_vm_set_mem_attributes; lib/vm.c since c40d906). Only an empty one fails.
  EXPECT_EQ(t->apply(Convert{{kSlot + 1000, 100}, Attr::Shared}).err, 0) << "past the slot";
  EXPECT_EQ(t->apply(Convert{{kSlot, 0}, Attr::Shared}).err, -EINVAL) << "empty range";
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
  auto t = make_target("swprot", &why);
  if (!t) GTEST_SKIP() << why;
  Config c = one_slot();
  c.shared_backing = BackingKind::Hugetlb2M;  // from the case file, so replays rebuild it
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

// The shared leaves of one window at `level`.
int shared_leaves_at(const Observation& o, Level level, GfnRange in) {
  int n = 0;
  for (const LeafWindow& w : o.leaf_windows)
    for (const LeafRun& run : w.runs)
      if (!w.is_private && run.level == level && run.range.overlaps(in)) ++n;
  return n;
}

// SEMANTICS.md DiscardShared: freed shared pages read zero, private data (gmem) never changes.
TEST(KvmSwprot, DiscardSharedFreesSharedPagesOnly) {
  std::string why;
  auto t = make_target("swprot", &why);
  if (!t) GTEST_SKIP() << why;
  if (!t->caps()(Cap::SharedDiscard)) GTEST_SKIP() << t->caps().missing.at(Cap::SharedDiscard);
  Config c = one_slot();
  c.initially_private = false;
  ASSERT_EQ(t->setup(c, &why), 0) << why;
  ASSERT_EQ(t->apply(Convert{{kSlot + 3, 1}, Attr::Private}).err, 0);
  for (Gfn g = kSlot; g < kSlot + 5; ++g) ASSERT_EQ(t->apply(Access{g, true, 0x100 + g}).err, 0);
  EXPECT_EQ(t->apply(DiscardShared{{kSlot + 1, 3}}).err, 0);
  EXPECT_EQ(t->apply(Access{kSlot, false, 0}).read.value_or(0), 0x100 + kSlot) << "before the range";
  EXPECT_EQ(t->apply(Access{kSlot + 1, false, 0}).read.value_or(1), 0u) << "discarded shared page";
  EXPECT_EQ(t->apply(Access{kSlot + 3, false, 0}).read.value_or(0), 0x100 + kSlot + 3) << "private: in gmem";
  EXPECT_EQ(t->apply(Access{kSlot + 4, false, 0}).read.value_or(0), 0x100 + kSlot + 4) << "after the range";
  EXPECT_EQ(t->apply(DiscardShared{{kSlot + 1000, 100}}).err, -EINVAL) << "past the slot";
  EXPECT_EQ(t->apply(DiscardShared{{kSlot, 0}}).err, -EINVAL) << "empty";
  Observation o = t->observe();
  EXPECT_TRUE(o.kernel_log.empty()) << o.kernel_log.front();
  t->teardown();
}

// mm/madvise.c on hugetlb: a start off the huge page is -EINVAL, the end is rounded down.
TEST(KvmSwprot, HugetlbDiscardAlignmentIsTheKernels) {
  std::string why;
  auto t = make_target("swprot", &why);
  if (!t) GTEST_SKIP() << why;
  if (!t->caps()(Cap::SharedDiscard)) GTEST_SKIP() << t->caps().missing.at(Cap::SharedDiscard);
  Config c = one_slot();
  c.shared_backing = BackingKind::Hugetlb2M;
  c.initially_private = false;
  int r = t->setup(c, &why);
  if (r == -EOPNOTSUPP) GTEST_SKIP() << why;
  ASSERT_EQ(r, 0) << why;
  ASSERT_EQ(t->apply(Access{kSlot + 1, true, 0x11}).err, 0);
  EXPECT_EQ(t->apply(DiscardShared{{kSlot + 1, 1}}).err, -EINVAL) << "start not 2M-aligned";
  EXPECT_EQ(t->apply(DiscardShared{{kSlot, 100}}).err, 0) << "end rounds down to the start";
  EXPECT_EQ(t->apply(Access{kSlot + 1, false, 0}).read.value_or(0), 0x11u) << "nothing was discarded";
  EXPECT_EQ(t->apply(DiscardShared{{kSlot, 600}}).err, 0) << "one whole 2M page";
  EXPECT_EQ(t->apply(Access{kSlot + 1, false, 0}).read.value_or(1), 0u);
  t->teardown();
}

// INV-CONTIG: after a partial MADV_DONTNEED of a THP block, that block maps 4K on the host,
// so KVM must map its shared gfns at 4K; an untouched block may stay 2M.
TEST(KvmSwprot, ThpPartialDiscardMapsTheBlock4K) {
  std::string why;
  auto t = make_target("swprot", &why);
  if (!t) GTEST_SKIP() << why;
  if (!t->caps()(Cap::SharedDiscard)) GTEST_SKIP() << t->caps().missing.at(Cap::SharedDiscard);
  Config c = one_slot();
  c.shared_backing = BackingKind::Thp2M;
  c.initially_private = false;
  ASSERT_EQ(t->setup(c, &why), 0) << why;
  for (Gfn g : {kSlot, kSlot + 512}) ASSERT_EQ(t->apply(Access{g, true, g}).err, 0);
  ASSERT_EQ(t->apply(DiscardShared{{kSlot + 8, 8}}).err, 0);
  for (Gfn g : {kSlot, kSlot + 9, kSlot + 100}) ASSERT_EQ(t->apply(Access{g, false, 0}).err, 0);
  EXPECT_EQ(t->apply(Access{kSlot, false, 0}).read.value_or(0), kSlot) << "outside the discarded pages";
  Observation o = t->observe();
  EXPECT_TRUE(o.kernel_log.empty()) << o.kernel_log.front();
  if (!t->caps()(Cap::LeafLevels)) {
    t->teardown();
    GTEST_SKIP() << "data checked; leaf levels: " << t->caps().missing.at(Cap::LeafLevels);
  }
  EXPECT_EQ(shared_leaves_at(o, Level::L2M, {kSlot, 512}), 0) << "the split THP block must not map 2M";
  EXPECT_GT(shared_leaves_at(o, Level::L4K, {kSlot, 512}), 0);
  t->teardown();
}

TEST(KvmSwprot, QueuedGuestOpsAreUnsupported) {
  std::string why;
  auto t = make_target("swprot", &why);
  if (!t) GTEST_SKIP() << why;
  EXPECT_FALSE(t->caps()(Cap::Interleaving));
  ASSERT_EQ(t->setup(one_slot(), &why), 0) << why;
  Access a{kSlot, true, 1, true};
  EXPECT_TRUE(t->apply(a).unsupported);
  t->teardown();
}

}  // namespace
}  // namespace tdxhp::kvm
