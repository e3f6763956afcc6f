#include "domain/catalog.h"

#include <algorithm>

namespace tdxhp {

const std::vector<InvariantInfo>& invariants() {
  static const std::vector<InvariantInfo> v = {
      {"INV-CONTIG", "mapping size never exceeds backing contiguity (folio or contiguous contract)", "L678, L4636, seed 002"},
      {"INV-ORDER", "gmem never splits a folio while a larger mapping of it exists", "L4502-4521, L6966-6991"},
      {"INV-ATTR", "no leaf spans mixed private/shared gfns", "L4436, L4837-4839"},
      {"INV-SLOT", "a huge leaf lies inside one memslot, gfn/gmem-offset aligned; HVA alignment irrelevant", "L4437, L4526-4527"},
      {"INV-LEVELCAP", "private level <= 2M; 4K when tdx_huge_page=N, no bit 51, or TD not RUNNABLE", "L4401-4403, L4442-4463"},
      {"INV-NOPROMOTE", "a mirror 2M region with a page table under it is never mapped 2M again", "L1342, L13632-13690, seed 000"},
      {"INV-ACCEPT", "accept results follow the observed mapping; GUEST_INHIBIT is one-way", "L230-277, L2436-2503"},
      {"INV-NOOVERZAP", "convert/punch of [s,e) removes no private mapping outside [s,e)", "L1961-1966, L3001-3006, L7283-7307"},
      {"INV-PRECISE", "after convert-to-shared/punch of [s,e) no private mapping in [s,e) remains", "L6200-6203"},
      {"INV-NOOVERSPLIT", "leaves fully inside or outside [s,e) keep their level", "L10974-10976, L2083-2086"},
      {"INV-ATOMIC", "a failed op changed nothing the guest can see; errors are negative errnos", "L3096-3098, L6560-6569, L14150-14157"},
      {"INV-DATA", "the guest reads back what it last wrote to unconverted private pages", "DOMAIN.md 4"},
      {"INV-BUSY", "BUSY is retried once after a kick and succeeds; no endless loops; no KVM_BUG_ON", "L1580-1589, L14243-14250"},
      {"INV-PAMT", "DPAMT refcounts balance and return to baseline", "L3328-3352, L4245-4313, L13364-13373"},
      {"INV-CACHE", "a split never dequeues from the split cache below its minimum", "L3474-3518, L12482-12524"},
      {"INV-LIVE", "when everything allows 2M, a guest 2M accept yields a 2M mapping", "L4526, review M5"},
  };
  return v;
}

const std::vector<MutantInfo>& mutants() {
  static const std::vector<MutantInfo> v = {
      {"MUT-SPLIT-BEFORE-UNMAP", "gmem splits the folio while KVM still maps it huge", "INV-ORDER,INV-CONTIG", "L4519-4521, L10964-10968"},
      {"MUT-PROMOTE", "mirror root allowed to merge 4K leaves into 2M (the TDX module refuses the 2M AUG: KVM_BUG_ON)",
       "INV-NOPROMOTE,INV-BUSY", "seed 000, L1342"},
      {"MUT-NO-SPLIT-ZAP", "partial convert/punch zaps the whole 2M leaf instead of splitting", "INV-NOOVERZAP,INV-DATA", "L6970-6991, L3055-3062"},
      {"MUT-NO-ATTR-SPLIT", "attribute change leaves a 2M leaf over mixed attributes", "INV-ATTR,INV-PRECISE", "L3053-3063"},
      // Each of these three also shows under a second invariant, by its own mechanism (issue 13: the
      // kill matrix flagged them): the end split it skips is the one that would meet an armed
      // -ENOMEM, so the conversion succeeds where it must fail (INV-ATOMIC) ...
      {"MUT-HEAD-ONLY", "boundary split handles the start but not the end", "INV-NOOVERZAP,INV-ATOMIC",
       "L2085, seed 003"},
      // ... the same boundary split serves the guest's accept level (L2436-2503), where a 1G leaf
      // left whole breaks INV-ACCEPT ...
      {"MUT-1G-MISS", "boundary check looks at 2M alignment only, misses a 1G leaf", "INV-NOOVERZAP,INV-ACCEPT",
       "L11525-11527"},
      // ... and the splits it adds draw on the split cache, so an armed -ENOMEM fails a conversion
      // that must succeed (INV-ATOMIC).
      {"MUT-OVERSPLIT", "leaves fully inside the range are split too", "INV-NOOVERSPLIT,INV-ATOMIC", "L10973-10976"},
      {"MUT-IGNORE-ACCEPT", "accept level not honoured (no split, or inhibit not set)", "INV-ACCEPT", "L2444-2503"},
      {"MUT-INHIBIT-BEFORE-SPLIT", "GUEST_INHIBIT set before (or without) the split", "INV-ACCEPT", "L2492-2499"},
      {"MUT-INHIBIT-CLEARED", "GUEST_INHIBIT cleared on zap", "INV-ACCEPT", "L274-277"},
      {"MUT-BUILD-HUGE", "2M mapped before RUNNABLE or with tdx_huge_page=N", "INV-LEVELCAP", "L4401, L4448-4452"},
      {"MUT-NO-FEATURE-GATE", "huge pages on without bit 51: DEMOTE fails, TD killed", "INV-LEVELCAP,INV-BUSY", "L4463, L826"},
      {"MUT-NO-BUSY-RETRY", "BUSY from DEMOTE not retried: KVM_BUG_ON", "INV-BUSY", "seed 004"},
      {"MUT-RESTART-LOOP", "TDX_INTERRUPTED_RESTARTABLE retried without bound", "INV-BUSY", "L14243-14250"},
      {"MUT-ZAP-THEN-FAIL", "zap before a step that can fail; error returned after data is gone", "INV-ATOMIC,INV-DATA", "L4507-4510, L4711-4713"},
      // The private leaves it leaves behind sit on gfns that are now shared: INV-ATTR as well
      // (the kill matrix flagged a kill by it, seed 1).
      {"MUT-BOOLRET", "bool ret swallows -ENOMEM as 1: attributes change, private leaves stay",
       "INV-ATOMIC,INV-PRECISE,INV-ATTR", "L2056"},
      {"MUT-PAMT-LEAK", "DEMOTE failure does not put the new S-EPT page's PAMT pair, or refcount not 512", "INV-PAMT", "L4255, L4311-4313"},
      {"MUT-CACHE-RACE", "split cache checked without the lock / below minimum", "INV-CACHE", "L12482-12512"},
      {"MUT-HVA-ALIGN", "misaligned HVA disables private 2M", "INV-LIVE", "L4526-4527"},
      {"MUT-NO-MERGE", "gmem never merges folios after to-private, so 2M never returns", "INV-LIVE", "L4523-4524"},
      {"MUT-WRONG-ROOT", "accept-level split applied to the normal root, not the mirror", "INV-ACCEPT", "L14465-14466"},
      {"MUT-UNLOCKED-CONVERT", "in-place conversion in one pass without guest_memfd's invalidate lock: a fault lands between edge splits",
       "INV-ORDER,INV-NOOVERZAP", "conversion-race-analysis.md R1-R3, guest_memfd.c :1005-1026"},
      // Defects of v3 itself, found by reading its tree (docs/findings.md); the clean sim has them fixed.
      {"MUT-INVALIDATE-LEAK", "per-VM conversion whose split fails skips kvm_mmu_invalidate_end: later faults retry forever",
       "INV-BUSY", "L3096-3098, docs/findings.md F1"},
      {"MUT-SLOT-PARTIAL-ZAP", "per-VM conversion splits and zaps slot by slot: a later slot's -ENOMEM leaves earlier slots zapped",
       "INV-ATOMIC,INV-DATA", "L3017-3027, docs/findings.md F2"},
      {"MUT-PRIVATE-ZAP-TO-PRIVATE", "in-place to-private conversion zaps private leaves too (KVM_FILTER_SHARED|PRIVATE)",
       "INV-NOOVERZAP,INV-DATA", "guest_memfd.c kvm_gmem_get_invalidate_filter, docs/findings.md F3"},
      // Kernel-side mistakes that only the TDX module's refusals or the PAMT books reveal.
      {"MUT-NO-TRACK", "REMOVE or DEMOTE after BLOCK without TDH.MEM.TRACK and the kick: TDX_TLB_TRACKING_NOT_DONE, KVM_BUG_ON",
       "INV-BUSY", "L1604-1614, L3920, seed 004"},
      {"MUT-NO-BLOCK", "DEMOTE or REMOVE without TDH.MEM.RANGE.BLOCK first: TDX_GPA_RANGE_NOT_BLOCKED, KVM_BUG_ON",
       "INV-BUSY", "L1604-1609, seed 004"},
      {"MUT-STALE-SPLIT", "split walk acts on the entry read before the top-up's mmu_lock drop: DEMOTE of a block vCPU 1 split",
       "INV-BUSY", "L3455-3460, L365-380"},
      {"MUT-PAMT-PUT-2M", "removing a 2M private leaf puts a DPAMT pair (only 4K leaves hold one); a later 4K AUG there "
       "finds no pair (TDX_MISSING_PAMT_PAGE_PAIR, KVM_BUG_ON)", "INV-PAMT,INV-BUSY", "L3349-3352"},
      {"MUT-AUG-FAIL-PAMT", "a failed 2M AUG puts a DPAMT pair it never got", "INV-PAMT", "L3339-3342"},
      // Shared-side and guest_memfd mistakes (issue 13): each makes one real-KVM fixture fail.
      {"MUT-SHARED-MIXED", "a shared fault maps 2M over a block that holds a private page (MIXED checked for private "
       "faults only)", "INV-ATTR", "L4436, L4837-4839"},
      {"MUT-THP-SPLIT-MISSED", "the shared level follows the THP's size, not the host PMD that a partial MADV_DONTNEED "
       "split: 2M over 4K host mappings", "INV-CONTIG", "SEMANTICS.md DiscardShared"},
      {"MUT-NOTIFIER-NO-ZAP", "an mmu-notifier invalidation of shared memory filters for private leaves only: discarded "
       "shared pages keep their shared leaves", "INV-CONTIG", "L3054"},
      {"MUT-CONVERT-ZAP-SHORT", "a conversion to shared zaps [start, end - 1): the last converted page keeps its "
       "private leaf (over a gfn now shared)", "INV-PRECISE,INV-ATTR", "L6200-6203"},
      {"MUT-PUNCH-PAST-END", "a guest_memfd punch hole invalidates and truncates one page past its end: the next "
       "private page loses its data (and, in a huge folio, the leaf over it its backing)", "INV-DATA,INV-NOOVERZAP,INV-CONTIG",
       "L3001-3006"},
  };
  return v;
}

const std::vector<ScenarioInfo>& scenarios() {
  static const std::vector<ScenarioInfo> v = {
      {"SC-PROMOTE", "4K at build, convert shared and back, accept 2M: stays 4K", "seed 000"},
      {"SC-ACCEPT4K-AFTER", "mapped 2M, guest accepts 4K: split, GUEST_INHIBIT", "L230-243"},
      {"SC-ACCEPT4K-BEFORE", "guest accepts 4K first: mapped 4K", "L245-252"},
      {"SC-PARTIAL-CONVERT", "convert 4K inside an accepted 2M: split, zap only that 4K", "L7283-7307, L13626-13630"},
      {"SC-1G-FOLIO", "2M leaves inside a 1G folio; convert one 4K; folio split", "L5167-5169, L5617-5621, L8529-8531"},
      {"SC-BOUNDARY", "convert/punch edges at every alignment class; huge ranges", "L11606-11626, L11810-11812"},
      {"SC-PUNCH-ALIGN", "unaligned punch on hugetlb gmem: -EINVAL, nothing changes", "L12324-12328"},
      {"SC-FAIL-MIDWAY", "folio split or topup -ENOMEM mid conversion: nothing changes", "L4507-4510, L6560-6569, L14150-14152"},
      {"SC-BUSY", "DEMOTE/BLOCK BUSY once: kick and retry succeeds", "seed 004, L1580-1589"},
      {"SC-OLD-MODULE", "module without bit 51: 4K only, no DEMOTE", "L9762-9780"},
      {"SC-PREFAULT", "prefault 2M then accept 4K: split on the accept exit", "L187-191"},
      {"SC-PIN", "convert while pinned: -EAGAIN, unchanged; retry after unpin works", "L9600-9603, L8892-8895"},
  };
  return v;
}

namespace {
template <class T>
const T* find_by_id(const std::vector<T>& v, std::string_view id) {
  auto it = std::find_if(v.begin(), v.end(), [&](const T& x) { return x.id == id; });
  return it == v.end() ? nullptr : &*it;
}
}  // namespace

const InvariantInfo* find_invariant(std::string_view id) { return find_by_id(invariants(), id); }
const MutantInfo* find_mutant(std::string_view id) { return find_by_id(mutants(), id); }
const ScenarioInfo* find_scenario(std::string_view id) { return find_by_id(scenarios(), id); }

}  // namespace tdxhp
