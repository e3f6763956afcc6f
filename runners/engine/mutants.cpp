#include "runners/engine/mutants.h"

#include <algorithm>
#include <chrono>
#include <sstream>
#include <filesystem>
#include <ostream>
#include <stdexcept>

#include "domain/case_file.h"
#include "domain/catalog.h"
#include "properties/registry.h"
#include "runners/engine/engine.h"
#include "runners/engine/replay.h"
#include "runners/engine/targets.h"

namespace tdxhp::engine {

double median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

bool catalog_catches(const std::string& id, const std::string& invariant) {
  const MutantInfo* m = find_mutant(id);
  if (!m) return false;
  // A KVM_BUG_ON is INV-BUSY in the event log and a WARN in the kernel log: either face counts.
  if (invariant == "kernel-warn") return catalog_catches(id, "INV-BUSY");
  std::string_view list = m->caught_by;
  while (!list.empty()) {  // comma-separated INV-*
    const size_t comma = list.find(',');
    if (list.substr(0, comma) == invariant) return true;
    list = comma == std::string_view::npos ? std::string_view{} : list.substr(comma + 1);
  }
  return false;
}

MutantMatrix run_mutants(const MutantOptions& opt, std::ostream& log) {
  MutantMatrix m;
  m.seconds_per_mutant = opt.seconds_per_mutant;
  m.repeats = opt.repeats;
  for (auto& id : opt.only)
    if (!find_mutant(id)) throw std::invalid_argument("--mutant: unknown mutant \"" + id + "\" (tdxhp list shows them)");

  RunOptions clean;
  clean.target = "sim";
  clean.seconds = opt.clean_seconds;
  clean.seed = opt.seed;
  clean.out_dir = opt.out_dir.empty() ? "" : opt.out_dir + "/clean";
  clean.progress = opt.progress;
  clean.interrupt = opt.interrupt;
  clean.ops_generator = opt.ops_generator;
  m.clean = run(clean, log);

  for (auto& info : mutants()) {
    const std::string id(info.id);
    if (!opt.only.empty() && std::find(opt.only.begin(), opt.only.end(), id) == opt.only.end()) continue;
    if (opt.interrupt && opt.interrupt->load()) break;
    MutantRow row;
    row.id = id;
    if (!opt.fixtures_dir.empty()) {
      const std::string fixture = fixture_for_mutant(opt.fixtures_dir, id);
      if (!fixture.empty()) {
        try {
          row.fixture_steps = static_cast<int>(load_case(fixture).scenario.ops.size());
        } catch (const CaseError& e) {
          log << "warning: " << e.what() << "\n";
        }
      }
    }
    for (int rep = 0; rep < std::max(1, opt.repeats); ++rep) {
      // A kill counts only when the shrunk case passes on the clean sim: otherwise the failure
      // is the clean sim's own, and that property is dropped while the others keep looking.
      std::vector<std::string> remaining;
      for (auto& p : properties()) remaining.push_back(p.id);
      const auto t0 = std::chrono::steady_clock::now();
      double cpu_before = 0;  // CPU of the runs whose failure the clean sim shares
      int cases_before = 0;
      while (!remaining.empty()) {
        const double left = opt.seconds_per_mutant -
                            std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        if (left <= 0 || (opt.interrupt && opt.interrupt->load())) break;
        RunOptions r;
        r.target = "sim";
        r.mutants = {id};
        r.properties = remaining;
        r.seconds = left;
        r.seed = opt.seed + static_cast<uint64_t>(rep) * 1000003 + cases_before;
        r.out_dir = opt.out_dir.empty() ? "" : opt.out_dir + "/" + id;
        r.stop_at_first_failure = true;
        r.differential = true;
        r.quiet = true;
        r.interrupt = opt.interrupt;
        r.ops_generator = opt.ops_generator;
        RunSummary s = run(r, log);
        const PropertyResult* failed = nullptr;
        for (auto& p : s.properties)
          if (p.failure && p.status == "fail") failed = &p;
        if (!failed) break;
        const Failure& f = *failed->failure;
        std::string why;
        auto clean_sim = make_target("sim", {}, 0, &why);
        std::ostringstream sink;
        if (replay_scenario(*clean_sim, f.shrunk, {}, sink).violation) {
          log << id << ": " << failed->id << " failed, but its shrunk case fails on the clean sim too ("
              << f.invariant << "); not counted as a kill\n";
          cases_before += s.totals.cases;
          cpu_before += s.totals.cpu_seconds;
          std::erase(remaining, failed->id);
          continue;
        }
        const double t = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() -
                         (s.totals.seconds - f.seconds_to_failure);
        row.kill_seconds.push_back(t);
        if (!row.killed) {  // the first repeat's details go into the matrix
          row.killed = true;
          row.invariant = f.invariant;
          row.outside_catalog = !catalog_catches(id, f.invariant);
          row.property = failed->id;
          row.cases = cases_before + f.cases_to_failure;
          row.seconds = t;
          row.cpu_seconds = cpu_before + f.cpu_seconds_to_failure;
          row.shrunk_steps = f.shrunk_steps;
          row.case_file = f.case_file;
        }
        break;
      }
    }
    if (row.kill_seconds.size() < static_cast<size_t>(std::max(1, opt.repeats)))
      row.killed = false;  // killed means killed every time
    m.rows.push_back(row);
  }
  m.interrupted = opt.interrupt && opt.interrupt->load();
  return m;
}

int exit_code(const MutantMatrix& m) {
  if (m.clean.verdict == "fail") return 1;
  if (m.interrupted) return 130;  // a matrix cut short says nothing about the mutants it did not reach
  for (auto& r : m.rows)
    if (!r.killed) return 1;
  return 0;
}

}  // namespace tdxhp::engine
