// Vocabulary shared by the oracle, the targets and the engine (DESIGN.md "Core vocabulary").
// Plain data only: no behaviour of the kernel or of the spec lives here.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace tdxhp {

using Gfn = uint64_t;  // guest frame number, 4K granule
using Pfn = uint64_t;  // host physical frame number, 4K granule

enum class Level : uint8_t { L4K = 0, L2M = 1, L1G = 2 };

constexpr uint64_t pages_in(Level l) {
  return l == Level::L4K ? 1 : l == Level::L2M ? 512 : 512 * 512;
}
constexpr uint64_t align_down(uint64_t x, Level l) { return x & ~(pages_in(l) - 1); }
constexpr bool is_aligned(uint64_t x, Level l) { return (x & (pages_in(l) - 1)) == 0; }

// Half-open [start, start + npages).
struct GfnRange {
  Gfn start = 0;
  uint64_t npages = 0;
  constexpr Gfn end() const { return start + npages; }
  constexpr bool empty() const { return npages == 0; }
  constexpr bool contains(Gfn g) const { return g >= start && g < end(); }
  constexpr bool overlaps(const GfnRange& o) const { return start < o.end() && o.start < end(); }
  constexpr bool covers(const GfnRange& o) const { return o.start >= start && o.end() <= end(); }
  friend bool operator==(const GfnRange&, const GfnRange&) = default;
};

enum class Attr : uint8_t { Private, Shared };

// ---------------------------------------------------------------- scenario config

enum class BackingKind : uint8_t { Page4K, Thp2M, Hugetlb2M, Hugetlb1G };
// The page (folio) size memory of this kind comes in.
constexpr Level page_level(BackingKind k) {
  return k == BackingKind::Hugetlb1G ? Level::L1G : k == BackingKind::Page4K ? Level::L4K : Level::L2M;
}
enum class AttrMode : uint8_t { PerVm, InPlace };      // KVM_SET_MEMORY_ATTRIBUTES vs gmem-owned
enum class Contract : uint8_t { Folio, Contiguous };   // INV-CONTIG flavour (DOMAIN.md 4)

struct Memslot {
  uint32_t id = 0;
  Gfn base_gfn = 0;
  uint64_t npages = 0;
  uint64_t gmem_offset = 0;  // in 4K pages, into this slot's guest_memfd
  uint64_t hva_offset = 0;   // HVA misalignment in 4K pages; must not matter for private 2M (INV-SLOT)
  GfnRange range() const { return {base_gfn, npages}; }
  friend bool operator==(const Memslot&, const Memslot&) = default;
};

struct ModuleFeatures {
  bool enhanced_demote_interruptibility = true;  // TDX_FEATURES0 bit 51 (L4463)
  bool dynamic_pamt = false;                     // TDX_FEATURES0 bit 36
  friend bool operator==(const ModuleFeatures&, const ModuleFeatures&) = default;
};

struct Config {
  std::vector<Memslot> slots;
  BackingKind backing = BackingKind::Hugetlb2M;
  // Host memory behind the slots' HVAs, i.e. the shared side in per-VM mode (anonymous
  // THP/hugetlb). Case files without it mean the same kind as `backing`.
  BackingKind shared_backing = BackingKind::Hugetlb2M;
  AttrMode attr_mode = AttrMode::PerVm;
  std::vector<GfnRange> build_pages;   // TDH.MEM.PAGE.ADD at build time, 4K only
  bool tdx_huge_page = true;           // kvm_intel.tdx_huge_page
  ModuleFeatures features;
  Contract contract = Contract::Folio;
  Level max_private_level = Level::L2M;  // 2M as shipped; 1G is a what-if
  bool initially_private = true;
  uint32_t vcpus = 1;
  friend bool operator==(const Config&, const Config&) = default;
};

