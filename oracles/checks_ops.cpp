// Per-op rules of SEMANTICS.md: the outcomes allowed from the pre-step state, the changes the
// op may make (ChangePolicy), then op-specific checks on the learned post-step state.
// A wrong result is reported under the invariant of the op's family: accept/#VE -> INV-ACCEPT,
// data read -> INV-DATA, any other host op -> INV-ATOMIC (errors and their absence).
#include <algorithm>
#include <cerrno>
#include <type_traits>

#include "domain/describe.h"
#include "oracles/spec_state.h"

namespace tdxhp::oracle_detail {

namespace {

std::string errs_words(std::initializer_list<int> v) {
  std::string s;
  for (int e : v) s += (s.empty() ? "" : " or ") + errno_name(e);
  return s;
}

}  // namespace

struct OpChecker {
  SpecState& s;
  StepCtx& c;
  int err() const { return c.out->err; }

  // Positive returns are reported once, in Oracle::step (MUT-BOOLRET). `why` is a literal, or
  // a function that words it: every step checks its return, and only a violation needs words.
  template <class Why>
  bool expect_err(std::initializer_list<int> allowed, const char* inv, GfnRange r, const Why& why) {
    if (err() > 0) return false;
    if (std::find(allowed.begin(), allowed.end(), err()) != allowed.end()) return true;
    std::string words;
    if constexpr (std::is_invocable_v<const Why&>) words = why();
    else words = why;
    c.report(inv, r, words + ": " + errs_words(allowed), describe(*c.out));
    return false;
  }
  void nothing_changes() { s.learn(c, ChangePolicy::failing()); }

  void read_or_write(const Access& a) {
    if (a.write) {
      s.data.assign(a.gfn, a.gfn + 1, DataToken{DataToken::Value, a.value});
      return;
    }
    const DataToken* t = s.data.at(a.gfn);
    const auto want = t ? t->expected_at(a.gfn) : std::nullopt;
    if (want && c.out->read) ++s.evidence.reads_compared;
    if (want && c.out->read && *c.out->read != *want)
      c.report("INV-DATA", {a.gfn, 1}, "guest reads back " + hex(*want) + " (last write, or zero after accept/punch)",
               "read " + hex(*c.out->read));
  }

  void operator()(const Convert& o) { convert(o.range, o.to); }
  void operator()(const MapGpa& o) { convert(o.range, o.to); }

  void convert(const GfnRange& r, Attr to) {
    if (c.out->unsupported) return nothing_changes();
    const bool in_place = s.cfg.attr_mode == AttrMode::InPlace;
    const auto parts = s.slot_parts(r);
    if (r.empty() || (in_place && parts.empty())) {
      expect_err({-EINVAL}, "INV-ATOMIC", r,
                 r.empty() ? "converting an empty range fails" : "in place, a range with no memslot has no gmem to convert");
      return nothing_changes();
    }
    if (s.converted_already(r, to)) {
      expect_err({0}, "INV-ATOMIC", r, [&] { return "converting a range that is already " + std::string(name(to)) + " returns"; });
      return s.learn(c, ChangePolicy::none());
    }
    const FailurePlan plan = s.planned(c.step, *c.op);
    const std::optional<GfnRange> failing = plan.failing_pass;
    const int want = plan.err;
    expect_err({want}, "INV-ATOMIC", r, [&] {
      return "convert to " + std::string(name(to)) + " returns" +
             (failing ? " at the pass over " + describe(*failing) : std::string());
    });
    // A failing pass stops the conversion; the passes before it stay converted. Per VM the
    // attributes of the whole range change, holes included; in place only gmem's.
    const GfnRange done{r.start, (failing && err() != 0 ? failing->start : r.end()) - r.start};
    const auto done_parts = s.slot_parts(done);
    auto convert_span = [&](const GfnRange& span) {
      if (span.empty()) return;
      s.attrs.assign(span.start, span.end(), to);
      s.data.assign(span.start, span.end(), DataToken{});  // shared contents are unspecified until written
    };
    if (in_place)
      for (const auto& [m, part] : done_parts) convert_span(part);
    else
      convert_span(done);
    ChangePolicy p = ChangePolicy::none();
    p.failed = err() != 0;
    if (to == Attr::Shared) {
      if (!done.empty()) p.zap = done;
      p.split_edges = r;  // a failing pass may leave its edge splits (invisible); no leaf crosses a slot edge
    }
    s.learn(c, p);
    if (done.empty()) return;
    if (to == Attr::Shared) s.check_private_gone(c, done, "convert to shared");
    for (const auto& [m, part] : done_parts) s.check_folios_uniform(c, *m, part);
    if (to == Attr::Private) {
      if (const auto left = s.first_shared_leaf(done))
        c.report("INV-ATTR", *left, "converting to private zaps the shared leaves of " + describe(done),
                 "shared leaves remain over now-private " + describe(*left));
    }
  }

