/* The command mailbox of the tdx flavour and the guest side that serves it. A TD's private
 * memory is invisible to the host after FINALIZE, so the mailbox is a shared page
 * (TDX_MAILBOX_GPA, mapped in the guest through its shared-bit alias) and the guest reports
 * "done" with a TDVMCALL port write instead of libkvm's ucall (which needs KVM_GET_REGS,
 * refused for a TD's protected vCPU state). */
#ifndef TDXHP_KVM_TDX_GUEST_H
#define TDXHP_KVM_TDX_GUEST_H

#include <stdint.h>

/* Port of the guest's "command finished" TDVMCALL<Instruction.IO> write; KVM forwards it as
 * KVM_EXIT_IO. Not libkvm's UCALL_PIO_PORT, so libkvm never tries to decode it. */
#define TDX_DONE_PORT 0x7e5
/* Value written to TDX_DONE_PORT when the guest stopped on a fault it cannot report. */
#define TDX_DONE_OK 0x600d
#define TDX_DONE_STUCK 0xdead
/* Guest virtual base of the shared alias: a test gfn's shared view is at
 * TDX_SHARED_VA_BASE + gpa, mapped to gpa | shared bit (the private one at
 * GUEST_TEST_VA_BASE + gpa, guest.h). */
#define TDX_SHARED_VA_BASE (1ULL << 46)
/* The #VE exception vector: a guest touch of a PENDING page. */
#define TDX_VE_VECTOR 20

enum tdx_guest_cmd {
	TDX_CMD_NONE = 0,
	TDX_CMD_READ,
	TDX_CMD_WRITE,
	TDX_CMD_ACCEPT,
	TDX_CMD_MAP_GPA,
};

struct tdx_mailbox {
	uint64_t cmd;
	uint64_t gva;        /* READ/WRITE: private or shared alias of the gfn */
	uint64_t value;      /* WRITE: what; READ: result */
	uint64_t gpa;        /* ACCEPT/MAP_GPA: private GPA (shared bit clear) */
	uint64_t level;      /* ACCEPT: 0=4K 1=2M 2=1G */
	uint64_t npages;     /* MAP_GPA */
	uint64_t to_private; /* MAP_GPA */
	uint64_t shared_bit; /* the TD's shared GPA bit (GPAW 48 -> 1<<47, 52 -> 1<<51) */
	uint64_t status;     /* ACCEPT: TDX status; MAP_GPA: TDVMCALL status */
	uint64_t faulted;    /* READ/WRITE: vector that stopped the access (20 = #VE), 0 none */
	uint64_t ve_count;   /* #VEs taken, cumulative */
	uint64_t ve_reason;  /* last #VE: exit reason from TDG.VP.VEINFO.GET (48 = EPT violation) */
	uint64_t ve_gpa;     /* last #VE: guest-physical address */
	uint64_t stuck_vector; /* a fault outside any guarded access: the guest halted */
	uint64_t stuck_rip;
	uint64_t seq;        /* bumped per finished command */
};

#ifndef __ASSEMBLER__
#ifdef __cplusplus
extern "C" {
#endif
/* Guest symbols the host reaches through the ELF image before FINALIZE. */
extern struct tdx_mailbox *tdx_guest_mailbox; /* gva of the shared mailbox */
void tdx_guest_main(void);                     /* called by tdx_entry64 */
struct ex_regs;
void tdx_guest_ve_handler(struct ex_regs *regs);
void tdx_guest_fault_handler(struct ex_regs *regs);
/* tdx_boot.S */
extern const char tdx_boot_start[], tdx_reset_vector[], tdx_boot_end[];
void tdx_entry64(void);
#ifdef __cplusplus
}
#endif
#endif

#endif
