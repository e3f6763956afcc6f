// Early-exit queries over IntervalMap: the sim asks "is all of this 1G block private?" on hot
// paths, and IntervalMap::all_of/any_of visit every piece of the range even after the answer
// is known. Same answers, cost up to the first piece that decides.
#pragma once

#include <cstdint>
#include <iterator>

#include "domain/interval_map.h"

namespace tdxhp::sim {

// True when every key of [s, e) is set and pred(value) holds (IntervalMap::all_of).
template <class V, class P>
bool all_set_and(const IntervalMap<V>& m, uint64_t s, uint64_t e, P&& pred) {
  if (s >= e) return true;
  const auto& raw = m.raw();
  auto it = raw.upper_bound(s);
  if (it == raw.begin()) return false;  // s itself is unset
  --it;
  uint64_t cur = s;
  for (; it != raw.end() && cur < e; ++it) {
    if (it->first > cur || it->second.end <= cur || !pred(it->second.value)) return false;
    cur = it->second.end;
  }
  return cur >= e;
}

// True when some piece overlapping [s, e) has pred(value) (IntervalMap::any_of).
template <class V, class P>
bool any_set_and(const IntervalMap<V>& m, uint64_t s, uint64_t e, P&& pred) {
  if (s >= e) return false;
  const auto& raw = m.raw();
  auto it = raw.upper_bound(s);
  if (it != raw.begin() && std::prev(it)->second.end > s) --it;
  for (; it != raw.end() && it->first < e; ++it)
    if (pred(it->second.value)) return true;
  return false;
}

}  // namespace tdxhp::sim
