// The oracle's own views of what the target reported: mirror/direct leaves and gmem backing.
// Both are interval maps fed by windowed observations (types.h): a window replaces the content
// of its range, and applying one returns where old and new differ, so checks cost what changed.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <vector>

#include "domain/interval_map.h"
#include "domain/types.h"

namespace tdxhp::oracle_detail {

constexpr uint8_t folio_order_of(Level l) { return l == Level::L4K ? 0 : l == Level::L2M ? 9 : 18; }
constexpr Level next_lower(Level l) { return l == Level::L1G ? Level::L2M : Level::L4K; }
constexpr uint64_t align_up(uint64_t x, Level l) { return align_down(x + pages_in(l) - 1, l); }

// A stretch of leaves of one level whose pfns run on from the gfns by `delta` (pfn - gfn,
// modulo 2^64), so the 512 4K leaves of a split 2M leaf are one piece.
struct LeafVal {
  Level level = Level::L4K;
  uint64_t delta = 0;
  Pfn pfn_at(Gfn g) const { return g + delta; }
  bool operator==(const LeafVal&) const = default;
};

// Where a window changed the view: before/after are empty where there was/is no leaf.
struct LeafChange {
  uint64_t start = 0, end = 0;
  std::optional<LeafVal> before, after;
};

class LeafView {
 public:
  // Replaces the window's range by its runs (clipped to the range) and returns the changes,
  // valid until the next apply (a buffer kept across windows).
  const std::vector<LeafChange>& apply(const LeafWindow& w);
  // The leaf covering gfn: its aligned start and value.
  std::optional<std::pair<Gfn, LeafVal>> leaf_at(Gfn g) const;
  const IntervalMap<LeafVal>& map() const { return map_; }

 private:
  IntervalMap<LeafVal> map_;
  std::vector<IntervalMap<LeafVal>::Piece> before_, after_;  // apply()'s scratch, kept across windows
  std::vector<LeafChange> changes_;
};

// gmem pages of one file: pfn - index and the folio order; holes are absent.
struct BackVal {
  uint64_t delta = 0;
  uint8_t order = 0;
  bool operator==(const BackVal&) const = default;
};

struct BackChange {
  uint32_t slot = 0;
  uint64_t start = 0, end = 0;  // gmem index
  std::optional<BackVal> before, after;
};

class BackingView {
 public:
  const std::vector<BackChange>& apply(const BackingWindow& w);  // as LeafView::apply
  const IntervalMap<BackVal>& file(uint32_t slot) const;
  size_t pieces() const;

 private:
  std::map<uint32_t, IntervalMap<BackVal>> files_;
  std::vector<IntervalMap<BackVal>::Piece> before_, after_;  // apply()'s scratch, kept across windows
  std::vector<BackChange> changes_;
};

// "Largest leaf allowed" maps (GUEST_INHIBIT, page tables under the mirror): a gfn not in the
// map has no limit. lower_cap only ever lowers: both facts are one-way.
void lower_cap(IntervalMap<Level>& caps, uint64_t s, uint64_t e, Level cap);
// The lowest cap over [s, e) and where it sits, or nothing when no cap there is below `level`.
std::optional<std::pair<GfnRange, Level>> cap_below(const IntervalMap<Level>& caps, uint64_t s, uint64_t e,
                                                    Level level);

}  // namespace tdxhp::oracle_detail
