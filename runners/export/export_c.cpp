// See export_c.h. The program's fixed part (VM build, one function per op kind, the guest's
// command loop) is kPrelude; the generated part is the case's memslots and its steps as a
// linear script, each step asserting what the oracle allowed for it.
#include "runners/export/export_c.h"

#include <cinttypes>
#include <cstdio>
#include <sstream>
#include <stdexcept>
#include <variant>

#include "domain/describe.h"
#include "domain/provenance.h"
#include "properties/lockstep.h"
#include "runners/engine/targets.h"
#include "runners/export/c_template.h"

namespace tdxhp::exporter {

namespace {

// One step's oracle-approved expectation, from the clean sim in lockstep.
struct Expect {
  bool known = false;                 // false: the run stopped before this step (a violation)
  int err = 0;                        // the return code the oracle accepted
  std::optional<uint64_t> read;       // a read's value the oracle requires (nullopt: open)
};

std::string hex(uint64_t v) {
  char b[24];
  std::snprintf(b, sizeof b, "0x%" PRIx64, v);
  return b;
}

const char* backing_c(BackingKind k) {
  switch (k) {
    case BackingKind::Thp2M: return "BACK_THP_2M";
    case BackingKind::Hugetlb2M: return "BACK_HUGETLB_2M";
    case BackingKind::Hugetlb1G: return "BACK_HUGETLB_1G";
    default: return "BACK_4K";
  }
}

// C string literal of free text (descriptions are ASCII domain words, but case files are user input).
std::string c_string(const std::string& s) {
  std::string out = "\"";
  for (unsigned char ch : s) {
    if (ch == '"' || ch == '\\') out += '\\', out += static_cast<char>(ch);
    else if (ch < 0x20 || ch > 0x7e) out += '?';
    else out += static_cast<char>(ch);
  }
  return out + "\"";
}

// A comment line safe for /* */ (no "*/" from user text).
std::string c_comment(std::string s) {
  for (size_t p; (p = s.find("*/")) != std::string::npos;) s.replace(p, 2, "* /");
  for (auto& ch : s)
    if (static_cast<unsigned char>(ch) < 0x20) ch = ' ';
  return s;
}

std::vector<Expect> expectations(const CaseFile& c) {
  std::string why;
  auto sim = engine::make_target("sim", {}, c.seed.value_or(0), &why);
  if (!sim) throw std::runtime_error("the clean sim: " + why);
  std::vector<Expect> ex(c.scenario.ops.size());
  LockstepOptions opt;
  opt.on_step = [&](const StepView& v) {
    if (!v.op || !v.outcome || v.step < 0 || static_cast<size_t>(v.step) >= ex.size()) return;
    Expect& e = ex[static_cast<size_t>(v.step)];
    e.known = v.violations.empty();
    e.err = v.outcome->err;
    if (const auto* a = std::get_if<Access>(v.op); a && !a->write) e.read = v.oracle.expected_read(a->gfn);
  };
  const LockstepResult r = run_lockstep(*sim, c.scenario, opt);
  if (!r.ran) throw std::runtime_error("the clean sim cannot build this config: " + r.not_run_reason);
  return ex;
}

}  // namespace

std::string refusal(const CaseFile& c, Flavour f) {
  const Config& cfg = c.scenario.config;
  const char* fl = f == Flavour::SwProt ? "swprot" : "plain";
  if (cfg.backing != BackingKind::Page4K)
    return std::string(fl) + ": config.backing must be 4k (6.12 guest_memfd has 4K folios only)";
  if (cfg.attr_mode != AttrMode::PerVm) return std::string(fl) + ": config.attr_mode in-place is not in 6.12";
  if (!cfg.build_pages.empty()) return std::string(fl) + ": config.build_pages exist only for a TD";
  if (cfg.slots.size() > 32) return std::string(fl) + ": more than 32 memslots";
  if (f == Flavour::Plain) {
    if (cfg.shared_backing != BackingKind::Page4K) return "plain: config.shared_backing must be 4k (its memory is a memfd)";
    if (cfg.initially_private)
      return "plain: no private memory; the case must start shared (config.initially_private false)";
  }
  for (size_t i = 0; i < c.scenario.ops.size(); ++i) {
    const Op& op = c.scenario.ops[i];
    const std::string at = "ops[" + std::to_string(i) + "] ";
    if (is_queued(op)) return at + "is queued on vCPU 1: only the sim interleaves at mmu_lock drops";
    const bool ok = std::visit(
        [&](const auto& o) {
          using T = std::decay_t<decltype(o)>;
          if constexpr (std::is_same_v<T, Access> || std::is_same_v<T, Prefault>) return true;
          else if constexpr (std::is_same_v<T, Convert> || std::is_same_v<T, PunchHole> ||
                             std::is_same_v<T, DiscardShared>)
            return f == Flavour::SwProt;
          else return false;
        },
        op);
    if (!ok)
      return at + describe(op) + ": not expressible on " + fl +
             (f == Flavour::Plain ? " (plain has no private memory; its memory is the memfd a punch would zero)"
                                  : " (accept/MapGPA need a TD, pin/inject/slot ops the sim)");
  }
  return "";
}

std::string export_c(const CaseFile& c, Flavour f, const std::string& case_path) {
  if (auto why = refusal(c, f); !why.empty()) throw std::invalid_argument(why);
  const std::vector<Expect> ex = expectations(c);
  const Config& cfg = c.scenario.config;
  std::ostringstream o;
  o << "// SPDX-License-Identifier: GPL-2.0-only\n/*\n"
    << " * tdxhp reproducer for " << c_comment(c.id.empty() ? case_path : c.id) << "\n";
  if (!c.description.empty()) o << " * " << c_comment(c.description) << "\n";
  if (c.violation) o << " * Recorded violation: " << c_comment(describe(*c.violation)) << "\n";
  o << " *\n * Generated by `tdxhp export --c " << c_comment(case_path) << "` (tdxhp " << tdxhp_version() << ", "
    << c_comment(tdxhp_commit()) << ").\n"
    << " * Flavour: " << (f == Flavour::SwProt ? "swprot (KVM_X86_SW_PROTECTED_VM, guest_memfd, per-VM attributes)"
                                               : "plain (default VM, one memfd per memslot)")
    << ".\n * Each step asserts what tdxhp's oracle allows: the return code it accepted when the\n"
    << " * clean simulator ran the case, and for a guest read the value the spec requires (last\n"
    << " * write, zero after a punch); reads the spec leaves open are printed, not asserted.\n"
    << " * Mapping levels are not asserted: this flavour has no observer for them here.\n"
    << " *\n * In a kernel tree: copy to tools/testing/selftests/kvm/x86_64/, add it to\n"
    << " * TEST_GEN_PROGS_x86_64 in tools/testing/selftests/kvm/Makefile, `make -C\n"
    << " * tools/testing/selftests/kvm`. In tdxhp: make repro CASE=<case.json>.\n */\n";
  o << kPrelude;
  o << "\n/* ---------------------------------------------------------------- the case */\n\n"
    << "#define FLAVOUR_SWPROT " << (f == Flavour::SwProt ? 1 : 0) << "\n"
    << "#define SHARED_BACKING " << backing_c(cfg.shared_backing) << "\n"
    << "#define INITIALLY_PRIVATE " << (cfg.initially_private ? 1 : 0) << "\n"
    << "#define NSTEPS " << c.scenario.ops.size() << "\n\n"
    << "/* " << c_comment(describe(cfg)) << " */\n"
    << "static struct slot slots[] = {\n";
  for (const Memslot& m : cfg.slots)
    o << "\t{ .id = " << m.id << ", .gfn = " << hex(m.base_gfn) << ", .npages = " << hex(m.npages)
      << ", .gmem_offset = " << hex(m.gmem_offset) << ", .hva_offset = " << hex(m.hva_offset) << " },\n";
  o << "};\n#define NSLOTS (sizeof(slots) / sizeof(slots[0]))\n" << kVmPart;
  std::ostringstream& s = o;
  s << "\nstatic void run_steps(void)\n{\n";
  for (size_t i = 0; i < c.scenario.ops.size(); ++i) {
    const Op& op = c.scenario.ops[i];
    const Expect& e = ex[i];
    const std::string what = describe(op);
    s << "\t/* step " << i << ": " << c_comment(what) << " */\n";
    const std::string want = e.known ? std::to_string(e.err) : "NO_EXPECTATION";
    const std::string head = "\texpect_ret(" + std::to_string(i) + ", " + c_string(what) + ", ";
    std::visit(
        [&](const auto& x) {
          using T = std::decay_t<decltype(x)>;
          if constexpr (std::is_same_v<T, Convert>)
            s << head << "op_convert(" << hex(x.range.start) << ", " << hex(x.range.npages) << ", "
              << (x.to == Attr::Private ? "TO_PRIVATE" : "TO_SHARED") << "), " << want << ");\n";
          else if constexpr (std::is_same_v<T, PunchHole>)
            s << head << "op_punch(" << hex(x.range.start) << ", " << hex(x.range.npages) << "), " << want << ");\n";
          else if constexpr (std::is_same_v<T, Prefault>)
            s << head << "op_prefault(" << hex(x.range.start) << ", " << hex(x.range.npages) << "), " << want
              << ");\n";
          else if constexpr (std::is_same_v<T, DiscardShared>)
            s << head << "op_discard_shared(" << hex(x.range.start) << ", " << hex(x.range.npages) << "), " << want
              << ");\n";
          else if constexpr (std::is_same_v<T, Access>) {
            if (x.write)
              s << head << "op_write(" << hex(x.gfn) << ", " << hex(x.value) << "), " << want << ");\n";
            else
              s << "\texpect_read(" << i << ", " << c_string(what) << ", " << hex(x.gfn) << ", " << want << ", "
                << (e.known && e.read ? "1, " + hex(*e.read) : std::string("0, 0")) << ");\n";
          }
        },
        op);
  }
  s << "}\n";
  s << kMain;
  return s.str();
}

}  // namespace tdxhp::exporter
