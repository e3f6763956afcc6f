#include "properties/property.h"

#include <rapidcheck.h>

#include "domain/describe.h"
#include "generators/scenario_gen.h"

namespace tdxhp {

std::function<void()> rc_property(PropertyRun run) {
  return [run, cases = gen::scenario(run.profile)] {
    const Scenario s = *cases;
    // Out of budget or interrupted: let RapidCheck finish the batch without doing work.
    if ((run.interrupt && run.interrupt->load()) || (run.budget_over && run.budget_over())) return;
    if (run.hooks.before) run.hooks.before(s);
    std::unique_ptr<Target> target = run.make_target();
    LockstepOptions opt;
    opt.invariants.insert(run.info->invariants.begin(), run.info->invariants.end());
    opt.stop = run.interrupt;
    LockstepResult r = run_confirmed(*target, s, opt);
    if (r.violation && run.make_reference) {
      std::unique_ptr<Target> reference = run.make_reference();
      if (run_lockstep(*reference, s, opt).violation) r.violation.reset();
    }
    if (run.hooks.after) run.hooks.after(s, r);
    if (!r.ran) RC_DISCARD(r.not_run_reason);
    if (r.violation) RC_FAIL(describe(*r.violation));
  };
}

}  // namespace tdxhp
