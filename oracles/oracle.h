// The spec model (DOMAIN.md sections 2-4). It states what is allowed; it never asks a target
// what to expect. KVM has latitude (4K where 2M is allowed), so the oracle checks that what
// happened is allowed and then learns the choice the target made.
#pragma once

#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "domain/types.h"

namespace tdxhp {

class Oracle {
 public:
  // `caps` tells which observations will arrive and what the target can do (e.g. no Accept
  // on a SW-protected VM); invariants that need a missing capability are not checked.
  Oracle(const Config& config, const Caps& caps);
  ~Oracle();
  Oracle(Oracle&&) noexcept;
  Oracle& operator=(Oracle&&) noexcept;

  // Right after Target::setup: the TD build (4K ADDs), the first full observation.
  std::vector<Violation> after_setup(const Observation& obs);
  // Before a top-level op is applied: where it will fail on an armed fault is decided by the
  // state it starts from, before a second vCPU runs inside it at an mmu_lock drop. Optional:
  // step() predicts from its own pre-step state when begin() was not called for it.
  void begin(int64_t step, const Op& op);
  // After each op. `step` is the op's index in the scenario.
  std::vector<Violation> step(int64_t step, const Op& op, const Outcome& outcome, const Observation& obs);
  // After Target::teardown (INV-PAMT baseline).
  std::vector<Violation> after_teardown(const Observation& obs);

  // INV-* ids this oracle can check with the given caps and config.
  std::set<std::string> checkable() const;
  // Every INV-* with "" when checkable, else why not ("needs LeafLevels (...)").
  const std::map<std::string, std::string>& coverage() const;
  // What the checks have looked at so far (leaves, reads, accept statuses, ...).
  const Evidence& evidence() const;
  // What a guest read of gfn must return now (last write, or zero after a punch/accept);
  // nullopt when the spec leaves it open (shared contents after a conversion). For exports.
  std::optional<uint64_t> expected_read(Gfn gfn) const;
  // The oracle's view of one gfn in domain words, for step traces.
  std::string describe_gfn(Gfn gfn) const;
  // Interval pieces the spec state holds now: the oracle's memory and per-step work scale
  // with this, never with guest size (SC-BOUNDARY).
  size_t state_pieces() const;

 private:
  struct State;
  std::unique_ptr<State> s_;
};

}  // namespace tdxhp
