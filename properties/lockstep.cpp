#include "properties/lockstep.h"

#include <cerrno>

#include "domain/describe.h"

namespace tdxhp {

namespace {
std::optional<Violation> first_counted(const std::vector<Violation>& vs, const std::set<std::string>& which) {
  for (auto& v : vs)
    if (which.empty() || which.count(v.invariant) || counts_for_every_property(v.invariant)) return v;
  return std::nullopt;
}

// vCPU 1: guest ops queued by the scenario, run at the next op's mmu_lock drop or after it.
class SecondVcpu {
 public:
  SecondVcpu(Target& t, Oracle& o, const Scenario& s, const LockstepOptions& opt, LockstepResult& r)
      : target_(t), oracle_(o), scenario_(s), opt_(opt), r_(r) {}

  void hold(size_t i) { held_.push_back(i); }
  bool empty() const { return held_.empty(); }

  // Runs held ops in order; at a drop point it stops at the first that must wait for the
  // running op (it stays held, with what it did before the wait checked as a sub-step).
  // False once a violation counts.
  bool run(int64_t during, bool at_drop) {
    while (!held_.empty() && !r_.violation) {
      const size_t i = held_.front();
      const Op op = dequeued(scenario_.ops[i]);
      const Outcome out = target_.apply(op);
      if (!out.waiting) held_.erase(held_.begin());
      const Observation obs = target_.observe();
      auto vs = oracle_.step(static_cast<int64_t>(i), op, out, obs);
      if (opt_.on_step) opt_.on_step({static_cast<int64_t>(i), &op, &out, obs, vs, oracle_, during, at_drop});
      r_.violation = first_counted(vs, opt_.invariants);
      if (out.waiting) break;
    }
    return !r_.violation;
  }

 private:
  Target& target_;
  Oracle& oracle_;
  const Scenario& scenario_;
  const LockstepOptions& opt_;
  LockstepResult& r_;
  std::vector<size_t> held_;
};
}  // namespace

LockstepResult run_lockstep(Target& target, const Scenario& s, const LockstepOptions& opt) {
  LockstepResult r;
  std::string why;
  const int err = target.setup(s.config, &why);
  if (err == -EOPNOTSUPP) {
    r.not_run_reason = target.name() + " cannot build this config: " + why;
    return r;
  }
  r.ran = true;
  if (err != 0) {
    // The generators only make buildable configs (validate_config), so a refused build is a finding.
    Violation v{"setup", kSetupStep, {}, "the TD builds (slots, build pages, finalize)",
                "setup returned " + errno_name(err) + (why.empty() ? "" : ": " + why)};
    r.violation = v;
    return r;
  }
  Oracle oracle(s.config, target.caps());
  r.coverage = &oracle.coverage();
  {
    Observation obs = target.observe();
    auto vs = oracle.after_setup(obs);
    if (opt.on_step) opt.on_step({kSetupStep, nullptr, nullptr, obs, vs, oracle});
    if ((r.violation = first_counted(vs, opt.invariants))) {
      target.teardown();
      r.evidence = oracle.evidence();
      return r;
    }
  }
  SecondVcpu vcpu1(target, oracle, s, opt, r);
  for (size_t i = 0; i < s.ops.size(); ++i) {
    if (opt.stop && opt.stop->load()) {
      r.interrupted = true;
      target.teardown();
      r.evidence = oracle.evidence();
      return r;
    }
    const Op& op = s.ops[i];
    const bool queued = is_queued(op);
    const int64_t step = static_cast<int64_t>(i);
    const bool hooked = !queued && !vcpu1.empty();
    if (hooked)
      target.set_mmu_lock_drop_hook([&, once = false]() mutable {
        if (!once) vcpu1.run(step, true);
        once = true;
      });
    if (!queued) oracle.begin(step, op);
    Outcome out = target.apply(op);
    if (hooked) target.set_mmu_lock_drop_hook(nullptr);
    Observation obs = target.observe();
    ++r.steps;
    if (r.violation) {  // found by a queued op at the drop point; the op itself ran to its end
      target.teardown();
      r.evidence = oracle.evidence();
      return r;
    }
    auto vs = oracle.step(step, op, out, obs);
    if (opt.on_step) opt.on_step({step, &op, &out, obs, vs, oracle});
    if ((r.violation = first_counted(vs, opt.invariants))) {
      target.teardown();
      r.evidence = oracle.evidence();
      return r;
    }
    if (queued && !out.unsupported && out.err == 0) vcpu1.hold(i);
    if ((!queued || i + 1 == s.ops.size()) && !vcpu1.run(step, false)) {
      target.teardown();
      r.evidence = oracle.evidence();
      return r;
    }
  }
  Observation obs = target.teardown();
  auto vs = oracle.after_teardown(obs);
  if (opt.on_step) opt.on_step({kTeardownStep, nullptr, nullptr, obs, vs, oracle});
  r.violation = first_counted(vs, opt.invariants);
  r.evidence = oracle.evidence();
  return r;
}

LockstepResult run_confirmed(Target& target, const Scenario& s, const LockstepOptions& opt) {
  LockstepResult r = run_lockstep(target, s, opt);
  if (!r.violation || !target.reused_vm()) return r;
  // State an earlier case left in the VM must not decide a verdict: run it on a new VM.
  target.build_fresh_next();
  LockstepResult fresh = run_lockstep(target, s, opt);
  if (fresh.violation || !fresh.ran || fresh.interrupted) return fresh;
  r.violation->seen += " [seen only on a VM reset from an earlier case; a new VM ran this case clean: "
                       "KVM kept state across memslot deletion, or tdxhp's reset missed some]";
  return r;
}

}  // namespace tdxhp
