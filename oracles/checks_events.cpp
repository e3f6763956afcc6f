// Checks read from the target's event log and internals: INV-ORDER (event-ordered leaf view
// vs folio splits), INV-BUSY (BUSY kick-and-retry, restart watchdog), INV-PAMT, INV-CACHE.
#include <algorithm>

#include "domain/describe.h"
#include "oracles/spec_state.h"

namespace tdxhp::oracle_detail {

namespace {
constexpr uint64_t kMaxRestartRetries = 16;  // INV-BUSY watchdog (L14243-14250, MUT-RESTART-LOOP)
constexpr int8_t kNoLeaf = -1;
}  // namespace

void SpecState::check_events(StepCtx& c) {
  // Private leaves as the events change them, over the pre-step view (INV-ORDER needs the
  // order in which KVM unmapped and gmem split, which the final windows cannot show).
  IntervalMap<int8_t>& overlay = scratch_overlay;
  overlay.clear();
  auto largest_leaf = [&](uint64_t s, uint64_t e) {
    int best = kNoLeaf;
    overlay.for_each(s, e, [&](uint64_t, uint64_t, int8_t v) { best = std::max<int>(best, v); });
    overlay.for_each_gap(s, e, [&](uint64_t a, uint64_t b) {
      priv.map().for_each(a, b, [&](uint64_t, uint64_t, const LeafVal& v) { best = std::max<int>(best, int(v.level)); });
    });
    return best;
  };
  bool inhibit_seen = false;
  const Accept* accept_op = c.op ? std::get_if<Accept>(c.op) : nullptr;

  for (const Event& e : c.obs->events) {
    switch (e.kind) {
      case EventKind::MapLeaf:
      case EventKind::SplitLeaf:
      case EventKind::ZapLeaf: {
        if (!e.is_private) break;
        const uint64_t n = e.npages ? e.npages : pages_in(e.level);
        const int8_t v = e.kind == EventKind::MapLeaf   ? int8_t(e.level)
                         : e.kind == EventKind::SplitLeaf ? int8_t(next_lower(e.level))
                                                          : kNoLeaf;
        overlay.assign(e.gfn, e.gfn + n, v);
        // L2492-2499: KVM splits first and only then sets GUEST_INHIBIT (MUT-INHIBIT-BEFORE-SPLIT).
        if (e.kind == EventKind::SplitLeaf && inhibit_seen && accept_op && GfnRange{e.gfn, n}.contains(accept_op->gfn))
          c.report("INV-ACCEPT", {e.gfn, n}, "the accept exit splits the leaf before setting GUEST_INHIBIT (L2492-2499)",
                   "GUEST_INHIBIT was set before " + describe(e));
        break;
      }
      case EventKind::SetInhibit:
        inhibit_seen = true;
        break;
      case EventKind::FolioMerge: {
        // L4730-4737: gmem merges a block back only when all of it is private after the op
        // (gmem indices outside the slot are never converted: private).
        const Memslot* m = slot_by_id(e.slot);
        if (!m) break;
        const uint64_t lo = std::max(e.gfn, m->gmem_offset), hi = std::min(e.gfn + e.npages, m->gmem_offset + m->npages);
        if (lo >= hi || all_attr({gfn_of_index(*m, lo), hi - lo}, Attr::Private)) break;
        c.report("INV-ATTR", {gfn_of_index(*m, lo), hi - lo},
                 "gmem merges a folio back only over a block that is all private after the op (L4730-4737)",
                 describe(e));
        break;
      }
      case EventKind::FolioSplit: {
        const Memslot* m = slot_by_id(e.slot);
        if (!m) break;
        // Only the part of the folio this slot maps: the file may run past the slot's end.
        const uint64_t lo = std::max(e.gfn, m->gmem_offset), hi = std::min(e.gfn + e.npages, m->gmem_offset + m->npages);
        if (lo >= hi) break;
        const Gfn g = gfn_of_index(*m, lo);
        const int big = largest_leaf(g, g + (hi - lo));
        if (big != kNoLeaf && pages_in(Level(big)) > (uint64_t{1} << e.order_to))
          c.report("INV-ORDER", {g, hi - lo},
                   "gmem splits a folio only after KVM unmapped/split every larger leaf (L4502-4521)",
                   "order-" + std::to_string(e.order_from) + " folio split to order " + std::to_string(e.order_to) +
                       " while a private " + std::string(name(Level(big))) + " leaf still maps it");
        break;
      }
      case EventKind::Seamcall:
        if (e.name == "TDH.MEM.PAGE.DEMOTE" && !cfg.features.enhanced_demote_interruptibility)
          c.report("INV-LEVELCAP", {e.gfn, pages_in(e.level)},
                   "no DEMOTE without TDX_FEATURES0 bit 51: huge pages stay off (L4463, SC-OLD-MODULE)", describe(e));
        break;
      default:
        break;
    }
  }
}

namespace {

// The SEAMCALLs an inject can fail, by the name the event log gives them.
std::optional<FaultSite> seamcall_site(std::string_view name) {
  static constexpr std::pair<std::string_view, FaultSite> kSites[] = {
      {"TDH.MEM.RANGE.BLOCK", FaultSite::Block}, {"TDH.MEM.TRACK", FaultSite::Track},
      {"TDH.MEM.PAGE.DEMOTE", FaultSite::Demote}, {"TDH.MEM.PAGE.REMOVE", FaultSite::Remove},
      {"TDH.PHYMEM.PAGE.WBINVD", FaultSite::Wbinvd}, {"TDH.MEM.PAGE.AUG", FaultSite::Aug},
      {"TDH.MEM.SEPT.ADD", FaultSite::SeptAdd}};
  for (auto& [n, site] : kSites)
    if (name == n) return site;
  return std::nullopt;
}

}  // namespace

// KVM's reaction to a SEAMCALL that fails (L1580-1614): BUSY from BLOCK, TRACK, DEMOTE or REMOVE
// (tdh_do_no_vcpus) is retried once after kicking every vCPU; BUSY from AUG or SEPT.ADD returns
// -EBUSY and the fault is retried; anything else, a BUSY on the retry included, is TDX_BUG_ON at
// once: KVM_BUG_ON, no retry, the op returns -EIO. Every failure must be an injected one (the
// module refuses nothing else here); an injected status is consumed as the call returns it.
void SpecState::check_seamcalls(StepCtx& c) {
  struct Busy {  // the SEAMCALL whose BUSY awaits its retry; empty name: none
    std::string_view name;  // a literal, as Event::name
    bool kicked = false;
    bool needs_kick = true;
    explicit operator bool() const { return !name.empty(); }
    void reset() { *this = Busy{}; }
  };
  Busy busy;
  std::optional<Event> fatal;  // a failure that calls for KVM_BUG_ON
  auto where = [&](const Event& e) { return GfnRange{e.gfn, pages_in(e.level)}; };
  for (const Event& e : c.obs->events) {
    if (e.kind == EventKind::Kick && busy) busy.kicked = true;
    if (e.kind == EventKind::KvmBugOn) {
      if (fatal) c.vm_died_legally = true;
      break;  // nothing runs on a dead TD
    }
    if (e.kind != EventKind::Seamcall) continue;
    if (fatal) {  // KVM must stop at once (no retry of an error other than BUSY: L14243-14250)
      c.report("INV-BUSY", where(e), "after " + std::string(fatal->name) + " returned " + tdx_status_name(fatal->status) +
                                         ", KVM_BUG_ON at once: no further SEAMCALL (L1604-1614, L14243-14250)",
               describe(e));
      fatal.reset();
    }
    const std::optional<FaultSite> site = seamcall_site(e.name);
    const bool retry = busy && busy.name == e.name;
    if (retry) {
      if (busy.needs_kick && !busy.kicked)
        c.report("INV-BUSY", where(e), "BUSY is retried only after kicking all vCPUs (L1580-1589)",
                 std::string(e.name) + " retried without a kick");
      busy.reset();
    }
    if (e.status == tdx::kSuccess) continue;
    if (!site || take_armed(*site) != e.status) {
      // Not injected: KVM issued a SEAMCALL the module refuses (or a wrapper refused it).
      if (!(e.name == "TDH.MEM.PAGE.DEMOTE" && e.status == tdx::kSwError))  // INV-LEVELCAP says why
        c.report("INV-BUSY", where(e), "KVM issues only SEAMCALLs the TDX module accepts", describe(e));
      fatal = e;
      continue;
    }
    const bool no_vcpus = *site == FaultSite::Block || *site == FaultSite::Track || *site == FaultSite::Demote ||
                          *site == FaultSite::Remove;
    const bool fault_retry = *site == FaultSite::Aug || *site == FaultSite::SeptAdd;
    // tdh_do_no_vcpus retries once; a fault is retried as long as AUG or SEPT.ADD is BUSY.
    if (tdx::status_class(e.status) == tdx::kOperandBusy && ((no_vcpus && !retry) || fault_retry) && !busy)
      busy = Busy{e.name, false, no_vcpus};
    else
      fatal = e;  // any other status, or BUSY again on the retry
  }
  if (fatal && !c.vm_died_legally)
    c.report("INV-BUSY", where(*fatal),
             "after " + std::string(fatal->name) + " returned " + tdx_status_name(fatal->status) +
                 ", KVM_BUG_ON at once and the op returns -EIO (L1604-1614)",
             "the TD lives on (" + describe(*c.out) + ")");
  if (busy && !c.vm_died_legally)
    c.report("INV-BUSY", c.op ? op_range(*c.op) : GfnRange{},
             "TDX_OPERAND_BUSY from " + std::string(busy.name) + " is retried once after a kick (L1580-1589)",
             "no retry in the event log");
}

void SpecState::check_internals(StepCtx& c) {
  if (!c.obs->internals) return;
  const SimInternals& in = *c.obs->internals;
  const GfnRange where = c.op ? op_range(*c.op) : GfnRange{};
  if (in.fault_retries > kMaxRestartRetries)
    c.report("INV-BUSY", where,
             "a fault retries only while an invalidation is in progress: every invalidation ends (no error path "
             "loops forever)",
             std::to_string(in.fault_retries) + " retries of one fault in one step");
  if (in.restart_retries > kMaxRestartRetries)
    c.report("INV-BUSY", where,
             "TDX_INTERRUPTED_RESTARTABLE retried at most " + std::to_string(kMaxRestartRetries) + " times",
             std::to_string(in.restart_retries) + " retries in one step");
  if (in.split_cache_underflows > cache_underflows)
    c.report("INV-CACHE", where, "a split dequeues from the split cache only down to its minimum (L12482-12524)",
             std::to_string(in.split_cache_underflows - cache_underflows) + " dequeue(s) below minimum " +
                 std::to_string(in.split_cache_min));
  cache_underflows = std::max(cache_underflows, in.split_cache_underflows);
  // GUEST_INHIBIT is one-way (L274-277, MUT-INHIBIT-CLEARED) and set on every accept exit.
  if (in.guest_inhibit_blocks < inhibit_blocks_seen)
    c.report("INV-ACCEPT", where, "GUEST_INHIBIT is never cleared: at least " + std::to_string(inhibit_blocks_seen) +
                                      " inhibited blocks stay", std::to_string(in.guest_inhibit_blocks));
  else if (in.guest_inhibit_blocks < inhibited.size())
    c.report("INV-ACCEPT", where, "every accept exit sets GUEST_INHIBIT: at least " +
                                      std::to_string(inhibited.size()) + " inhibited blocks",
             std::to_string(in.guest_inhibit_blocks));
  inhibit_blocks_seen = std::max(inhibit_blocks_seen, in.guest_inhibit_blocks);
  if (!cfg.features.dynamic_pamt) return;
  for (const SimInternals::PamtRef& r : in.pamt_changes) {
    pamt_refcount[r.pfn_2m] = r.refcount;
    pamt_touched.push_back(r.pfn_2m);
  }
  std::sort(pamt_touched.begin(), pamt_touched.end());  // ascending and once each, as a set held them
  pamt_touched.erase(std::unique(pamt_touched.begin(), pamt_touched.end()), pamt_touched.end());
  for (Pfn pfn_2m : pamt_touched) {
    uint64_t mapped_4k = 0;
    pfns_in_4k_leaves.for_each(pfn_2m, pfn_2m + 512, [&](uint64_t a, uint64_t b, bool) { mapped_4k += b - a; });
    auto it = pamt_refcount.find(pfn_2m);
    const int64_t refcount = it == pamt_refcount.end() ? 0 : it->second;
    if (static_cast<int64_t>(mapped_4k) != refcount)
      c.report("INV-PAMT", where,
               "DPAMT refcount of 2M pfn range " + hex(pfn_2m) + " = its " + std::to_string(mapped_4k) +
                   " private 4K mappings (L3328-3352, L4311)",
               "refcount " + std::to_string(refcount));
  }
  pamt_touched.clear();
}

}  // namespace tdxhp::oracle_detail
