#include "runners/sim/tests/sim_test_util.h"

#include <cstdlib>
#include <optional>
#include <sstream>

#include "domain/case_file.h"
#include "domain/describe.h"
#include "runners/sim/sim_target.h"

namespace tdxhp::simtest {

std::string fixture_dir() {
  const char* src = std::getenv("TDXHP_SOURCE_DIR");
  return std::string(src ? src : ".") + "/fixtures/cases";
}

Scenario scenario_of(const std::string& path) { return load_case(path).scenario; }

namespace {
void fold(SimRun& r, const Observation& o) {
  for (const LeafWindow& w : o.leaf_windows) {
    IntervalMap<LeafAt>& m = w.is_private ? r.private_leaves : r.shared_leaves;
    m.erase(w.range.start, w.range.end());
    for (const LeafRun& run : w.runs) m.assign(run.range.start, run.range.end(), LeafAt{run.level, run.pfn - run.range.start});
  }
  for (const Event& e : o.events) {
    r.events += describe(e) + "\n";
    if (e.kind == EventKind::KvmBugOn) r.bug_on = true;
  }
}
}  // namespace

SimRun run(const Scenario& s, const std::vector<std::string>& mutants, uint64_t seed) {
  SimRun r;
  auto t = make_sim_target(seed);
  for (const std::string& m : mutants) t->set_mutant(m);
  std::string why;
  r.setup_err = t->setup(s.config, &why);
  std::ostringstream fp;
  fp << "setup " << r.setup_err << "\n";
  std::map<std::pair<uint32_t, uint64_t>, std::string> backing;
  auto fold_backing = [&](const Observation& o) {
    for (const BackingWindow& w : o.backing_windows) {
      auto lo = backing.lower_bound({w.slot, w.index}), hi = backing.lower_bound({w.slot, w.index + w.npages});
      backing.erase(lo, hi);
      for (const BackingRun& b : w.runs) backing[{b.slot, b.index}] = describe(b);
    }
  };
  Observation first = t->observe();
  fold(r, first);
  fold_backing(first);
  r.observations.push_back(first);
  auto record = [&](const Op& op, const Outcome& o, Observation ob, const std::string& when) {
    fp << when << describe(op) << " -> " << describe(o) << (o.read ? " read " + hex(*o.read) : "") << "\n";
    for (const LeafWindow& w : ob.leaf_windows)  // leaves a step maps and a later one undoes count too
      for (const LeafRun& lr : w.runs)
        fp << "  " << (w.is_private ? "private " : "shared ") << describe(lr.range) << " at " << name(lr.level) << "\n";
    fold(r, ob);
    fold_backing(ob);
    if (ob.internals)
      fp << "  pamt " << ob.internals->pamt_pages_in_use << " sept " << ob.internals->sept_pages << " underflows "
         << ob.internals->split_cache_underflows << " retries " << ob.internals->restart_retries << " inhibit "
         << ob.internals->guest_inhibit_blocks << " dead " << ob.vm_dead << "\n";
    r.observations.push_back(std::move(ob));
  };
  std::vector<size_t> held;
  // Runs held ops in order; at a drop point it stops at the first that must wait (kept held).
  auto run_held = [&](size_t during, bool at_drop) {
    while (!held.empty()) {
      const Op op = dequeued(s.ops[held.front()]);
      const size_t i = held.front();
      Outcome o = t->apply(op);
      if (!o.waiting) held.erase(held.begin());
      r.vcpu1.push_back({i, during, at_drop, o});
      record(op, o, t->observe(), at_drop ? "  vCPU 1 at the drop: " : "  vCPU 1 after: ");
      if (o.waiting) return;
    }
  };
  for (size_t i = 0; i < s.ops.size(); ++i) {
    const Op& op = s.ops[i];
    const bool queued = is_queued(op);
    int hook_calls = 0;
    if (!queued && !held.empty())
      t->set_mmu_lock_drop_hook([&, i] {
        if (hook_calls++ == 0) run_held(i, true);
      });
    Outcome o = t->apply(op);
    t->set_mmu_lock_drop_hook(nullptr);
    r.outcomes.push_back(o);
    r.drop_hook_calls.push_back(hook_calls);
    record(op, o, t->observe(), "");
    if (queued && o.err == 0) held.push_back(i);
    if (!queued || i + 1 == s.ops.size()) run_held(i, false);
  }
  r.private_leaves.for_each([&](uint64_t a, uint64_t b, const LeafAt& l) {
    fp << "private [" << hex(a) << "," << hex(b) << ") " << name(l.level) << " +" << hex(l.delta) << "\n";
  });
  r.shared_leaves.for_each([&](uint64_t a, uint64_t b, const LeafAt& l) {
    fp << "shared [" << hex(a) << "," << hex(b) << ") " << name(l.level) << " +" << hex(l.delta) << "\n";
  });
  for (auto& [k, v] : backing) fp << v << "\n";
  r.after_teardown = t->teardown();
  for (const Event& e : r.after_teardown.events) r.events += describe(e) + "\n";  // leaves stay pre-teardown
  if (r.after_teardown.internals) fp << "teardown pamt " << r.after_teardown.internals->pamt_pages_in_use << "\n";
  r.fingerprint = fp.str();
  return r;
}

int private_level(const SimRun& r, Gfn g) {
  const LeafAt* l = r.private_leaves.at(g);
  return l ? static_cast<int>(l->level) : -1;
}

}  // namespace tdxhp::simtest