// TDX status codes (DOMAIN.md section 3 table).
namespace tdx {
constexpr uint64_t kSuccess = 0;
constexpr uint64_t kOperandBusy = 0x8000020000000000ULL;
constexpr uint64_t kOperandInvalid = 0xC000010000000000ULL;
constexpr uint64_t kGpaRangeNotBlocked = 0xC0000B0600000000ULL;
constexpr uint64_t kGpaRangeAlreadyBlocked = 0x00000B0700000000ULL;
constexpr uint64_t kTlbTrackingNotDone = 0xC0000B0800000000ULL;
constexpr uint64_t kEptInvalidPromoteConditions = 0xC0000B0900000000ULL;
constexpr uint64_t kPageAlreadyAccepted = 0x00000B0A00000000ULL;
constexpr uint64_t kPageSizeMismatch = 0xC0000B0B00000000ULL;  // | level
constexpr uint64_t kGpaRangeBlocked = 0xC0000B0C00000000ULL;
constexpr uint64_t kEptEntryStateIncorrect = 0xC0000B0D00000000ULL;
constexpr uint64_t kInterruptedRestartable = 0x8000000400000000ULL;  // asm/shared/tdx_errno.h
constexpr uint64_t kSwError = 0x8000FF0000000000ULL;  // TDX_ERROR | GENMASK(47, 40)
// More module statuses (intel/tdx-module include/auto_gen/tdx_error_codes_defs.h, 1.5.x).
constexpr uint64_t kEptWalkFailed = 0xC0000B0000000000ULL;
constexpr uint64_t kPreviousTlbEpochBusy = 0x8000020100000000ULL;  // not OPERAND_BUSY: KVM does not retry it
constexpr uint64_t kPageMetadataIncorrect = 0xC000030000000000ULL;
constexpr uint64_t kPageNotFree = 0xC000030300000000ULL;
constexpr uint64_t kOpStateIncorrect = 0xC000060800000000ULL;
// Dynamic PAMT (TDX module 2.0 / 1.5.28+). HPA_RANGE_NOT_FREE is the kernel's value
// (arch/x86/include/asm/shared/tdx_errno.h of the DPAMT series). The other three are named in
// the module's tdh_phymem_pamt_add/remove.c and helpers.c, but no stored source gives their
// numeric codes: the sim uses private codes (class 0xFE), printed by name; KVM only tests them
// against TDX_SUCCESS, and no check compares their value.
constexpr uint64_t kHpaRangeNotFree = 0xC000030400000000ULL;
constexpr uint64_t kMissingPamtPagePair = 0xC000FE0100000000ULL;  // sim-private code
constexpr uint64_t kNoPamtPagePair = 0xC000FE0200000000ULL;       // sim-private code
constexpr uint64_t kPamtPageNotEmpty = 0xC000FE0300000000ULL;     // sim-private code
constexpr uint64_t kStatusMask = 0xFFFFFFFF00000000ULL;
// Low bits the module ORs in: the operand id of the register at fault (api_error_with_operand_id),
// or the S-EPT level a walk stopped at (0 4K, 1 2M, 2 1G).
constexpr uint64_t kOperandIdRax = 0, kOperandIdRcx = 1, kOperandIdRdx = 2, kOperandIdR8 = 8;
constexpr uint64_t kOperandIdSeptTree = 146, kOperandIdTdEpoch = 169;
constexpr uint64_t with_level(uint64_t status, Level l) { return status | static_cast<uint64_t>(l); }
constexpr uint64_t status_class(uint64_t s) { return s & kStatusMask; }
constexpr uint64_t kLeafVmcall = 0, kLeafVeinfoGet = 3, kLeafMemPageAccept = 6;
constexpr uint64_t kVmcallMapGpa = 0x10001;
constexpr uint64_t kSeamcallMemPageDemote = 15;
}  // namespace tdx

// ---------------------------------------------------------------- operations
// Every op is runnable in any state: one that makes no sense there has an expected error.

struct Convert   { GfnRange range; Attr to = Attr::Shared; bool operator==(const Convert&) const = default; };  // host: attributes / gmem convert ioctl
struct PunchHole { GfnRange range; bool operator==(const PunchHole&) const = default; };  // fallocate(PUNCH_HOLE|KEEP_SIZE)
struct Prefault  { GfnRange range; bool operator==(const Prefault&) const = default; };  // KVM_PRE_FAULT_MEMORY
// Guest ops with `queued` come from a second vCPU: the engine holds them and runs them at the
// next op's first mmu_lock drop (Target::set_mmu_lock_drop_hook), else right after it
// (SEMANTICS.md "Queued guest ops").
struct Access    { Gfn gfn = 0; bool write = false; uint64_t value = 0; bool queued = false; bool operator==(const Access&) const = default; };  // guest touch; write stores value
struct Accept    { Gfn gfn = 0; Level level = Level::L4K; bool queued = false; bool operator==(const Accept&) const = default; };  // guest TDG.MEM.PAGE.ACCEPT
struct MapGpa    { GfnRange range; Attr to = Attr::Shared; bool operator==(const MapGpa&) const = default; };  // guest TDVMCALL MapGPA -> convert
struct Pin       { GfnRange range; bool operator==(const Pin&) const = default; };  // host pins gmem pages (SC-PIN)
struct Unpin     { GfnRange range; bool operator==(const Unpin&) const = default; };
struct DiscardShared { GfnRange range; bool operator==(const DiscardShared&) const = default; };  // host madvise(MADV_DONTNEED) on the shared HVA
// KVM_SET_USER_MEMORY_REGION2 on a memslot of the config: delete it (size 0), or add it back
// with the config's geometry and gmem binding (SEMANTICS.md "Memslots").
struct DeleteSlot { uint32_t slot = 0; bool operator==(const DeleteSlot&) const = default; };
struct AddSlot    { uint32_t slot = 0; bool operator==(const AddSlot&) const = default; };

