#include "runners/kvm/kvm_target.h"

#include <unistd.h>

#include <cstdlib>
#include <cerrno>
#include <chrono>
#include <fstream>
#include <map>
#include <optional>
#include <string_view>

#include "domain/describe.h"
#include "domain/interval_map.h"
#include "runners/kvm/host_settings.h"
#include "runners/kvm/lib/tdx/tdx_td.h"
#include "runners/kvm/lib/tdxhp_kvm.h"
#include "runners/kvm/observers/kmsg.h"
#include "runners/kvm/observers/leaf_replay.h"
#include "runners/kvm/observers/mmu_trace.h"
#include "runners/kvm/worker.h"

namespace tdxhp::kvm {
namespace {

using namespace std::chrono_literals;
constexpr auto kSetupTimeout = 60s;
constexpr auto kStepTimeout = 10s;  // a guest command is microseconds; 10 s means hung

// The host's KVM does not change under a running tdxhp: probe it once per process. It used to
// be probed three times per case, each probe building a VM (issue 16).
const tkvm_host& host_facts() {
  static const tkvm_host h = [] {
    tkvm_host x;
    tkvm_probe_host(&x);
    return x;
  }();
  return h;
}

// KVM gfn of scenario gfn 0 (lib/vm.c places the test slots at a fixed guest-physical base).
const uint64_t kGfnBase = tkvm_gpa_of(nullptr, 0) >> 12;

// Why the kvmmmu replay cannot give leaf levels here (empty: it can).
std::string leaf_observer_absence(const tkvm_host& h) {
  if (h.tdp_mmu == 0)
    return std::string("kvm.tdp_mmu=N (") + h.kvm_module +
           "): the shadow MMU's sptes map guest page tables, not guest-physical memory, and "
           "kvm_tdp_mmu_spte_changed never fires";
  if (h.tdp_mmu < 0) return "no kvm.tdp_mmu parameter: cannot tell whether the TDP MMU is in use";
  MmuTrace t;
  std::string why;
  if (!t.open(&why)) return why;
  return {};
}

bool kmsg_readable(std::string* why) {
  KmsgObserver k;
  return k.open(why);
}

// Why tdx cannot run here (empty when it could be tried).
std::string tdx_absence(const tkvm_host& h) {
  if (!(h.vm_types & (1ULL << 5)))
    return std::string("KVM_X86_TDX_VM not in KVM_CAP_VM_TYPES") +
           (h.tdx_enabled == 0 ? " (kvm_intel.tdx=N)"
            : h.tdx_enabled < 0 ? " (no kvm_intel tdx parameter: not a TDX-capable kvm_intel)"
                                : "");
  // VM types can list TDX while the module failed to come up; kvm_intel says tdx=Y only then.
  if (h.tdx_enabled != 1)
    return std::string("KVM_X86_TDX_VM is in KVM_CAP_VM_TYPES but kvm_intel.tdx is ") +
           (h.tdx_enabled == 0 ? "N (TDX module not initialised)" : "unreadable");
  // vm_memory_attributes=N removes the VM ioctl; the gmem one must then be there (review 1d).
  if (!(h.tdx_vm_attributes & (1ULL << 3)) && !(h.tdx_gmem_attributes & (1ULL << 3)))
    return "a TDX VM offers KVM_MEMORY_ATTRIBUTE_PRIVATE in neither KVM_CAP_MEMORY_ATTRIBUTES nor "
           "KVM_CAP_GUEST_MEMFD_MEMORY_ATTRIBUTES";
  return {};
}

std::string swprot_absence(const tkvm_host& h) {
  if (!(h.vm_types & (1ULL << 1)))
    return "KVM_X86_SW_PROTECTED_VM not in KVM_CAP_VM_TYPES (kernel needs "
           "CONFIG_KVM_SW_PROTECTED_VM and TDP; run it through the vm target)";
  if (!(h.swprot_attributes & (1ULL << 3)))
    return "SW-protected VM lacks KVM_MEMORY_ATTRIBUTE_PRIVATE";
  return {};
}

std::string plain_absence(const tkvm_host& h) {
  if (!h.dev_kvm) return h.error;
  if (!(h.vm_types & 1ULL) && h.vm_types != 0) return "default VM type not offered";
  return {};
}

Caps caps_for(const std::string& flavour, const tkvm_host& h) {
  Caps c;
  auto no = [&](Cap cap, std::string why) { c.missing[cap] = std::move(why); };
  auto yes = [&](Cap cap) { c.has.insert(cap); };
  bool tdx = flavour == "tdx", swprot = flavour == "swprot";
  yes(Cap::GuestData);
  yes(Cap::PunchHole);  // gmem fallocate (plain without mmap-able gmem: the slot's memfd)
  if (tdx || swprot) {
    yes(Cap::PrivateMemory);
    yes(Cap::Attributes);
  } else {
    no(Cap::PrivateMemory, "plain VM: no private memory (default VM type)");
    no(Cap::Attributes, "plain VM: KVM_CAP_MEMORY_ATTRIBUTES is 0x" + hex(h.attributes).substr(2) +
                            " on a default VM");
  }
  if (tdx) {
    yes(Cap::Accept);
    yes(Cap::MapGpa);
  } else {
    no(Cap::Accept, "TDG.MEM.PAGE.ACCEPT exists only in a TD");
    no(Cap::MapGpa, "TDVMCALL MapGPA exists only in a TD");
  }
  if (h.pre_fault)
    yes(Cap::Prefault);
  else
    no(Cap::Prefault, "KVM_CAP_PRE_FAULT_MEMORY is 0 (needs a TDP MMU; " +
                          std::string(h.kvm_module) + " here)");
  char tdx_why[200] = "";
  uint64_t tdx_flags = 0;
  if (tdx && tkvm_tdx_gmem_flags(&h, TKVM_BACK_4K, true, &tdx_flags, tdx_why, sizeof(tdx_why)))
    yes(Cap::InPlaceConversion);
  else
    no(Cap::InPlaceConversion, tdx ? tdx_why : "no gmem conversion ioctl for this VM type");
  if (tdx && tkvm_tdx_gmem_flags(&h, TKVM_BACK_HUGETLB_2M, false, &tdx_flags, tdx_why, sizeof(tdx_why)))
    yes(Cap::HugeBacking);
  else
    no(Cap::HugeBacking, tdx ? tdx_why : "guest_memfd allocates 4K folios only for this VM type");
  no(Cap::Pin, "no userspace way to pin guest_memfd pages");
  no(Cap::FaultInjection, "real kernel: SEAMCALL/allocation faults cannot be injected");
  no(Cap::Internals, "DPAMT, split cache and S-EPT internals are visible only in the sim");
  no(Cap::EventLog, "per-step event log is the sim's");
  no(Cap::SlotLifecycle, "the kvm worker does not delete or re-add memslots (yet)");
  if ((tdx || swprot) && h.shared_discard)
    yes(Cap::SharedDiscard);
  else
    no(Cap::SharedDiscard, tdx || swprot ? std::string("probe: ") + h.shared_discard_error
                                         : "plain VM: its memory is the guest_memfd/memfd file itself, "
                                           "there is no separate anonymous shared memory to discard");
  no(Cap::Interleaving,
     "a real kernel offers no hook at its mmu_lock drop points: a second vCPU's op cannot be "
     "placed inside a host op deterministically (the sim does that)");
  if (std::string why = leaf_observer_absence(h); why.empty())
    yes(Cap::LeafLevels);
  else
    no(Cap::LeafLevels, why);
  no(Cap::Backing,
     "guest_memfd in 6.12 shows no pfn for pages no spte maps (not mmap-able for private "
     "memory, no pagemap), so a complete gmem backing window cannot be built");
  std::string why;
  if (kmsg_readable(&why))
    yes(Cap::KernelLog);
  else
    no(Cap::KernelLog, why);
  return c;
}

// Caps per flavour, worked out once per process: the leaf observer's probe makes and removes
// a tracefs instance, and targets are made per case.
const Caps& cached_caps(const std::string& flavour, const tkvm_host& h) {
  static std::map<std::string, Caps> known;
  auto it = known.find(flavour);
  if (it == known.end()) it = known.emplace(flavour, caps_for(flavour, h)).first;
  return it->second;
}

// The VM a plain/swprot case leaves behind, kept for the next case: resetting its memslots
// costs a fraction of forking a worker and building a VM, which loads all of tdxhp's ELF into
// memslot 0 (issue 16). Its kvmmmu trace and replay live as long as the VM: memslot 0's leaves
// were mapped in earlier cases and the binary stats count them. Process-wide; torn down at exit
// before HostSettings removes the tracefs instance (atexit order).
struct LiveVm {
  Worker worker;
  std::string flavour;
  MmuTrace trace;
  std::optional<LeafReplay> replay;  // while the trace is open, unless the observer gave up
  bool fresh_next = false;
  // Kernel log reader, kept across cases: a case's setup goes on reading where the previous
  // case stopped while the worker releases that case's memslots, so what the release logs is
  // seen (in the new case, as when the reset itself freed them).
  KmsgObserver kmsg;

