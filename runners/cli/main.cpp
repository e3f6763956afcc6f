// tdxhp: the command users drive (DESIGN.md "Running"): run, replay, mutants, caps, list, vm.
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>

#include "domain/case_file.h"
#include "domain/catalog.h"
#include "domain/describe.h"
#include "domain/provenance.h"
#include "properties/registry.h"
#include "runners/cli/args.h"
#include "runners/engine/engine.h"
#include "runners/engine/mutants.h"
#include "runners/engine/replay.h"
#include "runners/engine/report.h"
#include "runners/engine/targets.h"
#include "runners/export/export_c.h"
#include "runners/sim/sim_target.h"
#ifdef TDXHP_HAVE_KVM
#include "runners/kvm/doctor.h"
#include "runners/kvm/kvm_target.h"
#endif

namespace tdxhp::cli {
namespace {

std::atomic<bool> g_interrupt{false};

extern "C" void on_signal(int) { g_interrupt.store(true); }

// First SIGINT/SIGTERM: finish the current step, save the running case and partial results.
// A second one kills as usual (SA_RESETHAND).
void install_signal_handlers() {
  struct sigaction sa {};
  sa.sa_handler = on_signal;
  sa.sa_flags = SA_RESETHAND;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
}

std::string source_dir() {
  if (const char* e = std::getenv("TDXHP_SOURCE_DIR")) return e;
  return TDXHP_SOURCE_DIR_DEFAULT;
}

uint64_t fresh_seed() {
  return static_cast<uint64_t>(std::chrono::system_clock::now().time_since_epoch().count()) ^
         (static_cast<uint64_t>(::getpid()) << 32);
}

// --out and --junit are checked before anything runs: a run must not spend its budget and
// then fail to write (new-user-and-bad-input.md D7). The probes are removed again.
void check_writable(const std::string& flag, const std::string& dir) {
  namespace fs = std::filesystem;
  std::error_code ec;
  if (fs::exists(dir, ec) && !fs::is_directory(dir, ec))
    throw UsageError(flag + ": " + dir + " exists and is not a directory");
  fs::create_directories(dir, ec);
  if (ec) throw UsageError(flag + ": cannot create " + dir + ": " + ec.message());
  const std::string probe = (fs::path(dir) / ".tdxhp-write-probe").string();
  if (!std::ofstream(probe)) throw UsageError(flag + ": cannot write into " + dir);
  fs::remove(probe, ec);
}
void check_outputs(const Args& a) {
  if (!a.out_dir.empty()) check_writable("--out", a.out_dir);
  if (!a.junit_file.empty()) {
    namespace fs = std::filesystem;
    std::error_code ec;
    if (fs::is_directory(a.junit_file, ec)) throw UsageError("--junit: " + a.junit_file + " is a directory");
    const fs::path parent = fs::path(a.junit_file).parent_path();
    if (!parent.empty() && !fs::is_directory(parent, ec))
      throw UsageError("--junit: directory " + parent.string() + " does not exist");
    check_writable("--junit", parent.empty() ? "." : parent.string());
  }
}

int cmd_run(const Args& a) {
  check_outputs(a);
  engine::RunOptions o;
  o.target = a.target.empty() ? "sim" : a.target;
  o.properties = a.properties;
  o.mutants = a.mutants;
  o.seconds = a.seconds;
  o.cases = a.cases;
  o.seed = a.seed ? *a.seed : fresh_seed();
  o.out_dir = a.out_dir;
  o.progress = !a.no_progress && !a.json && !a.ktap;
  o.quiet = a.json || a.ktap;
  o.interrupt = &g_interrupt;
  auto write_outputs = [&a](const engine::RunSummary& sum) {
    if (!a.out_dir.empty()) engine::write_result_files(a.out_dir, sum);
    if (!a.junit_file.empty()) engine::write_file_atomic(a.junit_file, engine::to_junit(sum));
  };
  o.checkpoint = write_outputs;  // a kill -9 keeps the last checkpoint, which says it is incomplete
  engine::RunSummary s;
  try {
    s = engine::run(o, std::cerr);
  } catch (const std::invalid_argument& e) {
    throw UsageError(e.what());
  }
  write_outputs(s);
  if (a.json)
    std::cout << engine::to_json(s).dump(2) << "\n";
  else if (a.ktap)
    std::cout << engine::to_ktap(s);
  else
    std::cout << engine::to_text(s);
  return engine::exit_code(s);
}

int cmd_replay(const Args& a) {
  const std::string& path = a.positional.front();
  CaseFile c;
  try {
    c = load_case(path);
  } catch (const CaseError& e) {
    std::cerr << "tdxhp replay: " << e.what() << "\n";
    return 2;
  }
  const std::string target = a.target.empty() ? c.target : a.target;
  std::vector<std::string> mutants = c.mutants;
  if (!a.mutants.empty()) {  // --mutant overrides the case's own list; "none" replays clean
    mutants.clear();
    for (auto& m : a.mutants)
      if (m != "none") mutants.push_back(m);
  }
  std::string why;
  auto t = engine::make_target(target, mutants, c.seed.value_or(0), &why);
  if (!t) throw UsageError(why);
  std::cout << "replay " << path << " on " << t->name();
  for (auto& m : mutants) std::cout << " +" << m;
  std::cout << "\n  config: " << describe(c.scenario.config) << "\n";
  if (c.violation) std::cout << "  recorded: " << describe(*c.violation) << "\n";
  engine::ReplayOptions ro;
  ro.trace = a.trace;
  ro.stop = &g_interrupt;
  const LockstepResult r = engine::replay_scenario(*t, c.scenario, ro, std::cout);
  if (!r.ran) {
    std::cout << "verdict: skip (" << r.not_run_reason << ")\n";
    return 4;
  }
  if (r.violation) {
    std::cout << "verdict: fail (" << r.violation->invariant << " at " << describe_step(r.violation->step) << ")\n";
    return 1;
  }
  if (r.interrupted || g_interrupt.load()) {  // never a pass: the case did not run to its end
    std::cout << "verdict: interrupted after " << r.steps << " of " << c.scenario.ops.size() << " step(s)\n";
    return 130;
  }
  std::cout << "verdict: pass (" << r.steps << " step(s))\n";
  return 0;
}

int cmd_mutants(const Args& a) {
  check_outputs(a);
  engine::MutantOptions o;
  o.seconds_per_mutant = a.seconds_per_mutant;
  o.clean_seconds = a.clean_seconds;
  o.seed = a.seed ? *a.seed : fresh_seed();
  o.repeats = a.repeat;
  o.only = a.mutants;
  o.out_dir = a.out_dir;
  o.fixtures_dir = a.fixtures_dir.empty() ? source_dir() + "/fixtures/cases" : a.fixtures_dir;
  o.progress = !a.no_progress && !a.json;
  o.interrupt = &g_interrupt;
  engine::MutantMatrix m;
  try {
    m = engine::run_mutants(o, std::cerr);
  } catch (const std::invalid_argument& e) {
    throw UsageError(e.what());
  }
  if (!a.out_dir.empty()) {
    std::filesystem::create_directories(a.out_dir);
    engine::write_file_atomic(a.out_dir + "/mutants.json", engine::to_json(m).dump(2) + "\n");
  }
  if (a.json)
    std::cout << engine::to_json(m).dump(2) << "\n";
  else
    std::cout << "seed " << o.seed << "\n" << engine::to_text(m);
  return engine::exit_code(m);
}

nlohmann::json caps_json(const std::string& name, const Caps& caps, const std::vector<std::string>& report) {
  nlohmann::json has = nlohmann::json::array(), missing = nlohmann::json::object(), props = nlohmann::json::array();
  for (Cap c : caps.has) has.push_back(std::string(tdxhp::name(c)));
  for (auto& [c, why] : caps.missing) missing[std::string(tdxhp::name(c))] = why;
  for (auto& p : properties()) {
    auto why = skip_reason(p, caps);
    props.push_back({{"id", p.id}, {"runs", !why}, {"reason", why.value_or("")}});
  }
  return {{"target", name}, {"available", true}, {"caps", has}, {"missing", missing}, {"properties", props},
          {"report", report}};
}

// `tdxhp doctor`: every check with what it read; a missing one with its fix. Reads only.
int cmd_doctor(const Args& a) {
#ifdef TDXHP_HAVE_KVM
  kvm::DoctorReport d = kvm::doctor();
  if (a.json) {
    nlohmann::json checks = nlohmann::json::array(), flavours = nlohmann::json::array();
    for (const auto& c : d.checks)
      checks.push_back({{"check", c.name}, {"ok", c.ok}, {"detail", c.detail}, {"fix", c.fix},
                        {"needed_for", c.needed_for}});
    for (const auto& f : d.flavours)
      flavours.push_back({{"flavour", f.name}, {"usable", f.absent.empty()}, {"reason", f.absent}});
    std::cout << nlohmann::json{{"checks", checks}, {"flavours", flavours}, {"usable", d.usable()}}.dump(2) << "\n";
  } else {
    for (const auto& c : d.checks) {
      std::cout << (c.ok ? "ok      " : "missing ") << c.name << ": " << c.detail << "\n";
      if (!c.ok) std::cout << "        needed for: " << c.needed_for << "\n        fix: " << c.fix << "\n";
    }
    for (const auto& f : d.flavours)
      std::cout << f.name << ": " << (f.absent.empty() ? "usable" : "not usable: " + f.absent) << "\n";
    std::cout << (d.usable() ? "verdict: a kvm flavour is usable\n" : "verdict: no kvm flavour is usable\n");
  }
  return d.usable() ? 0 : 4;
#else
  (void)a;
  std::cout << "kvm: not built into this tdxhp (configure with -DTDXHP_KVM=ON and a kernel tree)\n"
               "verdict: no kvm flavour is usable\n";
  return 4;
#endif
}

int cmd_caps(const Args& a) {
  nlohmann::json out = nlohmann::json::array();
  out.push_back(caps_json("sim", make_sim_target()->caps(), {"simulated host: every capability, MUT-* switches"}));
#ifdef TDXHP_HAVE_KVM
  kvm::Probe p = kvm::probe();
  if (p.flavour.empty()) {
    out.push_back({{"target", "kvm"}, {"available", false}, {"report", p.report}});
  } else {
    out.push_back(caps_json("kvm/" + p.flavour, p.caps, p.report));
  }
#else
  out.push_back({{"target", "kvm"},
                 {"available", false},
                 {"report", {"not built into this tdxhp (configure with -DTDXHP_KVM=ON and a kernel tree)"}}});
#endif
  const std::string vm_driver = source_dir() + "/runners/vm/tdxhp_vm.py";
  out.push_back({{"target", "vm"},
                 {"available", std::filesystem::exists(vm_driver)},
                 {"report", {std::filesystem::exists(vm_driver) ? "driver " + vm_driver + " (tdxhp vm)"
                                                                 : "driver " + vm_driver + " is missing"}}});
  if (a.json) {
    std::cout << out.dump(2) << "\n";
    return 0;
  }
  for (auto& t : out) {
    std::cout << t["target"].get<std::string>() << ": " << (t["available"].get<bool>() ? "available" : "not available")
              << "\n";
    for (auto& line : t["report"]) std::cout << "  " << line.get<std::string>() << "\n";
    if (t.contains("caps")) {
      std::cout << "  supports:";
      for (auto& c : t["caps"]) std::cout << " " << c.get<std::string>();
      std::cout << "\n";
      for (auto& [c, why] : t["missing"].items()) std::cout << "  lacks " << c << ": " << why.get<std::string>() << "\n";
      for (auto& p : t["properties"])
        std::cout << "  " << (p["runs"].get<bool>() ? "runs  " : "skips ") << p["id"].get<std::string>()
                  << (p["runs"].get<bool>() ? "" : "  (" + p["reason"].get<std::string>() + ")") << "\n";
    }
  }
  return 0;
}

int cmd_list(const Args& a) {
  nlohmann::json j;
  for (auto& p : properties()) {
    nlohmann::json needs = nlohmann::json::array();
    for (Cap c : p.needs_all) needs.push_back(std::string(name(c)));
    nlohmann::json any = nlohmann::json::array();
    for (Cap c : p.needs_any) any.push_back(std::string(name(c)));
    j["properties"].push_back({{"id", p.id}, {"summary", p.summary}, {"invariants", p.invariants}, {"needs", needs},
                               {"needs_any", any}});
  }
  for (auto& i : invariants())
    j["invariants"].push_back({{"id", i.id}, {"summary", i.summary}, {"source", i.source}});
  for (auto& m : mutants())
    j["mutants"].push_back({{"id", m.id}, {"behaviour", m.behaviour}, {"caught_by", m.caught_by}, {"source", m.source}});
  for (auto& s : scenarios())
    j["scenarios"].push_back({{"id", s.id}, {"summary", s.summary}, {"source", s.source}});
  if (a.json) {
    std::cout << j.dump(2) << "\n";
    return 0;
  }
  std::cout << "properties:\n";
  for (auto& p : properties()) {
    std::cout << "  " << p.id << ": " << p.summary << "\n    checks";
    for (auto& i : p.invariants) std::cout << " " << i;
    std::cout << "\n";
  }
  std::cout << "invariants:\n";
  for (auto& i : invariants()) std::cout << "  " << i.id << ": " << i.summary << " (" << i.source << ")\n";
  std::cout << "mutants (sim):\n";
  for (auto& m : mutants()) std::cout << "  " << m.id << ": " << m.behaviour << " [" << m.caught_by << "]\n";
  std::cout << "scenarios:\n";
  for (auto& s : scenarios()) std::cout << "  " << s.id << ": " << s.summary << " (" << s.source << ")\n";
  return 0;
}

// export --c: the flavour asked for, else the first of swprot, plain, tdx that can express the case.
int cmd_export(const Args& a) {
  CaseFile c;
  try {
    c = load_case(a.export_c_case);
  } catch (const CaseError& e) {
    std::cerr << "tdxhp export: " << e.what() << "\n";
    return 2;
  }
  using exporter::Flavour;
  const Flavour f = a.flavour == "plain"    ? Flavour::Plain
                    : a.flavour == "swprot" ? Flavour::SwProt
                    : a.flavour == "tdx"    ? Flavour::Tdx
                                            : exporter::default_flavour(c);
  if (const std::string why = exporter::refusal(c, f); !why.empty()) {
    std::cerr << "tdxhp export: " << a.export_c_case << ": " << why << "\n";
    return 2;
  }
  std::string text;
  try {
    text = exporter::export_c(c, f, a.export_c_case);
  } catch (const std::exception& e) {
    std::cerr << "tdxhp export: " << a.export_c_case << ": " << e.what() << "\n";
    return 2;
  }
  engine::write_file_atomic(a.out_dir, text);
  std::cout << "wrote " << a.out_dir << " (" << exporter::flavour_name(f) << ", " << c.scenario.ops.size() << " steps); "
            << (f == Flavour::Tdx ? "it builds in the intel/tdx tree's tools/testing/selftests/kvm (see its header)"
                                  : "build it with: make repro CASE=" + a.export_c_case)
            << "\n";
  return 0;
}

int cmd_vm(const Args& a) {
  const std::string driver = source_dir() + "/runners/vm/tdxhp_vm.py";
  if (!std::filesystem::exists(driver)) {
    std::cerr << "tdxhp vm: the vm target's driver " << driver
              << " is missing (runners/vm is not in this tree; set TDXHP_SOURCE_DIR to a checkout that has it)\n";
    return 2;
  }
  std::vector<std::string> args = {"python3", driver};
  args.insert(args.end(), a.passthrough.begin(), a.passthrough.end());
  std::vector<char*> argv;
  for (auto& s : args) argv.push_back(s.data());
  argv.push_back(nullptr);
  ::execvp("python3", argv.data());
  std::cerr << "tdxhp vm: cannot exec python3: " << std::strerror(errno) << "\n";
  return 2;
}

}  // namespace
}  // namespace tdxhp::cli

