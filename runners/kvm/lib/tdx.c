/* tdx flavour pieces: the TD build sequence (cover letter L459-470: init VM, init vCPU,
 * INIT_MEM_REGION for 4K build pages, FINALIZE) and the guest's TDCALLs (ACCEPT at a level,
 * MapGPA via TDVMCALL, VEINFO.GET for the #VE handler). Not yet wired into tkvm_create: the
 * reset-vector trampoline that brings a TD vCPU into the 64-bit command loop is missing. */
#define _GNU_SOURCE
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>

#include <stdbool.h>
#include <stdint.h>

#include "tdx_abi.h"
#include "uapi_compat.h"

/* ---------------------------------------------------------------- host: TD build */

int tdx_vm_cmd(int vm_fd, unsigned cmd, unsigned flags, void *data, uint64_t *hw_error)
{
	struct tdxhp_kvm_tdx_cmd c = { .id = cmd, .flags = flags, .data = (uint64_t)(uintptr_t)data };
	int r = ioctl(vm_fd, KVM_MEMORY_ENCRYPT_OP, &c);

	if (hw_error)
		*hw_error = c.hw_error;
	return r < 0 ? -errno : 0;
}

int tdx_vcpu_cmd(int vcpu_fd, unsigned cmd, unsigned flags, uint64_t data)
{
	struct tdxhp_kvm_tdx_cmd c = { .id = cmd, .flags = flags, .data = data };

	return ioctl(vcpu_fd, KVM_MEMORY_ENCRYPT_OP, &c) < 0 ? -errno : 0;
}

/* KVM_TDX_CAPABILITIES then KVM_TDX_INIT_VM with the CPUID the module allows. */
int tdx_init_vm(int vm_fd, uint64_t attributes, uint64_t *hw_error)
{
	const unsigned nent = 256;
	size_t csz = sizeof(struct tdxhp_kvm_tdx_capabilities) + nent * sizeof(struct kvm_cpuid_entry2);
	size_t isz = sizeof(struct tdxhp_kvm_tdx_init_vm) + nent * sizeof(struct kvm_cpuid_entry2);
	struct tdxhp_kvm_tdx_capabilities *caps = calloc(1, csz);
	struct tdxhp_kvm_tdx_init_vm *init = calloc(1, isz);
	int r;

	caps->cpuid.nent = nent;
	r = tdx_vm_cmd(vm_fd, TDXHP_KVM_TDX_CAPABILITIES, 0, caps, hw_error);
	if (!r) {
		init->attributes = attributes & caps->supported_attrs;
		init->xfam = caps->supported_xfam;
		init->cpuid.nent = caps->cpuid.nent;
		memcpy(init->cpuid.entries, caps->cpuid.entries,
		       caps->cpuid.nent * sizeof(struct kvm_cpuid_entry2));
		r = tdx_vm_cmd(vm_fd, TDXHP_KVM_TDX_INIT_VM, 0, init, hw_error);
	}
	free(caps);
	free(init);
	return r;
}

/* TDH.MEM.PAGE.ADD of npages 4K pages at gpa from source (build pages are 4K only,
 * L4348-4351), measured so the TD's MRTD covers them. */
int tdx_init_mem_region(int vcpu_fd, void *source, uint64_t gpa, uint64_t npages)
{
	struct tdxhp_kvm_tdx_init_mem_region m = {
		.source_addr = (uint64_t)(uintptr_t)source, .gpa = gpa, .nr_pages = npages,
	};
	struct tdxhp_kvm_tdx_cmd c = {
		.id = TDXHP_KVM_TDX_INIT_MEM_REGION, .flags = TDXHP_KVM_TDX_MEASURE_MEMORY_REGION,
		.data = (uint64_t)(uintptr_t)&m,
	};

	while (m.nr_pages) {  /* KVM advances the struct and returns -EAGAIN when interrupted */
		if (ioctl(vcpu_fd, KVM_MEMORY_ENCRYPT_OP, &c) == 0)
			break;
		if (errno != EAGAIN && errno != EINTR)
			return -errno;
	}
	return 0;
}

