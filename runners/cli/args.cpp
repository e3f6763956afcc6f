#include "runners/cli/args.h"

#include <algorithm>
#include <cstdlib>
#include <optional>
#include <set>

#include "domain/describe.h"

namespace tdxhp::cli {

namespace {
// At most 40 bytes of it, control and non-ASCII bytes as \xNN.
std::string quoted(const std::string& v) {
  static const char* digits = "0123456789abcdef";
  std::string out = "\"";
  for (size_t i = 0; i < v.size() && i < 40; ++i) {
    const auto ch = static_cast<unsigned char>(v[i]);
    if (ch >= 0x20 && ch < 0x7f) out += static_cast<char>(ch);
    else out += std::string("\\x") + digits[ch >> 4] + digits[ch & 15];
  }
  return out + (v.size() > 40 ? "...\"" : "\"");
}

// A budget in seconds: plain decimal (no hex, no inf/nan, no exponent), 0.01 s to a week.
double seconds_of(const std::string& flag, const std::string& v) {
  const bool plain = !v.empty() && v.find_first_not_of("0123456789.") == std::string::npos &&
                     v.find('.') == v.rfind('.') && v.front() != '.' && v.back() != '.';
  const double d = plain ? std::strtod(v.c_str(), nullptr) : 0;
  if (!plain || d < 0.01 || d > kMaxBudgetSeconds)
    throw UsageError(flag + ": expected seconds from 0.01 to " + std::to_string(static_cast<int>(kMaxBudgetSeconds)) +
                     " (a week), as a plain decimal, got " + quoted(v));
  return d;
}
int positive_int(const std::string& flag, const std::string& v) {
  const std::optional<uint64_t> n = v.rfind("0x", 0) == 0 ? std::nullopt : parse_u64(v);
  if (!n || *n == 0 || *n > 100000000)
    throw UsageError(flag + ": expected a whole number from 1 to 100000000, got " + quoted(v));
  return static_cast<int>(*n);
}
uint64_t seed_of(const std::string& v) {
  if (auto n = parse_u64(v)) return *n;
  throw UsageError("--seed: expected a whole number (decimal or 0x hex, at most 2^64-1), got " + quoted(v));
}
// A comma list of ids: no empty item, no id twice.
void split_into(std::vector<std::string>& out, const std::string& flag, const std::string& v) {
  size_t s = 0;
  while (s <= v.size()) {
    size_t e = v.find(',', s);
    if (e == std::string::npos) e = v.size();
    const std::string id = v.substr(s, e - s);
    if (id.empty()) throw UsageError(flag + ": empty id in " + quoted(v));
    if (std::find(out.begin(), out.end(), id) != out.end()) throw UsageError(flag + ": " + quoted(id) + " given twice");
    out.push_back(id);
    s = e + 1;
  }
}
}  // namespace

std::string usage() {
  return "usage: tdxhp <verb> [options]\n"
         "  run      [--target sim|kvm|kvm/<flavour>] [--property ID...] [--seconds N | --cases N] [--seed S]\n"
         "           [--mutant MUT-...] [--out DIR] [--json | --ktap] [--junit FILE] [--no-progress]\n"
         "  replay   CASE.json [--target T] [--mutant M|none] [--trace]\n"
         "  mutants  [--seconds-per-mutant N] [--clean-seconds N] [--repeat N] [--seed S] [--mutant M...]\n"
         "           [--fixtures DIR] [--out DIR] [--json]\n"
         "  caps     [--json]      what each target supports and which properties can run\n"
         "  list     [--json]      properties, invariants, mutants, scenarios\n"
         "  doctor   [--json]      check this host for the kvm flavours (ok/missing + fix); changes nothing;\n"
         "                         exit 0 when a kvm flavour is usable, 4 when none\n"
         "  vm       [args...]     boot a kernel under test in QEMU and run the suite inside (runners/vm)\n"
         "  export   --c CASE.json -o FILE [--flavour swprot|plain|tdx]   the case as a KVM-selftest-style C program\n"
         "  --version              tdxhp's version and the commit it was built from\n"
         "exit codes: 0 pass, 1 property failure, 2 usage or input error, 4 all skipped\n";
}

// export --c CASE.json -o FILE [--flavour swprot|plain|tdx]: its own small grammar (-o is the
// compilers' spelling, which kernel developers type).
static Args parse_export(Args a, int argc, char** argv) {
  for (int i = 2; i < argc; ++i) {
    const std::string arg = argv[i];
    auto take = [&]() -> std::string {
      if (i + 1 >= argc) throw UsageError("export: " + arg + ": missing value");
      return argv[++i];
    };
    if (arg == "--help" || arg == "-h") {
      a.verb = "help";
      return a;
    }
    if (arg == "--c") a.export_c_case = take();
    else if (arg == "-o" || arg == "--out") a.out_dir = take();
    else if (arg == "--flavour") a.flavour = take();
    else throw UsageError("export: unexpected argument " + quoted(arg) + " (export --c CASE.json -o FILE)");
  }
  if (a.export_c_case.empty()) throw UsageError("export: --c CASE.json is required (the only export format is C)");
  if (a.out_dir.empty()) throw UsageError("export: -o FILE is required");
  if (!a.flavour.empty() && a.flavour != "swprot" && a.flavour != "plain" && a.flavour != "tdx")
    throw UsageError("export: --flavour: expected swprot, plain or tdx, got " + quoted(a.flavour));
  return a;
}

Args parse_args(int argc, char** argv) {
  Args a;
  if (argc < 2) throw UsageError("missing verb (run, replay, mutants, caps, list, doctor, vm, export)");
  a.verb = argv[1];
  static const std::set<std::string> verbs = {"run", "replay", "mutants", "caps", "list", "doctor", "vm", "help", "version",
                                             "export"};
  if (a.verb == "--help" || a.verb == "-h") a.verb = "help";
  if (a.verb == "--version" || a.verb == "-V") a.verb = "version";
  if (!verbs.count(a.verb))
    throw UsageError("unknown verb " + quoted(a.verb) + " (run, replay, mutants, caps, list, doctor, vm, export)");
  if (a.verb == "vm") {
    for (int i = 2; i < argc; ++i) a.passthrough.push_back(argv[i]);
    return a;
  }
  if (a.verb == "export") return parse_export(a, argc, argv);
  // Which flags each verb takes, so a misplaced one is named instead of ignored.
  static const std::set<std::string> run_flags = {"--target", "--property", "--seconds", "--cases", "--seed",
                                                  "--mutant", "--out", "--json", "--ktap", "--junit",
                                                  "--no-progress"};
  static const std::set<std::string> replay_flags = {"--target", "--mutant", "--trace"};
  static const std::set<std::string> mutants_flags = {"--seconds-per-mutant", "--clean-seconds", "--repeat", "--seed",
                                                      "--mutant", "--fixtures", "--out", "--json", "--no-progress"};
  static const std::set<std::string> info_flags = {"--json"};
  const std::set<std::string>& allowed = a.verb == "run"       ? run_flags
                                         : a.verb == "replay"  ? replay_flags
                                         : a.verb == "mutants" ? mutants_flags
                                                               : info_flags;
  for (int i = 2; i < argc; ++i) {
    std::string arg = argv[i];
    std::string value;
    bool has_inline = false;
    if (arg.rfind("--", 0) == 0) {
      if (auto eq = arg.find('='); eq != std::string::npos) {
        value = arg.substr(eq + 1);
        arg = arg.substr(0, eq);
        has_inline = true;
      }
    } else {
      a.positional.push_back(arg);
      continue;
    }
    if (arg == "--help" || arg == "-h") {
      a.verb = "help";
      return a;
    }
    if (!allowed.count(arg)) throw UsageError(a.verb + ": unknown option " + quoted(arg));
    auto take = [&]() -> std::string {
      if (has_inline) return value;
      if (i + 1 >= argc) throw UsageError(arg + ": missing value");
      return argv[++i];
    };
    if (arg == "--target") {
      a.target = take();
      if (a.target.empty()) throw UsageError("--target: empty target (sim, kvm, kvm/<flavour>)");
    }
    else if (arg == "--property") split_into(a.properties, arg, take());
    else if (arg == "--mutant") split_into(a.mutants, arg, take());
    else if (arg == "--seconds") a.seconds = seconds_of(arg, take());
    else if (arg == "--cases") a.cases = positive_int(arg, take());
    else if (arg == "--seed") a.seed = seed_of(take());
    else if (arg == "--out") a.out_dir = take();
    else if (arg == "--junit") a.junit_file = take();
    else if (arg == "--fixtures") a.fixtures_dir = take();
    else if (arg == "--seconds-per-mutant") a.seconds_per_mutant = seconds_of(arg, take());
    else if (arg == "--clean-seconds") a.clean_seconds = seconds_of(arg, take());
    else if (arg == "--repeat") a.repeat = positive_int(arg, take());
    else if (arg == "--json") a.json = true;
    else if (arg == "--ktap") a.ktap = true;
    else if (arg == "--trace") a.trace = true;
    else if (arg == "--no-progress") a.no_progress = true;
  }
  if (a.seconds && a.cases) throw UsageError("--seconds and --cases: give one budget, not both");
  if (a.json && a.ktap) throw UsageError("--json and --ktap: pick one output format for stdout");
  if (a.verb == "replay" && a.positional.size() != 1)
    throw UsageError("replay: expected exactly one CASE.json, got " + std::to_string(a.positional.size()));
  if (a.verb != "replay" && !a.positional.empty())
    throw UsageError(a.verb + ": unexpected argument " + quoted(a.positional.front()));
  if (a.target == "vm") throw UsageError("--target vm: use `tdxhp vm` (it boots QEMU and runs the kvm target inside)");
  return a;
}

}  // namespace tdxhp::cli
