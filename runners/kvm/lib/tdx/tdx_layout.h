/* The TD's boot memory as userspace lays it out before KVM_TDX_FINALIZE_VM: the boot
 * parameters block the reset-vector trampoline (tdx_boot.S) reads, the GDT/IDT and page
 * tables it loads, and the attribute record the host keeps to pick a private or shared
 * alias. Pure host-side code (no libkvm), so it is unit-tested without TDX hardware.
 * Shared with tdx_boot.S: keep the __ASSEMBLER__ part to plain #defines. */
#ifndef TDXHP_KVM_TDX_LAYOUT_H
#define TDXHP_KVM_TDX_LAYOUT_H

/* A TD vCPU starts at GPA 0xFFFFFFF0 in 32-bit protected mode, paging off: the last page
 * below 4G holds the trampoline, the page before it the boot parameters. Both are private
 * build pages (KVM_TDX_INIT_MEM_REGION, measured). */
#define TDX_BOOT_CODE_GPA 0xFFFFF000
#define TDX_BOOT_PARAMS_GPA 0xFFFFE000
#define TDX_RESET_VECTOR_GPA 0xFFFFFFF0
/* The command mailbox: a shared page (host and guest both read it) below the boot pages. */
#define TDX_MAILBOX_GPA 0xFFFFC000

/* struct tdx_boot_params offsets (the trampoline reads them with paging off). */
#define TDX_BP_CR0 0
#define TDX_BP_CR3 4
#define TDX_BP_CR4 8
#define TDX_BP_GDTR 12
#define TDX_BP_IDTR 18
#define TDX_BP_PER_VCPU 24
#define TDX_BP_VCPU_ESP 0
#define TDX_BP_VCPU_LJMP 4 /* m16:32 far pointer: eip then cs */
#define TDX_BP_VCPU_SIZE 10
#define TDX_BP_MAX_VCPUS 8
#define TDX_BP_GDT 0x800 /* GDT inside the parameters page */

/* Selectors: the 64-bit code selector equals libkvm's KERNEL_CS, which its IDT gates use. */
#define TDX_CODE64_SEL 0x08
#define TDX_DATA_SEL 0x10
#define TDX_GDT_ENTRIES 3

/* Fixed bits the trampoline loads. TDX fixes CR0.PE/NE and CR4.MCE to 1, CR4.VMXE/SMXE to 0;
 * EFER.LME is already 1 at TD vCPU reset, so CR0.PG activates long mode directly. */
#define TDX_CR0_PE (1u << 0)
#define TDX_CR0_NE (1u << 5)
#define TDX_CR0_PG (1u << 31)
#define TDX_CR4_PAE (1u << 5)
#define TDX_CR4_MCE (1u << 6)
#define TDX_CR4_OSFXSR (1u << 9)
#define TDX_CR4_OSXMMEXCPT (1u << 10)
#define TDX_CR4_VMXE (1u << 13)
#define TDX_CR4_SMXE (1u << 14)

#ifndef __ASSEMBLER__
#include <assert.h> /* static_assert in C11 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

struct __attribute__((packed)) tdx_dtr32 {
	uint16_t limit;
	uint32_t base;
};

struct __attribute__((packed)) tdx_boot_vcpu {
	uint32_t esp;        /* initial stack (below 4G: loaded in 32-bit mode) */
	uint32_t eip;        /* 64-bit entry (tdx_entry64), below 4G */
	uint16_t code64_sel; /* the far jump's selector: switches CS to the 64-bit segment */
};

struct __attribute__((packed)) tdx_boot_params {
	uint32_t cr0, cr3, cr4;
	struct tdx_dtr32 gdtr, idtr;
	struct tdx_boot_vcpu vcpu[TDX_BP_MAX_VCPUS];
};

static_assert(offsetof(struct tdx_boot_params, cr3) == TDX_BP_CR3, "cr3 offset");
static_assert(offsetof(struct tdx_boot_params, cr4) == TDX_BP_CR4, "cr4 offset");
static_assert(offsetof(struct tdx_boot_params, gdtr) == TDX_BP_GDTR, "gdtr offset");
static_assert(offsetof(struct tdx_boot_params, idtr) == TDX_BP_IDTR, "idtr offset");
static_assert(offsetof(struct tdx_boot_params, vcpu) == TDX_BP_PER_VCPU, "per-vCPU offset");
static_assert(sizeof(struct tdx_boot_vcpu) == TDX_BP_VCPU_SIZE, "per-vCPU size");
static_assert(offsetof(struct tdx_boot_vcpu, eip) == TDX_BP_VCPU_LJMP, "far pointer offset");
static_assert(sizeof(struct tdx_boot_params) <= TDX_BP_GDT, "parameters overlap the GDT");

