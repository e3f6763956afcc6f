// Cost of one IntervalMap update against how fragmented the map already is. The pieces sit
// in one sorted vector, so a split or a join moves the tail: this shows where that starts to
// matter (fuzz-sized states hold tens to a few thousand pieces per map).
#include <benchmark/benchmark.h>

#include <cstdint>

#include "domain/interval_map.h"

namespace tdxhp {
namespace {

void BM_IntervalMapAssignIntoFragmented(benchmark::State& state) {
  const uint64_t pieces = static_cast<uint64_t>(state.range(0));
  IntervalMap<int> m;
  for (uint64_t i = 0; i < pieces; ++i) m.assign(2 * i, 2 * i + 1, static_cast<int>(i % 2));
  uint64_t x = 12345;
  for (auto _ : state) {
    x = x * 6364136223846793005ULL + 1442695040888963407ULL;
    const uint64_t k = (x >> 20) % (2 * pieces);
    const int* was = m.at(k);
    const int old = was ? *was : -1;
    m.assign(k, k + 1, 7);  // split a piece or fill a gap...
    if (old < 0) m.erase(k, k + 1);  // ...and back: the piece count stays where it was
    else m.assign(k, k + 1, old);
  }
  state.counters["pieces"] = static_cast<double>(m.pieces());
  state.SetItemsProcessed(state.iterations() * 2);
}
BENCHMARK(BM_IntervalMapAssignIntoFragmented)->Arg(100)->Arg(1000)->Arg(10000)->Arg(100000);

}  // namespace
}  // namespace tdxhp
