// Scaling with range size (issue 16): one convert and one punch of 4K, 2M, 1G, 64G and 16T
// ranges, sim + oracle, on the largest slot validate_config allows (about 4 PiB). The range's
// two edge pages are written first, so the op must split or zap the leaves at both edges; its
// cost must not grow with the range (interval structures, not per-page work).
#include <benchmark/benchmark.h>

#include <memory>

#include "domain/case_file.h"
#include "domain/types.h"
#include "oracles/oracle.h"
#include "runners/sim/sim_target.h"

namespace tdxhp {
namespace {

constexpr Gfn kSlotBase = 0x40000;
constexpr Gfn kStart = 0x80000;  // 2 GiB: 1G-aligned

Config scaling_config() {
  Config c;
  c.slots = {Memslot{0, kSlotBase, kGfnLimit - kSlotBase, 0, 0}};
  c.backing = BackingKind::Hugetlb2M;
  c.attr_mode = AttrMode::PerVm;
  return c;
}

// One iteration: write the first and the last page of the range (fault them back in), then the
// op(s) under test. Counters give ns per iteration; the edge writes are part of every size.
void run_ops(benchmark::State& state, bool punch) {
  const uint64_t npages = static_cast<uint64_t>(state.range(0));
  const Config cfg = scaling_config();
  const GfnRange r{kStart, npages};
  std::vector<Op> iteration{Access{r.start, true, 1}, Access{r.end() - 1, true, 2}};
  if (punch) {
    iteration.push_back(PunchHole{r});
  } else {
    iteration.push_back(Convert{r, Attr::Shared});
    iteration.push_back(Convert{r, Attr::Private});
  }
  std::unique_ptr<Target> t = make_sim_target(7);
  std::string why;
  if (t->setup(cfg, &why) != 0) {
    state.SkipWithError(("setup failed: " + why).c_str());
    return;
  }
  Oracle oracle(cfg, t->caps());
  int64_t violations = static_cast<int64_t>(oracle.after_setup(t->observe()).size());
  int64_t step = 0;
  for (auto _ : state) {
    for (const Op& op : iteration) {
      const Outcome o = t->apply(op);
      violations += static_cast<int64_t>(oracle.step(step++, op, o, t->observe()).size());
    }
  }
  state.SetItemsProcessed(state.iterations());
  state.counters["violations"] = static_cast<double>(violations);
  state.counters["ops_per_iteration"] = static_cast<double>(iteration.size());
}

void BM_ScaleConvert(benchmark::State& state) { run_ops(state, false); }
void BM_ScalePunch(benchmark::State& state) { run_ops(state, true); }

// 4K, 2M, 1G, 64G, 16T in 4K pages.
#define TDXHP_SIZES ->Arg(1)->Arg(512)->Arg(512 * 512)->Arg(int64_t{1} << 24)->Arg(int64_t{1} << 32)
BENCHMARK(BM_ScaleConvert) TDXHP_SIZES;
BENCHMARK(BM_ScalePunch) TDXHP_SIZES;
#undef TDXHP_SIZES

}  // namespace
}  // namespace tdxhp
