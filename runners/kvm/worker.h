// A child process that owns one VM and serves WorkerRequests; the parent's watchdog turns a
// hung vCPU or a dead worker into an error reply instead of a hang (DESIGN.md robustness).
#pragma once

#include <chrono>
#include <string>

#include "lib/tdxhp_kvm.h"
#include "runners/kvm/worker_protocol.h"

namespace tdxhp::kvm {

class Worker {
 public:
  ~Worker();
  // Forks, builds the VM in the child. 0, or -errno with *why (the child's words).
  int start(const tkvm_config& cfg, std::chrono::milliseconds timeout, std::string* why);
  // Gives the running VM the next case's memslots (tkvm_reset). 0; else the child is gone and
  // the caller starts a new one: -EAGAIN (this VM cannot take cfg) or -errno with *why.
  int reset(const tkvm_config& cfg, std::chrono::milliseconds timeout, std::string* why);
  // One round trip. A timeout kills the child: err -ETIME, vm_dead; a dead child: -EIO.
  WorkerReply call(const WorkerRequest&, std::chrono::milliseconds timeout, std::string* note);
  // Sends q without waiting (Release): the child works while the parent does. Its reply is
  // read before the next request's (a dead or hung child fails that one).
  void post(const WorkerRequest& q);
  bool posted() const { return posted_; }  // a posted request's reply is still to be read
  void stop();
  bool alive() const { return pid_ > 0; }

 private:
  // Sends q (and `extra` right after it, when given) and waits for the reply: 0, -ETIME
  // when none came in time, -EIO when the socket failed (the child died).
  int exchange(const WorkerRequest& q, const void* extra, size_t extra_len, std::chrono::milliseconds timeout,
               WorkerReply* r);
  int await_reply(std::chrono::milliseconds timeout, WorkerReply* r);
  int collect_posted(std::chrono::milliseconds timeout);  // the posted request's reply, if any
  std::string log_tail() const;
  void kill_child();
  int pid_ = -1, sock_ = -1, log_fd_ = -1;
  bool posted_ = false;
};

}  // namespace tdxhp::kvm
