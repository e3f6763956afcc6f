#include "domain/describe.h"

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <type_traits>

namespace tdxhp {

namespace {
template <class E, size_t N>
std::optional<E> parse_from(const std::string_view (&names)[N], std::string_view s) {
  for (size_t i = 0; i < N; ++i)
    if (names[i] == s) return static_cast<E>(i);
  return std::nullopt;
}
constexpr std::string_view kLevel[] = {"4K", "2M", "1G"};
constexpr std::string_view kAttr[] = {"private", "shared"};
constexpr std::string_view kBacking[] = {"4k", "thp-2m", "hugetlb-2m", "hugetlb-1g"};
constexpr std::string_view kAttrMode[] = {"per-vm", "in-place"};
constexpr std::string_view kContract[] = {"folio", "contiguous"};
constexpr std::string_view kSite[] = {"block", "track",    "demote",           "remove",     "wbinvd",
                                      "aug",   "sept-add", "split-cache-topup", "folio-split"};
static_assert(std::size(kSite) == kFaultSites);
constexpr std::string_view kEvent[] = {"seamcall", "map", "split", "zap", "folio-split",
                                       "folio-merge", "set-inhibit", "kick", "KVM_BUG_ON", "note"};
constexpr std::string_view kCap[] = {"private-memory", "accept", "attributes", "in-place-conversion",
                                     "punch-hole", "prefault", "map-gpa", "pin", "fault-injection",
                                     "huge-backing", "leaf-levels", "backing", "internals",
                                     "event-log", "kernel-log", "guest-data",
                                     "shared-discard", "interleaving", "slot-lifecycle"};
static_assert(std::size(kCap) == kCapCount);
}  // namespace

std::string_view name(Level v) { return kLevel[static_cast<int>(v)]; }
std::string_view name(Attr v) { return kAttr[static_cast<int>(v)]; }
std::string_view name(BackingKind v) { return kBacking[static_cast<int>(v)]; }
std::string_view name(AttrMode v) { return kAttrMode[static_cast<int>(v)]; }
std::string_view name(Contract v) { return kContract[static_cast<int>(v)]; }
std::string_view name(FaultSite v) { return kSite[static_cast<int>(v)]; }
std::string_view name(EventKind v) { return kEvent[static_cast<int>(v)]; }
std::string_view name(Cap v) { return kCap[static_cast<int>(v)]; }

std::string_view op_kind(const Op& op) {
  static constexpr std::string_view kOps[] = {"convert", "punch",  "prefault", "access", "accept",
                                              "map-gpa", "pin",    "unpin",    "inject", "discard-shared",
                                              "delete-slot", "add-slot"};
  static_assert(std::size(kOps) == std::variant_size_v<Op>);
  return kOps[op.index()];
}

std::optional<Level> parse_level(std::string_view s) { return parse_from<Level>(kLevel, s); }
std::optional<Attr> parse_attr(std::string_view s) { return parse_from<Attr>(kAttr, s); }
std::optional<BackingKind> parse_backing(std::string_view s) { return parse_from<BackingKind>(kBacking, s); }
std::optional<AttrMode> parse_attr_mode(std::string_view s) { return parse_from<AttrMode>(kAttrMode, s); }
std::optional<Contract> parse_contract(std::string_view s) { return parse_from<Contract>(kContract, s); }
std::optional<FaultSite> parse_fault_site(std::string_view s) { return parse_from<FaultSite>(kSite, s); }

std::string hex(uint64_t v) {
  char b[24];
  std::snprintf(b, sizeof b, "0x%llx", static_cast<unsigned long long>(v));
  return b;
}

namespace {
std::string size_words(uint64_t npages) {
  if (npages && npages % (512 * 512) == 0) return std::to_string(npages / (512 * 512)) + "G";
  if (npages && npages % 256 == 0) return std::to_string(npages / 256) + "M";  // 256 4K pages = 1M
  return std::to_string(npages * 4) + "K";
}
}  // namespace

std::string describe(const GfnRange& r) {
  return "gfn [" + hex(r.start) + ", " + hex(r.end()) + ") (" + size_words(r.npages) + ")";
}

namespace {
std::string queued_words(bool queued) { return queued ? "queued on vCPU 1: " : ""; }
}  // namespace

std::string describe(const Op& op) {
  return std::visit(
      [](const auto& o) -> std::string {
        using T = std::decay_t<decltype(o)>;
        if constexpr (std::is_same_v<T, Convert>)
          return "convert " + describe(o.range) + " to " + std::string(name(o.to));
        else if constexpr (std::is_same_v<T, PunchHole>)
          return "punch hole " + describe(o.range);
        else if constexpr (std::is_same_v<T, Prefault>)
          return "prefault " + describe(o.range);
        else if constexpr (std::is_same_v<T, Access>)
          return queued_words(o.queued) + (o.write ? "guest writes " + hex(o.value) + " to gfn " + hex(o.gfn)
                                                   : "guest reads gfn " + hex(o.gfn));
        else if constexpr (std::is_same_v<T, Accept>)
          return queued_words(o.queued) + "guest accepts gfn " + hex(o.gfn) + " at " + std::string(name(o.level));
        else if constexpr (std::is_same_v<T, DiscardShared>)
          return "discard shared host memory " + describe(o.range);
        else if constexpr (std::is_same_v<T, MapGpa>)
          return "guest MapGPA " + describe(o.range) + " to " + std::string(name(o.to));
        else if constexpr (std::is_same_v<T, Pin>)
          return "pin " + describe(o.range);
        else if constexpr (std::is_same_v<T, Unpin>)
          return "unpin " + describe(o.range);
        else if constexpr (std::is_same_v<T, DeleteSlot>)
          return "delete memslot " + std::to_string(o.slot);
        else if constexpr (std::is_same_v<T, AddSlot>)
          return "add memslot " + std::to_string(o.slot) + " back";
        else
          return "inject " + (is_seamcall_site(o.site) ? tdx_status_name(o.status) : std::string("-ENOMEM")) + " at " +
                 std::string(name(o.site)) + " x" + std::to_string(o.count);
      },
      op);
}

std::string errno_name(int err) {
  switch (-err) {
    case 0: return "0";
    case EINVAL: return "-EINVAL";
    case EAGAIN: return "-EAGAIN";
    case ENOMEM: return "-ENOMEM";
    case EIO: return "-EIO";
    case EFAULT: return "-EFAULT";
    case EPERM: return "-EPERM";
    case EBUSY: return "-EBUSY";
    case ENOENT: return "-ENOENT";
    case EEXIST: return "-EEXIST";
    case EOPNOTSUPP: return "-EOPNOTSUPP";
    case ENOSPC: return "-ENOSPC";
    case EINTR: return "-EINTR";
    case E2BIG: return "-E2BIG";
    case ENOTTY: return "-ENOTTY";
    default: return err > 0 ? "positive " + std::to_string(err) + " (not an errno)" : std::to_string(err);
  }
}

namespace {
struct StatusName {
  uint64_t v;
  const char* n;
  const char* alias;  // the short form case files may use
};
constexpr StatusName kStatusNames[] = {
    {tdx::kSuccess, "TDX_SUCCESS", "success"},
    {tdx::kOperandBusy, "TDX_OPERAND_BUSY", "busy"},
    {tdx::kOperandInvalid, "TDX_OPERAND_INVALID", "operand-invalid"},
    {tdx::kGpaRangeNotBlocked, "TDX_GPA_RANGE_NOT_BLOCKED", "gpa-range-not-blocked"},
    {tdx::kGpaRangeAlreadyBlocked, "TDX_GPA_RANGE_ALREADY_BLOCKED", "gpa-range-already-blocked"},
    {tdx::kTlbTrackingNotDone, "TDX_TLB_TRACKING_NOT_DONE", "tlb-tracking-not-done"},
    {tdx::kEptInvalidPromoteConditions, "TDX_EPT_INVALID_PROMOTE_CONDITIONS", "ept-invalid-promote-conditions"},
    {tdx::kPageAlreadyAccepted, "TDX_PAGE_ALREADY_ACCEPTED", "page-already-accepted"},
    {tdx::kPageSizeMismatch, "TDX_PAGE_SIZE_MISMATCH", "page-size-mismatch"},
    {tdx::kGpaRangeBlocked, "TDX_GPA_RANGE_BLOCKED", "gpa-range-blocked"},
    {tdx::kEptEntryStateIncorrect, "TDX_EPT_ENTRY_STATE_INCORRECT", "ept-entry-state-incorrect"},
    {tdx::kInterruptedRestartable, "TDX_INTERRUPTED_RESTARTABLE", "interrupted-restartable"},
    {tdx::kSwError, "TDX_SW_ERROR", "sw-error"},
    {tdx::kEptWalkFailed, "TDX_EPT_WALK_FAILED", "ept-walk-failed"},
    {tdx::kPreviousTlbEpochBusy, "TDX_PREVIOUS_TLB_EPOCH_BUSY", "previous-tlb-epoch-busy"},
    {tdx::kPageMetadataIncorrect, "TDX_PAGE_METADATA_INCORRECT", "page-metadata-incorrect"},
    {tdx::kPageNotFree, "TDX_PAGE_NOT_FREE", "page-not-free"},
    {tdx::kOpStateIncorrect, "TDX_OP_STATE_INCORRECT", "op-state-incorrect"},
    {tdx::kHpaRangeNotFree, "TDX_HPA_RANGE_NOT_FREE", "hpa-range-not-free"},
    {tdx::kMissingPamtPagePair, "TDX_MISSING_PAMT_PAGE_PAIR", "missing-pamt-page-pair"},
    {tdx::kNoPamtPagePair, "TDX_NO_PAMT_PAGE_PAIR", "no-pamt-page-pair"},
    {tdx::kPamtPageNotEmpty, "TDX_PAMT_PAGE_NOT_EMPTY", "pamt-page-not-empty"},
};
}  // namespace

std::string tdx_status_name(uint64_t s) {
  for (auto& n : kStatusNames)
    if (tdx::status_class(s) == n.v) {
      std::string out = n.n;
      uint64_t low = s & ~tdx::kStatusMask;
      const bool level_bits = n.v == tdx::kPageSizeMismatch || n.v == tdx::kPageAlreadyAccepted;
      if (level_bits && low <= 2) return out + "|" + std::string(name(static_cast<Level>(low)));
      // Everything else carries the operand id of the register or object at fault.
      switch (low) {
        case 0: return out;
        case tdx::kOperandIdRcx: return out + "|RCX";
        case tdx::kOperandIdRdx: return out + "|RDX";
        case tdx::kOperandIdR8: return out + "|R8";
        case tdx::kOperandIdSeptTree: return out + "|SEPT_TREE";
        case tdx::kOperandIdTdEpoch: return out + "|TD_EPOCH";
        default: return out + "|" + hex(low);
      }
    }
  return hex(s);
}

std::optional<uint64_t> parse_u64(std::string_view s) {
  const bool hex_form = s.size() > 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X');
  const std::string_view digits = hex_form ? s.substr(2) : s;
  if (digits.empty() || (!hex_form && digits.size() > 1 && digits[0] == '0')) return std::nullopt;
  uint64_t v = 0;
  for (char ch : digits) {
    const int d = ch >= '0' && ch <= '9' ? ch - '0'
                  : hex_form && ch >= 'a' && ch <= 'f' ? ch - 'a' + 10
                  : hex_form && ch >= 'A' && ch <= 'F' ? ch - 'A' + 10 : -1;
    const uint64_t base = hex_form ? 16 : 10;
    if (d < 0 || v > (UINT64_MAX - static_cast<uint64_t>(d)) / base) return std::nullopt;
    v = v * base + static_cast<uint64_t>(d);
  }
  return v;
}

std::optional<uint64_t> parse_tdx_status(std::string_view s) {
  for (auto& n : kStatusNames)
    if (s == n.n || s == n.alias) return n.v;
  if (s.size() > 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) return parse_u64(s);
  return std::nullopt;
}

std::string tdx_status_names() {
  std::string out;
  for (auto& n : kStatusNames) out += (out.empty() ? "" : ", ") + std::string(n.alias);
  return out;
}

std::string describe(const Outcome& o) {
  if (o.unsupported) return "unsupported" + (o.note.empty() ? "" : " (" + o.note + ")");
  if (o.waiting) return "waits for the running op (its fault)";
  std::string s = o.err ? errno_name(o.err) : "ok";
  if (o.tdx_status) s += ", " + tdx_status_name(o.tdx_status);
  if (o.ve) s += ", #VE";
  if (o.read) s += ", read " + hex(*o.read);
  return s;
}

std::string describe(const LeafRun& l, bool is_private) {
  return std::string(is_private ? "private " : "shared ") + std::string(name(l.level)) + " leaves " +
         describe(l.range) + " -> pfn " + hex(l.pfn);
}

std::string describe(const BackingRun& b) {
  std::string s = "slot " + std::to_string(b.slot) + " gmem [" + hex(b.index) + ", " + hex(b.index + b.npages) + ")";
  if (!b.allocated) return s + " hole";
  return s + " -> pfn " + hex(b.pfn) + " in order-" + std::to_string(b.folio_order) + " folios";
}

std::string describe(const Event& e) {
  std::string s(name(e.kind));
  if (!e.name.empty()) (s += " ") += e.name;
  switch (e.kind) {
    case EventKind::FolioSplit:
    case EventKind::FolioMerge:
      s += " slot " + std::to_string(e.slot) + " index " + hex(e.gfn) + " order " +
           std::to_string(e.order_from) + "->" + std::to_string(e.order_to);
      break;
    case EventKind::Note:
    case EventKind::Kick:
      break;
    default:
      if (e.kind != EventKind::Seamcall) s += e.is_private ? " private" : " shared";
      // TDH.PHYMEM.PAMT.* name a 2M physical range, not a gfn.
      s += (e.name.rfind("TDH.PHYMEM.PAMT.", 0) == 0 ? " pfn " : " gfn ") + hex(e.gfn) + " " + std::string(name(e.level));
      if (e.npages) s += " x" + std::to_string(e.npages);
      if (e.kind == EventKind::Seamcall) s += " -> " + tdx_status_name(e.status);
  }
  if (!e.text.empty()) s += " (" + e.text + ")";
  return s;
}

std::string describe_step(int64_t step) {
  if (step == kSetupStep) return "setup";
  if (step == kTeardownStep) return "teardown";
  return "step " + std::to_string(step);
}

std::string describe(const Violation& v) {
  // Setup, teardown and run-level findings may concern no gfn at all.
  const std::string where = v.range.empty() ? "" : ", " + describe(v.range);
  return v.invariant + " at " + describe_step(v.step) + where + ": expected " + v.expected + "; seen " + v.seen;
}

std::string describe(const Config& c) {
  std::string s = std::string(name(c.backing)) + " gmem, " + std::string(name(c.shared_backing)) + " shared host memory, " +
                  std::string(name(c.attr_mode)) + " attributes, " +
                  std::string(name(c.contract)) + " contract, tdx_huge_page=" + (c.tdx_huge_page ? "Y" : "N") +
                  ", bit51=" + (c.features.enhanced_demote_interruptibility ? "1" : "0") +
                  ", dpamt=" + (c.features.dynamic_pamt ? "1" : "0") + ", max private " +
                  std::string(name(c.max_private_level)) + ", " + std::to_string(c.slots.size()) + " slot(s)";
  for (auto& m : c.slots)
    s += "; slot " + std::to_string(m.id) + " " + describe(m.range()) + " gmem+" + hex(m.gmem_offset) +
         (m.hva_offset ? " hva+" + hex(m.hva_offset) : "");
  if (!c.build_pages.empty()) {
    s += "; build pages";
    for (auto& r : c.build_pages) s += " " + describe(r);
  }
  return s;
}

}  // namespace tdxhp
