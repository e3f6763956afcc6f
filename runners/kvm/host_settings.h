// Host settings a kvm run changes (hugetlb pool sizes, tdxhp's tracefs instances), undone on
// normal exit, on SIGINT/SIGTERM, and at the next start after a kill (DESIGN.md: "the runner
// restores any host setting it changes"). Every change is journaled to a state file before it
// is made: $TDXHP_STATE_DIR (default /run/tdxhp)/host-settings.<pid>.
#pragma once

#include <string>
#include <vector>

namespace tdxhp::kvm {

class HostSettings {
 public:
  static HostSettings& get();

  // Writes `value` to the sysfs/procfs file `path` after journaling its current content.
  // A path already changed keeps its first (original) value in the journal.
  bool set(const std::string& path, const std::string& value, std::string* why);
  // A directory to rmdir at restore (a tracefs instance), journaled like a setting.
  void own_directory(const std::string& path);
  void disown_directory(const std::string& path);
  // Writes every original value back, removes owned directories and the journal.
  void restore_all();

  // Restores the journals of processes that are gone (a killed run). Returns what it did,
  // one line per setting, for the report.
  static std::vector<std::string> recover_stale();
  static std::string state_dir();

 private:
  HostSettings() = default;
  void save() const;
  void install_signal_restore();
  struct Saved {
    std::string path, original;
  };
  std::vector<Saved> saved_;
  std::vector<std::string> dirs_;
  bool handlers_ = false;
};

}  // namespace tdxhp::kvm