// Where an injected fault hits: the SEAMCALLs KVM issues on the S-EPT (they return a TDX
// status), and two kernel allocations (they fail with -ENOMEM).
enum class FaultSite : uint8_t { Block, Track, Demote, Remove, Wbinvd, Aug, SeptAdd, SplitCacheTopup, FolioSplit };
constexpr int kFaultSites = 9;
constexpr bool is_seamcall_site(FaultSite s) { return s < FaultSite::SplitCacheTopup; }
// Arms the next `count` attempts at `site` to fail (FoundationDB-style BUGGIFY), in arming order
// per site. A SEAMCALL site returns `status` (any TDX status) instead of running; a retry after
// a BUSY is an attempt too, so two BUSYs at demote are "BUSY on the retry". An allocation site
// fails with -ENOMEM and takes status 0.
struct Inject { FaultSite site = FaultSite::Demote; uint64_t status = tdx::kOperandBusy; uint32_t count = 1; bool operator==(const Inject&) const = default; };

using Op = std::variant<Convert, PunchHole, Prefault, Access, Accept, MapGpa, Pin, Unpin, Inject, DiscardShared,
                        DeleteSlot, AddSlot>;

// A second vCPU's guest op (SEMANTICS.md "Queued guest ops").
inline bool is_queued(const Op& op) {
  if (const auto* a = std::get_if<Access>(&op)) return a->queued;
  if (const auto* a = std::get_if<Accept>(&op)) return a->queued;
  return false;
}
// The op as vCPU 1 finally runs it.
inline Op dequeued(Op op) {
  if (auto* a = std::get_if<Access>(&op)) a->queued = false;
  if (auto* a = std::get_if<Accept>(&op)) a->queued = false;
  return op;
}

struct Scenario {
  Config config;
  std::vector<Op> ops;
  friend bool operator==(const Scenario&, const Scenario&) = default;
};

// ---------------------------------------------------------------- results


struct Outcome {
  int err = 0;                  // host ioctl: 0 or -errno; guest ops: -EIO once the VM is dead
  uint64_t tdx_status = 0;      // Accept: status the guest saw
  bool ve = false;              // Access: #VE because the page is PENDING
  std::optional<uint64_t> read; // Access{write=false}: value the guest read
  bool unsupported = false;     // the target cannot perform this op at all (capability missing)
  // vCPU 1's op at an mmu_lock drop stopped where its fault waits for the running op
  // (guest_memfd's invalidate lock, or a gfn being invalidated); it runs again after the op.
  bool waiting = false;
  std::string note;             // free text for traces (target's own words)
};

// ---------------------------------------------------------------- observation
// Observations are windowed so a step costs what it touched, not the size of the guest:
// each window gives the complete new content of one root (or one gmem file) inside a range;
// everything outside the reported windows is unchanged since the previous observation.
// The first observation after setup covers all memslots.

// Leaves of `level` tiling `range` exactly, mapping pfns that run contiguously from `pfn`
// (so 512 4K leaves left by a 2M split are one run).
struct LeafRun {
  GfnRange range;
  Level level = Level::L4K;
  Pfn pfn = 0;
  friend bool operator==(const LeafRun&, const LeafRun&) = default;
};

// Complete content of the mirror (private) or direct (shared) root inside `range` after the
// step. Runs lie inside range, sorted; gfns of range not covered by a run have no leaf.
// Private windows of a target that can read the S-EPT states also list which mapped gfns are
// ACCEPTED (sorted, inside range); every other mapped gfn is PENDING.
struct LeafWindow {
  bool is_private = true;
  GfnRange range;
  std::vector<LeafRun> runs;
  std::optional<std::vector<GfnRange>> accepted;
};

// Complete memory attributes inside `range` after the step: the shared gfns (sorted, inside
// range); every other gfn of the range is private.
struct AttrWindow {
  GfnRange range;
  std::vector<GfnRange> shared;
};

