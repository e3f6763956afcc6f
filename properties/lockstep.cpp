#include "properties/lockstep.h"

#include <cerrno>

#include "domain/describe.h"

namespace tdxhp {

namespace {
std::optional<Violation> first_counted(const std::vector<Violation>& vs, const std::set<std::string>& which) {
  for (auto& v : vs)
    if (which.empty() || which.count(v.invariant)) return v;
  return std::nullopt;
}
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
  {
    Observation obs = target.observe();
    auto vs = oracle.after_setup(obs);
    if (opt.on_step) opt.on_step({kSetupStep, nullptr, nullptr, obs, vs, oracle});
    if ((r.violation = first_counted(vs, opt.invariants))) {
      target.teardown();
      return r;
    }
  }
  for (size_t i = 0; i < s.ops.size(); ++i) {
    if (opt.stop && opt.stop->load()) {
      r.interrupted = true;
      target.teardown();
      return r;
    }
    const Op& op = s.ops[i];
    Outcome out = target.apply(op);
    Observation obs = target.observe();
    auto vs = oracle.step(static_cast<int64_t>(i), op, out, obs);
    ++r.steps;
    if (opt.on_step) opt.on_step({static_cast<int64_t>(i), &op, &out, obs, vs, oracle});
    if ((r.violation = first_counted(vs, opt.invariants))) {
      target.teardown();
      return r;
    }
  }
  Observation obs = target.teardown();
  auto vs = oracle.after_teardown(obs);
  if (opt.on_step) opt.on_step({kTeardownStep, nullptr, nullptr, obs, vs, oracle});
  r.violation = first_counted(vs, opt.invariants);
  return r;
}

}  // namespace tdxhp