  void retire() {
    worker.stop();
    if (trace.is_open()) {
      HostSettings::get().disown_directory(trace.instance_dir());
      trace.close();
    }
    replay.reset();
    flavour.clear();
  }
};

LiveVm& live_vm() {
  static LiveVm* v = [] {
    HostSettings::get();  // registered first, so its atexit runs after ours
    auto* l = new LiveVm();
    std::atexit([] { live_vm().retire(); });
    return l;
  }();
  return *v;
}

class KvmTarget final : public Target {
 public:
  KvmTarget(std::string flavour, tkvm_host host)
      : flavour_(std::move(flavour)), host_(host), caps_(cached_caps(flavour_, host_)) {}

  std::string name() const override { return "kvm/" + flavour_; }
  Caps caps() const override { return caps_; }

  int setup(const Config& cfg, std::string* why) override {
    auto refuse = [&](std::string w) {
      if (why) *why = name() + ": " + std::move(w);
      return -EOPNOTSUPP;
    };
    // tdx: lib/vm.c refuses a private backing or in-place mode this host lacks, naming the flag.
    if (cfg.backing != BackingKind::Page4K && flavour_ != "tdx")
      return refuse(std::string("backing ") + std::string(tdxhp::name(cfg.backing)) + ": " +
                    caps_.missing.at(Cap::HugeBacking));
    // Per-VM shared memory (INV-CONTIG's host level) is what the case file names; plain has
    // none apart from its 4K gmem/memfd memory.
    const BackingKind shared = cfg.shared_backing;
    if (flavour_ == "plain" && shared != BackingKind::Page4K)
      return refuse(std::string("shared_backing ") + std::string(tdxhp::name(shared)) +
                    ": a plain VM's memory is its guest_memfd/memfd file (4K folios); anonymous "
                    "THP/hugetlb shared memory exists only beside private memory (swprot)");
    if (cfg.attr_mode == AttrMode::InPlace && flavour_ != "tdx")
      return refuse(caps_.missing.at(Cap::InPlaceConversion));
    if (!cfg.build_pages.empty() && flavour_ != "tdx")
      return refuse("build pages (TDH.MEM.PAGE.ADD) exist only for a TD");
    if (cfg.slots.size() > TKVM_MAX_SLOTS) return refuse("more than 8 memslots");
    if (shared == BackingKind::Hugetlb2M || shared == BackingKind::Hugetlb1G) {
      vm_.retire();  // its slots may hold the pool's free pages this case needs
      std::string w;
      if (int r = reserve_hugetlb(cfg, shared, &w)) {
        if (why) *why = name() + ": " + w;
        return r;
      }
    }
    // tdx: a hugetlb guest_memfd draws on the same pools (one reservation when both agree).
    if (flavour_ == "tdx" && cfg.backing != shared &&
        (cfg.backing == BackingKind::Hugetlb2M || cfg.backing == BackingKind::Hugetlb1G)) {
      std::string w;
      if (int r = reserve_hugetlb(cfg, cfg.backing, &w)) {
        if (why) *why = name() + ": " + w;
        return r;
      }
    }
    tkvm_config c{};
    c.host = &host_facts();
    c.flavour = flavour_ == "tdx" ? TKVM_TDX : flavour_ == "swprot" ? TKVM_SWPROT : TKVM_PLAIN;
    c.backing = static_cast<tkvm_backing>(shared);
    c.private_backing = static_cast<tkvm_backing>(cfg.backing);
    c.in_place = cfg.attr_mode == AttrMode::InPlace;
    c.initially_private = cfg.initially_private;
    c.nslots = static_cast<uint32_t>(cfg.slots.size());
    for (size_t i = 0; i < cfg.slots.size(); ++i) {
      const Memslot& m = cfg.slots[i];
      c.slots[i] = {m.id, m.base_gfn, m.npages, m.gmem_offset, m.hva_offset};
    }
    build_gfns_.clear();
    for (const GfnRange& r : cfg.build_pages)
      for (Gfn g = r.start; g < r.end(); ++g) build_gfns_.push_back(g);
    c.nbuild = static_cast<uint32_t>(build_gfns_.size());
    c.build_gfns = build_gfns_.data();
    if (!worker_.posted()) kmsg_.open(nullptr);  // else the previous case's release is running
    setup_findings_.clear();
    slots_.clear();
    for (const Memslot& m : cfg.slots) slots_.push_back(m.range());
    // Attributes as the target set them: the replay files new leaves under them (swprot).
    attrs_.clear();
    for (const Memslot& m : cfg.slots)
      attrs_.assign(m.base_gfn, m.range().end(),
                    flavour_ != "plain" && cfg.initially_private ? Attr::Private : Attr::Shared);
    leaf_fault_.clear();
    // TDXHP_TEST_NO_LEAF_TRACE=1 (tests only): claim LeafLevels but never trace, to show that
    // a leaf property whose observer sees nothing fails (engine "observer saw nothing").
    const char* no_trace = std::getenv("TDXHP_TEST_NO_LEAF_TRACE");
    const bool traced = caps_(Cap::LeafLevels) && !(no_trace && std::string(no_trace) == "1");
    reused_ = false;
    if (!vm_.fresh_next && vm_.flavour == flavour_ && trace_.is_open() == traced && (!traced || replay_) &&
        worker_.alive()) {
      std::string w;
      reused_ = worker_.reset(c, kSetupTimeout, &w) == 0;  // else the worker is gone: build anew
    }
    vm_.fresh_next = false;
    int r = 0;
    if (!reused_) {
      vm_.retire();
      if (traced) {
        std::string w;
        // Opened before the VM exists so the replay sees every leaf the stats count.
        if (!trace_.open(&w)) {
          if (why) *why = name() + ": leaf observer: " + w;
          return -EIO;
        }
        HostSettings::get().own_directory(trace_.instance_dir());
        replay_.emplace(kGfnBase, 0);
      }
      r = worker_.start(c, kSetupTimeout, why);
      if (r && why) *why = name() + ": " + *why;
      if (!r) vm_.flavour = flavour_;
    }
    first_observe_ = true;
    if (!r) replay_step();
    return r;
  }

