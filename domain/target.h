// The target interface (DESIGN.md "Core vocabulary"): sim, kvm and vm all implement it;
// the engine and the properties talk only to this.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "domain/types.h"

namespace tdxhp {

class Target {
 public:
  virtual ~Target() = default;
  virtual std::string name() const = 0;             // "sim", "kvm/plain", "kvm/tdx" ...
  virtual Caps caps() const = 0;
  // Builds the VM/TD of the config (slots, gmem, build pages, finalize). Returns 0 or -errno;
  // a config the target cannot build at all is -EOPNOTSUPP with the reason in *why.
  virtual int setup(const Config&, std::string* why) = 0;
  virtual Outcome apply(const Op&) = 0;
  virtual Observation observe() = 0;                // state after the last apply (or setup)
  // observe() into `o`, every field overwritten; a target may reuse o's buffers (the lockstep
  // keeps one observation per case, so a sim step allocates no new one).
  virtual void observe_into(Observation& o) { o = observe(); }
  // Destroys the VM; the returned observation shows what is left (sim: PAMT back to baseline).
  virtual Observation teardown() = 0;
  // Cap::Interleaving: while an op is applied, the target calls `hook` at that op's first
  // mmu_lock drop (the split-cache top-up) and carries on from a fresh look at its state when
  // the hook returns; inside the hook the engine applies and observes a second vCPU's queued
  // ops in order. One that must wait for the running op (its fault) returns
  // Outcome::waiting, having done only what comes before the wait; the engine applies it
  // again after the op (SEMANTICS.md "Queued guest ops"). An empty hook: nothing runs there.
  // Targets without the cap ignore it.
  virtual void set_mmu_lock_drop_hook(std::function<void()> /*hook*/) {}
  // kvm plain/swprot keep their VM for the next case and reset its memslots (issue 16):
  // whether the last setup reset a VM an earlier case used, and a request that the next setup
  // build a new VM. A violation seen on a reused VM is confirmed on a new one (property.cpp).
  virtual bool reused_vm() const { return false; }
  virtual void build_fresh_next() {}
  // Sim only: switch a MUT-* on; false for an unknown name or a real target.
  virtual bool set_mutant(const std::string& /*id*/) { return false; }
};

}  // namespace tdxhp
