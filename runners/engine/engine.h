// `tdxhp run`: explores every selected property on one target within a budget, interleaving
// small RapidCheck batches across properties; on failure RapidCheck shrinks and the shrunk case
// is saved as a self-contained case file.
#pragma once

#include <atomic>
#include <functional>
#include <iosfwd>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "properties/registry.h"
#include "runners/engine/results.h"

namespace tdxhp::engine {

struct RunOptions {
  std::string target = "sim";
  std::vector<std::string> properties;  // empty: all
  std::vector<std::string> mutants;     // sim only
  std::optional<double> seconds;        // whole-run time budget
  std::optional<int> cases;             // per-property case budget
  uint64_t seed = 0;
  std::string out_dir;                  // case files go to out_dir/cases
  bool stop_at_first_failure = false;   // mutants: one kill is enough
  bool differential = false;            // mutants: count only cases that pass on the clean sim
  bool progress = false;                // live progress line on stderr
  bool quiet = false;                   // no per-failure text on the log stream
  gen::OpsGenerator ops_generator = nullptr;  // null: the default generator (bench/ passes a uniform one)
  const std::atomic<bool>* interrupt = nullptr;
  // Called with the run's summary so far (in_progress set) after batches; see kCheckpointSeconds.
  std::function<void(const RunSummary&)> checkpoint;
};

// Default budget when neither seconds nor cases is given.
constexpr int kDefaultCases = 100;

RunSummary run(const RunOptions& opt, std::ostream& log);

// User + sys CPU seconds of this process and its children, reaped or still running (the kvm
// worker owning a reused VM lives across cases; getrusage counts a child once it is reaped).
double process_cpu_seconds();

// After a property's cases (issue 13): claims only the INV-* some case could check (the rest go
// to not_checkable with the oracle's reason; a pass with none left is a skip), and fails a leaf
// property that saw no leaf on a target claiming LeafLevels ("observer saw nothing").
// `coverage`: Oracle::coverage() merged over the cases, "" where some case could check.
void settle(PropertyResult& res, const PropertyInfo& info, const Caps& caps,
            const std::map<std::string, std::string>& coverage, const std::string& target);

// "INV-X/property/<8 hex>" from the shrunk op kinds, so one bug shape keeps one name.
std::string failure_signature(const std::string& invariant, const std::string& property, const Scenario& shrunk);

}  // namespace tdxhp::engine
