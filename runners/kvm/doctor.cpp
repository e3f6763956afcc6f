// See doctor.h. Each check says what it read; a missing one carries its fix.
#include "runners/kvm/doctor.h"

#include <fcntl.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "runners/kvm/kvm_target.h"
#include "runners/kvm/lib/tdxhp_kvm.h"

namespace tdxhp::kvm {
namespace {

std::string read_line(const std::string& path) {
  std::ifstream in(path);
  std::string s;
  std::getline(in, s);
  return in || !s.empty() ? s : "";
}

bool exists(const std::string& path) {
  std::error_code ec;
  return std::filesystem::exists(path, ec);
}

bool readable(const std::string& path) {
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  close(fd);
  return true;
}

std::string yn(int v) { return v < 0 ? "absent" : v ? "Y" : "N"; }

// Reloading kvm_intel with the parameters the tdx flavour wants (README "First run").
constexpr const char* kReload =
    "sudo modprobe -r kvm_intel kvm && sudo modprobe kvm vm_memory_attributes=N && "
    "sudo modprobe kvm_intel tdx=Y tdx_huge_page=Y";

std::string hex(uint64_t v) {
  char b[24];
  snprintf(b, sizeof(b), "0x%llx", static_cast<unsigned long long>(v));
  return b;
}

}  // namespace

bool DoctorReport::usable() const {
  for (const auto& f : flavours)
    if (f.absent.empty()) return true;
  return false;
}

DoctorReport doctor() {
  DoctorReport r;
  tkvm_host h;
  tkvm_probe_host(&h);
  auto add = [&](std::string name, bool ok, std::string detail, std::string fix, std::string needed) {
    r.checks.push_back({std::move(name), ok, std::move(detail), ok ? "" : std::move(fix), std::move(needed)});
  };
  const bool tdx_vm = h.vm_types & (1ULL << 5);
  const std::string module = h.kvm_module[0] ? h.kvm_module : "kvm_intel";

  add("root", geteuid() == 0, geteuid() == 0 ? "running as root" : "running as uid " + std::to_string(geteuid()),
      "sudo tdxhp doctor (runs read tracefs, debugfs and /proc/kpageflags and size hugetlb pools as root)",
      "every kvm flavour's observers");
  add("/dev/kvm", h.dev_kvm,
      h.dev_kvm ? std::string("opens; module ") + (h.kvm_module[0] ? h.kvm_module : "unknown") : h.error,
      "sudo modprobe kvm_intel (Intel) or kvm_amd; in a VM, enable nested virtualisation", "all kvm flavours");
  add("kvm.tdp_mmu", h.tdp_mmu == 1, "tdp_mmu=" + yn(h.tdp_mmu) + " (the leaf observer reads TDP MMU events)",
      "sudo modprobe -r " + module + " kvm && sudo modprobe kvm tdp_mmu=Y && sudo modprobe " + module,
      "LeafLevels (pages_4k/2m replay)");
  add("guest_memfd", h.guest_memfd,
      !h.dev_kvm          ? "not probed: /dev/kvm is unusable"
      : h.guest_memfd     ? "KVM_CAP_GUEST_MEMFD on a default VM"
                          : "KVM_CAP_GUEST_MEMFD is 0",
      "a kernel >= 6.8 with CONFIG_KVM_SW_PROTECTED_VM or TDX host support", "all kvm flavours");
  add("kvm_intel.tdx", h.tdx_enabled == 1, "tdx=" + yn(h.tdx_enabled),
      h.tdx_enabled < 0 ? "boot a kernel with TDX host support (kvm_intel has no tdx parameter); TDX enabled in the BIOS"
                        : "sudo modprobe -r kvm_intel && sudo modprobe kvm_intel tdx=Y (dmesg | grep -i tdx says why "
                          "the TDX module did not initialise)",
      "kvm/tdx");
  add("KVM_X86_TDX_VM", tdx_vm, "KVM_CAP_VM_TYPES " + hex(h.vm_types),
      "needs kvm_intel.tdx=Y with an initialised TDX module (see kvm_intel.tdx)", "kvm/tdx");
  add("kvm_intel.tdx_huge_page", h.tdx_huge_page == 1,
      "tdx_huge_page=" + yn(h.tdx_huge_page) +
          (h.tdx_huge_page < 0 ? " (kvm_intel without the huge-page series)"
                               : " (kvm_intel clears it at load when the TDX module lacks "
                                 "ENHANCED_DEMOTE_INTERRUPTIBILITY, TDX_FEATURES0 bit 51)"),
      h.tdx_huge_page < 0 ? "boot the huge-page series' kernel (intel/tdx)"
                          : std::string(kReload) + "; if it reads N again, update the TDX module",
      "2M private leaves (INV-LIVE)");
  add("kvm.vm_memory_attributes", h.vm_memory_attributes == 0,
      "vm_memory_attributes=" + yn(h.vm_memory_attributes) +
          " (N: guest_memfd owns private/shared, the mode the series' tdx_vm_huge_page test requires)",
      h.vm_memory_attributes < 0 ? "boot a kernel with the in-place conversion series (intel/tdx huge-page branch)"
                                 : kReload,
      "2M private leaves, in-place conversion");
  if (tdx_vm || h.tdx_vm_created) {
    const bool vm_attr = h.tdx_vm_attributes & (1ULL << 3), gmem_attr = h.tdx_gmem_attributes & (1ULL << 3);
    add("TDX VM attributes", vm_attr || gmem_attr,
        std::string("KVM_CAP_MEMORY_ATTRIBUTES ") + hex(h.tdx_vm_attributes) +
            ", KVM_CAP_GUEST_MEMFD_MEMORY_ATTRIBUTES " + hex(h.tdx_gmem_attributes) + " on a TDX VM",
        "a kernel whose TDX VMs offer KVM_MEMORY_ATTRIBUTE_PRIVATE (check the series' uAPI numbers in "
        "runners/kvm/lib/uapi_compat.h against the host's include/uapi/linux/kvm.h)",
        "kvm/tdx");
    add("GUEST_MEMFD_FLAG_HUGETLB", h.tdx_gmem_flags & (1ULL << 2),
        "KVM_CAP_GUEST_MEMFD_FLAGS " + hex(h.tdx_gmem_flags) + " on a TDX VM",
        "boot the huge-page series' kernel (guest_memfd hugetlb support)", "hugetlb_2m/1g private backing");
    add("GUEST_MEMFD_FLAG_MMAP", h.tdx_gmem_flags & 1ULL,
        "KVM_CAP_GUEST_MEMFD_FLAGS " + hex(h.tdx_gmem_flags) + " on a TDX VM",
        "boot the in-place conversion series' kernel", "in-place conversion");
  }
  const std::string version = read_line("/sys/devices/faux/tdx_host/version");
  const std::string features = read_line("/sys/devices/faux/tdx_host/features");
  add("TDX module version", !version.empty(),
      version.empty() ? "no /sys/devices/faux/tdx_host/version"
                      : "version " + version + (features.empty() ? "" : ", features " + features),
      "a kernel with the tdx_host faux-device patches (optional: tdxhp only prints it)", "the report only");
  for (const char* size : {"2048kB", "1048576kB"}) {
    const std::string dir = std::string("/sys/kernel/mm/hugepages/hugepages-") + size;
    const bool has = exists(dir);
    add(std::string("hugetlb pool ") + size, has,
        has ? "nr_hugepages " + read_line(dir + "/nr_hugepages") + ", free " + read_line(dir + "/free_hugepages") +
                  " (tdxhp grows it per case and restores it)"
            : "no " + dir,
        std::string(size) == "2048kB" ? "a kernel with CONFIG_HUGETLBFS"
                                      : "add hugepagesz=1G hugepages=2 to the kernel command line",
        std::string("hugetlb_") + (std::string(size) == "2048kB" ? "2m" : "1g") + " backings");
  }
  const bool tracefs = exists("/sys/kernel/tracing/events");
  add("tracefs", tracefs, tracefs ? "/sys/kernel/tracing mounted" : "no /sys/kernel/tracing/events",
      "sudo mount -t tracefs nodev /sys/kernel/tracing", "LeafLevels");
  for (const char* ev : {"kvm_tdp_mmu_spte_changed", "kvm_mmu_set_spte", "kvm_mmu_split_huge_page"}) {
    const std::string p = std::string("/sys/kernel/tracing/events/kvmmmu/") + ev;
    add(std::string("kvmmmu:") + ev, exists(p), exists(p) ? p : "no " + p,
        tracefs ? "load kvm (sudo modprobe kvm_intel); a kernel without this tracepoint cannot show leaf levels"
                : "sudo mount -t tracefs nodev /sys/kernel/tracing",
        "LeafLevels");
  }
  const bool pages_2m = exists("/sys/kernel/debug/kvm/pages_2m");
  add("debugfs kvm/pages_2m", pages_2m,
      pages_2m ? "/sys/kernel/debug/kvm/pages_2m = " + read_line("/sys/kernel/debug/kvm/pages_2m")
               : "no /sys/kernel/debug/kvm/pages_2m (debugfs unmounted, not root, or kvm not loaded)",
      "sudo mount -t debugfs none /sys/kernel/debug (and run as root)", "pages_2m stats beside the replay");
  add("/proc/kpageflags", readable("/proc/kpageflags"),
      readable("/proc/kpageflags") ? "readable" : "not readable (needs CAP_SYS_ADMIN)",
      "run tdxhp as root", "Backing (folio sizes behind gfns)");
  add("/dev/kmsg", readable("/dev/kmsg"), readable("/dev/kmsg") ? "readable" : "not readable",
      "run tdxhp as root (or sysctl kernel.dmesg_restrict=0)", "KernelLog (KVM_BUG_ON / WARN findings)");

  for (const char* f : {"tdx", "swprot", "plain"}) r.flavours.push_back({std::string("kvm/") + f, flavour_absence(f)});
  return r;
}

}  // namespace tdxhp::kvm
