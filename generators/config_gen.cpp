#include "generators/config_gen.h"

#include <stdexcept>

#include "domain/case_file.h"

namespace tdxhp::gen {

namespace {
constexpr uint64_t k2M = pages_in(Level::L2M);
constexpr uint64_t k1G = pages_in(Level::L1G);

Gfn round_up(Gfn g, uint64_t to) { return (g + to - 1) / to * to; }

uint64_t slot_pages(Choices& ch, BackingKind backing) {
  // 1G backing needs slots that hold a whole 1G folio and cross 1G edges (SC-1G-FOLIO, MUT-1G-MISS);
  // odd sizes put the slot edge inside a 2M block (INV-SLOT).
  if (backing == BackingKind::Hugetlb1G)
    return ch.weighted<uint64_t>({{4, k1G}, {2, k1G + 4 * k2M}, {1, 2 * k1G}, {1, 8 * k2M}});
  return ch.weighted<uint64_t>({{4, 8 * k2M}, {2, 4 * k2M}, {1, 3 * k2M + 7}, {1, k1G + 2 * k2M}});
}
}  // namespace

Memslot draw_memslot(Choices& ch, Gfn min_base, uint32_t id, BackingKind backing) {
  Memslot m;
  m.id = id;
  // Base alignment class: 1G, 2M, 2M + 4K (misaligned). Mostly aligned so 2M mappings can happen.
  const int klass = ch.weighted<int>({{4, 0}, {3, 1}, {1, 2}});
  Gfn base = klass == 0 ? round_up(min_base, k1G) : round_up(min_base, k2M);
  if (klass == 2) base += ch.one_of<uint64_t>({1, 7, 256});
  m.base_gfn = base;
  m.npages = slot_pages(ch, backing);
  // gmem offset: equal alignment to the gfn (huge allowed), shifted by 2M, or misaligned (4K only, L4437).
  const uint64_t gfn_misalign = base % k2M;
  m.gmem_offset = ch.weighted<uint64_t>({{6, gfn_misalign}, {2, gfn_misalign + k2M}, {1, (gfn_misalign + 1) % k2M}});
  // A misaligned HVA must not block private 2M (INV-SLOT, MUT-HVA-ALIGN).
  m.hva_offset = ch.weighted<uint64_t>({{3, 0}, {1, 1}});
  return m;
}

Config draw_config(Choices& ch, const GenProfile& p) {
  Config c;
  // A target whose guest_memfd has only 4K folios (6.12) would refuse every huge config.
  c.backing = p.caps(Cap::HugeBacking) ? ch.weighted<BackingKind>({{4, BackingKind::Hugetlb2M},
                                                                    {3, BackingKind::Hugetlb1G},
                                                                    {2, BackingKind::Thp2M},
                                                                    {1, BackingKind::Page4K}})
                                       : BackingKind::Page4K;
  // In-place conversion is where folios split and merge (L4523); a 1G folio is where that bites.
  const bool in_place = p.caps(Cap::InPlaceConversion) &&
                        (c.backing == BackingKind::Hugetlb1G ? ch.weighted<int>({{1, 0}, {3, 1}}) : ch.coin());
  c.attr_mode = in_place ? AttrMode::InPlace : AttrMode::PerVm;
  // Shared host memory (per-VM): THP and hugetlb are where a shared leaf can outgrow its host
  // page (INV-CONTIG) or cover a private 4K page (INV-ATTR).
  // A target without separate shared host memory (kvm plain: gmem only) refuses huge kinds.
  c.shared_backing = p.caps(Cap::SharedDiscard) ? ch.weighted<BackingKind>({{1, BackingKind::Page4K},
                                                                            {3, BackingKind::Thp2M},
                                                                            {3, BackingKind::Hugetlb2M},
                                                                            {1, BackingKind::Hugetlb1G}})
                                                : BackingKind::Page4K;
  const int nslots = ch.weighted<int>({{5, 1}, {2, 2}, {1, 3}});
  Gfn next = ch.one_of<Gfn>({0x100000, k1G, 0});
  for (int i = 0; i < nslots; ++i) {
    const Memslot m = draw_memslot(ch, next, static_cast<uint32_t>(i), c.backing);
    next = m.range().end() + ch.one_of<uint64_t>({0, k2M});  // adjacent slots share a 2M block
    c.slots.push_back(m);
  }
  c.initially_private = ch.weighted<int>({{9, 1}, {1, 0}}) != 0;
  // Build pages are 4K ADDs on private gfns (SC-PROMOTE); put them where the ops will look:
  // at the start of the first slot's first 2M block.
  // Only a TD has a build phase; a SW-protected VM refuses build pages.
  if (p.caps(Cap::Accept) && c.initially_private && ch.weighted<int>({{3, 0}, {2, 1}})) {
    const Memslot& s0 = c.slots.front();
    const Gfn block = round_up(s0.base_gfn, k2M);
    const int n = ch.in_range(1, 3);
    for (int i = 0; i < n; ++i) {
      const uint64_t off = ch.one_of<uint64_t>({0, 1, 5, k2M});
      const GfnRange r{block + off, ch.one_of<uint64_t>({1, 2})};
      if (s0.range().covers(r)) c.build_pages.push_back(r);
    }
  }
  if (p.vary_module) {
    c.tdx_huge_page = ch.weighted<int>({{9, 1}, {1, 0}}) != 0;
    c.features.enhanced_demote_interruptibility = ch.weighted<int>({{9, 1}, {1, 0}}) != 0;
  }
  c.features.dynamic_pamt = ch.coin();
  c.contract = ch.weighted<Contract>({{3, Contract::Folio}, {1, Contract::Contiguous}});
  // 1G private leaves are a what-if, but they are how the boundary split meets 1G leaves (MUT-1G-MISS).
  if (c.backing == BackingKind::Hugetlb1G) c.max_private_level = ch.one_of({Level::L2M, Level::L1G});
  c.vcpus = ch.one_of<uint32_t>({1, 2});
  if (std::string err = validate_config(c); !err.empty()) throw std::logic_error("config generator: " + err);
  return c;
}

}  // namespace tdxhp::gen
