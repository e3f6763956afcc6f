// The tracefs side on this host: records from a real VM are read back through
// libtracefs/libtraceevent and decoded. Whether it may SKIP is decided from host facts before
// the VM runs (no TDP MMU, so no LeafLevels: kvm_pvm on the CI host), never from an empty
// result: on a host with a TDP MMU zero records is the silent-observer failure (issue 13).
#include <gtest/gtest.h>

#include "runners/kvm/kvm_target.h"
#include "runners/kvm/observers/mmu_trace.h"

namespace tdxhp::kvm {
namespace {

TEST(MmuTraceLive, GuestWriteShowsUpAsASetSpteRecordForItsGfn) {
  std::string why;
  MmuTrace trace;
  if (!trace.open(&why)) GTEST_SKIP() << why;
  auto t = make_target("plain", &why);
  if (!t) GTEST_SKIP() << why;
  const Caps caps = t->caps();
  if (!caps(Cap::LeafLevels)) GTEST_SKIP() << caps.missing.at(Cap::LeafLevels);
  Config c;
  c.backing = BackingKind::Page4K;
  c.shared_backing = BackingKind::Page4K;  // a plain VM's only memory
  c.slots.push_back(Memslot{0, 0x200, 1024, 0, 0});
  ASSERT_EQ(t->setup(c, &why), 0) << why;
  trace.drain([](const SpteEvent&) {});  // VM build noise
  ASSERT_EQ(t->apply(Access{0x321, true, 7}).err, 0);
  const uint64_t want = ((1ULL << 32) >> 12) + 0x321;
  int hits = 0, total = 0;
  ASSERT_GE(trace.drain([&](const SpteEvent& e) {
    ++total;
    if (e.kind == SpteEvent::SetSpte && e.gfn == want && e.level >= 1) ++hits;
  }), 0);
  t->teardown();
  ASSERT_GT(total, 0) << "a TDP MMU host sent no kvmmmu record for a guest write: the leaf observer is blind";
  EXPECT_GE(hits, 1) << total << " kvmmmu records, none a set_spte for kvm gfn 0x" << std::hex << want;
  EXPECT_EQ(trace.overruns(), 0u);
}

}  // namespace
}  // namespace tdxhp::kvm
