// Same seed + case -> same event log, byte for byte (no hash order, addresses or time).
#include <gtest/gtest.h>

#include <sstream>

#include "runners/sim/tests/sim_test_util.h"

namespace tdxhp::simtest {
namespace {

Scenario busy_mix() {
  Config c;
  c.slots = {Memslot{0, 0x100000, 0x40000, 0, 0}, Memslot{1, 0x200000, 0x800, 0x200, 3}};
  c.backing = BackingKind::Hugetlb1G;
  c.attr_mode = AttrMode::InPlace;
  c.features.dynamic_pamt = true;
  c.build_pages = {{0x100000, 3}};
  Scenario s{c, {}};
  uint64_t x = 12345;
  auto next = [&] { return x = x * 6364136223846793005ULL + 1442695040888963407ULL, x >> 33; };
  for (int i = 0; i < 300; ++i) {
    Gfn g = 0x100000 + next() % 0x40000;
    switch (next() % 8) {
      case 0: s.ops.push_back(Access{g, next() % 2 == 0, next()}); break;
      case 1: s.ops.push_back(Accept{align_down(g, next() % 2 ? Level::L2M : Level::L4K), next() % 2 ? Level::L2M : Level::L4K}); break;
      case 2: s.ops.push_back(Convert{{g, 1 + next() % 1024}, next() % 2 ? Attr::Shared : Attr::Private}); break;
      case 3: s.ops.push_back(Prefault{{g, 1 + next() % 1024}}); break;
      case 4: s.ops.push_back(Inject{FaultSite::Demote, tdx::kOperandBusy, 1}); break;
      case 6: s.ops.push_back(DiscardShared{{g, 1 + next() % 1024}}); break;
      case 7: {  // vCPU 1 races a boundary split: its accept runs at the host's mmu_lock drop
        const Gfn b = align_down(g, Level::L2M);
        s.ops.push_back(Prefault{{b, 0x400}});
        s.ops.push_back(Accept{b + 0x201, Level::L4K, true});
        s.ops.push_back(Convert{{b + 1, 1}, Attr::Shared});
        break;
      }
      default: s.ops.push_back(Accept{g, Level::L4K}); break;
    }
  }
  return s;
}

TEST(Determinism, SameCaseSameEventLog) {
  Scenario s = busy_mix();
  SimRun a = run(s), b = run(s);
  ASSERT_FALSE(a.events.empty());
  EXPECT_EQ(a.events, b.events);
  size_t at_drop = 0;
  for (const Vcpu1Run& v : a.vcpu1) at_drop += v.at_drop;
  EXPECT_GT(at_drop, 0u) << "the mix never ran vCPU 1 at an mmu_lock drop";
  EXPECT_EQ(a.fingerprint, b.fingerprint);
}

// INV-BUSY: no KVM_BUG_ON on legal sequences. The mix arms BUSY at DEMOTE one attempt at a time,
// so two armed in a row make a BUSY on the retry, the one failure KVM must die of.
TEST(Determinism, CleanRandomMixDiesOnlyOfABusyRetry) {
  SimRun a = run(busy_mix());
  std::istringstream lines(a.events);
  std::vector<std::string> last;  // the SEAMCALL and kick lines before each KVM_BUG_ON
  for (std::string line; std::getline(lines, line);) {
    if (line.find("KVM_BUG_ON") != std::string::npos) {
      ASSERT_GE(last.size(), 2u);
      EXPECT_NE(last[last.size() - 1].find("TDH.MEM.PAGE.DEMOTE"), std::string::npos) << line;
      EXPECT_NE(last[last.size() - 1].find("TDX_OPERAND_BUSY"), std::string::npos) << last.back();
      EXPECT_NE(last[last.size() - 2].find("kick"), std::string::npos) << "not a retry: " << last[last.size() - 2];
    }
    if (line.find("seamcall") != std::string::npos || line.find("kick") != std::string::npos) last.push_back(line);
  }
}

}  // namespace
}  // namespace tdxhp::simtest
