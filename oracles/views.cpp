#include "oracles/views.h"

#include <algorithm>

namespace tdxhp::oracle_detail {

namespace {

template <class V>
using Pieces = std::vector<typename IntervalMap<V>::Piece>;

// Walks two sorted, disjoint piece lists inside [s, e) and emits every stretch where they
// differ (a value on one side only, or different values). Cost: O(|a| + |b|).
template <class V, class Out>
void diff_pieces(const Pieces<V>& a, const Pieces<V>& b, uint64_t s, uint64_t e, Out&& out) {
  size_t i = 0, j = 0;
  uint64_t cur = s;
  while (cur < e) {
    while (i < a.size() && a[i].end <= cur) ++i;
    while (j < b.size() && b[j].end <= cur) ++j;
    const bool in_a = i < a.size() && a[i].start <= cur;
    const bool in_b = j < b.size() && b[j].start <= cur;
    uint64_t next = e;
    if (i < a.size()) next = std::min(next, in_a ? a[i].end : a[i].start);
    if (j < b.size()) next = std::min(next, in_b ? b[j].end : b[j].start);
    std::optional<V> va, vb;
    if (in_a) va = a[i].value;
    if (in_b) vb = b[j].value;
    if (va != vb) out(cur, next, va, vb);
    cur = next;
  }
}

// Replaces [s, e) of m by the pieces in `after` (clipped to it, in any order) and emits each
// stretch whose value changed. `before` and `after` are the view's buffers, reused from window
// to window so a step allocates nothing for them.
template <class V, class Out>
void replace_window(IntervalMap<V>& m, uint64_t s, uint64_t e, Pieces<V>& before, Pieces<V>& after, Out&& out) {
  before.clear();
  m.for_each(s, e, [&](uint64_t a, uint64_t b, const V& v) { before.push_back({a, b, v}); });
  std::sort(after.begin(), after.end(), [](auto& x, auto& y) { return x.start < y.start; });
  diff_pieces<V>(before, after, s, e, out);
  m.replace(s, e, after.begin(), after.end());
}

}  // namespace

const std::vector<LeafChange>& LeafView::apply(const LeafWindow& w) {
  const uint64_t s = w.range.start, e = w.range.end();
  after_.clear();
  for (const LeafRun& r : w.runs) {
    const uint64_t a = std::max(r.range.start, s), b = std::min(r.range.end(), e);
    if (a < b) after_.push_back({a, b, LeafVal{r.level, r.pfn - r.range.start}});
  }
  changes_.clear();
  replace_window(map_, s, e, before_, after_, [&](uint64_t a, uint64_t b, auto& va, auto& vb) {
    changes_.push_back(LeafChange{a, b, va, vb});
  });
  return changes_;
}

std::optional<std::pair<Gfn, LeafVal>> LeafView::leaf_at(Gfn g) const {
  const LeafVal* v = map_.at(g);
  if (!v) return std::nullopt;
  return std::make_pair(align_down(g, v->level), *v);
}

const std::vector<BackChange>& BackingView::apply(const BackingWindow& w) {
  const uint64_t s = w.index, e = w.index + w.npages;
  after_.clear();
  for (const BackingRun& r : w.runs) {
    const uint64_t a = std::max(r.index, s), b = std::min(r.index + r.npages, e);
    if (a < b && r.allocated) after_.push_back({a, b, BackVal{r.pfn - r.index, r.folio_order}});
  }
  changes_.clear();
  replace_window(files_[w.slot], s, e, before_, after_, [&](uint64_t a, uint64_t b, auto& va, auto& vb) {
    changes_.push_back(BackChange{w.slot, a, b, va, vb});
  });
  return changes_;
}

const IntervalMap<BackVal>& BackingView::file(uint32_t slot) const {
  static const IntervalMap<BackVal> kEmpty;
  auto it = files_.find(slot);
  return it == files_.end() ? kEmpty : it->second;
}

size_t BackingView::pieces() const {
  size_t n = 0;
  for (auto& [slot, f] : files_) n += f.pieces();
  return n;
}

void lower_cap(IntervalMap<Level>& caps, uint64_t s, uint64_t e, Level cap) {
  if (caps.all_of(s, e, [cap](Level v) { return v <= cap; })) return;  // the usual case: known already
  Pieces<Level> lowered;
  uint64_t cur = s;
  caps.for_each(s, e, [&](uint64_t a, uint64_t b, Level v) {
    if (a > cur) lowered.push_back({cur, a, cap});
    lowered.push_back({a, b, std::min(v, cap)});
    cur = b;
  });
  if (cur < e) lowered.push_back({cur, e, cap});
  caps.replace(s, e, lowered.begin(), lowered.end());
}

std::optional<std::pair<GfnRange, Level>> cap_below(const IntervalMap<Level>& caps, uint64_t s, uint64_t e,
                                                    Level level) {
  std::optional<std::pair<GfnRange, Level>> found;
  caps.for_each(s, e, [&](uint64_t a, uint64_t b, Level v) {
    if (v < level && (!found || v < found->second)) found = std::make_pair(GfnRange{a, b - a}, v);
  });
  return found;
}

}  // namespace tdxhp::oracle_detail
