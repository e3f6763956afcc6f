#include "runners/kvm/observers/leaf_replay.h"

#include <algorithm>

#include "domain/describe.h"

namespace tdxhp::kvm {
namespace {

Level level_of(int kvm_level) { return static_cast<Level>(kvm_level - 1); }

}  // namespace

void LeafReplay::anomaly(std::string s) {
  if (anomalies_.size() < 16) anomalies_.push_back(std::move(s));
}

void LeafReplay::add(uint64_t kgfn, int level, Pfn pfn, bool is_private) {
  const uint64_t n = pages_in(level_of(level));
  if (leaves_.any(kgfn, kgfn + n))
    anomaly("new " + std::string(name(level_of(level))) + " leaf at kvm gfn " + hex(kgfn) +
            " over a leaf the replay still holds (a removal was not traced)");
  leaves_.assign(kgfn, kgfn + n, Leaf{level_of(level), pfn - kgfn, is_private});
  ++counts_[level - 1];
  mark_dirty(kgfn, n);
}

void LeafReplay::remove(uint64_t kgfn, int level) {
  const uint64_t n = pages_in(level_of(level));
  const Level want = level_of(level);
  if (!leaves_.all_of(kgfn, kgfn + n, [&](const Leaf& l) { return l.level == want; }))
    anomaly("removed " + std::string(name(want)) + " leaf at kvm gfn " + hex(kgfn) +
            " that the replay did not hold (its mapping was not traced)");
  if (const Leaf* l = leaves_.at(kgfn)) last_removed_private_ = l->is_private;
  leaves_.erase(kgfn, kgfn + n);
  --counts_[level - 1];
  mark_dirty(kgfn, n);
}

void LeafReplay::drop_leaves_under(uint64_t kgfn, uint64_t n) {
  leaves_.for_each(kgfn, kgfn + n, [&](uint64_t a, uint64_t b, const Leaf& l) {
    // Leaves are naturally aligned: one per aligned start inside [a, b).
    const uint64_t p = pages_in(l.level);
    counts_[static_cast<int>(l.level)] -= static_cast<int64_t>((b + p - 1) / p - (a + p - 1) / p);
  });
  leaves_.erase(kgfn, kgfn + n);
  mark_dirty(kgfn, n);
}

void LeafReplay::mark_dirty(uint64_t kgfn, uint64_t n) {
  if (kgfn + n > base_) dirty_.assign(std::max(kgfn, base_) - base_, kgfn + n - base_, true);
}

void LeafReplay::apply(const SpteEvent& e, const AttrLookup& is_private) {
  if (e.as_id != 0 || e.level < 1 || e.level > 3) return;  // SMM address space: not the guest's memory
  ++applied_;
  const uint64_t kgfn = e.gfn & ~shared_bit_;
  auto private_now = [&] {
    if (shared_bit_) return (e.gfn & shared_bit_) == 0;  // TD: the root is in the gfn (L3053)
    return kgfn >= base_ && is_private(kgfn - base_);      // one root: the attribute decides
  };
  switch (e.kind) {
    case SpteEvent::SetSpte:
      return;  // the TDP MMU also reports this write as SpteChanged, the only one replayed
    case SpteEvent::SpteChanged: {
      // A huge leaf turned into a table by a split loses its leaf here; the 512 children
      // arrive with the SplitHuge record that follows (they are written without this event).
      const bool was = spte::leaf(e.old_spte, e.level), now = spte::leaf(e.new_spte, e.level);
      const uint64_t n = pages_in(level_of(e.level));
      if (const int* parent = replaced_tables_.at(kgfn)) {
        if (e.level < *parent && !spte::present(e.new_spte)) return;  // a child of a replaced table
        replaced_tables_.erase(kgfn, kgfn + n);  // the replacing leaf itself changes: done
      }
      if (now && spte::present(e.old_spte) && !was) {
        // A page table replaced by a huge leaf (a fault over an all-one-attribute block
        // that held smaller leaves): drop what it held now, skip the removals that follow.
        drop_leaves_under(kgfn, n);
        replaced_tables_.assign(kgfn, kgfn + n, e.level);
      }
      if (was) remove(kgfn, e.level);
      if (now) add(kgfn, e.level, spte::pfn(e.new_spte), private_now());
      return;
    }
    case SpteEvent::SplitHuge: {
      if (e.err || e.level < 2) return;  // failed split: the huge leaf stays (no SpteChanged came)
      const uint64_t child = pages_in(level_of(e.level - 1));
      const bool priv = last_removed_private_;  // children stay in the huge leaf's root
      for (uint64_t i = 0; i < 512; ++i)
        add(kgfn + i * child, e.level - 1, spte::pfn(e.old_spte) + i * child, priv);
      return;
    }
  }
}

std::vector<LeafWindow> LeafReplay::windows(const std::vector<GfnRange>& ranges) const {
  std::vector<LeafWindow> out;
  for (const GfnRange& r : ranges) {
    if (r.empty()) continue;
    LeafWindow priv{true, r, {}, std::nullopt}, shared{false, r, {}, std::nullopt};  // no S-EPT states here
    leaves_.for_each(base_ + r.start, base_ + r.end(), [&](uint64_t a, uint64_t b, const Leaf& l) {
      LeafWindow& w = l.is_private ? priv : shared;
      LeafRun run{{a - base_, b - a}, l.level, a + l.delta};
      if (!w.runs.empty()) {  // pieces split only by coalescing limits: join them back
        LeafRun& last = w.runs.back();
        if (last.range.end() == run.range.start && last.level == run.level &&
            last.pfn + last.range.npages == run.pfn) {
          last.range.npages += run.range.npages;
          return;
        }
      }
      w.runs.push_back(run);
    });
    out.push_back(std::move(priv));
    out.push_back(std::move(shared));
  }
  return out;
}

std::vector<GfnRange> LeafReplay::take_dirty() {
  std::vector<GfnRange> out;
  dirty_.for_each([&](uint64_t a, uint64_t b, bool) { out.push_back({a, b - a}); });
  dirty_.clear();
  return out;
}

}  // namespace tdxhp::kvm
