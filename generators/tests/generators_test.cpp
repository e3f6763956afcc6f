#include <gtest/gtest.h>
#include <rapidcheck.h>

#include <map>
#include <set>

#include "domain/case_file.h"
#include "domain/catalog.h"
#include "domain/describe.h"
#include "generators/choices.h"
#include "generators/classify.h"
#include "generators/scenario_gen.h"

namespace tdxhp::gen {
namespace {

Caps all_caps() {
  Caps c;
  for (int i = 0; i < kCapCount; ++i) c.has.insert(static_cast<Cap>(i));
  return c;
}

std::vector<Scenario> sample(const GenProfile& p, int n, uint64_t seed = 1) {
  std::vector<Scenario> out;
  rc::Random r(seed);
  auto g = scenario(p);
  for (int i = 0; i < n; ++i) {
    out.push_back(g(r.split(), i % 100).value());
  }
  return out;
}

TEST(Generators, SameSeedSameCases) {
  const auto a = sample({all_caps()}, 200, 5), b = sample({all_caps()}, 200, 5), c = sample({all_caps()}, 200, 6);
  EXPECT_TRUE(a == b);
  EXPECT_FALSE(a == c);
}

TEST(Generators, ConfigsAndOpsAreValid) {
  for (auto& s : sample({all_caps()}, 300)) {
    EXPECT_EQ(validate_config(s.config), "");
    for (auto& op : s.ops) EXPECT_EQ(validate_op(op), "");
  }
}

TEST(Generators, OnlyOpsTheTargetCanRun) {
  Caps plain;  // like kvm/plain: punch and data only
  plain.has = {Cap::PrivateMemory, Cap::PunchHole, Cap::GuestData};
  int n = 0;
  for (auto& s : sample({plain}, 200))
    for (auto& op : s.ops) {
      ++n;
      EXPECT_TRUE(std::holds_alternative<Access>(op) || std::holds_alternative<PunchHole>(op)) << op_kind(op);
    }
  EXPECT_GT(n, 0) << "no op generated: the check above ran on nothing";
}

// The bias must reach every SC-* shape of DOMAIN.md section 5 in a modest sample.
TEST(Generators, ReachEveryScenarioShape) {
  std::map<std::string, int> seen;
  for (auto& s : sample({all_caps()}, 400))
    for (auto t : scenario_shapes(s)) ++seen[std::string(t)];
  for (auto& sc : scenarios()) EXPECT_GT(seen[std::string(sc.id)], 0) << sc.id;
}

// Range ends fall in every alignment class: 4K, 2M, 1G and slot edge.
TEST(Generators, RangeEndsCoverEveryAlignmentClass) {
  std::set<std::string> classes;
  for (auto& s : sample({all_caps()}, 300)) {
    for (auto& op : s.ops) {
      const GfnRange* r = nullptr;
      if (auto* c = std::get_if<Convert>(&op)) r = &c->range;
      if (auto* p = std::get_if<PunchHole>(&op)) r = &p->range;
      if (!r || r->empty()) continue;
      for (Gfn edge : {r->start, r->end()}) {
        if (is_aligned(edge, Level::L1G)) classes.insert("1G");
        else if (is_aligned(edge, Level::L2M)) classes.insert("2M");
        else classes.insert("4K");
        for (auto& m : s.config.slots)
          if (edge == m.base_gfn || edge == m.range().end()) classes.insert("slot-edge");
      }
    }
  }
  EXPECT_EQ(classes, (std::set<std::string>{"1G", "2M", "4K", "slot-edge"}));
}

// Shrinking reaches the short sequence a person reads: a fake bug "a 4K convert to shared
// after a 2M accept" shrinks to those two ops.
TEST(Generators, ShrinksToTheFewOpsThatMatter) {
  Scenario last;
  auto prop = [&](const Scenario& s) {
    bool accepted = false;
    for (auto& op : s.ops) {
      if (auto* a = std::get_if<Accept>(&op); a && a->level == Level::L2M) accepted = true;
      auto* c = std::get_if<Convert>(&op);
      if (accepted && c && c->to == Attr::Shared && c->range.npages == 1) {
        last = s;
        return false;
      }
    }
    return true;
  };
  GenProfile p{all_caps()};
  int from_more_slots = 0;
  for (uint64_t seed = 1; seed <= 12; ++seed) {
    rc::detail::TestParams params;
    params.seed = seed;
    params.maxSuccess = 500;
    size_t first_slots = 0;
    auto result = rc::detail::checkTestable(
        [&] {
          const Scenario s = *scenario(p);
          const bool ok = prop(s);
          if (!ok && first_slots == 0) first_slots = s.config.slots.size();
          RC_ASSERT(ok);
        },
        rc::detail::TestMetadata{}, params);
    ASSERT_TRUE(result.template is<rc::detail::FailureResult>()) << "seed " << seed;
    EXPECT_EQ(last.ops.size(), 2u) << "seed " << seed;
    EXPECT_EQ(last.config.slots.size(), 1u) << "seed " << seed << ": the config shrinks too";
    from_more_slots += first_slots > 1;
  }
  EXPECT_GT(from_more_slots, 0) << "no seed failed first with several slots: the config check above ran on nothing";
}

TEST(Choices, ReplayingTheRecordDrawsTheSameCase) {
  const GenProfile p{all_caps()};
  for (uint64_t seed = 1; seed <= 200; ++seed) {
    Choices fresh = Choices::fresh(seed);
    const Scenario a = draw_scenario(fresh, p, 100);
    Choices again = Choices::replay(fresh.record());
    EXPECT_TRUE(draw_scenario(again, p, 100) == a) << "seed " << seed;
    EXPECT_EQ(again.record(), fresh.record()) << "seed " << seed;
  }
}

// Shrinking edits records blindly; whatever it keeps must still be a case the targets can run.
TEST(Choices, EveryEditedRecordStillDrawsAValidRunnableCase) {
  Caps plain;
  plain.has = {Cap::PrivateMemory, Cap::PunchHole, Cap::GuestData};
  uint64_t x = 12345;
  auto rnd = [&] { return x = x * 6364136223846793005ULL + 1442695040888963407ULL, x >> 20; };
  int edited = 0;
  for (const Caps& caps : {all_caps(), plain}) {
    const GenProfile p{caps};
    for (uint64_t seed = 1; seed <= 300; ++seed) {
      Choices fresh = Choices::fresh(seed);
      draw_scenario(fresh, p, 100);
      std::vector<uint64_t> rec = fresh.record();
      if (!fresh.spans().empty() && rnd() % 2) {
        const ChoiceSpan sp = fresh.spans()[rnd() % fresh.spans().size()];
        rec.erase(rec.begin() + sp.begin, rec.begin() + sp.end);
      }
      for (int k = 0; k < 3 && !rec.empty(); ++k) rec[rnd() % rec.size()] = rnd();  // any value at all
      if (rnd() % 4 == 0) rec.resize(rnd() % (rec.size() + 1));                    // cut short: zeros after
      Choices replay = Choices::replay(rec);
      const Scenario s = draw_scenario(replay, p, 100);
      ++edited;
      EXPECT_EQ(validate_config(s.config), "") << "seed " << seed;
      for (auto& op : s.ops) {
        EXPECT_EQ(validate_op(op), "") << "seed " << seed;
        if (!caps(Cap::Attributes)) {
          EXPECT_TRUE(std::holds_alternative<Access>(op) || std::holds_alternative<PunchHole>(op)) << op_kind(op);
        }
      }
    }
  }
  EXPECT_EQ(edited, 600);
}

TEST(Choices, DeletingAnElementsSpanLeavesTheOthers) {
  Choices fresh = Choices::fresh(3);
  std::vector<uint64_t> drawn;
  fresh.repeat(50, [&](size_t) { drawn.push_back(fresh.below(1000)); });
  ASSERT_GE(drawn.size(), 3u) << "pick a seed whose list has three elements";
  const ChoiceSpan second = fresh.spans()[1];
  std::vector<uint64_t> rec = fresh.record();
  rec.erase(rec.begin() + second.begin, rec.begin() + second.end);
  Choices replay = Choices::replay(rec);
  std::vector<uint64_t> again;
  replay.repeat(50, [&](size_t) { again.push_back(replay.below(1000)); });
  drawn.erase(drawn.begin() + 1);
  EXPECT_EQ(again, drawn);
}

}  // namespace
}  // namespace tdxhp::gen
