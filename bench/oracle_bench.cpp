// Oracle cost per step (the nightly value is sequences per hour; budget: sim + oracle at 200k
// ops/s on one core). SC-BOUNDARY: a 12 TiB punch on a 16 TiB slot must cost well under 1 ms.
#include <benchmark/benchmark.h>

#include <optional>

#include "oracles/oracle.h"

namespace {

using namespace tdxhp;

constexpr uint64_t k2M = 512, k1G = 512 * 512;
constexpr uint64_t k16T = uint64_t{16} << 28, k12T = uint64_t{12} << 28;  // in 4K pages
constexpr Pfn kBase = 0x100000;

Caps all_caps() {
  Caps k;
  for (int i = 0; i < kCapCount; ++i) k.has.insert(Cap(i));
  return k;
}

Observation setup_obs(const Config& c) {
  Observation o;
  o.has_leaves = o.has_backing = true;
  for (const Memslot& m : c.slots) {
    o.leaf_windows.push_back({true, m.range(), {}, std::nullopt});
    o.backing_windows.push_back({m.id, m.gmem_offset, m.npages, {}});
  }
  return o;
}

// The guest touches g: a 2M private leaf over a fresh 2M folio.
Observation mapped_2m(Gfn g) {
  Observation o;
  o.has_leaves = o.has_backing = true;
  o.leaf_windows.push_back({true, {g, k2M}, {{{g, k2M}, Level::L2M, kBase + g}}, std::nullopt});
  o.backing_windows.push_back({0, g, k2M, {{0, g, k2M, true, kBase + g, 9}}});
  return o;
}

Observation punched(GfnRange r) {
  Observation o;
  o.has_leaves = o.has_backing = true;
  o.leaf_windows.push_back({true, r, {}, std::nullopt});
  o.backing_windows.push_back({0, r.start, r.npages, {}});
  return o;
}

Outcome pending_ve() {
  Outcome o;
  o.ve = true;
  return o;
}

int64_t fault_and_accept(Oracle& oracle, int64_t step, Gfn g, size_t* violations) {
  *violations += oracle.step(step++, Access{g, false, 0}, pending_ve(), mapped_2m(g)).size();
  *violations += oracle.step(step++, Accept{g, Level::L2M}, Outcome{}, Observation{}).size();
  return step;
}

// SC-BOUNDARY: punch [1G, 1G + 12T) of a 16 TiB slot whose edges sit next to mapped 2M
// leaves, then fault the two punched leaves back. Time per cycle = 1 punch + 4 guest steps.
void BM_OracleTwelveTebibytePunch(benchmark::State& st) {
  Config c;
  c.slots.push_back(Memslot{0, 0, k16T, 0, 0});
  Oracle oracle(c, all_caps());
  size_t violations = oracle.after_setup(setup_obs(c)).size();
  const Gfn s = k1G, e = k1G + k12T;
  int64_t step = 0;
  for (Gfn g : {s - k2M, s, e - k2M, e}) step = fault_and_accept(oracle, step, g, &violations);
  for (auto _ : st) {
    violations += oracle.step(step++, PunchHole{{s, k12T}}, Outcome{}, punched({s, k12T})).size();
    step = fault_and_accept(oracle, step, s, &violations);
    step = fault_and_accept(oracle, step, e - k2M, &violations);
  }
  st.counters["violations"] = double(violations);  // 0: the trace is legal
  st.counters["state_pieces"] = double(oracle.state_pieces());
}
BENCHMARK(BM_OracleTwelveTebibytePunch)->Unit(benchmark::kMicrosecond);

// The same punch alone, on state that already has the range empty (pure per-step cost).
void BM_OraclePunchStepOnly(benchmark::State& st) {
  Config c;
  c.slots.push_back(Memslot{0, 0, k16T, 0, 0});
  Oracle oracle(c, all_caps());
  oracle.after_setup(setup_obs(c));
  const Gfn s = k1G;
  int64_t step = 0;
  for (auto _ : st) benchmark::DoNotOptimize(oracle.step(step++, PunchHole{{s, k12T}}, Outcome{}, punched({s, k12T})));
  st.SetItemsProcessed(st.iterations());
}
BENCHMARK(BM_OraclePunchStepOnly)->Unit(benchmark::kMicrosecond);

// A typical sequence over a 2 GiB TD: per 2M block fault, accept 2M, write, partial convert to
// shared (boundary split), convert back, read; a fresh oracle every 16 blocks (one sequence,
// setup included). Reports oracle steps per second.
void BM_OracleStepMix(benchmark::State& st) {
  Config c;
  c.slots.push_back(Memslot{0, 0, 2 * k1G, 0, 0});
  const Caps caps = all_caps();
  std::optional<Oracle> oracle;
  int64_t step = 0, total = 0;
  size_t violations = 0;
  uint64_t block = 0;
  for (auto _ : st) {
    if (block % 16 == 0) {
      oracle.emplace(c, caps);
      violations += oracle->after_setup(setup_obs(c)).size();
      step = 0;
    }
    const Gfn g = (block++ % 1024) * k2M;
    violations += oracle->step(step++, Access{g, false, 0}, pending_ve(), mapped_2m(g)).size();
    violations += oracle->step(step++, Accept{g, Level::L2M}, Outcome{}, Observation{}).size();
    violations += oracle->step(step++, Access{g, true, 0x77}, Outcome{}, Observation{}).size();
    Observation split;
    split.has_leaves = true;
    split.leaf_windows.push_back(
        {true, {g, k2M}, {{{g, 1}, Level::L4K, kBase + g}, {{g + 2, k2M - 2}, Level::L4K, kBase + g + 2}}, std::nullopt});
    violations += oracle->step(step++, Convert{{g + 1, 1}, Attr::Shared}, Outcome{}, split).size();
    violations += oracle->step(step++, Convert{{g + 1, 1}, Attr::Private}, Outcome{}, Observation{}).size();
    Outcome read;
    read.read = 0x77;
    violations += oracle->step(step++, Access{g, false, 0}, read, Observation{}).size();
    total += 6;
  }
  st.SetItemsProcessed(total);
  st.counters["violations"] = double(violations);  // 0: the trace is legal
}
BENCHMARK(BM_OracleStepMix);

}  // namespace
