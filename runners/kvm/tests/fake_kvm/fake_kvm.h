/* A fake KVM below the C API (lib/tdxhp_kvm.h): the test binary is linked with
 * -Wl,--wrap=ioctl,--wrap=open,--wrap=close, so every ioctl the real tdx flavour code and
 * libkvm-selftests issue reaches this file instead of /dev/kvm. It answers the TD ioctls
 * (create, KVM_TDX_CAPABILITIES, INIT_VM, INIT_VCPU, INIT_MEM_REGION, FINALIZE, memslots,
 * guest_memfd, both attribute ioctls, KVM_RUN) and enforces the checks of the series'
 * arch/x86/kvm/vmx/tdx.c and virt/kvm that the flavour depends on (each check cites its
 * rule in fake_kvm.c). KVM_RUN plays the guest's command loop (lib/tdx/tdx_guest.c) at the
 * mailbox level and the module's accept rules; it cannot run guest code. What it proves and
 * what needs a TDX host: runners/kvm/README.md "The fake KVM". */
#ifndef TDXHP_FAKE_KVM_H
#define TDXHP_FAKE_KVM_H

#include <stdbool.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* guest_memfd flags as lib/uapi_compat.h spells them (checked in fake_kvm.c), for C++ tests
 * that cannot include the 6.12 uAPI headers. */
#define FAKE_GMEM_MMAP (1ULL << 0)
#define FAKE_GMEM_HUGETLB (1ULL << 2)
#define FAKE_GMEM_HUGETLB_2MB (21ULL << 58)
#define FAKE_GMEM_HUGETLB_1GB (30ULL << 58)

/* The host the fake pretends to be. Defaults (fake_kvm_reset): the huge-page series with
 * vm_memory_attributes=N, tdx=Y, tdx_huge_page=Y, hugetlb gmem, GPAW 48, MAXPHYADDR 52. */
struct fake_kvm_host {
	bool vm_memory_attributes; /* kvm.vm_memory_attributes: Y = per-VM, N = gmem-owned */
	bool tdx;                  /* kvm_intel.tdx */
	bool tdx_huge_page;        /* kvm_intel.tdx_huge_page */
	uint64_t gmem_flags;       /* KVM_CAP_GUEST_MEMFD_FLAGS of a TDX VM */
	unsigned guest_pa_bits;    /* KVM_GET_SUPPORTED_CPUID 0x80000008.EAX[23:16] */
	unsigned maxphyaddr;       /* 0x80000008.EAX[7:0] */
	unsigned td_maxphyaddr;    /* what KVM_TDX_GET_CPUID says for the vCPU (0: maxphyaddr) */
	int finalize_busy;         /* FINALIZE answers -EBUSY this many times first */
	int fail_init_vm;          /* non-zero: KVM_TDX_INIT_VM fails with -fail_init_vm */
	int init_mem_chunk;        /* INIT_MEM_REGION does at most this many pages per call (0: all) */
};

struct fake_kvm_counters {
	unsigned accept_tdcalls[3];   /* TDG.MEM.PAGE.ACCEPT issued, by RCX level (4K, 2M, 1G) */
	unsigned memory_fault_exits;
	unsigned hypercall_exits;
	unsigned finalize_calls;
	unsigned vm_attr_ioctls, gmem_attr_ioctls;
	unsigned unhandled_ioctls;    /* anything the fake does not know: tests expect 0 */
	uint64_t last_gmem_flags;     /* of the last KVM_CREATE_GUEST_MEMFD of a TD (test slots come last) */
	unsigned shared_bit_log2;     /* the TD's shared bit, from the GPAW INIT_VM got */
};

void fake_kvm_reset(const struct fake_kvm_host *h); /* NULL: defaults */
struct fake_kvm_host fake_kvm_defaults(void);
const struct fake_kvm_counters *fake_kvm_counters(void);
/* The S-EPT leaf level mapping gpa in the (only) TD: -1 none, 0 4K, 1 2M. */
int fake_kvm_leaf_level(uint64_t gpa);
/* KVM's attribute of gpa in the TD: 1 private, 0 shared, -1 no such memory. */
int fake_kvm_attr(uint64_t gpa);
/* Flips KVM's attribute behind userspace's back (what a missed conversion would leave). */
void fake_kvm_force_attr(uint64_t gpa, bool priv);
/* KVM_BUG_ON: from now on every ioctl on the TD, its vCPU and gmem fails with -EIO. */
void fake_kvm_kill_vm(void);
/* The last rule a refused ioctl broke (empty when none). */
const char *fake_kvm_last_refusal(void);

#ifdef __cplusplus
}
#endif
#endif
