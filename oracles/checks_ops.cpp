// Per-op rules of SEMANTICS.md: the outcomes allowed from the pre-step state, the changes the
// op may make (ChangePolicy), then op-specific checks on the learned post-step state.
// A wrong result is reported under the invariant of the op's family: accept/#VE -> INV-ACCEPT,
// data read -> INV-DATA, any other host op -> INV-ATOMIC (errors and their absence).
#include <algorithm>
#include <cerrno>

#include "domain/describe.h"
#include "oracles/spec_state.h"

namespace tdxhp::oracle_detail {

namespace {

std::string errs_words(const std::vector<int>& v) {
  std::string s;
  for (int e : v) s += (s.empty() ? "" : " or ") + errno_name(e);
  return s;
}

}  // namespace

struct OpChecker {
  SpecState& s;
  StepCtx& c;
  int err() const { return c.out->err; }

  // Positive returns are reported once, in Oracle::step (MUT-BOOLRET).
  bool expect_err(const std::vector<int>& allowed, const char* inv, GfnRange r, const std::string& why) {
    if (err() > 0) return false;
    if (std::find(allowed.begin(), allowed.end(), err()) != allowed.end()) return true;
    c.report(inv, r, why + ": " + errs_words(allowed), describe(*c.out));
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
    if (want && c.out->read && *c.out->read != *want)
      c.report("INV-DATA", {a.gfn, 1}, "guest reads back " + hex(*want) + " (last write, or zero after accept/punch)",
               "read " + hex(*c.out->read));
  }

  void operator()(const Convert& o) { convert(o.range, o.to); }
  void operator()(const MapGpa& o) { convert(o.range, o.to); }

  void convert(const GfnRange& r, Attr to) {
    if (c.out->unsupported) return nothing_changes();
    const Memslot* m = s.slot_of(r);
    if (!m) {
      expect_err({-EINVAL}, "INV-ATOMIC", r, "converting a range not inside one memslot fails");
      return nothing_changes();
    }
    const bool pinned = s.cfg.attr_mode == AttrMode::InPlace &&
                        s.pins.any_of(r.start, r.end(), [](uint32_t n) { return n > 0; });
    const bool already = s.all_attr(r, to);
    std::vector<int> allowed;
    if (pinned) allowed.push_back(-EAGAIN);  // L9600
    if (already) allowed.push_back(0);
    if (!pinned && !already) {
      allowed.push_back(0);
      if (to == Attr::Shared && (s.is_armed(FaultSite::SplitCacheTopup, FaultKind::NoMem) ||
                                 s.is_armed(FaultSite::FolioSplit, FaultKind::NoMem)))
        allowed.push_back(-ENOMEM);  // SC-FAIL-MIDWAY
    }
    expect_err(allowed, "INV-ATOMIC", r, "convert to " + std::string(name(to)) + " returns");
    if (err() != 0) {
      if (err() == -ENOMEM) consume_nomem();
      return s.learn(c, ChangePolicy::failing(r));  // splits may stay (invisible)
    }
    if (already) return s.learn(c, ChangePolicy::none());
    s.attrs.assign(r.start, r.end(), to);
    s.data.assign(r.start, r.end(), DataToken{});  // shared contents are unspecified until written
    if (to == Attr::Shared) {
      s.learn(c, ChangePolicy::zapping(r));
      s.check_private_gone(c, r, "convert to shared");
    } else {
      s.learn(c, ChangePolicy::none());
      std::optional<GfnRange> left;
      s.shared.map().for_each(r.start, r.end(), [&](uint64_t a, uint64_t b, const LeafVal&) {
        if (!left) left = GfnRange{a, b - a};
      });
      if (left)
        c.report("INV-ATTR", *left, "converting to private zaps the shared leaves of " + describe(r),
                 "shared leaves remain over now-private " + describe(*left));
    }
  }

