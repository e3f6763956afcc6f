// The abstract spec state (DOMAIN.md section 2) over gfn intervals, and the per-step context
// the checks report into. Every map is an IntervalMap: a 16 TiB slot costs what 2 MiB does.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <map>
#include <set>
#include <tuple>
#include <string>
#include <vector>

#include "domain/interval_map.h"
#include "domain/types.h"
#include "oracles/views.h"

namespace tdxhp::oracle_detail {

enum class AcceptState : uint8_t { Pending, Accepted };

// What a guest read of a page must return; Unknown when the spec allows anything.
struct DataToken {
  enum Kind : uint8_t { Unknown, Value, BuildPattern } kind = Unknown;
  uint64_t value = 0;
  std::optional<uint64_t> expected_at(Gfn g) const {
    if (kind == Value) return value;
    if (kind == BuildPattern) return 0xADD0000000000000ULL | g;  // SEMANTICS.md "Setup" 2
    return std::nullopt;
  }
  bool operator==(const DataToken&) const = default;
};

// One step being checked: the op, what the target said, and the violations found so far.
struct StepCtx {
  StepCtx(int64_t i, const Op* o, const Outcome* r, const Observation* ob) : step(i), op(o), out(r), obs(ob) {}
  int64_t step = 0;
  const Op* op = nullptr;
  const Outcome* out = nullptr;
  const Observation* obs = nullptr;
  bool vm_died_legally = false;  // KVM_BUG_ON after an injected interrupted-restartable
  std::vector<Violation> found;
  void report(std::string inv, GfnRange range, std::string expected, std::string seen) {
    found.push_back(Violation{std::move(inv), step, range, std::move(expected), std::move(seen)});
  }
};

// What leaf changes the current op may make (SEMANTICS.md host/guest ops).
struct ChangePolicy {
  bool failed = false;                 // op returned an error: guest-visible change is INV-ATOMIC
  std::optional<GfnRange> zap;         // private leaves inside may go (convert to shared, punch)
  std::optional<GfnRange> split_edges; // leaves straddling these edges may split (boundary split)
  bool ignore_diffs = false;           // TD died mid-op: only the leaves' own rules apply
  const char* frozen = nullptr;        // no leaf of either root may change at all: why

  static ChangePolicy none() { return {}; }
  static ChangePolicy failing(std::optional<GfnRange> edges = std::nullopt) {
    ChangePolicy p;
    p.failed = true;
    p.split_edges = edges;
    return p;
  }
  static ChangePolicy zapping(GfnRange r) {  // split at r's edges, zap inside (L3238-3246)
    ChangePolicy p;
    p.zap = p.split_edges = r;
    return p;
  }
  static ChangePolicy splitting(GfnRange edges) {
    ChangePolicy p;
    p.split_edges = edges;
    return p;
  }
  static ChangePolicy after_death() {
    ChangePolicy p;
    p.ignore_diffs = true;
    return p;
  }
};

// Where an op meets an armed fault (SEMANTICS.md "Inject"), decided from the state it started
// in: the error it must return and, for a conversion, the pass that fails (the passes before
// it stay converted).
struct FailurePlan {
  int64_t step = -1;
  int err = 0;
  std::optional<GfnRange> failing_pass;
  // An accept: the status the module returns without an exit (nullopt: it exits).
  std::optional<uint64_t> accept_no_exit;
};

struct SpecState {
  SpecState(const Config& c, const Caps& k);

  Config cfg;
  Caps caps;
  bool tdx = false;  // Cap::Accept: PENDING/ACCEPTED, mirror root, S-EPT rules
  std::vector<Memslot> slots;  // every slot of the config, sorted by base_gfn
  std::vector<bool> live;      // per slots[i]: present (DeleteSlot removes it, AddSlot brings it back)

  IntervalMap<Attr> attrs;
  LeafView priv, shared;
  BackingView backing;
  IntervalMap<AcceptState> accept;     // only where a private leaf exists (TDX)
  IntervalMap<Level> inhibit_cap;      // GUEST_INHIBIT: largest private leaf allowed (INV-ACCEPT)
  // Mirror page tables are never freed (INV-NOPROMOTE): 2M blocks that have had a 4K page
  // table (leaves at most 4K) and 1G regions that have had a 2M one (leaves at most 2M).
  // Two bool maps, so marking them is one coalescing assign per run (hot path).
  IntervalMap<bool> tables_4k, tables_2m;
  std::optional<std::pair<GfnRange, Level>> table_cap_below(Gfn s, Gfn e, Level level) const;
  IntervalMap<DataToken> data;
  IntervalMap<uint32_t> pins;
  IntervalMap<bool> pfns_in_4k_leaves; // host pfn -> mapped by a private 4K leaf (INV-PAMT)
  IntervalMap<bool> thp_pmd_split;     // per-VM THP shared memory: 2M host blocks mapped 4K since a partial discard
  std::map<Pfn, int32_t> pamt_refcount;  // last DPAMT refcount the target reported per 2M pfn range
  // 2M pfn ranges whose 4K mappings changed this step, with repeats (sorted and made unique
  // where checked): a set's node per insert was a malloc per touched range.
  std::vector<Pfn> pamt_touched;
  // Injected faults per site, in arming order: (status, attempts left); status 0 is -ENOMEM.
  // Per fault site, the armed (status, attempts) in arming order. Vectors: a std::deque
  // allocates even when empty, 18 allocations per case for 9 sites.
  std::array<std::vector<std::pair<uint64_t, uint32_t>>, kFaultSites> armed;
  bool runnable = false;
  bool dead = false;
  Evidence evidence;
  uint64_t cache_underflows = 0;
  uint64_t inhibit_blocks_seen = 0;           // SimInternals.guest_inhibit_blocks, one-way
  std::set<std::tuple<uint32_t, Level, Gfn>> inhibited;  // (slot id, level, block) known inhibited

