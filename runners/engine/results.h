// What a run found, in the shape every output speaks (text, --json, KTAP, JUnit, results.json).
#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "domain/types.h"

namespace tdxhp::engine {

struct Failure {
  std::string invariant;
  int64_t step = 0;
  std::string message;       // describe(Violation): expected vs seen in domain words
  std::string case_file;     // where the shrunk case was saved
  std::string signature;     // INV-X/property/<hash of the shrunk op kinds>
  int shrunk_steps = 0;
  std::string reproduce;     // RapidCheck reproduce string
  int cases_to_failure = 0;  // cases generated up to and including the first failing one
  double seconds_to_failure = 0;
  double cpu_seconds_to_failure = 0;  // user + sys CPU of tdxhp and its workers
  Scenario shrunk;
  Violation violation;
};

struct PropertyResult {
  std::string id;
  std::vector<std::string> invariants;  // the property's INV-* the oracle could check here
  std::string status = "pass";  // pass | fail | skip
  std::string reason;           // why skipped
  int cases = 0;
  int64_t steps = 0;
  double seconds = 0;
  std::optional<Failure> failure;
  // The property's other INV-*: "not checkable on <target>: <why>".
  std::map<std::string, std::string> not_checkable{};
  Evidence evidence{};  // summed over the cases run
};

struct RunSummary {
  std::string verb = "run";
  std::string target = "sim";
  uint64_t seed = 0;
  std::vector<std::string> mutants;
  std::string verdict = "pass";  // pass | fail | skip
  bool interrupted = false;
  bool in_progress = false;  // a checkpoint written mid-run: the run has not ended (yet)
  std::string target_name;   // the target with its flavour, "kvm/swprot", as the target names itself
  std::vector<PropertyResult> properties;
  struct Totals {
    int cases = 0;
    int64_t steps = 0;
    double seconds = 0;
    double ops_per_sec = 0;        // steps per wall second
    double cpu_seconds = 0;        // user + sys of tdxhp and its workers (reaped or running)
    double steps_per_cpu_sec = 0;  // the throughput figure: wall time depends on the machine's load
    int failures = 0;
    int skipped = 0;
    // Where the properties' wall time went: generating and shrinking cases (RapidCheck and
    // tdxhp's generators; on a real target also saving each case, synced, before it runs),
    // inside the target's calls, and in the oracle and lockstep checks.
    double seconds_generating = 0, seconds_in_target = 0, seconds_checking = 0;
  } totals;
  std::map<std::string, int, std::less<>> scenarios_reached;  // looked up by string_view
  Evidence evidence{};  // summed over every property
};

// Exit code of a run (DESIGN.md/issue 4): 0 pass, 1 property failure, 4 all skipped, 130 interrupted.
int exit_code(const RunSummary&);

}  // namespace tdxhp::engine
