#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>

#include <filesystem>
#include <sstream>

#include "domain/case_file.h"
#include "runners/engine/engine.h"
#include "runners/engine/mutants.h"
#include "runners/engine/replay.h"
#include "runners/engine/report.h"
#include "runners/engine/targets.h"
#include "runners/sim/sim_target.h"

namespace tdxhp::engine {
namespace {

TEST(Signature, DependsOnInvariantPropertyAndOpKindsOnly) {
  Scenario a, b;
  a.ops = {Accept{0x200, Level::L2M}, Convert{{0x201, 1}, Attr::Shared}};
  b.ops = {Accept{0x400, Level::L4K}, Convert{{0x400, 512}, Attr::Private}};
  EXPECT_EQ(failure_signature("INV-ACCEPT", "accept-level", a), failure_signature("INV-ACCEPT", "accept-level", b));
  b.ops.push_back(Access{1, false, 0});
  EXPECT_NE(failure_signature("INV-ACCEPT", "accept-level", a), failure_signature("INV-ACCEPT", "accept-level", b));
  EXPECT_EQ(failure_signature("INV-ACCEPT", "accept-level", a).rfind("INV-ACCEPT/accept-level/", 0), 0u);
}

RunSummary sample_summary() {
  RunSummary s;
  s.seed = 9;
  PropertyResult pass{"mapping-legal", {"INV-ATTR"}, "pass", "", 10, 100, 0.5, std::nullopt};
  PropertyResult skip{"sim-internals", {"INV-PAMT"}, "skip", "needs internals (kvm)", 0, 0, 0, std::nullopt};
  PropertyResult fail{"accept-level", {"INV-ACCEPT"}, "fail", "", 3, 20, 0.1, Failure{}};
  fail.failure->invariant = "INV-ACCEPT";
  fail.failure->message = "INV-ACCEPT: step 1 <bad> & \"quoted\"";
  fail.failure->case_file = "out/cases/x.json";
  fail.failure->signature = "INV-ACCEPT/accept-level/0000abcd";
  fail.failure->shrunk_steps = 2;
  s.properties = {pass, skip, fail};
  s.totals = {13, 120, 0.6, 200, 1, 1};
  s.verdict = "fail";
  s.scenarios_reached["SC-BUSY"] = 2;
  return s;
}

TEST(Report, JsonHasTheAgreedShape) {
  auto j = to_json(sample_summary());
  EXPECT_EQ(j["tdxhp"], 1);
  EXPECT_EQ(j["verb"], "run");
  EXPECT_EQ(j["verdict"], "fail");
  EXPECT_EQ(j["properties"][1]["status"], "skip");
  EXPECT_EQ(j["properties"][1]["reason"], "needs internals (kvm)");
  EXPECT_EQ(j["properties"][2]["failure"]["shrunk_steps"], 2);
  EXPECT_EQ(j["properties"][2]["failure"]["signature"], "INV-ACCEPT/accept-level/0000abcd");
  for (auto k : {"cases", "steps", "seconds", "ops_per_sec", "failures", "skipped"}) EXPECT_TRUE(j["totals"].contains(k));
  EXPECT_EQ(j["scenarios_reached"]["SC-BUSY"], 2);
}

TEST(Report, KtapAndJunitMarkEachStatus) {
  auto s = sample_summary();
  const std::string k = to_ktap(s);
  EXPECT_NE(k.find("KTAP version 1\n"), std::string::npos);
  EXPECT_NE(k.find("1..3\n"), std::string::npos);
  EXPECT_NE(k.find("ok 1 mapping-legal\n"), std::string::npos);
  EXPECT_NE(k.find("ok 2 sim-internals # SKIP needs internals (kvm)\n"), std::string::npos);
  EXPECT_NE(k.find("not ok 3 accept-level\n"), std::string::npos);
  const std::string x = to_junit(s);
  EXPECT_NE(x.find("<skipped message=\"needs internals (kvm)\"/>"), std::string::npos);
  EXPECT_NE(x.find("&lt;bad&gt; &amp; &quot;quoted&quot;"), std::string::npos);
  EXPECT_EQ(x.find("<bad>"), std::string::npos);
}

// new-user-and-bad-input.md D16: an interrupted run read as a clean pass; no provenance.
TEST(Report, InterruptedRunIsNeverACleanPassAndEveryOutputSaysWhereItCameFrom) {
  auto s = sample_summary();
  s.interrupted = true;
  s.mutants = {"MUT-PROMOTE"};
  const std::string k = to_ktap(s);
  EXPECT_NE(k.find("\nBail out! interrupted after "), std::string::npos) << k;
  EXPECT_NE(k.find("mutants=MUT-PROMOTE"), std::string::npos);
  EXPECT_NE(k.find(" commit="), std::string::npos);
  EXPECT_NE(k.find(" kernel="), std::string::npos);
  const std::string x = to_junit(s);
  EXPECT_NE(x.find("<error message=\"interrupted"), std::string::npos) << x;
  EXPECT_NE(x.find("errors=\"1\""), std::string::npos);
  EXPECT_NE(x.find("<property name=\"tdxhp_commit\""), std::string::npos);
  const auto j = to_json(s);
  EXPECT_EQ(j["interrupted"], true);
  for (auto key : {"tdxhp_version", "tdxhp_commit", "kernel"}) EXPECT_TRUE(j["provenance"].contains(key)) << key;
}

TEST(ExitCodes, FollowTheVerdict) {
  RunSummary s;
  s.verdict = "pass";
  EXPECT_EQ(exit_code(s), 0);
  s.verdict = "skip";
  EXPECT_EQ(exit_code(s), 4);
  s.verdict = "fail";
  EXPECT_EQ(exit_code(s), 1);
}

TEST(Targets, UnknownNamesAndMutantsAreRefusedWithAReason) {
  std::string why;
  EXPECT_EQ(make_target("qemu", {}, 0, &why), nullptr);
  EXPECT_NE(why.find("unknown target"), std::string::npos);
  EXPECT_EQ(make_target("sim", {"MUT-NOPE"}, 0, &why), nullptr);
  EXPECT_NE(why.find("MUT-NOPE"), std::string::npos);
}

TEST(Run, UnknownPropertyIsAnInputError) {
  RunOptions o;
  o.properties = {"no-such-property"};
  std::ostringstream log;
  EXPECT_THROW(run(o, log), std::invalid_argument);
}

TEST(Run, CleanSimPassesAFixedBudget) {
  RunOptions o;
  o.cases = 10;
  o.seed = 1;
  o.out_dir = ::testing::TempDir() + "/tdxhp-clean";
  std::ostringstream log;
  RunSummary s = run(o, log);
  EXPECT_EQ(s.verdict, "pass") << to_text(s) << log.str();
  EXPECT_GT(s.totals.steps, 0);
  // Where the time went: every part is there and they add up to the properties' time.
  const auto& t = s.totals;
  EXPECT_GT(t.seconds_generating, 0);
  EXPECT_GT(t.seconds_in_target, 0);
  EXPECT_GT(t.seconds_checking, 0);
  double props = 0;
  for (auto& p : s.properties) props += p.seconds;
  EXPECT_NEAR(t.seconds_generating + t.seconds_in_target + t.seconds_checking, props, 1e-6);
  EXPECT_NE(to_text(s).find("time: generating"), std::string::npos);
}

// A failing run (with a mutant) writes a case file that replay reproduces; without the
// mutant the same case passes.
TEST(Run, FailureWritesACaseFileThatReplayReproduces) {
  RunOptions o;
  o.mutants = {"MUT-NO-SPLIT-ZAP"};
  o.seconds = 20;
  o.seed = 3;
  o.stop_at_first_failure = true;
  o.out_dir = ::testing::TempDir() + "/tdxhp-mut";
  std::filesystem::remove_all(o.out_dir);
  std::ostringstream log;
  RunSummary s = run(o, log);
  ASSERT_EQ(s.verdict, "fail") << to_text(s);
  const Failure* f = nullptr;
  for (auto& p : s.properties)
    if (p.status == "fail") f = &*p.failure;
  ASSERT_NE(f, nullptr);
  ASSERT_TRUE(std::filesystem::exists(f->case_file));
  CaseFile c = load_case(f->case_file);
  EXPECT_EQ(c.mutants, o.mutants);
  EXPECT_FALSE(c.reproduce.empty());
  ASSERT_TRUE(c.violation);
  std::string why;
  auto t = make_target("sim", c.mutants, 0, &why);
  std::ostringstream out;
  LockstepResult r = replay_scenario(*t, c.scenario, {}, out);
  ASSERT_TRUE(r.violation) << out.str();
  auto clean = make_target("sim", {}, 0, &why);
  std::ostringstream out2;
  EXPECT_FALSE(replay_scenario(*clean, c.scenario, {}, out2).violation) << out2.str();
}

// ---- issue 16: CPU time counts a worker that is still running

TEST(CpuTime, CountsAChildThatIsStillRunning) {
  const double before = process_cpu_seconds();
  int done[2];
  ASSERT_EQ(pipe(done), 0);
  const pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {  // spins 0.3 s of its own CPU (not wall: the machine may be loaded), then sleeps
    timespec t{};
    for (volatile uint64_t n = 0; clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t) == 0 && t.tv_sec * 1e9 + t.tv_nsec < 3e8;)
      n = n + 1;
    (void)!write(done[1], "x", 1);
    pause();
    _exit(0);
  }
  char c;
  ASSERT_EQ(read(done[0], &c, 1), 1);
  usleep(100 * 1000);  // /proc's utime lags by up to a tick
  const double during = process_cpu_seconds();
  kill(child, SIGKILL);
  waitpid(child, nullptr, 0);
  close(done[0]);
  close(done[1]);
  EXPECT_GT(during - before, 0.25) << "a live, unreaped child's 0.3 s of CPU must count";
}

// ---- issue 13: no vacuous pass

// The sim with an observer that gives up (or a kernel that WARNs) at one observation.
class FaultyObserver final : public Target {
 public:
  FaultyObserver(bool warn, int at) : sim_(make_sim_target(0)), warn_(warn), at_(at) {}
  std::string name() const override { return "faulty"; }
  Caps caps() const override { return sim_->caps(); }
  int setup(const Config& c, std::string* why) override { return sim_->setup(c, why); }
  Outcome apply(const Op& op) override { return sim_->apply(op); }
  Observation observe() override {
    Observation o = sim_->observe();
    if (n_++ == at_) {
      if (warn_) o.kernel_log.push_back("WARNING: CPU: 0 PID: 1 at arch/x86/kvm/mmu/mmu.c");
      else o.observer_fault = "leaf observer unreliable: 2 kvmmmu records were dropped";
    }
    return o;
  }
  Observation teardown() override { return sim_->teardown(); }

