// What one step did, for the observation: events in order, kernel log lines, and the windows
// (gfn ranges per root, gmem index ranges per slot) whose content may have changed.
#pragma once

#include <cstdint>
#include <algorithm>
#include <iterator>
#include <string>
#include <utility>
#include <vector>

#include "domain/types.h"

namespace tdxhp::sim {

struct BackingSpan {
  uint32_t slot = 0;
  uint64_t index = 0, npages = 0;
};

struct StepLog {
  std::vector<Event> events;
  std::vector<std::string> kernel_log;
  std::vector<GfnRange> dirty_private, dirty_shared, dirty_attrs;
  std::vector<BackingSpan> dirty_backing;
  // 2M-aligned pfns whose DPAMT refcount moved, with repeats: a vector (sorted once, in
  // pamt_changes()) instead of a set, whose node per insert was a malloc on every 4K map/unmap.
  std::vector<Pfn> pamt_changed;
  uint64_t restart_retries = 0;
  uint64_t fault_retries = 0;

  void seamcall(std::string_view name, Gfn gfn, Level level, uint64_t npages, uint64_t status) {
    Event e;
    e.kind = EventKind::Seamcall;
    e.name = name;
    e.gfn = gfn;
    e.level = level;
    e.npages = npages;
    e.status = status;
    events.push_back(std::move(e));
  }
  void leaf(EventKind kind, bool is_private, Gfn gfn, Level level, uint64_t npages) {
    Event e;
    e.kind = kind;
    e.name = kind == EventKind::MapLeaf ? "map" : kind == EventKind::SplitLeaf ? "split" : "zap";
    e.gfn = gfn;
    e.level = level;
    e.npages = npages;
    e.is_private = is_private;
    events.push_back(std::move(e));
    (is_private ? dirty_private : dirty_shared).push_back({gfn, npages});
  }
  void folio(EventKind kind, uint32_t slot, uint64_t index, uint64_t npages, uint8_t from, uint8_t to) {
    Event e;
    e.kind = kind;
    e.name = kind == EventKind::FolioSplit ? "folio-split" : "folio-merge";
    e.slot = slot;
    e.gfn = index;
    e.npages = npages;
    e.order_from = from;
    e.order_to = to;
    events.push_back(std::move(e));
    dirty_backing.push_back({slot, index, npages});
  }
  // Appends what happened after this log's content (vCPU 1's unobserved work at a drop point).
  void append(StepLog&& later) {
    auto move_all = [](auto& to, auto& from) { to.insert(to.end(), std::make_move_iterator(from.begin()),
                                                         std::make_move_iterator(from.end())); };
    move_all(events, later.events);
    move_all(kernel_log, later.kernel_log);
    move_all(dirty_private, later.dirty_private);
    move_all(dirty_shared, later.dirty_shared);
    move_all(dirty_attrs, later.dirty_attrs);
    move_all(dirty_backing, later.dirty_backing);
    move_all(pamt_changed, later.pamt_changed);
    restart_retries += later.restart_retries;
    fault_retries += later.fault_retries;
  }
  // name: a literal (Event::name). text by value and moved in: one allocation at most.
  void note(EventKind kind, std::string_view name, std::string text, Gfn gfn = 0, Level level = Level::L4K) {
    Event e;
    e.kind = kind;
    e.name = name;
    e.text = std::move(text);
    e.gfn = gfn;
    e.level = level;
    events.push_back(std::move(e));
  }
  // The distinct pamt_changed pfns, ascending.
  const std::vector<Pfn>& pamt_changes() {
    std::sort(pamt_changed.begin(), pamt_changed.end());
    pamt_changed.erase(std::unique(pamt_changed.begin(), pamt_changed.end()), pamt_changed.end());
    return pamt_changed;
  }
  // Empty for the next step, keeping the buffers' capacity (no allocation per step).
  void reset() {
    events.clear();
    kernel_log.clear();
    dirty_private.clear();
    dirty_shared.clear();
    dirty_attrs.clear();
    dirty_backing.clear();
    pamt_changed.clear();
    restart_retries = 0;
    fault_retries = 0;
  }
};

}  // namespace tdxhp::sim
