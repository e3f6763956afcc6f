// vCPU 1's queued guest ops and the mmu_lock drop for the split-cache top-up (SEMANTICS.md
// "Queued guest ops"; seed 001 L3474-3518, L12467-12524). sim_test_util's run() plays the
// engine: it holds queued ops and applies them inside the sim's drop hook.
#include <gtest/gtest.h>

#include <cerrno>

#include "runners/sim/sim_target.h"
#include "runners/sim/tests/sim_test_util.h"

namespace tdxhp::simtest {
namespace {

constexpr Gfn kBase = 0x100000;

Config td(bool dpamt = true) {
  Config c;
  c.slots = {Memslot{0, kBase, 0x1000, 0, 0}};
  c.backing = BackingKind::Hugetlb2M;
  c.features.dynamic_pamt = dpamt;
  return c;
}

// Two 2M private leaves A = [kBase, +0x200) and B = [kBase + 0x200, +0x200).
Op two_2m_leaves() { return Prefault{{kBase, 0x400}}; }
// Splits A at its head boundary: the host's top-up drops mmu_lock (L3474-3518).
Op convert_in_a() { return Convert{{kBase + 1, 1}, Attr::Shared}; }

size_t count(const std::string& hay, const std::string& needle) {
  size_t n = 0;
  for (size_t p = hay.find(needle); p != std::string::npos; p = hay.find(needle, p + 1)) ++n;
  return n;
}

TEST(Queued, OwnStepDoesNothingAndSaysQueued) {
  auto t = make_sim_target();
  std::string why;
  ASSERT_EQ(t->setup(td(), &why), 0);
  t->observe();
  Outcome o = t->apply(Accept{kBase, Level::L2M, true});
  EXPECT_EQ(o.err, 0);
  EXPECT_EQ(o.tdx_status, 0u);
  EXPECT_EQ(o.note, "queued on vCPU 1");
  Observation ob = t->observe();
  EXPECT_TRUE(ob.events.empty());
  EXPECT_TRUE(ob.leaf_windows.empty());
}

TEST(Queued, RunsAtTheFirstMmuLockDropOfTheNextOp) {
  SimRun r = run({td(), {two_2m_leaves(), Accept{kBase + 0x201, Level::L4K, true}, convert_in_a()}});
  ASSERT_EQ(r.vcpu1.size(), 1u);
  EXPECT_EQ(r.vcpu1[0].op, 1u);
  EXPECT_EQ(r.vcpu1[0].during, 2u);
  EXPECT_TRUE(r.vcpu1[0].at_drop);
  EXPECT_EQ(r.vcpu1[0].outcome.tdx_status, tdx::kSuccess);
  EXPECT_EQ(r.drop_hook_calls[2], 1);
  EXPECT_NE(r.events.find("vCPU 1 runs guest accepts gfn 0x100201 at 4K while convert"), std::string::npos) << r.events;
  EXPECT_EQ(r.outcomes[2].err, 0);
  EXPECT_EQ(private_level(r, kBase + 0x201), 0);
  EXPECT_EQ(private_level(r, kBase), 0);
}

TEST(Queued, RunsRightAfterAnOpThatNeverDropsTheLock) {
  // A 2M-aligned conversion splits nothing, so there is no top-up and no drop point.
  SimRun r = run({td(), {two_2m_leaves(), Accept{kBase + 0x201, Level::L4K, true},
                         Convert{{kBase, 0x200}, Attr::Shared}}});
  EXPECT_EQ(r.drop_hook_calls[2], 0);
  ASSERT_EQ(r.vcpu1.size(), 1u);
  EXPECT_FALSE(r.vcpu1[0].at_drop);
  EXPECT_EQ(r.vcpu1[0].outcome.tdx_status, tdx::kSuccess);
}

// A fault inside the op's invalidation range retries until the op ends
// (mmu_invalidate_in_progress, R2). The accept exit's split and GUEST_INHIBIT come before the
// fault, so they happen at the drop point; the TDCALL runs again after the conversion and
// then finds the page shared.
TEST(Queued, FaultInsideTheInvalidationRangeRunsAfterTheOp) {
  SimRun r = run({td(), {two_2m_leaves(), Accept{kBase + 1, Level::L4K, true}, convert_in_a()}});
  EXPECT_EQ(r.drop_hook_calls[2], 1);
  ASSERT_EQ(r.vcpu1.size(), 2u);
  EXPECT_TRUE(r.vcpu1[0].at_drop);
  EXPECT_TRUE(r.vcpu1[0].outcome.waiting);
  EXPECT_FALSE(r.vcpu1[1].at_drop);
  EXPECT_EQ(r.vcpu1[1].outcome.err, -EFAULT);
}

// The shape found by a uniform generator (shared/findings, naive-*): an in-place conversion of
// [B+6, B+2M+1) meets its end edge in a second pass; vCPU 1's read of B must not map a 2M leaf
// across the start edge the first pass already handled. The first pass changed state, so vCPU 1
// runs after the conversion (sim rule) and maps 4K: the folio at B was split by pass 1.
TEST(Queued, InPlaceSecondPassDoesNotLetVcpu1In) {
  Config c = td();
  c.attr_mode = AttrMode::InPlace;
  SimRun r = run({c, {Prefault{{kBase + 0x400, 1}}, Access{kBase + 0x200, false, 0, true},
                      Convert{{kBase + 0x206, 0x1fb}, Attr::Shared}}});
  ASSERT_EQ(r.vcpu1.size(), 1u);
  EXPECT_FALSE(r.vcpu1[0].at_drop);
  EXPECT_EQ(private_level(r, kBase + 0x200), 0);
  EXPECT_EQ(r.outcomes[2].err, 0);
}

// R1 (guest_memfd.c :1005-1026 vs :1525): in place, no fault gets a gmem pfn while the
// conversion holds the invalidate lock, even far from the converted range.
TEST(Queued, InPlaceConversionHoldsEveryFaultOfItsFile) {
  Config c = td();
  c.attr_mode = AttrMode::InPlace;
  SimRun r = run({c, {Prefault{{kBase, 0x200}}, Access{kBase + 0x800, false, 0, true},
                      Convert{{kBase + 0x10, 1}, Attr::Shared}}});
  ASSERT_EQ(r.vcpu1.size(), 2u);
  EXPECT_TRUE(r.vcpu1[0].at_drop && r.vcpu1[0].outcome.waiting);
  EXPECT_FALSE(r.vcpu1[1].at_drop);
  EXPECT_EQ(private_level(r, kBase + 0x800), 1);
  // Per-VM, the same fault is far from the invalidated blocks and runs at the drop point.
  SimRun per_vm = run({td(), {Prefault{{kBase, 0x200}}, Access{kBase + 0x800, false, 0, true},
                              Convert{{kBase + 0x10, 1}, Attr::Shared}}});
  ASSERT_EQ(per_vm.vcpu1.size(), 1u);
  EXPECT_TRUE(per_vm.vcpu1[0].at_drop);
}

TEST(Queued, HeldOpsRunInQueueOrderAndAWaitingOneHoldsBackTheRest) {
  SimRun r = run({td(), {two_2m_leaves(), Accept{kBase + 0x201, Level::L4K, true},
                         Access{kBase + 0x202, true, 0x5, true}, convert_in_a()}});
  ASSERT_EQ(r.vcpu1.size(), 2u);
  EXPECT_EQ(r.vcpu1[0].op, 1u);
  EXPECT_EQ(r.vcpu1[1].op, 2u);
  EXPECT_TRUE(r.vcpu1[0].at_drop && r.vcpu1[1].at_drop);
  EXPECT_TRUE(r.vcpu1[1].outcome.ve);  // 0x202 is still PENDING: only 0x201 was accepted

  SimRun waits = run({td(), {two_2m_leaves(), Accept{kBase + 1, Level::L4K, true},
                             Accept{kBase + 0x201, Level::L4K, true}, convert_in_a()}});
  ASSERT_EQ(waits.vcpu1.size(), 3u);
  EXPECT_EQ(waits.vcpu1[0].op, 1u);
  EXPECT_TRUE(waits.vcpu1[0].outcome.waiting);
  EXPECT_EQ(waits.vcpu1[1].op, 1u);
  EXPECT_EQ(waits.vcpu1[2].op, 2u);
  EXPECT_FALSE(waits.vcpu1[1].at_drop);
  EXPECT_FALSE(waits.vcpu1[2].at_drop);  // later ops do not overtake the waiting one
}

TEST(Queued, HookRunsOncePerOpEvenWhenTheOpDropsTheLockTwice) {
  // Both boundaries of [kBase + 0x1ff, +2) straddle a 2M leaf: two top-ups, two drops.
  SimRun r = run({td(), {two_2m_leaves(), Access{kBase + 0x500, false, 0, true},
                         Convert{{kBase + 0x1ff, 2}, Attr::Shared}}});
  EXPECT_EQ(r.drop_hook_calls[2], 1);
  EXPECT_GE(count(r.events, "dropped for split-cache top-up"), 2u) << r.events;
  ASSERT_EQ(r.vcpu1.size(), 1u);
  EXPECT_TRUE(r.vcpu1[0].at_drop);
}

// tdp_iter_restart: vCPU 1 split the very leaf the host was about to split; the host looks
// again and splits nothing more (a second DEMOTE of a 4K leaf would be a KVM_BUG_ON, L1600).
TEST(Queued, HostReLooksAtTheLeafVcpu1SplitAtTheDropPoint) {
  SimRun r = run({td(), {two_2m_leaves(), Accept{kBase + 0x100, Level::L4K, true}, convert_in_a()}});
  ASSERT_EQ(r.vcpu1.size(), 2u);
  EXPECT_TRUE(r.vcpu1[0].at_drop);
  EXPECT_TRUE(r.vcpu1[0].outcome.waiting);  // split at the drop, fault after the conversion
  EXPECT_EQ(r.vcpu1[1].outcome.tdx_status, tdx::kSuccess);
  EXPECT_EQ(count(r.events, "split private gfn 0x100000 2M"), 1u) << r.events;
  EXPECT_FALSE(r.bug_on) << r.events;
  EXPECT_EQ(r.outcomes[2].err, 0);
  EXPECT_EQ(private_level(r, kBase + 1), -1);  // zapped: now shared
  EXPECT_EQ(private_level(r, kBase), 0);
}

TEST(Queued, SubStepsObserveOnlyTheirOwnChanges) {
  SimRun r = run({td(), {two_2m_leaves(), Accept{kBase + 0x201, Level::L4K, true}, convert_in_a()}});
  // observations: setup, prefault, queued, vCPU 1 at the drop, convert.
  ASSERT_EQ(r.observations.size(), 5u);
  for (const Event& e : r.observations[3].events) {
    EXPECT_FALSE(e.kind == EventKind::SplitLeaf && e.gfn == kBase) << "the host op's split in vCPU 1's step";
    EXPECT_EQ(e.text.find("dropped for split-cache top-up"), std::string::npos) << "the host op's drop in vCPU 1's step";
  }
  bool convert_split_a = false;
  for (const Event& e : r.observations[4].events)
    if (e.kind == EventKind::SplitLeaf && e.gfn == kBase) convert_split_a = true;
  EXPECT_TRUE(convert_split_a);
}

// Found by `tdxhp run`: vCPU 1's split hit an injected INTERRUPTED_RESTARTABLE (KVM_BUG_ON,
// L9779) at the drop point; the host op must not go on to split its own leaf on a dead TD.
TEST(Queued, HostOpStopsWhenVcpu1KilledTheTdAtTheDropPoint) {
  SimRun r = run({td(false), {Inject{FaultSite::Demote, tdx::kInterruptedRestartable, 1}, two_2m_leaves(),
                              Accept{kBase + 0x201, Level::L4K, true}, Convert{{kBase + 1, 1}, Attr::Shared}}});
  ASSERT_EQ(r.vcpu1.size(), 1u);
  EXPECT_TRUE(r.vcpu1[0].at_drop);
  EXPECT_EQ(r.vcpu1[0].outcome.err, -EIO);
  EXPECT_EQ(r.outcomes[3].err, -EIO);
  EXPECT_EQ(private_level(r, kBase), 1);  // the host's 2M leaf was left alone
  EXPECT_EQ(private_level(r, kBase + 1), 1);
}

// MUT-CACHE-RACE (L12482-12512): after the drop vCPU 1's split dequeued from the same
// per-VM cache; without step (*) (need_topup again under the lock, L12481-12482) the host's
// dequeue goes below the 2-pair minimum.
TEST(CacheRace, CleanHostTopsUpAgainAfterTheDrop) {
  SimRun r = run({td(), {two_2m_leaves(), Accept{kBase + 0x201, Level::L4K, true}, convert_in_a()}});
  EXPECT_EQ(r.observations.back().internals->split_cache_underflows, 0u);
  EXPECT_EQ(count(r.events, "split-cache-topup (cache filled"), 2u) << r.events;
  EXPECT_GE(r.observations.back().internals->split_cache_count, r.observations.back().internals->split_cache_min);
}

TEST(CacheRace, MutantDequeuesBelowTheMinimum) {
  SimRun r = run({td(), {two_2m_leaves(), Accept{kBase + 0x201, Level::L4K, true}, convert_in_a()}},
                 {"MUT-CACHE-RACE"});
  EXPECT_EQ(r.observations.back().internals->split_cache_underflows, 1u);
  EXPECT_EQ(count(r.events, "split-cache-topup (cache filled"), 1u) << r.events;
}

TEST(CacheRace, MutantIsHarmlessWithoutASecondVcpu) {  // the bug needs the interleaving
  SimRun r = run({td(), {two_2m_leaves(), convert_in_a(), Accept{kBase + 0x201, Level::L4K}}}, {"MUT-CACHE-RACE"});
  EXPECT_EQ(r.observations.back().internals->split_cache_underflows, 0u);
}

TEST(CacheRace, FixtureIsTheMinimalRace) {
  Scenario s = scenario_of(fixture_dir() + "/MUT-CACHE-RACE.json");
  EXPECT_EQ(run(s).observations.back().internals->split_cache_underflows, 0u);
  EXPECT_GT(run(s, {"MUT-CACHE-RACE"}).observations.back().internals->split_cache_underflows, 0u);
}

}  // namespace
}  // namespace tdxhp::simtest
