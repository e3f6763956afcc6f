// TD lifecycle and sim internals: INV-BUSY (SC-BUSY, KVM_BUG_ON, kernel log, restart
// watchdog), INV-PAMT, INV-CACHE, and which invariants each target's caps make checkable.
#include "oracles/tests/trace.h"

namespace tdxhp::test {
namespace {

// The demote path of a 4K accept over a 2M leaf, with DEMOTE answering BUSY once (seed 004).
Obs busy_demote(bool retry, bool kick_first = true) {
  Obs o = split_4k(0x200);
  o.event(seamcall("TDH.MEM.RANGE.BLOCK", 0x200, L2M))
      .event(seamcall("TDH.MEM.TRACK", 0x200, L2M))
      .event(seamcall("TDH.MEM.PAGE.DEMOTE", 0x200, L2M, tdx::kOperandBusy));
  if (retry && kick_first) o.event(kick());
  if (retry) o.event(seamcall("TDH.MEM.PAGE.DEMOTE", 0x200, L2M));
  return o;
}

TEST(Busy, DemoteBusyKickedAndRetriedIsLegal) {  // SC-BUSY
  Trace t(td());
  t.setup();
  t.step(Access{0x200}, ve(), mapped_2m(0x200));
  t.step(Inject{FaultSite::Demote, tdx::kOperandBusy, 1}, ok());
  t.step(Accept{0x200, L4K}, status(tdx::kSuccess), busy_demote(true));
  EXPECT_CLEAN(t);
}

TEST(Busy, BusyNotRetriedIsReported) {  // MUT-NO-BUSY-RETRY
  Trace t(td());
  t.setup();
  t.step(Access{0x200}, ve(), mapped_2m(0x200));
  t.step(Inject{FaultSite::Demote, tdx::kOperandBusy, 1}, ok());
  EXPECT_REPORTS(t.step(Accept{0x200, L4K}, status(tdx::kSuccess), busy_demote(false)), "INV-BUSY");
}

// The retry itself is right, only the kick is missing: nothing but the kick rule can see it
// (checks_events.cpp "retried without a kick"; the vacuity audit's X14).
TEST(Busy, BusyRetriedWithoutAKickIsReported) {
  Trace t(td());
  t.setup();
  t.step(Access{0x200}, ve(), mapped_2m(0x200));
  t.step(Inject{FaultSite::Demote, tdx::kOperandBusy, 1}, ok());
  auto v = t.step(Accept{0x200, L4K}, status(tdx::kSuccess), busy_demote(true, false));
  EXPECT_REPORTS(v, "INV-BUSY");
  ASSERT_EQ(v.size(), 1u) << words(v);
  EXPECT_NE(v[0].seen.find("retried without a kick"), std::string::npos) << words(v);
}

TEST(Busy, VmKilledOnLegalSequenceIsReported) {
  Trace t(td());
  t.setup();
  t.step(Access{0x200}, ve(), mapped_2m(0x200));
  auto v = t.step(Accept{0x200, L4K}, fails(-EIO), Obs().dead().log("KVM_BUG_ON(err) at tdx_sept_split_private_spte"));
  EXPECT_REPORTS(v, "INV-BUSY");
}

// The DEMOTE of a 4K accept over a 2M leaf fails with `status`; KVM_BUG_ON follows (or not).
Obs failed_demote(uint64_t status, bool bug_on) {
  Obs o;
  o.event(seamcall("TDH.MEM.RANGE.BLOCK", 0x200, L2M))
      .event(seamcall("TDH.MEM.TRACK", 0x200, L2M))
      .event(kick())
      .event(seamcall("TDH.MEM.PAGE.DEMOTE", 0x200, L2M, status));
  if (bug_on) {
    Event e;
    e.kind = EventKind::KvmBugOn;
    o.event(e).dead().log("WARNING: KVM_BUG_ON in tdx_sept_split_private_spte");
  }
  return o;
}

TEST(Busy, BugOnAfterInjectedRestartableIsLegalAndTdStaysDead) {
  Trace t(td());
  t.setup();
  t.step(Access{0x200}, ve(), mapped_2m(0x200));
  t.step(Inject{FaultSite::Demote, tdx::kInterruptedRestartable, 1}, ok());
  t.step(Accept{0x200, L4K}, fails(-EIO), failed_demote(tdx::kInterruptedRestartable, true));
  t.step(Convert{{0x200, k2M}, Attr::Shared}, fails(-EIO));
  EXPECT_CLEAN(t);
  EXPECT_REPORTS(t.step(Access{0x200}, ok()), "INV-BUSY");  // a dead TD answers -EIO
}

// L1604-1614: any status other than BUSY, and BUSY on the retry, is TDX_BUG_ON at once.
TEST(Busy, InjectedErrorRequiresKvmBugOn) {
  for (uint64_t status : {tdx::kSwError, tdx::kOperandInvalid | tdx::kOperandIdRcx}) {
    Trace t(td());
    t.setup();
    t.step(Access{0x200}, ve(), mapped_2m(0x200));
    t.step(Inject{FaultSite::Demote, status, 1}, ok());
    t.step(Accept{0x200, L4K}, fails(-EIO), failed_demote(status, true));
    EXPECT_CLEAN(t) << tdx_status_name(status);
  }
  Trace live(td());
  live.setup();
  live.step(Access{0x200}, ve(), mapped_2m(0x200));
  live.step(Inject{FaultSite::Demote, tdx::kSwError, 1}, ok());
  EXPECT_REPORTS(live.step(Accept{0x200, L4K}, status(tdx::kSuccess), failed_demote(tdx::kSwError, false)), "INV-BUSY");
}

TEST(Busy, BusyOnTheRetryRequiresKvmBugOn) {
  Trace t(td());
  t.setup();
  t.step(Access{0x200}, ve(), mapped_2m(0x200));
  t.step(Inject{FaultSite::Demote, tdx::kOperandBusy, 2}, ok());
  Obs o = busy_demote(false);
  o.event(kick()).event(seamcall("TDH.MEM.PAGE.DEMOTE", 0x200, L2M, tdx::kOperandBusy));
  Event bug;
  bug.kind = EventKind::KvmBugOn;
  o.event(bug).dead();
  t.step(Accept{0x200, L4K}, fails(-EIO), o);
  EXPECT_CLEAN(t);
}

TEST(Busy, FailureWithoutAnInjectionIsReported) {  // the module refused a SEAMCALL KVM should not issue
  Trace t(td());
  t.setup();
  t.step(Access{0x200}, ve(), mapped_2m(0x200));
  EXPECT_REPORTS(t.step(Accept{0x200, L4K}, fails(-EIO), failed_demote(tdx::kTlbTrackingNotDone, true)), "INV-BUSY");
}

// A kernel WARN is no one invariant's: it has its own name, which no property filters out.
TEST(Busy, KernelWarnIsReportedUnderItsOwnName) {
  Trace t(td());
  t.setup();
  EXPECT_REPORTS(t.step(Access{0x200}, ve(), mapped_2m(0x200).log("WARNING: CPU: 1 PID: 7 at arch/x86/kvm/mmu/tdp_mmu.c")),
                 kKernelWarn);
  EXPECT_TRUE(counts_for_every_property(kKernelWarn));
}

// An observer that gave up (kvmmmu records lost) fails the step whatever else it shows.
TEST(Observer, FaultIsReportedUnderItsOwnName) {
  Trace t(td());
  t.setup();
  auto v = t.step(Access{0x200}, ve(), mapped_2m(0x200).observer_fault("3 kvmmmu records were dropped"));
  EXPECT_EQ(ids(v), std::set<std::string>{kObserverFault}) << words(v);
  EXPECT_TRUE(counts_for_every_property(kObserverFault));
  EXPECT_FALSE(counts_for_every_property("INV-BUSY"));
}

// The evidence counters count what the checks compared, no more.
TEST(Evidence, CountsLeavesReadsAndAcceptStatuses) {
  Trace t(td());
  t.setup();
  const Evidence before = t.oracle.evidence();
  EXPECT_EQ(before.steps, 1);
  EXPECT_EQ(before.all_leaves(), 0);
  t.step(Access{0x200}, ve(), mapped_2m(0x200));
  t.step(Accept{0x200, L2M}, status(tdx::kSuccess));
  t.step(Access{0x201, false}, reads(0));
  t.step(Access{0x202, true, 7}, ok());
  t.step(Access{0x202, false}, reads(7), Obs().log("WARNING: something"));
  const Evidence& e = t.oracle.evidence();
  EXPECT_EQ(e.steps, 6);
  EXPECT_EQ(e.steps_with_leaves, 1);
  EXPECT_EQ(e.leaves[0][static_cast<int>(L2M)], 1);
  EXPECT_EQ(e.all_leaves(), 1);
  EXPECT_EQ(e.accepts_compared, 1);
  EXPECT_EQ(e.reads_compared, 2);
  EXPECT_EQ(e.backing_windows, 2);  // the slot's at setup, then the 2M folio's
}

TEST(Busy, RestartLoopWatchdog) {  // MUT-RESTART-LOOP
  Trace t(td());
  t.setup();
  SimInternals in;
  in.restart_retries = 3;
  t.step(Access{0x200}, ve(), mapped_2m(0x200).internals(in));
  EXPECT_CLEAN(t);
  in.restart_retries = 1000;
  EXPECT_REPORTS(t.step(Access{0x200}, ve(), Obs().internals(in)), "INV-BUSY");
}

// INV-PAMT (L3328-3352, L4311): refcount of a 2M physical range = its private 4K mappings.
Config dpamt_td() {
  Config c = td();
  c.features.dynamic_pamt = true;
  return c;
}
SimInternals pamt(Pfn pfn_2m, int32_t refcount) {
  SimInternals in;
  in.pamt_changes.push_back({pfn_2m, refcount});
  in.guest_inhibit_blocks = 2;  // the 4K accept exit inhibits its 2M and 1G blocks
  return in;
}

TEST(Pamt, DemoteSetsRefcountTo512) {
  Trace t(dpamt_td());
  t.setup();
  t.step(Access{0x200}, ve(), mapped_2m(0x200).internals(pamt(pfn(0x200), 0)));
  t.step(Accept{0x200, L4K}, status(tdx::kSuccess), split_4k(0x200).internals(pamt(pfn(0x200), 512)));
  t.step(Convert{{0x200, 2}, Attr::Shared}, ok(),
         Obs().priv({0x200, 2}).internals(pamt(pfn(0x200), 510)));
  SimInternals down;
  down.pamt_pages_baseline = down.pamt_pages_in_use = 4;
  EXPECT_TRUE(t.oracle.after_teardown(Obs().internals(down)).empty());
  EXPECT_CLEAN(t);
}

TEST(Pamt, RefcountNotSetAfterDemoteIsReported) {  // MUT-PAMT-LEAK (refcount half)
  Trace t(dpamt_td());
  t.setup();
  t.step(Access{0x200}, ve(), mapped_2m(0x200));
  EXPECT_REPORTS(t.step(Accept{0x200, L4K}, status(tdx::kSuccess), split_4k(0x200).internals(pamt(pfn(0x200), 0))),
                 "INV-PAMT");
}

TEST(Pamt, PagesNotBackToBaselineAfterTeardownIsReported) {  // MUT-PAMT-LEAK (pair half)
  Trace t(dpamt_td());
  t.setup();
  SimInternals down;
  down.pamt_pages_baseline = 4;
  down.pamt_pages_in_use = 6;
  auto v = t.oracle.after_teardown(Obs().internals(down));
  EXPECT_REPORTS(v, "INV-PAMT");
  EXPECT_EQ(v.at(0).step, kTeardownStep);
}

TEST(Cache, UnderflowCounterRisingIsReported) {  // MUT-CACHE-RACE
  Trace t(td());
  t.setup();
  SimInternals in;
  in.split_cache_min = 4;
  in.split_cache_count = 8;
  t.step(Access{0x200}, ve(), mapped_2m(0x200).internals(in));
  EXPECT_CLEAN(t);
  in.split_cache_underflows = 1;
  EXPECT_REPORTS(t.step(Accept{0x200, L4K}, status(tdx::kSuccess), split_4k(0x200).internals(in)), "INV-CACHE");
}

TEST(Caps, CheckableFollowsCapabilities) {
  Oracle sim(td(), tdx_caps());
  EXPECT_EQ(sim.checkable().size(), 15u);  // INV-PAMT needs a DPAMT module
  Oracle sim_dpamt(dpamt_td(), tdx_caps());
  EXPECT_EQ(sim_dpamt.checkable().size(), 16u);
  Oracle plain(td(), caps_of({Cap::PunchHole, Cap::GuestData, Cap::KernelLog}));
  EXPECT_EQ(plain.checkable(), (std::set<std::string>{"INV-ATOMIC", "INV-BUSY", "INV-DATA"}));
}

// What an SW-protected VM cannot show is named with the target's own reason.
TEST(Caps, CoverageSaysWhyAnInvariantIsNotCheckable) {
  Caps k = caps_of({Cap::PrivateMemory, Cap::LeafLevels, Cap::Attributes, Cap::GuestData});
  k.missing[Cap::Accept] = "TDG.MEM.PAGE.ACCEPT exists only in a TD";
  Oracle swprot(td(), k);
  const auto cov = swprot.coverage();
  EXPECT_EQ(cov.at("INV-PRECISE"), "");
  EXPECT_EQ(cov.at("INV-NOOVERZAP"), "needs accept (TDG.MEM.PAGE.ACCEPT exists only in a TD)");
  EXPECT_NE(cov.at("INV-ORDER").find("event-log"), std::string::npos);
  for (auto& [inv, why] : cov) EXPECT_EQ(why.empty(), swprot.checkable().count(inv) == 1) << inv;
}

// A plain VM (no private memory): punch zeroes gmem, data read back, nothing else checked.
TEST(Caps, PlainVmChecksDataOnly) {
  Config c = td(BackingKind::Page4K);
  Caps k = caps_of({Cap::PunchHole, Cap::GuestData});
  Trace t(c, k);
  Observation none;
  EXPECT_TRUE(t.oracle.after_setup(none).empty());
  t.step(Access{0x10, true, 9}, ok(), Obs());
  t.step(Access{0x10, false}, reads(9), Obs());
  t.step(PunchHole{{0x10, 1}}, ok(), Obs());
  t.step(Access{0x10, false}, reads(0), Obs());
  t.step(Accept{0x10, L4K}, unsupported(), Obs());
  EXPECT_CLEAN(t);
  EXPECT_REPORTS(t.step(Access{0x10, false}, reads(9), Obs()), "INV-DATA");
}

TEST(Describe, GfnInDomainWords) {
  Trace t(td());
  t.setup();
  t.step(Access{0x200}, ve(), mapped_2m(0x200));
  const std::string s = t.oracle.describe_gfn(0x234);
  EXPECT_NE(s.find("private 2M leaf"), std::string::npos) << s;
  EXPECT_NE(s.find("PENDING"), std::string::npos) << s;
  EXPECT_NE(s.find("order-9 folio"), std::string::npos) << s;
}

}  // namespace
}  // namespace tdxhp::test
