// Names and one-line descriptions in the domain's words (gfn ranges, levels, folios, accept states).
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "domain/types.h"

namespace tdxhp {

std::string_view name(Level);
std::string_view name(Attr);
std::string_view name(BackingKind);
std::string_view name(AttrMode);
std::string_view name(Contract);
std::string_view name(FaultSite);
std::string_view name(EventKind);
std::string_view name(Cap);
std::string_view op_kind(const Op&);

std::optional<Level> parse_level(std::string_view);
std::optional<Attr> parse_attr(std::string_view);
std::optional<BackingKind> parse_backing(std::string_view);
std::optional<AttrMode> parse_attr_mode(std::string_view);
std::optional<Contract> parse_contract(std::string_view);
std::optional<FaultSite> parse_fault_site(std::string_view);

std::string hex(uint64_t);
std::string describe(const GfnRange&);   // "gfn [0x200, 0x400) (2M)"
std::string describe(const Op&);          // "convert gfn [0x200, 0x201) to shared"
std::string describe(const Outcome&);     // "ok", "-EINVAL", "accept: TDX_PAGE_SIZE_MISMATCH|2M"
std::string describe(const LeafRun&, bool is_private);  // "private 2M leaves gfn [..) -> pfn 0x1200"
std::string describe(const BackingRun&);
std::string describe(const Event&);
std::string describe(const Violation&);   // "INV-...: step 3, gfn [..): expected ..., seen ..."
std::string describe_step(int64_t step);  // "step 3", "setup", "teardown"
std::string errno_name(int err);          // -22 -> "-EINVAL"
std::string tdx_status_name(uint64_t);    // 0xC0000B0B00000001 -> "TDX_PAGE_SIZE_MISMATCH|2M"
// "TDX_OPERAND_BUSY", its short form "busy", or a 0x value; nullopt otherwise.
std::optional<uint64_t> parse_tdx_status(std::string_view);
// A whole number as case files and the CLI write it: decimal, or 0x hex; no sign, no spaces, no
// octal (a leading 0 is not a base), at most 2^64-1.
std::optional<uint64_t> parse_u64(std::string_view);
std::string tdx_status_names();           // the short forms, for error messages
std::string describe(const Config&);

}  // namespace tdxhp
