#include "generators/swarm_gen.h"

#include <algorithm>

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
Gfn any_gfn(const OpContext& ctx) {
  const Memslot& s = *rc::gen::elementOf(ctx.config.slots);
  // Constant generators are built once (static): building a Gen allocates; drawing is unchanged.
  static const auto where = rc::gen::weightedElement<int>({{6, 0}, {3, 1}, {1, 2}});
  static const auto delta = rc::gen::element<int64_t>(-1, 0, 1, 2, 255, 256, 511, 512, 513);
  switch (*where) {
    case 0: return s.base_gfn + *rc::gen::inRange<uint64_t>(0, s.npages);
    case 1: {
      const Gfn b = *rc::gen::elementOf(ctx.hot);
      const int64_t d = *delta;
      return static_cast<Gfn>(static_cast<int64_t>(b) + d);
    }
    default: return *rc::gen::element<Gfn>(s.base_gfn - 1, s.range().end(), s.range().end() - 1);
  }
}

// A range: uniform start and length, or lengths of the alignment classes, or a whole slot.
GfnRange any_range(const OpContext& ctx) {
  const Gfn g = any_gfn(ctx);
  // All three lengths are drawn, then one is picked by weight (a weighted pick depends only on
  // the weights, so the picker is built once).
  static const auto small = rc::gen::inRange<uint64_t>(1, 2 * k2M + 2);
  static const auto aligned = rc::gen::element<uint64_t>(1, 2, k2M, 2 * k2M, k1G);
  static const auto large = rc::gen::inRange<uint64_t>(1, 64 * k2M);
  static const auto pick = rc::gen::weightedElement<int>({{5, 0}, {2, 1}, {1, 2}, {1, 3}});
  const uint64_t lengths[] = {*small, *aligned, *large, 0};
  const uint64_t n = lengths[*pick];
  static const auto whole_slot = rc::gen::weightedElement<int>({{9, 0}, {1, 1}});
  if (*whole_slot) return (*rc::gen::elementOf(ctx.config.slots)).range();
  return {g, std::min<uint64_t>(n, kGfnLimit - g)};
}

Inject any_fault() {
  const FaultSite site = *rc::gen::element(FaultSite::Block, FaultSite::Track, FaultSite::Demote, FaultSite::Remove,
                                           FaultSite::Wbinvd, FaultSite::Aug, FaultSite::SeptAdd,
                                           FaultSite::SplitCacheTopup, FaultSite::FolioSplit);
  Inject in{site, 0, *rc::gen::inRange<uint32_t>(1, 4)};
  if (is_seamcall_site(site))
    in.status = *rc::gen::element<uint64_t>(uint64_t{tdx::kOperandBusy}, uint64_t{tdx::kOperandBusy},
                                            uint64_t{tdx::kSwError}, tdx::kOperandInvalid | tdx::kOperandIdRcx,
                                            uint64_t{tdx::kInterruptedRestartable}, uint64_t{tdx::kEptEntryStateIncorrect});
  return in;
}

Op swarm_op(const OpContext& ctx, Kind k) {
  static const auto to_gen = rc::gen::element(Attr::Shared, Attr::Private);
  static const auto level_gen = rc::gen::element(Level::L4K, Level::L2M, Level::L1G);
  auto to = [] { return *to_gen; };
  auto level = [] { return *level_gen; };
  switch (k) {
    case Kind::Convert: return Convert{any_range(ctx), to()};
    case Kind::MapGpa: return MapGpa{any_range(ctx), to()};
    case Kind::Punch: return PunchHole{any_range(ctx)};
    case Kind::Prefault: return Prefault{any_range(ctx)};
    case Kind::Read: return Access{any_gfn(ctx), false, 0};
    case Kind::Write: return Access{any_gfn(ctx), true, *rc::gen::inRange<uint64_t>(1, 1000)};
    case Kind::Accept: {
      const Level l = level();
      const Gfn g = any_gfn(ctx);
      return Accept{*rc::gen::weightedElement<int>({{4, 0}, {1, 1}}) ? g : align_down(g, l), l};
    }
    case Kind::Pin: return Pin{any_range(ctx)};
    case Kind::Unpin: return Unpin{any_range(ctx)};
    case Kind::Inject: return any_fault();
    case Kind::Discard: return DiscardShared{any_range(ctx)};
    case Kind::QueuedAccess: return Access{any_gfn(ctx), *rc::gen::arbitrary<bool>(), 7, true};
    case Kind::QueuedAccept: return Accept{align_down(any_gfn(ctx), Level::L4K), level(), true};
    case Kind::DeleteSlot: return DeleteSlot{(*rc::gen::elementOf(ctx.config.slots)).id};
    case Kind::AddSlot: return AddSlot{(*rc::gen::elementOf(ctx.config.slots)).id};
  }
  return Access{any_gfn(ctx)};
}
}  // namespace

rc::Gen<std::vector<Op>> swarm_ops(const OpContext& ctx) {
  return rc::gen::exec([ctx] {
    std::vector<Kind> kinds;  // this case's swarm: each possible kind in with probability 1/2
    for (int i = 0; i < kKinds; ++i)
      if (possible(ctx.profile.caps, Kind(i)) && *rc::gen::arbitrary<bool>()) kinds.push_back(Kind(i));
    if (kinds.empty()) kinds.push_back(*rc::gen::element(Kind::Read, Kind::Write));
    const int n = *rc::gen::inRange(1, 25);
    std::vector<Op> v;
    for (int i = 0; i < n; ++i) {
      const Op op = swarm_op(ctx, *rc::gen::elementOf(kinds));
      if (validate_op(op).empty()) v.push_back(op);
    }
    return v;
  });
}

}  // namespace tdxhp::gen
