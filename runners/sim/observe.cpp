// Windowed observations (domain/types.h): only the ranges a step touched, widened to whole
// leaves, so a step costs what it changed, not the size of the guest.
#include <algorithm>
#include <iterator>

#include "runners/sim/sim_host.h"

namespace tdxhp::sim {

namespace {
// Sorts v and merges overlapping or touching ranges, dropping empty ones. In place: the
// step log's buffers are reused from step to step, so collecting allocates nothing.
std::vector<GfnRange>& merge(std::vector<GfnRange>& v) {
  std::sort(v.begin(), v.end(), [](const GfnRange& a, const GfnRange& b) { return a.start < b.start; });
  size_t n = 0;
  for (const GfnRange& r : v) {
    if (r.empty()) continue;
    if (n > 0 && r.start <= v[n - 1].end()) {
      v[n - 1].npages = std::max(v[n - 1].end(), r.end()) - v[n - 1].start;
    } else {
      v[n++] = r;
    }
  }
  v.resize(n);
  return v;
}

// Widens each window to the leaves it cuts, so runs tile it with whole leaves.
std::vector<GfnRange>& leaf_aligned(const IntervalMap<Leaf>& root, std::vector<GfnRange>& v) {
  for (GfnRange& r : v) {
    Gfn s = r.start, e = r.end();
    if (const Leaf* l = root.at(s)) s = align_down(s, l->level);
    if (const Leaf* l = root.at(e - 1)) e = align_down(e - 1, l->level) + pages_in(l->level);
    r = {s, e - s};
  }
  return merge(v);
}

// The window's runs (and, private, its accepted gfns) into w, reusing w's buffers.
void window_of(const IntervalMap<Leaf>& root, const SeamModule* sept, const GfnRange& r, LeafWindow& w) {
  w.is_private = sept != nullptr;
  w.range = r;
  w.runs.clear();
  root.for_each(r.start, r.end(), [&](uint64_t a, uint64_t b, const Leaf& l) {
    if (!w.runs.empty() && w.runs.back().range.end() == a && w.runs.back().level == l.level &&
        w.runs.back().pfn + w.runs.back().range.npages == a + l.delta) {
      w.runs.back().range.npages += b - a;
    } else {
      w.runs.push_back({{a, b - a}, l.level, a + l.delta});
    }
  });
  if (!sept) {
    w.accepted.reset();
    return;
  }
  // The accept state is the module's: MAPPED (or blocked from MAPPED) leaves are accepted.
  if (w.accepted) w.accepted->clear();
  else w.accepted.emplace();
  sept->leaves().for_each(r.start, r.end(), [&](uint64_t a, uint64_t b, const SeptLeaf& l) {
    if (l.state != SeptState::Mapped && l.state != SeptState::Blocked) return;
    if (!w.accepted->empty() && w.accepted->back().end() == a)
      w.accepted->back().npages += b - a;
    else
      w.accepted->push_back({a, b - a});
  });
}

// The next element of v to fill: the one left there by an earlier observation (its buffers
// are reused) or a new one. `used` counts the filled ones; the caller drops the rest.
template <class T>
T& next_slot(std::vector<T>& v, size_t& used) {
  if (used == v.size()) v.emplace_back();
  return v[used++];
}
}  // namespace

void SimHost::internals_into(bool everything, SimInternals& in) {
  in.pamt_changes.clear();
  if (everything) {
    for (auto [p, c] : tdx_.pamt_refs()) in.pamt_changes.push_back({p, c});
  } else {
    for (Pfn p : core_.log.pamt_changes()) in.pamt_changes.push_back({p, tdx_.pamt_refcount(p)});
  }
  in.pamt_pages_in_use = tdx_.pamt_pages_in_use();
  in.pamt_pages_baseline = 0;  // the sim's idle TD holds no DPAMT pages
  in.sept_pages = tdx_.sept_pages();
  in.split_cache_count = tdx_.cache_count();
  in.split_cache_min = tdx_.cache_min();
  in.split_cache_underflows = tdx_.cache_underflows();
  in.restart_retries = core_.log.restart_retries;
  in.fault_retries = core_.log.fault_retries;
  in.td_runnable = core_.runnable && !core_.dead;
  in.guest_inhibit_blocks = inhibit_blocks_;
}

Observation SimHost::collect(bool everything) {
  Observation o;
  collect_into(everything, o);
  return o;
}

void SimHost::collect_into(bool everything, Observation& o) {
  StepLog& log = core_.log;  // its dirty lists are merged in place: reset() below empties them
  if (everything) {  // setup: every slot is live, its leaves are windows whatever changed
    log.dirty_private.clear();
    log.dirty_shared.clear();
    for (const Memslot& m : core_.cfg.slots) {
      log.dirty_private.push_back(m.range());
      log.dirty_shared.push_back(m.range());
      log.dirty_attrs.push_back(m.range());
    }
  }
  o.has_leaves = true;
  size_t n = 0;
  for (const GfnRange& r : leaf_aligned(private_, log.dirty_private))
    window_of(private_, &tdx_.seam(), r, next_slot(o.leaf_windows, n));
  for (const GfnRange& r : leaf_aligned(shared_, log.dirty_shared))
    window_of(shared_, nullptr, r, next_slot(o.leaf_windows, n));
  o.leaf_windows.resize(n);

  o.has_attrs = true;
  n = 0;
  for (const GfnRange& r : merge(log.dirty_attrs)) {
    AttrWindow& w = next_slot(o.attr_windows, n);
    w.range = r;
    w.shared.clear();
    attrs_.for_each(r.start, r.end(), [&](uint64_t a, uint64_t b, Attr x) {
      if (x == Attr::Shared) w.shared.push_back({a, b - a});
    });
  }
  o.attr_windows.resize(n);

  o.has_backing = true;
  n = 0;
  for (size_t i = 0; i < core_.cfg.slots.size(); ++i) {
    const GmemFile& f = *gmem_[i];
    std::vector<GfnRange>& spans = backing_spans_;  // gmem index ranges, reusing GfnRange for the merge
    spans.clear();
    if (everything) spans.push_back({0, f.size()});
    for (const BackingSpan& b : log.dirty_backing)
      if (b.slot == f.slot()) spans.push_back({b.index, b.npages});
    for (const GfnRange& s : merge(spans)) {
      BackingWindow& w = next_slot(o.backing_windows, n);
      w.slot = f.slot();
      w.index = s.start;
      w.npages = s.npages;
      w.runs.clear();
      f.folios().for_each(s.start, s.end(), [&](uint64_t a, uint64_t b, const FolioPiece& p) {
        w.runs.push_back({f.slot(), a, b - a, true, a + p.delta, p.order});
      });
    }
  }
  o.backing_windows.resize(n);
  if (!o.internals) o.internals.emplace();
  internals_into(everything, *o.internals);
  o.has_events = true;
  // Moved element by element: both the log's buffer and the observation's are kept, neither
  // regrows from empty on every step.
  o.events.assign(std::make_move_iterator(log.events.begin()), std::make_move_iterator(log.events.end()));
  o.kernel_log.assign(std::make_move_iterator(log.kernel_log.begin()), std::make_move_iterator(log.kernel_log.end()));
  o.kernel_lines_scanned = 0;
  o.observer_fault.clear();
  o.vm_dead = core_.dead;
  log.reset();
}

Observation SimHost::observe() {
  Observation o;
  observe_into(o);
  return o;
}

void SimHost::observe_into(Observation& o) {
  collect_into(first_observation_, o);
  first_observation_ = false;
}

}  // namespace tdxhp::sim
