/* Stand-in for the intel/tdx tree's tools/testing/selftests/kvm/include/kvm_util.h, so tdxhp
 * can compile (never link, never run) a TD reproducer on a machine without that tree: it is
 * linux-source-6.12's kvm_util.h with the two calls whose signatures the tree changed swapped
 * for the tree's, and the uAPI the tree adds that the reproducer uses.
 *   vm_create_guest_memfd(), vm_mem_add(): intel/tdx include/kvm_util.h (stored version
 *     03de4c15fa2a), called so by intel/tdx x86/tdx_vm_huge_page.c (deceaf0d419a).
 *   KVM_SET_MEMORY_ATTRIBUTES2, GUEST_MEMFD_FLAG_*: the in-place conversion and hugetlb
 *     series' include/uapi/linux/kvm.h, as tdxhp's runners/kvm/lib/uapi_compat.h records it.
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

/* tdxhp's one record of the series' uAPI (guest_memfd flags, KVM_SET_MEMORY_ATTRIBUTES2), under
 * the tree's names. */
#include "../../../kvm/lib/uapi_compat.h"
#define kvm_memory_attributes2 tdxhp_kvm_memory_attributes2
#define KVM_SET_MEMORY_ATTRIBUTES2 TDXHP_KVM_SET_MEMORY_ATTRIBUTES2

#endif
