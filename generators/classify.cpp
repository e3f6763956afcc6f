#include "generators/classify.h"

#include <algorithm>
#include <optional>

namespace tdxhp::gen {

namespace {
constexpr uint64_t k2M = pages_in(Level::L2M);

std::optional<std::pair<GfnRange, Attr>> conversion_of(const Op& op) {
  if (auto* c = std::get_if<Convert>(&op)) return std::pair{c->range, c->to};
  if (auto* m = std::get_if<MapGpa>(&op)) return std::pair{m->range, m->to};
  return std::nullopt;
}
bool inside_one_2m(const GfnRange& r) {
  return !r.empty() && r.npages < k2M && align_down(r.start, Level::L2M) == align_down(r.end() - 1, Level::L2M);
}
bool in_block(Gfn g, Gfn block) { return align_down(g, Level::L2M) == block; }
}  // namespace

std::vector<std::string_view> scenario_shapes(const Scenario& s) {
  const Config& c = s.config;
  const auto& ops = s.ops;
  std::vector<std::string_view> tags;
  auto tag = [&](const char* t) {
    if (std::find(tags.begin(), tags.end(), t) == tags.end()) tags.push_back(t);
  };
  for (size_t i = 0; i < ops.size(); ++i) {
    const Op& op = ops[i];
    auto later = [&](auto pred) {
      for (size_t j = i + 1; j < ops.size(); ++j)
        if (pred(ops[j])) return true;
      return false;
    };
    auto earlier = [&](auto pred) {
      for (size_t j = 0; j < i; ++j)
        if (pred(ops[j])) return true;
      return false;
    };
    if (auto* a = std::get_if<Accept>(&op)) {
      const Gfn b = align_down(a->gfn, Level::L2M);
      auto touched = [&](const Op& o) {
        if (auto* x = std::get_if<Access>(&o)) return in_block(x->gfn, b);
        if (auto* p = std::get_if<Prefault>(&o)) return p->range.covers({b, k2M});
        return false;
      };
      auto prefaulted = [&](const Op& o) {
        auto* p = std::get_if<Prefault>(&o);
        return p && p->range.covers({b, k2M});
      };
      if (a->level == Level::L4K && earlier(touched)) tag("SC-ACCEPT4K-AFTER");
      if (a->level == Level::L4K && earlier(prefaulted)) tag("SC-PREFAULT");
      if (a->level == Level::L4K && !earlier(touched)) tag("SC-ACCEPT4K-BEFORE");
      if (a->level == Level::L2M && !c.features.enhanced_demote_interruptibility) tag("SC-OLD-MODULE");
      if (a->level == Level::L2M) {
        // SC-PROMOTE: 4K build page in the block, round trip through shared, then a 2M accept.
        bool built = std::any_of(c.build_pages.begin(), c.build_pages.end(),
                                 [&](const GfnRange& r) { return GfnRange{b, k2M}.overlaps(r); });
        bool round_trip = earlier([&](const Op& o) {
          auto cv = conversion_of(o);
          return cv && cv->second == Attr::Private && cv->first.overlaps({b, k2M});
        });
        if (built && round_trip) tag("SC-PROMOTE");
      }
    }
    if (auto cv = conversion_of(op)) {
      const GfnRange& r = cv->first;
      if (cv->second == Attr::Shared && inside_one_2m(r) && earlier([&](const Op& o) {
            auto* a = std::get_if<Accept>(&o);
            return a && a->level != Level::L4K && GfnRange{a->gfn, pages_in(a->level)}.covers(r);
          }))
        tag("SC-PARTIAL-CONVERT");
      if (cv->second == Attr::Shared && c.backing == BackingKind::Hugetlb1G && r.npages < pages_in(Level::L1G))
        tag("SC-1G-FOLIO");
      if (!is_aligned(r.start, Level::L2M) || !is_aligned(r.end(), Level::L2M) || r.npages >= pages_in(Level::L1G))
        tag("SC-BOUNDARY");
      if (c.attr_mode == AttrMode::InPlace && earlier([&](const Op& o) {
            auto* p = std::get_if<Pin>(&o);
            return p && p->range.overlaps(r);
          }))
        tag("SC-PIN");
    }
    if (auto* p = std::get_if<PunchHole>(&op)) {
      const Level folio = page_level(c.backing);
      if (!is_aligned(p->range.start, folio) || !is_aligned(p->range.end(), folio)) tag("SC-PUNCH-ALIGN");
      if (!is_aligned(p->range.start, Level::L2M) || !is_aligned(p->range.end(), Level::L2M)) tag("SC-BOUNDARY");
    }
    if (auto* in = std::get_if<Inject>(&op)) {
      auto splitting = [](const Op& o) {
        return std::holds_alternative<Accept>(o) || std::holds_alternative<Convert>(o) ||
               std::holds_alternative<MapGpa>(o) || std::holds_alternative<PunchHole>(o);
      };
      if (!is_seamcall_site(in->site) && later(splitting)) tag("SC-FAIL-MIDWAY");
      if (is_seamcall_site(in->site) && tdx::status_class(in->status) == tdx::kOperandBusy && later(splitting))
        tag("SC-BUSY");
    }
  }
  std::sort(tags.begin(), tags.end());
  return tags;
}

}  // namespace tdxhp::gen
