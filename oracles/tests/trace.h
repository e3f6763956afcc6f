// Small builders so a hand-written trace reads like a script:
//   t.step(Access{0x200}, ve(), Obs().priv({0x200, 512}, {leaf(0x200, L2M, 0x1200)}));
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <cerrno>
#include <set>
#include <string>
#include <vector>

#include "domain/describe.h"
#include "oracles/oracle.h"

namespace tdxhp::test {

constexpr Level L4K = Level::L4K, L2M = Level::L2M, L1G = Level::L1G;
constexpr uint64_t k2M = 512, k1G = 512 * 512;

inline LeafRun leaf(Gfn g, Level l, Pfn p) { return {{g, pages_in(l)}, l, p}; }
inline LeafRun leaves(Gfn g, uint64_t npages, Level l, Pfn p) { return {{g, npages}, l, p}; }
// gmem pages [idx, idx + n) of slot 0 at pfn p.., in folios of `order`.
inline BackingRun folios(uint64_t idx, uint64_t n, Pfn p, uint8_t order, uint32_t slot = 0) {
  return {slot, idx, n, true, p, order};
}
inline Event seamcall(const char* name, Gfn g, Level l, uint64_t status = tdx::kSuccess) {
  Event e;
  e.kind = EventKind::Seamcall;
  e.name = name;
  e.gfn = g;
  e.level = l;
  e.status = status;
  return e;
}
inline Event leaf_event(EventKind k, Gfn g, Level l) {
  Event e;
  e.kind = k;
  e.gfn = g;
  e.level = l;
  return e;
}
inline Event folio_split(uint64_t idx, uint64_t npages, uint8_t from, uint8_t to, uint32_t slot = 0) {
  Event e;
  e.kind = EventKind::FolioSplit;
  e.slot = slot;
  e.gfn = idx;
  e.npages = npages;
  e.order_from = from;
  e.order_to = to;
  return e;
}
inline Event kick() {
  Event e;
  e.kind = EventKind::Kick;
  return e;
}

// An observation: only what is listed changed.
struct Obs {
  Observation o;
  Obs() {
    o.has_leaves = true;
    o.has_backing = true;
  }
  Obs& priv(GfnRange window, std::vector<LeafRun> runs = {}) {
    o.leaf_windows.push_back({true, window, std::move(runs), std::nullopt});
    return *this;
  }
  // The S-EPT states of the last private window: these gfns ACCEPTED, the rest PENDING.
  Obs& accepted(std::vector<GfnRange> ranges) {
    o.leaf_windows.back().accepted = std::move(ranges);
    return *this;
  }
  // Complete attributes of `window`: these gfns shared, the rest private.
  Obs& attrs(GfnRange window, std::vector<GfnRange> shared = {}) {
    o.has_attrs = true;
    o.attr_windows.push_back({window, std::move(shared)});
    return *this;
  }
  Obs& shared(GfnRange window, std::vector<LeafRun> runs = {}) {
    o.leaf_windows.push_back({false, window, std::move(runs), std::nullopt});
    return *this;
  }
  Obs& gmem(uint64_t idx, uint64_t n, std::vector<BackingRun> runs = {}, uint32_t slot = 0) {
    o.backing_windows.push_back({slot, idx, n, std::move(runs)});
    return *this;
  }
  Obs& event(Event e) {
    o.has_events = true;
    o.events.push_back(std::move(e));
    return *this;
  }
  Obs& events() {  // an event log that is present but empty
    o.has_events = true;
    return *this;
  }
  Obs& log(std::string line) {
    o.kernel_log.push_back(std::move(line));
    return *this;
  }
  Obs& observer_fault(std::string why) {
    o.observer_fault = std::move(why);
    return *this;
  }
  Obs& dead() {
    o.vm_dead = true;
    return *this;
  }
  Obs& internals(SimInternals in) {
    o.internals = in;
    return *this;
  }
  operator const Observation&() const { return o; }
};

// gmem pfns in the tests: pfn = kBase + gmem index (= gfn in td()), so 2M/1G-aligned where the gfn is.
constexpr Pfn kBase = 0x100000;
inline Pfn pfn(Gfn g) { return kBase + g; }
// A fresh 2M private leaf at g over its 2M folio, and the same block split to 4K leaves.
inline Obs mapped_2m(Gfn g) {
  return Obs().priv({g, k2M}, {leaf(g, L2M, pfn(g))}).gmem(g, k2M, {folios(g, k2M, pfn(g), 9)});
}
inline Obs split_4k(Gfn block) { return Obs().priv({block, k2M}, {leaves(block, k2M, L4K, pfn(block))}); }

inline Outcome ok() { return {}; }
inline Outcome fails(int err) {
  Outcome o;
  o.err = err;
  return o;
}
inline Outcome ve() {
  Outcome o;
  o.ve = true;
  return o;
}
inline Outcome reads(uint64_t v) {
  Outcome o;
  o.read = v;
  return o;
}
inline Outcome status(uint64_t s) {
  Outcome o;
  o.tdx_status = s;
  return o;
}
inline Outcome unsupported() {
  Outcome o;
  o.unsupported = true;
  return o;
}

inline Caps caps_of(std::initializer_list<Cap> cs) {
  Caps k;
  k.has = cs;
  return k;
}
// Everything a simulated TDX host shows.
inline Caps tdx_caps() {
  Caps k;
  for (int i = 0; i < kCapCount; ++i) k.has.insert(Cap(i));
  return k;
}

// A TD with one 1 GiB-aligned slot of 2 GiB at gfn 0, gmem index = gfn, hugetlb-2m, folio contract.
inline Config td(BackingKind b = BackingKind::Hugetlb2M, uint64_t npages = 2 * k1G) {
  Config c;
  c.slots.push_back(Memslot{0, 0, npages, 0, 0});
  c.backing = b;
  return c;
}

inline std::set<std::string> ids(const std::vector<Violation>& v) {
  std::set<std::string> s;
  for (auto& x : v) s.insert(x.invariant);
  return s;
}
inline std::string words(const std::vector<Violation>& v) {
  std::string s;
  for (auto& x : v) s += "  " + describe(x) + "\n";
  return s.empty() ? "  (none)\n" : s;
}

// Drives an Oracle through a hand-built trace and keeps every violation.
struct Trace {
  Config cfg;
  Oracle oracle;
  std::vector<Violation> all;
  int64_t next = 0;

