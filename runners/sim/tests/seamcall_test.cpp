// One test per SEAMCALL / ioctl error path of the sim, each citing the seed line it follows.
#include <gtest/gtest.h>

#include <cerrno>

#include "runners/sim/tests/sim_test_util.h"

namespace tdxhp::simtest {
namespace {

constexpr Gfn kBase = 0x100000;  // 4 GiB, 1G-aligned

Config td(BackingKind b = BackingKind::Hugetlb2M) {
  Config c;
  c.slots = {Memslot{0, kBase, 0x1000, 0, 0}};  // 16 MiB
  c.backing = b;
  return c;
}

// A 2M private leaf at kBase, then a 4K accept inside it forces the split (L230-243).
std::vector<Op> map_2m_then_accept_4k() {
  return {Access{kBase, false, 0}, Accept{kBase + 1, Level::L4K}};
}

bool has_line(const SimRun& r, const std::string& needle) { return r.events.find(needle) != std::string::npos; }

TEST(Seamcall, DemoteBusyIsKickedAndRetriedOnce) {  // L1580-1589, seed 004
  Scenario s{td(), {Inject{FaultSite::Demote, tdx::kOperandBusy, 1}}};
  for (auto& op : map_2m_then_accept_4k()) s.ops.push_back(op);
  SimRun r = run(s);
  EXPECT_FALSE(r.bug_on) << r.events;
  EXPECT_EQ(r.outcomes.back().tdx_status, tdx::kSuccess);
  EXPECT_EQ(private_level(r, kBase + 1), 0);
  EXPECT_TRUE(has_line(r, "kick")) << r.events;
}

TEST(Seamcall, BlockBusyIsKickedAndRetriedOnce) {  // L1604-1607
  Scenario s{td(), {Inject{FaultSite::Block, tdx::kOperandBusy, 1}}};
  for (auto& op : map_2m_then_accept_4k()) s.ops.push_back(op);
  SimRun r = run(s);
  EXPECT_FALSE(r.bug_on) << r.events;
  EXPECT_EQ(private_level(r, kBase + 1), 0);
}

TEST(Seamcall, TrackBusyIsKickedAndRetriedOnce) {  // tdx_track inside the split (L1609)
  Scenario s{td(), {Inject{FaultSite::Track, tdx::kOperandBusy, 1}}};
  for (auto& op : map_2m_then_accept_4k()) s.ops.push_back(op);
  SimRun r = run(s);
  EXPECT_FALSE(r.bug_on) << r.events;
  EXPECT_EQ(private_level(r, kBase + 1), 0);
}

TEST(Seamcall, DemoteBusyWithoutRetryKillsTheTd) {  // MUT-NO-BUSY-RETRY, seed 004
  Scenario s{td(), {Inject{FaultSite::Demote, tdx::kOperandBusy, 1}}};
  for (auto& op : map_2m_then_accept_4k()) s.ops.push_back(op);
  s.ops.push_back(Access{kBase + 2, false, 0});
  SimRun r = run(s, {"MUT-NO-BUSY-RETRY"});
  EXPECT_TRUE(r.bug_on);
  EXPECT_EQ(r.outcomes.back().err, -EIO);
}

TEST(Seamcall, InterruptedRestartableIsNotRetried) {  // L14243-14250: KVM_BUG_ON, TD dead
  Scenario s{td(), {Inject{FaultSite::Demote, tdx::kInterruptedRestartable, 3}}};
  for (auto& op : map_2m_then_accept_4k()) s.ops.push_back(op);
  s.ops.push_back(Access{kBase, false, 0});
  SimRun r = run(s);
  EXPECT_TRUE(r.bug_on);
  EXPECT_EQ(r.outcomes.back().err, -EIO);
  EXPECT_EQ(r.observations[3].internals->restart_retries, 0u);
  SimRun loop = run(s, {"MUT-RESTART-LOOP"});
  EXPECT_EQ(loop.observations[3].internals->restart_retries, 3u);
}

TEST(Seamcall, DemoteWithoutBit51IsSwError) {  // L826: tdh_mem_page_demote returns TDX_SW_ERROR
  Config c = td();
  c.features.enhanced_demote_interruptibility = false;
  Scenario s{c, map_2m_then_accept_4k()};
  SimRun clean = run(s);
  EXPECT_FALSE(clean.bug_on);  // 4K only, DEMOTE never issued (SC-OLD-MODULE)
  EXPECT_EQ(clean.events.find("DEMOTE"), std::string::npos);
  SimRun gate = run(s, {"MUT-NO-FEATURE-GATE"});
  EXPECT_TRUE(gate.bug_on);
  EXPECT_TRUE(has_line(gate, "TDX_SW_ERROR")) << gate.events;
}

TEST(Seamcall, FailedDemotePutsTheNewSeptPagePamtPair) {  // L4255
  Config c = td();
  c.features.dynamic_pamt = true;
  Scenario s{c, {Inject{FaultSite::Demote, tdx::kInterruptedRestartable, 1}}};
  for (auto& op : map_2m_then_accept_4k()) s.ops.push_back(op);
  SimRun r = run(s);
  EXPECT_TRUE(r.bug_on);
  EXPECT_EQ(r.after_teardown.internals->pamt_pages_in_use, r.after_teardown.internals->pamt_pages_baseline);
  SimRun leak = run(s, {"MUT-PAMT-LEAK"});
  EXPECT_GT(leak.after_teardown.internals->pamt_pages_in_use, leak.after_teardown.internals->pamt_pages_baseline);
}

TEST(Seamcall, DemoteSetsGuestPamtRefcountTo512) {  // L4311: atomic_cmpxchg(0 -> PTRS_PER_PMD)
  Config c = td();
  c.features.dynamic_pamt = true;
  SimRun r = run({c, map_2m_then_accept_4k()});
  bool saw512 = false;
  for (auto& p : r.observations.back().internals->pamt_changes) saw512 = saw512 || p.refcount == 512;
  EXPECT_TRUE(saw512);
  EXPECT_EQ(r.after_teardown.internals->pamt_pages_in_use, 0u);
}

TEST(Seamcall, SplitCacheTopupEnomemFailsTheConversion) {  // L3661-3671, L3096
  Scenario s{td(), {Access{kBase, false, 0}, Accept{kBase, Level::L2M}, Access{kBase + 5, true, 0x55},
                    Inject{FaultSite::SplitCacheTopup, 0, 1}, Convert{{kBase + 1, 1}, Attr::Shared},
                    Access{kBase + 5, false, 0}}};
  SimRun r = run(s);
  EXPECT_EQ(r.outcomes[4].err, -ENOMEM);
  EXPECT_EQ(r.outcomes[5].read.value_or(0), 0x55u);
  EXPECT_EQ(private_level(r, kBase), 1);
}

// L3474-3518, L12482-12512. The race that breaks it (MUT-CACHE-RACE) needs vCPU 1 at the
// mmu_lock drop: interleaving_test.cpp.
TEST(Seamcall, SplitCacheNeverGoesBelowMinimum) {
  Config c = td();
  c.features.dynamic_pamt = true;
  SimRun r = run({c, map_2m_then_accept_4k()});
  EXPECT_EQ(r.observations.back().internals->split_cache_underflows, 0u);
  EXPECT_EQ(r.observations.back().internals->split_cache_min, 4u);  // 2 PAMT pairs (L3781-3824)
  EXPECT_GE(r.observations.back().internals->split_cache_count, 4u);
}

TEST(Accept, SizeMismatchCarriesTheLevel) {  // DOMAIN.md 3: 0xC0000B0B00000000 | level
  Scenario s{td(), {Accept{kBase, Level::L4K}, Accept{kBase, Level::L2M}}};
  SimRun r = run(s);
  EXPECT_EQ(r.outcomes[1].tdx_status, tdx::kPageSizeMismatch | 1);
}

TEST(Accept, SecondAcceptIsAlreadyAccepted) {  // L230-277: equal level, no exit
  SimRun r = run({td(), {Access{kBase, false, 0}, Accept{kBase, Level::L2M}, Accept{kBase, Level::L2M}}});
  EXPECT_EQ(r.outcomes[1].tdx_status, tdx::kSuccess);
  EXPECT_EQ(r.outcomes[2].tdx_status, tdx::kPageAlreadyAccepted | 1);  // ORed with the leaf's level
}

TEST(Accept, MisalignedIsOperandInvalid) {
  SimRun r = run({td(), {Accept{kBase + 1, Level::L2M}}});
  EXPECT_EQ(r.outcomes[0].tdx_status, tdx::kOperandInvalid | tdx::kOperandIdRcx);
}

TEST(Accept, FourKOverTwoMSplitsAndInhibits) {  // L2444-2503
  SimRun r = run({td(), map_2m_then_accept_4k()});
  EXPECT_EQ(r.outcomes[1].tdx_status, tdx::kSuccess);
  EXPECT_EQ(private_level(r, kBase), 0);
  EXPECT_EQ(private_level(r, kBase + 511), 0);
  EXPECT_GE(r.observations.back().internals->guest_inhibit_blocks, 1u);
}

TEST(Gmem, FolioSplitEnomemLeavesDataIntact) {  // L4507-4510, L6560-6569
  Config c = td();
  c.attr_mode = AttrMode::InPlace;
  Scenario s{c, {Access{kBase, false, 0}, Accept{kBase, Level::L2M}, Access{kBase + 1, true, 7},
                 Inject{FaultSite::FolioSplit, 0, 1}, Convert{{kBase + 1, 1}, Attr::Shared},
                 Access{kBase + 1, false, 0}}};
  SimRun r = run(s);
  EXPECT_EQ(r.outcomes[4].err, -ENOMEM);
  EXPECT_EQ(r.outcomes[5].read.value_or(0), 7u);
}

// L9600-9610: guest_memfd checks for folio users (pins) only when shared memory becomes private.
TEST(Gmem, PinnedConversionToPrivateIsEagain) {
  Config c = td();
  c.attr_mode = AttrMode::InPlace;
  SimRun r = run({c, {Access{kBase, false, 0}, Pin{{kBase, 1}}, Convert{{kBase, 1}, Attr::Shared},
                      Convert{{kBase, 1}, Attr::Private}, Unpin{{kBase, 1}}, Convert{{kBase, 1}, Attr::Private}}});
  EXPECT_EQ(r.outcomes[2].err, 0);
  EXPECT_EQ(r.outcomes[3].err, -EAGAIN);
  EXPECT_EQ(r.outcomes[5].err, 0);
}

TEST(Gmem, UnalignedPunchOnHugetlbIsEinval) {  // L12324-12328
  SimRun r = run({td(), {Access{kBase, false, 0}, PunchHole{{kBase + 1, 1}}, PunchHole{{kBase, 512}}}});
  EXPECT_EQ(r.outcomes[1].err, -EINVAL);
  EXPECT_EQ(r.outcomes[2].err, 0);
  EXPECT_EQ(private_level(r, kBase), -1);
}

TEST(Ioctl, DeadTdReturnsEio) {  // KVM_BUG_ON marks the VM dead
  Scenario s{td(), {Inject{FaultSite::Demote, tdx::kInterruptedRestartable, 1}}};
  for (auto& op : map_2m_then_accept_4k()) s.ops.push_back(op);
  s.ops.push_back(Convert{{kBase, 1}, Attr::Shared});
  SimRun r = run(s);
  EXPECT_EQ(r.outcomes.back().err, -EIO);
}

}  // namespace
}  // namespace tdxhp::simtest