  bool reused_vm() const override { return reused_; }
  void build_fresh_next() override { vm_.fresh_next = true; }

  Outcome apply(const Op& op) override {
    WorkerRequest q;
    Outcome out;
    if (is_queued(op)) {
      out.unsupported = true;
      out.note = name() + ": " + caps_.missing.at(Cap::Interleaving);
      return out;
    }
    bool supported = std::visit([&](const auto& o) { return to_request(o, q); }, op);
    if (!supported) {
      out.unsupported = true;
      out.note = name() + " cannot do " + std::string(op_kind(op));
      return out;
    }
    WorkerReply r = worker_.call(q, kStepTimeout, &out.note);
    out.err = r.err;
    out.tdx_status = r.tdx_status;
    out.ve = r.ve;
    if (q.kind == Request::Access && !q.write && r.err == 0) out.read = r.value;
    vm_dead_ = vm_dead_ || r.vm_dead;
    replay_step();  // with the attributes from before the step: a conversion only zaps
    // A guest access that succeeded mapped a leaf: a replay that never saw a record is blind.
    if (replay_ && leaf_fault_.empty() && q.kind == Request::Access && r.err == 0 && replay_->events_applied() == 0)
      leaf_fault_ = "a guest access succeeded but no kvmmmu record has arrived since the VM was created";
    // A guest MapGPA converts through the same KVM_SET_MEMORY_ATTRIBUTES (lib/tdx_td.c).
    if ((q.kind == Request::Convert || q.kind == Request::MapGpa) && r.err == 0)
      attrs_.assign(q.gfn, q.gfn + q.npages, q.to_private ? Attr::Private : Attr::Shared);
    return out;
  }

