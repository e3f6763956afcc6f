// The kvmmmu tracepoints of one case, read through libtracefs/libtraceevent from a tracefs
// instance of tdxhp's own, so the host's global trace settings are never touched (issue 5:
// "Observers"). Decodes records into SpteEvents for LeafReplay.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "runners/kvm/observers/leaf_replay.h"

struct tracefs_instance;
struct tep_handle;

namespace tdxhp::kvm {

class MmuTrace {
 public:
  ~MmuTrace() { close(); }
  // Creates instance "tdxhp-<pid>-<n>" with the three kvmmmu events on. false with *why.
  bool open(std::string* why);
  // Hands every record logged since the previous drain to `f`, in time order; consumes them.
  // Returns the number of records, or -errno.
  int drain(const std::function<void(const SpteEvent&)>& f);
  // Records the kernel dropped because the instance buffer overflowed (nonzero: the replay is
  // incomplete).
  unsigned long long overruns() const;
  void close();
  bool is_open() const { return inst_ != nullptr; }
  const std::string& instance_name() const { return name_; }
  std::string instance_dir() const;  // <tracefs>/instances/<name>

  // Removes tdxhp-<pid>-* instances whose process is gone (left by a killed run).
  // Returns the names removed.
  static std::vector<std::string> remove_stale_instances();

 private:
  tracefs_instance* inst_ = nullptr;
  tep_handle* tep_ = nullptr;
  std::string name_;
  int id_changed_ = -1, id_set_ = -1, id_split_ = -1;
};

}  // namespace tdxhp::kvm