// gmem pages [index, index + npages) of one slot's file: a hole, or backed by pfns running
// contiguously from `pfn`, each page inside a naturally aligned folio of `folio_order`
// (folio head = page pfn aligned down to 2^order; order 0, 9 or 18).
struct BackingRun {
  uint32_t slot = 0;
  uint64_t index = 0;
  uint64_t npages = 0;
  bool allocated = false;
  Pfn pfn = 0;
  uint8_t folio_order = 0;
  friend bool operator==(const BackingRun&, const BackingRun&) = default;
};

// Complete backing of [index, index + npages) of a slot's gmem file after the step.
struct BackingWindow {
  uint32_t slot = 0;
  uint64_t index = 0;
  uint64_t npages = 0;
  std::vector<BackingRun> runs;  // inside the window, sorted; uncovered pages are holes
};

// One internal step of the target, in order (SEAMCALLs, leaf changes, folio splits ...).
// Leaf events use gfn/level (SplitLeaf: level is the old level); folio events use slot and
// gfn as the gmem index, npages as the folio size, order_from -> order_to.
enum class EventKind : uint8_t {
  Seamcall, MapLeaf, SplitLeaf, ZapLeaf, FolioSplit, FolioMerge, SetInhibit, Kick, KvmBugOn, Note
};
struct Event {
  EventKind kind = EventKind::Note;
  // SEAMCALL name (TDH.MEM.PAGE.DEMOTE ...) or short tag: a string literal, never a
  // temporary (the sim makes events on its hot path; a std::string here was an allocation
  // for every name longer than 15 characters).
  std::string_view name;
  Gfn gfn = 0;            // or gmem index for folio events
  Level level = Level::L4K;
  uint64_t npages = 0;
  uint32_t slot = 0;
  bool is_private = true; // leaf events: mirror or direct root
  uint64_t status = 0;    // SEAMCALL status
  uint8_t order_from = 0, order_to = 0;  // folio events
  std::string text;
};

// Internals only a simulated host can show.
struct SimInternals {
  // DPAMT 4K-entry refcount of every 2M physical range whose count changed this step
  // (at setup: every nonzero one).
  struct PamtRef {
    Pfn pfn_2m = 0;
    int32_t refcount = 0;  // an atomic_t: a put too many shows as a negative count
  };
  std::vector<PamtRef> pamt_changes;
  uint64_t pamt_pages_in_use = 0;      // DPAMT backing pages held now
  uint64_t pamt_pages_baseline = 0;    // held by an idle TD before any private mapping
  uint64_t sept_pages = 0;             // S-EPT page-table pages the mirror holds now
  uint64_t split_cache_count = 0;
  uint64_t split_cache_min = 0;
  uint64_t split_cache_underflows = 0; // dequeues that went below the minimum, cumulative
  uint64_t restart_retries = 0;        // INTERRUPTED_RESTARTABLE retries during this step
  uint64_t fault_retries = 0;          // RET_PF_RETRY of one fault during this step (a stuck invalidation)
  uint64_t guest_inhibit_blocks = 0;   // lpage_info blocks (2M/1G) with GUEST_INHIBIT set; one-way, never drops
  bool td_runnable = false;
};

// A new field needs setting in SimHost::collect_into too: it refills a reused observation.
struct Observation {
  bool has_leaves = false;            // leaf_windows are complete for what changed
  std::vector<LeafWindow> leaf_windows;
  bool has_attrs = false;             // attr_windows are complete for what changed
  std::vector<AttrWindow> attr_windows;
  bool has_backing = false;
  std::vector<BackingWindow> backing_windows;
  std::optional<SimInternals> internals;
  bool has_events = false;
  std::vector<Event> events;          // since the previous observation
  std::vector<std::string> kernel_log;  // WARN / BUG / KVM_BUG_ON lines during the step
  uint64_t kernel_lines_scanned = 0;    // kernel log records the target read for this step
  // Set when an observer the caps promise failed (e.g. kvmmmu records lost): what it saw from
  // here on cannot be trusted, so every property fails on it.
  std::string observer_fault;
  bool vm_dead = false;
};

// ---------------------------------------------------------------- capabilities

