#include "generators/op_gen.h"

#include <algorithm>
#include <array>

#include "domain/case_file.h"
#include "generators/swarm_gen.h"

namespace tdxhp::gen {

namespace {
constexpr uint64_t k2M = pages_in(Level::L2M);
constexpr uint64_t k1G = pages_in(Level::L1G);

const Memslot& slot_for(const Config& c, Gfn g) {
  for (auto& s : c.slots)
    if (s.range().contains(g)) return s;
  return c.slots.front();
}

Gfn first_block(const Memslot& s) { return (s.base_gfn + k2M - 1) / k2M * k2M; }

// Candidate 2M blocks a scenario may keep hitting: slot head, the blocks on both sides of a
// 1G edge (MUT-1G-MISS, SC-1G-FOLIO), the slot's last block (slot edge), one at random.
std::vector<Gfn> candidate_blocks(const Config& c) {
  std::vector<Gfn> out;
  for (auto& s : c.slots) {
    out.push_back(first_block(s));
    const Gfn g1 = (s.base_gfn + k1G - 1) / k1G * k1G;
    if (g1 + k2M <= s.range().end()) out.push_back(g1);
    if (g1 > s.base_gfn && g1 - k2M >= s.base_gfn) out.push_back(g1 - k2M);
    if (s.npages > k2M) out.push_back(align_down(s.range().end() - 1, Level::L2M));
  }
  return out;
}

bool runnable(const Caps& caps, const Op& op) {
  return std::visit(
      [&](const auto& o) {
        using T = std::decay_t<decltype(o)>;
        if constexpr (std::is_same_v<T, Convert>) return caps(Cap::Attributes);
        if constexpr (std::is_same_v<T, PunchHole>) return caps(Cap::PunchHole);
        if constexpr (std::is_same_v<T, Prefault>) return caps(Cap::Prefault);
        if constexpr (std::is_same_v<T, Accept>) return caps(Cap::Accept) && (!o.queued || caps(Cap::Interleaving));
        if constexpr (std::is_same_v<T, Access>) return !o.queued || caps(Cap::Interleaving);
        if constexpr (std::is_same_v<T, DiscardShared>) return caps(Cap::SharedDiscard);
        if constexpr (std::is_same_v<T, MapGpa>) return caps(Cap::MapGpa);
        if constexpr (std::is_same_v<T, Pin> || std::is_same_v<T, Unpin>) return caps(Cap::Pin);
        if constexpr (std::is_same_v<T, Inject>) return caps(Cap::FaultInjection);
        if constexpr (std::is_same_v<T, DeleteSlot> || std::is_same_v<T, AddSlot>) return caps(Cap::SlotLifecycle);
        return true;
      },
      op);
}

Gfn pick_block(Choices& ch, const OpContext& ctx) {
  // Mostly the hot blocks, so later ops land on what earlier ops mapped, split or converted.
  if (ch.weighted<int>({{8, 0}, {1, 1}}) == 0) return ch.element_of(ctx.hot);
  const Memslot& s = ch.element_of(ctx.config.slots);
  const uint64_t nblocks = std::max<uint64_t>(1, s.npages / k2M);
  return first_block(s) + k2M * ch.below(nblocks);
}

uint64_t offset_in_block(Choices& ch) { return ch.one_of<uint64_t>({0, 1, 255, 256, 511}); }
uint64_t token(Choices& ch) { return ch.in_range<uint64_t>(1, 1000); }

// A conversion the guest asks for (MapGPA) or the host does (attributes ioctl).
Op conversion(Choices& ch, const OpContext& ctx, GfnRange r, Attr to) {
  if (ctx.profile.caps(Cap::MapGpa) && ch.weighted<int>({{3, 0}, {1, 1}})) return MapGpa{r, to};
  return Convert{r, to};
}

// A range that overlaps block b but leaves part of it out (a sub-range of a huge mapping).
GfnRange sub_range(Choices& ch, Gfn b) {
  switch (ch.weighted<int>({{4, 0}, {2, 1}, {1, 2}, {1, 3}, {1, 4}})) {
    case 0: return {b + offset_in_block(ch), 1};
    case 1: return {b + ch.one_of<uint64_t>({0, 254, 510}), 2};  // 8K inside a 2M leaf (SC-BOUNDARY)
    case 2: return {b, ch.one_of<uint64_t>({1, 256, 511})};
    case 3: { uint64_t k = ch.one_of<uint64_t>({1, 256, 511}); return {b + k, k2M - k}; }
    default: { uint64_t k = ch.one_of<uint64_t>({1, 256}); return {b + k2M - k, 2 * k}; }
  }
}

// One injected fault (SEMANTICS.md "Inject"): BUSY once at each retried SEAMCALL (SC-BUSY),
// BUSY on the retry and the other errors KVM must die of (L1604-1614), an interrupted DEMOTE,
// and the two allocations (SC-FAIL-MIDWAY).
Inject fault_injection(Choices& ch) {
  const FaultSite retried = ch.one_of({FaultSite::Block, FaultSite::Track, FaultSite::Demote, FaultSite::Remove});
  const FaultSite any = ch.one_of({FaultSite::Block, FaultSite::Track, FaultSite::Demote, FaultSite::Remove,
                                   FaultSite::Wbinvd, FaultSite::Aug, FaultSite::SeptAdd});
  Inject in = ch.weighted<Inject>({{3, Inject{FaultSite::Demote, tdx::kOperandBusy, 1}},
                                   {2, Inject{FaultSite::SplitCacheTopup, 0, 1}},
                                   {2, Inject{FaultSite::FolioSplit, 0, 1}},
                                   {2, Inject{retried, tdx::kOperandBusy, 1}},
                                   {1, Inject{FaultSite::Aug, tdx::kOperandBusy, 1}},
                                   {1, Inject{retried, tdx::kOperandBusy, 2}},  // BUSY on the retry
                                   {1, Inject{FaultSite::Demote, tdx::kSwError, 1}},
                                   {1, Inject{any, tdx::kOperandInvalid | tdx::kOperandIdRcx, 1}},
                                   {2, Inject{FaultSite::Demote, tdx::kInterruptedRestartable, 1}}});
  // More restarts than the INV-BUSY watchdog allows (16) tells a bounded retry from an endless one.
  if (in.status == tdx::kInterruptedRestartable) in.count = ch.one_of<uint32_t>({20, 1});
  return in;
}

// Drops the ops the target cannot run (their Cap is missing).
void keep_runnable(const Caps& caps, std::vector<Op>& ops) {
  std::erase_if(ops, [&](const Op& op) { return !runnable(caps, op); });
}

}  // namespace

OpContext draw_context(Choices& ch, const Config& config, const GenProfile& profile) {
  OpContext ctx{config, profile, {}};
  const std::vector<Gfn> cands = candidate_blocks(config);
  const int n = ch.in_range(1, 4);
  for (int i = 0; i < n; ++i) ctx.hot.push_back(ch.element_of(cands));
  return ctx;
}

GfnRange range_near(Choices& ch, const OpContext& ctx, Gfn b) {
  const Memslot& s = slot_for(ctx.config, b);
  const Gfn g1 = align_down(b, Level::L1G);
  switch (ch.weighted<int>({{10, 0}, {8, 1}, {4, 2}, {2, 3}, {2, 4}, {2, 5}, {2, 6}, {2, 7}, {1, 8}, {1, 9}, {1, 10}})) {
    case 0: return sub_range(ch, b);
    case 1: return {b, k2M};                                                    // whole 2M
    case 2: return {b, k2M * ch.one_of<uint64_t>({2, 3})};                      // 2M-aligned run
    case 3: return {g1, k1G};                                                   // whole 1G
    case 4: return {g1 + k2M, k2M * ch.one_of<uint64_t>({1, 2})};               // 2M-aligned start in a 1G leaf
    case 5: return {s.base_gfn, ch.one_of<uint64_t>({1, k2M, k2M + 1})};        // slot head edge
    case 6: { uint64_t n = ch.one_of<uint64_t>({1, k2M, k2M + 1});
              n = std::min(n, s.npages); return {s.range().end() - n, n}; }     // slot tail edge
    case 7: return s.range();                                                   // huge range (work must not scale)
    case 8: return {b, 0};                                                      // empty: -EINVAL
    case 9: return {kGfnLimit - k2M, 1};                                        // outside every slot
    default: return {s.range().end() - 1, 2};                                   // runs off the slot end
  }
}

namespace {
std::vector<Op> single(Choices& ch, const OpContext& ctx) {
  const Gfn b = pick_block(ch, ctx);
  switch (ch.below(10)) {
    case 0: return {Access{b + offset_in_block(ch), ch.coin(), token(ch)}};
    case 8: return {DiscardShared{range_near(ch, ctx, b)}};
    case 9: return {Access{b + offset_in_block(ch), ch.coin(), token(ch), true}};
    case 1: return {Accept{b + offset_in_block(ch), Level::L4K}};
    case 2: return {Accept{b + ch.one_of<uint64_t>({0, 0, 1}), Level::L2M}};  // misaligned -> OPERAND_INVALID
    case 3: return {conversion(ch, ctx, range_near(ch, ctx, b), ch.one_of({Attr::Shared, Attr::Private}))};
    case 4: return {PunchHole{range_near(ch, ctx, b)}};
    case 5: return {Prefault{range_near(ch, ctx, b)}};
    case 6: return {Accept{align_down(b, Level::L1G), Level::L1G}};  // the module refuses 1G: OPERAND_INVALID
    default: return {Pin{range_near(ch, ctx, b)}};
  }
}

// Map, then accept at a level that agrees or disagrees with the mapping (SC-ACCEPT4K-AFTER/BEFORE, INV-LIVE).
std::vector<Op> touch_accept(Choices& ch, const OpContext& ctx) {
  const Gfn b = pick_block(ch, ctx);
  const uint64_t k = offset_in_block(ch);
  std::vector<Op> v;
  switch (ch.in_range(0, 4)) {
    case 0: v.push_back(Access{b + k, false, 0}); break;        // fault: KVM maps at max level
    case 3: v.push_back(Access{b ^ k2M, false, 0}); break;      // neighbour block: a 1G leaf covers b too
    case 1: v.push_back(Prefault{{b, k2M}}); break;
    default: break;                                             // accept with nothing mapped
  }
  const Level first = ch.one_of({Level::L2M, Level::L4K});
  v.push_back(Accept{first == Level::L2M ? b : b + k, first});
  v.push_back(Accept{first == Level::L2M ? b + k : b, first == Level::L2M ? Level::L4K : Level::L2M});
  v.push_back(Access{b + k, true, token(ch)});
  v.push_back(Access{b + k, false, 0});
  return v;
}

// SC-PARTIAL-CONVERT / SC-1G-FOLIO / SC-BOUNDARY: huge leaf accepted with data, convert a
// sub-range shared and back, then check neighbours and a 2M re-accept.
std::vector<Op> partial_convert(Choices& ch, const OpContext& ctx) {
  const Gfn b = pick_block(ch, ctx);
  const bool huge1g = ctx.config.max_private_level == Level::L1G && ch.one_of({false, true});
  const Gfn region = huge1g ? align_down(b, Level::L1G) : b;
  // Data just outside the converted range: the first page, last page, or the next block's
  // last page (over-zap past the end, MUT-HEAD-ONLY).
  const uint64_t neighbour = ch.one_of<uint64_t>({0, 511, 1, 2 * k2M - 1});
  std::vector<Op> v;
  v.push_back(Access{region, false, 0});  // fault first: KVM maps at the max level
  // The module accepts 4K and 2M only: a what-if 1G leaf is split to 2M by the accept's exit.
  v.push_back(Accept{region, Level::L2M});
  // A second huge leaf right after, so ranges straddling the 2M edge meet two huge leaves.
  if (!huge1g && ch.one_of({true, false})) v.push_back(Accept{b + k2M, Level::L2M});
  v.push_back(Access{region + neighbour, true, token(ch)});
  const GfnRange r = huge1g ? GfnRange{region + k2M * ch.one_of<uint64_t>({1, 2}), k2M} : range_near(ch, ctx, b);
  v.push_back(conversion(ch, ctx, r, Attr::Shared));
  v.push_back(Access{region + neighbour, false, 0});
  // Back to private: the range, or one page wider on each side, over still-private pages
  // whose leaves must stay (only shared leaves may go).
  const GfnRange back = r.start > 0 ? ch.one_of({r, GfnRange{r.start - 1, r.npages + 2}}) : r;
  v.push_back(conversion(ch, ctx, back, Attr::Private));
  v.push_back(Accept{b, Level::L2M});
  v.push_back(Access{region + neighbour, false, 0});
  return v;
}

// SC-PROMOTE: 4K leaves under a 2M region, zap them by a round trip, accept 2M (no merge).
std::vector<Op> round_trip(Choices& ch, const OpContext& ctx) {
  const Gfn b = pick_block(ch, ctx);
  std::vector<Op> v;
  switch (ch.weighted<int>({{3, 1}, {1, 0}, {1, 2}})) {
    case 0: v.push_back(Accept{b + offset_in_block(ch), Level::L4K}); break;  // page table under b
    case 1: v.push_back(Access{b ^ k2M, false, 0}); break;  // allocate the huge folio around b (in-place merge)
    default: break;
  }
  const GfnRange r = ch.weighted<GfnRange>({{3, GfnRange{b + offset_in_block(ch), 1}}, {1, GfnRange{b, k2M}}});
  v.push_back(conversion(ch, ctx, r, Attr::Shared));
  v.push_back(Access{r.start, true, token(ch)});
  // Back to private: the range, or one page wider on each side, over still-private pages
  // whose leaves must stay (only shared leaves may go).
  const GfnRange back = r.start > 0 ? ch.one_of({r, GfnRange{r.start - 1, r.npages + 2}}) : r;
  v.push_back(conversion(ch, ctx, back, Attr::Private));
  v.push_back(Accept{b, Level::L2M});
  v.push_back(Access{b + offset_in_block(ch), false, 0});
  return v;
}

// SC-PREFAULT: prefault 2M before the guest accepts at 4K: the split happens on the accept exit.
std::vector<Op> prefault(Choices& ch, const OpContext& ctx) {
  const Gfn b = pick_block(ch, ctx);
  const uint64_t k = offset_in_block(ch);
  return {Prefault{ch.one_of({GfnRange{b, k2M}, GfnRange{b, 2 * k2M}})}, Accept{b + k, Level::L4K},
          Access{b + k, false, 0}, Accept{b, Level::L2M}};
}

// SC-PUNCH-ALIGN: punch aligned or not; data outside the hole must survive.
std::vector<Op> punch(Choices& ch, const OpContext& ctx) {
  const Gfn b = pick_block(ch, ctx);
  const uint64_t keep = ch.one_of<uint64_t>({uint64_t{k2M}, uint64_t{0}, uint64_t{k2M - 1}});
  return {Accept{b, Level::L2M}, Access{b + keep, true, token(ch)}, PunchHole{range_near(ch, ctx, b)},
          Access{b + keep, false, 0}, Access{b, false, 0}};
}

// SC-BUSY / SC-FAIL-MIDWAY / restartable: arm a fault right before an op that must split.
// The 2M leaf is accepted with data (a conversion inside it splits it) or left PENDING (a
// 4K accept exits and splits it; an accept inside an ACCEPTED 2M leaf takes no exit).
std::vector<Op> fault(Choices& ch, const OpContext& ctx) {
  const Gfn b = pick_block(ch, ctx);
  const uint64_t k = ch.one_of<uint64_t>({1, 256, 511});
  Inject in = fault_injection(ch);
  std::vector<Op> v;
  const bool pending = ch.one_of({false, true});
  if (pending)
    v.push_back(ch.one_of<Op>({Prefault{{b, k2M}}, Access{b, false, 0}}));
  else
    v.insert(v.end(), {Accept{b, Level::L2M}, Access{b, true, token(ch)}});
  v.push_back(in);
  if (!pending || ch.one_of({true, false}))  // boundary split inside the 2M leaf, or across its end
    v.push_back(conversion(ch, ctx, ch.one_of({GfnRange{b + k, 1}, GfnRange{b + k2M - 1, 2}}), Attr::Shared));
  else
    v.push_back(Accept{b + k, Level::L4K});  // accept-exit split (DEMOTE) of the PENDING leaf
  v.push_back(Access{b, false, 0});
  v.push_back(Accept{b + k, Level::L4K});
  v.push_back(Access{b + k2M + 3, false, 0});  // a fault in the next block, inside a failed conversion's invalidation
  return v;
}

// SC-PIN (L9600-9610): in place, pinned shared pages make a conversion to private -EAGAIN
// and change nothing; after unpin it works. Private -> shared ignores pins.
std::vector<Op> pin(Choices& ch, const OpContext& ctx) {
  const Gfn b = pick_block(ch, ctx);
  const GfnRange r = ch.one_of({GfnRange{b + 1, 1}, GfnRange{b, k2M}});
  return {Pin{r}, conversion(ch, ctx, r, Attr::Shared), Access{r.start, true, token(ch)}, conversion(ch, ctx, r, Attr::Private),
          Access{r.start, false, 0}, Unpin{r}, conversion(ch, ctx, r, Attr::Private), Accept{r.start, Level::L4K}};
}

// INV-ATTR / INV-CONTIG on the shared side: make a 2M block shared with one private 4K page
// in it (or none), touch it, discard part or all of its host memory, touch it again.
std::vector<Op> shared_huge(Choices& ch, const OpContext& ctx) {
  const Gfn b = pick_block(ch, ctx);
  const uint64_t k = offset_in_block(ch);
  std::vector<Op> v{conversion(ch, ctx, {b, k2M * ch.one_of<uint64_t>({1, 2})}, Attr::Shared)};
  if (ch.one_of({true, false})) v.push_back(conversion(ch, ctx, {b + k, 1}, Attr::Private));
  v.push_back(Access{b + (k ^ 1), true, token(ch)});
  v.push_back(DiscardShared{ch.one_of({GfnRange{b + k, 1}, GfnRange{b, k2M}, sub_range(ch, b)})});
  v.push_back(Access{b + (k ^ 1), false, 0});
  v.push_back(Access{b + (k ^ 256), true, token(ch)});
  v.push_back(Access{b + k, false, 0});
  return v;
}

// The per-VM split cache race (MUT-CACHE-RACE, L12482-12512): vCPU 1's accept at 4K needs a
// split of its own PENDING 2M leaf (the exit splits before its fault, so even a fault that
// then waits for the host op has split at the drop point); it runs while the host's
// boundary split has dropped mmu_lock.
std::vector<Op> race(Choices& ch, const OpContext& ctx) {
  const Gfn b = pick_block(ch, ctx);
  const Gfn other = b ^ k2M;
  const uint64_t k = ch.one_of<uint64_t>({1, 256, 511});
  const int variant = ch.in_range(0, 3);
  // The conversion race of shared/findings (MUT-UNLOCKED-CONVERT): vCPU 1 faults at b while a
  // conversion from inside b's block splits the 2M leaf past its end edge.
  if (variant == 0)
    return {Prefault{{b + k2M, 1}}, Access{b, false, 0, true}, conversion(ch, ctx, {b + k, k2M - k + 1}, Attr::Shared),
            Access{b, false, 0}};
  // Both split the same PENDING 2M leaf: vCPU 1's 4K accept at the host's top-up drop, so the
  // host must look at the entry afresh (tdp_iter_restart; MUT-STALE-SPLIT).
  if (variant == 1)
    return {Prefault{{b, k2M}}, Accept{b + (k ^ 1), Level::L4K, true}, conversion(ch, ctx, {b + k, 1}, Attr::Shared),
            Access{b + (k ^ 1), false, 0}};
  std::vector<Op> v{Accept{b, Level::L2M}, ch.one_of<Op>({Prefault{{other, k2M}}, Access{other, false, 0}})};
  if (ch.one_of({true, false}))
    v.push_back(Accept{other + k, Level::L4K, true});
  else
    v.push_back(Access{other + k, true, token(ch), true});
  v.push_back(conversion(ch, ctx, {b + k, ch.one_of<uint64_t>({1, 2})}, Attr::Shared));
  v.push_back(Access{other + k, false, 0});
  return v;
}

// A conversion across two slots (and the hole between, if any): slot A's last 2M block is
// accepted with data, slot B's first block mapped; an armed -ENOMEM may hit B's split. Per VM
// one conversion covers both; in place one gmem ioctl per slot (MUT-SLOT-PARTIAL-ZAP).
std::vector<Op> cross_slot(Choices& ch, const OpContext& ctx) {
  const auto& slots = ctx.config.slots;
  if (slots.size() < 2) return {};
  const size_t i = ch.in_range<size_t>(0, slots.size() - 1);
  const Memslot &a = slots[i], &b = slots[i + 1];
  const Gfn a_last = align_down(a.range().end() - 1, Level::L2M), b_first = align_down(b.base_gfn + k2M - 1, Level::L2M);
  std::vector<Op> v{Access{a_last, false, 0}, Accept{a_last, Level::L2M}, Access{a_last + 3, true, token(ch)},
                    Prefault{{b_first, k2M}}};
  // Mostly with the -ENOMEM: the failing split is what tells a per-slot zap from all-splits-first.
  if (ch.weighted<int>({{3, 1}, {1, 0}})) v.push_back(Inject{FaultSite::SplitCacheTopup, 0, 1});
  const Gfn end = b_first + ch.one_of<uint64_t>({1, k2M, 256});
  v.push_back(conversion(ch, ctx, {a_last, end - a_last}, Attr::Shared));
  v.push_back(Access{a_last + 3, false, 0});
  return v;
}

// A memslot deleted and added back (SEMANTICS.md "Memslots"): its leaves go, its page tables
// stay (a 2M accept over one is still a size mismatch), its GUEST_INHIBIT goes.
std::vector<Op> slot_cycle(Choices& ch, const OpContext& ctx) {
  const Gfn b = pick_block(ch, ctx);
  const Memslot& m = slot_for(ctx.config, b);
  const uint64_t k = offset_in_block(ch);
  std::vector<Op> v{Access{b, false, 0}, ch.one_of<Op>({Accept{b + k, Level::L4K}, Accept{b, Level::L2M}}),
                    Access{b + k, true, token(ch)}, DeleteSlot{m.id}};
  if (ch.one_of({true, false})) v.push_back(Access{b + k, false, 0});  // no slot: -EFAULT
  if (ch.one_of({true, false})) v.push_back(conversion(ch, ctx, {b, k2M}, Attr::Shared));
  if (ch.one_of({true, false})) v.push_back(conversion(ch, ctx, {b, k2M}, Attr::Private));
  v.insert(v.end(), {AddSlot{m.id}, Access{b + k, false, 0}, Accept{b, Level::L2M}, Accept{b + k, Level::L4K},
                     Access{b + k, false, 0}});
  return v;
}

// The motif table (DOMAIN.md section 5), like syzkaller's call priorities: each motif by name,
// its weight in GenProfile, and what the target must have for it. A context's pool is drawn
// from this one table; the order is the draw order, so keep it (same seed, same cases), and
// shrinking lowers a motif choice towards the first, the one-op motif.
struct MotifEntry {
  const char* name;
  int GenProfile::*weight;
  bool (*fits)(const OpContext&);
  std::vector<Op> (*make)(Choices&, const OpContext&);
};

bool has(const OpContext& c, Cap a) { return c.profile.caps(a); }
const MotifEntry kMotifs[] = {
    {"single", &GenProfile::w_single, [](const OpContext&) { return true; }, single},
    {"touch-accept", &GenProfile::w_touch_accept, [](const OpContext& c) { return has(c, Cap::Accept); }, touch_accept},
    {"partial-convert", &GenProfile::w_partial_convert, [](const OpContext& c) { return has(c, Cap::Attributes); },
     partial_convert},
    {"round-trip", &GenProfile::w_round_trip, [](const OpContext& c) { return has(c, Cap::Attributes); }, round_trip},
    {"prefault", &GenProfile::w_prefault, [](const OpContext& c) { return has(c, Cap::Prefault); }, prefault},
    {"punch", &GenProfile::w_punch, [](const OpContext& c) { return has(c, Cap::PunchHole); }, punch},
    {"fault", &GenProfile::w_fault, [](const OpContext& c) { return has(c, Cap::FaultInjection); }, fault},
    {"pin", &GenProfile::w_pin, [](const OpContext& c) { return has(c, Cap::Pin) && has(c, Cap::Attributes); }, pin},
    {"shared-huge", &GenProfile::w_shared_huge, [](const OpContext& c) { return has(c, Cap::Attributes); },
     shared_huge},
    {"race", &GenProfile::w_race, [](const OpContext& c) { return has(c, Cap::Interleaving) && has(c, Cap::Attributes); },
     race},
    {"cross-slot", &GenProfile::w_cross_slot,
     [](const OpContext& c) { return has(c, Cap::Attributes) && c.config.slots.size() > 1; }, cross_slot},
    {"slot-cycle", &GenProfile::w_slot_cycle, [](const OpContext& c) { return has(c, Cap::SlotLifecycle); },
     slot_cycle},
};
}  // namespace

std::vector<Op> motif(Choices& ch, const OpContext& ctx) {
  std::array<const MotifEntry*, std::size(kMotifs)> pool;
  size_t n = 0;
  for (const MotifEntry& m : kMotifs)
    if (ctx.profile.*m.weight > 0 && m.fits(ctx)) pool[n++] = &m;
  if (n == 0) pool[n++] = &kMotifs[0];
  const MotifEntry& m = *pool[ch.weighted_index(n, [&](size_t i) { return std::max(1, ctx.profile.*pool[i]->weight); })];
  std::vector<Op> v = m.make(ch, ctx);
  keep_runnable(ctx.profile.caps, v);
  return v;
}

std::vector<Op> draw_ops(Choices& ch, const OpContext& ctx, int size) {
  if (ctx.profile.ops_generator) return ctx.profile.ops_generator(ch, ctx);
  const int swarm = std::clamp(ctx.profile.swarm_percent, 0, 100);
  std::vector<Op> v;
  // No draw at 0 or 100 percent: shrinking must not lower a swarm-only profile into motifs.
  const bool by_swarm =
      swarm == 100 || (swarm > 0 && ch.weighted<int>({{static_cast<uint32_t>(100 - swarm), 0}, {static_cast<uint32_t>(swarm), 1}}));
  if (by_swarm) {
    v = swarm_ops(ch, ctx);
    keep_runnable(ctx.profile.caps, v);
    return v;
  }
  // A handful of motifs per case: long enough to chain shapes, short enough to shrink fast.
  // Motifs pick from their full ranges whatever the case size.
  ch.repeat(static_cast<size_t>(std::max(size, 0)) * 12 / 100, [&](size_t) {
    const std::vector<Op> m = motif(ch, ctx);
    v.insert(v.end(), m.begin(), m.end());
  });
  return v;
}

}  // namespace tdxhp::gen