  void operator()(const PunchHole& o) {
    const GfnRange& r = o.range;
    if (c.out->unsupported) return nothing_changes();
    const Memslot* m = s.slot_of(r);
    if (!m) {
      expect_err({-EINVAL}, "INV-ATOMIC", r, "punching a range not inside one memslot fails");
      return nothing_changes();
    }
    const Level folio = page_level(s.cfg.backing);
    if (!is_aligned(s.gmem_index(*m, r.start), folio) || !is_aligned(s.gmem_index(*m, r.end()), folio)) {
      expect_err({-EINVAL}, "INV-ATOMIC", r, [&] {
        return "a punch not aligned to the " + std::string(name(folio)) + " folio size fails (L12324-12328)";
      });
      return nothing_changes();
    }
    const int want = s.planned(c.step, *c.op).err;  // the boundary split's top-up meets an armed fault
    expect_err({want}, "INV-ATOMIC", r, "punch hole returns");
    if (err() != 0) return s.learn(c, ChangePolicy::failing(r));
    // Punched pages read zero when faulted back (new zeroed folio); per-VM shared memory is not gmem.
    std::vector<GfnRange> zeroed;
    s.attrs.for_each(r.start, r.end(), [&](uint64_t a, uint64_t b, Attr x) {
      if (x == Attr::Private || s.cfg.attr_mode == AttrMode::InPlace || !s.caps(Cap::PrivateMemory))
        zeroed.push_back({a, b - a});
    });
    for (const GfnRange& z : zeroed) s.data.assign(z.start, z.end(), DataToken{DataToken::Value, 0});
    s.learn(c, ChangePolicy::zapping(r));
    s.check_private_gone(c, r, "punch hole");
  }

  // SEMANTICS.md "Queued guest ops": the queueing step itself does nothing; the engine runs
  // the op later as an ordinary guest op.
  bool queued_step(bool queued, const GfnRange& r) {
    if (!queued) return false;
    if (!s.caps(Cap::Interleaving)) {
      if (!c.out->unsupported)
        c.report("INV-ATOMIC", r, "a target without interleaving reports a queued guest op unsupported",
                 describe(*c.out));
    } else {
      expect_err({0}, "INV-ATOMIC", r, "queueing a guest op on vCPU 1 returns");
    }
    ChangePolicy p = ChangePolicy::failing();
    p.frozen = "queueing a guest op maps, splits or zaps nothing: vCPU 1 runs it later";
    s.learn(c, p);
    return true;
  }

