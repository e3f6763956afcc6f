// What the swprot/plain export (export_c.cpp) and the TD export (export_tdx.cpp) share: C text
// helpers and each step's oracle-approved expectation from the clean sim in lockstep.
#pragma once

#include <cstdint>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "domain/case_file.h"

namespace tdxhp::exporter::detail {

// One step's oracle-approved expectation, from the clean sim in lockstep.
struct Expect {
  bool known = false;                 // false: the run stopped before this step (a violation)
  int err = 0;                        // the return code the oracle accepted
  std::optional<uint64_t> read;       // a read's value the oracle requires (nullopt: open)
  uint64_t tdx_status = 0;            // an accept's status on the clean sim (the oracle checked it)
  bool ve = false;                    // an access's #VE on the clean sim (the oracle checked it)
  bool private_before = false;        // the gfn's attribute before the step (an access's alias)
  // 2M blocks (aligned gfns) where this step left a private 2M leaf that KVM may as well
  // have mapped at 4K (a fault or prefault; SEMANTICS.md "Mapping levels": the level is KVM's
  // choice up to the allowed maximum). Accept statuses in them follow that choice.
  std::set<Gfn> chosen_2m_blocks;
};

// The C template's `enum backing` name of a backing kind.
const char* backing_c(BackingKind k);
// C string literal of free text (descriptions are ASCII domain words, but case files are user input).
std::string c_string(const std::string& s);
// A comment line safe for /* */ (no "*/" from user text).
std::string c_comment(std::string s);

// The reproducer's opening comment up to the line naming tdxhp and the case (open "/*").
std::string file_header(const CaseFile& c, const std::string& case_path);

// `static struct slot slots[]` in gfn order (a conversion in place visits slots so) and NSLOTS.
std::string slots_table(const Config& cfg);
// "\t/* step i: <the op in domain words> */\n"
std::string step_comment(size_t i, const Op& op);
// The C call performing a host op (convert through convert_fn), "" for a guest op.
std::string host_op_call(const Op& op, const std::string& convert_fn);
// The return code a step asserts, or NO_EXPECTATION after the clean sim's first violation.
std::string want_ret(const Expect& e);

// Replays c on the clean sim with the oracle in lockstep. Throws std::runtime_error when the
// clean sim cannot build the case's config.
std::vector<Expect> expectations(const CaseFile& c);

// The swprot data rule (SEMANTICS.md "Guest ops", Access, "private gfn without accept
// (SW-protected): reads return the last value written"): a read of a gfn the guest wrote
// while private, with no conversion or punch over it since, must return that value. The
// TDX-model sim cannot say so (there the write to a PENDING page takes a #VE and stores
// nothing), so the exporter replays the writes itself. A discard of shared host memory does
// not touch a private page (SEMANTICS.md DiscardShared: "Private data is in gmem and never changes"). Returns per step the value a read
// must return, where the rule fixes it.
std::vector<std::optional<uint64_t>> swprot_written_reads(const CaseFile& c, const std::vector<Expect>& ex);

}  // namespace tdxhp::exporter::detail
