// The randomness of one case as a sequence of choices, the idea of Hypothesis' Conjecture
// (MacIver and Donaldson, ECOOP 2020). Drawing a case records each choice's outcome; shrinking
// edits the record (deletes an element's span, lowers an outcome) and draws the case again from
// it. A replayed draw takes the recorded outcome modulo its range and reads 0 past the end, so
// every edited record still gives a runnable case. Generating costs one PRNG step and one
// vector push per choice, where a RapidCheck Gen builds a Shrinkable tree per value (issue 16).
#pragma once

#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <utility>
#include <vector>

namespace tdxhp::gen {

// [begin, end) of the record: one element of a repeat(), which the shrinker may delete whole.
struct ChoiceSpan {
  uint32_t begin = 0, end = 0;
};

class Choices {
 public:
  static Choices fresh(uint64_t seed) { return Choices(seed, nullptr); }
  static Choices replay(const std::vector<uint64_t>& record) { return Choices(0, &record); }

  // Uniform in [0, n); no choice is made (nor recorded) when n <= 1.
  uint64_t below(uint64_t n);
  template <class T>
  T in_range(T lo, T hi) {  // [lo, hi)
    return static_cast<T>(lo + below(static_cast<uint64_t>(hi - lo)));
  }
  bool coin() { return below(2) != 0; }
  template <class T>
  T one_of(std::initializer_list<T> xs) {
    return xs.begin()[below(xs.size())];
  }
  template <class C>
  const typename C::value_type& element_of(const C& xs) {
    return xs[below(xs.size())];
  }
  // An entry with probability weight / total. The outcome recorded is the entry's index, so
  // shrinking moves towards the first entries: list the plain ones first.
  template <class T>
  T weighted(std::initializer_list<std::pair<uint32_t, T>> xs) {
    return xs.begin()[weighted_index(xs.size(), [&](size_t i) { return xs.begin()[i].first; })].second;
  }
  // The index of an entry in [0, n) with probability weight_of(i) / total.
  template <class W>
  size_t weighted_index(size_t n, W weight_of) {
    if (n <= 1) return 0;
    uint64_t fresh = 0;
    if (!replay_) {
      uint64_t total = 0;
      for (size_t i = 0; i < n; ++i) total += static_cast<uint64_t>(weight_of(i));
      uint64_t pick = uniform(total);
      while (pick >= static_cast<uint64_t>(weight_of(fresh))) pick -= static_cast<uint64_t>(weight_of(fresh++));
    }
    return static_cast<size_t>(take(n, fresh));
  }
  // Up to `max` elements, each drawn by draw(i) and each preceded by a "one more" choice (1)
  // or the end of the list (0), as Hypothesis encodes lists: deleting an element's span leaves
  // a shorter list that still parses. Lengths are uniform in [0, max].
  template <class F>
  void repeat(size_t max, F&& draw) {
    for (size_t i = 0; i < max; ++i) {
      const auto begin = static_cast<uint32_t>(record_.size());
      if (!chance(max - i, max - i + 1)) break;
      draw(i);
      spans_.push_back({begin, static_cast<uint32_t>(record_.size())});
    }
  }

  // The outcomes drawn, each reduced to its range (on replay: padded with the zeros read past
  // the end, and without the unread tail).
  const std::vector<uint64_t>& record() const { return record_; }
  std::vector<uint64_t> take_record() { return std::move(record_); }
  const std::vector<ChoiceSpan>& spans() const { return spans_; }
  std::vector<ChoiceSpan> take_spans() { return std::move(spans_); }

 private:
  // Room for a typical case's record up front: growing it by doubling was ~8 allocations a case.
  Choices(uint64_t seed, const std::vector<uint64_t>* replay) : state_(seed), replay_(replay) {
    record_.reserve(replay ? replay->size() : 256);
    spans_.reserve(64);
  }
  uint64_t next_random();
  uint64_t uniform(uint64_t n);  // a fresh draw in [0, n)
  // Records and returns `fresh` (already in [0, n)) or, on replay, the next recorded outcome mod n.
  uint64_t take(uint64_t n, uint64_t fresh);
  bool chance(uint64_t k, uint64_t n);  // true with probability k / n; recorded as 1 or 0

  uint64_t state_;
  const std::vector<uint64_t>* replay_;
  std::vector<uint64_t> record_;
  std::vector<ChoiceSpan> spans_;
};

}  // namespace tdxhp::gen
