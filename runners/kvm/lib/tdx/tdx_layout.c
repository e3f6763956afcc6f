/* Builders and decoders for the TD's boot memory (tdx_layout.h). */
#include "tdx_layout.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* ---------------------------------------------------------------- GDT / IDT */

void tdx_gdt_fill(uint64_t gdt[TDX_GDT_ENTRIES])
{
	gdt[0] = 0;
	/* P=1 DPL=0 S=1 type=0xB (execute/read, accessed), L=1 D=0 G=1, limit 0xFFFFF. */
	gdt[TDX_CODE64_SEL >> 3] = 0x00AF9B000000FFFFULL;
	/* P=1 DPL=0 S=1 type=0x3 (read/write, accessed), D/B=1 G=1, limit 0xFFFFF. */
	gdt[TDX_DATA_SEL >> 3] = 0x00CF93000000FFFFULL;
}

struct tdx_segment tdx_gdt_decode(uint64_t d)
{
	struct tdx_segment s;
	uint8_t access = (uint8_t)(d >> 40), flags = (uint8_t)((d >> 52) & 0xF);

	s.limit = (uint32_t)((d & 0xFFFF) | (((d >> 48) & 0xF) << 16));
	s.base = (uint32_t)(((d >> 16) & 0xFFFFFF) | (((d >> 56) & 0xFF) << 24));
	s.type = access & 0xF;
	s.s = access & 0x10;
	s.dpl = (access >> 5) & 3;
	s.present = access & 0x80;
	s.long_mode = flags & 0x2;
	s.db = flags & 0x4;
	s.granular = flags & 0x8;
	if (s.granular)
		s.limit = (s.limit << 12) | 0xFFF;
	return s;
}

void tdx_idt_gate(void *slot, uint64_t handler, uint16_t sel)
{
	uint8_t *g = slot;
	uint16_t lo = (uint16_t)handler, mid = (uint16_t)(handler >> 16);
	uint32_t hi = (uint32_t)(handler >> 32), zero = 0;

	memcpy(g, &lo, 2);
	memcpy(g + 2, &sel, 2);
	g[4] = 0;    /* IST 0: no stack switch (ring 0 only) */
	g[5] = 0x8E; /* P=1 DPL=0 type=0xE (64-bit interrupt gate: IF cleared on entry) */
	memcpy(g + 6, &mid, 2);
	memcpy(g + 8, &hi, 4);
	memcpy(g + 12, &zero, 4);
}

uint64_t tdx_idt_gate_decode(const void *slot, uint16_t *sel, uint8_t *type, bool *present)
{
	const uint8_t *g = slot;
	uint16_t lo, mid;
	uint32_t hi;

	memcpy(&lo, g, 2);
	memcpy(sel, g + 2, 2);
	*type = g[5] & 0xF;
	*present = g[5] & 0x80;
	memcpy(&mid, g + 6, 2);
	memcpy(&hi, g + 8, 4);
	return lo | ((uint64_t)mid << 16) | ((uint64_t)hi << 32);
}

/* ---------------------------------------------------------------- boot parameters */

int tdx_boot_params_fill(void *page, uint64_t cr3, uint64_t idt_base, uint16_t idt_limit,
			 uint64_t stack_top, uint64_t entry64)
{
	struct tdx_boot_params *bp = page;
	uint64_t *gdt = (uint64_t *)((char *)page + TDX_BP_GDT);

	/* The trampoline runs 32-bit code: everything it loads must sit below 4G, and the
	 * stack must keep the SysV alignment the 64-bit entry expects (16 bytes). */
	if (cr3 >> 32 || cr3 & 0xFFF || idt_base >> 32 || stack_top >> 32 || entry64 >> 32 ||
	    stack_top & 0xF || !stack_top || !entry64)
		return -EINVAL;
	memset(page, 0, 4096);
	tdx_gdt_fill(gdt);
	bp->cr0 = TDX_CR0_PE | TDX_CR0_NE | TDX_CR0_PG;
	bp->cr3 = (uint32_t)cr3;
	bp->cr4 = TDX_CR4_PAE | TDX_CR4_MCE | TDX_CR4_OSFXSR | TDX_CR4_OSXMMEXCPT;
	bp->gdtr.limit = TDX_GDT_ENTRIES * 8 - 1;
	bp->gdtr.base = TDX_BOOT_PARAMS_GPA + TDX_BP_GDT;
	bp->idtr.limit = idt_limit;
	bp->idtr.base = (uint32_t)idt_base;
	bp->vcpu[0].esp = (uint32_t)stack_top;
	bp->vcpu[0].eip = (uint32_t)entry64;
	bp->vcpu[0].code64_sel = TDX_CODE64_SEL;
	return 0;
}

