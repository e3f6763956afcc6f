// Learning the target's choice from a windowed observation, and the checks that belong to
// leaves themselves: INV-CONTIG, INV-SLOT, INV-LEVELCAP, INV-ATTR, INV-NOPROMOTE, the
// one-way GUEST_INHIBIT part of INV-ACCEPT, and what a change may do (INV-NOOVERZAP,
// INV-NOOVERSPLIT, INV-ATOMIC). Cost is proportional to the windows, never to the guest.
#include <algorithm>

#include "domain/describe.h"
#include "oracles/spec_state.h"

namespace tdxhp::oracle_detail {

namespace {

std::string op_words(const StepCtx& c) { return c.op ? describe(*c.op) : std::string("TD build"); }

// Parts of [a, b) outside r (at most two).
std::vector<GfnRange> outside(uint64_t a, uint64_t b, const GfnRange& r) {
  std::vector<GfnRange> v;
  if (a < std::min(b, r.start)) v.push_back({a, std::min(b, r.start) - a});
  if (std::max(a, r.end()) < b) v.push_back({std::max(a, r.end()), b - std::max(a, r.end())});
  return v;
}

// Where a leaf of `level - 1` or smaller may legitimately appear after a boundary split of
// [s, e): the blocks of `level` that straddle s or e (L10972-10980, L2083-2086).
std::vector<GfnRange> straddling_blocks(const GfnRange& edges, Level level) {
  std::vector<GfnRange> v;
  for (uint64_t x : {edges.start, edges.end()})
    if (!is_aligned(x, level)) v.push_back({align_down(x, level), pages_in(level)});
  if (v.size() == 2 && v[0] == v[1]) v.pop_back();
  return v;
}

void report_frozen(StepCtx& c, const ChangePolicy& p, const LeafChange& x, bool is_private) {
  const GfnRange seg{x.start, x.end - x.start};
  auto words = [&](const std::optional<LeafVal>& v) {
    return v ? leaf_words(seg.start, seg.npages, *v, is_private) : std::string("no leaf");
  };
  c.report("INV-ATOMIC", seg, p.frozen, words(x.before) + " became " + words(x.after));
}

}  // namespace

void SpecState::learn(StepCtx& c, const ChangePolicy& p) {
  const Observation& o = *c.obs;
  if (o.has_events) check_events(c);  // against the pre-step leaves, before the windows land

  IntervalMap<bool>& dirty = scratch_dirty;  // gfns whose leaves or backing changed: INV-CONTIG re-check
  dirty.clear();
  if (o.has_backing) {
    for (const BackingWindow& w : o.backing_windows) {
      const Memslot* m = slot_by_id(w.slot);
      for (const BackChange& x : backing.apply(w)) {
        if (!m) continue;
        const uint64_t lo = std::max(x.start, m->gmem_offset), hi = std::min(x.end, m->gmem_offset + m->npages);
        if (lo >= hi) continue;
        const GfnRange g{gfn_of_index(*m, lo), hi - lo};
        dirty.assign(g.start, g.end(), true);
        // INV-ATOMIC: a failed op must not free or replace gmem pages (L6560-6569, L14150-14152).
        if (p.failed && !p.ignore_diffs && x.before && (!x.after || x.after->delta != x.before->delta))
          c.report("INV-ATOMIC", g, op_words(c) + " failed (" + describe(*c.out) + "), so gmem keeps its pages",
                   "slot " + std::to_string(m->id) + " gmem [" + hex(lo) + ", " + hex(hi) + ") " +
                       (x.after ? "moved to pfn " + hex(lo + x.after->delta) : std::string("became a hole")));
      }
    }
  }

  if (o.has_leaves) {
    for (const LeafWindow& w : o.leaf_windows) {
      if (!w.is_private) {
        for (const LeafChange& x : shared.apply(w))
          if (p.frozen) report_frozen(c, p, x, false);
        for (const LeafRun& r : w.runs) check_shared_run(c, r);
        continue;
      }
      const std::vector<LeafChange>& changes = priv.apply(w);
      if (p.frozen)
        for (const LeafChange& x : changes) report_frozen(c, p, x, true);
      // INV-PAMT: every 2M pfn range whose 4K mappings change must show the new refcount,
      // whether or not the target lists it among its changes.
      auto touch = [&](Pfn lo, Pfn hi) {
        if (!cfg.features.dynamic_pamt || !caps(Cap::Internals)) return;
        for (Pfn b = align_down(lo, Level::L2M); b < hi; b += pages_in(Level::L2M)) pamt_touched.push_back(b);
      };
      for (const LeafChange& x : changes)
        if (x.before && x.before->level == Level::L4K) {
          pfns_in_4k_leaves.erase(x.before->pfn_at(x.start), x.before->pfn_at(x.end));
          touch(x.before->pfn_at(x.start), x.before->pfn_at(x.end));
        }
      for (const LeafChange& x : changes) {
        if (x.after && x.after->level == Level::L4K) {
          pfns_in_4k_leaves.assign(x.after->pfn_at(x.start), x.after->pfn_at(x.end), true);
          touch(x.after->pfn_at(x.start), x.after->pfn_at(x.end));
        }
        if (!x.after) accept.erase(x.start, x.end);
        else if (!x.before && tdx) accept.assign(x.start, x.end, AcceptState::Pending);  // AUG: PENDING
        if (!tdx || p.ignore_diffs || !x.before) continue;  // normal roots may zap freely; data stays in gmem
        const GfnRange seg{x.start, x.end - x.start};
        const LeafVal& was = *x.before;
        if (!x.after) {
          // Removal is allowed only inside p.zap (a failed conversion's converted passes).
          for (const GfnRange& out : p.zap ? outside(x.start, x.end, *p.zap) : std::vector<GfnRange>{seg}) {
            if (p.failed)
              c.report("INV-ATOMIC", out, op_words(c) + " failed (" + describe(*c.out) + "), so its private leaves stay",
                       leaf_words(out.start, out.npages, was) + " was removed");
            else
              c.report("INV-NOOVERZAP", out,
                       (p.zap ? "only private leaves inside " + describe(*p.zap) + " are zapped; " : std::string()) +
                           "gfns outside stay mapped, ACCEPTED, with their data",
                       op_words(c) + " removed " + leaf_words(out.start, out.npages, was));
          }
          continue;
        }
        const LeafVal& now = *x.after;
        if (now.delta != was.delta)  // the guest's page was swapped for another one
          c.report("INV-DATA", seg, leaf_words(seg.start, seg.npages, was) + " keeps its pages",
                   "now " + leaf_words(seg.start, seg.npages, now));
        if (now.level < was.level) {
          if (!p.split_edges) {
            c.report("INV-NOOVERSPLIT", seg, op_words(c) + " splits no leaf",
                     leaf_words(seg.start, seg.npages, was) + " split to " + std::string(name(now.level)));
            continue;
          }
          // Leaves smaller than needed to stop straddling the edges are over-split (MUT-OVERSPLIT).
          const Level above = Level(int(now.level) + 1);
          uint64_t cur = x.start;
          std::vector<GfnRange> over;
          for (const GfnRange& b : straddling_blocks(*p.split_edges, above)) {
            if (b.end() <= cur || b.start >= x.end) continue;
            if (b.start > cur) over.push_back({cur, b.start - cur});
            cur = std::max(cur, b.end());
          }
          if (cur < x.end) over.push_back({cur, x.end - cur});
          for (const GfnRange& r : over)
            c.report("INV-NOOVERSPLIT", r,
                     "leaves not straddling the edges of " + describe(*p.split_edges) + " keep at least " +
                         std::string(name(above)),
                     std::string(name(was.level)) + " leaf split to " + leaf_words(r.start, r.npages, now));
        }
      }
      dirty.assign(w.range.start, w.range.end(), true);
      for (const LeafRun& r : w.runs) check_private_run(c, r);
    }
  }

  if (caps(Cap::Backing) && caps(Cap::LeafLevels)) {
    dirty.for_each([&](uint64_t a, uint64_t b, bool) {
      priv.map().for_each(a, b, [&](uint64_t la, uint64_t lb, const LeafVal& v) {
        check_backed(c, align_down(la, v.level), align_up(lb, v.level), v);
      });
    });
  }
  check_internals(c);
}

void SpecState::check_observed_states(StepCtx& c) {
  const Observation& o = *c.obs;
  const GfnRange op = c.op ? op_range(*c.op) : GfnRange{};
  const bool failed = c.out && c.out->err != 0;
  if (o.has_attrs) {
    for (const AttrWindow& w : o.attr_windows) {
      IntervalMap<bool>& shown = scratch_shown;  // shared gfns as the target shows them
      shown.clear();
      for (const GfnRange& r : w.shared) shown.assign(r.start, r.end(), true);
      std::optional<std::pair<GfnRange, Attr>> bad;  // first gfn run whose attribute differs
      auto differ = [&](uint64_t a, uint64_t b, Attr want) {
        if (bad) return;
        const bool want_shared = want == Attr::Shared;
        const bool differs = want_shared ? !shown.all_of(a, b, [](bool) { return true; }) : shown.any(a, b);
        if (differs) bad = std::make_pair(GfnRange{a, b - a}, want);
      };
      attrs.for_each(w.range.start, w.range.end(), differ);
      attrs.for_each_gap(w.range.start, w.range.end(), [&](uint64_t a, uint64_t b) { differ(a, b, Attr::Shared); });
      if (!bad) continue;
      // Nothing but a conversion changes attributes, and it changes exactly its (converted) range.
      const bool inside = op.overlaps(bad->first) && !failed;
      c.report(inside ? "INV-PRECISE" : "INV-ATOMIC", bad->first,
               describe(bad->first) + " is " + std::string(name(bad->second)) +
                   (inside ? " after " + (c.op ? describe(*c.op) : std::string()) : " (only a conversion changes attributes, and only inside its range)"),
               std::string("the target shows it ") + (bad->second == Attr::Shared ? "private" : "shared") + " in part");
    }
  }
  if (!tdx || !o.has_leaves) return;
  for (const LeafWindow& w : o.leaf_windows) {
    if (!w.is_private || !w.accepted) continue;
    IntervalMap<bool>& shown = scratch_shown;  // accepted gfns as the target shows them
    shown.clear();
    for (const GfnRange& r : *w.accepted) shown.assign(r.start, r.end(), true);
    std::optional<std::pair<GfnRange, AcceptState>> bad;
    accept.for_each(w.range.start, w.range.end(), [&](uint64_t a, uint64_t b, AcceptState st) {
      if (bad) return;
      const bool ok = st == AcceptState::Accepted ? shown.all_of(a, b, [](bool) { return true; }) : !shown.any(a, b);
      if (!ok) bad = std::make_pair(GfnRange{a, b - a}, st);
    });
    if (bad)
      c.report("INV-ACCEPT", bad->first,
               describe(bad->first) + " is " + (bad->second == AcceptState::Accepted ? "ACCEPTED" : "PENDING") +
                   ": AUG makes PENDING, only a successful accept makes ACCEPTED, a split keeps it, a zap ends it",
               std::string("the S-EPT shows ") + (bad->second == AcceptState::Accepted ? "PENDING" : "ACCEPTED") +
                   " in part");
  }
}

void SpecState::check_private_run(StepCtx& c, const LeafRun& r) {
  const GfnRange& g = r.range;
  const LeafVal v{r.level, r.pfn - g.start};
  auto words = [&] { return leaf_words(g.start, g.npages, v); };  // only when reporting: hot path
  if (!is_aligned(g.start, r.level) || g.npages % pages_in(r.level) || !is_aligned(r.pfn, r.level))
    c.report("INV-CONTIG", g, "a " + std::string(name(r.level)) + " leaf has a " + std::string(name(r.level)) +
                                  "-aligned gfn and pfn", words());
  const Memslot* m = slot_of(g);
  if (!m)
    c.report("INV-SLOT", g, "a leaf lies inside one memslot", words());
  else if (r.level > Level::L4K && !is_aligned(gmem_index(*m, g.start), r.level))
    c.report("INV-SLOT", g, "a " + std::string(name(r.level)) + " leaf has an equally aligned gmem index (L4437)",
             words() + " at gmem index " + hex(gmem_index(*m, g.start)));
  if (r.level > max_level_now())
    c.report("INV-LEVELCAP", g,
             "private leaves at most " + std::string(name(max_level_now())) +
                 (tdx && !runnable ? " before the TD is RUNNABLE"
                  : tdx && !cfg.tdx_huge_page ? " with tdx_huge_page=N"
                  : tdx && !cfg.features.enhanced_demote_interruptibility ? " without TDX_FEATURES0 bit 51"
                                                                           : ""),
             words());
  // INV-ATTR (L4436): a private leaf covers private gfns only, never a mix.
  std::optional<GfnRange> bad;
  attrs.for_each_gap(g.start, g.end(), [&](uint64_t a, uint64_t b) { if (!bad) bad = GfnRange{a, b - a}; });
  attrs.for_each(g.start, g.end(), [&](uint64_t a, uint64_t b, Attr x) {
    if (x == Attr::Shared && (!bad || a < bad->start)) bad = GfnRange{a, b - a};
  });
  if (bad) {
    const Gfn leaf = align_down(bad->start, r.level);
    const bool mixed = !all_attr({leaf, pages_in(r.level)}, Attr::Shared);
    c.report("INV-ATTR", {leaf, pages_in(r.level)}, "a private leaf spans private gfns only",
             leaf_words(leaf, pages_in(r.level), v) + (mixed ? " spans mixed private/shared gfns" : " over shared gfns") +
                 ", shared at " + describe(*bad));
  }
  if (!tdx) return;
  if (auto cap = cap_below(inhibit_cap, g.start, g.end(), r.level)) {
    const Gfn leaf = align_down(cap->first.start, r.level);
    c.report("INV-ACCEPT", {leaf, pages_in(r.level)},
             "GUEST_INHIBIT above " + std::string(name(cap->second)) + " at " + describe(cap->first) +
                 " (one-way, L274-277): no larger leaf there",
             leaf_words(leaf, pages_in(r.level), v));
  }
  if (auto cap = table_cap_below(g.start, g.end(), r.level)) {
    const Gfn leaf = align_down(cap->first.start, r.level);
    c.report("INV-NOPROMOTE", {leaf, pages_in(r.level)},
             "a mirror region that has had a page table stays at most " + std::string(name(cap->second)) +
                 " (seed 000, L1342)",
             leaf_words(leaf, pages_in(r.level), v) + " replaced the non-leaf entry");
  }
  // The mirror now has page tables above these leaves; a TD frees them only at teardown
  // (SEMANTICS.md "Memslots").
  if (r.level == Level::L4K) tables_4k.assign(align_down(g.start, Level::L2M), align_up(g.end(), Level::L2M), true);
  if (r.level < Level::L1G) tables_2m.assign(align_down(g.start, Level::L1G), align_up(g.end(), Level::L1G), true);
}

void SpecState::check_shared_run(StepCtx& c, const LeafRun& r) {
  const GfnRange& g = r.range;
  const LeafVal v{r.level, r.pfn - g.start};
  const Memslot* m = slot_of(g);
  if (!m) c.report("INV-SLOT", g, "a leaf lies inside one memslot", leaf_words(g.start, g.npages, v, false));
  // INV-CONTIG, shared side: per-VM shared memory is host memory; a leaf never exceeds the
  // host mapping (hugetlb/THP page, HVA alignment, PMD split by a partial discard).
  if (m && cfg.attr_mode == AttrMode::PerVm && r.level > Level::L4K && !host_allows_shared(*m, g.start, r.level))
    c.report("INV-CONTIG", g,
             "a shared leaf never exceeds the host mapping of " + std::string(name(cfg.shared_backing)) +
                 " shared memory at HVA page " + hex(host_index(*m, g.start)) +
                 (cfg.shared_backing == BackingKind::Thp2M ? " (4K once part of its 2M block was discarded)" : ""),
             leaf_words(g.start, g.npages, v, false));
  std::optional<GfnRange> bad;
  attrs.for_each(g.start, g.end(), [&](uint64_t a, uint64_t b, Attr x) {
    if (x == Attr::Private && !bad) bad = GfnRange{a, b - a};
  });
  if (bad)
    c.report("INV-ATTR", *bad, "shared leaves never cover private gfns",
             leaf_words(g.start, g.npages, v, false) + " covers private " + describe(*bad));
}

void SpecState::check_backed(StepCtx& c, Gfn a, Gfn b, const LeafVal& v) {
  const Memslot* m = slot_at(a);
  if (!m) return;  // INV-SLOT reports it
  b = std::min(b, m->range().end());
  const uint64_t ia = gmem_index(*m, a), ib = gmem_index(*m, b);
  const uint64_t want = v.delta + m->base_gfn - m->gmem_offset;  // pfn - index the leaf implies
  const uint8_t need = folio_order_of(v.level);
  const auto& f = backing.file(m->id);
  std::optional<std::pair<uint64_t, std::string>> bad;  // gmem index, what is wrong there
  f.for_each_gap(ia, ib, [&](uint64_t x, uint64_t) { if (!bad) bad = {x, "is a hole"}; });
  f.for_each(ia, ib, [&](uint64_t x, uint64_t, const BackVal& bv) {
    if (bad && bad->first < x) return;
    if (bv.delta != want)
      bad = {x, "holds pfn " + hex(x + bv.delta)};
    else if (cfg.contract == Contract::Folio && bv.order < need)  // L678, L4636: inside one folio
      bad = {x, "is in an order-" + std::to_string(bv.order) + " folio"};
  });
  if (!bad) return;
  const Gfn g = align_down(gfn_of_index(*m, bad->first), v.level);
  c.report("INV-CONTIG", {g, pages_in(v.level)},
           "a leaf maps the gmem pages it covers" +
               std::string(cfg.contract == Contract::Folio ? ", inside one folio (folio contract)"
                                                           : ", physically contiguous (contiguous contract)"),
           leaf_words(g, pages_in(v.level), v) + ": gmem index " + hex(bad->first) + " " + bad->second);
}

void SpecState::check_inhibit_over(StepCtx& c, const GfnRange& r) {
  priv.map().for_each(r.start, r.end(), [&](uint64_t a, uint64_t b, const LeafVal& v) {
    if (auto cap = cap_below(inhibit_cap, a, b, v.level)) {
      const Gfn leaf = align_down(cap->first.start, v.level);
      c.report("INV-ACCEPT", {leaf, pages_in(v.level)},
               "after the accept exit, GUEST_INHIBIT above " + std::string(name(cap->second)) +
                   ": the leaf is split to at most that (L2436-2503)",
               leaf_words(leaf, pages_in(v.level), v) + " remains");
    }
  });
}

void SpecState::check_folios_uniform(StepCtx& c, const Memslot& m, const GfnRange& r) {
  if (cfg.attr_mode != AttrMode::InPlace || !caps(Cap::Backing)) return;
  for (Gfn g : {r.start, r.end() - 1}) {
    const uint64_t idx = gmem_index(m, g);
    const BackVal* v = backing.file(m.id).at(idx);
    if (!v || v->order == 0 || folio_uniform(m, idx, v->order)) continue;
    const uint64_t n = uint64_t{1} << v->order;
    c.report("INV-ATTR", {g, 1},
             "in place a huge folio holds pages of one attribute: converting part of it splits it (L4523, L5617-5621)",
             "slot " + std::to_string(m.id) + " gmem [" + hex(idx & ~(n - 1)) + ", " + hex((idx & ~(n - 1)) + n) +
                 ") stays an order-" + std::to_string(v->order) + " folio over private and shared gfns");
    return;
  }
}

void SpecState::check_private_gone(StepCtx& c, const GfnRange& r, const char* why) {
  std::optional<std::pair<GfnRange, LeafVal>> first;
  uint64_t pieces = 0;
  priv.map().for_each(r.start, r.end(), [&](uint64_t a, uint64_t b, const LeafVal& v) {
    if (!first) first = {GfnRange{a, b - a}, v};
    ++pieces;
  });
  if (first)
    c.report("INV-PRECISE", first->first,
             std::string("no private mapping of ") + describe(r) + " remains after " + why + " (L6200-6203)",
             leaf_words(first->first.start, first->first.npages, first->second) + " is still mapped" +
                 (pieces > 1 ? " (and " + std::to_string(pieces - 1) + " more stretches)" : ""));
}

}  // namespace tdxhp::oracle_detail
