#include "runners/engine/targets.h"

#include "runners/sim/sim_target.h"
#ifdef TDXHP_HAVE_KVM
#include "runners/kvm/kvm_target.h"
#endif

namespace tdxhp::engine {

bool kvm_built() {
#ifdef TDXHP_HAVE_KVM
  return true;
#else
  return false;
#endif
}

bool is_real_target(const std::string& name) { return name != "sim"; }

std::unique_ptr<Target> make_target(const std::string& name, const std::vector<std::string>& mutants,
                                    uint64_t seed, std::string* why) {
  if (name == "sim") {
    auto t = make_sim_target(seed);
    for (auto& m : mutants)
      if (!t->set_mutant(m)) {
        *why = "unknown mutant \"" + m + "\" (tdxhp list shows the MUT-* ids)";
        return nullptr;
      }
    return t;
  }
  if (name == "kvm" || name.rfind("kvm/", 0) == 0) {
    if (!mutants.empty()) {
      *why = "mutants exist only on the sim target, not on " + name;
      return nullptr;
    }
#ifdef TDXHP_HAVE_KVM
    // Probed once per process (the probe also tidies what a killed run left): not per case.
    static const std::string best = kvm::probe().flavour;
    std::string flavour = name == "kvm" ? best : name.substr(4);
    if (flavour.empty()) {
      *why = "no usable KVM flavour on this host (tdxhp caps says why)";
      return nullptr;
    }
    return kvm::make_target(flavour, why);
#else
    *why = "the kvm target is not built into this tdxhp (configure with -DTDXHP_KVM=ON)";
    return nullptr;
#endif
  }
  *why = "unknown target \"" + name + "\" (known: sim, kvm, kvm/<flavour>)";
  return nullptr;
}

}  // namespace tdxhp::engine
