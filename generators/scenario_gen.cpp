#include "generators/scenario_gen.h"

#include "domain/describe.h"
#include "generators/config_gen.h"
#include "generators/op_gen.h"

namespace tdxhp {

void showValue(const Op& op, std::ostream& os) { os << describe(op); }

void showValue(const Scenario& s, std::ostream& os) {
  os << describe(s.config) << "\n";
  for (size_t i = 0; i < s.ops.size(); ++i) os << "  " << i << ": " << describe(s.ops[i]) << "\n";
}

}  // namespace tdxhp

namespace tdxhp::gen {

rc::Gen<Scenario> scenario(const GenProfile& profile) {
  // mapcat: shrinking the config first regenerates ops for the smaller config from the same
  // randomness, so shrunk cases stay aimed at real regions of their slots.
  return rc::gen::mapcat(config(profile), [profile](const Config& c) {
    return rc::gen::mapcat(op_context(c, profile), [c](const OpContext& ctx) {
      return rc::gen::map(ops(ctx), [c](std::vector<Op> v) { return Scenario{c, std::move(v)}; });
    });
  });
}

}  // namespace tdxhp::gen
