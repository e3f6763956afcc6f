#include "runners/engine/report.h"

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iomanip>
#include <sstream>
#include <stdexcept>

#include "domain/case_file.h"
#include "domain/catalog.h"
#include "domain/provenance.h"

namespace tdxhp::engine {

using nlohmann::json;

namespace {
std::string fixed(double v, int prec = 2) {
  std::ostringstream os;
  os << std::fixed << std::setprecision(prec) << v;
  return os.str();
}
std::string xml_escape(const std::string& s) {
  std::string o;
  for (char c : s) {
    switch (c) {
      case '&': o += "&amp;"; break;
      case '<': o += "&lt;"; break;
      case '>': o += "&gt;"; break;
      case '"': o += "&quot;"; break;
      default: o += c;
    }
  }
  return o;
}
std::string one_line(std::string s) {
  for (char& c : s)
    if (c == '\n') c = ' ';
  return s;
}

// The target with its flavour as it named itself ("kvm/swprot"); the requested one before it ran.
const std::string& named_target(const RunSummary& s) { return s.target_name.empty() ? s.target : s.target_name; }

// What a checkpoint says until the run's final write replaces it; if it stays, tdxhp was killed.
std::string incomplete_note(const RunSummary& s) {
  return "incomplete: checkpoint after " + std::to_string(s.totals.cases) + " cases, " + fixed(s.totals.seconds, 1) +
         " s; the run had not ended (a file that stays like this means tdxhp was killed)";
}

// The evidence counters as name/value pairs, in one order for every output.
std::vector<std::pair<std::string, int64_t>> evidence_fields(const Evidence& e) {
  static const char* level[3] = {"4k", "2m", "1g"};
  std::vector<std::pair<std::string, int64_t>> v = {{"steps", e.steps}, {"steps_with_leaves", e.steps_with_leaves}};
  for (int root = 0; root < 2; ++root)
    for (int l = 0; l < 3; ++l)
      v.push_back({std::string(root ? "shared" : "private") + "_leaves_" + level[l], e.leaves[root][l]});
  v.push_back({"backing_windows", e.backing_windows});
  v.push_back({"reads_compared", e.reads_compared});
  v.push_back({"accepts_compared", e.accepts_compared});
  v.push_back({"kernel_lines", e.kernel_lines});
  return v;
}
json evidence_json(const Evidence& e) {
  json j = json::object();
  for (auto& [k, v] : evidence_fields(e)) j[k] = v;
  return j;
}
std::string evidence_text(const Evidence& e) {
  std::ostringstream os;
  const char* sep = "";
  for (auto& [k, v] : evidence_fields(e)) {
    os << sep << k << "=" << v;
    sep = " ";
  }
  return os.str();
}
}  // namespace

json to_json(const RunSummary& s) {
  json props = json::array();
  for (auto& p : s.properties) {
    json j = {{"id", p.id}, {"invariants", p.invariants}, {"status", p.status}, {"cases", p.cases},
              {"steps", p.steps}, {"seconds", p.seconds}};
    if (!p.reason.empty()) j["reason"] = p.reason;
    if (!p.not_checkable.empty()) j["not_checkable"] = p.not_checkable;
    j["evidence"] = evidence_json(p.evidence);
    if (p.failure && p.status == "fail") {
      auto& f = *p.failure;
      j["failure"] = {{"invariant", f.invariant}, {"step", f.step}, {"message", f.message},
                      {"case_file", f.case_file}, {"signature", f.signature}, {"shrunk_steps", f.shrunk_steps},
                      {"cases_to_failure", f.cases_to_failure}, {"seconds_to_failure", f.seconds_to_failure},
                      {"cpu_seconds_to_failure", f.cpu_seconds_to_failure}};
    }
    props.push_back(j);
  }
  json j = {{"tdxhp", 1},
            {"verb", s.verb},
            {"target", s.target},
            {"seed", s.seed},
            {"mutants", s.mutants},
            {"verdict", s.verdict},
            {"properties", props},
            {"totals",
             {{"cases", s.totals.cases}, {"steps", s.totals.steps}, {"seconds", s.totals.seconds},
              {"ops_per_sec", s.totals.ops_per_sec}, {"cpu_seconds", s.totals.cpu_seconds},
              {"steps_per_cpu_sec", s.totals.steps_per_cpu_sec}, {"failures", s.totals.failures},
              {"skipped", s.totals.skipped},
              {"time_split",
               {{"generating_seconds", s.totals.seconds_generating},
                {"target_seconds", s.totals.seconds_in_target},
                {"checking_seconds", s.totals.seconds_checking}}}}},
            {"scenarios_reached", s.scenarios_reached},
            {"evidence", evidence_json(s.evidence)},
            {"provenance", provenance_json(s)}};
  if (s.interrupted) j["interrupted"] = true;
  if (s.in_progress) j["in_progress"] = true;
  return j;
}

json provenance_json(const RunSummary& s) {
  const std::string& target = named_target(s);
  return {{"tdxhp_version", tdxhp_version()}, {"tdxhp_commit", tdxhp_commit()}, {"kernel", kernel_release()},
          {"target", target}, {"tdx_module", tdx_module_for(target)}};
}

json to_json(const MutantMatrix& m) {
  json rows = json::array();
  for (auto& r : m.rows) {
    json j = {{"id", r.id},
              {"killed", r.killed},
              {"invariant", r.invariant},
              {"outside_catalog", r.outside_catalog},
              {"property", r.property},
              {"cases", r.cases},
              {"seconds", r.seconds},
              {"cpu_seconds", r.cpu_seconds},
              {"median_seconds", median(r.kill_seconds)},
              {"shrunk_steps", r.shrunk_steps},
              {"fixture_steps", r.fixture_steps}};
    if (!r.case_file.empty()) j["case_file"] = r.case_file;
    rows.push_back(j);
  }
  json clean = to_json(m.clean);
  json j = {{"tdxhp", 1}, {"verb", "mutants"}, {"seconds_per_mutant", m.seconds_per_mutant},
            {"repeats", m.repeats}, {"clean", clean}, {"mutants", rows}, {"provenance", provenance_json(m.clean)}};
  if (m.interrupted) j["interrupted"] = true;
  return j;
}

std::string to_text(const RunSummary& s) {
  std::ostringstream os;
  os << "tdxhp " << s.verb << " on " << s.target << ", seed " << s.seed;
  if (!s.mutants.empty()) {
    os << ", mutants";
    for (auto& m : s.mutants) os << " " << m;
  }
  os << "\n";
  for (auto& p : s.properties) {
    os << "  " << std::left << std::setw(5) << (p.status == "pass" ? "PASS" : p.status == "fail" ? "FAIL" : "SKIP")
       << std::setw(20) << p.id << " " << std::right << std::setw(6) << p.cases << " cases " << std::setw(8)
       << p.steps << " steps " << std::setw(7) << fixed(p.seconds) << " s";
    if (p.status == "skip") os << "  (" << p.reason << ")";
    if (p.status == "fail")
      os << "  " << p.failure->invariant << " -> "
         << (p.failure->case_file.empty() ? one_line(p.failure->message) : p.failure->case_file);
    os << "\n";
    if (p.cases > 0) {
      os << "        checked:";
      for (auto& i : p.invariants) os << " " << i;
      if (p.invariants.empty()) os << " nothing";
      os << "\n";
      for (auto& [i, why] : p.not_checkable) os << "        " << i << " " << why << "\n";
      os << "        evidence: " << evidence_text(p.evidence) << "\n";
    }
  }
  os << "  evidence: " << evidence_text(s.evidence) << "\n";
  os << "  scenarios reached:";
  if (s.scenarios_reached.empty()) os << " none";
  for (auto& [sc, n] : s.scenarios_reached) os << " " << sc << "=" << n;
  os << "\n";
  if (const double all = s.totals.seconds_generating + s.totals.seconds_in_target + s.totals.seconds_checking;
      all > 0) {
    auto pct = [&](double x) { return std::to_string(static_cast<int>(100 * x / all + 0.5)) + "%"; };
    os << "  time: generating (and on real targets saving) cases " << pct(s.totals.seconds_generating) << ", in the target "
       << pct(s.totals.seconds_in_target) << ", oracle and checks " << pct(s.totals.seconds_checking) << "\n";
  }
  os << "verdict: " << s.verdict << (s.interrupted ? " (interrupted)" : "") << "  cases " << s.totals.cases
     << ", steps " << s.totals.steps << ", " << fixed(s.totals.seconds) << " s, " << fixed(s.totals.ops_per_sec, 0)
     << " ops/s, " << fixed(s.totals.cpu_seconds) << " CPU-s, " << fixed(s.totals.steps_per_cpu_sec, 0)
     << " steps/CPU-s, failures " << s.totals.failures << ", skipped " << s.totals.skipped << "\n";
  return os.str();
}

std::string to_text(const MutantMatrix& m) {
  std::ostringstream os;
  os << "clean sim: " << m.clean.verdict << " (" << m.clean.totals.cases << " cases, " << fixed(m.clean.totals.seconds)
     << " s)\n";
  for (auto& p : m.clean.properties)
    if (p.status == "fail") os << "  clean sim FAILS " << p.id << ": " << p.failure->message << "\n";
  os << "kill matrix (" << fixed(m.seconds_per_mutant, 1) << " s per mutant, " << m.repeats << " run(s) each):\n";
  os << "  " << std::left << std::setw(28) << "mutant" << std::setw(8) << "killed" << std::setw(17) << "invariant"
     << std::setw(20) << "property" << std::right << std::setw(7) << "cases" << std::setw(9) << "seconds"
     << std::setw(9) << "median" << std::setw(8) << "shrunk" << std::setw(9) << "fixture" << "\n";
  int killed = 0;
  std::vector<const MutantRow*> outside;
  for (auto& r : m.rows) {
    killed += r.killed;
    if (r.killed && r.outside_catalog) outside.push_back(&r);
    os << "  " << std::left << std::setw(28) << r.id << std::setw(8) << (r.killed ? "yes" : "NO") << std::setw(17)
       << (r.killed ? r.invariant + (r.outside_catalog ? "!" : "") : "-") << std::setw(20) << (r.killed ? r.property : "-") << std::right
       << std::setw(7) << r.cases << std::setw(9) << fixed(r.seconds) << std::setw(9) << fixed(median(r.kill_seconds))
       << std::setw(8) << r.shrunk_steps << std::setw(9)
       << (r.fixture_steps < 0 ? std::string("-") : std::to_string(r.fixture_steps)) << "\n";
  }
  os << "killed " << killed << "/" << m.rows.size() << "\n";
  if (m.interrupted)
    os << "interrupted after " << m.rows.size()
       << " mutant(s), the last one possibly cut short: this matrix is no verdict\n";
  if (!outside.empty()) {
    os << "killed outside the catalog's invariants (!): " << outside.size() << "\n";
    for (const MutantRow* r : outside)
      os << "  " << r->id << " by " << r->invariant << " (catalog: " << find_mutant(r->id)->caught_by << ")\n";
  }
  return os.str();
}

std::string to_ktap(const RunSummary& s) {
  std::ostringstream os;
  os << "KTAP version 1\n";
  os << "# tdxhp " << s.verb << " target=" << s.target << " seed=" << s.seed << " mutants=";
  for (size_t i = 0; i < s.mutants.size(); ++i) os << (i ? "," : "") << s.mutants[i];
  os << (s.mutants.empty() ? "none" : "") << "\n";
  os << "# tdxhp " << tdxhp_version() << " commit=" << tdxhp_commit() << " kernel=" << kernel_release()
     << " flavour=" << named_target(s) << "\n";
  os << "# tdx_module: " << one_line(tdx_module_for(named_target(s))) << "\n";
  os << "1.." << s.properties.size() << "\n";
  int i = 0;
  for (auto& p : s.properties) {
    ++i;
    if (p.cases > 0) {
      os << "# " << p.id << " checked:";
      for (auto& inv : p.invariants) os << " " << inv;
      os << "\n";
      for (auto& [inv, why] : p.not_checkable) os << "# " << p.id << " " << inv << " " << one_line(why) << "\n";
      os << "# " << p.id << " evidence: " << evidence_text(p.evidence) << "\n";
    }
    if (p.status == "fail") {
      os << "# " << p.id << ": " << one_line(p.failure->message) << "\n";
      if (!p.failure->case_file.empty()) os << "# case file: " << p.failure->case_file << "\n";
      os << "not ok " << i << " " << p.id << "\n";
    } else if (p.status == "skip") {
      os << "ok " << i << " " << p.id << " # SKIP " << one_line(p.reason) << "\n";
    } else {
      os << "ok " << i << " " << p.id << "\n";
    }
  }
  os << "# evidence: " << evidence_text(s.evidence) << "\n";
  os << "# totals: pass:" << (s.properties.size() - s.totals.failures - s.totals.skipped)
     << " fail:" << s.totals.failures << " skip:" << s.totals.skipped << "\n";
  // An interrupted run is not a clean pass, whatever its properties say so far.
  if (s.interrupted) os << "Bail out! interrupted after " << s.totals.cases << " cases\n";
  else if (s.in_progress) os << "Bail out! " << incomplete_note(s) << "\n";
  return os.str();
}

std::string to_junit(const RunSummary& s) {
  std::ostringstream os;
  os << "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n";
  os << "<testsuites name=\"tdxhp\" tests=\"" << s.properties.size() << "\" failures=\"" << s.totals.failures
     << "\" skipped=\"" << s.totals.skipped << "\" time=\"" << fixed(s.totals.seconds, 3) << "\">\n";
  const bool cut_short = s.interrupted || s.in_progress;
  os << "  <testsuite name=\"tdxhp." << xml_escape(s.target) << "\" tests=\"" << s.properties.size() + cut_short
     << "\" failures=\"" << s.totals.failures << "\" errors=\"" << (cut_short ? 1 : 0) << "\" skipped=\""
     << s.totals.skipped << "\" time=\"" << fixed(s.totals.seconds, 3) << "\">\n";
  os << "    <properties>\n";
  const json prov = provenance_json(s);
  for (auto it = prov.begin(); it != prov.end(); ++it)
    os << "      <property name=\"" << xml_escape(it.key()) << "\" value=\"" << xml_escape(it.value().get<std::string>())
       << "\"/>\n";
  os << "      <property name=\"seed\" value=\"" << s.seed << "\"/>\n";
  std::string mutants;
  for (auto& m : s.mutants) mutants += (mutants.empty() ? "" : ",") + m;
  os << "      <property name=\"mutants\" value=\"" << xml_escape(mutants) << "\"/>\n    </properties>\n";
  if (cut_short) {  // a run cut short is an error of the suite, never a pass
    const std::string what = s.interrupted ? "interrupted (SIGINT/SIGTERM) after " + std::to_string(s.totals.cases) +
                                                 " cases"
                                           : incomplete_note(s);
    os << "    <testcase classname=\"tdxhp." << xml_escape(s.target) << "\" name=\""
       << (s.interrupted ? "interrupted" : "incomplete") << "\" time=\"0\">\n"
       << "      <error message=\"" << xml_escape(what) << "\"/>\n    </testcase>\n";
  }
  for (auto& p : s.properties) {
    os << "    <testcase classname=\"tdxhp." << xml_escape(s.target) << "\" name=\"" << xml_escape(p.id)
       << "\" time=\"" << fixed(p.seconds, 3) << "\">";
    os << "\n      <properties>\n";
    auto prop = [&](const std::string& k, const std::string& v) {
      os << "        <property name=\"" << xml_escape(k) << "\" value=\"" << xml_escape(v) << "\"/>\n";
    };
    std::string checked;
    for (auto& inv : p.invariants) checked += (checked.empty() ? "" : " ") + inv;
    prop("invariants", checked);
    for (auto& [inv, why] : p.not_checkable) prop("not_checkable." + inv, why);
    for (auto& [k, v] : evidence_fields(p.evidence)) prop("evidence." + k, std::to_string(v));
    os << "      </properties>";
    if (p.status == "fail") {
      auto& f = *p.failure;
      os << "\n      <failure message=\"" << xml_escape(f.invariant + ": " + one_line(f.message)) << "\" type=\""
         << xml_escape(f.invariant) << "\">" << xml_escape(f.message + "\ncase file: " + f.case_file +
                                                           "\nsignature: " + f.signature)
         << "</failure>\n    ";
    } else if (p.status == "skip") {
      os << "\n      <skipped message=\"" << xml_escape(p.reason) << "\"/>\n    ";
    } else {
      os << "\n    ";
    }
    os << "</testcase>\n";
  }
  os << "  </testsuite>\n</testsuites>\n";
  return os.str();
}

void write_file_atomic(const std::string& path, const std::string& text) {
  const std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    if (!out) throw std::runtime_error(tmp + ": cannot create");
    out << text;
    out.flush();
    if (!out) throw std::runtime_error(tmp + ": write failed");
  }
  std::filesystem::rename(tmp, path);
}

void write_result_files(const std::string& dir, const RunSummary& s) {
  std::filesystem::create_directories(dir);
  write_file_atomic(dir + "/results.json", to_json(s).dump(2) + "\n");
  write_file_atomic(dir + "/results.ktap", to_ktap(s));
  write_file_atomic(dir + "/junit.xml", to_junit(s));
}

}  // namespace tdxhp::engine
