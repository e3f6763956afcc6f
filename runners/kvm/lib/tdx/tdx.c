/* tdx flavour ioctls and TDCALLs: the TD build sequence (cover letter L459-470: init VM,
 * init vCPU, INIT_MEM_REGION for 4K build pages, FINALIZE) and the guest's TDCALLs (ACCEPT
 * at a level, VEINFO.GET for the #VE handler). tdx_td.c drives them; tdx_guest.c calls the
 * guest ones. */
#define _GNU_SOURCE
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <stdbool.h>
#include <stdint.h>

#include "tdx_abi.h"
#include "tdx_cpuid.h"
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

/* KVM_TDX_CAPABILITIES, growing the CPUID array while KVM answers E2BIG. NULL with
 * *err = -errno on failure. */
static struct tdxhp_kvm_tdx_capabilities *tdx_read_caps(int vm_fd, uint64_t *hw_error, int *err)
{
	struct tdxhp_kvm_tdx_capabilities *caps = NULL;
	unsigned nent;

	for (nent = 64; nent <= 4096; nent *= 2) {
		caps = realloc(caps, sizeof(*caps) + nent * sizeof(struct kvm_cpuid_entry2));
		memset(caps, 0, sizeof(*caps));
		caps->cpuid.nent = nent;
		*err = tdx_vm_cmd(vm_fd, TDXHP_KVM_TDX_CAPABILITIES, 0, caps, hw_error);
		if (*err != -E2BIG)
			break;
	}
	if (*err) {
		free(caps);
		return NULL;
	}
	return caps;
}

/* KVM_TDX_INIT_VM with KVM's supported CPUID as the module allows it (tdx_cpuid.c) and
 * KVM's GPAW. *used (malloc'd) is that CPUID, for the vCPU's KVM_SET_CPUID2. */
int tdx_init_vm(int vm_fd, uint64_t attributes, const struct kvm_cpuid2 *supported,
		struct kvm_cpuid2 **used, uint64_t *hw_error)
{
	struct tdxhp_kvm_tdx_capabilities *caps;
	struct tdxhp_kvm_tdx_init_vm *init;
	size_t esz = sizeof(struct kvm_cpuid_entry2);
	unsigned gpaw;
	int r;

	*used = NULL;
	caps = tdx_read_caps(vm_fd, hw_error, &r);
	if (!caps)
		return r;
	init = calloc(1, sizeof(*init) + supported->nent * esz);
	memcpy(init->cpuid.entries, supported->entries, supported->nent * esz);
	init->cpuid.nent = tdx_cpuid_prepare(init->cpuid.entries, supported->nent,
					     caps->cpuid.entries, caps->cpuid.nent);
	/* A TD attribute the module does not offer makes INIT_VM fail: ask only for those. */
	init->attributes = attributes & caps->supported_attrs;
	/* GPAW is KVM's GuestPhysAddrSize (0x80000008.EAX[23:16] of KVM_GET_SUPPORTED_CPUID), as
	 * the series' td_initialize() leaves it; only when KVM left it 0 is it derived from
	 * MAXPHYADDR. setup_tdparams_eptp_controls() takes 48 or 52 only. */
	gpaw = tdx_cpuid_gpaw_from_kvm(init->cpuid.entries, init->cpuid.nent);
	if (!gpaw || !tdx_cpuid_set_gpaw(init->cpuid.entries, init->cpuid.nent, gpaw))
		r = -ENOENT; /* no usable CPUID 0x80000008: KVM could not derive the GPAW */
	else
		r = tdx_vm_cmd(vm_fd, TDXHP_KVM_TDX_INIT_VM, 0, init, hw_error);
	if (!r) {
		*used = malloc(sizeof(**used) + init->cpuid.nent * esz);
		memcpy(*used, &init->cpuid, sizeof(**used) + init->cpuid.nent * esz);
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

/* After FINALIZE the TD is RUNNABLE: only now may private memory map at 2M (INV-LEVELCAP).
 * tdx_td_finalize() answers -EBUSY while TDH.MR.FINALIZE contends (a busy SEPT or TDR lock):
 * that is transient, so retry a bounded number of times before calling it a failure. */
int tdx_finalize(int vm_fd, uint64_t *hw_error)
{
	int r, tries;

	for (tries = 0; tries < 100; tries++) {
		r = tdx_vm_cmd(vm_fd, TDXHP_KVM_TDX_FINALIZE_VM, 0, NULL, hw_error);
		if (r != -EBUSY && r != -EAGAIN && r != -EINTR)
			break;
		usleep(1000);
	}
	return r;
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

/* TDG.MEM.PAGE.ACCEPT: RCX = gpa | level. A misaligned gpa or a level other than 4K/2M is the
 * module's TDX_OPERAND_INVALID with operand id RCX (verify_page_info_input, DOMAIN.md 3); the
 * guest reports it without issuing the call, so no 1G accept ever reaches the module. */
uint64_t tdx_guest_accept(uint64_t gpa, unsigned level)
{
	uint64_t rcx;

	if (!tdxhp_accept_rcx(gpa, level, &rcx))
		return TDXHP_TDX_OPERAND_INVALID | TDXHP_TDX_OPERAND_ID_RCX;
	return tdcall(TDXHP_TDG_MEM_PAGE_ACCEPT, rcx, 0, 0, NULL, NULL);
}

/* #VE handler body: TDG.VP.VEINFO.GET says why; an EPT violation on a PENDING page
 * (exit reason 48) is what the Access op reports as `ve`. */
uint64_t tdx_guest_ve_reason(uint64_t *gpa)
{
	/* The module writes RCX, RDX, R8, R9 and R10 (tdg_vp_veinfo_get.c:59-63): every one is
	 * an output bound to its register, so no compiler keeps a value there across the call. */
	register uint64_t r8 asm("r8");
	register uint64_t r9 asm("r9");
	register uint64_t r10 asm("r10");
	uint64_t rax = TDXHP_TDG_VP_VEINFO_GET, rcx = 0, rdx = 0;

	asm volatile(".byte 0x66, 0x0f, 0x01, 0xcc"
		     : "+a"(rax), "+c"(rcx), "+d"(rdx), "=r"(r8), "=r"(r9), "=r"(r10)
		     : : "memory");
	(void)r8;
	(void)r10;
	if (gpa)
		*gpa = r9;  /* guest physical address of the #VE */
	return rcx;     /* exit reason */
}
