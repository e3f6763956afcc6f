/* The small C API between tdxhp's C++ kvm target and libkvm-selftests. Everything that
 * touches /dev/kvm or guest code lives behind it; callers run it inside the worker process
 * that owns the VM (a TEST_ASSERT in libkvm kills only that worker). */
#ifndef TDXHP_KVM_H
#define TDXHP_KVM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

enum tkvm_flavour { TKVM_PLAIN = 0, TKVM_SWPROT = 1, TKVM_TDX = 2 };

/* What this host's KVM offers, from ioctls and sysfs only (no VM is run). */
struct tkvm_host {
	bool dev_kvm;              /* /dev/kvm opens */
	uint64_t vm_types;         /* KVM_CAP_VM_TYPES bitmask (bit n = type n) */
	bool guest_memfd;          /* KVM_CAP_GUEST_MEMFD on a default VM */
	uint64_t gmem_flags;       /* KVM_CAP_GUEST_MEMFD_FLAGS on a default VM */
	uint64_t attributes;       /* KVM_CAP_MEMORY_ATTRIBUTES on a default VM */
	uint64_t swprot_attributes;/* KVM_CAP_MEMORY_ATTRIBUTES on a SW-protected VM */
	bool pre_fault;            /* KVM_CAP_PRE_FAULT_MEMORY */
	bool binary_stats;         /* KVM_CAP_BINARY_STATS_FD */
	int tdx_enabled;           /* /sys/module/kvm_intel/parameters/tdx: 1, 0, -1 unknown */
	int tdx_huge_page;         /* /sys/module/kvm_intel/parameters/tdx_huge_page, -1 absent */
	int vm_memory_attributes;  /* /sys/module/kvm/parameters/vm_memory_attributes, -1 absent */
	int tdp_mmu;               /* /sys/module/kvm/parameters/tdp_mmu: 1, 0, -1 absent */
	/* On a TDX VM (KVM_X86_TDX_VM created and closed, never initialised); 0 without TDX. */
	bool tdx_vm_created;
	uint64_t tdx_gmem_flags;   /* KVM_CAP_GUEST_MEMFD_FLAGS */
	uint64_t tdx_vm_attributes;   /* KVM_CAP_MEMORY_ATTRIBUTES (0 when vm_memory_attributes=N) */
	uint64_t tdx_gmem_attributes; /* KVM_CAP_GUEST_MEMFD_MEMORY_ATTRIBUTES (series) */
	bool shared_discard;       /* MADV_DONTNEED frees anonymous memory (Cap::SharedDiscard) */
	char shared_discard_error[96]; /* why not */
	char kvm_module[32];       /* kvm_intel, kvm_amd, kvm_pvm ... */
	char error[160];           /* why /dev/kvm is unusable */
};
void tkvm_probe_host(struct tkvm_host *h);

#define TKVM_MAX_SLOTS 8
struct tkvm_slot {
	uint32_t id;
	uint64_t base_gfn, npages, gmem_offset, hva_offset; /* scenario gfn space, 4K pages */
};

enum tkvm_backing { TKVM_BACK_4K = 0, TKVM_BACK_THP_2M, TKVM_BACK_HUGETLB_2M, TKVM_BACK_HUGETLB_1G };

struct tkvm_config {
	enum tkvm_flavour flavour;
	/* plain: its memory (4K only). swprot/tdx: the shared side of each slot (anonymous THP
	 * or hugetlb memory at userspace_addr, Config::shared_backing). */
	enum tkvm_backing backing;
	/* tdx: the test slots' guest_memfd (Config::backing): 4K, or hugetlb 2M/1G through
	 * GUEST_MEMFD_FLAG_HUGETLB; there is no THP guest_memfd. swprot/plain: 4K only. */
	enum tkvm_backing private_backing;
	/* tdx: AttrMode::InPlace: the shared side is the guest_memfd itself (GUEST_MEMFD_FLAG_MMAP)
	 * and attributes live on it. Else separate shared memory, attributes wherever KVM keeps them. */
	bool in_place;
	bool initially_private;
	uint32_t nslots;
	struct tkvm_slot slots[TKVM_MAX_SLOTS];
	uint32_t nbuild;            /* tdx: 4K build pages (TDH.MEM.PAGE.ADD) */
	const uint64_t *build_gfns;
	/* What tkvm_probe_host found, or NULL to probe again (a probe builds VMs: not per case). */
	const struct tkvm_host *host;
};

struct tkvm_vm;

