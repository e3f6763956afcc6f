// Conformance tables: what the TDX module and KVM do, row by row, each row citing where the rule
// comes from; the sim and the oracle are both held to every row.
//
// ACCEPT: `intel/tdx-module` src/td_dispatcher/vm_exits/tdg_mem_page_accept.c,
// tdg_mem_page_accept() / check_tdaccept_failure() (identical in 1.5.01 and 2.0.04), with KVM's
// exit path tdx_honor_guest_accept_level() (seed 001 L2436-2515). The sim must produce the
// row's status, exit and GUEST_INHIBIT; the oracle must accept the row's status on the sim's
// observation and report INV-ACCEPT for every other status the module can return.
//
// SEAMCALL errors: KVM's reaction in tdx.c of the series (L1580-1614): tdh_do_no_vcpus() for
// BLOCK, TRACK, DEMOTE, REMOVE; -EBUSY and a fault retry for AUG and SEPT.ADD; TDX_BUG_ON for
// everything else. The sim must react so; the oracle must pass that reaction and report a TD that
// lives on after a fatal status or dies of a single BUSY.
#include <gtest/gtest.h>

#include <cerrno>
#include <functional>
#include <string>
#include <vector>

#include "domain/describe.h"
#include "oracles/oracle.h"
#include "runners/sim/sim_target.h"

