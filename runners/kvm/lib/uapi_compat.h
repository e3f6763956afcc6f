/* uAPI the linux-source-6.12 headers predate: guest_memfd flags, TDX VM type and ioctls.
 * Values match include/uapi/linux/kvm.h and arch/x86/include/uapi/asm/kvm.h of 6.16+. */
#ifndef TDXHP_KVM_UAPI_COMPAT_H
#define TDXHP_KVM_UAPI_COMPAT_H

#include <linux/kvm.h>
#include <linux/types.h>

#ifndef KVM_X86_DEFAULT_VM
#define KVM_X86_DEFAULT_VM 0
#endif
#ifndef KVM_X86_SW_PROTECTED_VM
#define KVM_X86_SW_PROTECTED_VM 1
#endif
#ifndef KVM_X86_TDX_VM
#define KVM_X86_TDX_VM 5
#endif
#ifndef KVM_CAP_VM_TYPES
#define KVM_CAP_VM_TYPES 235
#endif
#ifndef KVM_CAP_GUEST_MEMFD
#define KVM_CAP_GUEST_MEMFD 234
#endif
#ifndef KVM_CAP_MEMORY_ATTRIBUTES
#define KVM_CAP_MEMORY_ATTRIBUTES 233
#endif
#ifndef KVM_CAP_PRE_FAULT_MEMORY
#define KVM_CAP_PRE_FAULT_MEMORY 236
#endif
/* Returns the supported GUEST_MEMFD_FLAG_* mask (6.18). */
#ifndef KVM_CAP_GUEST_MEMFD_FLAGS
#define KVM_CAP_GUEST_MEMFD_FLAGS 244
#endif
#ifndef GUEST_MEMFD_FLAG_MMAP
#define GUEST_MEMFD_FLAG_MMAP (1ULL << 0)
#endif
#ifndef GUEST_MEMFD_FLAG_INIT_SHARED
#define GUEST_MEMFD_FLAG_INIT_SHARED (1ULL << 1)
#endif
#ifndef KVM_MAP_GPA_RANGE_ENCRYPTED
#define KVM_MAP_GPA_RANGE_ENCRYPTED (1 << 4)
#endif

/* The in-place conversion and guest_memfd hugetlb series (not upstream; numbers as in the
 * series revision the huge-page series' tdx_vm_huge_page.c is built on, public patch text:
 * "KVM: guest_memfd: Add support for KVM_SET_MEMORY_ATTRIBUTES2" and "KVM: guest_memfd:
 * Add hugetlb support"). The numbers moved between revisions: `tdxhp doctor` prints what
 * the host answers for each, and a mismatch shows as a SKIP naming the cap or flag. */
#ifndef KVM_CAP_GUEST_MEMFD_MEMORY_ATTRIBUTES
#define KVM_CAP_GUEST_MEMFD_MEMORY_ATTRIBUTES 250
#endif
#ifndef GUEST_MEMFD_FLAG_HUGETLB
#define GUEST_MEMFD_FLAG_HUGETLB (1ULL << 2)
#endif
#define TDXHP_GUESTMEM_HUGETLB_FLAG_SHIFT 58
#define TDXHP_GUESTMEM_HUGETLB_FLAG_2MB (21ULL << TDXHP_GUESTMEM_HUGETLB_FLAG_SHIFT)
#define TDXHP_GUESTMEM_HUGETLB_FLAG_1GB (30ULL << TDXHP_GUESTMEM_HUGETLB_FLAG_SHIFT)
/* guest_memfd ioctl: attributes of [offset, offset + size) of that file (vm_memory_attributes=N
 * makes the VM ioctl -ENOTTY; kvm_main.c hunk of the same series). */
struct tdxhp_kvm_memory_attributes2 {
	__u64 offset;
	__u64 size;
	__u64 attributes;
	__u64 flags;
	__u64 error_offset;
	__u64 reserved[11];
};
#define TDXHP_KVM_SET_MEMORY_ATTRIBUTES2 _IOWR(KVMIO, 0xd2, struct tdxhp_kvm_memory_attributes2)
#ifndef KVM_MEMORY_EXIT_FLAG_PRIVATE
#define KVM_MEMORY_EXIT_FLAG_PRIVATE (1ULL << 3)
#endif

/* TDX (KVM_MEMORY_ENCRYPT_OP sub-commands, Documentation/virt/kvm/x86/intel-tdx.rst). */
#ifndef KVM_EXIT_TDX
#define KVM_EXIT_TDX 40
#endif
enum tdxhp_kvm_tdx_cmd_id {
	TDXHP_KVM_TDX_CAPABILITIES = 0,
	TDXHP_KVM_TDX_INIT_VM,
	TDXHP_KVM_TDX_INIT_VCPU,
	TDXHP_KVM_TDX_INIT_MEM_REGION,
	TDXHP_KVM_TDX_FINALIZE_VM,
	TDXHP_KVM_TDX_GET_CPUID,
};

struct tdxhp_kvm_tdx_cmd {
	__u32 id;
	__u32 flags;
	__u64 data;
	__u64 hw_error;
};

struct tdxhp_kvm_tdx_capabilities {
	__u64 supported_attrs;
	__u64 supported_xfam;
	__u64 kernel_tdvmcallinfo_1_r11;
	__u64 user_tdvmcallinfo_1_r11;
	__u64 kernel_tdvmcallinfo_1_r12;
	__u64 user_tdvmcallinfo_1_r12;
	__u64 reserved[250];
	struct kvm_cpuid2 cpuid; /* followed by cpuid.nent entries */
};

struct tdxhp_kvm_tdx_init_vm {
	__u64 attributes;
	__u64 xfam;
	__u64 mrconfigid[6];
	__u64 mrowner[6];
	__u64 mrownerconfig[6];
	__u64 reserved[12];
	struct kvm_cpuid2 cpuid; /* followed by cpuid.nent entries */
};

#define TDXHP_KVM_TDX_MEASURE_MEMORY_REGION (1ULL << 0)
struct tdxhp_kvm_tdx_init_mem_region {
	__u64 source_addr;
	__u64 gpa;
	__u64 nr_pages;
};

#endif
