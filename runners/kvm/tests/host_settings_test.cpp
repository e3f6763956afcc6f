// Host settings come back after normal exit, SIGTERM and SIGKILL (next start recovers).
// Uses a scratch file as the "setting" and, as root, the real 2M hugetlb pool.
#include "runners/kvm/host_settings.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <sstream>

#include "runners/kvm/observers/mmu_trace.h"

namespace tdxhp::kvm {
namespace {

std::string slurp(const std::string& p) {
  std::ifstream in(p);
  std::stringstream ss;
  ss << in.rdbuf();
  std::string s = ss.str();
  while (!s.empty() && s.back() == '\n') s.pop_back();
  return s;
}
void put(const std::string& p, const std::string& v) { std::ofstream(p) << v << "\n"; }

class HostSettingsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/tdxhp-hs-XXXXXX";
    dir_ = mkdtemp(tmpl);
    setenv("TDXHP_STATE_DIR", (dir_ + "/state").c_str(), 1);
    knob_ = dir_ + "/knob";
    put(knob_, "7");
  }
  // Runs `body` in a child that then waits to be killed by `sig` (0: exits normally).
  void child_then(int sig, void (*body)(const std::string&)) {
    int ready[2];
    ASSERT_EQ(pipe(ready), 0);
    pid_t pid = fork();
    if (pid == 0) {
      body(knob_);
      char c = 1;
      if (write(ready[1], &c, 1) != 1) _exit(3);
      if (sig) pause();
      std::exit(0);  // atexit restores
    }
    char c;
    ASSERT_EQ(read(ready[0], &c, 1), 1);
    if (sig) kill(pid, sig);
    int st = 0;
    waitpid(pid, &st, 0);
    close(ready[0]);
    close(ready[1]);
  }
  std::string dir_, knob_;
};

void set_knob(const std::string& knob) {
  std::string why;
  if (!HostSettings::get().set(knob, "42", &why)) _exit(2);
}

TEST_F(HostSettingsTest, NormalExitRestores) {
  child_then(0, set_knob);
  EXPECT_EQ(slurp(knob_), "7");
}

TEST_F(HostSettingsTest, SigtermRestores) {
  child_then(SIGTERM, set_knob);
  EXPECT_EQ(slurp(knob_), "7");
}

TEST_F(HostSettingsTest, SigkillIsRecoveredAtTheNextStart) {
  child_then(SIGKILL, set_knob);
  EXPECT_EQ(slurp(knob_), "42") << "nothing runs on SIGKILL";
  auto done = HostSettings::recover_stale();
  ASSERT_EQ(done.size(), 1u);
  EXPECT_NE(done[0].find(knob_), std::string::npos) << done[0];
  EXPECT_EQ(slurp(knob_), "7");
  EXPECT_TRUE(HostSettings::recover_stale().empty()) << "the journal is gone";
}

TEST_F(HostSettingsTest, RealHugetlbPoolAfterSigkill) {
  const std::string pool = "/sys/kernel/mm/hugepages/hugepages-2048kB/nr_hugepages";
  if (geteuid() != 0 || access(pool.c_str(), W_OK)) GTEST_SKIP() << "needs root and " << pool;
  knob_ = pool;
  const std::string before = slurp(pool);
  child_then(SIGKILL, [](const std::string& p) {
    std::string why;
    const long n = std::strtol(slurp(p).c_str(), nullptr, 10);
    if (!HostSettings::get().set(p, std::to_string(n + 1), &why)) _exit(2);
  });
  EXPECT_NE(slurp(pool), before) << "the killed child grew the pool";
  HostSettings::recover_stale();
  EXPECT_EQ(slurp(pool), before);
}

TEST(MmuTraceInstances, StaleInstanceOfADeadRunIsRemoved) {
  std::string why;
  MmuTrace probe_trace;
  if (!probe_trace.open(&why)) GTEST_SKIP() << why;
  const std::string top = probe_trace.instance_dir().substr(0, probe_trace.instance_dir().rfind('/'));
  ASSERT_EQ(access(probe_trace.instance_dir().c_str(), F_OK), 0);
  probe_trace.close();
  EXPECT_NE(access((top + "/" + probe_trace.instance_name()).c_str(), F_OK), 0) << "close removes it";

  pid_t dead = fork();
  if (dead == 0) _exit(0);
  waitpid(dead, nullptr, 0);
  const std::string stale = "tdxhp-" + std::to_string(dead) + "-0";
  ASSERT_EQ(mkdir((top + "/" + stale).c_str(), 0755), 0);  // what a killed run leaves
  auto removed = MmuTrace::remove_stale_instances();
  ASSERT_EQ(removed.size(), 1u);
  EXPECT_EQ(removed[0], stale);
  EXPECT_NE(access((top + "/" + stale).c_str(), F_OK), 0);
}

}  // namespace
}  // namespace tdxhp::kvm
