// Replays kvmmmu tracepoint records into the set of leaf SPTEs, so the kvm target can show
// mapping levels as LeafWindows (DOMAIN.md 7: "Mapping levels: tracepoint
// kvmmmu:kvm_tdp_mmu_spte_changed ..., kvm_mmu_split_huge_page"). Pure logic: the tracefs side
// (mmu_trace.h) decodes records into SpteEvents; tests feed synthetic ones.
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "domain/interval_map.h"
#include "domain/types.h"

namespace tdxhp::kvm {

// One decoded kvmmmu record. Levels are KVM's (1 = 4K, 2 = 2M, 3 = 1G); gfns are KVM's
// (guest-physical >> 12), not the scenario's.
struct SpteEvent {
  enum Kind : uint8_t {
    SpteChanged,  // kvm_tdp_mmu_spte_changed: every TDP MMU spte write goes through it
    SetSpte,      // kvm_mmu_set_spte: a new mapping (also sent by the shadow MMU); informational
    SplitHuge,    // kvm_mmu_split_huge_page: a huge leaf became a table of 512 smaller leaves
  };
  Kind kind = SpteChanged;
  uint64_t gfn = 0;
  int level = 1;
  uint64_t old_spte = 0, new_spte = 0;  // SplitHuge: old_spte is the huge spte split
  int as_id = 0;
  int err = 0;  // SplitHuge: 0 when the children were installed
};

// The x86 SPTE bits the replay needs (arch/x86/kvm/mmu/spte.h, 6.12).
namespace spte {
constexpr uint64_t kMmuPresent = 1ULL << 11;  // SPTE_MMU_PRESENT_MASK
constexpr uint64_t kPageSize = 1ULL << 7;     // PT_PAGE_SIZE_MASK: a huge leaf above level 1
constexpr uint64_t kPfnMask = ((1ULL << 52) - 1) & ~((1ULL << 12) - 1);  // bits 12..51
constexpr bool present(uint64_t s) { return (s & kMmuPresent) != 0; }
constexpr bool leaf(uint64_t s, int level) { return present(s) && (level == 1 || (s & kPageSize)); }
constexpr Pfn pfn(uint64_t s) { return (s & kPfnMask) >> 12; }
}  // namespace spte

class LeafReplay {
 public:
  // gfn_base: KVM gfn of scenario gfn 0. shared_bit: KVM gfn bit that names the shared (direct)
  // root of a TD, 0 when one root holds both (SW-protected VMs: the attribute decides).
  LeafReplay(uint64_t gfn_base, uint64_t shared_bit) : base_(gfn_base), shared_bit_(shared_bit) {}

  // is_private(scenario gfn) at the time of the record; used for new leaves only (a leaf keeps
  // the root it was mapped in until it goes away).
  using AttrLookup = std::function<bool(Gfn)>;
  void apply(const SpteEvent& e, const AttrLookup& is_private);

  // Leaves per KVM level (index 0 = 4K) the replay holds now, all gfns of the VM: compared with
  // the binary stats pages_4k/2m/1g, which count the same leaves.
  const std::array<int64_t, 3>& leaf_counts() const { return counts_; }
  // Records that contradicted the replayed state (removing a leaf it did not hold ...).
  const std::vector<std::string>& anomalies() const { return anomalies_; }
  uint64_t events_applied() const { return applied_; }

  // Windows for both roots over every scenario range of `ranges` (clipped to them): the
  // complete content of each root there (types.h LeafWindow).
  std::vector<LeafWindow> windows(const std::vector<GfnRange>& ranges) const;
  // Scenario gfns whose leaves changed since the last take_dirty(), then forgets them.
  std::vector<GfnRange> take_dirty();

 private:
  struct Leaf {
    Level level = Level::L4K;
    uint64_t delta = 0;  // pfn - gfn (mod 2^64): equal for leaves whose pfns run on
    bool is_private = true;
    bool operator==(const Leaf&) const = default;
  };
  void add(uint64_t kgfn, int level, Pfn pfn, bool is_private);
  void remove(uint64_t kgfn, int level);
  void drop_leaves_under(uint64_t kgfn, uint64_t n);
  void mark_dirty(uint64_t kgfn, uint64_t n);  // kvm gfns -> the scenario gfns to observe
  void anomaly(std::string s);

  uint64_t base_, shared_bit_;
  IntervalMap<Leaf> leaves_;  // keyed by KVM gfn with the shared bit stripped
  IntervalMap<bool> dirty_;   // scenario gfns
  // KVM gfns of page tables a huge leaf replaced, with that leaf's level: the tables' children
  // are traced as removed *after* the new leaf (handle_changed_spte traces, then
  // handle_removed_pt), so they were dropped already and their records are skipped.
  IntervalMap<int> replaced_tables_;
  std::array<int64_t, 3> counts_{};
  std::vector<std::string> anomalies_;
  uint64_t applied_ = 0;
  bool last_removed_private_ = true;
};

}  // namespace tdxhp::kvm
