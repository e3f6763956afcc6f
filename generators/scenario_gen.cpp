#include "generators/scenario_gen.h"

#include <algorithm>
#include <memory>

#include "domain/case_file.h"
#include "domain/describe.h"
#include "generators/choices.h"
#include "generators/config_gen.h"
#include "generators/op_gen.h"

namespace tdxhp {

void showValue(const Op& op, std::ostream& os) { os << describe(op); }

void showValue(const Scenario& s, std::ostream& os) {
  os << describe(s.config) << "\n";
  for (size_t i = 0; i < s.ops.size(); ++i) os << "  " << i << ": " << describe(s.ops[i]) << "\n";
}

}  // namespace tdxhp

namespace tdxhp::gen {

namespace {

// One case and the record it was drawn from. The config is drawn first, so a shrink that
// changes it draws the ops again for the new config: shrunk cases stay aimed at real regions.
struct Drawn {
  std::shared_ptr<const GenProfile> profile;
  int size = 0;
  Scenario scenario;
  std::vector<uint64_t> record;
  std::vector<ChoiceSpan> spans;
};

std::shared_ptr<const Drawn> draw(Choices ch, std::shared_ptr<const GenProfile> profile, int size) {
  auto d = std::make_shared<Drawn>();
  d->scenario = draw_scenario(ch, *profile, size);
  d->record = ch.take_record();
  d->spans = ch.take_spans();
  d->profile = std::move(profile);
  d->size = size;
  return d;
}

// Hypothesis' order on records: shorter first, then lexicographic. Every accepted shrink is
// smaller in it, so shrinking ends.
bool shortlex_less(const std::vector<uint64_t>& a, const std::vector<uint64_t>& b) {
  return a.size() != b.size() ? a.size() < b.size() : a < b;
}

// Whether op names memslot m or reaches into its gfns.
bool touches(const Op& op, const Memslot& m) {
  return std::visit(
      [&](const auto& o) {
        using T = std::decay_t<decltype(o)>;
        if constexpr (std::is_same_v<T, DeleteSlot> || std::is_same_v<T, AddSlot>) return o.slot == m.id;
        else if constexpr (std::is_same_v<T, Access>) return m.range().contains(o.gfn);
        else if constexpr (std::is_same_v<T, Accept>)
          return m.range().overlaps({align_down(o.gfn, o.level), pages_in(o.level)});
        else if constexpr (std::is_same_v<T, Inject>) return false;
        else return m.range().overlaps(o.range);
      },
      op);
}

// Last, what the ops no longer need goes: a memslot no op touches (the config was drawn before
// the ops, so lowering the slot count draws other ops), then single ops (what is left of a
// motif), down to the few steps a person reads.
rc::Seq<Scenario> simpler_by_hand(const Scenario& s) {
  std::vector<Scenario> fewer_slots;
  for (size_t i = s.config.slots.size(); i-- > 0 && s.config.slots.size() > 1;) {
    const Memslot& m = s.config.slots[i];
    if (std::any_of(s.ops.begin(), s.ops.end(), [&](const Op& op) { return touches(op, m); })) continue;
    Scenario t = s;
    t.config.slots.erase(t.config.slots.begin() + static_cast<std::ptrdiff_t>(i));
    if (validate_config(t.config).empty()) fewer_slots.push_back(std::move(t));  // e.g. build pages in it
  }
  return rc::seq::concat(rc::seq::fromContainer(std::move(fewer_slots)),
                         rc::seq::map(rc::shrink::removeChunks(s.ops), [config = s.config](std::vector<Op> ops) {
                           return Scenario{config, std::move(ops)};
                         }));
}

rc::Shrinkable<Scenario> by_hand(Scenario s) { return rc::shrinkable::shrinkRecur(std::move(s), simpler_by_hand); }

rc::Seq<rc::Shrinkable<Scenario>> shrinks_of(const std::shared_ptr<const Drawn>& d);

class DrawnCase {
 public:
  explicit DrawnCase(std::shared_ptr<const Drawn> d) : d_(std::move(d)) {}
  Scenario value() const { return d_->scenario; }
  rc::Seq<rc::Shrinkable<Scenario>> shrinks() const { return shrinks_of(d_); }

 private:
  std::shared_ptr<const Drawn> d_;
};

// The record edits, tried in order: delete each element span (a whole motif or swarm op: the
// biggest cuts), then lower each outcome to 0, then to v/2, 3v/4, ... v-1 (a binary search, as
// RapidCheck shrinks integers). An edit is kept when it draws a different case from a smaller
// record.
class RecordEdits {
 public:
  explicit RecordEdits(std::shared_ptr<const Drawn> d) : d_(std::move(d)) {}

  rc::Maybe<rc::Shrinkable<Scenario>> operator()() {
    std::vector<uint64_t> edit;
    while (next_edit(edit)) {
      auto shrunk = draw(Choices::replay(edit), d_->profile, d_->size);
      if (shortlex_less(shrunk->record, d_->record) && !(shrunk->scenario == d_->scenario))
        return rc::makeShrinkable<DrawnCase>(std::move(shrunk));
    }
    return rc::Nothing;
  }

 private:
  bool next_edit(std::vector<uint64_t>& edit) {
    const auto& rec = d_->record;
    if (span_ < d_->spans.size()) {
      const ChoiceSpan s = d_->spans[span_++];
      edit.assign(rec.begin(), rec.begin() + s.begin);
      edit.insert(edit.end(), rec.begin() + s.end, rec.end());
      return true;
    }
    for (; at_ < rec.size(); ++at_, step_ = 0) {
      const uint64_t v = rec[at_];
      if (v == 0 || (step_ > 0 && (step_ >= 64 || (v >> step_) == 0))) continue;
      const uint64_t lower = step_ == 0 ? 0 : v - (v >> step_);
      ++step_;
      edit = rec;
      edit[at_] = lower;
      return true;
    }
    return false;
  }

  std::shared_ptr<const Drawn> d_;
  size_t span_ = 0, at_ = 0;
  unsigned step_ = 0;
};

rc::Seq<rc::Shrinkable<Scenario>> shrinks_of(const std::shared_ptr<const Drawn>& d) {
  return rc::seq::concat(rc::makeSeq<RecordEdits>(d), rc::seq::map(simpler_by_hand(d->scenario), by_hand));
}

}  // namespace

Scenario draw_scenario(Choices& ch, const GenProfile& profile, int size) {
  Scenario s;
  s.config = draw_config(ch, profile);
  const OpContext ctx = draw_context(ch, s.config, profile);
  s.ops = draw_ops(ch, ctx, size);
  return s;
}

rc::Gen<Scenario> scenario(const GenProfile& profile) {
  auto shared = std::make_shared<const GenProfile>(profile);
  return rc::Gen<Scenario>([shared](const rc::Random& random, int size) {
    rc::Random r = random;
    return rc::makeShrinkable<DrawnCase>(draw(Choices::fresh(r.next()), shared, size));
  });
}

}  // namespace tdxhp::gen