namespace tdxhp {
namespace {

constexpr Gfn kB = 0x100000;  // 1G-aligned, so 1G rows fit
constexpr uint64_t k2M = 512, k1G = 512 * 512;

enum class Backing { Huge2M, Huge1G, Small };

Config config(Backing b) {
  Config c;
  c.slots = {Memslot{0, kB, k1G, 0, 0}};
  c.backing = b == Backing::Huge1G ? BackingKind::Hugetlb1G : b == Backing::Small ? BackingKind::Page4K
                                                                                 : BackingKind::Hugetlb2M;
  if (b == Backing::Huge1G) c.max_private_level = Level::L1G;  // the what-if that makes 1G leaves
  return c;
}

struct AcceptRow {
  const char* state;    // the S-EPT entry the walk meets
  Backing backing;
  std::vector<Op> setup;
  Accept accept;
  uint64_t status;      // what the guest sees
  bool exit;            // an EPT violation reaches KVM
  int inhibit_blocks;   // GUEST_INHIBIT blocks set by the accept
  int leaf_after;       // level of the leaf at gfn afterwards (-1 none)
  const char* source;
};

const uint64_t kInvalid = tdx::kOperandInvalid | tdx::kOperandIdRcx;
uint64_t already(Level l) { return tdx::with_level(tdx::kPageAlreadyAccepted, l); }
uint64_t mismatch(Level l) { return tdx::with_level(tdx::kPageSizeMismatch, l); }

const std::vector<AcceptRow>& accept_rows() {
  using L = Level;
  static const std::vector<AcceptRow> rows = {
      // ---- A = 4K
      {"no mapping", Backing::Huge2M, {}, {kB + 5, L::L4K}, tdx::kSuccess, true, 2, 0,
       "case 2 (entry not present at 4K) -> EPT violation; KVM inhibits 2M+1G, maps 4K; the re-executed ACCEPT succeeds"},
      {"PENDING 4K leaf", Backing::Small, {Access{kB + 5}}, {kB + 5, L::L4K}, tdx::kSuccess, false, 0, 0,
       "walk reaches 4K, entry PENDING -> init_sept_4k_page(), MAPPED"},
      {"ACCEPTED 4K leaf", Backing::Small, {Access{kB + 5}, Accept{kB + 5, L::L4K}}, {kB + 5, L::L4K}, already(L::L4K),
       false, 0, 0, "walk reaches 4K, guest-accessible leaf -> TDX_PAGE_ALREADY_ACCEPTED + level"},
      {"PENDING 2M leaf", Backing::Huge2M, {Prefault{{kB, k2M}}}, {kB + 5, L::L4K}, tdx::kSuccess, true, 2, 0,
       "case 1.2 (walk stops at a PENDING larger leaf) -> EPT violation; KVM splits to 4K, inhibits 2M+1G"},
      {"ACCEPTED 2M leaf", Backing::Huge2M, {Prefault{{kB, k2M}}, Accept{kB, L::L2M}}, {kB + 5, L::L4K},
       already(L::L2M), false, 0, 1, "case 1.1 (walk stops at a guest-accessible larger leaf) -> ALREADY_ACCEPTED + its level"},
      {"PENDING 1G leaf", Backing::Huge1G, {Prefault{{kB, k1G}}}, {kB + 5, L::L4K}, tdx::kSuccess, true, 2, 0,
       "case 1.2 -> EPT violation; KVM splits 1G -> 2M -> 4K around gfn"},
      {"page table at 2M, gfn's 4K leaf zapped", Backing::Huge2M,
       {Accept{kB + 5, L::L4K}, Convert{{kB + 5, 1}, Attr::Shared}, Convert{{kB + 5, 1}, Attr::Private}},
       {kB + 5, L::L4K}, tdx::kSuccess, true, 0, 0,
       "walk passes the 2M table, 4K entry FREE -> EPT violation; 2M/1G already inhibited; maps 4K"},
      // ---- A = 2M
      {"no mapping", Backing::Huge2M, {}, {kB, L::L2M}, tdx::kSuccess, true, 1, 1,
       "case 2 -> EPT violation; KVM inhibits 1G, maps 2M; the re-executed ACCEPT succeeds"},
      {"no mapping, block can only map 4K", Backing::Huge2M, {Convert{{kB + 7, 1}, Attr::Shared}}, {kB, L::L2M},
       mismatch(L::L2M), true, 1, 0,
       "case 2 -> EPT violation; KVM maps 4K (mixed block); the re-executed ACCEPT meets a table: case 3"},
      {"PENDING 2M leaf", Backing::Huge2M, {Prefault{{kB, k2M}}}, {kB, L::L2M}, tdx::kSuccess, false, 0, 1,
       "walk reaches 2M, entry PENDING -> accept_counter loop, MAPPED"},
      {"ACCEPTED 2M leaf", Backing::Huge2M, {Prefault{{kB, k2M}}, Accept{kB, L::L2M}}, {kB, L::L2M}, already(L::L2M),
       false, 0, 1, "walk reaches 2M, guest-accessible leaf -> ALREADY_ACCEPTED + level"},
      {"4K leaf (a page table at 2M)", Backing::Huge2M, {Accept{kB, L::L4K}}, {kB, L::L2M}, mismatch(L::L2M), false, 0,
       0, "case 3: non-leaf entry at the requested level -> TDX_PAGE_SIZE_MISMATCH + level, no exit"},
      {"page table at 2M, gfn's 4K leaf zapped", Backing::Huge2M,
       {Accept{kB, L::L4K}, Convert{{kB, 1}, Attr::Shared}, Convert{{kB, 1}, Attr::Private}}, {kB, L::L2M},
       mismatch(L::L2M), false, 0, -1, "case 3: the table stays after its leaves are zapped (INV-NOPROMOTE), no exit"},
      {"PENDING 1G leaf", Backing::Huge1G, {Prefault{{kB, k1G}}}, {kB, L::L2M}, tdx::kSuccess, true, 1, 1,
       "case 1.2 -> EPT violation; KVM splits 1G -> 2M, inhibits 1G"},
      // ---- A = 1G and bad operands
      {"no mapping", Backing::Huge1G, {}, {kB, L::L1G}, kInvalid, false, 0, -1,
       "verify_page_info_input(gpa, LVL_PT, LVL_PD): 4K and 2M only -> OPERAND_INVALID + RCX"},
      {"PENDING 1G leaf", Backing::Huge1G, {Prefault{{kB, k1G}}}, {kB, L::L1G}, kInvalid, false, 0, 2,
       "verify_page_info_input: a 1G accept never walks"},
      {"ACCEPTED 2M leaf", Backing::Huge2M, {Prefault{{kB, k2M}}, Accept{kB, L::L2M}}, {kB, L::L1G}, kInvalid, false, 0,
       1, "verify_page_info_input: a 1G accept never walks"},
      {"no mapping, gfn not 2M-aligned", Backing::Huge2M, {}, {kB + 1, L::L2M}, kInvalid, false, 0, -1,
       "verify_page_info_input: GPA not aligned to the level -> OPERAND_INVALID + RCX"},
  };
  return rows;
  // Not reachable here: a BLOCKED entry (case 1.2 / "not PENDING" -> exit) exists only inside a
  // split or zap, under mmu_lock, where no guest accept runs in the sim; an ACCEPTED 1G leaf
  // cannot exist since no ACCEPT takes 1G.
}

struct RowRun {
  Outcome out;
  Observation obs;
  std::vector<Violation> found;
  uint64_t inhibit_before = 0, inhibit_after = 0;
  int leaf_after = -1;
  bool exit = false;
};

int leaf_level_at(const Observation& o, Gfn g, int was) {
  for (const LeafWindow& w : o.leaf_windows) {
    if (!w.is_private || !w.range.contains(g)) continue;
    for (const LeafRun& r : w.runs)
      if (r.range.contains(g)) return static_cast<int>(r.level);
    return -1;
  }
  return was;
}

// Sets up the row's state on the sim and the oracle, applies `last`, and checks it with the
// oracle after `edit` has replaced what the sim answered.
RowRun run_row(const Config& cfg, const std::vector<Op>& setup, const Op& last, Gfn g,
            const std::function<void(Outcome&)>& edit = nullptr) {
  RowRun r;
  auto t = make_sim_target();
  std::string why;
  EXPECT_EQ(t->setup(cfg, &why), 0) << why;
  Oracle oracle(cfg, t->caps());
  Observation o = t->observe();
  EXPECT_TRUE(oracle.after_setup(o).empty());
  int level = leaf_level_at(o, g, -1);
  int64_t i = 0;
  for (const Op& op : setup) {
    oracle.begin(i, op);
    const Outcome out = t->apply(op);
    o = t->observe();
    level = leaf_level_at(o, g, level);
    for (const Violation& v : oracle.step(i++, op, out, o)) ADD_FAILURE() << "setup: " << describe(v);
  }
  r.inhibit_before = o.internals ? o.internals->guest_inhibit_blocks : 0;
  oracle.begin(i, last);
  r.out = t->apply(last);
  r.obs = t->observe();
  for (const Event& e : r.obs.events) r.exit = r.exit || e.name == "ept-violation";
  r.inhibit_after = r.obs.internals ? r.obs.internals->guest_inhibit_blocks : 0;
  r.leaf_after = leaf_level_at(r.obs, g, level);
  Outcome checked = r.out;
  if (edit) edit(checked);
  r.found = oracle.step(i, last, checked, r.obs);
  return r;
}

std::string row_name(const AcceptRow& row) {
  return "accept at " + std::string(name(row.accept.level)) + " over " + row.state + " (" + row.source + ")";
}

TEST(AcceptConformance, SimFollowsTheModule) {
  for (const AcceptRow& row : accept_rows()) {
    SCOPED_TRACE(row_name(row));
    const RowRun r = run_row(config(row.backing), row.setup, row.accept, row.accept.gfn);
    EXPECT_EQ(r.out.err, 0) << describe(r.out);
    EXPECT_EQ(r.out.tdx_status, row.status) << tdx_status_name(r.out.tdx_status) << " vs " << tdx_status_name(row.status);
    EXPECT_EQ(r.exit, row.exit);
    EXPECT_EQ(static_cast<int>(r.inhibit_after - r.inhibit_before), row.inhibit_blocks);
    EXPECT_EQ(r.leaf_after, row.leaf_after);
    for (const Violation& v : r.found) ADD_FAILURE() << describe(v);
  }
}

TEST(AcceptConformance, OracleTakesOnlyTheModulesStatus) {
  const std::vector<uint64_t> statuses = {tdx::kSuccess,     already(Level::L4K),  already(Level::L2M),
                                          already(Level::L1G), mismatch(Level::L2M), kInvalid};
  for (const AcceptRow& row : accept_rows()) {
    SCOPED_TRACE(row_name(row));
    for (uint64_t wrong : statuses) {
      if (wrong == row.status) continue;
      const RowRun r = run_row(config(row.backing), row.setup, row.accept, row.accept.gfn,
                            [&](Outcome& o) { o.tdx_status = wrong; });
      bool accept_reported = false;
      for (const Violation& v : r.found) accept_reported = accept_reported || v.invariant == "INV-ACCEPT";
      EXPECT_TRUE(accept_reported) << "the oracle took " << tdx_status_name(wrong);
    }
  }
}

// ---- SEAMCALL errors: one site, one injected fault, KVM's reaction.

struct SeamcallRow {
  FaultSite site;
  uint64_t status;
  uint32_t count;
  bool td_dies;      // KVM_BUG_ON, the op returns -EIO
  bool kick_retry;   // a kick, then the same SEAMCALL again
  const char* source;
};

const std::vector<SeamcallRow>& seamcall_rows() {
  using S = FaultSite;
  const uint64_t busy = tdx::kOperandBusy;
  static const std::vector<SeamcallRow> rows = {
      {S::Block, busy, 1, false, true, "tdh_do_no_vcpus: BUSY -> kick all vCPUs, retry once (L1580-1589)"},
      {S::Track, busy, 1, false, true, "tdx_track: tdh_do_no_vcpus (L1580-1589)"},
      {S::Demote, busy, 1, false, true, "tdx_sept_split_private_spte: tdh_do_no_vcpus (seed 004, L1611)"},
      {S::Remove, busy, 1, false, true, "tdx_sept_remove_private_spte: tdh_do_no_vcpus"},
      {S::Block, busy, 2, true, true, "BUSY on the retry: TDX_BUG_ON_2 (L1604-1609)"},
      {S::Track, busy, 2, true, true, "BUSY on the retry: TDX_BUG_ON"},
      {S::Demote, busy, 2, true, true, "BUSY on the retry: TDX_BUG_ON_2 (L1611-1614)"},
      {S::Remove, busy, 2, true, true, "BUSY on the retry: TDX_BUG_ON_2"},
      {S::Demote, tdx::kSwError, 1, true, false, "any other error: TDX_BUG_ON_2, no retry (L1611-1614)"},
      {S::Demote, tdx::kInterruptedRestartable, 1, true, false, "never retried (L9779, L14243-14250)"},
      {S::Demote, tdx::kOperandInvalid | tdx::kOperandIdRcx, 1, true, false, "any other error: TDX_BUG_ON_2"},
      {S::Block, tdx::kEptEntryStateIncorrect, 1, true, false, "any other error: TDX_BUG_ON_2 (L1604-1609)"},
      {S::Track, tdx::kOperandInvalid, 1, true, false, "any other error: TDX_BUG_ON"},
      {S::Remove, tdx::kGpaRangeNotBlocked, 1, true, false, "any other error: TDX_BUG_ON_2"},
      {S::Wbinvd, tdx::kOperandInvalid, 1, true, false, "tdh_phymem_page_wbinvd_hkid: TDX_BUG_ON"},
      {S::Aug, busy, 1, false, false, "tdx_mem_page_aug: BUSY -> -EBUSY, the fault retries (no kick)"},
      {S::Aug, busy, 3, false, false, "each retried fault meets the next armed BUSY"},
      {S::Aug, tdx::kEptEntryStateIncorrect, 1, true, false, "tdx_mem_page_aug: TDX_BUG_ON_2"},
      {S::SeptAdd, busy, 1, false, false, "tdx_sept_link_private_spt: BUSY -> -EBUSY, the fault retries"},
      {S::SeptAdd, tdx::kOperandInvalid, 1, true, false, "tdx_sept_link_private_spt: TDX_BUG_ON_2"},
  };
  return rows;
}

// The op that reaches the site: a split for BLOCK/TRACK/DEMOTE, a zap for REMOVE/WBINVD, a
// fault for AUG/SEPT.ADD.
std::vector<Op> setup_for(FaultSite s) {
  if (s == FaultSite::Aug || s == FaultSite::SeptAdd) return {};
  if (s == FaultSite::Remove || s == FaultSite::Wbinvd) return {Prefault{{kB, k2M}}};
  return {Prefault{{kB, k2M}}};
}
Op trigger_for(FaultSite s) {
  if (s == FaultSite::Aug || s == FaultSite::SeptAdd) return Access{kB + 3};
  if (s == FaultSite::Remove || s == FaultSite::Wbinvd) return Convert{{kB, k2M}, Attr::Shared};
  return Accept{kB + 3, Level::L4K};
}

std::string row_name(const SeamcallRow& row) {
  return describe(Op{Inject{row.site, row.status, row.count}}) + " (" + row.source + ")";
}

TEST(SeamcallConformance, SimReactsAsKvm) {
  for (const SeamcallRow& row : seamcall_rows()) {
    SCOPED_TRACE(row_name(row));
    std::vector<Op> setup = setup_for(row.site);
    setup.push_back(Inject{row.site, row.status, row.count});
    const RowRun r = run_row(config(Backing::Huge2M), setup, trigger_for(row.site), kB + 3);
    EXPECT_EQ(r.obs.vm_dead, row.td_dies);
    EXPECT_EQ(r.out.err, row.td_dies ? -EIO : 0) << describe(r.out);
    // The failed call; then a kick and the same SEAMCALL again, or the fault's retry, or
    // KVM_BUG_ON with no further call of it.
    const auto& ev = r.obs.events;
    size_t failed = ev.size();
    for (size_t k = 0; k < ev.size() && failed == ev.size(); ++k)
      if (ev[k].kind == EventKind::Seamcall && ev[k].status == row.status) failed = k;
    ASSERT_LT(failed, ev.size()) << "the injected status never showed";
    bool kick = false, again = false, bug = false;
    for (size_t k = failed + 1; k < ev.size() && !bug; ++k) {
      if (ev[k].kind == EventKind::Kick && !again) kick = true;
      if (ev[k].kind == EventKind::Seamcall && ev[k].name == ev[failed].name) again = true;
      if (ev[k].kind == EventKind::KvmBugOn) bug = true;
    }
    EXPECT_EQ(bug, row.td_dies);
    EXPECT_TRUE(!row.kick_retry || (kick && again)) << "BUSY: kick, then retry";
    EXPECT_TRUE(row.td_dies || again) << "BUSY: retried";
    EXPECT_FALSE(row.td_dies && !row.kick_retry && again) << "a fatal status is never retried";
    for (const Violation& v : r.found) ADD_FAILURE() << describe(v);
  }
}

// The oracle on the row's reaction with the TD's fate flipped: a TD that lives on after a fatal
// status, or dies of a BUSY that was retried, is INV-BUSY.
TEST(SeamcallConformance, OracleRequiresTheReaction) {
  for (const SeamcallRow& row : seamcall_rows()) {
    SCOPED_TRACE(row_name(row));
    std::vector<Op> setup = setup_for(row.site);
    setup.push_back(Inject{row.site, row.status, row.count});
    auto t = make_sim_target();
    const Config cfg = config(Backing::Huge2M);
    std::string why;
    ASSERT_EQ(t->setup(cfg, &why), 0);
    Oracle oracle(cfg, t->caps());
    oracle.after_setup(t->observe());
    int64_t i = 0;
    for (const Op& op : setup) {
      const Outcome out = t->apply(op);
      oracle.step(i++, op, out, t->observe());
    }
    const Op last = trigger_for(row.site);
    Outcome out = t->apply(last);
    Observation obs = t->observe();
    if (row.td_dies) {  // drop KVM_BUG_ON: the TD lives on
      std::erase_if(obs.events, [](const Event& e) { return e.kind == EventKind::KvmBugOn; });
      obs.kernel_log.clear();
      obs.vm_dead = false;
      out.err = 0;
    } else {  // add a KVM_BUG_ON after a BUSY that was retried
      Event bug;
      bug.kind = EventKind::KvmBugOn;
      obs.events.push_back(bug);
      obs.vm_dead = true;
      out.err = -EIO;
    }
    bool busy_reported = false;
    for (const Violation& v : oracle.step(i, last, out, obs)) busy_reported = busy_reported || v.invariant == "INV-BUSY";
    EXPECT_TRUE(busy_reported);
  }
}

}  // namespace
}  // namespace tdxhp
