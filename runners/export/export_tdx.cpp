// The TD flavour of `tdxhp export --c` (export_c.h): a case as a TDX selftest on the TDX
// library of the huge-page series' tree (intel/tdx, td_template.h names the files). The guest
// walks a compile-time step table (the ELF image is measured into the TD, so no host-to-guest
// channel is needed after FINALIZE); the host runs the same steps as a linear script and
// asserts, after each, what the oracle fixes for it.
#include <set>
#include <sstream>
#include <stdexcept>
#include <variant>

#include "domain/describe.h"
#include "runners/export/c_template.h"
#include "runners/export/export_c.h"
#include "runners/export/export_common.h"
#include "runners/export/td_template.h"

namespace tdxhp::exporter {

using detail::c_comment;
using detail::c_string;
using detail::Expect;

namespace {

constexpr uint64_t kGfnLimitTdx = ((uint64_t{1} << 45) - (uint64_t{1} << 32)) / 4096;  // gpa_of() < 2^45

const char* shared_src(const Config& cfg) {
  if (cfg.attr_mode == AttrMode::InPlace) return "VM_MEM_SRC_SHMEM";  // as x86/tdx_vm_huge_page.c in place
  switch (cfg.shared_backing) {
    case BackingKind::Thp2M: return "VM_MEM_SRC_ANONYMOUS_THP";
    case BackingKind::Hugetlb2M: return "VM_MEM_SRC_ANONYMOUS_HUGETLB_2MB";
    case BackingKind::Hugetlb1G: return "VM_MEM_SRC_ANONYMOUS_HUGETLB_1GB";
    default: return "VM_MEM_SRC_ANONYMOUS";
  }
}

// How each accept's status and each access's #VE and read are judged (the C `enum judge`).
// KVM *may* map smaller than the largest allowed level (SEMANTICS.md "Max mapping level of a
// private fault"). Where the clean sim mapped a private 2M leaf by a fault or prefault, KVM
// may have left 4K leaves instead, and a 2M accept there meets a PENDING 2M leaf
// (TDX_SUCCESS) or a page table (TDX_PAGE_SIZE_MISMATCH|2M): its status is KVM's CHOICE,
// printed. A 4K accept meets a PENDING leaf either way, or takes the exit and gets one: FIXED.
// After a CHOICE accept the block's accept state follows that choice, so later accepts,
// #VEs and reads there hold only IF_SAME_CHOICE: while every CHOICE status so far was the
// simulator's (the same status leaves the same pages accepted).
enum class Judge { Choice = 0, Fixed = 1, IfSameChoice = 2 };
constexpr const char* kJudge[] = {"CHOICE", "FIXED", "IF_SAME_CHOICE"};

struct Judged {
  std::vector<Judge> accept_status, access;  // access: its #VE and the value it reads
};

Judged judge_expectations(const CaseFile& c, const std::vector<Expect>& ex) {
  const size_t n = c.scenario.ops.size();
  Judged j{std::vector<Judge>(n, Judge::Choice), std::vector<Judge>(n, Judge::Choice)};
  std::set<Gfn> chosen, follows;  // 2M blocks: a level choice made there / accept state follows one
  for (size_t i = 0; i < n && ex[i].known; ++i) {
    const Op& op = c.scenario.ops[i];
    if (const auto* a = std::get_if<Accept>(&op)) {
      const Gfn block = align_down(a->gfn, Level::L2M);
      const bool invalid = a->level > Level::L2M || !is_aligned(a->gfn, a->level);  // the module's input check
      j.accept_status[i] = invalid                                              ? Judge::Fixed
                           : a->level == Level::L2M && chosen.count(block)      ? Judge::Choice
                           : follows.count(block)                               ? Judge::IfSameChoice
                                                                                : Judge::Fixed;
      if (j.accept_status[i] != Judge::Fixed) follows.insert(block);
    } else if (const auto* x = std::get_if<Access>(&op)) {
      j.access[i] = follows.count(align_down(x->gfn, Level::L2M)) ? Judge::IfSameChoice : Judge::Fixed;
    }
    chosen.insert(ex[i].chosen_2m_blocks.begin(), ex[i].chosen_2m_blocks.end());
  }
  return j;
}

bool in_a_slot(const Config& cfg, Gfn g) {
  for (const Memslot& m : cfg.slots)
    if (m.range().contains(g)) return true;
  return false;
}

std::string guest_step_row(const Op& op, const Expect& e) {
  return std::visit(
      [&](const auto& x) -> std::string {
        using T = std::decay_t<decltype(x)>;
        if constexpr (std::is_same_v<T, Access>)
          return std::string("{ ") + (x.write ? "G_WRITE" : "G_READ") + ", .shared = " +
                 (e.private_before ? "false" : "true") + ", .gfn = " + hex(x.gfn) + ", .value = " + hex(x.value) + " }";
        else if constexpr (std::is_same_v<T, Accept>)
          return "{ G_ACCEPT, .level = " + std::to_string(static_cast<int>(x.level)) + ", .gfn = " + hex(x.gfn) + " }";
        else if constexpr (std::is_same_v<T, MapGpa>)
          return std::string("{ G_MAP_GPA, .to_private = ") + (x.to == Attr::Private ? "true" : "false") +
                 ", .gfn = " + hex(x.range.start) + ", .npages = " + hex(x.range.npages) + " }";
        else return "{ G_HOST }";
      },
      op);
}

}  // namespace

std::string tdx_refusal(const CaseFile& c) {
  const Config& cfg = c.scenario.config;
  if (cfg.backing == BackingKind::Thp2M) return "tdx: config.backing thp-2m: there is no THP guest_memfd (4k or hugetlb)";
  if (cfg.max_private_level != Level::L2M) return "tdx: config.max_private_level: only 2M is shipped (1G is a sim what-if)";
  if (cfg.slots.size() > 32) return "tdx: more than 32 memslots";
  for (size_t i = 0; i < cfg.slots.size(); ++i) {
    const Memslot& m = cfg.slots[i];
    const std::string at = "config.slots[" + std::to_string(i) + "].";
    if (m.hva_offset != 0) return "tdx: " + at + "hva_offset: vm_mem_add() places the shared memory itself";
    if (m.base_gfn + m.npages > kGfnLimitTdx)
      return "tdx: " + at + "gfn: the slot ends above gpa 2^45 (the reproducer's private and shared aliases must fit)";
  }
  if (!cfg.build_pages.empty() && !cfg.initially_private)
    return "tdx: config.build_pages with initially_private false: the library's FINALIZE makes a slot with build "
           "pages private";
  for (size_t i = 0; i < c.scenario.ops.size(); ++i) {
    const Op& op = c.scenario.ops[i];
    const std::string at = "ops[" + std::to_string(i) + "] ";
    if (is_queued(op)) return at + "is queued on vCPU 1: only the sim interleaves at mmu_lock drops";
    const char* no = std::visit(
        [&](const auto& o) -> const char* {
          using T = std::decay_t<decltype(o)>;
          if constexpr (std::is_same_v<T, Pin> || std::is_same_v<T, Unpin>) return "no userspace way to pin guest_memfd pages";
          else if constexpr (std::is_same_v<T, Inject>) return "SEAMCALL and allocation faults cannot be injected into a real kernel";
          else if constexpr (std::is_same_v<T, DeleteSlot> || std::is_same_v<T, AddSlot>)
            return "memslot deletion under a TD is sim-only here";
          else if constexpr (std::is_same_v<T, DiscardShared>)
            return cfg.attr_mode == AttrMode::InPlace ? "in place the shared side is guest_memfd itself" : nullptr;
          else if constexpr (std::is_same_v<T, Access>)
            return in_a_slot(cfg, o.gfn) ? nullptr : "libkvm maps no guest page to a gpa outside every memslot";
          else return nullptr;
        },
        op);
    if (no) return at + describe(op) + ": not expressible on tdx (" + no + ")";
  }
  return "";
}

std::string export_tdx(const CaseFile& c, const std::string& case_path) {
  if (auto why = tdx_refusal(c); !why.empty()) throw std::invalid_argument(why);
  const std::vector<Expect> ex = detail::expectations(c);
  const Judged judged = judge_expectations(c, ex);
  const Config& cfg = c.scenario.config;
  const size_t n = c.scenario.ops.size();
  const int order = cfg.backing == BackingKind::Hugetlb1G ? 18 : cfg.backing == BackingKind::Hugetlb2M ? 9 : 0;
  std::string flags = order ? "GUEST_MEMFD_FLAG_HUGETLB" : "";
  if (cfg.attr_mode == AttrMode::InPlace) flags += flags.empty() ? "GUEST_MEMFD_FLAG_MMAP" : " | GUEST_MEMFD_FLAG_MMAP";
  std::ostringstream o;
  o << detail::file_header(c, case_path)
    << " * Flavour: tdx (a TD on the TDX selftest library of the huge-page series' tree, intel/tdx).\n"
    << " *\n * NOT RUN ON A TDX HOST: tdxhp compiles this program against stand-in headers that declare\n"
    << " * that library's calls with the tree's signatures (runners/export/tests/fake_tdx/), never\n"
    << " * against the tree itself, and has no TDX machine to run it on. Treat a FAIL first as a\n"
    << " * possible fault of this program.\n"
    << " *\n * Each step asserts what tdxhp's oracle fixes for it when the clean simulator ran the case:\n"
    << " * the return code; an accept's TDX status; an access's #VE (a PENDING page) and the value\n"
    << " * read. Where the spec lets KVM pick the mapping level (the simulator mapped 2M by a fault\n"
    << " * or prefault, KVM may map 4K), a 2M accept's status in that block is KVM's CHOICE and\n"
    << " * printed; later accepts, #VEs and reads there are asserted IF_SAME_CHOICE, i.e. while\n"
    << " * every CHOICE status so far was the simulator's. Mapping levels are not asserted (no\n"
    << " * observer here; /sys/kernel/debug/kvm/pages_2m counts them on the host).\n"
    << " * The case needs kvm_intel.tdx_huge_page=" << (cfg.tdx_huge_page ? 'Y' : 'N')
    << (cfg.attr_mode == AttrMode::InPlace ? " and kvm.vm_memory_attributes=N" : "")
    << " (checked: SKIP otherwise), and a TDX module with\n * TDX_FEATURES0 bit 51 "
    << (cfg.features.enhanced_demote_interruptibility ? "set" : "clear") << " and Dynamic PAMT "
    << (cfg.features.dynamic_pamt ? "on" : "off") << " (not checked).\n"
    << " *\n * In the tree: copy to tools/testing/selftests/kvm/x86/, add it to TEST_GEN_PROGS_x86\n"
    << " * in tools/testing/selftests/kvm/Makefile.kvm, `make -C tools/testing/selftests/kvm`.\n */\n";
  o << kCommonHead << kTdHead;
  o << "\n/* ---------------------------------------------------------------- the case */\n\n"
    << "#define SHARED_BACKING " << detail::backing_c(cfg.shared_backing) << "\n"
    << "#define SHARED_SRC " << shared_src(cfg) << "\n"
    << "#define GMEM_ORDER " << order << "\n"
    << "#define GMEM_FLAGS " << (flags.empty() ? "0" : "(" + flags + ")") << "\n"
    << "#define IN_PLACE " << (cfg.attr_mode == AttrMode::InPlace ? 1 : 0) << "\n"
    << "#define INITIALLY_PRIVATE " << (cfg.initially_private ? 1 : 0) << "\n"
    << "#define TDX_HUGE_PAGE '" << (cfg.tdx_huge_page ? 'Y' : 'N') << "'\n"
    << "#define NSTEPS " << n << "\n\n"
    << "/* " << c_comment(describe(cfg)) << " */\n"
    << detail::slots_table(cfg);
  std::set<Gfn> touched;
  for (const Op& op : c.scenario.ops)
    if (const auto* a = std::get_if<Access>(&op)) touched.insert(a->gfn);
  o << "\n/* gfns the guest touches: both aliases are mapped before FINALIZE. */\n"
    << "static const uint64_t touched_gfns[] = {";
  for (Gfn g : touched) o << " " << hex(g) << ",";
  o << " };\n\nstatic const struct { uint64_t gfn, npages; } build_pages[] = {\n";
  for (const GfnRange& b : cfg.build_pages) o << "\t{ " << hex(b.start) << ", " << hex(b.npages) << " },\n";
  o << "};\n\nstatic const struct guest_step guest_steps[NSTEPS] = {\n";
  for (size_t i = 0; i < n; ++i)
    o << "\t" << guest_step_row(c.scenario.ops[i], ex[i]) << ",\t/* step " << i << ": "
      << c_comment(describe(c.scenario.ops[i])) << " */\n";
  o << "};\n" << kHostOps << kTdGuest << kTdHost;
  o << "\nstatic void run_steps(void)\n{\n";
  for (size_t i = 0; i < n; ++i) {
    const Op& op = c.scenario.ops[i];
    const Expect& e = ex[i];
    const std::string what = c_string(describe(op)), want = detail::want_ret(e), at = std::to_string(i);
    o << detail::step_comment(i, op);
    if (const std::string call = detail::host_op_call(op, "td_convert"); !call.empty())
      o << "\texpect_ret(" << at << ", " << what << ", " << call << ", " << want << ");\n";
    else if (std::holds_alternative<Access>(op)) {
      const bool value = e.read && !e.ve;
      o << "\texpect_access(" << at << ", " << what << ", " << want << ", " << kJudge[int(judged.access[i])] << ", "
        << (e.ve ? "WANT_VE" : "WANT_NO_VE") << ", " << (value ? "1, " + hex(*e.read) : std::string("0, 0")) << ");\n";
    } else if (std::holds_alternative<Accept>(op))
      o << "\texpect_accept(" << at << ", " << what << ", " << want << ", " << kJudge[int(judged.accept_status[i])]
        << ", " << hex(e.tdx_status) << ");\t/* " << c_comment(tdx_status_name(e.tdx_status)) << " */\n";
    else if (std::holds_alternative<MapGpa>(op))
      o << "\texpect_map_gpa(" << at << ", " << what << ", " << want << ");\n";
  }
  o << "}\n" << kTdMain;
  return o.str();
}

}  // namespace tdxhp::exporter
