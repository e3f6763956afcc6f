// Messages between the KvmTarget (parent) and the worker process that owns the VM.
// Fixed-size PODs over a SOCK_SEQPACKET socketpair: one request, one reply.
#pragma once

#include <cstdint>

namespace tdxhp::kvm {

// Reset is followed by one more message: the tkvm_config of the next case (tkvm_reset).
// Release (tkvm_release) is posted without waiting; its reply is read before the next request.
enum class Request : uint32_t {
  Access, Accept, MapGpa, Convert, Punch, Prefault, DiscardShared, Stats, Release, Reset, Quit
};

struct WorkerRequest {
  Request kind = Request::Quit;
  uint64_t gfn = 0, npages = 0, value = 0;
  uint32_t level = 0;
  bool write = false, to_private = false;
};

constexpr int kStatCount = 3;  // pages_4k, pages_2m, pages_1g
struct WorkerReply {
  int err = 0;
  uint64_t value = 0, tdx_status = 0;
  bool ve = false, vm_dead = false;
  int stat_err[kStatCount] = {};
  uint64_t stat[kStatCount] = {};
  char why[256] = {};  // setup or reset failure reason
};

}  // namespace tdxhp::kvm
