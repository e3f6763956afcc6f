#include "generators/config_gen.h"

#include <stdexcept>

#include "domain/case_file.h"

namespace tdxhp::gen {

namespace {
constexpr uint64_t k2M = pages_in(Level::L2M);
constexpr uint64_t k1G = pages_in(Level::L1G);

Gfn round_up(Gfn g, uint64_t to) { return (g + to - 1) / to * to; }

const rc::Gen<uint64_t>& slot_pages(BackingKind backing) {
  // 1G backing needs slots that hold a whole 1G folio and cross 1G edges (SC-1G-FOLIO, MUT-1G-MISS);
  // odd sizes put the slot edge inside a 2M block (INV-SLOT).
  static const auto for_1g =
      rc::gen::weightedElement<uint64_t>({{4, k1G}, {2, k1G + 4 * k2M}, {1, 2 * k1G}, {1, 8 * k2M}});
  static const auto other =
      rc::gen::weightedElement<uint64_t>({{4, 8 * k2M}, {2, 4 * k2M}, {1, 3 * k2M + 7}, {1, k1G + 2 * k2M}});
  return backing == BackingKind::Hugetlb1G ? for_1g : other;
}
}  // namespace

rc::Gen<Memslot> memslot_after(Gfn min_base, uint32_t id, BackingKind backing) {
  return rc::gen::exec([=] {
    Memslot m;
    m.id = id;
    // Base alignment class: 1G, 2M, 2M + 4K (misaligned). Mostly aligned so 2M mappings can happen.
    static const auto klass_gen = rc::gen::weightedElement<int>({{4, 0}, {3, 1}, {1, 2}});
    const int klass = *klass_gen;
    Gfn base = klass == 0 ? round_up(min_base, k1G) : round_up(min_base, k2M);
    static const auto misalign = rc::gen::element<uint64_t>(1, 7, 256);
    if (klass == 2) base += *misalign;
    m.base_gfn = base;
    m.npages = *slot_pages(backing);
    // gmem offset: equal alignment to the gfn (huge allowed), shifted by 2M, or misaligned (4K only, L4437).
    const uint64_t gfn_misalign = base % k2M;
    // (A weighted pick depends only on the weights: the picker is built once.)
    static const auto offset_kind = rc::gen::weightedElement<int>({{6, 0}, {2, 1}, {1, 2}});
    const uint64_t offsets[] = {gfn_misalign, gfn_misalign + k2M, (gfn_misalign + 1) % k2M};
    m.gmem_offset = offsets[*offset_kind];
    // A misaligned HVA must not block private 2M (INV-SLOT, MUT-HVA-ALIGN).
    static const auto hva = rc::gen::weightedElement<uint64_t>({{3, 0}, {1, 1}});
    m.hva_offset = *hva;
    return m;
  });
}

rc::Gen<Config> config(const GenProfile& p) {
  return rc::gen::exec([p] {
    Config c;
    // A target whose guest_memfd has only 4K folios (6.12) would refuse every huge config.
    // Constant generators are built once (static): building a Gen allocates; drawing is unchanged.
    static const auto backing = rc::gen::weightedElement<BackingKind>(
        {{4, BackingKind::Hugetlb2M}, {3, BackingKind::Hugetlb1G}, {2, BackingKind::Thp2M}, {1, BackingKind::Page4K}});
    c.backing = p.caps(Cap::HugeBacking) ? *backing : BackingKind::Page4K;
    // In-place conversion is where folios split and merge (L4523); a 1G folio is where that bites.
    const bool in_place_ok = p.caps(Cap::InPlaceConversion);
    static const auto in_place_1g = rc::gen::weightedElement<int>({{1, 0}, {3, 1}});
    static const auto in_place_other = rc::gen::weightedElement<int>({{1, 0}, {1, 1}});
    const auto& in_place = c.backing == BackingKind::Hugetlb1G ? in_place_1g : in_place_other;
    c.attr_mode = in_place_ok && *in_place ? AttrMode::InPlace : AttrMode::PerVm;
    // Shared host memory (per-VM): THP and hugetlb are where a shared leaf can outgrow its host
    // page (INV-CONTIG) or cover a private 4K page (INV-ATTR).
    // A target without separate shared host memory (kvm plain: gmem only) refuses huge kinds.
    static const auto shared_backing = rc::gen::weightedElement<BackingKind>(
        {{1, BackingKind::Page4K}, {3, BackingKind::Thp2M}, {3, BackingKind::Hugetlb2M}, {1, BackingKind::Hugetlb1G}});
    c.shared_backing = p.caps(Cap::SharedDiscard) ? *shared_backing : BackingKind::Page4K;
    static const auto nslots_gen = rc::gen::weightedElement<int>({{5, 1}, {2, 2}, {1, 3}});
    static const auto first_base = rc::gen::element<Gfn>(0x100000, k1G, 0);
    static const auto gap = rc::gen::element<uint64_t>(0, k2M);
    static const auto nine_to_one = rc::gen::weightedElement<int>({{9, 1}, {1, 0}});
    const int nslots = *nslots_gen;
    Gfn next = *first_base;
    for (int i = 0; i < nslots; ++i) {
      Memslot m = *memslot_after(next, static_cast<uint32_t>(i), c.backing);
      next = m.range().end() + *gap;  // adjacent slots share a 2M block
      c.slots.push_back(m);
    }
    c.initially_private = *nine_to_one != 0;
    // Build pages are 4K ADDs on private gfns (SC-PROMOTE); put them where the ops will look:
    // at the start of the first slot's first 2M block.
    // Only a TD has a build phase; a SW-protected VM refuses build pages.
    if (p.caps(Cap::Accept) && c.initially_private && *rc::gen::weightedElement<int>({{3, 0}, {2, 1}})) {
      const Memslot& s0 = c.slots.front();
      const Gfn block = round_up(s0.base_gfn, k2M);
      const int n = *rc::gen::inRange(1, 3);
      for (int i = 0; i < n; ++i) {
        const uint64_t off = *rc::gen::element<uint64_t>(0, 1, 5, k2M);
        GfnRange r{block + off, *rc::gen::element<uint64_t>(1, 2)};
        if (s0.range().covers(r)) c.build_pages.push_back(r);
      }
    }
    if (p.vary_module) {
      c.tdx_huge_page = *nine_to_one != 0;
      c.features.enhanced_demote_interruptibility = *nine_to_one != 0;
    }
    static const auto coin = rc::gen::element(false, true);
    static const auto contract = rc::gen::weightedElement<Contract>({{3, Contract::Folio}, {1, Contract::Contiguous}});
    c.features.dynamic_pamt = *coin;
    c.contract = *contract;
    // 1G private leaves are a what-if, but they are how the boundary split meets 1G leaves (MUT-1G-MISS).
    if (c.backing == BackingKind::Hugetlb1G)
      c.max_private_level = *rc::gen::weightedElement<Level>({{1, Level::L2M}, {1, Level::L1G}});
    c.vcpus = *rc::gen::element<uint32_t>(1, 2);
    if (std::string err = validate_config(c); !err.empty()) throw std::logic_error("config generator: " + err);
    return c;
  });
}

}  // namespace tdxhp::gen