  Observation observe() override {
    Observation o;
    o.kernel_log = kmsg_.take_findings(&o.kernel_lines_scanned);
    if (!leaf_fault_.empty()) {
      // An observer that lost track fails the case loudly (whatever the property) rather than
      // feeding the oracle a wrong leaf set; it stays off for the rest of the case.
      o.observer_fault = "leaf observer unreliable, leaf windows stopped: " + leaf_fault_;
      leaf_fault_reported_ = true;
      leaf_fault_.clear();
      replay_.reset();
    }
    if (replay_) {
      std::vector<GfnRange> ranges;
      if (first_observe_) {
        ranges = slots_;
        replay_->take_dirty();
      } else {
        for (const GfnRange& d : replay_->take_dirty())
          for (const GfnRange& s : slots_) {
            const Gfn a = std::max(d.start, s.start), b = std::min(d.end(), s.end());
            if (a < b) ranges.push_back({a, b - a});
          }
      }
      o.has_leaves = true;
      o.leaf_windows = replay_->windows(ranges);
    }
    o.vm_dead = vm_dead_ || !worker_.alive();
    first_observe_ = false;
    return o;
  }

  Observation teardown() override {
    // A TD is measured at build and cannot be reset; a dead VM or a lost trace is not reused.
    if (flavour_ == "tdx" || vm_dead_ || !worker_.alive() || (trace_.is_open() && !replay_)) {
      vm_.retire();
    } else {
      // The next case's reset begins now: the worker frees this case's memslots while tdxhp
      // checks, generates and saves the next case (a host crash meanwhile leaves this case or,
      // once saved, the next in the pending case file, as when the reset freed them).
      WorkerRequest q;
      q.kind = Request::Release;
      worker_.post(q);
    }
    Observation o;
    o.kernel_log = kmsg_.take_findings(&o.kernel_lines_scanned);  // teardown WARNs belong to this case too
    o.vm_dead = vm_dead_;
    vm_dead_ = false;
    return o;
  }

