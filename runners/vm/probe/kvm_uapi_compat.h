/* The 6.12 uapi the probe needs, for hosts whose linux-libc-dev predates it (Debian 12 ships
 * 6.1 headers). Values and layouts are those of linux-source-6.12 include/uapi/linux/kvm.h
 * and arch/x86/include/uapi/asm/kvm.h; each block is skipped when the system header has it. */
#pragma once
#include <linux/kvm.h>

#ifndef KVM_CAP_VM_TYPES
#define KVM_CAP_VM_TYPES 235
#endif
#ifndef KVM_X86_SW_PROTECTED_VM
#define KVM_X86_SW_PROTECTED_VM 1
#endif
#ifndef KVM_MEM_GUEST_MEMFD
#define KVM_MEM_GUEST_MEMFD (1UL << 2)
#endif

#ifndef KVM_SET_USER_MEMORY_REGION2
struct kvm_userspace_memory_region2 {
  __u32 slot;
  __u32 flags;
  __u64 guest_phys_addr;
  __u64 memory_size;
  __u64 userspace_addr;
  __u64 guest_memfd_offset;
  __u32 guest_memfd;
  __u32 pad1;
  __u64 pad2[14];
};
#define KVM_SET_USER_MEMORY_REGION2 _IOW(KVMIO, 0x49, struct kvm_userspace_memory_region2)
#endif

#ifndef KVM_SET_MEMORY_ATTRIBUTES
struct kvm_memory_attributes {
  __u64 address;
  __u64 size;
  __u64 attributes;
  __u64 flags;
};
#define KVM_SET_MEMORY_ATTRIBUTES _IOW(KVMIO, 0xd2, struct kvm_memory_attributes)
#define KVM_MEMORY_ATTRIBUTE_PRIVATE (1ULL << 3)
#endif

#ifndef KVM_CREATE_GUEST_MEMFD
struct kvm_create_guest_memfd {
  __u64 size;
  __u64 flags;
  __u64 reserved[6];
};
#define KVM_CREATE_GUEST_MEMFD _IOWR(KVMIO, 0xd4, struct kvm_create_guest_memfd)
#endif
