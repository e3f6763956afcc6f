// The tdx flavour end to end on a real TD: boot, build pages, #VE on a PENDING page, accept,
// data, MapGPA conversion, and the shared alias. On a host without TDX every test SKIPs with
// probe()'s reason (this CI host: kvm_pvm), so none of this has run on hardware yet.
#include <gtest/gtest.h>

#include <cerrno>

#include "runners/kvm/kvm_target.h"

namespace tdxhp::kvm {
namespace {

// One 4 MiB slot (2M aligned), private, with one build page at gfn 0x10.
Config td_config() {
  Config c;
  c.backing = BackingKind::Page4K;
  c.shared_backing = BackingKind::Page4K;
  c.initially_private = true;
  c.slots.push_back(Memslot{0, 0x200, 1024, 0, 0});
  c.build_pages.push_back(GfnRange{0x210, 1});
  return c;
}

std::unique_ptr<Target> td_or_skip(std::string* why) { return make_target("tdx", why); }

TEST(KvmTdx, AbsentHostSaysWhy) {
  std::string why;
  auto t = td_or_skip(&why);
  if (t) GTEST_SKIP() << "this host runs TDs; the other tests cover it";
  EXPECT_NE(why.find("kvm/tdx: "), std::string::npos) << why;
  EXPECT_TRUE(why.find("KVM_X86_TDX_VM") != std::string::npos || why.find("kvm_intel.tdx") != std::string::npos ||
              why.find("/dev/kvm") != std::string::npos)
      << why;
}

TEST(KvmTdx, BuildPageIsAcceptedWithItsContent) {
  std::string why;
  auto t = td_or_skip(&why);
  if (!t) GTEST_SKIP() << why;
  ASSERT_EQ(t->setup(td_config(), &why), 0) << why;
  Outcome r = t->apply(Access{0x210, false, 0});
  ASSERT_EQ(r.err, 0) << r.note;
  EXPECT_FALSE(r.ve) << "a build page is ACCEPTED (SEMANTICS.md Setup 2)";
  EXPECT_EQ(r.read, 0xADD0000000000000ULL | 0x210);
  t->teardown();
}

TEST(KvmTdx, PendingPageGivesVeUntilAccepted) {
  std::string why;
  auto t = td_or_skip(&why);
  if (!t) GTEST_SKIP() << why;
  ASSERT_EQ(t->setup(td_config(), &why), 0) << why;
  Outcome r = t->apply(Access{0x300, true, 42});
  ASSERT_EQ(r.err, 0) << r.note;
  EXPECT_TRUE(r.ve) << "first touch AUGs a PENDING page";
  r = t->apply(Accept{0x300, Level::L4K});
  ASSERT_EQ(r.err, 0) << r.note;
  EXPECT_EQ(r.tdx_status, tdx::kSuccess);
  r = t->apply(Accept{0x300, Level::L4K});
  EXPECT_EQ(r.tdx_status, tdx::kPageAlreadyAccepted);
  r = t->apply(Access{0x300, false, 0});
  ASSERT_EQ(r.err, 0) << r.note;
  EXPECT_FALSE(r.ve);
  EXPECT_EQ(r.read, 0u) << "an accepted page reads zero";
  ASSERT_EQ(t->apply(Access{0x300, true, 0x5eed}).err, 0);
  EXPECT_EQ(t->apply(Access{0x300, false, 0}).read, 0x5eedu);
  EXPECT_EQ(t->apply(Accept{0x301, Level::L2M}).tdx_status, tdx::kOperandInvalid) << "misaligned 2M";
  t->teardown();
}

TEST(KvmTdx, MapGpaToSharedThenSharedAliasHoldsData) {
  std::string why;
  auto t = td_or_skip(&why);
  if (!t) GTEST_SKIP() << why;
  ASSERT_EQ(t->setup(td_config(), &why), 0) << why;
  Outcome r = t->apply(MapGpa{GfnRange{0x400, 512}, Attr::Shared});
  ASSERT_EQ(r.err, 0) << r.note;
  r = t->apply(Access{0x401, true, 77});
  ASSERT_EQ(r.err, 0) << r.note;
  EXPECT_FALSE(r.ve) << "shared memory has no accept state";
  EXPECT_EQ(t->apply(Access{0x401, false, 0}).read, 77u);
  EXPECT_EQ(t->apply(Accept{0x401, Level::L4K}).err, -EFAULT) << "accept of a shared gfn";
  EXPECT_EQ(t->apply(MapGpa{GfnRange{0x5ff, 2}, Attr::Private}).err, -EINVAL) << "crosses the slot end";
  t->teardown();
}

}  // namespace
}  // namespace tdxhp::kvm
