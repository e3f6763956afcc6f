/* See attributes.h. */
#include "attributes.h"

#include <errno.h>
#include <sys/ioctl.h>

#include "uapi_compat.h"

static long check_cap(int fd, long cap)
{
	long r = ioctl(fd, KVM_CHECK_EXTENSION, cap);

	return r < 0 ? 0 : r;
}

enum tkvm_attr_owner tkvm_attr_owner_of(int vm_fd)
{
	if (check_cap(vm_fd, KVM_CAP_MEMORY_ATTRIBUTES) & KVM_MEMORY_ATTRIBUTE_PRIVATE)
		return TKVM_ATTR_VM;
	if (check_cap(vm_fd, KVM_CAP_GUEST_MEMFD_MEMORY_ATTRIBUTES) & KVM_MEMORY_ATTRIBUTE_PRIVATE)
		return TKVM_ATTR_GMEM;
	return TKVM_ATTR_NONE;
}

const char *tkvm_attr_owner_name(enum tkvm_attr_owner o)
{
	return o == TKVM_ATTR_VM	 ? "per-VM (KVM_SET_MEMORY_ATTRIBUTES)"
	       : o == TKVM_ATTR_GMEM ? "guest_memfd (KVM_SET_MEMORY_ATTRIBUTES2)"
				     : "none";
}

int tkvm_attr_set_vm(int vm_fd, uint64_t gpa, uint64_t size, bool to_private)
{
	struct kvm_memory_attributes a = {
		.address = gpa, .size = size,
		.attributes = to_private ? KVM_MEMORY_ATTRIBUTE_PRIVATE : 0,
	};

	return ioctl(vm_fd, KVM_SET_MEMORY_ATTRIBUTES, &a) ? -errno : 0;
}

int tkvm_attr_set_gmem(int gmem_fd, uint64_t offset, uint64_t size, bool to_private)
{
	struct tdxhp_kvm_memory_attributes2 a = {
		.offset = offset, .size = size,
		.attributes = to_private ? KVM_MEMORY_ATTRIBUTE_PRIVATE : 0,
	};

	return ioctl(gmem_fd, TDXHP_KVM_SET_MEMORY_ATTRIBUTES2, &a) ? -errno : 0;
}
