// One property per invariant family (DOMAIN.md section 4). The registry says which INV-* each
// checks and which target capabilities it needs; without them the property is SKIPped with the
// target's reason, never reported as a pass.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "domain/types.h"
#include "generators/profile.h"

namespace tdxhp {

struct PropertyInfo {
  std::string id;
  std::string summary;
  std::vector<std::string> invariants;  // the INV-* whose violations fail this property
  std::vector<Cap> needs_all;           // every one of these
  std::vector<Cap> needs_any;           // at least one of these (empty: no condition)
};

const std::vector<PropertyInfo>& properties();
const PropertyInfo* find_property(std::string_view id);
// The property that checks an invariant (each INV-* belongs to exactly one family).
const PropertyInfo* property_for_invariant(std::string_view inv);

// Why the property cannot run on a target with these caps (in the target's words), or nullopt.
std::optional<std::string> skip_reason(const PropertyInfo& p, const Caps& caps);

// Generator settings for this property on this target: only runnable ops, motif weights
// leaning on the shapes where this family's bugs live.
gen::GenProfile profile_for(const PropertyInfo& p, const Caps& caps);

}  // namespace tdxhp
