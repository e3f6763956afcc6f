#include "properties/lockstep.h"

#include <cerrno>
#include <chrono>

#include "domain/describe.h"

namespace tdxhp {

namespace {

// Forwards to the target and adds the wall time of its calls to `seconds`, so a run can say
// where its time went. Calls made from inside a call (vCPU 1 at an mmu_lock drop) are already
// inside the outer one's time.
class TimedTarget final : public Target {
 public:
  TimedTarget(Target& t, double& seconds) : t_(t), seconds_(seconds) {}
  std::string name() const override { return t_.name(); }
  Caps caps() const override { return t_.caps(); }
  int setup(const Config& c, std::string* why) override {
    Span s(*this);
    return t_.setup(c, why);
  }
  Outcome apply(const Op& op) override {
    Span s(*this);
    return t_.apply(op);
  }
  Observation observe() override {
    Span s(*this);
    return t_.observe();
  }
  void observe_into(Observation& o) override {
    Span s(*this);
    t_.observe_into(o);
  }
  Observation teardown() override {
    Span s(*this);
    return t_.teardown();
  }
  void set_mmu_lock_drop_hook(std::function<void()> hook) override { t_.set_mmu_lock_drop_hook(std::move(hook)); }
  bool set_mutant(const std::string& id) override { return t_.set_mutant(id); }
  bool reused_vm() const override { return t_.reused_vm(); }
  void build_fresh_next() override { t_.build_fresh_next(); }

 private:
  using Clock = std::chrono::steady_clock;
  struct Span {  // one call; only the outermost is timed
    explicit Span(TimedTarget& t) : t_(t), t0_(t.depth_++ == 0 ? Clock::now() : Clock::time_point{}) {}
    ~Span() {
      if (--t_.depth_ == 0) t_.seconds_ += std::chrono::duration<double>(Clock::now() - t0_).count();
    }
    TimedTarget& t_;
    Clock::time_point t0_;
  };
  Target& t_;
  double& seconds_;
  int depth_ = 0;
};

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
      target_.observe_into(obs_);
      auto vs = oracle_.step(static_cast<int64_t>(i), op, out, obs_);
      if (opt_.on_step) opt_.on_step({static_cast<int64_t>(i), &op, &out, obs_, vs, oracle_, during, at_drop});
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
  Observation obs_;  // reused from op to op (Target::observe_into)
};

// The case in lockstep; run_lockstep times it.
LockstepResult run_steps(Target& target, const Scenario& s, const LockstepOptions& opt) {
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
  Observation obs;  // one per case, refilled after every op (Target::observe_into)
  {
    target.observe_into(obs);
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
    target.observe_into(obs);
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
  obs = target.teardown();
  auto vs = oracle.after_teardown(obs);
  if (opt.on_step) opt.on_step({kTeardownStep, nullptr, nullptr, obs, vs, oracle});
  r.violation = first_counted(vs, opt.invariants);
  r.evidence = oracle.evidence();
  return r;
}

}  // namespace

LockstepResult run_lockstep(Target& target, const Scenario& s, const LockstepOptions& opt) {
  const auto t0 = std::chrono::steady_clock::now();
  double in_target = 0;
  TimedTarget timed(target, in_target);
  LockstepResult r = run_steps(timed, s, opt);
  r.target_seconds = in_target;
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
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
