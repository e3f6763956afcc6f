// tdxhp_detect: the kill matrix of `tdxhp mutants`, with the default generator or bench/'s
// uniform yardstick, as JSON on stdout (issue 16, "time to detect"). bench/run_bench.py runs
// it per seed and generator and takes the medians.
//
//   tdxhp_detect --generator default|uniform --seed N --seconds-per-mutant S [--clean-seconds C]
//                [--mutant MUT-X,...] [--fixtures DIR] [--out DIR]
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <sstream>
#include <string>

#include "bench/uniform_gen.h"
#include "runners/engine/mutants.h"
#include "runners/engine/report.h"

namespace {

[[noreturn]] void usage(const std::string& why) {
  std::cerr << "tdxhp_detect: " << why
            << "\nusage: tdxhp_detect --generator default|uniform --seed N --seconds-per-mutant S"
               " [--clean-seconds C] [--mutant MUT-X,...] [--fixtures DIR] [--out DIR]\n";
  std::exit(2);
}

double number(const char* flag, const char* v) {
  char* end = nullptr;
  const double d = std::strtod(v, &end);
  if (!*v || *end || d < 0) usage(std::string(flag) + ": not a non-negative number: \"" + v + "\"");
  return d;
}

}  // namespace

int main(int argc, char** argv) {
  tdxhp::engine::MutantOptions opt;
  opt.clean_seconds = 1;
  bool have_generator = false;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (i + 1 >= argc) usage(a + ": needs a value");
    const char* v = argv[++i];
    if (a == "--generator") {
      if (std::strcmp(v, "uniform") == 0)
        opt.ops_generator = tdxhp::bench::uniform_ops;
      else if (std::strcmp(v, "default") != 0)
        usage(std::string("--generator: \"") + v + "\" is neither default nor uniform");
      have_generator = true;
    } else if (a == "--seed") {
      opt.seed = static_cast<uint64_t>(number("--seed", v));
    } else if (a == "--seconds-per-mutant") {
      opt.seconds_per_mutant = number("--seconds-per-mutant", v);
    } else if (a == "--clean-seconds") {
      opt.clean_seconds = number("--clean-seconds", v);
    } else if (a == "--mutant") {
      std::stringstream ids(v);
      for (std::string id; std::getline(ids, id, ',');) opt.only.push_back(id);
    } else if (a == "--fixtures") {
      opt.fixtures_dir = v;
    } else if (a == "--out") {
      opt.out_dir = v;
    } else {
      usage("unknown option " + a);
    }
  }
  if (!have_generator) usage("--generator is required");
  std::ostringstream log;  // the per-kill notes go into the JSON's "log"
  try {
    tdxhp::engine::MutantMatrix m = tdxhp::engine::run_mutants(opt, log);
    nlohmann::json j = tdxhp::engine::to_json(m);
    j["log"] = log.str();
    std::cout << j.dump(1) << "\n";
  } catch (const std::invalid_argument& e) {
    usage(e.what());
  }
  return 0;
}
