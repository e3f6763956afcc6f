#include "runners/engine/engine.h"

#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <climits>
#include <cstdlib>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iomanip>
#include <ostream>
#include <set>
#include <sstream>
#include <stdexcept>

#include "domain/case_file.h"
#include "domain/describe.h"
#include "generators/classify.h"
#include "properties/property.h"
#include "runners/engine/rc_reproduce.h"
#include "runners/engine/replay.h"
#include "runners/engine/targets.h"

namespace tdxhp::engine {

namespace {
using Clock = std::chrono::steady_clock;
double since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

// CPU (user + sys) of the children still running: the kvm worker that owns a reused VM lives
// across cases, and getrusage counts a child only once it is reaped.
double live_children_cpu() {
  static const double tick = static_cast<double>(sysconf(_SC_CLK_TCK));
  double s = 0;
  std::error_code ec;
  for (const auto& task : std::filesystem::directory_iterator("/proc/self/task", ec)) {
    std::ifstream children(task.path() / "children");
    for (long pid; children >> pid;) {
      std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
      std::string line;
      std::getline(stat, line);
      const size_t comm_end = line.rfind(')');  // the command name may hold spaces
      if (comm_end == std::string::npos) continue;
      std::istringstream fields(line.substr(comm_end + 2));
      std::string skip;
      for (int i = 3; i < 14; ++i) fields >> skip;  // state .. cmajflt: fields 3 to 13
      unsigned long long utime = 0, stime = 0;
      if (fields >> utime >> stime && tick > 0) s += static_cast<double>(utime + stime) / tick;
    }
  }
  return s;
}

}  // namespace

double process_cpu_seconds() {
  double s = live_children_cpu();
  for (int who : {RUSAGE_SELF, RUSAGE_CHILDREN}) {
    rusage u{};
    if (getrusage(who, &u) != 0) continue;
    s += u.ru_utime.tv_sec + u.ru_stime.tv_sec + (u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e6;
  }
  return s;
}

namespace {

uint64_t mix(uint64_t x) {  // splitmix64: independent batch seeds from one run seed
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

// Runs one batch. RapidCheck's own configuration is read only when the user sets RC_PARAMS
// (e.g. reproduce=...): reading it prints "Using configuration: seed=...", a seed tdxhp
// never uses since it seeds every batch itself.
rc::detail::TestResult check_batch(const rc::detail::Property& property, const rc::detail::TestMetadata& meta,
                                   const rc::detail::TestParams& params) {
  if (std::getenv("RC_PARAMS")) return rc::detail::checkProperty(property, meta, params);
  struct Silent : rc::detail::TestListener {
    void onTestCaseFinished(const rc::detail::CaseDescription&) override {}
    void onShrinkTried(const rc::detail::CaseDescription&, bool) override {}
    void onTestFinished(const rc::detail::TestMetadata&, const rc::detail::TestResult&) override {}
  } silent;
  return rc::detail::checkProperty(property, meta, params, silent, {});
}

constexpr int kBatchCases = 10;         // interleaving grain between properties
constexpr double kShrinkSeconds = 60;   // shrinking longer than this keeps the best so far
// Result files are rewritten after a batch that found a failure, and otherwise at most this
// often: a kill -9 loses no failure and at most a second of counts, without paying three
// synced file writes per batch (a kvm batch takes tens of ms since VMs are reused; the case
// running on a real target is saved on its own, before it starts).
constexpr double kCheckpointSeconds = 1.0;

std::string file_stem(const std::string& signature) {
  std::string s = signature;
  std::replace(s.begin(), s.end(), '/', '_');
  return s;
}

class Progress {
 public:
  Progress(bool on, Clock::time_point start) : on_(on && ::isatty(2)), start_(start) {}
  void tick(const std::string& prop, int cases, int64_t steps, int failures) {
    if (!on_) return;
    const double t = since(start_);
    if (t < 2.0 || t - last_ < 0.5) return;  // only runs longer than a few seconds
    last_ = t;
    std::fprintf(stderr, "\r[%6.1fs] %-20s cases %6d  steps %8lld  %8.0f ops/s  failures %d   ", t, prop.c_str(),
                 cases, static_cast<long long>(steps), steps / std::max(t, 1e-9), failures);
    shown_ = true;
  }
  ~Progress() {
    if (shown_) std::fprintf(stderr, "\n");
  }

 private:
  bool on_;
  Clock::time_point start_;
  double last_ = 0;
  bool shown_ = false;
};

struct PropState {
  const PropertyInfo* info;
  size_t index;
  PropertyResult res;
  gen::GenProfile profile;
  int batch = 0;
  bool done = false;
  // Per INV-* of the property: checkable in some case run (""), or why not in the last one.
  std::map<std::string, std::string> coverage{};
  std::set<const std::map<std::string, std::string>*> merged_coverage{};
  double lockstep_seconds = 0, target_seconds = 0;  // every case run, shrinking included
};

}  // namespace

int exit_code(const RunSummary& s) {
  if (s.verdict == "fail") return 1;
  if (s.interrupted) return 130;
  if (s.verdict == "skip") return 4;
  return 0;
}

std::string failure_signature(const std::string& invariant, const std::string& property, const Scenario& shrunk) {
  uint32_t h = 2166136261u;  // FNV-1a over the op kinds: stable across runs and seeds
  for (auto& op : shrunk.ops) {
    for (char c : op_kind(op)) h = (h ^ static_cast<uint8_t>(c)) * 16777619u;
    h = (h ^ ',') * 16777619u;
  }
  char buf[16];
  std::snprintf(buf, sizeof buf, "%08x", h);
  return invariant + "/" + property + "/" + buf;
}

void settle(PropertyResult& res, const PropertyInfo& info, const Caps& caps,
            const std::map<std::string, std::string>& coverage, const std::string& target) {
  if (res.cases == 0) return;  // nothing ran: the status says so, the list stays the claim
  // Only INV-* some case could check are claimed; the rest say why not.
  res.invariants.clear();
  for (const std::string& inv : info.invariants) {
    auto it = coverage.find(inv);
    if (it != coverage.end() && it->second.empty())
      res.invariants.push_back(inv);
    else
      res.not_checkable[inv] =
          "not checkable on " + target + ": " + (it == coverage.end() ? "unknown to the oracle" : it->second);
  }
  if (res.status == "pass" && res.invariants.empty()) {
    res.status = "skip";
    res.reason = "none of its invariants is checkable on " + target;
  }
  // A leaf property on a target claiming leaf levels that saw no leaf at all checked nothing:
  // the observer is broken or off, which is a failure, not a pass.
  const auto& need = info.needs_all;
  if (res.status != "pass" || !caps(Cap::LeafLevels) ||
      std::find(need.begin(), need.end(), Cap::LeafLevels) == need.end() || res.evidence.steps_with_leaves > 0)
    return;
  Failure f;
  f.invariant = kObserverFault;
  f.violation = Violation{kObserverFault, kTeardownStep, {},
                          "the leaf observer of " + target + " reports the leaves the cases map",
                          "observer saw nothing: 0 steps with a leaf in " + std::to_string(res.cases) + " case(s), " +
                              std::to_string(res.steps) + " step(s)"};
  f.step = f.violation.step;
  f.message = describe(f.violation);
  f.signature = std::string(kObserverFault) + "/" + info.id + "/no-leaves";
  f.cases_to_failure = res.cases;
  res.status = "fail";
  res.failure = f;
}

namespace {

// The run's summary from the properties' state so far. States are copied, so a checkpoint
// mid-run leaves them as they are; the final call is the same code, so both read alike.
RunSummary summarize(RunSummary sum, const std::vector<PropState>& states, const Caps& caps,
                     const std::string& target_name, double seconds, double cpu_seconds, bool in_progress) {
  sum.in_progress = in_progress;
  sum.target_name = target_name;
  sum.properties.clear();
  sum.evidence = {};
  sum.totals = {};
  int ran = 0;
  for (const PropState& st : states) {
    PropertyResult res = st.res;
    if (res.status == "pass" && res.cases == 0) {  // never a pass without a case run
      res.status = "skip";
      res.reason = in_progress      ? "no case finished yet"
                   : sum.interrupted ? "interrupted before any case ran"
                                     : "no case ran within the budget";
    }
    settle(res, *st.info, caps, st.coverage, target_name);
    sum.evidence += res.evidence;
    auto& t = sum.totals;
    t.cases += res.cases;
    t.steps += res.steps;
    if (res.status == "skip") ++t.skipped;
    if (res.status == "fail") ++t.failures;
    if (res.status != "skip") ++ran;
    t.seconds_generating += std::max(0.0, res.seconds - st.lockstep_seconds);
    t.seconds_in_target += st.target_seconds;
    t.seconds_checking += st.lockstep_seconds - st.target_seconds;
    sum.properties.push_back(std::move(res));
  }
  sum.totals.seconds = seconds;
  sum.totals.ops_per_sec = seconds > 0 ? sum.totals.steps / seconds : 0;
  sum.totals.cpu_seconds = cpu_seconds;
  sum.totals.steps_per_cpu_sec = cpu_seconds > 0 ? sum.totals.steps / cpu_seconds : 0;
  sum.verdict = sum.totals.failures ? "fail" : in_progress ? "incomplete" : ran == 0 ? "skip" : "pass";
  return sum;
}

}  // namespace

RunSummary run(const RunOptions& opt, std::ostream& log) {
  const auto start = Clock::now();
  const double cpu_start = process_cpu_seconds();
  RunSummary sum;
  sum.target = opt.target;
  sum.seed = opt.seed;
  sum.mutants = opt.mutants;

  std::string why;
  auto probe = make_target(opt.target, opt.mutants, opt.seed, &why);
  if (!probe) throw std::invalid_argument(why);
  const Caps caps = probe->caps();
  const std::string target_name = probe->name();
  probe.reset();

  std::vector<PropState> states;
  if (opt.properties.empty()) {
    for (size_t i = 0; i < properties().size(); ++i) states.push_back({&properties()[i], i, {}, {}});
  } else {
    for (auto& id : opt.properties) {
      const PropertyInfo* p = find_property(id);
      if (!p) throw std::invalid_argument("--property: unknown property \"" + id + "\" (tdxhp list shows them)");
      states.push_back({p, static_cast<size_t>(p - properties().data()), {}, {}});
    }
  }
  for (auto& st : states) {
    st.res.id = st.info->id;
    st.res.invariants = st.info->invariants;
    st.profile = profile_for(*st.info, caps);
    st.profile.ops_generator = opt.ops_generator;
    if (auto r = skip_reason(*st.info, caps)) {
      st.res.status = "skip";
      st.res.reason = *r;
      st.done = true;
    }
  }

  const std::string out_dir = opt.out_dir.empty() ? "tdxhp-out" : opt.out_dir;
  const std::string cases_dir = out_dir + "/cases";
  const int case_budget = opt.cases ? *opt.cases : opt.seconds ? INT_MAX : kDefaultCases;
  auto time_over = [&] { return opt.seconds && since(start) >= *opt.seconds; };
  auto interrupted = [&] { return opt.interrupt && opt.interrupt->load(); };
  Progress progress(opt.progress, start);
  int failures = 0, total_cases = 0;
  int64_t total_steps = 0;
  bool stop_all = false;
  double last_checkpoint = 0;

  // TDXHP_TEST_SHRINK_DELAY_MS (tests only): each shrink step sleeps this long, so a test can
  // kill tdxhp while it shrinks (the unshrunk case must be on disk by then).
  const char* delay_env = std::getenv("TDXHP_TEST_SHRINK_DELAY_MS");
  const long shrink_delay_ms = delay_env ? std::clamp(std::strtol(delay_env, nullptr, 10), 0L, 1000L) : 0;

  auto run_batch = [&](PropState& st) {
    const int n = std::min(kBatchCases, case_budget - st.res.cases);
    bool failure_seen = false;
    Clock::time_point fail_time;
    int batch_cases = 0;
    std::optional<Scenario> open_case, last_fail, interrupted_case;
    std::optional<Violation> last_violation;
    std::string discard_reason;
    std::string unshrunk;  // the first failing case, saved as found until the shrunk one replaces it
    // Every case file this run saves (pending, interrupted, unshrunk, shrunk) replays on its own.
    auto case_of = [&](const Scenario& sc, const std::string& id, const std::string& description) {
      CaseFile c;
      c.id = id;
      c.description = description;
      c.scenario = sc;
      c.seed = opt.seed;
      c.target = opt.target;
      c.mutants = opt.mutants;
      c.property = st.info->id;
      return c;
    };
    auto failing_case = [&](const Scenario& sc, const Violation& v, const std::string& id,
                            const std::string& description) {
      CaseFile c = case_of(sc, id, description);
      c.violation = v;
      for (std::string_view shape : gen::scenario_shapes(sc)) c.scenarios.emplace_back(shape);
      return c;
    };
    PendingCaseFile pending(cases_dir + "/pending-" + st.info->id + ".json");

    PropertyRun pr;
    pr.info = st.info;
    pr.profile = st.profile;
    const uint64_t target_seed = mix(opt.seed ^ 0x5157);
    pr.make_target = [&opt, target_seed] {
      std::string w;
      auto t = make_target(opt.target, opt.mutants, target_seed, &w);
      if (!t) throw std::runtime_error(w);
      return t;
    };
    if (opt.differential)
      pr.make_reference = [&opt, target_seed] {
        std::string w;
        auto t = make_target(opt.target, {}, target_seed, &w);
        if (!t) throw std::runtime_error(w);
        return t;
      };
    pr.hooks.before = [&](const Scenario& s) {
      if (open_case) last_fail = *open_case;  // the previous case never finished: it threw (a crash)
      open_case = s;
      if (is_real_target(opt.target)) {  // nothing lost if the host dies mid-case
        pending.save(case_of(s, "pending-" + st.info->id,
                            "running when tdxhp stopped: the target crashed, hung or was interrupted"));
      }
    };
    pr.hooks.after = [&](const Scenario& s, const LockstepResult& r) {
      open_case.reset();
      st.lockstep_seconds += r.seconds;
      st.target_seconds += r.target_seconds;
      if (r.interrupted) interrupted_case = s;
      if (!failure_seen) {
        if (r.ran) {
          ++batch_cases;
          ++total_cases;
          st.res.steps += r.steps;
          total_steps += r.steps;
          st.res.evidence += r.evidence;
          if (r.coverage && st.merged_coverage.insert(r.coverage).second)  // each distinct one once
            for (auto& [inv, why] : *r.coverage)
              if (auto [it, fresh] = st.coverage.emplace(inv, why); !fresh && !it->second.empty()) it->second = why;
          for (std::string_view shape : gen::scenario_shapes(s)) {
            auto it = sum.scenarios_reached.find(shape);
            if (it == sum.scenarios_reached.end()) it = sum.scenarios_reached.emplace(shape, 0).first;
            ++it->second;
          }
        } else {
          discard_reason = r.not_run_reason;
        }
        if (r.violation) {
          failure_seen = true;
          fail_time = Clock::now();
          st.res.cases += batch_cases;
          batch_cases = 0;
          Failure f;
          f.cases_to_failure = opt.stop_at_first_failure ? total_cases : st.res.cases;
          f.seconds_to_failure = since(start);
          f.cpu_seconds_to_failure = process_cpu_seconds() - cpu_start;
          st.res.failure = f;
          // Shrinking may take a minute; a kill -9 meanwhile must not lose the finding.
          unshrunk = cases_dir + "/" + file_stem(r.violation->invariant + "/" + st.info->id + "/unshrunk") + ".json";
          std::filesystem::create_directories(cases_dir);
          save_case(unshrunk, failing_case(s, *r.violation, "unshrunk",
                                           "failed before shrinking; tdxhp stopped while shrinking"));
        }
      }
      if (r.violation) {
        last_fail = s;
        last_violation = *r.violation;
      }
      if (failure_seen && shrink_delay_ms > 0) ::usleep(static_cast<useconds_t>(shrink_delay_ms) * 1000);
      progress.tick(st.info->id, total_cases, total_steps, failures + (failure_seen ? 1 : 0));
    };
    pr.interrupt = opt.interrupt;
    pr.budget_over = [&] {
      if (failure_seen) return since(fail_time) > kShrinkSeconds;
      return time_over() || interrupted();
    };

    if (is_real_target(opt.target)) std::filesystem::create_directories(cases_dir);
    rc::detail::TestParams params;
    params.seed = mix(opt.seed ^ mix(st.index + 1) ^ mix(static_cast<uint64_t>(st.batch) << 20));
    params.maxSuccess = n;
    params.maxSize = 100;
    params.maxDiscardRatio = 10;
    rc::detail::TestMetadata meta;
    meta.id = st.info->id;
    meta.description = st.info->summary;
    const auto t0 = Clock::now();
    const rc::detail::TestResult result = check_batch(rc::detail::toProperty(rc_property(pr)), meta, params);
    st.res.seconds += since(t0);
    ++st.batch;
    if (!open_case) pending.remove();
    if (!failure_seen) st.res.cases += batch_cases;

    if (interrupted() && open_case) interrupted_case = open_case;
    if (interrupted_case) {  // keep what was running when SIGINT/SIGTERM came
      std::filesystem::create_directories(cases_dir);
      const std::string id = "interrupted-" + st.info->id;
      save_case(cases_dir + "/" + id + ".json", case_of(*interrupted_case, id, "was running when tdxhp was interrupted"));
    }

    rc::detail::FailureResult fr;
    if (result.match(fr)) {
      const bool crashed = open_case.has_value() || !last_violation;  // the last failing run threw
      if (open_case) last_fail = *open_case;
      Failure f = st.res.failure.value_or(Failure{});
      if (crashed) {
        // The target threw instead of answering: that is a crash, reported as such.
        last_violation = Violation{"crash", -1, {}, "the target answers every op", fr.description};
      }
      if (!st.res.failure) {
        f.cases_to_failure = opt.stop_at_first_failure ? total_cases : st.res.cases;
        f.seconds_to_failure = since(start);
        f.cpu_seconds_to_failure = process_cpu_seconds() - cpu_start;
      }
      f.shrunk = last_fail.value_or(Scenario{});
      f.violation = *last_violation;
      f.invariant = f.violation.invariant;
      f.step = f.violation.step;
      f.message = describe(f.violation);
      f.shrunk_steps = static_cast<int>(f.shrunk.ops.size());
      f.reproduce = rc::detail::reproduceMapToString({{st.info->id, fr.reproduce}});
      f.signature = failure_signature(f.invariant, st.info->id, f.shrunk);
      std::filesystem::create_directories(cases_dir);
      f.case_file = cases_dir + "/" + file_stem(f.signature) + ".json";
      CaseFile c = failing_case(f.shrunk, f.violation, file_stem(f.signature),
                                "found by tdxhp run --property " + st.info->id + ": " + f.message);
      c.reproduce = f.reproduce;
      save_case(f.case_file, c);
      if (!unshrunk.empty()) std::filesystem::remove(unshrunk);
      st.res.status = "fail";
      st.res.failure = f;
      st.done = true;
      ++failures;
      if (!opt.quiet) {
        log << "FAIL " << st.info->id << ": " << f.invariant << " at " << describe_step(f.step) << " after "
            << f.cases_to_failure << " case(s), " << std::fixed << std::setprecision(2) << f.seconds_to_failure
            << " s; shrunk to " << f.shrunk_steps << " step(s)\n";
        log << "  config: " << describe(f.shrunk.config) << "\n";
        std::string w;
        if (auto t = make_target(opt.target, opt.mutants, target_seed, &w)) {
          ReplayOptions ro;
          ro.invariants.insert(st.info->invariants.begin(), st.info->invariants.end());
          replay_scenario(*t, f.shrunk, ro, log);
        }
        log << "  case file: " << f.case_file << "\n";
        log << "  replay:    tdxhp replay " << f.case_file << "\n";
        log << "  reproduce: RC_PARAMS=\"reproduce=" << f.reproduce << "\"\n";
      }
      if (opt.stop_at_first_failure) stop_all = true;
      return;
    }
    rc::detail::GaveUpResult gu;
    if (result.match(gu) && st.res.cases == 0) {
      st.res.status = "skip";
      st.res.reason = discard_reason.empty() ? gu.description : discard_reason;
      st.done = true;
      return;
    }
    rc::detail::Error err;
    if (result.match(err)) throw std::runtime_error("RapidCheck: " + err.description);
    if (st.res.cases >= case_budget) st.done = true;
  };

  for (bool active = true; active && !stop_all;) {
    active = false;
    for (auto& st : states) {
      if (st.done || stop_all) continue;
      if (time_over() || interrupted()) break;
      const int failures_before = failures;
      run_batch(st);
      active = active || !st.done;
      if (opt.checkpoint &&
          (failures != failures_before || since(start) - last_checkpoint >= kCheckpointSeconds)) {
        last_checkpoint = since(start);
        opt.checkpoint(
            summarize(sum, states, caps, target_name, last_checkpoint, process_cpu_seconds() - cpu_start, /*in_progress=*/true));
      }
    }
    if (time_over() || interrupted()) break;
  }

  sum.interrupted = interrupted();
  return summarize(sum, states, caps, target_name, since(start), process_cpu_seconds() - cpu_start, /*in_progress=*/false);
}

}  // namespace tdxhp::engine
