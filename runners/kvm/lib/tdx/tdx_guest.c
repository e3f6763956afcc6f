/* Guest side of the tdx flavour: the command loop a TD vCPU runs after tdx_entry64, the #VE
 * handler, and the TDCALLs behind each command. Runs inside the TD: built like guest.c
 * (no sanitizers, no stack protector), and touches only the shared mailbox and test memory. */
#include "tdx_guest.h"

#include <stdbool.h>

#include "processor.h"
#include "tdx_abi.h"

/* lib/tdx.c */
uint64_t tdx_guest_accept(uint64_t gpa, unsigned level);
uint64_t tdx_guest_ve_reason(uint64_t *gpa);

struct tdx_mailbox *tdx_guest_mailbox;

#define EXIT_REASON_IO_INSTRUCTION 30

/* TDVMCALL<Instruction.IO>, a 4-byte OUT to port: KVM exits to userspace with KVM_EXIT_IO. */
static void tdvmcall_port_write(uint16_t port, uint32_t value)
{
	register uint64_t r10 asm("r10") = 0;
	register uint64_t r11 asm("r11") = EXIT_REASON_IO_INSTRUCTION;
	register uint64_t r12 asm("r12") = 4;
	register uint64_t r13 asm("r13") = 1; /* write */
	register uint64_t r14 asm("r14") = port;
	register uint64_t r15 asm("r15") = value;
	uint64_t rax = TDXHP_TDG_VP_VMCALL;
	uint64_t rcx = 0xFC00; /* r10..r15 passed to the VMM */

	asm volatile(".byte 0x66, 0x0f, 0x01, 0xcc"
		     : "+a"(rax), "+c"(rcx), "+r"(r10), "+r"(r11), "+r"(r12), "+r"(r13), "+r"(r14),
		       "+r"(r15)
		     : : "memory");
}

/* TDVMCALL<MapGPA>. KVM may stop early (pending interrupt) with TDVMCALL_STATUS_RETRY and the
 * GPA to resume at in r11; the guest loops like the kernel's tdx_map_gpa(). Returns the
 * final TDVMCALL status (0 success). */
static uint64_t guest_map_gpa(uint64_t gpa, uint64_t size, bool to_private, uint64_t shared_bit)
{
	uint64_t end = gpa + size;
	int rounds = 0;

	while (gpa < end) {
		register uint64_t r10 asm("r10") = 0;
		register uint64_t r11 asm("r11") = TDXHP_TDVMCALL_MAP_GPA;
		register uint64_t r12 asm("r12") = to_private ? gpa : gpa | shared_bit;
		register uint64_t r13 asm("r13") = end - gpa;
		uint64_t rax = TDXHP_TDG_VP_VMCALL;
		uint64_t rcx = 0x3C00; /* r10..r13 */

		asm volatile(".byte 0x66, 0x0f, 0x01, 0xcc"
			     : "+a"(rax), "+c"(rcx), "+r"(r10), "+r"(r11), "+r"(r12), "+r"(r13)
			     : : "memory");
		if (rax)
			return rax;
		if (r10 != TDXHP_TDVMCALL_RETRY)
			return r10;
		/* r11 = next GPA, with the shared bit as the guest passed it. */
		if ((r11 & ~shared_bit) <= gpa || ++rounds > 1 << 20)
			return r10; /* no progress: report RETRY rather than spin */
		gpa = r11 & ~shared_bit;
	}
	return 0;
}

/* A fault on a guarded access resumes after it with the vector in r9 (libkvm's
 * KVM_ASM_SAFE protocol); any other fault stops the guest, reported through the mailbox. */
static void resume_or_stop(struct ex_regs *regs)
{
	volatile struct tdx_mailbox *m = tdx_guest_mailbox;

	if (regs->r9 == KVM_EXCEPTION_MAGIC && regs->rip == regs->r10) {
		regs->rip = regs->r11;
		regs->r9 = regs->vector;
		regs->r10 = regs->error_code;
		return;
	}
	m->stuck_vector = regs->vector;
	m->stuck_rip = regs->rip;
	for (;;)
		tdvmcall_port_write(TDX_DONE_PORT, TDX_DONE_STUCK);
}

/* #VE: TDG.VP.VEINFO.GET must be read before another #VE can be delivered (else #DF). A #VE
 * on a guarded access is an access to a PENDING page (SEMANTICS.md Access: `ve`). */
void tdx_guest_ve_handler(struct ex_regs *regs)
{
	volatile struct tdx_mailbox *m = tdx_guest_mailbox;
	uint64_t gpa = 0;

	m->ve_reason = tdx_guest_ve_reason(&gpa);
	m->ve_gpa = gpa;
	m->ve_count++;
	resume_or_stop(regs);
}

/* Every other exception: libkvm's default would report through a PIO ucall, which a TD
 * cannot issue (port I/O is itself a #VE there). */
void tdx_guest_fault_handler(struct ex_regs *regs)
{
	resume_or_stop(regs);
}

static uint8_t guarded_read(uint64_t gva, uint64_t *value)
{
	uint64_t ec, v = 0;
	uint8_t vector;

	asm volatile(KVM_ASM_SAFE("movq (%[p]), %[v]")
		     : KVM_ASM_SAFE_OUTPUTS(vector, ec), [v] "+r"(v)
		     : [p] "r"(gva)
		     : KVM_ASM_SAFE_CLOBBERS, "memory");
	(void)ec;
	*value = v;
	return vector;
}

static uint8_t guarded_write(uint64_t gva, uint64_t value)
{
	uint64_t ec;
	uint8_t vector;

	asm volatile(KVM_ASM_SAFE("movq %[v], (%[p])")
		     : KVM_ASM_SAFE_OUTPUTS(vector, ec)
		     : [p] "r"(gva), [v] "r"(value)
		     : KVM_ASM_SAFE_CLOBBERS, "memory");
	(void)ec;
	return vector;
}

void tdx_guest_main(void)
{
	volatile struct tdx_mailbox *m = tdx_guest_mailbox;

	for (;;) {
		uint64_t v = 0;

		/* The host fills the mailbox while the vCPU sits in the done exit below. */
		switch (m->cmd) {
		case TDX_CMD_READ:
			m->faulted = guarded_read(m->gva, &v);
			m->value = v;
			break;
		case TDX_CMD_WRITE:
			m->faulted = guarded_write(m->gva, m->value);
			break;
		case TDX_CMD_ACCEPT:
			m->status = tdx_guest_accept(m->gpa, (unsigned)m->level);
			break;
		case TDX_CMD_MAP_GPA:
			m->status = guest_map_gpa(m->gpa, m->npages << 12, m->to_private, m->shared_bit);
			break;
		default:
			break; /* TDX_CMD_NONE: the first entry, before any command */
		}
		m->seq++;
		tdvmcall_port_write(TDX_DONE_PORT, TDX_DONE_OK);
	}
}
