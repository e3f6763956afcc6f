// The real tdx flavour (lib/tdx/, lib/vm.c, worker.cpp) against the fake KVM
// (tests/fake_kvm): the whole TD lifecycle, and one test per item of
// ../shared/reviews/tdx-flavour-review.md's bug list and latent risks. Each names its item.
// What the fake cannot prove (guest code, real S-EPT levels, module timing) needs a TDX host:
// runners/kvm/README.md "The fake KVM".
#include <gtest/gtest.h>

#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <string>
#include <unistd.h>

#include "fake_kvm.h"
#include "runners/kvm/lib/tdx/tdx_abi.h"
#include "runners/kvm/lib/tdxhp_kvm.h"
#include "runners/kvm/worker.h"

// A dead TD's libkvm bookkeeping is left to process exit on purpose (lib/vm.c tkvm_destroy),
// and the fake keeps every VM it made for inspection: leak reports here would be noise.
extern "C" const char* __lsan_default_options() { return "detect_leaks=0"; }

namespace {

constexpr uint64_t kGpaBase = 1ULL << 32;  // lib/vm.c TEST_GPA_BASE
constexpr uint64_t kSlotPages = 1024;        // 4 MiB: two 2M blocks
constexpr uint64_t kGfnIn2M = 512;           // first gfn of the second 2M block

tkvm_config td_config(tkvm_backing priv = TKVM_BACK_4K, bool in_place = false, bool initially_private = true) {
  tkvm_config c{};
  c.flavour = TKVM_TDX;
  c.backing = TKVM_BACK_4K;
  c.private_backing = priv;
  c.in_place = in_place;
  c.initially_private = initially_private;
  c.nslots = 1;
  c.slots[0] = {1, 0, kSlotPages, 0, 0};
  return c;
}

class FakeKvmTdx : public ::testing::Test {
 protected:
  void SetUp() override { fake_kvm_reset(nullptr); }
  void TearDown() override {
    if (vm_) tkvm_destroy(vm_);
    EXPECT_EQ(fake_kvm_counters()->unhandled_ioctls, 0u) << "the fake met an ioctl it does not model";
  }
  tkvm_vm* build(const tkvm_config& c) {
    errno = 0;
    vm_ = tkvm_create(&c, why_, sizeof(why_));
    err_ = vm_ ? 0 : errno;
    return vm_;
  }
  tkvm_vm* vm_ = nullptr;
  int err_ = 0;
  char why_[512] = "";
};

// The whole lifecycle on the series' host (vm_memory_attributes=N): build with a build page,
// boot, #VE on a PENDING page, accept, private data, MapGPA to shared, shared data.
TEST_F(FakeKvmTdx, TdLifecycleBuildBootAcceptConvertAccess) {
  tkvm_config c = td_config();
  const uint64_t build_gfn = 5;
  c.nbuild = 1;
  c.build_gfns = &build_gfn;
  ASSERT_NE(build(c), nullptr) << why_ << " / fake: " << fake_kvm_last_refusal();
  EXPECT_EQ(fake_kvm_counters()->finalize_calls, 1u);

  tkvm_guest_result res{};
  ASSERT_EQ(tkvm_guest_access(vm_, build_gfn, false, 0, &res), 0);
  EXPECT_FALSE(res.ve);
  EXPECT_EQ(res.value, 0xADD0000000000000ULL | build_gfn) << "TDH.MEM.PAGE.ADD content";

  ASSERT_EQ(tkvm_guest_access(vm_, 9, true, 0x1234, &res), 0);
  EXPECT_TRUE(res.ve) << "an unaccepted private page gives #VE (SEPT_VE_DISABLE clear)";
  ASSERT_EQ(tkvm_guest_accept(vm_, 9, TDXHP_ACCEPT_4K, &res), 0);
  EXPECT_EQ(res.tdx_status, TDXHP_TDX_SUCCESS);
  ASSERT_EQ(tkvm_guest_access(vm_, 9, true, 0x1234, &res), 0);
  EXPECT_FALSE(res.ve);
  ASSERT_EQ(tkvm_guest_access(vm_, 9, false, 0, &res), 0);
  EXPECT_EQ(res.value, 0x1234u);

  ASSERT_EQ(tkvm_guest_map_gpa(vm_, 0x10, 0x10, false, &res), 0) << "MapGPA to shared";
  EXPECT_EQ(res.tdx_status, 0u);
  EXPECT_GE(fake_kvm_counters()->hypercall_exits, 1u);
  EXPECT_EQ(fake_kvm_attr(kGpaBase + 0x10 * 4096), 0);
  ASSERT_EQ(tkvm_guest_access(vm_, 0x10, true, 0xfeed, &res), 0);
  ASSERT_EQ(tkvm_guest_access(vm_, 0x10, false, 0, &res), 0);
  EXPECT_EQ(res.value, 0xfeedu);
  EXPECT_FALSE(tkvm_vm_dead(vm_));
}

// Review bug 1 (A): with vm_memory_attributes=N the VM ioctl is -ENOTTY; the TD must build
// through the guest_memfd's KVM_SET_MEMORY_ATTRIBUTES2 and never try the VM ioctl.
TEST_F(FakeKvmTdx, BugA_VmMemoryAttributesNBuildsThroughGuestMemfdAttributes) {
  ASSERT_NE(build(td_config()), nullptr) << why_ << " / fake: " << fake_kvm_last_refusal();
  EXPECT_EQ(fake_kvm_counters()->vm_attr_ioctls, 0u);
  EXPECT_GT(fake_kvm_counters()->gmem_attr_ioctls, 0u);
  EXPECT_EQ(fake_kvm_attr(kGpaBase), 1) << "initially_private reached KVM";
}

// The other host mode still works: vm_memory_attributes=Y keeps per-VM attributes.
TEST_F(FakeKvmTdx, BugA_VmMemoryAttributesYKeepsTheVmIoctl) {
  fake_kvm_host h = fake_kvm_defaults();
  h.vm_memory_attributes = true;
  fake_kvm_reset(&h);
  ASSERT_NE(build(td_config()), nullptr) << why_ << " / fake: " << fake_kvm_last_refusal();
  EXPECT_GT(fake_kvm_counters()->vm_attr_ioctls, 0u);
  EXPECT_EQ(fake_kvm_counters()->gmem_attr_ioctls, 0u);
}

// Review risk 1 / issue item 2: Config backing hugetlb_2m makes the test slot a hugetlb 2M
// guest_memfd, so a 2M accept maps a 2M private leaf (pages_2m can move).
TEST_F(FakeKvmTdx, Item2_Hugetlb2MBackingGivesA2MPrivateLeaf) {
  ASSERT_NE(build(td_config(TKVM_BACK_HUGETLB_2M)), nullptr) << why_ << " / fake: " << fake_kvm_last_refusal();
  EXPECT_EQ(fake_kvm_counters()->last_gmem_flags, FAKE_GMEM_HUGETLB | FAKE_GMEM_HUGETLB_2MB);
  tkvm_guest_result res{};
  ASSERT_EQ(tkvm_guest_accept(vm_, kGfnIn2M, TDXHP_ACCEPT_2M, &res), 0);
  EXPECT_EQ(res.tdx_status, TDXHP_TDX_SUCCESS);
  EXPECT_EQ(fake_kvm_leaf_level(kGpaBase + kGfnIn2M * 4096), 1) << "2M private leaf";
}

// INV-LEVELCAP on the same backing: with tdx_huge_page=N KVM maps 4K only, so the 2M accept
// meets a 4K leaf and the module answers TDX_PAGE_SIZE_MISMATCH|2M.
TEST_F(FakeKvmTdx, Item2_TdxHugePageNKeepsPrivateMemory4K) {
  fake_kvm_host h = fake_kvm_defaults();
  h.tdx_huge_page = false;
  fake_kvm_reset(&h);
  ASSERT_NE(build(td_config(TKVM_BACK_HUGETLB_2M)), nullptr) << why_;
  tkvm_guest_result res{};
  ASSERT_EQ(tkvm_guest_accept(vm_, kGfnIn2M, TDXHP_ACCEPT_2M, &res), 0);
  EXPECT_EQ(res.tdx_status, TDXHP_TDX_PAGE_SIZE_MISMATCH | TDXHP_ACCEPT_2M);
  EXPECT_EQ(fake_kvm_leaf_level(kGpaBase + kGfnIn2M * 4096), 0);
}

// hugetlb 1G backing: GUESTMEM_HUGETLB_FLAG_1GB, the file sized in whole 1G pages.
TEST_F(FakeKvmTdx, Item2_Hugetlb1GBackingUsesThe1GFlag) {
  ASSERT_NE(build(td_config(TKVM_BACK_HUGETLB_1G)), nullptr) << why_ << " / fake: " << fake_kvm_last_refusal();
  EXPECT_EQ(fake_kvm_counters()->last_gmem_flags, FAKE_GMEM_HUGETLB | FAKE_GMEM_HUGETLB_1GB);
}

// Issue item 2: in place, the shared side is the guest_memfd itself (mmap'd), as the
// series' selftest does with GUEST_MEMFD_FLAG_MMAP | HUGETLB | 2MB.
TEST_F(FakeKvmTdx, Item2_InPlaceHugetlbSharedDataLivesInTheGuestMemfd) {
  ASSERT_NE(build(td_config(TKVM_BACK_HUGETLB_2M, true, false)), nullptr)
      << why_ << " / fake: " << fake_kvm_last_refusal();
  EXPECT_EQ(fake_kvm_counters()->last_gmem_flags,
            FAKE_GMEM_HUGETLB | FAKE_GMEM_HUGETLB_2MB | FAKE_GMEM_MMAP);
  tkvm_guest_result res{};
  ASSERT_EQ(tkvm_guest_access(vm_, 3, true, 0xabcdef, &res), 0);
  uint64_t v = 0;
  ASSERT_EQ(pread(tkvm_gmem_fd(vm_, 1), &v, sizeof(v), 3 * 4096), static_cast<ssize_t>(sizeof(v)));
  EXPECT_EQ(v, 0xabcdefu) << "the shared write landed in the guest_memfd file";
}

// Issue item 2: a backing the host cannot give is a refusal naming the flag, never 4K.
TEST_F(FakeKvmTdx, Item2_MissingHugetlbFlagIsARefusalNamingIt) {
  fake_kvm_host h = fake_kvm_defaults();
  h.gmem_flags &= ~FAKE_GMEM_HUGETLB;
  fake_kvm_reset(&h);
  EXPECT_EQ(build(td_config(TKVM_BACK_HUGETLB_2M)), nullptr);
  EXPECT_EQ(err_, EOPNOTSUPP);
  EXPECT_NE(std::string(why_).find("GUEST_MEMFD_FLAG_HUGETLB"), std::string::npos) << why_;
}

// The series disables TDX huge pages with per-VM attributes (seed L9806-9813): a hugetlb
// backing on a vm_memory_attributes=Y host is a refusal naming that, not a silent 4K run.
TEST_F(FakeKvmTdx, Item2_HugetlbWithPerVmAttributesIsARefusalNamingIt) {
  fake_kvm_host h = fake_kvm_defaults();
  h.vm_memory_attributes = true;
  fake_kvm_reset(&h);
  EXPECT_EQ(build(td_config(TKVM_BACK_HUGETLB_2M)), nullptr);
  EXPECT_EQ(err_, EOPNOTSUPP);
  EXPECT_NE(std::string(why_).find("vm_memory_attributes=N"), std::string::npos) << why_;
}

// Review bug 2 (B): a 1G accept never reaches the module (it takes 4K and 2M only); the
// guest reports TDX_OPERAND_INVALID itself.
TEST_F(FakeKvmTdx, BugB_OneGAcceptNeverReachesTheModule) {
  ASSERT_NE(build(td_config()), nullptr) << why_;
  tkvm_guest_result res{};
  ASSERT_EQ(tkvm_guest_accept(vm_, 0, TDXHP_ACCEPT_1G, &res), 0);  // gpa 4 GiB: 1G-aligned
  EXPECT_EQ(res.tdx_status, TDXHP_TDX_OPERAND_INVALID | TDXHP_TDX_OPERAND_ID_RCX);
  EXPECT_EQ(fake_kvm_counters()->accept_tdcalls[TDXHP_ACCEPT_1G], 0u);
}

// Review bug 3 (C): a TD that fails to build on a TDX host is a failure with the ioctl, its
// errno and the TD state, and the worker passes that errno on (lockstep: FAIL, not SKIP).
TEST_F(FakeKvmTdx, BugC_InitVmFailureNamesIoctlErrnoAndTdState) {
  fake_kvm_host h = fake_kvm_defaults();
  h.fail_init_vm = EINVAL;
  fake_kvm_reset(&h);
  EXPECT_EQ(build(td_config()), nullptr);
  EXPECT_EQ(err_, EINVAL);
  const std::string w = why_;
  EXPECT_NE(w.find("KVM_TDX_INIT_VM"), std::string::npos) << w;
  EXPECT_NE(w.find("errno 22"), std::string::npos) << w;
  EXPECT_NE(w.find("TD state: created"), std::string::npos) << w;
}

TEST_F(FakeKvmTdx, BugC_WorkerReportsTheBuildErrnoNotARefusal) {
  fake_kvm_host h = fake_kvm_defaults();
  h.fail_init_vm = EINVAL;
  fake_kvm_reset(&h);
  tdxhp::kvm::Worker w;
  std::string why;
  EXPECT_EQ(w.start(td_config(), std::chrono::seconds(60), &why), -EINVAL) << why;
  EXPECT_NE(why.find("KVM_TDX_INIT_VM"), std::string::npos) << why;
}

// Review bug 4 (B2): a 4K accept inside an ACCEPTED 2M leaf is TDX_PAGE_ALREADY_ACCEPTED|4K
// with no exit and no split (module :63, :199); the flavour reports that status as is. (The
// sim/oracle side of B2 is not in runners/kvm.)
TEST_F(FakeKvmTdx, BugB2_FourKAcceptInsideAccepted2MLeafIsAlreadyAcceptedWithoutSplit) {
  ASSERT_NE(build(td_config(TKVM_BACK_HUGETLB_2M)), nullptr) << why_;
  tkvm_guest_result res{};
  ASSERT_EQ(tkvm_guest_accept(vm_, kGfnIn2M, TDXHP_ACCEPT_2M, &res), 0);
  ASSERT_EQ(res.tdx_status, TDXHP_TDX_SUCCESS);
  ASSERT_EQ(tkvm_guest_accept(vm_, kGfnIn2M + 1, TDXHP_ACCEPT_4K, &res), 0);
  EXPECT_EQ(res.tdx_status, TDXHP_TDX_PAGE_ALREADY_ACCEPTED | TDXHP_ACCEPT_4K);
  EXPECT_EQ(fake_kvm_leaf_level(kGpaBase + (kGfnIn2M + 1) * 4096), 1) << "no split";
}

// Latent (review 2f): GPAW is KVM's, not a forced 48. libkvm caches KVM's CPUID per process,
// so this runs in a fresh one (threadsafe death-test style re-executes the binary).
TEST_F(FakeKvmTdx, Latent_GpawIsTakenFromKvm) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_EXIT(
      {
        fake_kvm_host h = fake_kvm_defaults();
        h.guest_pa_bits = 52;
        fake_kvm_reset(&h);
        tkvm_config c = td_config();
        char why[512];
        tkvm_vm* vm = tkvm_create(&c, why, sizeof(why));
        tkvm_guest_result res{};
        bool ok = vm && fake_kvm_counters()->shared_bit_log2 == 51 &&
                  tkvm_guest_map_gpa(vm, 0x10, 1, false, &res) == 0 && res.tdx_status == 0;
        _exit(ok ? 0 : 1);
      },
      ::testing::ExitedWithCode(0), "");
}

