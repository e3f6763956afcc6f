// Step dispatch: lifecycle (setup, dead TD, teardown), positive returns, the kernel log, then
// the op's own rules (checks_ops.cpp) which learn the observation (learn.cpp).
#include "oracles/oracle.h"

#include <algorithm>
#include <cerrno>
#include <deque>
#include <map>

#include "domain/describe.h"
#include "oracles/spec_state.h"

namespace tdxhp {

using namespace oracle_detail;

struct Oracle::State : SpecState {
  using SpecState::SpecState;
  bool died_legally = false;
  int64_t began_alive = -1;  // the step begin() last saw start on a live TD
};

Oracle::Oracle(const Config& config, const Caps& caps) : s_(std::make_unique<State>(config, caps)) {}
Oracle::~Oracle() = default;
Oracle::Oracle(Oracle&&) noexcept = default;
Oracle& Oracle::operator=(Oracle&&) noexcept = default;

namespace {

// WARN / BUG / KVM_BUG_ON lines mean the kernel caught itself (DOMAIN.md 7): a failure of
// whatever property ran, under its own name so no invariant list filters it out.
void check_kernel_log(StepCtx& c) {
  if (c.vm_died_legally) return;
  for (const std::string& line : c.obs->kernel_log)
    c.report(kKernelWarn, c.op ? op_range(*c.op) : GfnRange{}, "no WARN/BUG/KVM_BUG_ON on a legal sequence",
             "kernel log: " + line);
}

// Counts what this observation gives the checks, and fails on an observer that gave up.
void take_in(StepCtx& c, Evidence& ev) {
  const Observation& o = *c.obs;
  ++ev.steps;
  ev.kernel_lines += static_cast<int64_t>(o.kernel_lines_scanned);
  if (o.has_backing) ev.backing_windows += static_cast<int64_t>(o.backing_windows.size());
  if (o.has_leaves) {
    bool any = false;
    for (const LeafWindow& w : o.leaf_windows)
      for (const LeafRun& r : w.runs) {
        ev.leaves[w.is_private ? 0 : 1][static_cast<int>(r.level)] += static_cast<int64_t>(r.range.npages / pages_in(r.level));
        any = true;
      }
    ev.steps_with_leaves += any;
  }
  if (!o.observer_fault.empty())
    c.report(kObserverFault, c.op ? op_range(*c.op) : GfnRange{}, "the target's observers see every step",
             o.observer_fault);
}

bool bug_on_seen(const Observation& obs) {
  return obs.vm_dead || std::any_of(obs.events.begin(), obs.events.end(),
                                    [](const Event& e) { return e.kind == EventKind::KvmBugOn; });
}

}  // namespace

std::vector<Violation> Oracle::after_setup(const Observation& obs) {
  State& s = *s_;
  Outcome ok;
  StepCtx c{kSetupStep, nullptr, &ok, &obs};
  take_in(c, s.evidence);
  if (bug_on_seen(obs)) {
    c.report("INV-BUSY", {}, "the TD builds without KVM_BUG_ON", "the VM is dead after setup");
    s.dead = true;
  }
  s.runnable = false;  // INV-LEVELCAP: build pages are ADDed at 4K before finalize (L4348-4351)
  s.learn(c, ChangePolicy::none());
  for (const GfnRange& b : s.cfg.build_pages) {
    s.data.assign(b.start, b.end(), DataToken{DataToken::BuildPattern});
    s.priv.map().for_each(b.start, b.end(), [&](uint64_t a, uint64_t e, const LeafVal&) {
      s.accept.assign(a, e, AcceptState::Accepted);  // TDH.MEM.PAGE.ADD pages are ACCEPTED
    });
  }
  s.check_observed_states(c);
  check_kernel_log(c);
  s.runnable = true;
  return std::move(c.found);
}

void Oracle::begin(int64_t step, const Op& op) {
  s_->began_alive = s_->dead ? -1 : step;
  if (!s_->dead) s_->plan = s_->plan_failure(step, op);
}

std::vector<Violation> Oracle::step(int64_t step, const Op& op, const Outcome& outcome, const Observation& obs) {
  State& s = *s_;
  StepCtx c{step, &op, &outcome, &obs};
  take_in(c, s.evidence);
  if (outcome.err > 0)  // MUT-BOOLRET: a bool swallowed the errno
    c.report("INV-ATOMIC", op_range(op), describe(op) + " returns 0 or a negative errno",
             "positive return " + std::to_string(outcome.err));
  if (s.dead) {
    if (!outcome.unsupported && outcome.err != -EIO && outcome.err <= 0)
      c.report("INV-BUSY", op_range(op), "every op on a dead TD returns -EIO", describe(outcome));
    // An op that began on a live TD which vCPU 1 killed at its mmu_lock drop stops there; what
    // it did before is of no more consequence than anything else on a dead TD.
    s.learn(c, s.began_alive == step ? ChangePolicy::after_death() : ChangePolicy::failing());
    return std::move(c.found);
  }
  if (outcome.err == -EINTR) {  // the watchdog interrupted an op that never ended
    c.report("INV-BUSY", op_range(op), "every op ends: no fault or SEAMCALL retries forever",
             describe(op) + " hung until interrupted (" + describe(outcome) + ")");
    s.learn(c, ChangePolicy::after_death());
    return std::move(c.found);
  }
  if (obs.has_events) s.check_seamcalls(c);
  if (bug_on_seen(obs)) {
    s.dead = true;
    // KVM_BUG_ON is legal only right after a SEAMCALL failure that calls for one (SEMANTICS
    // "Dead TD"), and the op that met it returns -EIO.
    if (!c.vm_died_legally)
      c.report("INV-BUSY", op_range(op), "no KVM_BUG_ON / dead VM on a legal sequence (L1580-1589)",
               describe(op) + " killed the TD (" + describe(outcome) + ")");
    else if (!outcome.unsupported && outcome.err != -EIO)
      c.report("INV-BUSY", op_range(op), "the op that met TDX_BUG_ON returns -EIO (L1604-1614)", describe(outcome));
    s.died_legally = s.died_legally || c.vm_died_legally;
    s.learn(c, ChangePolicy::after_death());
    check_kernel_log(c);
    return std::move(c.found);
  }
  s.on_op(c);
  s.check_observed_states(c);
  check_kernel_log(c);
  return std::move(c.found);
}

std::vector<Violation> Oracle::after_teardown(const Observation& obs) {
  State& s = *s_;
  Outcome ok;
  StepCtx c{kTeardownStep, nullptr, &ok, &obs};
  take_in(c, s.evidence);
  c.vm_died_legally = s.died_legally;
  if (obs.internals && s.cfg.features.dynamic_pamt && obs.internals->pamt_pages_in_use != obs.internals->pamt_pages_baseline)
    c.report("INV-PAMT", {}, "DPAMT pages in use back to the idle baseline " +
                                 std::to_string(obs.internals->pamt_pages_baseline) + " after teardown (L13364-13373)",
             std::to_string(obs.internals->pamt_pages_in_use) + " in use");
  check_kernel_log(c);
  return std::move(c.found);
}

namespace {
std::map<std::string, std::string> coverage_of(const Caps& k, const Config& cfg) {
  auto lacks = [&](std::initializer_list<Cap> need) {  // "" when every cap is there
    std::string why;
    for (Cap c : need) {
      if (k(c)) continue;
      auto m = k.missing.find(c);
      why += std::string(why.empty() ? "needs " : ", ") + std::string(name(c)) +
             (m != k.missing.end() ? " (" + m->second + ")" : "");
    }
    return why;
  };
  using enum Cap;
  const std::string leaves = lacks({LeafLevels, PrivateMemory});
  std::map<std::string, std::string> v{{"INV-ATOMIC", ""}, {"INV-BUSY", ""}};
  v["INV-DATA"] = lacks({GuestData});
  for (const char* inv : {"INV-SLOT", "INV-LEVELCAP", "INV-PRECISE"}) v[inv] = leaves;
  v["INV-ATTR"] = lacks({LeafLevels, PrivateMemory, Attributes});
  // INV-CONTIG: private leaves against the gmem backing; per-VM shared leaves against the
  // host mapping, which the config alone bounds.
  v["INV-CONTIG"] = cfg.attr_mode == AttrMode::PerVm ? leaves : lacks({LeafLevels, PrivateMemory, Backing});
  v["INV-ORDER"] = lacks({LeafLevels, PrivateMemory, EventLog, InPlaceConversion});
  // Without TDX accept there is no mirror root: learn() lets normal roots zap and split freely.
  for (const char* inv : {"INV-ACCEPT", "INV-NOPROMOTE", "INV-NOOVERZAP", "INV-NOOVERSPLIT", "INV-LIVE"})
    v[inv] = lacks({LeafLevels, PrivateMemory, Accept});
  v["INV-CACHE"] = lacks({Internals});
  v["INV-PAMT"] = lacks({Internals});
  if (v["INV-PAMT"].empty() && !cfg.features.dynamic_pamt) v["INV-PAMT"] = "needs Dynamic PAMT in the config";
  return v;
}
}  // namespace

// The answer depends on the caps and two config fields only, and is asked once per case:
// worked out once per combination (a map of 14 strings per case cost 3% of a sim run).
const std::map<std::string, std::string>& Oracle::coverage() const {
  struct Known {
    Caps caps;
    AttrMode mode;
    bool dynamic_pamt;
    std::map<std::string, std::string> coverage;
  };
  static std::deque<Known> known;  // references stay valid as it grows
  const Caps& k = s_->caps;
  const Config& cfg = s_->cfg;
  for (const Known& e : known)
    if (e.mode == cfg.attr_mode && e.dynamic_pamt == cfg.features.dynamic_pamt && e.caps.has == k.has &&
        e.caps.missing == k.missing)
      return e.coverage;
  known.push_back({k, cfg.attr_mode, cfg.features.dynamic_pamt, coverage_of(k, cfg)});
  return known.back().coverage;
}

std::set<std::string> Oracle::checkable() const {
  std::set<std::string> v;
  for (auto& [inv, why] : coverage())
    if (why.empty()) v.insert(inv);
  return v;
}

const Evidence& Oracle::evidence() const { return s_->evidence; }

std::string Oracle::describe_gfn(Gfn gfn) const { return s_->describe_gfn(gfn); }

std::optional<uint64_t> Oracle::expected_read(Gfn gfn) const {
  const DataToken* t = s_->data.at(gfn);
  return t ? t->expected_at(gfn) : std::nullopt;
}

size_t Oracle::state_pieces() const { return s_->pieces(); }

}  // namespace tdxhp