 private:
  bool to_request(const Access& a, WorkerRequest& q) {
    q.kind = Request::Access;
    q.gfn = a.gfn;
    q.write = a.write;
    q.value = a.value;
    return true;
  }
  bool to_request(const Accept& a, WorkerRequest& q) {
    q.kind = Request::Accept;
    q.gfn = a.gfn;
    q.level = static_cast<uint32_t>(a.level);
    return caps_(Cap::Accept);
  }
  // Host range ops and MapGPA: kind, range, and the capability that makes them possible.
  bool range_request(Request kind, const GfnRange& r, Cap need, WorkerRequest& q) {
    q.kind = kind;
    q.gfn = r.start;
    q.npages = r.npages;
    return caps_(need);
  }
  bool to_request(const MapGpa& m, WorkerRequest& q) {
    q.to_private = m.to == Attr::Private;
    return range_request(Request::MapGpa, m.range, Cap::MapGpa, q);
  }
  bool to_request(const Convert& c, WorkerRequest& q) {
    q.to_private = c.to == Attr::Private;
    return range_request(Request::Convert, c.range, Cap::Attributes, q);
  }
  bool to_request(const PunchHole& p, WorkerRequest& q) { return range_request(Request::Punch, p.range, Cap::PunchHole, q); }
  bool to_request(const Prefault& p, WorkerRequest& q) {
    return range_request(Request::Prefault, p.range, Cap::Prefault, q);
  }
  bool to_request(const DiscardShared& d, WorkerRequest& q) {
    return range_request(Request::DiscardShared, d.range, Cap::SharedDiscard, q);
  }
  // Replays this step's kvmmmu records and cross-checks the leaf counts with the VM's binary
  // stats pages_4k/2m/1g, which count the same leaves (DOMAIN.md 7).
  void replay_step() {
    if (!replay_ || !worker_.alive()) return;
    auto is_private = [&](Gfn g) {
      const Attr* a = attrs_.at(g);
      return a && *a == Attr::Private;
    };
    // Zaps can also come from other contexts (MMU notifiers, NX recovery) between the drain and
    // the stats read: a mismatch is retried a few times before it counts.
    for (int attempt = 0; attempt < 3; ++attempt) {
      int n = trace_.drain([&](const SpteEvent& e) { replay_->apply(e, is_private); });
      if (n < 0) {
        leaf_fault_ = "reading the tracefs instance failed (" + std::to_string(n) + ")";
        return;
      }
      if (unsigned long long lost = trace_.overruns()) {
        leaf_fault_ = std::to_string(lost) + " kvmmmu records were dropped (buffer overrun)";
        return;
      }
      if (!replay_->anomalies().empty()) {
        leaf_fault_ = replay_->anomalies().front();
        return;
      }
      leaf_fault_ = stats_mismatch();
      if (leaf_fault_.empty()) return;
      usleep(2000);
    }
  }

