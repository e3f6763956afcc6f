#include "runners/engine/replay.h"

#include <ostream>

#include "domain/describe.h"

namespace tdxhp::engine {

namespace {
std::optional<Gfn> gfn_of(const Op& op) {
  return std::visit(
      [](const auto& o) -> std::optional<Gfn> {
        if constexpr (requires { o.range; })
          return o.range.start;
        else if constexpr (requires { o.gfn; })
          return o.gfn;
        else
          return std::nullopt;
      },
      op);
}
}  // namespace

LockstepResult replay_scenario(Target& target, const Scenario& s, const ReplayOptions& opt, std::ostream& out) {
  LockstepOptions lo;
  lo.invariants = opt.invariants;
  lo.stop = opt.stop;
  bool reported = false;
  lo.on_step = [&](const StepView& v) {
    if (v.op) {
      out << "  " << describe_step(v.step) << ": " << describe(*v.op) << " -> " << describe(*v.outcome);
      if (v.ran_during >= 0)
        out << " (vCPU 1, " << (v.at_mmu_lock_drop ? "at the mmu_lock drop of " : "after ")
            << describe_step(v.ran_during) << ")";
      out << "\n";
    } else if (opt.trace) {
      out << "  " << describe_step(v.step) << "\n";
    }
    if (opt.trace) {
      for (auto& e : v.observation.events) out << "      event: " << describe(e) << "\n";
      for (auto& k : v.observation.kernel_log) out << "      kernel: " << k << "\n";
      if (v.op)
        if (auto g = gfn_of(*v.op)) out << "      oracle: " << v.oracle.describe_gfn(*g) << "\n";
      out << "      verdict: " << (v.violations.empty() ? "allowed" : std::to_string(v.violations.size()) + " violation(s)")
          << "\n";
    }
    for (auto& viol : v.violations) {
      const bool counts =
          opt.invariants.empty() || opt.invariants.count(viol.invariant) || counts_for_every_property(viol.invariant);
      if (!counts && !opt.trace) continue;
      const bool first = counts && !reported;
      out << "    " << (first ? "VIOLATION " : counts ? "also " : "(not counted) ") << describe(viol) << "\n";
      if (first) reported = true;
    }
  };
  target.build_fresh_next();  // a replay starts from a new VM, as the case file describes
  return run_lockstep(target, s, lo);
}

}  // namespace tdxhp::engine
