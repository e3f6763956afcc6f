#include "domain/interval_map.h"

#include <gtest/gtest.h>

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

}  // namespace
}  // namespace tdxhp
