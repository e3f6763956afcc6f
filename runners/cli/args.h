// Command-line words of `tdxhp` (DESIGN.md "Running"). Bad input is a UsageError whose message
// names the argument; main turns it into exit code 2.
#pragma once

#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

namespace tdxhp::cli {

constexpr double kMaxBudgetSeconds = 7 * 24 * 3600;  // the longest --seconds tdxhp takes

class UsageError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct Args {
  std::string verb;
  std::vector<std::string> positional;
  std::string target;                    // empty: verb default
  std::vector<std::string> properties;
  std::vector<std::string> mutants;
  std::optional<double> seconds;
  std::optional<int> cases;
  std::optional<uint64_t> seed;
  std::string out_dir;
  bool json = false, ktap = false, trace = false, no_progress = false;
  std::string junit_file;
  double seconds_per_mutant = 5;
  double clean_seconds = 10;
  int repeat = 1;
  std::string fixtures_dir;
  std::vector<std::string> passthrough;  // vm: everything after the verb
  std::string export_c_case;             // export --c CASE.json
  std::string flavour;                   // export --flavour swprot|plain
};

Args parse_args(int argc, char** argv);
std::string usage();

}  // namespace tdxhp::cli
