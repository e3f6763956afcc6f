#include "runners/sim/gmem.h"

#include <algorithm>
#include <cerrno>
#include <set>
#include <vector>

namespace tdxhp::sim {

uint8_t GmemFile::alloc_order_at(uint64_t index) const {
  switch (kind_) {
    case BackingKind::Page4K: return 0;
    case BackingKind::Hugetlb2M: return 9;
    case BackingKind::Hugetlb1G: return 18;
    case BackingKind::Thp2M:  // THP only where the whole 2M block fits in the file
      return align_down(index, Level::L2M) + 512 <= size_ ? 9 : 0;
  }
  return 0;
}

uint64_t GmemFile::punch_granule() const {
  switch (kind_) {
    case BackingKind::Page4K: return 1;
    case BackingKind::Thp2M:
    case BackingKind::Hugetlb2M: return 512;
    case BackingKind::Hugetlb1G: return 512 * 512;
  }
  return 1;
}

uint64_t GmemFile::conversion_batch() const {
  switch (kind_) {
    case BackingKind::Hugetlb2M: return 512;
    case BackingKind::Hugetlb1G: return 512 * 512;
    default: return 0;  // page_order 0: batch_size = i_size, one batch
  }
}

Pfn GmemFile::ensure(uint64_t index, PfnAllocator& alloc, StepLog& log) {
  if (const FolioPiece* p = folios_.at(index)) return index + p->delta;
  uint8_t order = alloc_order_at(index);
  if (order == 0) {
    ensure_range(index, index + 1, alloc, log);
    return pfn(index);
  }
  uint64_t n = uint64_t{1} << order;
  uint64_t head = index & ~(n - 1);
  // A huge folio is allocated whole; pages of it punched earlier cannot exist (aligned punch).
  Pfn p = alloc.alloc(order);
  const uint8_t now = mixed_ && mixed_(head, head + n) ? 0 : order;
  folios_.assign(head, head + n, FolioPiece{p - head, now, order});
  log.dirty_backing.push_back({slot_, head, n});
  return index + (p - head);
}

void GmemFile::ensure_range(uint64_t s, uint64_t e, PfnAllocator& alloc, StepLog& log) {
  std::vector<std::pair<uint64_t, uint64_t>> holes;
  folios_.for_each_gap(s, e, [&](uint64_t a, uint64_t b) { holes.emplace_back(a, b); });
  for (auto [a, b] : holes) {
    for (uint64_t x = a; x < b;) {
      if (alloc_order_at(x) != 0) {  // a THP block inside the file: its own huge folio
        ensure(x, alloc, log);
        x = piece_end(x);
        continue;
      }
      // Order 0 here means 4K gmem or the THP file's tail: the rest of the hole is 4K too.
      const Pfn prev_pfn = x > 0 && folios_.at(x - 1) ? pfn(x - 1) : 0;
      const Pfn p = alloc.alloc_4k(x, b - x, prev_pfn ? &prev_pfn : nullptr);
      folios_.assign(x, b, FolioPiece{p - x, 0, 0});
      log.dirty_backing.push_back({slot_, x, b - x});
      x = b;
    }
  }
}

bool GmemFile::in_one_folio(uint64_t index, uint64_t n) const {
  const FolioPiece* p = folios_.at(index);
  return p && (uint64_t{1} << p->order) >= n;
}

bool GmemFile::contiguous(uint64_t index, uint64_t n) const {
  const FolioPiece* first = folios_.at(index);
  if (!first || ((index + first->delta) & (n - 1)) != 0) return false;
  uint64_t d = first->delta;
  return folios_.all_of(index, index + n, [d](const FolioPiece& f) { return f.delta == d; });
}

void GmemFile::punch(uint64_t s, uint64_t e, StepLog& log) {
  if (!folios_.any(s, e)) return;
  folios_.erase(s, e);
  log.dirty_backing.push_back({slot_, s, e - s});
}

bool GmemFile::split_block(uint64_t b, uint8_t k, uint64_t s, uint64_t e,
                           const std::function<bool(uint64_t, uint64_t)>& uniform, StepLog& log, bool dry_run) {
  const uint64_t n = uint64_t{1} << k;
  const FolioPiece* cur = folios_.at(b);
  if (!cur || uniform(b, b + n)) return false;
  bool changed = false;
  if (k == 18) {
    // 1G -> 2M pieces, then each mixed 2M piece -> 4K (L5617-5621).
    if (cur->order == 18) {
      if (dry_run) return true;
      folios_.update(b, b + n, [](uint64_t, uint64_t, FolioPiece& f) { f.order = 9; });
      log.folio(EventKind::FolioSplit, slot_, b, n, 18, 9);
      changed = true;
    }
    // Only the 2M pieces holding the conversion's edges can become mixed by it (a piece wholly
    // inside turns all shared, one outside does not change).
    for (uint64_t x : {s, e - 1}) {
      if (x < b || x >= b + n) continue;
      const uint64_t sub = align_down(x, Level::L2M);
      const FolioPiece* p = folios_.at(sub);
      if (p && p->order == 9 && !uniform(sub, sub + 512)) {
        if (dry_run) return true;
        folios_.update(sub, sub + 512, [](uint64_t, uint64_t, FolioPiece& f) { f.order = 0; });
        log.folio(EventKind::FolioSplit, slot_, sub, 512, 9, 0);
        changed = true;
      }
    }
  } else if (k == 9 && cur->order == 9) {
    if (dry_run) return true;
    folios_.update(b, b + n, [](uint64_t, uint64_t, FolioPiece& f) { f.order = 0; });
    log.folio(EventKind::FolioSplit, slot_, b, n, 9, 0);
    changed = true;
  }
  return changed;
}

int GmemFile::split_for_conversion(uint64_t s, uint64_t e, const std::function<bool(uint64_t, uint64_t)>& uniform,
                                   FaultPlan& faults, StepLog& log) {
  // Only the folios at the two ends can straddle the range: work is per boundary (SC-BOUNDARY).
  std::set<std::pair<uint64_t, uint8_t>> blocks;
  for (uint64_t x : {s, e - 1}) {
    const FolioPiece* p = folios_.at(x);
    if (!p || p->alloc_order == 0) continue;
    uint64_t n = uint64_t{1} << p->alloc_order;
    uint64_t b = x & ~(n - 1);
    if (b < s || b + n > e) blocks.insert({b, p->alloc_order});
  }
  bool needed = false;
  for (auto [b, k] : blocks) needed = needed || split_block(b, k, s, e, uniform, log, true);
  if (!needed) return 0;
  if (faults.take(FaultSite::FolioSplit)) return -ENOMEM;  // folio split allocation failed (SC-FAIL-MIDWAY, L4507-4510)
  for (auto [b, k] : blocks) split_block(b, k, s, e, uniform, log, false);
  return 0;
}

void GmemFile::merge_after_private(uint64_t s, uint64_t e, const std::function<bool(uint64_t, uint64_t)>& all_private,
                                   StepLog& log) {
  std::set<std::pair<uint64_t, uint8_t>> blocks;
  folios_.for_each(s, e, [&](uint64_t a, uint64_t, const FolioPiece& f) {
    if (f.order < f.alloc_order) blocks.insert({a & ~((uint64_t{1} << f.alloc_order) - 1), f.alloc_order});
  });
  for (auto [b, k] : blocks) {
    uint64_t n = uint64_t{1} << k;
    const FolioPiece* head = folios_.at(b);
    if (!head || !all_private(b, b + n)) continue;
    uint64_t d = head->delta;
    if (!folios_.all_of(b, b + n, [d](const FolioPiece& f) { return f.delta == d; })) continue;
    folios_.assign(b, b + n, FolioPiece{d, k, k});
    log.folio(EventKind::FolioMerge, slot_, b, n, 0, k);
  }
}

void GmemFile::pin(uint64_t s, uint64_t e, int delta) {
  std::vector<std::pair<uint64_t, uint64_t>> gaps;
  pins_.for_each_gap(s, e, [&](uint64_t a, uint64_t b) { gaps.push_back({a, b}); });
  for (auto [a, b] : gaps) pins_.assign(a, b, 0);
  pins_.update(s, e, [delta](uint64_t, uint64_t, uint32_t& c) {
    if (delta > 0) ++c;
    else if (c > 0) --c;
  });
}

}  // namespace tdxhp::sim
