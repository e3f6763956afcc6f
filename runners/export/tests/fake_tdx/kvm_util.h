/* Stand-in for the intel/tdx tree's tools/testing/selftests/kvm/include/kvm_util.h, so tdxhp
 * can compile (never link, never run) a TD reproducer on a machine without that tree: it is
 * linux-source-6.12's kvm_util.h with the two calls whose signatures the tree changed swapped
 * for the tree's, and the uAPI the tree adds that the reproducer uses.
 *   vm_create_guest_memfd(), vm_mem_add(): intel/tdx include/kvm_util.h (stored version
 *     03de4c15fa2a), called so by intel/tdx x86/tdx_vm_huge_page.c (deceaf0d419a).
 *   KVM_SET_MEMORY_ATTRIBUTES2: the in-place conversion series' include/uapi/linux/kvm.h
 *     (posted patches "KVM: guest_memfd: Add support for KVM_SET_MEMORY_ATTRIBUTES2" and the
 *     error_offset follow-up); GUEST_MEMFD_FLAG_*: as tdxhp's runners/kvm/lib/uapi_compat.h.
 * Declarations only, written for tdxhp; nothing here is the tree's code. */
#ifndef TDXHP_FAKE_TDX_KVM_UTIL_H
#define TDXHP_FAKE_TDX_KVM_UTIL_H

#define vm_create_guest_memfd tdxhp_v612_vm_create_guest_memfd
#define vm_mem_add tdxhp_v612_vm_mem_add
#include_next "kvm_util.h"
#undef vm_create_guest_memfd
#undef vm_mem_add

int vm_create_guest_memfd(struct kvm_vm *vm, uint64_t size, uint64_t flags, uint8_t page_order);
void vm_mem_add(struct kvm_vm *vm, enum vm_mem_backing_src_type src_type, uint64_t gpa, uint32_t slot,
		uint64_t npages, uint32_t flags, int gmem_fd, uint64_t gmem_offset, uint64_t gmem_flags,
		uint8_t gmem_order);

#ifndef GUEST_MEMFD_FLAG_MMAP
#define GUEST_MEMFD_FLAG_MMAP (1ULL << 0)
#endif
#ifndef GUEST_MEMFD_FLAG_HUGETLB
#define GUEST_MEMFD_FLAG_HUGETLB (1ULL << 2)
#endif

struct kvm_memory_attributes2 {
	union {
		__u64 address;
		__u64 offset;
	};
	__u64 size;
	__u64 attributes;
	__u64 flags;
	__u64 error_offset;
	__u64 reserved[11];
};
#define KVM_SET_MEMORY_ATTRIBUTES2 _IOWR(KVMIO, 0xd2, struct kvm_memory_attributes2)

#endif
