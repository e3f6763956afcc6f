/* Private/shared attributes, wherever this KVM keeps them: per VM (KVM_SET_MEMORY_ATTRIBUTES,
 * kvm.vm_memory_attributes=Y) or per guest_memfd (KVM_SET_MEMORY_ATTRIBUTES2 on the gmem fd,
 * the in-place conversion series with vm_memory_attributes=N, which the huge-page series'
 * tdx_vm_huge_page selftest requires). Used by vm.c and tdx/tdx_td.c alike. */
#ifndef TDXHP_KVM_ATTRIBUTES_H
#define TDXHP_KVM_ATTRIBUTES_H

#include <stdbool.h>
#include <stdint.h>

enum tkvm_attr_owner {
	TKVM_ATTR_NONE = 0, /* neither ioctl offers PRIVATE: no private memory to test */
	TKVM_ATTR_VM,       /* KVM_CAP_MEMORY_ATTRIBUTES & PRIVATE on the VM */
	TKVM_ATTR_GMEM,     /* KVM_CAP_GUEST_MEMFD_MEMORY_ATTRIBUTES & PRIVATE */
};

/* Who owns the attributes on a VM of this fd (VM ioctls take precedence: the series keeps
 * them when vm_memory_attributes=Y, and then the gmem ioctl is not what KVM consults). */
enum tkvm_attr_owner tkvm_attr_owner_of(int vm_fd);
const char *tkvm_attr_owner_name(enum tkvm_attr_owner o);

/* 0 or -errno. VM: [gpa, gpa + size). GMEM: [offset, offset + size) of gmem_fd. */
int tkvm_attr_set_vm(int vm_fd, uint64_t gpa, uint64_t size, bool to_private);
int tkvm_attr_set_gmem(int gmem_fd, uint64_t offset, uint64_t size, bool to_private);

#endif
