#include <gtest/gtest.h>

#include <filesystem>
#include <sstream>

#include "domain/case_file.h"
#include "runners/engine/engine.h"
#include "runners/engine/replay.h"
#include "runners/engine/report.h"
#include "runners/engine/targets.h"

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

}  // namespace
}  // namespace tdxhp::engine