 private:
  std::unique_ptr<Target> sim_;
  bool warn_;
  int at_, n_ = 0;
};

// A target that keeps its VM across cases (as kvm plain/swprot do) and, when reused, shows a
// kernel WARN at its first observation; `always` shows it on a new VM too.
class ReusedVm final : public Target {
 public:
  explicit ReusedVm(bool always) : sim_(make_sim_target(0)), always_(always) {}
  std::string name() const override { return "reused"; }
  Caps caps() const override { return sim_->caps(); }
  int setup(const Config& c, std::string* why) override {
    reused_ = !fresh_next_;
    fresh_next_ = false;
    ++setups;
    return sim_->setup(c, why);
  }
  Outcome apply(const Op& op) override { return sim_->apply(op); }
  Observation observe() override {
    Observation o = sim_->observe();
    if (reused_ || always_) o.kernel_log.push_back("WARNING: CPU: 0 PID: 1 at arch/x86/kvm/mmu/tdp_mmu.c");
    return o;
  }
  Observation teardown() override { return sim_->teardown(); }
  bool reused_vm() const override { return reused_; }
  void build_fresh_next() override { fresh_next_ = true; }
  int setups = 0;

 private:
  std::unique_ptr<Target> sim_;
  bool always_, reused_ = false, fresh_next_ = false;
};

Scenario small_scenario();

TEST(Lockstep, ViolationOnAReusedVmIsConfirmedOnANewOne) {
  ReusedVm leaky(false);
  LockstepResult r = run_confirmed(leaky, small_scenario(), {});
  EXPECT_EQ(leaky.setups, 2) << "a violation on a reused VM runs the case again on a new VM";
  ASSERT_TRUE(r.violation);
  EXPECT_NE(r.violation->seen.find("seen only on a VM reset from an earlier case"), std::string::npos)
      << r.violation->seen;

  ReusedVm bad(true);
  LockstepResult b = run_confirmed(bad, small_scenario(), {});
  EXPECT_EQ(bad.setups, 2);
  ASSERT_TRUE(b.violation);
  EXPECT_EQ(b.violation->seen.find("seen only on a VM reset"), std::string::npos)
      << "the new VM's own violation is the verdict";

  ReusedVm fresh(true);
  fresh.build_fresh_next();
  EXPECT_TRUE(run_confirmed(fresh, small_scenario(), {}).violation);
  EXPECT_EQ(fresh.setups, 1) << "a case that already ran on a new VM is not run again";
}

Scenario small_scenario() {
  Scenario s;
  s.config.slots.push_back(Memslot{0, 0, 1024, 0, 0});
  s.ops = {Access{0x10, true, 5}, Access{0x10, false, 0}, Access{0x200, false, 0}};
  return s;
}

TEST(Lockstep, ObserverFaultsAndKernelWarnsCountForEveryProperty) {
  for (bool warn : {false, true}) {
    FaultyObserver t(warn, 2);
    LockstepOptions o;
    o.invariants = {"INV-DATA"};  // a property that does not name them
    LockstepResult r = run_lockstep(t, small_scenario(), o);
    ASSERT_TRUE(r.violation) << (warn ? "kernel WARN" : "observer fault") << " was filtered out";
    EXPECT_EQ(r.violation->invariant, warn ? kKernelWarn : kObserverFault);
    EXPECT_EQ(r.violation->step, 1);
    EXPECT_GT(r.evidence.steps, 0);
  }
}

PropertyResult ran(const std::string& id, const Evidence& e) {
  PropertyResult r;
  r.id = id;
  r.invariants = find_property(id)->invariants;
  r.cases = 4;
  r.steps = 30;
  r.evidence = e;
  return r;
}

Caps leaf_caps() {
  Caps k;
  k.has = {Cap::PrivateMemory, Cap::LeafLevels, Cap::Attributes, Cap::PunchHole, Cap::GuestData};
  k.missing[Cap::Accept] = "TDG.MEM.PAGE.ACCEPT exists only in a TD";
  return k;
}

TEST(Settle, LeafPropertyThatSawNoLeafFails) {
  const Caps k = leaf_caps();
  const auto cov = Oracle(small_scenario().config, k).coverage();
  PropertyResult r = ran("mapping-legal", {});
  settle(r, *find_property("mapping-legal"), k, cov, "kvm/swprot");
  ASSERT_EQ(r.status, "fail");
  EXPECT_EQ(r.failure->invariant, kObserverFault);
  EXPECT_NE(r.failure->message.find("observer saw nothing"), std::string::npos) << r.failure->message;
  EXPECT_EQ(r.failure->signature, "observer/mapping-legal/no-leaves");
  // Seen leaves, or a property that needs none: no such failure.
  Evidence e;
  e.steps_with_leaves = 1;
  e.leaves[1][0] = 3;
  PropertyResult seen = ran("mapping-legal", e);
  settle(seen, *find_property("mapping-legal"), k, cov, "kvm/swprot");
  EXPECT_EQ(seen.status, "pass");
  PropertyResult data = ran("data-atomic", {});
  settle(data, *find_property("data-atomic"), k, cov, "kvm/swprot");
  EXPECT_EQ(data.status, "pass");
}

TEST(Settle, ClaimsOnlyTheInvariantsTheTargetCanCheck) {
  const Caps k = leaf_caps();
  const auto cov = Oracle(small_scenario().config, k).coverage();
  Evidence e;
  e.steps_with_leaves = 1;
  PropertyResult r = ran("precise-conversion", e);
  settle(r, *find_property("precise-conversion"), k, cov, "kvm/swprot");
  EXPECT_EQ(r.status, "pass");
  EXPECT_EQ(r.invariants, std::vector<std::string>{"INV-PRECISE"});
  ASSERT_EQ(r.not_checkable.count("INV-NOOVERZAP"), 1u);
  EXPECT_EQ(r.not_checkable.at("INV-NOOVERZAP"),
            "not checkable on kvm/swprot: needs accept (TDG.MEM.PAGE.ACCEPT exists only in a TD)");
  PropertyResult internals = ran("sim-internals", e);  // nothing of it checkable: not a pass
  settle(internals, *find_property("sim-internals"), k, cov, "kvm/swprot");
  EXPECT_EQ(internals.status, "skip");
  EXPECT_TRUE(internals.invariants.empty());
}

TEST(KillMatrix, FlagsAKillOutsideTheCatalogInvariants) {
  EXPECT_TRUE(catalog_catches("MUT-SPLIT-BEFORE-UNMAP", "INV-ORDER"));
  EXPECT_TRUE(catalog_catches("MUT-SPLIT-BEFORE-UNMAP", "INV-CONTIG"));
  EXPECT_FALSE(catalog_catches("MUT-SPLIT-BEFORE-UNMAP", "INV-ORD"));
  EXPECT_FALSE(catalog_catches("MUT-PAMT-LEAK", "INV-BUSY"));
  EXPECT_FALSE(catalog_catches("MUT-NOPE", "INV-BUSY"));
  MutantMatrix m;
  MutantRow r;
  r.id = "MUT-PAMT-LEAK";
  r.killed = true;
  r.invariant = kKernelWarn;
  r.outside_catalog = true;
  m.rows = {r};
  const std::string t = to_text(m);
  EXPECT_NE(t.find("MUT-PAMT-LEAK by kernel-warn (catalog: INV-PAMT)"), std::string::npos) << t;
  EXPECT_EQ(to_json(m)["mutants"][0]["outside_catalog"], true);
}

TEST(Report, EveryOutputCarriesEvidenceAndWhatWasNotChecked) {
  RunSummary s = sample_summary();
  s.properties[0].evidence.steps_with_leaves = 7;
  s.properties[0].evidence.reads_compared = 5;
  s.properties[0].not_checkable["INV-ORDER"] = "not checkable on kvm/swprot: needs event-log";
  s.evidence = s.properties[0].evidence;
  auto j = to_json(s);
  EXPECT_EQ(j["properties"][0]["evidence"]["steps_with_leaves"], 7);
  EXPECT_EQ(j["properties"][0]["not_checkable"]["INV-ORDER"], "not checkable on kvm/swprot: needs event-log");
  EXPECT_EQ(j["evidence"]["reads_compared"], 5);
  const std::string k = to_ktap(s);
  EXPECT_NE(k.find("# mapping-legal evidence: steps=0 steps_with_leaves=7"), std::string::npos) << k;
  EXPECT_NE(k.find("# mapping-legal INV-ORDER not checkable on kvm/swprot"), std::string::npos) << k;
  const std::string x = to_junit(s);
  EXPECT_NE(x.find("<property name=\"evidence.reads_compared\" value=\"5\"/>"), std::string::npos) << x;
  EXPECT_NE(x.find("<property name=\"not_checkable.INV-ORDER\""), std::string::npos) << x;
  EXPECT_NE(to_text(s).find("reads_compared=5"), std::string::npos);
}

}  // namespace
}  // namespace tdxhp::engine