  // "" when the binary stats pages_4k/2m/1g equal the replay's leaf counts.
  std::string stats_mismatch() {
    WorkerRequest q;
    q.kind = Request::Stats;
    std::string note;
    WorkerReply r = worker_.call(q, kStepTimeout, &note);
    static const char* names[kStatCount] = {"pages_4k", "pages_2m", "pages_1g"};
    // pages_4k is the one cross-check of the replay: without it a silent trace would pass.
    if (r.err || r.stat_err[0])
      return "binary stat pages_4k unreadable (" + (r.err ? note : std::to_string(r.stat_err[0])) +
             "): the kvmmmu replay cannot be cross-checked";
    for (int i = 0; i < kStatCount; ++i) {
      if (r.stat_err[i]) continue;  // a stat this KVM lacks cannot contradict (pages_4k is there)
      if (static_cast<int64_t>(r.stat[i]) != replay_->leaf_counts()[i])
        return std::string("binary stat ") + names[i] + " = " + std::to_string(r.stat[i]) +
               " but the kvmmmu replay holds " + std::to_string(replay_->leaf_counts()[i]) +
               " such leaves (records missed, or another VM traced at the same time)";
    }
    return {};
  }

  // swprot hugetlb shared memory needs free pages in the pool; grows it (journaled, restored
  // at exit) when short.
  int reserve_hugetlb(const Config& cfg, BackingKind shared, std::string* why) {
    const bool g1 = shared == BackingKind::Hugetlb1G;
    const uint64_t per = pages_in(page_level(shared));
    uint64_t need = 0;
    // The slot's HVA sits hva_offset pages into its hugetlb mapping (lib/vm.c map_slot_memory).
    for (const Memslot& m : cfg.slots) need += (m.hva_offset % per + m.npages + per - 1) / per;
    const std::string dir = std::string("/sys/kernel/mm/hugepages/hugepages-") + (g1 ? "1048576kB" : "2048kB");
    auto read_u64 = [](const std::string& p) -> int64_t {
      std::ifstream in(p);
      int64_t v = -1;
      in >> v;
      return in ? v : -1;
    };
    const int64_t free_pages = read_u64(dir + "/free_hugepages"), total = read_u64(dir + "/nr_hugepages");
    if (free_pages < 0 || total < 0) {
      *why = "no hugetlb pool at " + dir;
      return -EOPNOTSUPP;
    }
    if (static_cast<uint64_t>(free_pages) >= need) return 0;
    // Growing a pool that already failed to grow this far costs seconds of compaction per
    // case for the same answer: remember the smallest need that failed, per pool.
    static std::map<std::string, uint64_t> failed_need;
    if (auto f = failed_need.find(dir); f != failed_need.end() && need >= f->second) {
      *why = "hugetlb pool " + dir + " could not grow to " + std::to_string(f->second) +
             " free pages earlier in this run (not enough or too fragmented memory on this host)";
      return -EOPNOTSUPP;
    }
    // Growing a pool past what the host has costs seconds of reclaim and compaction first.
    std::ifstream meminfo("/proc/meminfo");
    std::string key;
    uint64_t avail_kb = 0;
    while (meminfo >> key)
      if (key == "MemAvailable:") meminfo >> avail_kb;
    const uint64_t need_kb = (need - static_cast<uint64_t>(free_pages)) * per * 4;
    if (avail_kb && need_kb > avail_kb / 2) {
      *why = "hugetlb shared memory needs " + std::to_string(need_kb >> 10) + " MiB more in " + dir +
             ", more than half of this host's available " + std::to_string(avail_kb >> 10) + " MiB";
      return -EOPNOTSUPP;
    }
    const uint64_t want = static_cast<uint64_t>(total) + need - static_cast<uint64_t>(free_pages);
    if (!HostSettings::get().set(dir + "/nr_hugepages", std::to_string(want), why)) return -EOPNOTSUPP;
    if (read_u64(dir + "/free_hugepages") < static_cast<int64_t>(need)) {
      // This host cannot hold the config's shared memory in huge pages: not a kernel finding.
      HostSettings::get().set(dir + "/nr_hugepages", std::to_string(total), nullptr);
      failed_need[dir] = need;  // smaller than any need that failed before (checked above)
      *why = "hugetlb pool " + dir + " could not grow to " + std::to_string(need) +
             " free pages (not enough or too fragmented memory on this host)";
      return -EOPNOTSUPP;
    }
    return 0;
  }

