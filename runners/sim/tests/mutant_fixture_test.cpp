// Every MUT-* of the catalog is a switch with a fixture, and switching it on changes what the
// sim does on that fixture; every SC-* fixture runs clean (no KVM_BUG_ON, no kernel WARN).
#include <gtest/gtest.h>

#include <filesystem>

#include "domain/case_file.h"
#include "domain/catalog.h"
#include "runners/sim/sim_target.h"
#include "runners/sim/tests/sim_test_util.h"

namespace tdxhp::simtest {
namespace {

TEST(Mutants, EveryCatalogIdIsASwitchAndUnknownIsRefused) {
  for (const MutantInfo& m : mutants()) EXPECT_TRUE(make_sim_target()->set_mutant(std::string(m.id))) << m.id;
  EXPECT_FALSE(make_sim_target()->set_mutant("MUT-NOT-A-BUG"));
}

TEST(Mutants, EachFixtureBehavesDifferentlyUnderItsMutant) {
  for (const MutantInfo& m : mutants()) {
    const std::string path = fixture_for_mutant(fixture_dir(), m.id);  // <id>.json or an INV-* naming it
    ASSERT_FALSE(path.empty()) << m.id << " has no fixture in " << fixture_dir();
    CaseFile c = load_case(path);
    ASSERT_TRUE(c.catches.has_value()) << path;
    EXPECT_EQ(c.catches->mutant, m.id);
    SimRun clean = run(c.scenario);
    SimRun bad = run(c.scenario, {std::string(m.id)});
    EXPECT_FALSE(clean.bug_on && m.id != "MUT-RESTART-LOOP") << m.id << " clean run killed the TD:\n" << clean.events;
    EXPECT_NE(clean.fingerprint, bad.fingerprint) << m.id << " changes nothing observable on its fixture\n"
                                                  << clean.fingerprint;
  }
}

TEST(Scenarios, EveryScFixtureRunsClean) {
  for (const ScenarioInfo& sc : scenarios()) {
    const std::string path = fixture_dir() + "/" + std::string(sc.id) + ".json";
    ASSERT_TRUE(std::filesystem::exists(path)) << path;
    CaseFile c = load_case(path);
    EXPECT_FALSE(c.description.empty()) << path;
    SimRun r = run(c.scenario);
    EXPECT_EQ(r.setup_err, 0) << path;
    EXPECT_FALSE(r.bug_on) << sc.id << "\n" << r.events;
    for (const Observation& o : r.observations) EXPECT_TRUE(o.kernel_log.empty()) << sc.id << ": " << o.kernel_log[0];
  }
}

}  // namespace
}  // namespace tdxhp::simtest
