/* First smoke check inside the vm guest (issue 6): proves the boot path gives a KVM with
 * SW-protected VMs before tdxhp's kvm target runs. Static, no libraries: it needs only the
 * 6.12 uapi, pinned in kvm_uapi_compat.h.
 * Output is KTAP so the driver and a human read the same lines. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/falloc.h>
#include "kvm_uapi_compat.h"
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define REGION_BYTES (4UL << 20) /* two 2M ranges: room for a 2M-aligned private range */

static int failures;
static int test_no;

static void report(int ok, const char *what, const char *detail) {
  ++test_no;
  if (!ok) ++failures;
  printf("%s %d - %s%s%s\n", ok ? "ok" : "not ok", test_no, what, detail[0] ? " # " : "", detail);
  fflush(stdout);
}

static int bail_out(const char *why) {
  printf("Bail out! %s\n", why);
  return 1;
}

int main(void) {
  char detail[256] = "";
  printf("KTAP version 1\n1..6\n");

  int kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC);
  snprintf(detail, sizeof detail, "%s", kvm < 0 ? strerror(errno) : "");
  report(kvm >= 0, "open /dev/kvm", detail);
  if (kvm < 0) return bail_out("no /dev/kvm");

  /* KVM_CAP_VM_TYPES is a bitmap of VM types; bit KVM_X86_SW_PROTECTED_VM means the rebuilt
   * kvm.ko has CONFIG_KVM_SW_PROTECTED_VM (3 = default + SW-protected on this AMD guest). */
  int types = ioctl(kvm, KVM_CHECK_EXTENSION, KVM_CAP_VM_TYPES);
  snprintf(detail, sizeof detail, "KVM_CAP_VM_TYPES=%d", types);
  report(types > 0 && (types & (1 << KVM_X86_SW_PROTECTED_VM)), "SW-protected VM type supported", detail);

  /* The kvm target reads mapping levels from these stats (DOMAIN.md section 7). */
  struct stat st;
  int has_stats = stat("/sys/kernel/debug/kvm/pages_2m", &st) == 0;
  snprintf(detail, sizeof detail, "%s", has_stats ? "" : strerror(errno));
  report(has_stats, "/sys/kernel/debug/kvm/pages_2m exists", detail);

  int vm = ioctl(kvm, KVM_CREATE_VM, KVM_X86_SW_PROTECTED_VM);
  snprintf(detail, sizeof detail, "%s", vm < 0 ? strerror(errno) : "");
  report(vm >= 0, "KVM_CREATE_VM(KVM_X86_SW_PROTECTED_VM)", detail);
  if (vm < 0) return bail_out("no SW-protected VM");

  struct kvm_create_guest_memfd gmem_req = {.size = REGION_BYTES};
  int gmem = ioctl(vm, KVM_CREATE_GUEST_MEMFD, &gmem_req);
  void *shared = mmap(NULL, REGION_BYTES, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  int slot_rc = -1;
  if (gmem >= 0 && shared != MAP_FAILED) {
    struct kvm_userspace_memory_region2 region = {
        .slot = 0, .flags = KVM_MEM_GUEST_MEMFD, .guest_phys_addr = 1UL << 30,
        .memory_size = REGION_BYTES, .userspace_addr = (uint64_t)(uintptr_t)shared,
        .guest_memfd = (uint32_t)gmem, .guest_memfd_offset = 0};
    slot_rc = ioctl(vm, KVM_SET_USER_MEMORY_REGION2, &region);
  }
  snprintf(detail, sizeof detail, "gmem fd %d, memslot rc %d%s%s", gmem, slot_rc,
           slot_rc ? ", " : "", slot_rc ? strerror(errno) : "");
  report(gmem >= 0 && slot_rc == 0, "guest_memfd memslot (KVM_SET_USER_MEMORY_REGION2)", detail);

  /* Private attribute on one 2M range, then back to shared for 4K inside it: the mixed
   * state INV-ATTR is about must be accepted by the kernel. */
  struct kvm_memory_attributes to_private = {
      .address = 1UL << 30, .size = 2UL << 20, .attributes = KVM_MEMORY_ATTRIBUTE_PRIVATE};
  struct kvm_memory_attributes one_shared = {.address = (1UL << 30) + 4096, .size = 4096, .attributes = 0};
  int attr_rc = ioctl(vm, KVM_SET_MEMORY_ATTRIBUTES, &to_private);
  int attr_errno = errno;
  int mixed_rc = attr_rc == 0 ? ioctl(vm, KVM_SET_MEMORY_ATTRIBUTES, &one_shared) : -1;
  int punch_rc = gmem >= 0 ? fallocate(gmem, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 0, 2UL << 20) : -1;
  snprintf(detail, sizeof detail, "to-private rc %d (%s), 4K to-shared rc %d, punch rc %d", attr_rc,
           attr_rc ? strerror(attr_errno) : "ok", mixed_rc, punch_rc);
  report(attr_rc == 0 && mixed_rc == 0 && punch_rc == 0, "KVM_SET_MEMORY_ATTRIBUTES and gmem punch-hole", detail);

  printf("# probe: %d failure(s)\n", failures);
  return failures ? 1 : 0;
}
