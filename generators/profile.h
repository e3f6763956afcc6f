// What a generator may produce for one property on one target: only ops the target can run
// (caps), and how strongly to lean on each bug-shaped motif (DOMAIN.md section 5).
#pragma once

#include <vector>

#include "domain/types.h"

namespace tdxhp::gen {

struct OpContext;
class Choices;
// An op generator that replaces the default one (motifs + swarm), e.g. bench/'s uniform yardstick.
using OpsGenerator = std::vector<Op> (*)(Choices&, const OpContext&);

struct GenProfile {
  Caps caps;                  // ops whose Cap is missing are never generated
  // Motif weights; 0 switches a motif off. Defaults lean on the shapes where the MUT-* live.
  int w_single = 3;           // one op with an alignment-class range
  int w_touch_accept = 3;     // map then accept, at levels that agree or disagree (SC-ACCEPT4K-*)
  int w_partial_convert = 4;  // 2M accepted, convert a sub-range and back (SC-PARTIAL-CONVERT, SC-BOUNDARY)
  int w_round_trip = 4;       // convert a whole region shared and back, then accept (SC-PROMOTE)
  int w_prefault = 2;         // prefault 2M, accept 4K (SC-PREFAULT)
  int w_punch = 2;            // aligned/unaligned punch (SC-PUNCH-ALIGN)
  int w_fault = 3;            // injected BUSY / -ENOMEM / restartable around a split (SC-BUSY, SC-FAIL-MIDWAY)
  int w_pin = 1;              // conversion while pinned (SC-PIN)
  int w_shared_huge = 2;      // huge shared host memory around a private 4K page, partly discarded (INV-ATTR, INV-CONTIG)
  int w_race = 2;             // a second vCPU's accept queued against a splitting conversion (INV-CACHE)
  int w_cross_slot = 2;       // one conversion across two slots (and the hole between)
  int w_slot_cycle = 1;       // a memslot deleted and added back
  bool vary_module = true;    // sometimes tdx_huge_page=N or no bit 51 (SC-OLD-MODULE)
  // Percent of cases drawn by the swarm generator (generators/swarm_gen.h) instead of motifs:
  // uniform ops from a per-case subset of op kinds, to reach shapes no motif aims at.
  int swarm_percent = 30;
  OpsGenerator ops_generator = nullptr;  // null: the default generator
};

}  // namespace tdxhp::gen
