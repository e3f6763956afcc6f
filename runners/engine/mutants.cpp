#include "runners/engine/mutants.h"

#include <algorithm>
#include <filesystem>
#include <ostream>
#include <stdexcept>

#include "domain/case_file.h"
#include "domain/catalog.h"
#include "runners/engine/engine.h"

namespace tdxhp::engine {

double median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
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
  m.clean = run(clean, log);

  for (auto& info : mutants()) {
    const std::string id(info.id);
    if (!opt.only.empty() && std::find(opt.only.begin(), opt.only.end(), id) == opt.only.end()) continue;
    if (opt.interrupt && opt.interrupt->load()) break;
    MutantRow row;
    row.id = id;
    if (!opt.fixtures_dir.empty()) {
      const std::string fixture = opt.fixtures_dir + "/" + id + ".json";
      if (std::filesystem::exists(fixture)) {
        try {
          row.fixture_steps = static_cast<int>(load_case(fixture).scenario.ops.size());
        } catch (const CaseError& e) {
          log << "warning: " << e.what() << "\n";
        }
      }
    }
    for (int rep = 0; rep < std::max(1, opt.repeats); ++rep) {
      RunOptions r;
      r.target = "sim";
      r.mutants = {id};
      r.seconds = opt.seconds_per_mutant;
      r.seed = opt.seed + static_cast<uint64_t>(rep) * 1000003;
      r.out_dir = opt.out_dir.empty() ? "" : opt.out_dir + "/" + id;
      r.stop_at_first_failure = true;
      r.quiet = true;
      r.interrupt = opt.interrupt;
      RunSummary s = run(r, log);
      const PropertyResult* failed = nullptr;
      for (auto& p : s.properties)
        if (p.failure && p.status == "fail") failed = &p;
      if (!failed) continue;
      const Failure& f = *failed->failure;
      row.kill_seconds.push_back(f.seconds_to_failure);
      if (!row.killed) {  // the first repeat's details go into the matrix
        row.killed = true;
        row.invariant = f.invariant;
        row.property = failed->id;
        row.cases = f.cases_to_failure;
        row.seconds = f.seconds_to_failure;
        row.shrunk_steps = f.shrunk_steps;
        row.case_file = f.case_file;
      }
    }
    if (row.kill_seconds.size() < static_cast<size_t>(std::max(1, opt.repeats)))
      row.killed = false;  // killed means killed every time
    m.rows.push_back(row);
  }
  return m;
}

int exit_code(const MutantMatrix& m) {
  if (m.clean.verdict == "fail") return 1;
  for (auto& r : m.rows)
    if (!r.killed) return 1;
  return 0;
}

}  // namespace tdxhp::engine
