#include "domain/interval_map.h"

#include <gtest/gtest.h>

#include <optional>
#include <random>
#include <vector>

namespace tdxhp {
namespace {

using Pieces = std::vector<std::tuple<uint64_t, uint64_t, int>>;
Pieces pieces(const IntervalMap<int>& m) {
  Pieces out;
  m.for_each([&](uint64_t s, uint64_t e, int v) { out.emplace_back(s, e, v); });
  return out;
}

TEST(IntervalMap, AssignSplitsAndCoalesces) {
  IntervalMap<int> m;
  m.assign(0, 100, 1);
  m.assign(10, 20, 2);
  EXPECT_EQ(pieces(m), (Pieces{{0, 10, 1}, {10, 20, 2}, {20, 100, 1}}));
  m.assign(10, 20, 1);
  EXPECT_EQ(pieces(m), (Pieces{{0, 100, 1}}));
}

TEST(IntervalMap, EraseLeavesGaps) {
  IntervalMap<int> m;
  m.assign(0, 100, 1);
  m.erase(40, 60);
  EXPECT_EQ(pieces(m), (Pieces{{0, 40, 1}, {60, 100, 1}}));
  EXPECT_EQ(m.at(50), nullptr);
  ASSERT_NE(m.at(39), nullptr);
  std::vector<std::pair<uint64_t, uint64_t>> gaps;
  m.for_each_gap(30, 110, [&](uint64_t s, uint64_t e) { gaps.emplace_back(s, e); });
  EXPECT_EQ(gaps, (std::vector<std::pair<uint64_t, uint64_t>>{{40, 60}, {100, 110}}));
}

TEST(IntervalMap, UpdateTouchesOnlyTheRange) {
  IntervalMap<int> m;
  m.assign(0, 100, 1);
  m.update(25, 75, [](uint64_t, uint64_t, int& v) { v = 5; });
  EXPECT_EQ(pieces(m), (Pieces{{0, 25, 1}, {25, 75, 5}, {75, 100, 1}}));
  EXPECT_FALSE(m.all_of(0, 100, [](int v) { return v == 1; }));
  EXPECT_TRUE(m.all_of(25, 75, [](int v) { return v == 5; }));
  EXPECT_TRUE(m.any_of(70, 80, [](int v) { return v == 1; }));
  EXPECT_FALSE(m.all_of(90, 120, [](int) { return true; }));  // 100..120 unset
}

TEST(IntervalMap, HugeRangesCostOnePiece) {
  IntervalMap<int> m;
  const uint64_t tib16 = (16ULL << 40) >> 12;
  m.assign(0, tib16, 1);
  m.erase(1, tib16 - 1);
  EXPECT_EQ(m.pieces(), 2u);
}

TEST(IntervalMap, PieceQueries) {
  IntervalMap<int> m;
  m.assign(10, 20, 1);
  m.assign(30, 40, 2);
  EXPECT_EQ(m.piece_end(15), 20u);
  EXPECT_EQ(m.piece_end(25), 25u);  // a gap: x itself
  EXPECT_EQ(m.next_start(11), 30u);
  EXPECT_EQ(m.next_start(30), 30u);
  EXPECT_EQ(m.next_start(31), UINT64_MAX);
  EXPECT_TRUE(m.any(19, 21));
  EXPECT_FALSE(m.any(20, 30));
}

// Against a plain array of keys: every random assign/erase/update leaves the same values, and
// the pieces stay sorted, disjoint and coalesced (no touching equal neighbours).
TEST(IntervalMap, AgreesWithAPerKeyModel) {
  constexpr uint64_t kKeys = 200;
  for (uint64_t seed = 1; seed <= 20; ++seed) {
    std::mt19937_64 rng(seed);
    IntervalMap<int> m;
    std::vector<std::optional<int>> model(kKeys);
    for (int step = 0; step < 2000; ++step) {
      uint64_t s = rng() % kKeys, e = rng() % (kKeys + 1);
      if (rng() % 4 == 0) e = std::min(kKeys, s + 1 + rng() % 3);  // short ranges split more
      const int v = static_cast<int>(rng() % 3);
      switch (rng() % 3) {
        case 0:
          m.assign(s, e, v);
          for (uint64_t k = s; k < e; ++k) model[k] = v;
          break;
        case 1:
          m.erase(s, e);
          for (uint64_t k = s; k < e; ++k) model[k].reset();
          break;
        default:
          m.update(s, e, [](uint64_t, uint64_t, int& x) { x = (x + 1) % 3; });
          for (uint64_t k = s; k < e; ++k)
            if (model[k]) model[k] = (*model[k] + 1) % 3;
      }
      uint64_t prev_end = 0;
      std::optional<int> prev_value;
      m.for_each([&](uint64_t a, uint64_t b, int x) {
        ASSERT_LT(a, b);
        ASSERT_GE(a, prev_end);
        ASSERT_FALSE(a == prev_end && prev_value == x) << "uncoalesced at " << a << ", seed " << seed;
        prev_end = b;
        prev_value = x;
      });
      for (uint64_t k = 0; k < kKeys; ++k) {
        const int* got = m.at(k);
        ASSERT_EQ(got ? std::optional<int>(*got) : std::nullopt, model[k]) << "key " << k << ", seed " << seed;
      }
      const uint64_t q = rng() % kKeys, qe = std::min(kKeys, q + 1 + rng() % 20);
      bool all = true, any = false;
      for (uint64_t k = q; k < qe; ++k) {
        all = all && model[k] == 1;
        any = any || model[k] == 1;
      }
      ASSERT_EQ(m.all_of(q, qe, [](int x) { return x == 1; }), all);
      ASSERT_EQ(m.any_of(q, qe, [](int x) { return x == 1; }), any);
      uint64_t end = q;
      while (model[q] && end < kKeys && model[end] == model[q]) ++end;
      ASSERT_EQ(m.piece_end(q), end);
    }
  }
}

}  // namespace
}  // namespace tdxhp
