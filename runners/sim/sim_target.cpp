#include "runners/sim/sim_target.h"

#include <cerrno>

#include "runners/sim/sim_host.h"

namespace tdxhp {

namespace {

class SimTarget : public Target {
 public:
  explicit SimTarget(uint64_t seed) : seed_(seed) {}

  std::string name() const override { return "sim"; }
  Caps caps() const override {
    Caps c;
    for (int i = 0; i < kCapCount; ++i) c.has.insert(static_cast<Cap>(i));  // a sim sees everything
    return c;
  }
  int setup(const Config& cfg, std::string* why) override {
    host_ = std::make_unique<sim::SimHost>(seed_);  // every case starts from a new host
    host_->core().mut = mut_;
    host_->set_mmu_lock_drop_hook(hook_);
    return host_->setup(cfg, why);
  }
  Outcome apply(const Op& op) override { return host_->apply(op); }
  Observation observe() override { return host_->observe(); }
  void observe_into(Observation& o) override { host_->observe_into(o); }
  Observation teardown() override { return host_->teardown(); }
  void set_mmu_lock_drop_hook(std::function<void()> hook) override {
    hook_ = std::move(hook);
    if (host_) host_->set_mmu_lock_drop_hook(hook_);
  }
  bool set_mutant(const std::string& id) override { return mut_.enable(id); }

 private:
  uint64_t seed_;
  sim::Mutants mut_;
  std::unique_ptr<sim::SimHost> host_;
  std::function<void()> hook_;
};

}  // namespace

std::unique_ptr<Target> make_sim_target(uint64_t seed) { return std::make_unique<SimTarget>(seed); }

}  // namespace tdxhp