  // madvise(MADV_DONTNEED) on the shared host memory (SEMANTICS.md "Host ops").
  void operator()(const DiscardShared& o) {
    GfnRange r = o.range;
    if (c.out->unsupported) return nothing_changes();
    const Memslot* m = s.slot_of(r);
    if (!m) {
      expect_err({-EINVAL}, "INV-ATOMIC", r, "discarding shared memory outside one memslot fails");
      return nothing_changes();
    }
    const bool per_vm = s.cfg.attr_mode == AttrMode::PerVm;
    const BackingKind k = s.cfg.shared_backing;
    if (per_vm && (k == BackingKind::Hugetlb2M || k == BackingKind::Hugetlb1G)) {
      const Level page = page_level(k);
      const uint64_t h = s.host_index(*m, r.start);
      if (!is_aligned(h, page)) {
        expect_err({-EINVAL}, "INV-ATOMIC", r, [&] {
          return "MADV_DONTNEED of hugetlb memory at an HVA not " + std::string(name(page)) + "-aligned fails";
        });
        return nothing_changes();
      }
      r.npages = align_down(h + r.npages, page) - h;  // madvise rounds the end down (mm/madvise.c)
    }
    expect_err({0}, "INV-ATOMIC", r, "MADV_DONTNEED of the slot's shared memory succeeds");
    if (err() != 0 || r.empty() || !per_vm) return s.learn(c, ChangePolicy::none());
    s.attrs.for_each(r.start, r.end(), [&](uint64_t a, uint64_t b, Attr x) {  // freed anonymous pages refault zero-filled
      if (x == Attr::Shared) s.data.assign(a, b, DataToken{DataToken::Value, 0});
    });
    if (k == BackingKind::Thp2M) mark_thp_blocks(*m, r);
    // TDX: the notifier filters shared (L3054), so private leaves must stay (learn reports
    // INV-NOOVERZAP); a single-root VM may zap them, with their data safe in gmem.
    s.learn(c, ChangePolicy::none());
    if (!c.obs->has_leaves) return;
    // ... and it zaps every shared leaf overlapping the freed host pages (mmu_notifier
    // invalidate_range_start -> kvm_unmap_gfn_range); a leaf left there maps freed memory.
    std::optional<std::pair<GfnRange, LeafVal>> stale;
    s.shared.map().for_each(r.start, r.end(), [&](uint64_t a, uint64_t b, const LeafVal& v) {
      if (!stale) stale = {GfnRange{a, b - a}, v};
    });
    if (stale)
      c.report("INV-CONTIG", stale->first,
               "MADV_DONTNEED of " + describe(r) + " zaps every shared leaf over the host pages it frees",
               leaf_words(stale->first.start, stale->first.npages, stale->second, false) + " still maps them");
  }

  // A 2M host block discarded in part has its PMD split (4K from then on); one discarded
  // whole is gone and may come back as a fresh THP.
  void mark_thp_blocks(const Memslot& m, const GfnRange& r) {
    const uint64_t n = pages_in(Level::L2M);
    const uint64_t hs = s.host_index(m, r.start), he = hs + r.npages;
    auto gfn_range = [&](uint64_t a, uint64_t b) {  // host index range -> gfns, clipped to the slot
      const uint64_t lo = std::max(a, m.hva_offset), hi = std::min(b, m.hva_offset + m.npages);
      return GfnRange{m.base_gfn + (lo - m.hva_offset), hi > lo ? hi - lo : 0};
    };
    const uint64_t whole_lo = align_up(hs, Level::L2M), whole_hi = align_down(he, Level::L2M);
    if (whole_lo < whole_hi) {
      const GfnRange w = gfn_range(whole_lo, whole_hi);
      s.thp_pmd_split.erase(w.start, w.end());
    }
    // Only the blocks holding the first and the last discarded page can be partial.
    for (uint64_t b : {align_down(hs, Level::L2M), align_down(he - 1, Level::L2M)}) {
      if (b >= whole_lo && b + n <= whole_hi) continue;  // discarded whole
      const GfnRange g = gfn_range(b, b + n);
      if (!g.empty()) s.thp_pmd_split.assign(g.start, g.end(), true);
    }
  }

  void operator()(const Prefault& o) {
    if (c.out->unsupported) return nothing_changes();
    if (o.range.empty())
      expect_err({-EINVAL}, "INV-ATOMIC", o.range, "an empty prefault fails");
    else if (!s.covered_by_slots(o.range)) {
      // The first gfn outside every slot stops it: -ENOENT when shared (a no-slot fault),
      // -EFAULT when private (no gmem can back it: a memory-fault exit).
      Gfn hole = o.range.start;
      for (const auto& [m, part] : s.slot_parts(o.range)) {
        if (part.start > hole) break;
        hole = part.end();
      }
      const bool priv = s.attr_at(hole) == Attr::Private;
      expect_err({priv ? -EFAULT : -ENOENT}, "INV-ATOMIC", o.range, [&] {
        return "prefaulting gfn " + hex(hole) + ", outside every memslot and " + (priv ? "private" : "shared") + ", fails";
      });
    }
    else
      expect_err({0}, "INV-ATOMIC", o.range, "prefault of memslot gfns succeeds (L187-191)");
    s.learn(c, ChangePolicy::none());  // may map; maps made before an -ENOENT stay
  }

