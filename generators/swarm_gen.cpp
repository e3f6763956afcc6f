#include "generators/swarm_gen.h"

#include <algorithm>
#include <array>

#include "domain/case_file.h"

namespace tdxhp::gen {

namespace {
constexpr uint64_t k2M = pages_in(Level::L2M);
constexpr uint64_t k1G = pages_in(Level::L1G);

enum class Kind : uint8_t {
  Convert, MapGpa, Punch, Prefault, Read, Write, Accept, Pin, Unpin, Inject, Discard, QueuedAccess, QueuedAccept,
  DeleteSlot, AddSlot
};
constexpr int kKinds = 15;

bool possible(const Caps& c, Kind k) {
  switch (k) {
    case Kind::Convert: return c(Cap::Attributes);
    case Kind::MapGpa: return c(Cap::MapGpa);
    case Kind::Punch: return c(Cap::PunchHole);
    case Kind::Prefault: return c(Cap::Prefault);
    case Kind::Read:
    case Kind::Write: return true;
    case Kind::Accept: return c(Cap::Accept);
    case Kind::Pin:
    case Kind::Unpin: return c(Cap::Pin);
    case Kind::Inject: return c(Cap::FaultInjection);
    case Kind::Discard: return c(Cap::SharedDiscard);
    case Kind::QueuedAccess: return c(Cap::Interleaving);
    case Kind::QueuedAccept: return c(Cap::Interleaving) && c(Cap::Accept);
    case Kind::DeleteSlot:
    case Kind::AddSlot: return c(Cap::SlotLifecycle);
  }
  return false;
}

// A gfn anywhere: uniform in a slot, on an alignment class of a hot block, or just outside.
Gfn any_gfn(Choices& ch, const OpContext& ctx) {
  const Memslot& s = ch.element_of(ctx.config.slots);
  switch (ch.weighted<int>({{6, 0}, {3, 1}, {1, 2}})) {
    case 0: return s.base_gfn + ch.below(s.npages);
    case 1: {
      const Gfn b = ch.element_of(ctx.hot);
      const int64_t d = ch.one_of<int64_t>({0, -1, 1, 2, 255, 256, 511, 512, 513});
      return static_cast<Gfn>(static_cast<int64_t>(b) + d);
    }
    default: return ch.one_of<Gfn>({s.range().end(), s.base_gfn - 1, s.range().end() - 1});
  }
}

// A range: uniform start and length, or lengths of the alignment classes, or a whole slot.
GfnRange any_range(Choices& ch, const OpContext& ctx) {
  if (ch.weighted<int>({{9, 0}, {1, 1}})) return ch.element_of(ctx.config.slots).range();
  const Gfn g = any_gfn(ch, ctx);
  uint64_t n = 0;  // empty: -EINVAL
  switch (ch.weighted<int>({{5, 0}, {2, 1}, {1, 2}, {1, 3}})) {
    case 0: n = ch.in_range<uint64_t>(1, 2 * k2M + 2); break;
    case 1: n = ch.one_of<uint64_t>({1, 2, k2M, 2 * k2M, k1G}); break;
    case 2: n = ch.in_range<uint64_t>(1, 64 * k2M); break;
    default: break;
  }
  return {g, std::min<uint64_t>(n, kGfnLimit - g)};
}

Inject any_fault(Choices& ch) {
  const FaultSite site = ch.one_of({FaultSite::Block, FaultSite::Track, FaultSite::Demote, FaultSite::Remove,
                                           FaultSite::Wbinvd, FaultSite::Aug, FaultSite::SeptAdd,
                                           FaultSite::SplitCacheTopup, FaultSite::FolioSplit});
  Inject in{site, 0, ch.in_range<uint32_t>(1, 4)};
  if (is_seamcall_site(site))
    in.status = ch.one_of<uint64_t>({uint64_t{tdx::kOperandBusy}, uint64_t{tdx::kOperandBusy},
                                            uint64_t{tdx::kSwError}, tdx::kOperandInvalid | tdx::kOperandIdRcx,
                                            uint64_t{tdx::kInterruptedRestartable}, uint64_t{tdx::kEptEntryStateIncorrect}});
  return in;
}

Op swarm_op(Choices& ch, const OpContext& ctx, Kind k) {
  auto to = [&] { return ch.one_of({Attr::Shared, Attr::Private}); };
  auto level = [&] { return ch.one_of({Level::L4K, Level::L2M, Level::L1G}); };
  switch (k) {
    case Kind::Convert: return Convert{any_range(ch, ctx), to()};
    case Kind::MapGpa: return MapGpa{any_range(ch, ctx), to()};
    case Kind::Punch: return PunchHole{any_range(ch, ctx)};
    case Kind::Prefault: return Prefault{any_range(ch, ctx)};
    case Kind::Read: return Access{any_gfn(ch, ctx), false, 0};
    case Kind::Write: return Access{any_gfn(ch, ctx), true, ch.in_range<uint64_t>(1, 1000)};
    case Kind::Accept: {
      const Level l = level();
      const Gfn g = any_gfn(ch, ctx);
      return Accept{ch.weighted<int>({{4, 0}, {1, 1}}) ? g : align_down(g, l), l};
    }
    case Kind::Pin: return Pin{any_range(ch, ctx)};
    case Kind::Unpin: return Unpin{any_range(ch, ctx)};
    case Kind::Inject: return any_fault(ch);
    case Kind::Discard: return DiscardShared{any_range(ch, ctx)};
    case Kind::QueuedAccess: return Access{any_gfn(ch, ctx), ch.coin(), 7, true};
    case Kind::QueuedAccept: return Accept{align_down(any_gfn(ch, ctx), Level::L4K), level(), true};
    case Kind::DeleteSlot: return DeleteSlot{ch.element_of(ctx.config.slots).id};
    case Kind::AddSlot: return AddSlot{ch.element_of(ctx.config.slots).id};
  }
  return Access{any_gfn(ch, ctx)};
}
}  // namespace

std::vector<Op> swarm_ops(Choices& ch, const OpContext& ctx) {
  std::array<Kind, kKinds> kinds;  // this case's swarm: each possible kind in with probability 1/2
  size_t nkinds = 0;
  for (int i = 0; i < kKinds; ++i)
    if (possible(ctx.profile.caps, Kind(i)) && ch.coin()) kinds[nkinds++] = Kind(i);
  if (nkinds == 0) kinds[nkinds++] = ch.one_of({Kind::Read, Kind::Write});
  std::vector<Op> v;
  ch.repeat(24, [&](size_t) {
    const Op op = swarm_op(ch, ctx, kinds[ch.below(nkinds)]);
    if (validate_op(op).empty()) v.push_back(op);
  });
  return v;
}

}  // namespace tdxhp::gen