enum class Cap : uint8_t {
  PrivateMemory,     // guest_memfd-backed private memory with attributes
  Accept,            // guest TDG.MEM.PAGE.ACCEPT (TDX only)
  Attributes,        // KVM_SET_MEMORY_ATTRIBUTES or gmem conversion
  InPlaceConversion, // gmem-owned attributes, folio split/merge
  PunchHole,
  Prefault,
  MapGpa,
  Pin,
  FaultInjection,
  HugeBacking,       // 2M/1G folios in gmem
  LeafLevels,        // observation.leaves (mapping levels)
  Backing,           // observation.backing (pfn, folio)
  Internals,         // observation.internals (sim only)
  EventLog,          // observation.events
  KernelLog,         // observation.kernel_log
  GuestData,         // guest reads back data
  SharedDiscard,     // DiscardShared: madvise on host memory behind shared gfns
  Interleaving,      // queued guest ops run at mmu_lock drop points
  SlotLifecycle,     // DeleteSlot / AddSlot
};
constexpr int kCapCount = 19;
static_assert(kCapCount <= 32, "CapSet keeps one bit per Cap in 32 bits");

// The capabilities a target has, as one bit per Cap: a target's Caps travel inside every
// generator context, and a std::set here made copying them the run's top cost (issue 16).
class CapSet {
 public:
  CapSet() = default;
  CapSet(std::initializer_list<Cap> cs) {
    for (Cap c : cs) insert(c);
  }
  void insert(Cap c) { bits_ |= bit(c); }
  size_t erase(Cap c) {
    const size_t had = count(c);
    bits_ &= ~bit(c);
    return had;
  }
  size_t count(Cap c) const { return (bits_ & bit(c)) != 0; }
  bool empty() const { return bits_ == 0; }
  size_t size() const { return static_cast<size_t>(__builtin_popcount(bits_)); }
  friend bool operator==(const CapSet&, const CapSet&) = default;

  // Ascending Cap order, as the std::set it replaces iterated.
  class iterator {
   public:
    iterator(uint32_t rest) : rest_(rest) {}
    Cap operator*() const { return static_cast<Cap>(__builtin_ctz(rest_)); }
    iterator& operator++() {
      rest_ &= rest_ - 1;
      return *this;
    }
    friend bool operator==(const iterator&, const iterator&) = default;

   private:
    uint32_t rest_;
  };
  iterator begin() const { return iterator(bits_); }
  iterator end() const { return iterator(0); }

 private:
  static uint32_t bit(Cap c) { return uint32_t{1} << static_cast<unsigned>(c); }
  uint32_t bits_ = 0;
};

struct Caps {
  CapSet has;
  std::map<Cap, std::string> missing;  // why a capability is absent, in the target's words
  bool operator()(Cap c) const { return has.count(c) != 0; }
};

// ---------------------------------------------------------------- verdicts

constexpr int64_t kSetupStep = -1;    // violations found right after setup (TD build)
constexpr int64_t kTeardownStep = -2;

// Findings that are not one invariant's: they fail every property, whatever its INV-* list.
inline constexpr const char* kObserverFault = "observer";    // an observer failed or saw nothing
inline constexpr const char* kKernelWarn = "kernel-warn";    // WARN / BUG / KVM_BUG_ON in the kernel log
inline bool counts_for_every_property(const std::string& invariant) {  // also "setup" and "crash"
  return invariant == kObserverFault || invariant == kKernelWarn || invariant == "setup" || invariant == "crash";
}

// What the checks actually looked at: a pass means little when these are 0 (issue 13).
struct Evidence {
  int64_t steps = 0;             // observations checked (setup, ops, teardown)
  int64_t steps_with_leaves = 0; // of those, with at least one leaf in their windows
  int64_t leaves[2][3] = {};     // leaves in the windows checked (a leaf counts in each window
                                 // that shows it), [private=0 / shared=1][Level]
  int64_t backing_windows = 0;   // gmem backing windows compared
  int64_t reads_compared = 0;    // guest reads compared with an expected value
  int64_t accepts_compared = 0;  // accept statuses compared with the module's rules
  int64_t kernel_lines = 0;      // kernel log records the target scanned
  int64_t all_leaves() const {
    int64_t n = 0;
    for (auto& side : leaves)
      for (int64_t x : side) n += x;
    return n;
  }
  Evidence& operator+=(const Evidence& o) {
    steps += o.steps, steps_with_leaves += o.steps_with_leaves, backing_windows += o.backing_windows;
    reads_compared += o.reads_compared, accepts_compared += o.accepts_compared, kernel_lines += o.kernel_lines;
    for (int r = 0; r < 2; ++r)
      for (int l = 0; l < 3; ++l) leaves[r][l] += o.leaves[r][l];
    return *this;
  }
};

struct Violation {
  std::string invariant;  // INV-*, or one of the findings above
  int64_t step = 0;       // index into Scenario::ops, or kSetupStep / kTeardownStep
  GfnRange range;         // gfns concerned
  std::string expected;   // in domain words
  std::string seen;
};

}  // namespace tdxhp