// Latent (review 2f): a vCPU MAXPHYADDR below the GPAW would make MapGPA-to-shared fail
// without an exit; the build says so instead.
TEST_F(FakeKvmTdx, Latent_MaxPhyAddrBelowGpawFailsTheBuildNamingIt) {
  fake_kvm_host h = fake_kvm_defaults();
  h.td_maxphyaddr = 46;  // the module's vCPU CPUID; KVM's supported CPUID stays 52
  fake_kvm_reset(&h);
  EXPECT_EQ(build(td_config()), nullptr);
  EXPECT_NE(std::string(why_).find("MAXPHYADDR"), std::string::npos) << why_;
  EXPECT_NE(err_, EOPNOTSUPP);
}

// Latent (review 2k): FINALIZE -EBUSY is transient and retried.
TEST_F(FakeKvmTdx, Latent_FinalizeBusyIsRetried) {
  fake_kvm_host h = fake_kvm_defaults();
  h.finalize_busy = 3;
  fake_kvm_reset(&h);
  ASSERT_NE(build(td_config()), nullptr) << why_;
  EXPECT_EQ(fake_kvm_counters()->finalize_calls, 4u);
}

// Latent (review 5c): a memory-fault exit is answered by converting and resuming, as the
// series' tdx_vm_huge_page test does; the TD stays usable.
TEST_F(FakeKvmTdx, Latent_MemoryFaultExitConvertsAndResumes) {
  ASSERT_NE(build(td_config()), nullptr) << why_;
  const uint64_t gfn = 8, gpa = kGpaBase + gfn * 4096;
  fake_kvm_force_attr(gpa, false);  // KVM says shared, the flavour's record says private
  tkvm_guest_result res{};
  EXPECT_EQ(tkvm_guest_access(vm_, gfn, true, 1, &res), 0);
  EXPECT_EQ(fake_kvm_counters()->memory_fault_exits, 1u);
  EXPECT_EQ(fake_kvm_attr(gpa), 1) << "converted to what the guest used";
  EXPECT_TRUE(res.ve) << "then the access reached the PENDING page";
  EXPECT_FALSE(tkvm_vm_dead(vm_));
}