  void operator()(const Access& a) {
    const GfnRange r{a.gfn, 1};
    if (queued_step(a.queued, r)) return;
    if (c.out->unsupported) return nothing_changes();
    if (!s.slot_at(a.gfn)) {
      expect_err({-EFAULT}, "INV-ATOMIC", r, "guest access outside every memslot faults");
      return nothing_changes();
    }
    const bool is_private = s.attr_at(a.gfn) == Attr::Private && s.caps(Cap::PrivateMemory);
    if (c.out->waiting) {  // vCPU 1's fault waits for the running op: nothing happened yet
      if ((is_private ? s.priv : s.shared).leaf_at(a.gfn))
        c.report("INV-ATOMIC", r, "only a fault waits: an access to a mapped page completes", describe(*c.out));
      ChangePolicy p = ChangePolicy::failing();
      p.frozen = "an access waiting for its fault changes nothing";
      return s.learn(c, p);
    }
    if (!is_private || !s.tdx) {
      expect_err({0}, "INV-ATOMIC", r, "guest access to a memslot gfn returns");
      if (c.out->ve)
        c.report("INV-ACCEPT", r, "no #VE: the page has no PENDING state here", "#VE");
      s.learn(c, ChangePolicy::none());
      if (err() == 0 && !c.out->ve) read_or_write(a);
      return;
    }
    if (!s.caps(Cap::LeafLevels)) {  // accept state follows leaves: unknown without them
      s.learn(c, ChangePolicy::none());
      return;
    }
    const AcceptState* st = s.priv.leaf_at(a.gfn) ? s.accept.at(a.gfn) : nullptr;
    const bool accepted = st && *st == AcceptState::Accepted;
    expect_err({0}, "INV-ATOMIC", r, "guest access to a private gfn returns");
    if (c.out->ve == accepted)
      c.report("INV-ACCEPT", r,
               accepted ? "gfn " + hex(a.gfn) + " is ACCEPTED: the access completes without #VE"
                        : "gfn " + hex(a.gfn) + " is PENDING or unmapped: the access raises #VE",
               c.out->ve ? "#VE" : "no #VE");
    s.learn(c, ChangePolicy::none());
    if (err() == 0 && accepted && !c.out->ve) read_or_write(a);
  }

  // INV-ACCEPT unless the accept completed with `want`; why() words the case, only on a report.
  template <class Why>
  void check_status(const GfnRange& r, uint64_t want, Why&& why) {
    ++s.evidence.accepts_compared;
    if (err() == 0 && c.out->tdx_status == want) return;
    c.report("INV-ACCEPT", r, tdx_status_name(want) + " " + why(), describe(*c.out));
  }
  void mark_accepted(const GfnRange& leaf) {
    s.accept.assign(leaf.start, leaf.end(), AcceptState::Accepted);
    s.data.assign(leaf.start, leaf.end(), DataToken{DataToken::Value, 0});  // TDX accept zeroes the page
  }

