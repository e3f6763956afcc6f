#include "properties/property.h"

#include <rapidcheck.h>

#include "domain/describe.h"
#include "generators/scenario_gen.h"

namespace tdxhp {

std::function<void()> rc_property(PropertyRun run) {
  // Shared, not captured by value: RapidCheck copies the property for every case it runs, and
  // a PropertyRun copy (its std::functions, the profile) was ~9 allocations per case.
  struct Shared {
    PropertyRun run;
    LockstepOptions opt;
  };
  auto sh = std::make_shared<Shared>();
  sh->run = std::move(run);
  sh->opt.invariants.insert(sh->run.info->invariants.begin(), sh->run.info->invariants.end());
  sh->opt.stop = sh->run.interrupt;
  auto cases = gen::scenario(sh->run.profile);
  return [sh = std::shared_ptr<const Shared>(std::move(sh)), cases = std::move(cases)] {
    const PropertyRun& run = sh->run;
    const Scenario s = *cases;
    // Out of budget or interrupted: let RapidCheck finish the batch without doing work.
    if ((run.interrupt && run.interrupt->load()) || (run.budget_over && run.budget_over())) return;
    if (run.hooks.before) run.hooks.before(s);
    std::unique_ptr<Target> target = run.make_target();
    LockstepResult r = run_confirmed(*target, s, sh->opt);
    if (r.violation && run.make_reference) {
      std::unique_ptr<Target> reference = run.make_reference();
      if (run_lockstep(*reference, s, sh->opt).violation) r.violation.reset();
    }
    if (run.hooks.after) run.hooks.after(s, r);
    if (!r.ran) RC_DISCARD(r.not_run_reason);
    if (r.violation) RC_FAIL(describe(*r.violation));
  };
}

}  // namespace tdxhp
