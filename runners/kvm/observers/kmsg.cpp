#include "runners/kvm/observers/kmsg.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace tdxhp::kvm {

KmsgObserver::~KmsgObserver() {
  if (fd_ >= 0) close(fd_);
}

bool KmsgObserver::open(std::string* why) {
  if (fd_ >= 0) {  // already open: only skip to the end
    lseek(fd_, 0, SEEK_END);
    return true;
  }
  fd_ = ::open("/dev/kmsg", O_RDONLY | O_NONBLOCK | O_CLOEXEC);
  if (fd_ < 0) {
    if (why) *why = std::string("/dev/kmsg: ") + strerror(errno);
    return false;
  }
  lseek(fd_, 0, SEEK_END);  // only what this case causes
  return true;
}

bool KmsgObserver::is_finding(const std::string& line) {
  // WARN_ON prints "WARNING: CPU: n PID: ...", BUG_ON "kernel BUG at", KVM_BUG_ON a WARN too;
  // the rest catch lockdep/RCU/refcount reports that mean the kernel noticed a bug.
  static const char* markers[] = {"WARNING:", "kernel BUG at", "BUG:", "KVM_BUG_ON",
                                  "refcount_t:", "general protection fault", "Oops"};
  for (const char* m : markers)
    if (line.find(m) != std::string::npos) return true;
  return false;
}

std::vector<std::string> KmsgObserver::take_findings(uint64_t* scanned) {
  std::vector<std::string> out;
  if (fd_ < 0) return out;
  char rec[8192];
  for (;;) {
    ssize_t n = read(fd_, rec, sizeof(rec) - 1);
    if (n < 0 && errno == EPIPE) continue;  // overwritten records: keep reading newer ones
    if (n <= 0) break;
    rec[n] = '\0';
    if (scanned) ++*scanned;
    // Record: "prio,seq,usec,flags;message\n continuation lines..."
    const char* msg = strchr(rec, ';');
    std::string line = msg ? std::string(msg + 1) : std::string(rec);
    if (auto nl = line.find('\n'); nl != std::string::npos) line.resize(nl);
    if (is_finding(line)) out.push_back(line);
  }
  return out;
}

}  // namespace tdxhp::kvm
