// `tdxhp mutants`: the kill matrix. The clean sim must pass; every MUT-* of DOMAIN.md section 6
// must make some property fail within its budget.
#pragma once

#include <atomic>
#include <iosfwd>
#include <string>
#include <vector>

#include "generators/profile.h"
#include "runners/engine/results.h"

namespace tdxhp::engine {

struct MutantRow {
  std::string id;
  bool killed = false;
  std::string invariant;   // the invariant whose violation killed it
  // The kill came from an invariant outside the mutant's catalog caught_by list (a side
  // effect, a kernel WARN, an observer fault): the catalog invariant's own check did not show.
  bool outside_catalog = false;
  std::string property;
  int cases = 0;           // cases to the first failure (all properties interleaved)
  double seconds = 0;      // wall time to the first failure, before shrinking
  double cpu_seconds = 0;  // CPU time (user + sys) to the first failure, before shrinking
  int shrunk_steps = 0;
  int fixture_steps = -1;  // ops in fixtures/cases/<id>.json; -1 when there is none
  std::vector<double> kill_seconds;  // one per repeat, for the median
  std::string case_file;
};

struct MutantMatrix {
  RunSummary clean;
  std::vector<MutantRow> rows;
  double seconds_per_mutant = 5;
  int repeats = 1;
  bool interrupted = false;  // SIGINT/SIGTERM: rows stop where it came, the last one may be partial
};

struct MutantOptions {
  double seconds_per_mutant = 5;
  double clean_seconds = 10;
  uint64_t seed = 0;
  int repeats = 1;                   // runs per mutant with different seeds (median time)
  std::vector<std::string> only;     // --mutant filter; empty: all
  std::string out_dir;
  std::string fixtures_dir;          // fixtures/cases, for fixture lengths
  bool progress = false;
  const std::atomic<bool>* interrupt = nullptr;
  gen::OpsGenerator ops_generator = nullptr;  // null: the default generator
};

MutantMatrix run_mutants(const MutantOptions& opt, std::ostream& log);
// 0 when the clean sim passes and every mutant is killed; 130 when interrupted.
int exit_code(const MutantMatrix&);
// Does the catalog (DOMAIN.md section 6) name `invariant` as one that catches mutant `id`?
bool catalog_catches(const std::string& id, const std::string& invariant);
double median(std::vector<double> v);

}  // namespace tdxhp::engine
