// Kernel self-checks during a case: WARN, BUG and KVM_BUG_ON lines from /dev/kmsg
// (DOMAIN.md section 7). Each line found fails the case it appeared in.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace tdxhp::kvm {

class KmsgObserver {
 public:
  ~KmsgObserver();
  // Opens /dev/kmsg (or keeps it open) positioned at its end; false with *why when it cannot
  // be read.
  bool open(std::string* why);
  // Lines logged since the last call that show a kernel self-check firing; adds the number of
  // records read to *scanned (evidence that the log was read at all).
  std::vector<std::string> take_findings(uint64_t* scanned = nullptr);
  static bool is_finding(const std::string& line);

 private:
  int fd_ = -1;
};

}  // namespace tdxhp::kvm