// Latent (review 6d): tearing down a KVM_BUG_ON'd TD must not assert in kvm_vm_free.
TEST_F(FakeKvmTdx, Latent_DeadTdTearsDownWithoutAsserting) {
  ASSERT_NE(build(td_config()), nullptr) << why_;
  fake_kvm_kill_vm();
  tkvm_guest_result res{};
  EXPECT_EQ(tkvm_guest_access(vm_, 1, false, 0, &res), -EIO);
  EXPECT_TRUE(tkvm_vm_dead(vm_));
  tkvm_vm* vm = vm_;
  vm_ = nullptr;
  EXPECT_EXIT(
      {
        tkvm_destroy(vm);
        _exit(0);
      },
      ::testing::ExitedWithCode(0), "");
}

// Build-order rules the fake enforces are met even when KVM interrupts INIT_MEM_REGION.
TEST_F(FakeKvmTdx, InitMemRegionInterruptedIsResumed) {
  fake_kvm_host h = fake_kvm_defaults();
  h.init_mem_chunk = 3;
  fake_kvm_reset(&h);
  ASSERT_NE(build(td_config()), nullptr) << why_ << " / fake: " << fake_kvm_last_refusal();
}

// `tdxhp caps`: the backing plan says what the flavour uses on this (fake) host, and why.
TEST_F(FakeKvmTdx, BackingPlanNamesAttributesOwnerAndHugetlb) {
  tkvm_host h;
  tkvm_probe_host(&h);
  char plan[600];
  tkvm_tdx_backing_plan(&h, plan, sizeof(plan));
  const std::string p = plan;
  EXPECT_NE(p.find("guest_memfd-owned"), std::string::npos) << p;
  EXPECT_NE(p.find("hugetlb 2M"), std::string::npos) << p;
  EXPECT_NE(p.find("in-place conversion (shared side = the mmap'd guest_memfd): yes"), std::string::npos) << p;
}

}  // namespace
