#include "runners/sim/mutants.h"

namespace tdxhp::sim {

namespace {
// Same order as enum Mutant; ids are the stable names of domain/catalog.cpp.
constexpr std::string_view kIds[] = {
    "MUT-SPLIT-BEFORE-UNMAP", "MUT-PROMOTE", "MUT-NO-SPLIT-ZAP", "MUT-NO-ATTR-SPLIT", "MUT-HEAD-ONLY",
    "MUT-1G-MISS", "MUT-OVERSPLIT", "MUT-IGNORE-ACCEPT", "MUT-INHIBIT-BEFORE-SPLIT", "MUT-INHIBIT-CLEARED",
    "MUT-BUILD-HUGE", "MUT-NO-FEATURE-GATE", "MUT-NO-BUSY-RETRY", "MUT-RESTART-LOOP", "MUT-ZAP-THEN-FAIL",
    "MUT-BOOLRET", "MUT-PAMT-LEAK", "MUT-CACHE-RACE", "MUT-HVA-ALIGN", "MUT-NO-MERGE", "MUT-WRONG-ROOT",
    "MUT-UNLOCKED-CONVERT", "MUT-INVALIDATE-LEAK", "MUT-SLOT-PARTIAL-ZAP", "MUT-PRIVATE-ZAP-TO-PRIVATE",
    "MUT-NO-TRACK", "MUT-NO-BLOCK", "MUT-STALE-SPLIT", "MUT-PAMT-PUT-2M", "MUT-AUG-FAIL-PAMT",
    "MUT-SHARED-MIXED", "MUT-THP-SPLIT-MISSED", "MUT-NOTIFIER-NO-ZAP", "MUT-CONVERT-ZAP-SHORT", "MUT-PUNCH-PAST-END"};
static_assert(std::size(kIds) == kMutantCount);
}  // namespace

std::string_view mutant_id(Mutant m) { return kIds[static_cast<size_t>(m)]; }

bool parse_mutant(std::string_view id, Mutant* out) {
  for (size_t i = 0; i < kMutantCount; ++i)
    if (kIds[i] == id) {
      *out = static_cast<Mutant>(i);
      return true;
    }
  return false;
}

}  // namespace tdxhp::sim