/* ---------------------------------------------------------------- page tables */

static uint64_t level_bytes(unsigned level)
{
	return 4096ULL << (9 * level);
}

static uint64_t *table_at(const struct tdx_pt *pt, uint64_t gpa)
{
	return pt->hva(pt->ctx, gpa & TDX_PTE_ADDR_MASK);
}

static unsigned index_at(uint64_t va, unsigned table_level)
{
	return (unsigned)((va >> (12 + 9 * table_level)) & 511);
}

int tdx_pt_map(struct tdx_pt *pt, uint64_t va, uint64_t pa, unsigned level, bool writable)
{
	uint64_t size = level_bytes(level), table = pt->root, leaf;
	unsigned t;

	if (level > 2 || va >> 47 || (va | pa) & (size - 1) || pa & ~TDX_PTE_ADDR_MASK)
		return -EINVAL;
	for (t = 3; t > level; t--) {
		uint64_t *e = &table_at(pt, table)[index_at(va, t)];

		if (!(*e & TDX_PTE_P)) {
			uint64_t page = pt->alloc(pt->ctx);

			if (!page)
				return -ENOMEM;
			*e = page | TDX_PTE_P | TDX_PTE_W;
		} else if (t <= 2 && (*e & TDX_PTE_PS)) {
			return -EEXIST; /* a larger leaf already maps va */
		}
		table = *e & TDX_PTE_ADDR_MASK;
	}
	leaf = pa | TDX_PTE_P | (writable ? TDX_PTE_W : 0) | (level ? TDX_PTE_PS : 0);
	{
		uint64_t *e = &table_at(pt, table)[index_at(va, level)];

		if (*e & TDX_PTE_P)
			return *e == leaf ? 0 : -EEXIST;
		*e = leaf;
	}
	return 0;
}

int tdx_pt_map_range(struct tdx_pt *pt, uint64_t va, uint64_t pa, uint64_t len, unsigned max_level,
		     bool writable)
{
	while (len) {
		unsigned level = max_level > 2 ? 2 : max_level;
		int r;

		while (level && (((va | pa) & (level_bytes(level) - 1)) || len < level_bytes(level)))
			level--;
		if ((va | pa) & 0xFFF || len < 4096)
			return -EINVAL;
		r = tdx_pt_map(pt, va, pa, level, writable);
		if (r)
			return r;
		va += level_bytes(level);
		pa += level_bytes(level);
		len -= level_bytes(level);
	}
	return 0;
}

bool tdx_pt_walk(const struct tdx_pt *pt, uint64_t va, uint64_t *pa, unsigned *level, bool *writable)
{
	uint64_t table = pt->root;
	bool w = true;
	int t;

	if (va >> 47)
		return false;
	for (t = 3; t >= 0; t--) {
		uint64_t e = table_at(pt, table)[index_at(va, (unsigned)t)];

		if (!(e & TDX_PTE_P))
			return false;
		w = w && (e & TDX_PTE_W);
		if (t == 0 || (t <= 2 && (e & TDX_PTE_PS))) {
			uint64_t size = level_bytes((unsigned)t);

			*pa = (e & TDX_PTE_ADDR_MASK & ~(size - 1)) | (va & (size - 1));
			*level = (unsigned)t;
			if (writable)
				*writable = w;
			return true;
		}
		table = e & TDX_PTE_ADDR_MASK;
	}
	return false;
}

#include <stdio.h>

static bool mapped_as(const struct tdx_pt *pt, uint64_t va, uint64_t want_pa, bool need_write)
{
	uint64_t pa;
	unsigned level;
	bool w;

	return tdx_pt_walk(pt, va, &pa, &level, &w) && (want_pa == UINT64_MAX || pa == want_pa) &&
	       (!need_write || w);
}

