// guest_memfd of one memslot: folios (4K, 2M THP, 2M/1G hugetlb) over gmem indices, pins,
// punch hole, and the in-place conversion split/merge of huge folios (L4523, L4730-4737).
#pragma once

#include <algorithm>
#include <cstdint>
#include <functional>
#include <vector>

#include "domain/interval_map.h"
#include "domain/types.h"
#include "runners/sim/faults.h"
#include "runners/sim/step_log.h"

namespace tdxhp::sim {

// Hands out naturally aligned physical ranges (SEMANTICS "Backing"). Huge folios never touch
// each other. 4K folios allocated for consecutive gmem indices continue the previous 4K
// allocation, as the buddy allocator tends to, so sequential faults give one contiguous run.
class PfnAllocator {
 public:
  explicit PfnAllocator(uint64_t seed) : next_((1 + seed % 64) << 18) {}
  Pfn alloc(uint8_t order) {
    const uint64_t n = uint64_t{1} << order;
    next_ = (next_ + n - 1) & ~(n - 1);
    Pfn p = next_;
    next_ += n + kGap;
    last_4k_end_ = 0;
    return p;
  }
  // n 4K folios for gmem indices [index, index + n). `prev` is the pfn of index - 1 when that
  // page is allocated: if it is the last 4K page handed out, the run continues right after it.
  // A fresh run starts one page past a 2M boundary of index, so 4K gmem never offers an
  // aligned 2M-contiguous block and maps 4K under either backing contract.
  Pfn alloc_4k(uint64_t index, uint64_t n, const Pfn* prev) {
    Pfn p;
    if (prev && last_4k_end_ != 0 && *prev + 1 == last_4k_end_) {
      p = last_4k_end_;
    } else {
      p = ((next_ + 511) & ~Pfn{511}) + ((index + 1) & 511);
    }
    last_4k_end_ = p + n;
    next_ = std::max(next_, last_4k_end_ + kGap);
    return p;
  }

 private:
  static constexpr uint64_t kGap = 512;  // keeps separate allocations physically apart
  Pfn next_;
  Pfn last_4k_end_ = 0;  // one past the last 4K run, while no huge folio came after it
};

// A stretch of gmem pages inside folios of `order` whose pfns run as index + delta.
// alloc_order is the folio size first allocated, to which split pieces merge back.
struct FolioPiece {
  uint64_t delta = 0;
  uint8_t order = 0;
  uint8_t alloc_order = 0;
  bool operator==(const FolioPiece&) const = default;
};

class GmemFile {
 public:
  GmemFile(uint32_t slot, uint64_t size_pages, BackingKind kind) : slot_(slot), size_(size_pages), kind_(kind) {}

  uint32_t slot() const { return slot_; }
  // In place (kvm_gmem_get_folio -> __maybe_split_fresh_folio): a fresh huge folio over index
  // block [a, b) whose attributes are mixed is split to 4K right away.
  void split_fresh_when(std::function<bool(uint64_t, uint64_t)> mixed) { mixed_ = std::move(mixed); }
  uint64_t size() const { return size_; }
  BackingKind kind() const { return kind_; }
  uint8_t alloc_order_at(uint64_t index) const;
  // Huge-page gmem only punches whole folios (L12324-12328); 1 page for 4K gmem.
  uint64_t punch_granule() const;
  // Pages one in-place conversion batch covers (kvm_gmem_convert is called once per huge
  // page of a hugetlb file, guest_memfd.c :1010-1024): 0 means the whole range at once.
  uint64_t conversion_batch() const;

  const FolioPiece* piece(uint64_t index) const { return folios_.at(index); }
  Pfn pfn(uint64_t index) const { return index + folios_.at(index)->delta; }
  // End of the folio-map piece holding index (pfns run as index + one delta up to there).
  uint64_t piece_end(uint64_t index) const { return folios_.piece_end(index); }
  // Allocates (zeroed) the folio holding index if it is a hole; returns its pfn.
  Pfn ensure(uint64_t index, PfnAllocator& alloc, StepLog& log);
  // ensure() for every index of [s, e), allocating each hole of 4K folios as one run.
  void ensure_range(uint64_t s, uint64_t e, PfnAllocator& alloc, StepLog& log);
  // Folio contract: [index, index+n) lies in one folio of order >= log2(n) (L678, L4636).
  bool in_one_folio(uint64_t index, uint64_t n) const;
  // Contiguous contract (seed 002): all allocated, pfns contiguous and n-aligned.
  bool contiguous(uint64_t index, uint64_t n) const;

  void punch(uint64_t s, uint64_t e, StepLog& log);

  // In-place to-shared: split the folios straddling [s, e) down to the largest order whose
  // pieces are all of one attribute; `uniform(a, b)` says whether index range [a,b) will be.
  // Fails with -ENOMEM (nothing split) when an armed folio-split fault hits; only a folio that
  // actually changes order can fail (a restructure that allocates nothing cannot).
  int split_for_conversion(uint64_t s, uint64_t e, const std::function<bool(uint64_t, uint64_t)>& uniform,
                           FaultPlan& faults, StepLog& log);
  // In-place to-private: merge split folios in [s, e) whose whole original block is private.
  void merge_after_private(uint64_t s, uint64_t e, const std::function<bool(uint64_t, uint64_t)>& all_private,
                           StepLog& log);

  void pin(uint64_t s, uint64_t e, int delta);
  bool any_pinned(uint64_t s, uint64_t e) const {
    return pins_.any_of(s, e, [](uint32_t c) { return c > 0; });
  }

  const IntervalMap<FolioPiece>& folios() const { return folios_; }

 private:
  // Splits block b of order k as far as converting [s, e) requires; with `dry_run` it only says
  // whether any piece would change order. Only pieces holding s or e - 1 can become mixed.
  bool split_block(uint64_t b, uint8_t k, uint64_t s, uint64_t e, const std::function<bool(uint64_t, uint64_t)>& uniform,
                   StepLog& log, bool dry_run);

  uint32_t slot_;
  uint64_t size_;
  BackingKind kind_;
  IntervalMap<FolioPiece> folios_;
  IntervalMap<uint32_t> pins_;
  std::function<bool(uint64_t, uint64_t)> mixed_;
};

}  // namespace tdxhp::sim