/* Fills the parameters page (4096 bytes at TDX_BOOT_PARAMS_GPA): control registers, the GDT
 * at TDX_BP_GDT and its descriptor, the IDT descriptor, vCPU 0's stack and entry.
 * -EINVAL when an address the 32-bit trampoline must load does not fit in 32 bits. */
int tdx_boot_params_fill(void *page, uint64_t cr3, uint64_t idt_base, uint16_t idt_limit,
			 uint64_t stack_top, uint64_t entry64);

/* The GDT descriptors: null, 64-bit ring-0 code (L=1), flat ring-0 data. */
void tdx_gdt_fill(uint64_t gdt[TDX_GDT_ENTRIES]);

struct tdx_segment {
	uint32_t base, limit; /* limit in bytes - 1, granularity applied */
	uint8_t type, dpl;
	bool s, present, long_mode, db, granular;
};
struct tdx_segment tdx_gdt_decode(uint64_t desc);

/* A 64-bit interrupt gate (16 bytes) to handler through selector sel. */
void tdx_idt_gate(void *slot, uint64_t handler, uint16_t sel);
/* Returns the handler address and sets *sel, *type and *present. */
uint64_t tdx_idt_gate_decode(const void *slot, uint16_t *sel, uint8_t *type, bool *present);

/* x86-64 4-level page tables in guest memory reached through callbacks, so the builder is
 * the same for the TD's memslot 0 and for a test's buffer. Levels: 0 = 4K, 1 = 2M, 2 = 1G. */
#define TDX_PTE_P (1ULL << 0)
#define TDX_PTE_W (1ULL << 1)
#define TDX_PTE_PS (1ULL << 7)
#define TDX_PTE_ADDR_MASK 0x000FFFFFFFFFF000ULL /* bits 12..51: holds the shared bit 47/51 */

struct tdx_pt {
	uint64_t root;                              /* gpa of the PML4 (CR3) */
	uint64_t (*alloc)(void *ctx);               /* a zeroed 4K page's gpa, 0 when out */
	void *(*hva)(void *ctx, uint64_t gpa);      /* where that gpa is in host memory */
	void *ctx;
};

/* Maps va -> pa with one leaf at level. pa may carry the TD's shared bit (a shared alias).
 * 0; -EINVAL for misaligned va/pa or a non-canonical va; -EEXIST when a different leaf or a
 * table already covers va at that level; -ENOMEM when alloc fails. */
int tdx_pt_map(struct tdx_pt *pt, uint64_t va, uint64_t pa, unsigned level, bool writable);
/* Maps [va, va + len) to [pa, ...) with the largest leaves (up to max_level) alignment allows. */
int tdx_pt_map_range(struct tdx_pt *pt, uint64_t va, uint64_t pa, uint64_t len, unsigned max_level,
		     bool writable);
/* Translates va as the CPU would: true with the physical address and leaf level. */
bool tdx_pt_walk(const struct tdx_pt *pt, uint64_t va, uint64_t *pa, unsigned *level, bool *writable);

/* Decodes what the trampoline will meet once CR0.PG is set: CR3 is pt's root, the boot code
 * and parameters pages are mapped 1:1, the GDT holds a 64-bit code segment at the far jump's
 * selector, and vCPU 0's entry, stack and IDT are mapped (stack writable). 0, or -EINVAL with
 * the first broken expectation in why. */
int tdx_boot_check(const struct tdx_pt *pt, const void *params_page, char *why, size_t why_len);

/* Which scenario gfns are private, as runs [start, end) (never one entry per page): the
 * guest reaches a private gfn through its private alias and a shared one through the alias
 * whose GPA has the shared bit. */
struct tdx_attr_run {
	uint64_t start, end;
	bool private_;
};
struct tdx_attr_map {
	struct tdx_attr_run *runs; /* sorted, disjoint, neighbours of equal value merged */
	size_t n;
};
void tdx_attr_assign(struct tdx_attr_map *m, uint64_t start, uint64_t end, bool private_);
/* true when gfn is recorded private; false when shared or never assigned. */
bool tdx_attr_is_private(const struct tdx_attr_map *m, uint64_t gfn);
void tdx_attr_free(struct tdx_attr_map *m);

#ifdef __cplusplus
}
#endif
#endif /* __ASSEMBLER__ */
#endif