  // Per-step scratch maps, cleared before each use: kept so a step allocates nothing for them.
  IntervalMap<bool> scratch_dirty, scratch_shown;
  IntervalMap<int8_t> scratch_overlay;

  // ---- queries (spec_state.cpp)
  const Memslot* slot_at(Gfn g) const;  // live slots only, as the other slot queries
  const Memslot* slot_by_id(uint32_t id) const;  // live or not: its gmem file outlives it
  const Memslot* slot_of(const GfnRange& r) const;  // the one slot wholly holding r, if any
  bool covered_by_slots(const GfnRange& r) const;
  // The parts of r inside memslots, in gfn order.
  std::vector<std::pair<const Memslot*, GfnRange>> slot_parts(const GfnRange& r) const;
  // Is every gfn of r `to` already? Per VM gfns never set are shared; in place only gmem counts.
  bool converted_already(const GfnRange& r, Attr to) const;
  uint64_t gmem_index(const Memslot& m, Gfn g) const { return m.gmem_offset + (g - m.base_gfn); }
  Gfn gfn_of_index(const Memslot& m, uint64_t idx) const { return m.base_gfn + (idx - m.gmem_offset); }
  Attr attr_at(Gfn g) const;
  bool all_attr(const GfnRange& r, Attr a) const;
  bool all_accepted(const GfnRange& r) const;
  std::optional<GfnRange> first_shared_leaf(const GfnRange& r) const;  // its part inside r
  void arm(const Inject& in) { armed[size_t(in.site)].push_back({in.status, in.count}); }
  std::optional<uint64_t> take_armed(FaultSite site);  // consumes one attempt; nullopt when none
  Level max_level_now() const;  // INV-LEVELCAP for the current lifecycle and config
  // Per-VM shared memory: the host page index of gfn g (HVA offset in 4K pages from the
  // slot's huge-aligned HVA base), and the host mapping level a shared leaf at block g of
  // `level` may reach (INV-CONTIG; SEMANTICS.md "Backing").
  uint64_t host_index(const Memslot& m, Gfn g) const { return m.hva_offset + (g - m.base_gfn); }
  bool host_allows_shared(const Memslot& m, Gfn block, Level level) const;
  bool allows_private_2m(Gfn block) const;  // INV-LIVE preconditions, from the pre-step state
  // In place: are the gfns of the order-`order` folio block holding gmem index idx all of one
  // attribute (with `b` taken as `to`, when given)? Indices outside the slot stay private.
  bool folio_uniform(const Memslot& m, uint64_t idx, uint8_t order, const GfnRange* b = nullptr,
                     Attr to = Attr::Private) const;
  std::string describe_gfn(Gfn g) const;
  size_t pieces() const;

  // ---- learning from an observation (learn.cpp)
  void learn(StepCtx& c, const ChangePolicy& p);
  void check_private_run(StepCtx& c, const LeafRun& r);
  void check_shared_run(StepCtx& c, const LeafRun& r);
  void check_backed(StepCtx& c, Gfn a, Gfn b, const LeafVal& v);  // INV-CONTIG against gmem
  void check_inhibit_over(StepCtx& c, const GfnRange& r);          // INV-ACCEPT one-way inhibit
  void check_private_gone(StepCtx& c, const GfnRange& r, const char* why);  // INV-PRECISE
  // In place, after converting r: the huge folios at its ends hold one attribute (INV-ATTR).
  void check_folios_uniform(StepCtx& c, const Memslot& m, const GfnRange& r);

  // The attributes and accept states the target shows, against the spec's, once the op's own
  // rules have updated the spec (learn.cpp).
  void check_observed_states(StepCtx& c);

  // ---- events, kernel log, internals (checks_events.cpp)
  // SEAMCALL statuses and KVM's reaction (INV-BUSY): consumes the injected ones and sets
  // c.vm_died_legally when a KVM_BUG_ON follows a failure that calls for one.
  void check_seamcalls(StepCtx& c);
  void check_events(StepCtx& c);
  void check_internals(StepCtx& c);

  // ---- ops (checks_ops.cpp): allowed outcomes from the pre-step state, then learning
  void on_op(StepCtx& c);
  FailurePlan plan_failure(int64_t step, const Op& op);  // consumes the armed faults it meets
  std::optional<uint64_t> accept_without_exit(Gfn g, Level A) const;
  std::string accept_words(Gfn g) const;
  FailurePlan planned(int64_t step, const Op& op);       // the plan begin() made, else a new one
  FailurePlan plan;
  void lower_cap_inhibit(const Memslot& m, Gfn block, Level block_level, Level cap);
};

std::string leaf_words(Gfn start, uint64_t npages, const LeafVal& v, bool is_private = true);
GfnRange op_range(const Op& op);

}  // namespace tdxhp::oracle_detail