int tdx_boot_check(const struct tdx_pt *pt, const void *params_page, char *why, size_t why_len)
{
	const struct tdx_boot_params *bp = params_page;
	const uint64_t *gdt = (const uint64_t *)((const char *)params_page + TDX_BP_GDT);
	struct tdx_segment cs;
	const char *bad = NULL;

	if (bp->cr3 != pt->root)
		bad = "CR3 is not the page-table root";
	else if (!(bp->cr0 & TDX_CR0_PG) || !(bp->cr0 & TDX_CR0_PE) || !(bp->cr0 & TDX_CR0_NE))
		bad = "CR0 lacks PE/NE/PG";
	else if (!(bp->cr4 & TDX_CR4_PAE) || !(bp->cr4 & TDX_CR4_MCE) ||
		 (bp->cr4 & (TDX_CR4_VMXE | TDX_CR4_SMXE)))
		bad = "CR4 breaks TDX's fixed bits or lacks PAE";
	else if (!mapped_as(pt, TDX_BOOT_CODE_GPA, TDX_BOOT_CODE_GPA, false) ||
		 !mapped_as(pt, TDX_BOOT_PARAMS_GPA, TDX_BOOT_PARAMS_GPA, false))
		bad = "boot code or parameters page not mapped 1:1";
	else if (bp->gdtr.base != TDX_BOOT_PARAMS_GPA + TDX_BP_GDT ||
		 bp->gdtr.limit < bp->vcpu[0].code64_sel + 7)
		bad = "GDTR does not cover the 64-bit code selector";
	else if (cs = tdx_gdt_decode(gdt[bp->vcpu[0].code64_sel >> 3]),
		 !cs.present || !cs.s || !(cs.type & 0x8) || !cs.long_mode || cs.db || cs.dpl)
		bad = "far-jump selector is not a present ring-0 64-bit code segment";
	else if (!mapped_as(pt, bp->vcpu[0].eip, UINT64_MAX, false))
		bad = "64-bit entry not mapped";
	else if (!mapped_as(pt, bp->vcpu[0].esp - 8, UINT64_MAX, true))
		bad = "stack top not mapped writable";
	else if (!mapped_as(pt, bp->idtr.base, UINT64_MAX, false) ||
		 !mapped_as(pt, bp->idtr.base + bp->idtr.limit, UINT64_MAX, false))
		bad = "IDT not mapped";
	if (bad) {
		snprintf(why, why_len, "TD boot layout: %s", bad);
		return -EINVAL;
	}
	return 0;
}

/* ---------------------------------------------------------------- attribute runs */

static void push_run(struct tdx_attr_run *out, size_t *n, uint64_t start, uint64_t end, bool p)
{
	if (start >= end)
		return;
	if (*n && out[*n - 1].end == start && out[*n - 1].private_ == p) {
		out[*n - 1].end = end;
		return;
	}
	out[*n].start = start;
	out[*n].end = end;
	out[*n].private_ = p;
	(*n)++;
}

void tdx_attr_assign(struct tdx_attr_map *m, uint64_t start, uint64_t end, bool private_)
{
	/* One assignment cuts at most one run in two and adds one: n + 2 runs at most. */
	struct tdx_attr_run *out;
	size_t i, n = 0;
	bool placed = false;

	if (start >= end)
		return;
	out = malloc((m->n + 2) * sizeof(*out));
	for (i = 0; i < m->n; i++) {
		const struct tdx_attr_run *r = &m->runs[i];

		if (r->end <= start || r->start >= end) {
			if (!placed && r->start >= end) {
				push_run(out, &n, start, end, private_);
				placed = true;
			}
			push_run(out, &n, r->start, r->end, r->private_);
			continue;
		}
		push_run(out, &n, r->start, start < r->start ? r->start : start, r->private_);
		if (!placed) {
			push_run(out, &n, start, end, private_);
			placed = true;
		}
		push_run(out, &n, end > r->end ? r->end : end, r->end, r->private_);
	}
	if (!placed)
		push_run(out, &n, start, end, private_);
	free(m->runs);
	m->runs = out;
	m->n = n;
}

bool tdx_attr_is_private(const struct tdx_attr_map *m, uint64_t gfn)
{
	size_t lo = 0, hi = m->n;

	while (lo < hi) {
		size_t mid = (lo + hi) / 2;

		if (m->runs[mid].end <= gfn)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < m->n && m->runs[lo].start <= gfn && m->runs[lo].private_;
}

void tdx_attr_free(struct tdx_attr_map *m)
{
	free(m->runs);
	m->runs = NULL;
	m->n = 0;
}