  void operator()(const Accept& a) {
    const Level A = a.level;
    const GfnRange r{a.gfn, pages_in(A)};
    if (queued_step(a.queued, r)) return;
    if (!s.caps(Cap::Accept)) {
      if (!c.out->unsupported)
        c.report("INV-ACCEPT", r, "a target without TDX accept reports the accept as unsupported", describe(*c.out));
      return nothing_changes();
    }
    if (c.out->unsupported) return nothing_changes();
    // verify_page_info_input(gpa, LVL_PT, LVL_PD): only 4K and 2M, aligned.
    if (A > Level::L2M || !is_aligned(a.gfn, A)) {
      check_status(r, tdx::kOperandInvalid | tdx::kOperandIdRcx, [&] {
        return A > Level::L2M ? std::string("for a 1G accept: the module takes 4K and 2M only")
                              : "for an accept at a gfn not " + std::string(name(A)) + "-aligned";
      });
      return nothing_changes();
    }
    if (!s.caps(Cap::LeafLevels)) return s.learn(c, ChangePolicy::none());  // results depend on the mapping

    // The module decides exit or not by the S-EPT as the accept starts, before a second vCPU
    // runs inside the exit's mmu_lock drop (Oracle::begin).
    const FailurePlan plan = s.planned(c.step, *c.op);
    const auto pre = s.priv.leaf_at(a.gfn);
    if (auto want = plan.accept_no_exit) {
      // No exit: no split, no GUEST_INHIBIT, no new leaf (module cases 1.1, 3, or a leaf of A).
      // No exit means no mmu_lock drop: the S-EPT now is the one the accept met.
      check_status(r, *want, [&] {
        return "for an accept at " + std::string(name(A)) + " over " + s.accept_words(a.gfn) + " (no exit)";
      });
      const uint64_t inhibit_before = s.inhibit_blocks_seen;
      ChangePolicy p = ChangePolicy::failing();
      p.frozen = "an accept that takes no exit maps, splits and zaps nothing";
      s.learn(c, p);
      if (c.obs->internals && c.obs->internals->guest_inhibit_blocks > inhibit_before)
        c.report("INV-ACCEPT", r, "an accept that takes no exit sets no GUEST_INHIBIT (only the exit path does, L2436-2503)",
                 std::to_string(c.obs->internals->guest_inhibit_blocks - inhibit_before) + " block(s) newly inhibited");
      if (*want == tdx::kSuccess && err() == 0 && c.out->tdx_status == tdx::kSuccess)
        mark_accepted({pre->first, pages_in(pre->second.level)});
      return;
    }
    if (!s.slot_at(a.gfn)) {
      if (err() != -EFAULT)
        c.report("INV-ACCEPT", r, "accept of a slot-less gfn: memory-fault exit, -EFAULT", describe(*c.out));
      return nothing_changes();
    }
    // The exit path (L230-277, L2436-2515). KVM honours the accept level first, for any gfn of
    // a slot: it splits before it inhibits, so a split-cache top-up that fails with an
    // injected -ENOMEM returns before GUEST_INHIBIT is set and changes nothing guest-visible.
    const bool live = !pre && A == Level::L2M && s.allows_private_2m(a.gfn);
    if (plan.err == -ENOMEM) {  // the split of the larger leaf meets an armed top-up fault
      if (err() != -ENOMEM)
        c.report("INV-ACCEPT", r, "the exit's split meets the armed split-cache -ENOMEM: the accept fails with it",
                 describe(*c.out));
      return s.learn(c, ChangePolicy::failing(r));
    }
    ChangePolicy p;
    p.split_edges = r;
    // GUEST_INHIBIT at A+1 (and A+2 for 4K) for the blocks around gfn; one-way.
    const Memslot& slot = *s.slot_at(a.gfn);
    if (A == Level::L4K) s.lower_cap_inhibit(slot, align_down(a.gfn, Level::L2M), Level::L2M, Level::L4K);
    s.lower_cap_inhibit(slot, align_down(a.gfn, Level::L1G), Level::L1G, Level::L2M);
    if (s.attr_at(a.gfn) != Attr::Private) {  // then the fault: a private GPA on a shared gfn
      if (err() != -EFAULT)
        c.report("INV-ACCEPT", r, "accept of a shared gfn: GUEST_INHIBIT set, then a memory-fault exit, -EFAULT",
                 describe(*c.out));
      return s.learn(c, p);
    }
    s.learn(c, p);
    if (c.out->waiting) return;  // vCPU 1: the fault waits for the running op; the accept runs again after it
    if (err() != 0) {
      if (err() < 0)
        c.report("INV-ACCEPT", r, "the guest's accept completes with a TDX status", describe(*c.out));
      return;
    }
    s.check_inhibit_over(c, {align_down(a.gfn, Level::L1G), pages_in(Level::L1G)});
    const auto post = s.priv.leaf_at(a.gfn);
    if (!post) {
      c.report("INV-ACCEPT", r, "after the accept exit gfn " + hex(a.gfn) + " is mapped private", "no private leaf");
      return;
    }
    const LeafVal& now = post->second;
    const GfnRange leaf{post->first, pages_in(now.level)};
    if (live && now.level != Level::L2M)
      c.report("INV-LIVE", r,
               "everything allows 2M (RUNNABLE, aligned private block, huge folio, no inhibit, no page table, "
               "bit 51, tdx_huge_page): a guest 2M accept yields a 2M leaf (L4526)",
               leaf_words(post->first, pages_in(now.level), now));
    if (now.level > A) return;  // check_inhibit_over reported the leaf left larger than A
    // The guest re-executes the ACCEPT against the leaf KVM left: PENDING (fresh or split), or
    // ACCEPTED when vCPU 1 accepted it meanwhile (at this exit's mmu_lock drop).
    const bool now_accepted = s.all_accepted(leaf);
    const uint64_t want = now.level < A ? tdx::with_level(tdx::kPageSizeMismatch, A)
                          : now_accepted ? tdx::with_level(tdx::kPageAlreadyAccepted, A)
                                         : tdx::kSuccess;
    check_status(r, want, [&] {
      return "for an accept at " + std::string(name(A)) + " over " + leaf_words(leaf.start, leaf.npages, now) +
             " (after the exit)";
    });
    if (want == tdx::kSuccess && c.out->tdx_status == tdx::kSuccess) mark_accepted(leaf);
  }

