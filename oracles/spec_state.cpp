#include "oracles/spec_state.h"

#include <algorithm>

#include "domain/describe.h"

namespace tdxhp::oracle_detail {

SpecState::SpecState(const Config& c, const Caps& k) : cfg(c), caps(k), tdx(k(Cap::Accept)), slots(c.slots) {
  std::sort(slots.begin(), slots.end(), [](auto& a, auto& b) { return a.base_gfn < b.base_gfn; });
  live.assign(slots.size(), true);
  const bool priv = c.initially_private && k(Cap::PrivateMemory);
  for (const Memslot& m : slots) {
    attrs.assign(m.base_gfn, m.range().end(), priv ? Attr::Private : Attr::Shared);
    // gmem hands out zeroed folios; a TDX page reads zero only once accepted (set then).
    if (priv && !tdx) data.assign(m.base_gfn, m.range().end(), DataToken{DataToken::Value, 0});
  }
}

const Memslot* SpecState::slot_at(Gfn g) const {
  auto it = std::upper_bound(slots.begin(), slots.end(), g, [](Gfn x, const Memslot& m) { return x < m.base_gfn; });
  if (it == slots.begin()) return nullptr;
  --it;
  return it->range().contains(g) && live[static_cast<size_t>(it - slots.begin())] ? &*it : nullptr;
}

const Memslot* SpecState::slot_by_id(uint32_t id) const {
  for (const Memslot& m : slots)
    if (m.id == id) return &m;
  return nullptr;
}

const Memslot* SpecState::slot_of(const GfnRange& r) const {
  if (r.empty() || r.end() < r.start) return nullptr;
  const Memslot* m = slot_at(r.start);
  return m && r.end() <= m->range().end() ? m : nullptr;
}

bool SpecState::covered_by_slots(const GfnRange& r) const {
  Gfn cur = r.start;
  while (cur < r.end()) {
    const Memslot* m = slot_at(cur);
    if (!m) return false;
    cur = m->range().end();
  }
  return !r.empty();
}

std::vector<std::pair<const Memslot*, GfnRange>> SpecState::slot_parts(const GfnRange& r) const {
  std::vector<std::pair<const Memslot*, GfnRange>> out;
  for (size_t i = 0; i < slots.size(); ++i) {  // sorted by base_gfn
    const Memslot& m = slots[i];
    const Gfn s = std::max(r.start, m.base_gfn), e = std::min(r.end(), m.range().end());
    if (s < e && live[i]) out.push_back({&m, {s, e - s}});
  }
  return out;
}

bool SpecState::converted_already(const GfnRange& r, Attr to) const {
  if (cfg.attr_mode == AttrMode::InPlace) {
    for (const auto& [m, part] : slot_parts(r))
      if (!all_attr(part, to)) return false;
    return true;
  }
  bool all = attrs.all_of(r.start, r.end(), [to](Attr a) { return a == to; });
  if (to == Attr::Shared) {  // gaps are shared too
    all = true;
    attrs.for_each(r.start, r.end(), [&](uint64_t, uint64_t, Attr a) { all = all && a == Attr::Shared; });
  }
  return all;
}

Attr SpecState::attr_at(Gfn g) const {
  const Attr* a = attrs.at(g);
  return a ? *a : Attr::Shared;
}

bool SpecState::all_attr(const GfnRange& r, Attr a) const {
  return attrs.all_of(r.start, r.end(), [&](Attr v) { return v == a; });
}

bool SpecState::all_accepted(const GfnRange& r) const {
  return accept.all_of(r.start, r.end(), [](AcceptState x) { return x == AcceptState::Accepted; });
}

std::optional<GfnRange> SpecState::first_shared_leaf(const GfnRange& r) const {
  std::optional<GfnRange> first;
  shared.map().for_each(r.start, r.end(), [&](uint64_t a, uint64_t b, const LeafVal&) {
    if (!first) first = GfnRange{a, b - a};
  });
  return first;
}

Level SpecState::max_level_now() const {
  Level l = cfg.max_private_level;
  // L4401-4403, L4442-4463: 4K only before RUNNABLE, with tdx_huge_page=N, or without bit 51.
  if (tdx && (!runnable || !cfg.tdx_huge_page || !cfg.features.enhanced_demote_interruptibility)) l = Level::L4K;
  return l;
}

// INV-LIVE: everything that allows a private 2M leaf for the 2M block at `b` holds right now.
// The HVA offset is deliberately not consulted (MUT-HVA-ALIGN, L4526-4527).
bool SpecState::allows_private_2m(Gfn b) const {
  const GfnRange block{b, pages_in(Level::L2M)};
  if (!tdx || max_level_now() < Level::L2M || !is_aligned(b, Level::L2M)) return false;
  const Memslot* m = slot_of(block);
  if (!m || !is_aligned(m->base_gfn - m->gmem_offset, Level::L2M)) return false;
  if (!all_attr(block, Attr::Private)) return false;
  if (cap_below(inhibit_cap, block.start, block.end(), Level::L2M)) return false;
  if (table_cap_below(block.start, block.end(), Level::L2M)) return false;
  if (priv.map().any(block.start, block.end())) return false;
  if (cfg.backing == BackingKind::Page4K) return false;
  if (!caps(Cap::Backing)) return true;
  // Backing: a hole gets a fresh huge folio; allocated pages must already form a 2M folio
  // (folio contract) or a contiguous aligned 2M run (contiguous contract) -- except that in
  // place, a fully private original folio block must have been merged back (L4730-4737).
  const uint64_t idx = gmem_index(*m, b);
  const auto& f = backing.file(m->id);
  bool any = false, hole = false, one_run = true, huge = true;
  std::optional<uint64_t> delta;
  f.for_each_gap(idx, idx + block.npages, [&](uint64_t, uint64_t) { hole = true; });
  f.for_each(idx, idx + block.npages, [&](uint64_t, uint64_t, const BackVal& v) {
    any = true;
    if (delta && *delta != v.delta) one_run = false;
    delta = v.delta;
    if (v.order < 9) huge = false;
  });
  // A hole gets a fresh folio, which in place is split to 4K at once when its block holds
  // mixed attributes (kvm_gmem_get_folio -> __maybe_split_fresh_folio).
  if (!any)
    return cfg.attr_mode != AttrMode::InPlace ||
           folio_uniform(*m, idx, cfg.backing == BackingKind::Hugetlb1G ? 18 : 9);
  if (hole || !one_run || !is_aligned(idx + *delta, Level::L2M)) return false;
  if (huge || cfg.contract == Contract::Contiguous) return true;
  if (cfg.attr_mode == AttrMode::InPlace) {
    const Level orig = cfg.backing == BackingKind::Hugetlb1G ? Level::L1G : Level::L2M;
    const uint64_t ob = align_down(idx, orig);
    const Gfn og = gfn_of_index(*m, ob);
    if (ob >= m->gmem_offset && slot_of(GfnRange{og, pages_in(orig)}) && all_attr(GfnRange{og, pages_in(orig)}, Attr::Private))
      return true;  // should have merged: MUT-NO-MERGE
  }
  return false;
}

bool SpecState::folio_uniform(const Memslot& m, uint64_t idx, uint8_t order, const GfnRange* b, Attr to) const {
  const uint64_t n = uint64_t{1} << order, lo = idx & ~(n - 1), hi = lo + n;
  const uint64_t slot_lo = m.gmem_offset, slot_hi = m.gmem_offset + m.npages;
  bool any_private = lo < slot_lo || hi > slot_hi, any_shared = false;
  if (std::max(lo, slot_lo) >= std::min(hi, slot_hi)) return true;
  const Gfn gs = gfn_of_index(m, std::max(lo, slot_lo)), ge = gfn_of_index(m, std::min(hi, slot_hi));
  if (b && b->overlaps({gs, ge - gs})) (to == Attr::Shared ? any_shared : any_private) = true;
  attrs.for_each(gs, ge, [&](uint64_t x, uint64_t y, Attr a) {
    if (b && x >= b->start && y <= b->end()) return;  // wholly inside b: taken as `to`
    (a == Attr::Shared ? any_shared : any_private) = true;
  });
  return !(any_shared && any_private);
}

size_t SpecState::pieces() const {
  return attrs.pieces() + priv.map().pieces() + shared.map().pieces() + backing.pieces() + accept.pieces() + thp_pmd_split.pieces() +
         inhibit_cap.pieces() + tables_4k.pieces() + tables_2m.pieces() + data.pieces() + pins.pieces() + pfns_in_4k_leaves.pieces();
}

std::string leaf_words(Gfn start, uint64_t npages, const LeafVal& v, bool is_private) {
  const std::string kind = std::string(is_private ? "private " : "shared ") + std::string(name(v.level));
  const uint64_t size = pages_in(v.level);
  if (npages < size) {  // part of one leaf
    const Gfn head = align_down(start, v.level);
    return describe(GfnRange{start, npages}) + " of " + kind + " leaf gfn [" + hex(head) + ", " + hex(head + size) +
           ") -> pfn " + hex(v.pfn_at(head));
  }
  return kind + (npages > size ? " leaves " : " leaf ") + describe(GfnRange{start, npages}) + " -> pfn " +
         hex(v.pfn_at(start));
}

GfnRange op_range(const Op& op) {
  return std::visit(
      [](const auto& o) -> GfnRange {
        using T = std::decay_t<decltype(o)>;
        if constexpr (std::is_same_v<T, Access>) return {o.gfn, 1};
        else if constexpr (std::is_same_v<T, Accept>) return {o.gfn, pages_in(o.level)};
        else if constexpr (std::is_same_v<T, Inject> || std::is_same_v<T, DeleteSlot> || std::is_same_v<T, AddSlot>)
          return {};
        else return o.range;
      },
      op);
}

std::string SpecState::describe_gfn(Gfn g) const {
  std::string s = "gfn " + hex(g) + ": ";
  const Memslot* m = slot_at(g);
  if (!m) return s + "outside every memslot";
  s += std::string(name(attr_at(g))) + ", slot " + std::to_string(m->id);
  if (auto l = priv.leaf_at(g)) {
    s += ", " + leaf_words(l->first, pages_in(l->second.level), l->second);
    if (tdx) s += accept.at(g) && *accept.at(g) == AcceptState::Accepted ? " ACCEPTED" : " PENDING";
  } else {
    s += ", no private leaf";
  }
  if (auto l = shared.leaf_at(g)) s += ", " + leaf_words(l->first, pages_in(l->second.level), l->second, false);
  const uint64_t idx = gmem_index(*m, g);
  if (const BackVal* b = backing.file(m->id).at(idx))
    s += ", gmem index " + hex(idx) + " -> pfn " + hex(idx + b->delta) + " in an order-" + std::to_string(b->order) + " folio";
  else
    s += ", gmem index " + hex(idx) + " is a hole";
  if (const Level* c = inhibit_cap.at(g)) s += ", GUEST_INHIBIT above " + std::string(name(*c));
  if (tables_4k.at(g) || tables_2m.at(g))
    s += ", mirror page table: leaves at most " + std::string(tables_4k.at(g) ? "4K" : "2M");
  if (const DataToken* d = data.at(g); d && d->expected_at(g)) s += ", data " + hex(*d->expected_at(g));
  if (const uint32_t* p = pins.at(g); p && *p) s += ", pinned x" + std::to_string(*p);
  return s;
}

bool SpecState::host_allows_shared(const Memslot& m, Gfn block, Level level) const {
  if (level == Level::L4K) return true;
  if (level > page_level(cfg.shared_backing) || !is_aligned(host_index(m, block), level)) return false;
  // A partial MADV_DONTNEED split the THP's PMD: that block maps 4K on the host from then on.
  return cfg.shared_backing != BackingKind::Thp2M || !thp_pmd_split.any(block, block + pages_in(level));
}

std::optional<std::pair<GfnRange, Level>> SpecState::table_cap_below(Gfn s, Gfn e, Level level) const {
  auto first_piece = [&](const IntervalMap<bool>& m, Level cap) -> std::optional<std::pair<GfnRange, Level>> {
    std::optional<std::pair<GfnRange, Level>> f;
    m.for_each(s, e, [&](uint64_t a, uint64_t b, bool) {
      if (!f) f = std::make_pair(GfnRange{a, b - a}, cap);
    });
    return f;
  };
  if (level > Level::L4K)
    if (auto f = first_piece(tables_4k, Level::L4K)) return f;
  if (level > Level::L2M) return first_piece(tables_2m, Level::L2M);
  return std::nullopt;
}

}  // namespace tdxhp::oracle_detail
