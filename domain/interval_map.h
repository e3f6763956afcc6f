// Disjoint half-open intervals [start, end) -> V over uint64 keys, coalescing equal neighbours.
// State in the oracle and the sim lives in these, so a 16 TiB slot costs what a 2 MiB one does.
// Pieces sit in one sorted vector: a fuzz case's maps hold tens to a few thousand pieces (a
// 4000-op bench TD peaks under 2k), where binary search and a memmove beat a node tree's
// pointer chasing and malloc per piece. Past ~5k pieces per map a tree would win
// (BM_IntervalMapAssignIntoFragmented in bench/).
#pragma once

#include <algorithm>
#include <cstdint>
#include <utility>
#include <vector>

namespace tdxhp {

template <class V>
class IntervalMap {
 public:
  struct Piece {
    uint64_t start;
    uint64_t end;
    V value;
    bool operator==(const Piece&) const = default;
  };

  // Sets [s, e) to v, replacing whatever was there.
  void assign(uint64_t s, uint64_t e, const V& v) {
    const Piece p{s, e, v};
    replace(s, e, &p, &p + 1);
  }

  // Removes [s, e), splitting pieces that straddle the edges.
  void erase(uint64_t s, uint64_t e) { replace(s, e, static_cast<const Piece*>(nullptr), static_cast<const Piece*>(nullptr)); }

  // Replaces the content of [s, e) by the pieces [first, last): sorted, disjoint, inside
  // [s, e). One splice however many pieces, so a whole observed window costs O(n + k).
  template <class It>
  void replace(uint64_t s, uint64_t e, It first, It last) {
    if (s >= e) return;
    size_t lo = first_ending_after(s), hi = first_starting_at_or_after(e, lo);
    if (lo > 0 && v_[lo - 1].end == s) --lo;  // touching neighbours may coalesce
    if (hi < v_.size() && v_[hi].start == e) ++hi;
    static thread_local std::vector<Piece> out;
    out.clear();
    auto push = [](const Piece& p) {
      if (p.start >= p.end) return;
      if (!out.empty() && out.back().end == p.start && out.back().value == p.value) out.back().end = p.end;
      else out.push_back(p);
    };
    for (size_t i = lo; i < hi && v_[i].start < s; ++i) push(Piece{v_[i].start, std::min(v_[i].end, s), v_[i].value});
    for (It it = first; it != last; ++it) push(*it);
    // Only the last piece can reach past e (the one straddling e, or the touching one that
    // starts at e): no walk over every piece a large erase removes.
    if (hi > lo && v_[hi - 1].end > e) push(Piece{std::max(v_[hi - 1].start, e), v_[hi - 1].end, v_[hi - 1].value});
    splice(lo, hi, out.data(), out.size());
  }

  // Calls f(start, end, V&) on every piece inside [s, e) after splitting at s and e,
  // then re-coalesces. f may change the value.
  template <class F>
  void update(uint64_t s, uint64_t e, F&& f) {
    if (s >= e) return;
    split_at(s);
    split_at(e);
    size_t lo = first_ending_after(s);
    size_t hi = lo;
    for (; hi < v_.size() && v_[hi].start < e; ++hi) f(v_[hi].start, v_[hi].end, v_[hi].value);
    coalesce(lo > 0 ? lo - 1 : 0, std::min(hi + 1, v_.size()));
  }

  // Calls f(start, end, const V&) on every piece overlapping [s, e), clipped to it.
  template <class F>
  void for_each(uint64_t s, uint64_t e, F&& f) const {
    if (s >= e) return;
    for (size_t i = first_ending_after(s); i < v_.size() && v_[i].start < e; ++i)
      f(std::max(v_[i].start, s), std::min(v_[i].end, e), v_[i].value);
  }
  template <class F>
  void for_each(F&& f) const {
    for (const Piece& p : v_) f(p.start, p.end, p.value);
  }

  // Gaps (unset stretches) inside [s, e).
  template <class F>
  void for_each_gap(uint64_t s, uint64_t e, F&& f) const {
    uint64_t cur = s;
    for_each(s, e, [&](uint64_t a, uint64_t b, const V&) {
      if (a > cur) f(cur, a);
      cur = b;
    });
    if (cur < e) f(cur, e);
  }