  void pin(const GfnRange& r, int delta) {
    if (c.out->unsupported) return nothing_changes();
    if (!s.slot_of(r)) {
      expect_err({-EINVAL}, "INV-ATOMIC", r, "pinning outside one memslot fails");
      return nothing_changes();
    }
    expect_err({0}, "INV-ATOMIC", r, "pin/unpin of memslot pages succeeds");
    if (err() == 0) {
      std::vector<std::pair<uint64_t, uint64_t>> gaps;
      s.pins.for_each_gap(r.start, r.end(), [&](uint64_t a, uint64_t b) { gaps.emplace_back(a, b); });
      s.pins.update(r.start, r.end(), [&](uint64_t, uint64_t, uint32_t& n) { n = delta > 0 ? n + 1 : n ? n - 1 : 0; });
      if (delta > 0)
        for (auto [a, b] : gaps) s.pins.assign(a, b, 1);
    }
    s.learn(c, ChangePolicy::none());
  }
  // SEMANTICS.md "Memslots": deleting a slot zaps its leaves (its private pages leave the TD)
  // and drops its lpage_info (GUEST_INHIBIT); the mirror's page tables stay until teardown;
  // gmem keeps its folios and attributes.
  void operator()(const DeleteSlot& o) {
    if (c.out->unsupported) return nothing_changes();
    const Memslot* m = s.slot_by_id(o.slot);
    const size_t i = m ? static_cast<size_t>(m - s.slots.data()) : 0;
    if (!m || !s.live[i]) {
      expect_err({-EINVAL}, "INV-ATOMIC", {},
                 [&] { return "deleting memslot " + std::to_string(o.slot) + ", which is not there, fails"; });
      return nothing_changes();
    }
    expect_err({0}, "INV-ATOMIC", m->range(), [&] { return "deleting memslot " + std::to_string(o.slot) + " succeeds"; });
    const GfnRange r = m->range();
    s.live[i] = false;
    s.inhibit_cap.erase(r.start, r.end());
    std::erase_if(s.inhibited, [&](const auto& b) { return std::get<0>(b) == o.slot; });
    s.inhibit_blocks_seen = 0;  // the one step GUEST_INHIBIT may go: with its slot's lpage_info
    s.attrs.for_each(r.start, r.end(), [&](uint64_t a, uint64_t b, Attr x) {
      if (x == Attr::Private) s.data.assign(a, b, DataToken{});  // removed from the TD: content gone
    });
    s.learn(c, ChangePolicy::zapping(r));
    s.check_private_gone(c, r, "memslot deletion");
    if (const auto left = s.first_shared_leaf(r))
      c.report("INV-SLOT", *left, "after deleting memslot " + std::to_string(o.slot) + " no leaf maps it",
               "shared leaves remain at " + describe(*left));
  }
  void operator()(const AddSlot& o) {
    if (c.out->unsupported) return nothing_changes();
    const Memslot* m = s.slot_by_id(o.slot);
    if (!m) {
      expect_err({-EINVAL}, "INV-ATOMIC", {}, [&] { return "memslot " + std::to_string(o.slot) + " is not in the config"; });
      return nothing_changes();
    }
    const size_t i = static_cast<size_t>(m - s.slots.data());
    expect_err({s.live[i] ? -EEXIST : 0}, "INV-ATOMIC", m->range(),
               s.live[i] ? "adding a memslot that is there fails" : "adding a deleted memslot back succeeds");
    if (err() == 0) s.live[i] = true;
    s.learn(c, ChangePolicy::none());
  }

  void operator()(const Pin& o) { pin(o.range, +1); }
  void operator()(const Unpin& o) { pin(o.range, -1); }