/* After FINALIZE the TD is RUNNABLE: only now may private memory map at 2M (INV-LEVELCAP). */
int tdx_finalize(int vm_fd, uint64_t *hw_error)
{
	return tdx_vm_cmd(vm_fd, TDXHP_KVM_TDX_FINALIZE_VM, 0, NULL, hw_error);
}

/* ---------------------------------------------------------------- guest: TDCALLs */

/* TDCALL is "66 0f 01 cc"; spelled as bytes so older assemblers take it. */
static inline uint64_t tdcall(uint64_t leaf, uint64_t rcx, uint64_t rdx, uint64_t r8,
			      uint64_t *out_rcx, uint64_t *out_r11)
{
	register uint64_t r8_ asm("r8") = r8;
	register uint64_t r11_ asm("r11");
	uint64_t rax = leaf;

	asm volatile(".byte 0x66, 0x0f, 0x01, 0xcc"
		     : "+a"(rax), "+c"(rcx), "+d"(rdx), "+r"(r8_), "=r"(r11_)
		     : : "memory");
	if (out_rcx)
		*out_rcx = rcx;
	if (out_r11)
		*out_r11 = r11_;
	return rax;
}

/* TDG.MEM.PAGE.ACCEPT: RCX = gpa | level. A misaligned gpa is the module's
 * TDX_OPERAND_INVALID; the guest reports it without issuing the call. */
uint64_t tdx_guest_accept(uint64_t gpa, unsigned level)
{
	uint64_t rcx;

	if (!tdxhp_accept_rcx(gpa, level, &rcx))
		return TDXHP_TDX_OPERAND_INVALID;
	return tdcall(TDXHP_TDG_MEM_PAGE_ACCEPT, rcx, 0, 0, NULL, NULL);
}

/* TDVMCALL MapGPA (r10=0 standard, r11=0x10001, r12=gpa with the shared bit for "to
 * shared", r13=size); KVM exits to userspace with KVM_HC_MAP_GPA_RANGE, which converts. */
uint64_t tdx_guest_map_gpa(uint64_t gpa, uint64_t size, bool to_private, unsigned gpa_bits)
{
	register uint64_t r10 asm("r10") = 0;
	register uint64_t r11 asm("r11") = TDXHP_TDVMCALL_MAP_GPA;
	register uint64_t r12 asm("r12") = to_private ? tdxhp_gpa_private(gpa, gpa_bits)
						      : tdxhp_gpa_shared(gpa, gpa_bits);
	register uint64_t r13 asm("r13") = size;
	uint64_t rax = TDXHP_TDG_VP_VMCALL;
	uint64_t rcx = (1u << 10) | (1u << 11) | (1u << 12) | (1u << 13); /* regs exposed */

	asm volatile(".byte 0x66, 0x0f, 0x01, 0xcc"
		     : "+a"(rax), "+c"(rcx), "+r"(r10), "+r"(r11), "+r"(r12), "+r"(r13)
		     : : "memory");
	return rax ? rax : r10;
}

/* #VE handler body: TDG.VP.VEINFO.GET says why; an EPT violation on a PENDING page
 * (exit reason 48) is what the Access op reports as `ve`. */
uint64_t tdx_guest_ve_reason(uint64_t *gpa)
{
	uint64_t rcx = 0, r11 = 0;
	register uint64_t r9 asm("r9");
	uint64_t rax = TDXHP_TDG_VP_VEINFO_GET, rdx = 0, r8 = 0;

	asm volatile(".byte 0x66, 0x0f, 0x01, 0xcc"
		     : "+a"(rax), "+c"(rcx), "+d"(rdx), "+r"(r8), "=r"(r9), "=r"(r11)
		     : : "memory");
	(void)r11;
	if (gpa)
		*gpa = r9;  /* guest physical address of the #VE */
	return rcx;     /* exit reason */
}
