// See export_c.h. swprot/plain here, the TD in export_tdx.cpp. The program's fixed part (VM
// build, one function per op kind, the guest's command loop) is in c_template.h; the generated part is the case's memslots and its steps as a
// linear script, each step asserting what the oracle allowed for it.
#include "runners/export/export_c.h"

#include <sstream>
#include <stdexcept>
#include <variant>

#include "domain/describe.h"
#include "runners/export/c_template.h"
#include "runners/export/export_common.h"

namespace tdxhp::exporter {

using detail::c_comment;
using detail::c_string;
using detail::Expect;

const char* flavour_name(Flavour f) {
  return f == Flavour::SwProt ? "swprot" : f == Flavour::Plain ? "plain" : "tdx";
}

std::string refusal(const CaseFile& c, Flavour f) {
  if (f == Flavour::Tdx) return tdx_refusal(c);
  const Config& cfg = c.scenario.config;
  const char* fl = flavour_name(f);
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
                                  : " (accept/MapGPA need a TD (--flavour tdx), pin/inject/slot ops the sim)");
  }
  return "";
}

Flavour default_flavour(const CaseFile& c) {
  for (Flavour f : {Flavour::SwProt, Flavour::Plain})
    if (refusal(c, f).empty()) return f;
  return Flavour::Tdx;
}

std::string export_c(const CaseFile& c, Flavour f, const std::string& case_path) {
  if (auto why = refusal(c, f); !why.empty()) throw std::invalid_argument(why);
  if (f == Flavour::Tdx) return export_tdx(c, case_path);
  const std::vector<Expect> ex = detail::expectations(c);
  // swprot has no PENDING state: a private page the guest wrote reads back (SEMANTICS.md).
  const std::vector<std::optional<uint64_t>> written =
      f == Flavour::SwProt ? detail::swprot_written_reads(c, ex) : std::vector<std::optional<uint64_t>>(ex.size());
  const Config& cfg = c.scenario.config;
  std::ostringstream o;
  o << detail::file_header(c, case_path)
    << " * Flavour: " << (f == Flavour::SwProt ? "swprot (KVM_X86_SW_PROTECTED_VM, guest_memfd, per-VM attributes)"
                                               : "plain (default VM, one memfd per memslot)")
    << ".\n * Each step asserts what tdxhp's oracle allows: the return code it accepted when the\n"
    << " * clean simulator ran the case, and for a guest read the value the spec requires (last\n"
    << " * write, zero after a punch; on swprot also a private page the guest wrote in this case\n"
    << " * and nothing converted or punched since, domain/SEMANTICS.md \"Guest ops\"); reads the\n"
    << " * spec leaves open are printed, not asserted.\n"
    << " * Mapping levels are not asserted: this flavour has no observer for them here.\n"
    << " *\n * In a kernel tree: copy to tools/testing/selftests/kvm/x86_64/, add it to\n"
    << " * TEST_GEN_PROGS_x86_64 in tools/testing/selftests/kvm/Makefile, `make -C\n"
    << " * tools/testing/selftests/kvm`. In tdxhp: make repro CASE=<case.json>.\n */\n";
  o << kCommonHead << kSwprotGuest;
  o << "\n/* ---------------------------------------------------------------- the case */\n\n"
    << "#define FLAVOUR_SWPROT " << (f == Flavour::SwProt ? 1 : 0) << "\n"
    << "#define SHARED_BACKING " << detail::backing_c(cfg.shared_backing) << "\n"
    << "#define INITIALLY_PRIVATE " << (cfg.initially_private ? 1 : 0) << "\n"
    << "#define NSTEPS " << c.scenario.ops.size() << "\n\n"
    << "/* " << c_comment(describe(cfg)) << " */\n"
    << detail::slots_table(cfg) << kHostOps << kVmCreate << kSwprotGuestOps;
  std::ostringstream& s = o;
  s << "\nstatic void run_steps(void)\n{\n";
  for (size_t i = 0; i < c.scenario.ops.size(); ++i) {
    const Op& op = c.scenario.ops[i];
    const Expect& e = ex[i];
    const std::string what = describe(op), want = detail::want_ret(e);
    s << detail::step_comment(i, op);
    if (const std::string call = detail::host_op_call(op, "op_convert"); !call.empty())
      s << "\texpect_ret(" << i << ", " << c_string(what) << ", " << call << ", " << want << ");\n";
    else if (const auto* x = std::get_if<Access>(&op); x && x->write)
      s << "\texpect_ret(" << i << ", " << c_string(what) << ", op_write(" << hex(x->gfn) << ", " << hex(x->value)
        << "), " << want << ");\n";
    else if (x) {
      const std::optional<uint64_t> v = written[i] ? written[i] : e.read;
      s << "\texpect_read(" << i << ", " << c_string(what) << ", " << hex(x->gfn) << ", " << want << ", "
        << (e.known && v ? "1, " + hex(*v) : std::string("0, 0")) << ");\n";
    }
  }
  s << "}\n";
  s << kMain;
  return s.str();
}

}  // namespace tdxhp::exporter