namespace tdxhp::cli {
namespace {
int dispatch(int argc, char** argv);
}
}  // namespace tdxhp::cli

int main(int argc, char** argv) {
  const int code = tdxhp::cli::dispatch(argc, argv);
  // Skip RapidCheck's exit banner: it merges every property's reproduce string into one that
  // misleads; each failure above printed its own, and the case files hold them.
  std::cout.flush();
  std::cerr.flush();
  std::fflush(nullptr);
  ::_exit(code);
}

namespace tdxhp::cli {
namespace {
int dispatch(int argc, char** argv) {
  try {
    Args a = parse_args(argc, argv);
    install_signal_handlers();
    if (a.verb == "help") {
      std::cout << usage();
      return 0;
    }
    if (a.verb == "version") {
      std::cout << "tdxhp " << tdxhp_version() << " (commit " << tdxhp_commit() << ")\n";
      return 0;
    }
    if (a.verb == "run") return cmd_run(a);
    if (a.verb == "replay") return cmd_replay(a);
    if (a.verb == "mutants") return cmd_mutants(a);
    if (a.verb == "caps") return cmd_caps(a);
    if (a.verb == "doctor") return cmd_doctor(a);
    if (a.verb == "list") return cmd_list(a);
    if (a.verb == "vm") return cmd_vm(a);
    if (a.verb == "export") return cmd_export(a);
  } catch (const UsageError& e) {
    std::cerr << "tdxhp: " << e.what() << "\n" << usage();
    return 2;
  } catch (const tdxhp::CaseError& e) {
    std::cerr << "tdxhp: " << e.what() << "\n";
    return 2;
  } catch (const std::exception& e) {
    std::cerr << "tdxhp: internal error: " << e.what() << "\n";
    return 3;
  }
  return 2;
}
}  // namespace
}  // namespace tdxhp::cli
