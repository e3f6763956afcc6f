/* TD vCPU entry. A TD vCPU starts at GPA 0xFFFFFFF0 in 32-bit protected mode with paging off,
 * EFER.LME already set and ESI = vCPU index (TDX module initial state). tdx_td.c copies
 * [tdx_boot_start, tdx_boot_end) so that tdx_reset_vector lands on 0xFFFFFFF0; everything
 * here is position independent except the boot parameters' fixed GPA. */
#include "tdx_layout.h"

	.text
	.code32
	.globl tdx_boot_start
tdx_boot_start:
	cli
	movl $TDX_BOOT_PARAMS_GPA, %ebx
	/* This vCPU's parameters: per_vcpu[esi]. */
	movl $TDX_BP_VCPU_SIZE, %eax
	mull %esi
	leal TDX_BP_PER_VCPU(%ebx,%eax), %eax
	movl TDX_BP_VCPU_ESP(%eax), %esp
	lgdt TDX_BP_GDTR(%ebx)
	lidt TDX_BP_IDTR(%ebx)
	/* CR4.PAE and CR3 before CR0.PG: with LME set, PG turns on 4-level paging (long mode). */
	movl TDX_BP_CR4(%ebx), %edi
	movl %edi, %cr4
	movl TDX_BP_CR3(%ebx), %edi
	movl %edi, %cr3
	movl TDX_BP_CR0(%ebx), %edi
	movl %edi, %cr0
	/* The next fetches go through the page tables, which map this page and the parameters
	 * 1:1. The far jump loads the 64-bit code selector: from here on it is 64-bit mode. */
	ljmp *TDX_BP_VCPU_LJMP(%eax)

	/* Exactly 16 bytes, the last of the page: the reset vector. */
	.globl tdx_reset_vector
tdx_reset_vector:
	.byte 0xe9                        /* jmp rel32, 5 bytes */
	.long tdx_boot_start - (. + 4)
	.fill 11, 1, 0xcc
	.globl tdx_boot_end
tdx_boot_end:

	/* 64-bit entry, part of the ELF image (mapped at its link address, below 4G). */
	.code64
	.globl tdx_entry64
tdx_entry64:
	movl $TDX_DATA_SEL, %eax
	movl %eax, %ds
	movl %eax, %es
	movl %eax, %ss
	xorl %eax, %eax
	movl %eax, %fs
	movl %eax, %gs
	/* Upper halves of 64-bit registers are undefined after the mode switch. */
	movl %esp, %esp
	xorl %ebp, %ebp
	call tdx_guest_main
1:	hlt
	jmp 1b

	.section .note.GNU-stack,"",%progbits