  Trace(const Config& c, const Caps& k = tdx_caps()) : cfg(c), oracle(c, k) {}

  // Setup observation: every slot's mirror window (build pages at 4K from `first_pfn`) and
  // its gmem file (build pages' 2M folios allocated from `first_pfn`).
  std::vector<Violation> setup(Obs extra = Obs(), Pfn build_pfn = 0x100000) {
    Obs o = std::move(extra);
    for (const Memslot& m : cfg.slots) {
      std::vector<LeafRun> runs;
      std::vector<BackingRun> back;
      for (const GfnRange& b : cfg.build_pages)
        if (m.range().covers(b)) {
          runs.push_back(leaves(b.start, b.npages, L4K, build_pfn + b.start));
          const uint64_t idx = m.gmem_offset + (b.start - m.base_gfn);
          back.push_back(folios(align_down(idx, L2M), k2M, build_pfn + align_down(b.start, L2M), 9, m.id));
        }
      o.priv(m.range(), runs);
      o.gmem(m.gmem_offset, m.npages, back, m.id);
    }
    return keep(oracle.after_setup(o));
  }
  std::vector<Violation> step(const Op& op, const Outcome& out, const Obs& obs = Obs()) {
    return keep(oracle.step(next++, op, out, obs));
  }
  std::vector<Violation> keep(std::vector<Violation> v) {
    all.insert(all.end(), v.begin(), v.end());
    return v;
  }
  bool clean() const { return all.empty(); }
};

#define EXPECT_CLEAN(trace) EXPECT_TRUE((trace).clean()) << words((trace).all)
#define EXPECT_REPORTS(violations, id) \
  EXPECT_TRUE(ids(violations).count(id)) << "expected " << id << ", got:\n" << words(violations)

}  // namespace tdxhp::test
