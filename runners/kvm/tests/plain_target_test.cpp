// End-to-end driver of the kvm target on this host: a plain VM, guest writes and reads,
// a punched hole reads back zero (INV-DATA), observations and teardown. SKIPs (with the
// reason) where /dev/kvm or the plain flavour is absent.
#include <gtest/gtest.h>

#include <cerrno>
#include <cstdio>

#include "runners/kvm/kvm_target.h"
#include "runners/kvm/observers/kmsg.h"

namespace tdxhp::kvm {
namespace {

std::unique_ptr<Target> plain_or_skip(std::string* why) { return make_target("plain", why); }

Config one_slot() {
  Config c;
  c.backing = BackingKind::Page4K;
  c.shared_backing = BackingKind::Page4K;  // a plain VM's memory is its gmem/memfd file
  c.slots.push_back(Memslot{0, 0x200, 1024, 0, 0});
  return c;
}

TEST(KvmProbe, ReportsEveryFlavour) {
  Probe p = probe();
  ASSERT_FALSE(p.report.empty());
  int flavour_lines = 0;
  for (auto& l : p.report)
    if (l.rfind("kvm/tdx:", 0) == 0 || l.rfind("kvm/swprot:", 0) == 0 || l.rfind("kvm/plain:", 0) == 0)
      ++flavour_lines;
  if (p.report.size() == 1 && p.report[0].rfind("kvm: unusable", 0) == 0)
    GTEST_SKIP() << p.report[0];
  EXPECT_GE(flavour_lines, 3);
}

TEST(KvmPlain, WriteReadPunchReadsZero) {
  std::string why;
  auto t = plain_or_skip(&why);
  if (!t) GTEST_SKIP() << why;
  ASSERT_EQ(t->setup(one_slot(), &why), 0) << why;
  Outcome w = t->apply(Access{0x205, true, 0xfeedULL});
  ASSERT_EQ(w.err, 0) << w.note;
  Outcome r = t->apply(Access{0x205, false, 0});
  ASSERT_EQ(r.err, 0) << r.note;
  ASSERT_TRUE(r.read.has_value());
  EXPECT_EQ(*r.read, 0xfeedULL);
  Outcome neighbour = t->apply(Access{0x206, false, 0});
  EXPECT_EQ(neighbour.read.value_or(1), 0u);  // never written: zero-filled gmem
  EXPECT_EQ(t->apply(Access{0x206, true, 0x42}).err, 0);

  EXPECT_EQ(t->apply(PunchHole{{0x205, 1}}).err, 0);
  Outcome after = t->apply(Access{0x205, false, 0});
  ASSERT_EQ(after.err, 0) << after.note;
  EXPECT_EQ(after.read.value_or(1), 0u) << "punched gfn 0x205 must read zero";
  EXPECT_EQ(t->apply(Access{0x206, false, 0}).read.value_or(0), 0x42u)
      << "gfn 0x206 outside the punched range must keep its data";

  Observation o = t->observe();
  EXPECT_FALSE(o.vm_dead);
  EXPECT_TRUE(o.kernel_log.empty()) << o.kernel_log.front();
  t->teardown();
}

// Issue 16: the next case resets the VM's memslots instead of building a VM. What a case
// wrote must be gone for the next one, and a replay (build_fresh_next) gets a new VM.
TEST(KvmPlain, NextCaseResetsTheVmAndStartsFromZeroedMemory) {
  std::string why;
  auto first = plain_or_skip(&why);
  if (!first) GTEST_SKIP() << why;
  first->build_fresh_next();
  ASSERT_EQ(first->setup(one_slot(), &why), 0) << why;
  EXPECT_FALSE(first->reused_vm());
  ASSERT_EQ(first->apply(Access{0x205, true, 0xabcdULL}).err, 0);
  first->teardown();

  Config moved = one_slot();  // another layout over the same gfns: slots really are rebuilt
  moved.slots[0] = Memslot{3, 0x100, 0x300, 0x40, 0x10};
  auto second = plain_or_skip(&why);
  ASSERT_EQ(second->setup(moved, &why), 0) << why;
  EXPECT_TRUE(second->reused_vm()) << "a plain VM left by a passing case is reset, not rebuilt";
  Outcome r = second->apply(Access{0x205, false, 0});
  ASSERT_EQ(r.err, 0) << r.note;
  EXPECT_EQ(r.read.value_or(1), 0u) << "gfn 0x205 written by the previous case must read zero";
  EXPECT_EQ(second->apply(Access{0x400, false, 0}).err, -EFAULT) << "past the new slot's end";
  EXPECT_EQ(second->apply(Access{0x80, true, 1}).err, -EFAULT) << "below the new slot";
  second->teardown();

  auto third = plain_or_skip(&why);
  third->build_fresh_next();
  ASSERT_EQ(third->setup(one_slot(), &why), 0) << why;
  EXPECT_FALSE(third->reused_vm());
  EXPECT_EQ(third->apply(Access{0x205, false, 0}).read.value_or(1), 0u);
  third->teardown();
}

// The worker frees a case's memslots after its teardown, while tdxhp saves the next case:
// what the kernel logs meanwhile must reach the next case's observation (as when the reset
// freed them), not fall between two cases. A debug-level line stands in for a WARN there.
TEST(KvmPlain, KernelLogDuringTheReleaseReachesTheNextCase) {
  std::string why;
  auto first = plain_or_skip(&why);
  if (!first) GTEST_SKIP() << why;
  first->build_fresh_next();
  ASSERT_EQ(first->setup(one_slot(), &why), 0) << why;
  first->teardown();  // posts the release
  {
    FILE* k = std::fopen("/dev/kmsg", "w");
    if (!k) GTEST_SKIP() << "/dev/kmsg is not writable here";
    std::fputs("<7>tdxhp test: logged while the worker releases the last case's memslots\n", k);
    std::fclose(k);
  }
  auto second = plain_or_skip(&why);
  ASSERT_EQ(second->setup(one_slot(), &why), 0) << why;
  EXPECT_TRUE(second->reused_vm());
  Observation o = second->observe();
  EXPECT_GE(o.kernel_lines_scanned, 1u) << "the line logged between the cases was never read";
  second->teardown();
}

TEST(KvmPlain, ExpectedErrorsAndUnsupportedOps) {
  std::string why;
  auto t = plain_or_skip(&why);
  if (!t) GTEST_SKIP() << why;
  ASSERT_EQ(t->setup(one_slot(), &why), 0) << why;
  EXPECT_EQ(t->apply(Access{0x10, false, 0}).err, -EFAULT);    // outside every slot
  EXPECT_EQ(t->apply(PunchHole{{0x5ff, 2}}).err, -EINVAL);     // runs past the slot end
  EXPECT_TRUE(t->apply(Accept{0x200, Level::L4K}).unsupported);
  EXPECT_TRUE(t->apply(Convert{{0x200, 1}, Attr::Shared}).unsupported);
  EXPECT_TRUE(t->apply(Inject{}).unsupported);
  EXPECT_TRUE(t->apply(DiscardShared{{0x200, 1}}).unsupported) << "no separate shared memory on plain";
  Access queued{0x201, true, 7, true};
  Outcome q = t->apply(queued);
  EXPECT_TRUE(q.unsupported) << "a real kernel cannot hold a vCPU 1 op for an mmu_lock drop";
  EXPECT_EQ(t->apply(Access{0x201, false, 0}).read.value_or(1), 0u) << "the queued write must not have run";
  EXPECT_FALSE(t->caps()(Cap::Interleaving));
  EXPECT_FALSE(t->caps()(Cap::SharedDiscard));
  t->teardown();
}

TEST(KvmPlain, RefusesHugeSharedBackingItCannotProvide) {
  std::string why;
  auto t = plain_or_skip(&why);
  if (!t) GTEST_SKIP() << why;
  Config c = one_slot();
  c.shared_backing = BackingKind::Thp2M;
  EXPECT_EQ(t->setup(c, &why), -EOPNOTSUPP);
  EXPECT_NE(why.find("shared_backing thp-2m"), std::string::npos) << why;
}

TEST(KvmPlain, RefusesConfigsItCannotBuild) {
  std::string why;
  auto t = plain_or_skip(&why);
  if (!t) GTEST_SKIP() << why;
  Config c = one_slot();
  c.backing = BackingKind::Hugetlb2M;
  EXPECT_EQ(t->setup(c, &why), -EOPNOTSUPP);
  EXPECT_NE(why.find("4K folios only"), std::string::npos) << why;
}

TEST(KvmKmsg, RecognisesKernelSelfChecks) {
  EXPECT_TRUE(KmsgObserver::is_finding("WARNING: CPU: 1 PID: 42 at arch/x86/kvm/mmu/tdp_mmu.c:123"));
  EXPECT_TRUE(KmsgObserver::is_finding("kernel BUG at mm/huge_memory.c:2000!"));
  EXPECT_FALSE(KmsgObserver::is_finding("kvm: vcpu 0 unhandled rdmsr"));
}

TEST(KvmTarget, UnknownFlavourSaysWhy) {
  std::string why;
  EXPECT_EQ(make_target("sev", &why), nullptr);
  EXPECT_NE(why.find("unknown kvm flavour"), std::string::npos) << why;
}

}  // namespace
}  // namespace tdxhp::kvm
