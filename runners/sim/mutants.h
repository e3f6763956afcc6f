// MUT-* switches of DOMAIN.md section 6: each flips a few lines at the place the real bug lives.
#pragma once

#include <bitset>
#include <string>
#include <string_view>

namespace tdxhp::sim {

enum class Mutant : uint8_t {
  SplitBeforeUnmap, Promote, NoSplitZap, NoAttrSplit, HeadOnly, OneGMiss, Oversplit,
  IgnoreAccept, InhibitBeforeSplit, InhibitCleared, BuildHuge, NoFeatureGate, NoBusyRetry,
  RestartLoop, ZapThenFail, BoolRet, PamtLeak, CacheRace, HvaAlign, NoMerge, WrongRoot, UnlockedConvert,
  // Found in v3 by reading its tree (docs/findings.md): the clean sim has them fixed.
  InvalidateLeak, SlotPartialZap, PrivateZapToPrivate,
  // Kernel-side mistakes that only the TDX module's refusals or the PAMT books reveal.
  NoTrack, NoBlock, StaleSplit, PamtPut2M, AugFailPamt,
  // Shared-side and guest_memfd mistakes: the only ones the swprot fixtures (real KVM) can show.
  SharedMixed, ThpSplitMissed, NotifierNoZap, ConvertZapShort, PunchPastEnd,
  Count
};
constexpr size_t kMutantCount = static_cast<size_t>(Mutant::Count);

std::string_view mutant_id(Mutant);                   // "MUT-PROMOTE"
bool parse_mutant(std::string_view id, Mutant* out);  // false for unknown ids

class Mutants {
 public:
  bool enable(std::string_view id) {
    Mutant m;
    if (!parse_mutant(id, &m)) return false;
    on_.set(static_cast<size_t>(m));
    return true;
  }
  bool operator()(Mutant m) const { return on_.test(static_cast<size_t>(m)); }

 private:
  std::bitset<kMutantCount> on_;
};

}  // namespace tdxhp::sim