  void consume_nomem() {
    for (FaultSite site : {FaultSite::SplitCacheTopup, FaultSite::FolioSplit})
      if (s.is_armed(site, FaultKind::NoMem)) {
        --s.armed_count(site, FaultKind::NoMem);
        return;
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
      expect_err({-EINVAL}, "INV-ATOMIC", r,
                 "a punch not aligned to the " + std::string(name(folio)) + " folio size fails (L12324-12328)");
      return nothing_changes();
    }
    std::vector<int> allowed{0};
    if (s.is_armed(FaultSite::SplitCacheTopup, FaultKind::NoMem)) allowed.push_back(-ENOMEM);
    expect_err(allowed, "INV-ATOMIC", r, "punch hole returns");
    if (err() != 0) {
      if (err() == -ENOMEM) consume_nomem();
      return s.learn(c, ChangePolicy::failing(r));
    }
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
        expect_err({-EINVAL}, "INV-ATOMIC", r,
                   "MADV_DONTNEED of hugetlb memory at an HVA not " + std::string(name(page)) + "-aligned fails");
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
    else if (!s.covered_by_slots(o.range))
      expect_err({-ENOENT}, "INV-ATOMIC", o.range, "prefaulting gfns outside every memslot fails");
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
    if (!is_aligned(a.gfn, A)) {
      if (err() != 0 || tdx::status_class(c.out->tdx_status) != tdx::kOperandInvalid)
        c.report("INV-ACCEPT", r, "accept at a gfn not " + std::string(name(A)) + "-aligned: TDX_OPERAND_INVALID",
                 describe(*c.out));
      return nothing_changes();
    }
    if (!s.slot_at(a.gfn) || s.attr_at(a.gfn) != Attr::Private) {
      if (err() != -EFAULT)
        c.report("INV-ACCEPT", r, "accept of a shared or slot-less gfn: memory-fault exit, -EFAULT", describe(*c.out));
      return nothing_changes();
    }
    if (!s.caps(Cap::LeafLevels)) return s.learn(c, ChangePolicy::none());  // results depend on the mapping

    // L230-277, L2436-2503: the private leaf before the accept decides the path.
    const auto pre = s.priv.leaf_at(a.gfn);
    const bool exit_path = !pre || pre->second.level > A;
    const bool live = !pre && A == Level::L2M && s.allows_private_2m(a.gfn);
    // The exit splits before it inhibits (L2436-2503): a split-cache top-up that fails with an
    // injected -ENOMEM returns before GUEST_INHIBIT is set and changes nothing guest-visible.
    // SEMANTICS.md does not name this result; the seed's early return allows it.
    const bool needs_split = pre && pre->second.level > A;
    if (needs_split && err() == -ENOMEM && s.is_armed(FaultSite::SplitCacheTopup, FaultKind::NoMem)) {
      --s.armed_count(FaultSite::SplitCacheTopup, FaultKind::NoMem);
      return s.learn(c, ChangePolicy::failing(r));
    }
    ChangePolicy p;
    if (exit_path) {
      p.split_edges = r;
      // GUEST_INHIBIT at A+1 (and A+2 for 4K) for the blocks around gfn; one-way.
      if (A == Level::L4K) s.lower_cap_inhibit(align_down(a.gfn, Level::L2M), Level::L2M, Level::L4K);
      if (A < Level::L1G) s.lower_cap_inhibit(align_down(a.gfn, Level::L1G), Level::L1G, Level::L2M);
    }
    s.learn(c, p);
    if (err() != 0) {
      if (err() < 0)
        c.report("INV-ACCEPT", r, "the guest's accept completes with a TDX status", describe(*c.out));
      return;
    }
    if (exit_path && A < Level::L1G) s.check_inhibit_over(c, {align_down(a.gfn, Level::L1G), pages_in(Level::L1G)});
    const auto post = s.priv.leaf_at(a.gfn);
    if (!post) {
      c.report("INV-ACCEPT", r, "after the accept gfn " + hex(a.gfn) + " is mapped private", "no private leaf");
      return;
    }
    const LeafVal& now = post->second;
    if (!exit_path && now.level != pre->second.level)
      c.report("INV-ACCEPT", r, "an accept equal to or larger than the mapping takes no exit and changes no leaf",
               leaf_words(pre->first, pages_in(pre->second.level), pre->second) + " became " +
                   leaf_words(post->first, pages_in(now.level), now));
    if (live && now.level != Level::L2M)
      c.report("INV-LIVE", r,
               "everything allows 2M (RUNNABLE, aligned private block, huge folio, no inhibit, no page table, "
               "bit 51, tdx_huge_page): a guest 2M accept yields a 2M leaf (L4526)",
               leaf_words(post->first, pages_in(now.level), now));
    const GfnRange leaf{post->first, pages_in(now.level)};
    std::vector<uint64_t> want;
    if (now.level < A) {
      want.push_back(tdx::kPageSizeMismatch | uint64_t(A));
    } else if (now.level == A) {
      auto all = [&](AcceptState st) {
        return s.accept.all_of(leaf.start, leaf.end(), [&](AcceptState x) { return x == st; });
      };
      if (!all(AcceptState::Accepted)) want.push_back(tdx::kSuccess);
      if (!all(AcceptState::Pending)) want.push_back(tdx::kPageAlreadyAccepted);
    } else {
      return;  // leaf larger than A is already reported; no status is right for it
    }
    const uint64_t got = c.out->tdx_status;
    const bool ok = std::any_of(want.begin(), want.end(), [&](uint64_t w) {
      return w == tdx::kPageAlreadyAccepted ? tdx::status_class(got) == w : got == w;
    });
    if (!ok) {
      std::string ws;
      for (uint64_t w : want) ws += (ws.empty() ? "" : " or ") + tdx_status_name(w);
      c.report("INV-ACCEPT", r,
               ws + " for an accept at " + std::string(name(A)) + " over " +
                   leaf_words(leaf.start, leaf.npages, now) + (exit_path ? " (after the exit)" : " (no exit)"),
               tdx_status_name(got));
    }
    if (got == tdx::kSuccess && now.level == A) {
      s.accept.assign(leaf.start, leaf.end(), AcceptState::Accepted);
      s.data.assign(leaf.start, leaf.end(), DataToken{DataToken::Value, 0});  // TDX accept zeroes the page
    }
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
  void operator()(const Pin& o) { pin(o.range, +1); }
  void operator()(const Unpin& o) { pin(o.range, -1); }

  void operator()(const Inject& o) {
    if (c.out->unsupported) return nothing_changes();
    const bool valid =
        (o.fault == FaultKind::Busy &&
         (o.site == FaultSite::Block || o.site == FaultSite::Track || o.site == FaultSite::Demote)) ||
        (o.fault == FaultKind::InterruptedRestartable && o.site == FaultSite::Demote) ||
        (o.fault == FaultKind::NoMem && (o.site == FaultSite::SplitCacheTopup || o.site == FaultSite::FolioSplit));
    if (!valid) {
      expect_err({-EINVAL}, "INV-ATOMIC", {}, "injecting " + std::string(name(o.fault)) + " at " +
                                                  std::string(name(o.site)) + " is not a valid pair");
      return nothing_changes();
    }
    if (expect_err({0}, "INV-ATOMIC", {}, "arming a valid fault injection succeeds"))
      s.armed_count(o.site, o.fault) += o.count;
    s.learn(c, ChangePolicy::none());
  }
};

void SpecState::lower_cap_inhibit(Gfn block, Level block_level, Level cap) {
  lower_cap(inhibit_cap, block, block + pages_in(block_level), cap);
  inhibited.insert({block_level, block});
}

void SpecState::on_op(StepCtx& c) { std::visit(OpChecker{*this, c}, *c.op); }

}  // namespace tdxhp::oracle_detail