  void operator()(const Inject& o) {
    if (c.out->unsupported) return nothing_changes();
    // A SEAMCALL site fails with an error status, an allocation site with -ENOMEM (status 0).
    const bool valid = (is_seamcall_site(o.site) ? o.status != tdx::kSuccess : o.status == 0) && o.count > 0;
    if (!valid) {
      expect_err({-EINVAL}, "INV-ATOMIC", {}, [&] { return "injecting " + describe(*c.op).substr(7) + " is not a valid pair"; });
      return nothing_changes();
    }
    if (expect_err({0}, "INV-ATOMIC", {}, "arming a valid fault injection succeeds")) s.arm(o);
    s.learn(c, ChangePolicy::none());
  }
};

namespace {

// The passes a conversion makes, in order (SEMANTICS.md "Convert"): in place on hugetlb gmem
// one per huge page of the file (guest_memfd.c :1010-1024 of the v3 stack), else one.
std::vector<GfnRange> conversion_passes(const SpecState& s, const Memslot& m, const GfnRange& r) {
  const bool per_folio = s.cfg.attr_mode == AttrMode::InPlace &&
                         (s.cfg.backing == BackingKind::Hugetlb2M || s.cfg.backing == BackingKind::Hugetlb1G);
  if (!per_folio) return {r};
  const Level folio = page_level(s.cfg.backing);
  std::vector<GfnRange> out;
  for (Gfn g = r.start; g < r.end();) {
    const uint64_t idx = s.gmem_index(m, g);
    const Gfn e = std::min(r.end(), g + (align_down(idx, folio) + pages_in(folio) - idx));
    out.push_back({g, e - g});
    g = e;
  }
  return out;
}

// A private leaf that crosses an edge of b must be split first (split-cache top-up).
bool straddles(const SpecState& s, const GfnRange& b) {
  if (auto l = s.priv.leaf_at(b.start); l && l->first < b.start) return true;
  if (auto l = s.priv.leaf_at(b.end() - 1); l && l->first + pages_in(l->second.level) > b.end()) return true;
  return false;
}

// In place: does converting b to `to` leave a huge folio at one of b's edges mixed, so that
// gmem must split it (a folio that stays uniform, or is already small, is not touched)? gmem
// indices outside the slot are never converted: they stay private.
bool folio_must_split(const SpecState& s, const Memslot& m, const GfnRange& b, Attr to) {
  if (s.cfg.attr_mode != AttrMode::InPlace || !s.caps(Cap::Backing)) return false;
  const auto& file = s.backing.file(m.id);
  for (Gfn g : {b.start, b.end() - 1}) {
    const BackVal* v = file.at(s.gmem_index(m, g));
    if (v && v->order > 0 && !s.folio_uniform(m, s.gmem_index(m, g), v->order, &b, to)) return true;
  }
  return false;
}

}  // namespace

// Per pass, in the kernel's order: a to-private batch in place checks pins (-EAGAIN,
// L9600-9610); a to-shared pass splits its straddling leaves (split-cache top-up, -ENOMEM),
// then in place splits its folio (-ENOMEM); an accept exit splits the larger leaf first; a
// punch splits its edges. The first armed fault met is consumed.
FailurePlan SpecState::plan_failure(int64_t step, const Op& op) {
  FailurePlan p;
  p.step = step;
  auto take = [&](FaultSite site) {
    if (!take_armed(site)) return false;
    p.err = -ENOMEM;
    return true;
  };
  std::optional<GfnRange> range;
  Attr to = Attr::Shared;
  if (const auto* o = std::get_if<Convert>(&op)) range = o->range, to = o->to;
  if (const auto* o = std::get_if<MapGpa>(&op)) range = o->range, to = o->to;
  if (range) {
    if (range->empty() || converted_already(*range, to)) return p;
    const auto parts = slot_parts(*range);
    if (cfg.attr_mode == AttrMode::PerVm) {
      // One pass: every slot part's boundary split comes before any zap, so a failing split
      // fails the whole conversion (the fix of docs/findings.md F2; v3 zaps slot by slot).
      if (to == Attr::Shared)
        for (const auto& [m, part] : parts)
          if (straddles(*this, part) && take(FaultSite::SplitCacheTopup)) {
            p.failing_pass = *range;
            break;
          }
      return p;
    }
    for (const auto& [m, part] : parts) {  // in place: one gmem ioctl per slot, passes per folio
      if (all_attr(part, to)) continue;
      for (const GfnRange& b : conversion_passes(*this, *m, part)) {
        if (to == Attr::Private) {
          if (pins.any_of(b.start, b.end(), [](uint32_t n) { return n > 0; }))
            p.err = -EAGAIN;
          else
            folio_must_split(*this, *m, b, to) && take(FaultSite::FolioSplit);
        } else if (!(straddles(*this, b) && take(FaultSite::SplitCacheTopup))) {
          folio_must_split(*this, *m, b, to) && take(FaultSite::FolioSplit);
        }
        if (p.err) {
          p.failing_pass = b;
          return p;
        }
      }
    }
  } else if (const auto* o = std::get_if<PunchHole>(&op)) {
    const Memslot* m = slot_of(o->range);
    const Level folio = page_level(cfg.backing);  // an unaligned punch fails before any split
    if (m && is_aligned(gmem_index(*m, o->range.start), folio) && is_aligned(gmem_index(*m, o->range.end()), folio) &&
        straddles(*this, o->range))
      take(FaultSite::SplitCacheTopup);
  } else if (const auto* o = std::get_if<Accept>(&op)) {
    if (o->queued || o->level > Level::L2M || !is_aligned(o->gfn, o->level)) return p;
    p.accept_no_exit = accept_without_exit(o->gfn, o->level);
    const auto pre = priv.leaf_at(o->gfn);
    if (!p.accept_no_exit && pre && pre->second.level > o->level)
      take(FaultSite::SplitCacheTopup);  // the exit path's split of the larger PENDING leaf
  }
  return p;
}

// TDG.MEM.PAGE.ACCEPT by what the S-EPT holds at gfn (DOMAIN.md 3, corrected from the module's
// check_tdaccept_failure(), intel/tdx-module tdg_mem_page_accept.c): the status it returns
// without an exit, or nullopt when the walk ends in an EPT violation exit carrying A.
std::optional<uint64_t> SpecState::accept_without_exit(Gfn g, Level A) const {
  if (const auto pre = priv.leaf_at(g)) {
    const GfnRange leaf{pre->first, pages_in(pre->second.level)};
    const bool accepted = all_accepted(leaf);
    if (pre->second.level > A)  // case 1.1: a guest-accessible larger leaf; case 1.2: exit
      return accepted ? std::optional(tdx::with_level(tdx::kPageAlreadyAccepted, pre->second.level)) : std::nullopt;
    if (pre->second.level == A) return accepted ? tdx::with_level(tdx::kPageAlreadyAccepted, A) : tdx::kSuccess;
    return tdx::with_level(tdx::kPageSizeMismatch, A);  // case 3: a page table at A
  }
  // Case 3 also when gfn's 4K leaf is gone: the mirror page table under the 2M entry stays until
  // the TD is torn down (INV-NOPROMOTE).
  if (A == Level::L2M && tables_4k.at(align_down(g, Level::L2M))) return tdx::with_level(tdx::kPageSizeMismatch, A);
  return std::nullopt;
}

std::string SpecState::accept_words(Gfn g) const {
  if (auto l = priv.leaf_at(g)) {
    const GfnRange leaf{l->first, pages_in(l->second.level)};
    return std::string(all_accepted(leaf) ? "ACCEPTED " : "PENDING ") + leaf_words(leaf.start, leaf.npages, l->second);
  }
  return tables_4k.at(align_down(g, Level::L2M)) ? "a mirror page table (no leaf at gfn " + hex(g) + ")" : "no mapping";
}

std::optional<uint64_t> SpecState::take_armed(FaultSite site) {
  auto& q = armed[size_t(site)];
  if (q.empty()) return std::nullopt;
  const uint64_t status = q.front().first;
  if (--q.front().second == 0) q.erase(q.begin());
  return status;
}

FailurePlan SpecState::planned(int64_t step, const Op& op) {
  if (plan.step == step) {
    plan.step = -1;  // used once
    return plan;
  }
  return plan_failure(step, op);
}

// GUEST_INHIBIT lives in the slot's lpage_info (L2303-2313): the cap covers the block's gfns in
// that slot; a block's gfns in another slot are another slot's business.
void SpecState::lower_cap_inhibit(const Memslot& m, Gfn block, Level block_level, Level cap) {
  const Gfn s = std::max(block, m.base_gfn), e = std::min(block + pages_in(block_level), m.range().end());
  lower_cap(inhibit_cap, s, e, cap);
  inhibited.insert({m.id, block_level, block});
}

void SpecState::on_op(StepCtx& c) { std::visit(OpChecker{*this, c}, *c.op); }

}  // namespace tdxhp::oracle_detail
