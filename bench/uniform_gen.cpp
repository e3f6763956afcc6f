#include "bench/uniform_gen.h"

#include "domain/case_file.h"

namespace tdxhp::bench {

namespace {

enum class Kind : uint8_t { Convert, Punch, Prefault, Access, Accept, MapGpa, Pin, Unpin, Discard, Inject, DelSlot, AddSlot };
constexpr int kKinds = 12;

bool can_run(const Caps& c, Kind k) {
  switch (k) {
    case Kind::Convert: return c(Cap::Attributes);
    case Kind::Punch: return c(Cap::PunchHole);
    case Kind::Prefault: return c(Cap::Prefault);
    case Kind::Access: return true;
    case Kind::Accept: return c(Cap::Accept);
    case Kind::MapGpa: return c(Cap::MapGpa);
    case Kind::Pin:
    case Kind::Unpin: return c(Cap::Pin);
    case Kind::Discard: return c(Cap::SharedDiscard);
    case Kind::Inject: return c(Cap::FaultInjection);
    case Kind::DelSlot:
    case Kind::AddSlot: return c(Cap::SlotLifecycle);
  }
  return false;
}

const Memslot& any_slot(gen::Choices& ch, const gen::OpContext& ctx) { return ch.element_of(ctx.config.slots); }

// A gfn uniform over one slot.
Gfn any_gfn(gen::Choices& ch, const Memslot& s) { return s.base_gfn + ch.in_range<uint64_t>(0, s.npages); }

// [a, b): a uniform in the slot, b uniform in (a, slot end].
GfnRange any_range(gen::Choices& ch, const gen::OpContext& ctx) {
  const Memslot& s = any_slot(ch, ctx);
  const Gfn a = any_gfn(ch, s);
  const Gfn b = ch.in_range<uint64_t>(a + 1, s.range().end() + 1);
  return {a, b - a};
}

Inject any_fault(gen::Choices& ch) {
  const auto site = static_cast<FaultSite>(ch.in_range(0, kFaultSites));
  uint64_t status = 0;
  if (is_seamcall_site(site))
    status = ch.one_of<uint64_t>({uint64_t{tdx::kOperandBusy}, uint64_t{tdx::kSwError},
                                         tdx::kOperandInvalid | tdx::kOperandIdRcx,
                                         uint64_t{tdx::kInterruptedRestartable}, uint64_t{tdx::kEptEntryStateIncorrect}});
  return Inject{site, status, ch.in_range<uint32_t>(1, 33)};
}

Op any_op(gen::Choices& ch, const gen::OpContext& ctx, Kind k) {
  const bool interleave = ctx.profile.caps(Cap::Interleaving);
  auto queued = [&] { return interleave && ch.coin(); };
  auto to = [&] { return ch.one_of({Attr::Shared, Attr::Private}); };
  switch (k) {
    case Kind::Convert: return Convert{any_range(ch, ctx), to()};
    case Kind::Punch: return PunchHole{any_range(ch, ctx)};
    case Kind::Prefault: return Prefault{any_range(ch, ctx)};
    case Kind::Access: {
      const Gfn g = any_gfn(ch, any_slot(ch, ctx));
      const bool write = ch.coin();
      return Access{g, write, write ? ch.in_range<uint64_t>(1, 1000) : 0, queued()};
    }
    case Kind::Accept: {
      const Gfn g = any_gfn(ch, any_slot(ch, ctx));
      return Accept{g, ch.one_of({Level::L4K, Level::L2M, Level::L1G}), queued()};
    }
    case Kind::MapGpa: return MapGpa{any_range(ch, ctx), to()};
    case Kind::Pin: return Pin{any_range(ch, ctx)};
    case Kind::Unpin: return Unpin{any_range(ch, ctx)};
    case Kind::Discard: return DiscardShared{any_range(ch, ctx)};
    case Kind::Inject: return any_fault(ch);
    case Kind::DelSlot: return DeleteSlot{any_slot(ch, ctx).id};
    case Kind::AddSlot: return AddSlot{any_slot(ch, ctx).id};
  }
  return Access{any_gfn(ch, any_slot(ch, ctx))};
}

}  // namespace

std::vector<Op> uniform_ops(gen::Choices& ch, const gen::OpContext& ctx) {
  std::vector<Kind> kinds;
  for (int i = 0; i < kKinds; ++i)
    if (can_run(ctx.profile.caps, Kind(i))) kinds.push_back(Kind(i));
  // About as many steps per case as the default generator makes (~15).
  const int n = ch.in_range(1, 30);
  std::vector<Op> v;
  for (int i = 0; i < n; ++i) {
    Op op = any_op(ch, ctx, ch.element_of(kinds));
    if (validate_op(op).empty()) v.push_back(std::move(op));  // e.g. a range past the gfn limit
  }
  return v;
}

}  // namespace tdxhp::bench
