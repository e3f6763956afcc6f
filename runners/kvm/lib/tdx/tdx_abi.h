/* TDX guest/host ABI encodings the tdx flavour relies on, as pure functions so they are
 * unit-tested on hosts without TDX (DOMAIN.md section 3 table). */
#ifndef TDXHP_KVM_TDX_ABI_H
#define TDXHP_KVM_TDX_ABI_H

#include <stdbool.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* TDCALL leaves and the TDVMCALL sub-function the guest uses. */
#define TDXHP_TDG_VP_VMCALL 0ULL
#define TDXHP_TDG_VP_VEINFO_GET 3ULL
#define TDXHP_TDG_MEM_PAGE_ACCEPT 6ULL
#define TDXHP_TDVMCALL_MAP_GPA 0x10001ULL
#define TDXHP_TDVMCALL_RETRY 1ULL /* r10 of a partial MapGPA: resume at r11 */

/* Status codes (upper 32 bits are the class; the low bits carry an operand or level). */
#define TDXHP_TDX_SUCCESS 0ULL
#define TDXHP_TDX_OPERAND_BUSY 0x8000020000000000ULL
#define TDXHP_TDX_OPERAND_INVALID 0xC000010000000000ULL
#define TDXHP_TDX_OPERAND_ID_RCX 1ULL /* low bits of OPERAND_INVALID: which operand */
#define TDXHP_TDX_PAGE_ALREADY_ACCEPTED 0x00000B0A00000000ULL
#define TDXHP_TDX_PAGE_SIZE_MISMATCH 0xC0000B0B00000000ULL
#define TDXHP_TDX_STATUS_CLASS_MASK 0xFFFFFFFF00000000ULL
#define TDXHP_TDX_ERROR_BIT (1ULL << 63)

/* Accept levels as TDG.MEM.PAGE.ACCEPT encodes them in RCX[2:0]: 0=4K 1=2M 2=1G. */
enum tdxhp_accept_level { TDXHP_ACCEPT_4K = 0, TDXHP_ACCEPT_2M = 1, TDXHP_ACCEPT_1G = 2 };

static inline uint64_t tdxhp_level_bytes(unsigned level)
{
	return 4096ULL << (9 * level);
}

/* RCX operand of TDG.MEM.PAGE.ACCEPT: the level-aligned GPA ORed with the level.
 * Returns false (and leaves *rcx alone) when gpa is not aligned to the level or the level
 * is not 4K/2M: the module would answer TDX_OPERAND_INVALID. */
static inline bool tdxhp_accept_rcx(uint64_t gpa, unsigned level, uint64_t *rcx)
{
	/* The module takes 4K and 2M only: verify_page_info_input(gpa_mappings, LVL_PT, LVL_PD)
	 * (tdg_mem_page_accept.c:162), so a 1G accept is never sent (DOMAIN.md section 3). */
	if (level > TDXHP_ACCEPT_2M || (gpa & (tdxhp_level_bytes(level) - 1)))
		return false;
	*rcx = gpa | level;
	return true;
}

static inline uint64_t tdxhp_tdx_status_class(uint64_t status)
{
	return status & TDXHP_TDX_STATUS_CLASS_MASK;
}

/* TDX_PAGE_SIZE_MISMATCH carries the level the guest asked for in its low bits. */
static inline bool tdxhp_tdx_is_size_mismatch(uint64_t status, unsigned *level)
{
	if (tdxhp_tdx_status_class(status) != TDXHP_TDX_PAGE_SIZE_MISMATCH)
		return false;
	if (level)
		*level = (unsigned)(status & 0x7);
	return true;
}

static inline bool tdxhp_tdx_is_error(uint64_t status)
{
	return (status & TDXHP_TDX_ERROR_BIT) != 0;
}

/* Shared-bit handling: a TD's GPA width decides the bit that marks a GPA shared
 * (bit 47 with 48-bit GPAW, bit 51 with 52-bit). Private GPAs have it clear. */
static inline uint64_t tdxhp_shared_bit(unsigned gpa_bits)
{
	return 1ULL << (gpa_bits - 1);
}

static inline uint64_t tdxhp_gpa_shared(uint64_t gpa, unsigned gpa_bits)
{
	return gpa | tdxhp_shared_bit(gpa_bits);
}

static inline uint64_t tdxhp_gpa_private(uint64_t gpa, unsigned gpa_bits)
{
	return gpa & ~tdxhp_shared_bit(gpa_bits);
}

static inline bool tdxhp_gpa_is_shared(uint64_t gpa, unsigned gpa_bits)
{
	return (gpa & tdxhp_shared_bit(gpa_bits)) != 0;
}

/* KVM_EXIT_HYPERCALL(KVM_HC_MAP_GPA_RANGE) as KVM forwards a guest MapGPA: args[0] = GPA
 * with the shared bit stripped, args[1] = 4K pages, args[2] bit 4 = to private. */
struct tdxhp_map_gpa_request {
	uint64_t gpa;
	uint64_t npages;
	bool to_private;
};

static inline struct tdxhp_map_gpa_request tdxhp_decode_map_gpa(uint64_t arg0, uint64_t arg1,
								 uint64_t arg2, unsigned gpa_bits)
{
	struct tdxhp_map_gpa_request r;

	r.gpa = tdxhp_gpa_private(arg0, gpa_bits);
	r.npages = arg1;
	r.to_private = (arg2 & (1u << 4)) != 0;
	return r;
}

/* What userspace must do with a vCPU exit in the tdx flavour. */
enum tdxhp_tdx_exit_action {
	TDXHP_EXIT_GUEST_DONE,   /* ucall: the guest finished its command */
	TDXHP_EXIT_CONVERT,      /* MapGPA or private/shared mismatch: convert, then resume */
	TDXHP_EXIT_VM_DEAD,      /* KVM_EXIT_SHUTDOWN/FAIL_ENTRY/INTERNAL_ERROR, or -EIO */
	TDXHP_EXIT_UNEXPECTED,
};

/* exit_reason is kvm_run->exit_reason; ucall_io says the IO exit is the ucall port. */
static inline enum tdxhp_tdx_exit_action tdxhp_classify_exit(uint32_t exit_reason, bool ucall_io,
							      uint64_t hypercall_nr)
{
	switch (exit_reason) {
	case 2: /* KVM_EXIT_IO */
		return ucall_io ? TDXHP_EXIT_GUEST_DONE : TDXHP_EXIT_UNEXPECTED;
	case 6: /* KVM_EXIT_MMIO: ucall on TDX goes through MMIO-like TDVMCALLs too */
		return ucall_io ? TDXHP_EXIT_GUEST_DONE : TDXHP_EXIT_UNEXPECTED;
	case 3: /* KVM_EXIT_HYPERCALL */
		return hypercall_nr == 12 /* KVM_HC_MAP_GPA_RANGE */ ? TDXHP_EXIT_CONVERT
								     : TDXHP_EXIT_UNEXPECTED;
	case 39: /* KVM_EXIT_MEMORY_FAULT */
		return TDXHP_EXIT_CONVERT;
	case 8:  /* KVM_EXIT_SHUTDOWN */
	case 9:  /* KVM_EXIT_FAIL_ENTRY */
	case 17: /* KVM_EXIT_INTERNAL_ERROR */
		return TDXHP_EXIT_VM_DEAD;
	default:
		return TDXHP_EXIT_UNEXPECTED;
	}
}

#ifdef __cplusplus
}
#endif
#endif