  const V* at(uint64_t x) const {
    const size_t i = first_ending_after(x);
    return i < v_.size() && v_[i].start <= x ? &v_[i].value : nullptr;
  }
  // End of the piece holding x, or x when x is unset.
  uint64_t piece_end(uint64_t x) const {
    const size_t i = first_ending_after(x);
    return i < v_.size() && v_[i].start <= x ? v_[i].end : x;
  }
  // Start of the first piece starting at or after x, or UINT64_MAX when there is none.
  uint64_t next_start(uint64_t x) const {
    const size_t i = first_starting_at_or_after(x, 0);
    return i < v_.size() ? v_[i].start : UINT64_MAX;
  }

  // True when every key of [s, e) is set and pred(value) holds for it. Stops at the first
  // piece that decides: the sim asks this of whole 1G blocks on hot paths.
  template <class P>
  bool all_of(uint64_t s, uint64_t e, P&& pred) const {
    uint64_t cur = s;
    for (size_t i = first_ending_after(s); cur < e; ++i) {
      if (i == v_.size() || v_[i].start > cur || !pred(v_[i].value)) return false;
      cur = v_[i].end;
    }
    return true;
  }
  // True when some piece overlapping [s, e) has pred(value); stops at the first.
  template <class P>
  bool any_of(uint64_t s, uint64_t e, P&& pred) const {
    if (s >= e) return false;
    for (size_t i = first_ending_after(s); i < v_.size() && v_[i].start < e; ++i)
      if (pred(v_[i].value)) return true;
    return false;
  }
  bool any(uint64_t s, uint64_t e) const {
    const size_t i = first_ending_after(s);
    return s < e && i < v_.size() && v_[i].start < e;
  }

  bool empty() const { return v_.empty(); }
  size_t pieces() const { return v_.size(); }
  void clear() { v_.clear(); }
  bool operator==(const IntervalMap& o) const = default;

 private:
  size_t first_ending_after(uint64_t x) const {
    return static_cast<size_t>(
        std::partition_point(v_.begin(), v_.end(), [x](const Piece& p) { return p.end <= x; }) - v_.begin());
  }
  size_t first_starting_at_or_after(uint64_t x, size_t from) const {
    return static_cast<size_t>(
        std::partition_point(v_.begin() + static_cast<std::ptrdiff_t>(from), v_.end(),
                             [x](const Piece& p) { return p.start < x; }) -
        v_.begin());
  }
  // Replaces v_[lo, hi) by out[0, n).
  void splice(size_t lo, size_t hi, const Piece* out, size_t n) {
    const size_t old = hi - lo;
    const size_t common = std::min(old, n);
    std::copy(out, out + common, v_.begin() + static_cast<std::ptrdiff_t>(lo));
    if (n > old) {
      v_.insert(v_.begin() + static_cast<std::ptrdiff_t>(hi), out + common, out + n);
    } else if (n < old) {
      v_.erase(v_.begin() + static_cast<std::ptrdiff_t>(lo + n), v_.begin() + static_cast<std::ptrdiff_t>(hi));
    }
  }
  void split_at(uint64_t x) {
    const size_t i = first_ending_after(x);
    if (i < v_.size() && v_[i].start < x) {
      Piece tail{x, v_[i].end, v_[i].value};
      v_[i].end = x;
      v_.insert(v_.begin() + static_cast<std::ptrdiff_t>(i + 1), std::move(tail));
    }
  }
  // Merges touching equal neighbours among v_[lo, hi).
  void coalesce(size_t lo, size_t hi) {
    if (hi - lo < 2) return;
    size_t w = lo;
    for (size_t r = lo + 1; r < hi; ++r) {
      if (v_[w].end == v_[r].start && v_[w].value == v_[r].value) {
        v_[w].end = v_[r].end;
      } else if (++w != r) {
        v_[w] = std::move(v_[r]);
      }
    }
    v_.erase(v_.begin() + static_cast<std::ptrdiff_t>(w + 1), v_.begin() + static_cast<std::ptrdiff_t>(hi));
  }

  std::vector<Piece> v_;
};

}  // namespace tdxhp