/* Builds the VM, its memslots (one guest_memfd per slot) and one vCPU running the command
 * loop. NULL on failure with the reason in why and errno set: EOPNOTSUPP when this host cannot
 * honour the config (why names the missing parameter, cap or flag); any other errno is a
 * build that should have worked and did not (tdx: why names the ioctl, errno and TD state). */
struct tkvm_vm *tkvm_create(const struct tkvm_config *cfg, char *why, size_t why_len);
void tkvm_destroy(struct tkvm_vm *vm);
/* plain/swprot: replaces the test memslots with cfg's on the same VM and vCPU (attributes
 * back to shared, slots deleted, new memory and guest_memfds), so a new case costs no VM
 * build. -EAGAIN when this VM cannot be reset to cfg (a TD, a dead VM, another flavour):
 * build a new one; -EOPNOTSUPP for a config tkvm_create refuses too. Any other error leaves
 * the VM unusable: destroy it. */
int tkvm_reset(struct tkvm_vm *vm, const struct tkvm_config *cfg, char *why, size_t why_len);
/* plain/swprot: deletes the test memslots and frees their memory, attributes back to shared
 * first, so the next slots start from the state a new VM has. tkvm_reset does it too; done
 * ahead, it overlaps the runner's work between two cases. No-op when there are none. */
void tkvm_release(struct tkvm_vm *vm);

/* The guest-physical address of scenario gfn (slots are placed above libkvm's memslot 0). */
uint64_t tkvm_gpa_of(const struct tkvm_vm *vm, uint64_t gfn);
/* The scenario gfn of a guest-physical address, or UINT64_MAX outside the test slots. */
uint64_t tkvm_gfn_of(const struct tkvm_vm *vm, uint64_t gpa);
int tkvm_vm_fd(const struct tkvm_vm *vm);
int tkvm_gmem_fd(const struct tkvm_vm *vm, uint32_t slot_id);

/* Host ops: 0 or -errno, as the kernel returned them. */
int tkvm_set_attributes(struct tkvm_vm *vm, uint64_t gfn, uint64_t npages, bool to_private);
int tkvm_punch_hole(struct tkvm_vm *vm, uint64_t gfn, uint64_t npages);
int tkvm_prefault(struct tkvm_vm *vm, uint64_t gfn, uint64_t npages);
/* DiscardShared (swprot): madvise(MADV_DONTNEED) of the slot's shared host memory for
 * [gfn, gfn + npages) (SEMANTICS.md "Host ops"; hugetlb alignment is the kernel's to check).
 * A THP block discarded in part is kept 4K (MADV_NOHUGEPAGE) as the domain rule says.
 * 0 or -errno; -EINVAL outside one slot, -EOPNOTSUPP on plain (no separate shared memory). */
int tkvm_shared_discard(struct tkvm_vm *vm, uint64_t gfn, uint64_t npages);

/* Guest ops: the return value is 0 or -errno for the host side of the step (-EFAULT outside
 * the slots, -EIO when the VM is dead, -ETIME for a guest that does not answer). */
struct tkvm_guest_result {
	uint64_t value;       /* read value */
	uint64_t tdx_status;  /* accept status */
	bool ve;              /* access hit a PENDING page (#VE) */
	int convert_err;      /* MapGPA: result of the conversion userspace did */
};
int tkvm_guest_access(struct tkvm_vm *vm, uint64_t gfn, bool write, uint64_t value,
		      struct tkvm_guest_result *res);
int tkvm_guest_accept(struct tkvm_vm *vm, uint64_t gfn, unsigned level,
		      struct tkvm_guest_result *res);
int tkvm_guest_map_gpa(struct tkvm_vm *vm, uint64_t gfn, uint64_t npages, bool to_private,
		       struct tkvm_guest_result *res);

/* Binary stats of the VM (KVM_GET_STATS_FD); -ENOENT for a stat this KVM lacks. */
int tkvm_stat(struct tkvm_vm *vm, const char *name, uint64_t *value);
/* Whether the VM is still usable (a KVM_BUG_ON makes every ioctl fail with -EIO). */
bool tkvm_vm_dead(const struct tkvm_vm *vm);
const char *tkvm_flavour_name(enum tkvm_flavour f);

/* tdx: guest_memfd flags for a private backing, 0 with why set when the host lacks one. */
bool tkvm_tdx_gmem_flags(const struct tkvm_host *h, enum tkvm_backing private_backing, bool in_place,
			 uint64_t *flags, char *why, size_t why_len);
/* tdx: one paragraph saying which backings the flavour uses on this host and why. */
void tkvm_tdx_backing_plan(const struct tkvm_host *h, char *buf, size_t len);

#ifdef __cplusplus
}
#endif
#endif