  bool to_request(const Pin&, WorkerRequest&) { return false; }
  bool to_request(const Unpin&, WorkerRequest&) { return false; }
  bool to_request(const Inject&, WorkerRequest&) { return false; }
  bool to_request(const DeleteSlot&, WorkerRequest&) { return false; }
  bool to_request(const AddSlot&, WorkerRequest&) { return false; }

  std::string flavour_;
  tkvm_host host_;
  Caps caps_;
  LiveVm& vm_ = live_vm();
  Worker& worker_ = vm_.worker;
  MmuTrace& trace_ = vm_.trace;
  std::optional<LeafReplay>& replay_ = vm_.replay;
  bool reused_ = false;
  KmsgObserver& kmsg_ = vm_.kmsg;
  std::vector<uint64_t> build_gfns_;
  std::vector<std::string> setup_findings_;
  IntervalMap<Attr> attrs_;
  std::vector<GfnRange> slots_;
  std::string leaf_fault_;
  bool leaf_fault_reported_ = false;
  bool vm_dead_ = false, first_observe_ = true;
};

}  // namespace

Probe probe() {
  tkvm_host h = host_facts();
  Probe p;
  auto line = [&](std::string s) { p.report.push_back(std::move(s)); };
  // A killed earlier run may have left a grown hugetlb pool or a tracefs instance behind.
  for (const std::string& s : HostSettings::recover_stale()) line("kvm: restored " + s);
  for (const std::string& s : MmuTrace::remove_stale_instances()) line("kvm: removed stale tracefs instance " + s);
  if (!h.dev_kvm) {
    line("kvm: unusable: " + std::string(h.error));
    return p;
  }
  line(std::string("kvm: /dev/kvm via ") + (h.kvm_module[0] ? h.kvm_module : "unknown module") +
       ", VM types 0x" + hex(h.vm_types).substr(2) + ", guest_memfd flags 0x" +
       hex(h.gmem_flags).substr(2) + ", pre-fault " + (h.pre_fault ? "yes" : "no"));
  if (h.tdx_huge_page >= 0)
    line(std::string("kvm: kvm_intel.tdx_huge_page=") + (h.tdx_huge_page ? "Y" : "N"));
  if (h.vm_memory_attributes >= 0)
    line(std::string("kvm: kvm.vm_memory_attributes=") + (h.vm_memory_attributes ? "Y" : "N"));
  char tdx_facts[320];
  tdx_module_facts(h.tdx_huge_page, tdx_facts, sizeof(tdx_facts));
  line(std::string("kvm: ") + tdx_facts);
  char plan[700];
  tkvm_tdx_backing_plan(&h, plan, sizeof(plan));
  line(std::string("kvm/tdx: backings: ") + plan);
  struct Choice {
    const char* name;
    std::string why_not;
  } choices[] = {{"tdx", tdx_absence(h)}, {"swprot", swprot_absence(h)}, {"plain", plain_absence(h)}};
  for (auto& c : choices) {
    if (c.why_not.empty()) {
      line(std::string("kvm/") + c.name + ": available");
      if (p.flavour.empty()) p.flavour = c.name;
    } else {
      line(std::string("kvm/") + c.name + ": absent: " + c.why_not);
    }
  }
  if (!p.flavour.empty()) {
    p.caps = caps_for(p.flavour, h);
    for (auto& [cap, why] : p.caps.missing)
      line("kvm/" + p.flavour + ": no " + std::string(name(cap)) + ": " + why);
  }
  return p;
}

std::string flavour_absence(const std::string& flavour) {
  tkvm_host h = host_facts();
  return flavour == "tdx"      ? tdx_absence(h)
         : flavour == "swprot" ? swprot_absence(h)
         : flavour == "plain"  ? plain_absence(h)
         : flavour.empty()     ? "no kvm flavour available on this host"
                               : "unknown kvm flavour '" + flavour + "'";
}

std::unique_ptr<Target> make_target(const std::string& flavour, std::string* why) {
  tkvm_host h = host_facts();
  std::string chosen = flavour;
  if (chosen.empty()) chosen = probe().flavour;
  std::string absent = flavour_absence(chosen);
  if (!absent.empty()) {
    if (why) *why = "kvm/" + chosen + ": " + absent;
    return nullptr;
  }
  return std::make_unique<KvmTarget>(chosen, h);
}

}  // namespace tdxhp::kvm
