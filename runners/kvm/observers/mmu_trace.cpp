#include "runners/kvm/observers/mmu_trace.h"

#include <dirent.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <cstdlib>
#include <fstream>

// tracefs.h has an inline function that is valid C but not C++ (int -> enum): this file is
// built with -fpermissive, which turns that into a warning, silent in a system header.
extern "C" {
#include <traceevent/event-parse.h>
#include <tracefs/tracefs.h>
}

namespace tdxhp::kvm {
namespace {

constexpr const char* kSystem = "kvmmmu";
constexpr const char* kEvents[] = {"kvm_tdp_mmu_spte_changed", "kvm_mmu_set_spte",
                                   "kvm_mmu_split_huge_page"};
constexpr const char* kPrefix = "tdxhp-";

struct DrainCtx {
  const MmuTrace* self;
  int id_changed, id_set, id_split;
  const std::function<void(const SpteEvent&)>* f;
  int n = 0;
};

uint64_t field(tep_event* ev, tep_record* rec, const char* name) {
  unsigned long long v = 0;
  tep_get_field_val(nullptr, ev, name, rec, &v, 0);
  return v;
}

int on_record(tep_event* ev, tep_record* rec, int /*cpu*/, void* arg) {
  auto* c = static_cast<DrainCtx*>(arg);
  SpteEvent e;
  if (ev->id == c->id_changed) {
    e.kind = SpteEvent::SpteChanged;
    e.old_spte = field(ev, rec, "old_spte");
    e.new_spte = field(ev, rec, "new_spte");
    e.as_id = static_cast<int>(field(ev, rec, "as_id"));
  } else if (ev->id == c->id_set) {
    e.kind = SpteEvent::SetSpte;
    e.new_spte = field(ev, rec, "spte");
  } else if (ev->id == c->id_split) {
    e.kind = SpteEvent::SplitHuge;
    e.old_spte = field(ev, rec, "spte");
    e.err = static_cast<int>(static_cast<int32_t>(field(ev, rec, "errno")));
  } else {
    return 0;
  }
  e.gfn = field(ev, rec, "gfn");
  e.level = static_cast<int>(static_cast<int32_t>(field(ev, rec, "level")));
  ++c->n;
  (*c->f)(e);
  return 0;
}

// libtracefs mounts tracefs itself when it finds none (tracefs_tracing_dir()), and nothing
// unmounts it: ask /proc/mounts first, so a run leaves the host's mounts as they were.
bool tracefs_mounted() {
  std::ifstream mounts("/proc/mounts");
  std::string dev, dir, type, rest;
  while (mounts >> dev >> dir >> type && std::getline(mounts, rest))
    if (type == "tracefs") return true;
  return false;
}

}  // namespace

bool MmuTrace::open(std::string* why) {
  close();
  auto fail = [&](std::string w) {
    if (why) *why = std::move(w);
    close();
    return false;
  };
  if (!tracefs_mounted() || !tracefs_tracing_dir())
    return fail("tracefs is not mounted (mount -t tracefs nodev /sys/kernel/tracing)");
  // Only the three formats and the page header: tracefs_local_events*() also parses
  // /proc/kallsyms, seconds per case, for symbols these events never print.
  tep_ = tep_alloc();
  if (!tep_) return fail("libtraceevent: out of memory");
  const tep_endian host = tep_is_bigendian() ? TEP_BIG_ENDIAN : TEP_LITTLE_ENDIAN;
  tep_set_file_bigendian(tep_, host);
  tep_set_local_bigendian(tep_, host);
  tep_set_long_size(tep_, sizeof(long));
  tep_set_page_size(tep_, static_cast<int>(sysconf(_SC_PAGESIZE)));
  int size = 0;
  char* header = tracefs_instance_file_read(nullptr, "events/header_page", &size);
  if (!header) return fail("tracefs: cannot read events/header_page");
  const int hr = tep_parse_header_page(tep_, header, size, sizeof(long));
  free(header);
  if (hr) return fail("libtraceevent: cannot parse events/header_page");
  int* ids[] = {&id_changed_, &id_set_, &id_split_};
  for (int i = 0; i < 3; ++i) {
    char* fmt = tracefs_event_file_read(nullptr, kSystem, kEvents[i], "format", &size);
    if (!fmt) return fail(std::string("tracefs: no kvmmmu:") + kEvents[i] + " in this kernel (kvm not loaded?)");
    tep_event* ev = nullptr;
    const int pr = tep_parse_format(tep_, &ev, fmt, size, kSystem);
    free(fmt);
    if (pr || !ev) return fail(std::string("libtraceevent: cannot parse the format of kvmmmu:") + kEvents[i]);
    *ids[i] = ev->id;
  }
  static std::atomic<int> serial{0};
  name_ = std::string(kPrefix) + std::to_string(getpid()) + "-" + std::to_string(serial++);
  inst_ = tracefs_instance_create(name_.c_str());
  if (!inst_) return fail("tracefs: cannot create instance " + name_ + ": " + strerror(errno));
  // Room for a large punch or conversion: 1 record per leaf, ~48 bytes each.
  tracefs_instance_file_write(inst_, "buffer_size_kb", "8192");
  for (const char* ev : kEvents)
    if (tracefs_event_enable(inst_, kSystem, ev))
      return fail(std::string("tracefs: cannot enable kvmmmu:") + ev + " in " + name_);
  tracefs_trace_on(inst_);
  return true;
}

int MmuTrace::drain(const std::function<void(const SpteEvent&)>& f) {
  if (!inst_) return -EBADF;
  DrainCtx c{this, id_changed_, id_set_, id_split_, &f};
  if (tracefs_iterate_raw_events(tep_, inst_, nullptr, 0, on_record, &c) < 0) return -EIO;
  return c.n;
}

unsigned long long MmuTrace::overruns() const {
  if (!inst_) return 0;
  unsigned long long total = 0;
  const long ncpu = sysconf(_SC_NPROCESSORS_CONF);
  for (long cpu = 0; cpu < ncpu; ++cpu) {
    char* dir = tracefs_instance_get_dir(inst_);
    if (!dir) break;
    std::ifstream in(std::string(dir) + "/per_cpu/cpu" + std::to_string(cpu) + "/stats");
    tracefs_put_tracing_file(dir);
    std::string key;
    while (in >> key)
      if (key == "overrun:") {
        unsigned long long v = 0;
        in >> v;
        total += v;
      }
  }
  return total;
}

std::string MmuTrace::instance_dir() const {
  const char* d = tracefs_tracing_dir();
  return std::string(d ? d : "/sys/kernel/tracing") + "/instances/" + name_;
}

void MmuTrace::close() {
  if (inst_) {
    for (const char* ev : kEvents) tracefs_event_disable(inst_, kSystem, ev);
    tracefs_instance_destroy(inst_);
    tracefs_instance_free(inst_);
    inst_ = nullptr;
  }
  if (tep_) tep_free(tep_);
  tep_ = nullptr;
}

std::vector<std::string> MmuTrace::remove_stale_instances() {
  std::vector<std::string> removed;
  // The directory itself, not tracefs_instances(): libtracefs 1.6 leaks its regex there.
  const char* top = tracefs_mounted() ? tracefs_tracing_dir() : nullptr;
  DIR* d = top ? opendir((std::string(top) + "/instances").c_str()) : nullptr;
  if (!d) return removed;
  std::vector<std::string> names;
  while (dirent* e = readdir(d))
    if (strncmp(e->d_name, kPrefix, strlen(kPrefix)) == 0) names.push_back(e->d_name);
  closedir(d);
  for (const std::string& n : names) {
    const pid_t pid = static_cast<pid_t>(std::strtol(n.c_str() + strlen(kPrefix), nullptr, 10));
    if (pid <= 0 || pid == getpid() || kill(pid, 0) == 0 || errno == EPERM) continue;  // still running
    tracefs_instance* inst = tracefs_instance_alloc(nullptr, n.c_str());
    if (!inst) continue;
    tracefs_event_disable(inst, nullptr, nullptr);
    if (tracefs_instance_destroy(inst) == 0) removed.push_back(n);
    tracefs_instance_free(inst);
  }
  return removed;
}

}  // namespace tdxhp::kvm
