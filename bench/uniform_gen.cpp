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

Memslot any_slot(const gen::OpContext& ctx) { return *rc::gen::elementOf(ctx.config.slots); }

// A gfn uniform over one slot.
Gfn any_gfn(const Memslot& s) { return s.base_gfn + *rc::gen::inRange<uint64_t>(0, s.npages); }

// [a, b): a uniform in the slot, b uniform in (a, slot end].
GfnRange any_range(const gen::OpContext& ctx) {
  const Memslot s = any_slot(ctx);
  const Gfn a = any_gfn(s);
  const Gfn b = *rc::gen::inRange<uint64_t>(a + 1, s.range().end() + 1);
  return {a, b - a};
}

Inject any_fault() {
  const auto site = static_cast<FaultSite>(*rc::gen::inRange(0, kFaultSites));
  uint64_t status = 0;
  if (is_seamcall_site(site))
    status = *rc::gen::element<uint64_t>(uint64_t{tdx::kOperandBusy}, uint64_t{tdx::kSwError},
                                         tdx::kOperandInvalid | tdx::kOperandIdRcx,
                                         uint64_t{tdx::kInterruptedRestartable}, uint64_t{tdx::kEptEntryStateIncorrect});
  return Inject{site, status, *rc::gen::inRange<uint32_t>(1, 33)};
}

Op any_op(const gen::OpContext& ctx, Kind k) {
  const bool interleave = ctx.profile.caps(Cap::Interleaving);
  auto queued = [&] { return interleave && *rc::gen::arbitrary<bool>(); };
  auto to = [] { return *rc::gen::element(Attr::Shared, Attr::Private); };
  switch (k) {
    case Kind::Convert: return Convert{any_range(ctx), to()};
    case Kind::Punch: return PunchHole{any_range(ctx)};
    case Kind::Prefault: return Prefault{any_range(ctx)};
    case Kind::Access: {
      const Gfn g = any_gfn(any_slot(ctx));
      const bool write = *rc::gen::arbitrary<bool>();
      return Access{g, write, write ? *rc::gen::inRange<uint64_t>(1, 1000) : 0, queued()};
    }
    case Kind::Accept: {
      const Gfn g = any_gfn(any_slot(ctx));
      return Accept{g, *rc::gen::element(Level::L4K, Level::L2M, Level::L1G), queued()};
    }
    case Kind::MapGpa: return MapGpa{any_range(ctx), to()};
    case Kind::Pin: return Pin{any_range(ctx)};
    case Kind::Unpin: return Unpin{any_range(ctx)};
    case Kind::Discard: return DiscardShared{any_range(ctx)};
    case Kind::Inject: return any_fault();
    case Kind::DelSlot: return DeleteSlot{any_slot(ctx).id};
    case Kind::AddSlot: return AddSlot{any_slot(ctx).id};
  }
  return Access{any_gfn(any_slot(ctx))};
}

}  // namespace

rc::Gen<std::vector<Op>> uniform_ops(const gen::OpContext& ctx) {
  std::vector<Kind> kinds;
  for (int i = 0; i < kKinds; ++i)
    if (can_run(ctx.profile.caps, Kind(i))) kinds.push_back(Kind(i));
  // About as many steps per case as the default generator makes (~15).
  return rc::gen::exec([ctx, kinds] {
    const int n = *rc::gen::inRange(1, 30);
    std::vector<Op> v;
    for (int i = 0; i < n; ++i) {
      Op op = any_op(ctx, *rc::gen::elementOf(kinds));
      if (validate_op(op).empty()) v.push_back(std::move(op));  // e.g. a range past the gfn limit
    }
    return v;
  });
}

}  // namespace tdxhp::bench
