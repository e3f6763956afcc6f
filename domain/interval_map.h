// Disjoint half-open intervals [start, end) -> V over uint64 keys, coalescing equal neighbours.
// State in the oracle and the sim lives in these, so a 16 TiB slot costs what a 2 MiB one does.
#pragma once

#include <cstdint>
#include <iterator>
#include <map>
#include <utility>

namespace tdxhp {

template <class V>
class IntervalMap {
 public:
  struct Piece {
    uint64_t end;
    V value;
  };
  using Map = std::map<uint64_t, Piece>;  // key = start

  // Sets [s, e) to v, replacing whatever was there.
  void assign(uint64_t s, uint64_t e, const V& v) {
    if (s >= e) return;
    erase(s, e);
    auto it = m_.emplace(s, Piece{e, v}).first;
    coalesce(it);
  }

  // Removes [s, e), splitting pieces that straddle the edges.
  void erase(uint64_t s, uint64_t e) {
    if (s >= e) return;
    split_at(s);
    split_at(e);
    m_.erase(m_.lower_bound(s), m_.lower_bound(e));
  }

  // Calls f(start, end, V&) on every piece inside [s, e) after splitting at s and e,
  // then re-coalesces. f may change the value.
  template <class F>
  void update(uint64_t s, uint64_t e, F&& f) {
    if (s >= e) return;
    split_at(s);
    split_at(e);
    for (auto it = m_.lower_bound(s); it != m_.end() && it->first < e; ++it)
      f(it->first, it->second.end, it->second.value);
    coalesce_range(s, e);
  }

  // Calls f(start, end, const V&) on every piece overlapping [s, e), clipped to it.
  template <class F>
  void for_each(uint64_t s, uint64_t e, F&& f) const {
    if (s >= e) return;
    for (auto it = first_overlapping(s); it != m_.end() && it->first < e; ++it)
      f(std::max(it->first, s), std::min(it->second.end, e), it->second.value);
  }
  template <class F>
  void for_each(F&& f) const {
    for (auto& [k, p] : m_) f(k, p.end, p.value);
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
    auto it = m_.upper_bound(x);
    if (it == m_.begin()) return nullptr;
    --it;
    return x < it->second.end ? &it->second.value : nullptr;
  }

  // True when every key of [s, e) is set and pred(value) holds for it.
  template <class P>
  bool all_of(uint64_t s, uint64_t e, P&& pred) const {
    uint64_t cur = s;
    bool ok = true;
    for_each(s, e, [&](uint64_t a, uint64_t b, const V& v) {
      if (a != cur || !pred(v)) ok = false;
      cur = b;
    });
    return ok && cur >= e;
  }
  template <class P>
  bool any_of(uint64_t s, uint64_t e, P&& pred) const {
    bool hit = false;
    for_each(s, e, [&](uint64_t, uint64_t, const V& v) { hit = hit || pred(v); });
    return hit;
  }

  bool empty() const { return m_.empty(); }
  size_t pieces() const { return m_.size(); }
  void clear() { m_.clear(); }
  const Map& raw() const { return m_; }
  bool operator==(const IntervalMap& o) const = default;

 private:
  typename Map::const_iterator first_overlapping(uint64_t s) const {
    auto it = m_.upper_bound(s);
    if (it != m_.begin()) {
      auto prev = std::prev(it);
      if (prev->second.end > s) return prev;
    }
    return it;
  }
  void split_at(uint64_t x) {
    auto it = m_.upper_bound(x);
    if (it == m_.begin()) return;
    --it;
    if (it->first < x && x < it->second.end) {
      Piece tail{it->second.end, it->second.value};
      it->second.end = x;
      m_.emplace_hint(std::next(it), x, std::move(tail));
    }
  }
  void coalesce(typename Map::iterator it) {
    if (it != m_.begin()) {
      auto prev = std::prev(it);
      if (prev->second.end == it->first && prev->second.value == it->second.value) {
        prev->second.end = it->second.end;
        m_.erase(it);
        it = prev;
      }
    }
    auto next = std::next(it);
    if (next != m_.end() && it->second.end == next->first && it->second.value == next->second.value) {
      it->second.end = next->second.end;
      m_.erase(next);
    }
  }
  void coalesce_range(uint64_t s, uint64_t e) {
    auto it = m_.lower_bound(s);
    if (it != m_.begin()) --it;
    while (it != m_.end() && it->first <= e) {
      auto next = std::next(it);
      if (next == m_.end()) break;
      if (it->second.end == next->first && it->second.value == next->second.value) {
        it->second.end = next->second.end;
        m_.erase(next);
      } else {
        it = next;
      }
    }
  }

  Map m_;
};

}  // namespace tdxhp
