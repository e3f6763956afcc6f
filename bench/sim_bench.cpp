// Throughput of the simulated host alone and of sim + oracle with every step checked, on
// random op mixes over a 64 GiB guest backed by 1G, 2M or 4K folios (issue 3 acceptance).
#include <benchmark/benchmark.h>

#include <cerrno>

#include <cstdint>
#include <memory>

#include "domain/types.h"
#include "runners/sim/sim_target.h"
#if __has_include("oracles/oracle.h")
#include "oracles/oracle.h"
#define TDXHP_BENCH_HAS_ORACLE 1
#endif

namespace tdxhp {
namespace {

constexpr Gfn kBase = 0x1000000;          // 64 GiB, 1G-aligned
constexpr uint64_t kGuestPages = 0x1000000;  // 64 GiB guest

Config bench_config(BackingKind backing) {
  Config c;
  c.slots = {Memslot{0, kBase, kGuestPages, 0, 0}};
  c.backing = backing;
  c.attr_mode = backing == BackingKind::Page4K ? AttrMode::PerVm : AttrMode::InPlace;
  c.features.dynamic_pamt = true;
  c.build_pages = {{kBase, 16}};
  return c;
}

// Deterministic mix biased to a hot 1 GiB region so splits, conversions and accepts collide.
// With `inject`, one op in ten arms a DEMOTE BUSY; they pile up until a split meets two and the
// TD dies (KVM_BUG_ON), so most later ops are cheap -EIOs (dead_td_ops says how many). Without
// it the TD lives through the whole mix: the figure for the work of a live TD.
class OpMix {
 public:
  OpMix(uint64_t seed, bool inject) : x_(seed * 2654435761u + 1), inject_(inject) {}
  Op next() {
    const bool hot = rnd() % 2 == 0;
    const Gfn g = kBase + (hot ? rnd() % (512 * 512) : rnd() % kGuestPages);
    const uint64_t small = 1 + rnd() % 4;
    switch (rnd() % 10) {
      case 0: case 1: return Access{g, rnd() % 2 == 0, rnd()};
      case 2: case 3: return Accept{align_down(g, Level::L2M), Level::L2M};
      case 4: return Accept{g, Level::L4K};
      case 5: return Convert{{g, small}, Attr::Shared};
      case 6: return Convert{{align_down(g, Level::L2M), 512}, Attr::Private};
      case 7: return Prefault{{align_down(g, Level::L2M), 512}};
      case 8: return PunchHole{{align_down(g, Level::L1G), 512 * 512}};
      default:
        if (inject_) return Inject{FaultSite::Demote, tdx::kOperandBusy, 1};
        return Access{g, true, rnd()};
    }
  }

 private:
  uint64_t rnd() { return (x_ = x_ * 6364136223846793005ULL + 1442695040888963407ULL) >> 17; }
  uint64_t x_;
  bool inject_;
};

constexpr int64_t kOpsPerTd = 4000;  // a fresh TD every so often keeps state at fuzz-run size

void run_mix(benchmark::State& state, bool with_oracle) {
  const auto backing = static_cast<BackingKind>(state.range(0));
  const Config cfg = bench_config(backing);
  OpMix mix(42, state.range(1) != 0);
  int64_t ops = 0, violations = 0, dead_ops = 0;
  std::unique_ptr<Target> t;
#ifdef TDXHP_BENCH_HAS_ORACLE
  std::unique_ptr<Oracle> oracle;
#endif
  int64_t step = kOpsPerTd;
  for (auto _ : state) {
    if (step == kOpsPerTd) {
      state.PauseTiming();
      t = make_sim_target(7);
      std::string why;
      if (t->setup(cfg, &why) != 0) state.SkipWithError(("setup failed: " + why).c_str());
      Observation first = t->observe();
#ifdef TDXHP_BENCH_HAS_ORACLE
      if (with_oracle) {
        oracle = std::make_unique<Oracle>(cfg, t->caps());
        violations += static_cast<int64_t>(oracle->after_setup(first).size());
      }
#endif
      step = 0;
      state.ResumeTiming();
    }
    const Op op = mix.next();
    const Outcome o = t->apply(op);
    dead_ops += o.err == -EIO;  // ops on a TD that KVM_BUG_ON'd cost next to nothing
    const Observation obs = t->observe();
#ifdef TDXHP_BENCH_HAS_ORACLE
    if (with_oracle) violations += static_cast<int64_t>(oracle->step(step, op, o, obs).size());
#else
    (void)o;
#endif
    benchmark::DoNotOptimize(obs.events.size());
    ++step;
    ++ops;
  }
  state.SetItemsProcessed(ops);
  state.counters["ops_per_s"] = benchmark::Counter(static_cast<double>(ops), benchmark::Counter::kIsRate);
  state.counters["dead_td_ops"] = benchmark::Counter(static_cast<double>(dead_ops) / static_cast<double>(ops ? ops : 1));
  if (with_oracle) state.counters["violations"] = static_cast<double>(violations);
}

void BM_SimOnly(benchmark::State& state) { run_mix(state, false); }
BENCHMARK(BM_SimOnly)
    ->ArgNames({"backing", "inject"})
    ->ArgsProduct({{static_cast<int>(BackingKind::Hugetlb1G), static_cast<int>(BackingKind::Hugetlb2M),
                    static_cast<int>(BackingKind::Page4K)},
                   {0, 1}});

#ifdef TDXHP_BENCH_HAS_ORACLE
void BM_SimPlusOracle(benchmark::State& state) { run_mix(state, true); }
BENCHMARK(BM_SimPlusOracle)
    ->ArgNames({"backing", "inject"})
    ->ArgsProduct({{static_cast<int>(BackingKind::Hugetlb1G), static_cast<int>(BackingKind::Hugetlb2M),
                    static_cast<int>(BackingKind::Page4K)},
                   {0, 1}});
#endif

}  // namespace
}  // namespace tdxhp
