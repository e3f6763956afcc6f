/* Host side of the tdx flavour: builds a TD on libkvm-selftests 6.12 (which knows nothing of
 * TDX) and runs its command loop. Layout of the TD:
 *   memslot 0 (gmem, private, measured): the running ELF at its link addresses, page tables,
 *     IDT + exception handler table, vCPU stack;
 *   memslot 1 (gmem, private, measured): boot parameters at 0xFFFFE000, trampoline at
 *     0xFFFFF000 with the reset vector on 0xFFFFFFF0;
 *   memslot 2 (gmem, shared): the command mailbox at 0xFFFFC000;
 *   memslots 10.. (vm.c): the scenario's test slots from 4 GiB.
 * Every guest mapping is made before FINALIZE: afterwards the page tables are private and
 * out of the host's reach. A test gfn has two aliases: GUEST_TEST_VA_BASE + gpa (private) and
 * TDX_SHARED_VA_BASE + gpa, mapped to gpa | shared bit (shared). */
#define _GNU_SOURCE
#include "tdx_td.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "attributes.h"
#include "guest.h"
#include "kvm_util.h"
#include "processor.h"
#include "sparsebit.h"
#include "tdx_abi.h"
#include "tdx_cpuid.h"
#include "tdx_guest.h"
#include "tdx_layout.h"
#include "uapi_compat.h"

#define PAGE_4K 4096ULL
/* Test GPAs stay below 2^45 so both aliases fit under the 47-bit canonical limit. */
#define TDX_ALIAS_GPA_LIMIT (1ULL << 45)
#define TDX_STACK_PAGES 16
#define BOOT_SLOT 1
#define MAILBOX_SLOT 2
#define EXIT_REASON_EPT_VIOLATION 48
#define TD_ATTR_SEPT_VE_DISABLE (1ULL << 28)

/* libkvm x86: the IDT stubs (handlers.S) and the guest's handler-table pointer. */
extern void *idt_handlers;
extern vm_vaddr_t exception_handlers;

struct tdx_td {
	struct kvm_vm *vm;
	struct kvm_vcpu *vcpu;
	struct tdx_td_host host;           /* the owner's gfn space and conversions (vm.c) */
	enum tkvm_attr_owner attr_owner;   /* where KVM keeps private/shared */
	enum tdx_td_state state;
	unsigned gpaw;
	uint64_t shared_bit;
	struct tdx_mailbox *mailbox; /* host view of the shared mailbox page */
	struct tdx_attr_map attrs;   /* scenario gfns' attributes as last set */
	int map_gpa_err;             /* first conversion error during a MapGPA command */
	unsigned map_gpa_exits;
	unsigned fault_conversions;  /* memory-fault exits answered by converting */
};

#define WHY(...) (snprintf(why, why_len, __VA_ARGS__), (void)0)

const char *tdx_td_state_name(enum tdx_td_state s)
{
	static const char *names[] = {
		[TDX_TD_CREATED] = "created (KVM_CREATE_VM done, no KVM_TDX_INIT_VM)",
		[TDX_TD_INITIALIZED] = "initialized (KVM_TDX_INIT_VM done, vCPU not initialized)",
		[TDX_TD_VCPU_READY] = "vCPU initialized (KVM_TDX_INIT_VCPU done, not finalized)",
		[TDX_TD_FINALIZED] = "finalized (KVM_TDX_FINALIZE_VM done, guest not at its command loop)",
		[TDX_TD_RUNNING] = "running (guest at its command loop)",
	};
	return s <= TDX_TD_RUNNING ? names[s] : "unknown";
}

/* A setup failure on a host that claims TDX: the ioctl, its errno and the TD state, so the
 * run reports a FAIL a reader can act on (issue 14 item 4). Returns err. */
static int td_fail(const struct tdx_td *td, char *why, size_t why_len, int err, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(why, why_len, fmt, ap);
	va_end(ap);
	if (n >= 0 && (size_t)n < why_len)
		snprintf(why + n, why_len - n, ": %s (errno %d); TD state: %s", strerror(-err), -err,
			 tdx_td_state_name(td->state));
	return err;
}

struct kvm_vm *tdx_td_vm(struct tdx_td *td)
{
	return td->vm;
}

struct kvm_vcpu *tdx_td_vcpu(struct tdx_td *td)
{
	return td->vcpu;
}

uint64_t tdx_td_gpa_limit(const struct tdx_td *td)
{
	return td->shared_bit < TDX_ALIAS_GPA_LIMIT ? td->shared_bit : TDX_ALIAS_GPA_LIMIT;
}

static int enable_cap(struct kvm_vm *vm, uint32_t cap, uint64_t arg0)
{
	struct kvm_enable_cap c = { .cap = cap, .args = { arg0 } };

	return ioctl(vm->fd, KVM_ENABLE_CAP, &c) ? -errno : 0;
}

/* Attributes of the TD's own memslots (0, boot, mailbox) where this KVM keeps them: the VM,
 * or the slot's guest_memfd (vm_memory_attributes=N; the series' vm_mem_set_memory_attributes
 * picks the same way). */
static int td_set_attr(struct tdx_td *td, uint32_t slot, uint64_t gpa, uint64_t size, bool to_private)
{
	struct userspace_mem_region *r;

	if (td->attr_owner == TKVM_ATTR_VM)
		return tkvm_attr_set_vm(td->vm->fd, gpa, size, to_private);
	r = memslot2region(td->vm, slot);
	return tkvm_attr_set_gmem(r->region.guest_memfd,
				  r->region.guest_memfd_offset + (gpa - r->region.guest_phys_addr), size,
				  to_private);
}

/* ---------------------------------------------------------------- page-table callbacks */

static uint64_t pt_alloc(void *ctx)
{
	struct kvm_vm *vm = ctx;
	uint64_t gpa = vm_phy_page_alloc(vm, KVM_GUEST_PAGE_TABLE_MIN_PADDR,
					 vm->memslots[MEM_REGION_PT]);

	memset(addr_gpa2hva(vm, gpa), 0, PAGE_4K);
	return gpa;
}

static void *pt_hva(void *ctx, uint64_t gpa)
{
	return addr_gpa2hva(ctx, gpa);
}

static struct tdx_pt td_page_tables(struct kvm_vm *vm)
{
	struct tdx_pt pt = { .root = vm->pgd, .alloc = pt_alloc, .hva = pt_hva, .ctx = vm };

	return pt;
}

/* ---------------------------------------------------------------- build, step 1 */

/* IDT gates to libkvm's stubs (which call route_exception) and the handler table, built by
 * hand: libkvm's vm_init_descriptor_tables is reached only through kvm_arch_vm_post_create,
 * whose in-kernel irqchip a TD refuses (TDX needs the split irqchip). */
static void td_descriptor_tables(struct kvm_vm *vm)
{
	char *idt;
	int i;

	vm->arch.idt = __vm_vaddr_alloc_page(vm, MEM_REGION_DATA);
	vm->handlers = __vm_vaddr_alloc_page(vm, MEM_REGION_DATA);
	idt = addr_gva2hva(vm, vm->arch.idt);
	for (i = 0; i < 256; i++)
		tdx_idt_gate(idt + 16 * i, (uint64_t)(uintptr_t)(&idt_handlers)[i], TDX_CODE64_SEL);
	*(vm_vaddr_t *)addr_gva2hva(vm, (vm_vaddr_t)&exception_handlers) = vm->handlers;
	for (i = 0; i < 32; i++)
		vm_install_exception_handler(vm, i, i == TDX_VE_VECTOR ? tdx_guest_ve_handler
								   : tdx_guest_fault_handler);
}

/* CPUID for the vCPU: KVM_TDX_GET_CPUID (what the module reports) when KVM offers it before
 * INIT_VCPU, else the CPUID the TD was initialised with. Then KVM_TDX_INIT_VCPU. */
static int td_vcpu_init(struct tdx_td *td, struct kvm_cpuid2 *init_cpuid, char *why, size_t why_len)
{
	struct kvm_cpuid2 *cpuid = calloc(1, sizeof(*cpuid) + 256 * sizeof(struct kvm_cpuid_entry2));
	int r;

	struct kvm_cpuid2 *used;
	unsigned maxpa;

	cpuid->nent = 256;
	r = tdx_vcpu_cmd(td->vcpu->fd, TDXHP_KVM_TDX_GET_CPUID, 0, (uint64_t)(uintptr_t)cpuid);
	used = r ? init_cpuid : cpuid;
	/* MapGPA legality is kvm_vcpu_is_legal_gpa() on this MAXPHYADDR: below the GPAW, a MapGPA
	 * to shared gets INVALID_OPERAND without an exit (review 2f). */
	maxpa = tdx_cpuid_maxphyaddr(used->entries, used->nent);
	if (maxpa && maxpa < td->gpaw) {
		free(cpuid);
		return td_fail(td, why, why_len, -EINVAL,
			       "vCPU MAXPHYADDR %u (CPUID 0x80000008.EAX[7:0]) below the TD's GPAW %u", maxpa,
			       td->gpaw);
	}
	r = ioctl(td->vcpu->fd, KVM_SET_CPUID2, used) ? -errno : 0;
	free(cpuid);
	if (r)
		return td_fail(td, why, why_len, r, "KVM_SET_CPUID2 on the TD vCPU");
	r = tdx_vcpu_cmd(td->vcpu->fd, TDXHP_KVM_TDX_INIT_VCPU, 0, 0);
	if (r)
		return td_fail(td, why, why_len, r, "KVM_TDX_INIT_VCPU");
	td->state = TDX_TD_VCPU_READY;
	return 0;
}

struct tdx_td *tdx_td_create(uint64_t slot0_pages, enum tkvm_attr_owner attr_owner,
			     const struct tdx_td_host *host, char *why, size_t why_len)
{
	struct vm_shape shape = { .mode = VM_MODE_DEFAULT, .type = KVM_X86_TDX_VM };
	struct tdx_td *td = calloc(1, sizeof(*td));
	struct kvm_cpuid2 *init_cpuid = NULL;
	struct tdx_pt pt;
	uint64_t hw_error = 0, stack;
	char *boot;
	int r, i;

	td->host = *host;
	td->attr_owner = attr_owner;
	td->state = TDX_TD_CREATED;
	td->vm = ____vm_create(shape);
	/* TDX needs x2APIC with 32-bit IDs and the split irqchip before any vCPU exists, and a
	 * userspace exit for MapGPA (KVM answers INVALID_OPERAND to the guest otherwise). */
	if ((r = enable_cap(td->vm, KVM_CAP_X2APIC_API, 0x3)) ||
	    (r = enable_cap(td->vm, KVM_CAP_SPLIT_IRQCHIP, 24)) ||
	    (r = enable_cap(td->vm, KVM_CAP_EXIT_HYPERCALL, 1ULL << KVM_HC_MAP_GPA_RANGE))) {
		td_fail(td, why, why_len, r, "KVM_ENABLE_CAP (x2APIC API / split irqchip / MapGPA exit) on the TD");
		goto fail;
	}
	/* SEPT_VE_DISABLE stays clear: a PENDING page must give the guest #VE (Access `ve`). */
	r = tdx_init_vm(td->vm->fd, 0, kvm_get_supported_cpuid(), &init_cpuid, &hw_error);
	if (r) {
		char what[64];

		snprintf(what, sizeof(what), "KVM_TDX_INIT_VM (hw_error 0x%llx)", (unsigned long long)hw_error);
		td_fail(td, why, why_len, r, "%s", what);
		goto fail;
	}
	td->state = TDX_TD_INITIALIZED;
	td->gpaw = tdx_cpuid_gpaw(init_cpuid->entries, init_cpuid->nent);
	td->shared_bit = tdxhp_shared_bit(td->gpaw);

	vm_userspace_mem_region_add(td->vm, VM_MEM_SRC_ANONYMOUS, 0, 0, slot0_pages, KVM_MEM_GUEST_MEMFD);
	for (i = 0; i < NR_MEM_REGIONS; i++)
		td->vm->memslots[i] = 0;
	/* The guest code is in this very binary; argv[0] is a bare name when run from $PATH. */
	kvm_vm_elf_load(td->vm, "/proc/self/exe");
	td_descriptor_tables(td->vm);
	stack = vm_vaddr_alloc(td->vm, TDX_STACK_PAGES * PAGE_4K, DEFAULT_GUEST_STACK_VADDR_MIN);

	/* Boot pages, then the mailbox (shared: its attribute is never set private). */
	vm_userspace_mem_region_add(td->vm, VM_MEM_SRC_ANONYMOUS, TDX_BOOT_PARAMS_GPA, BOOT_SLOT, 2,
				    KVM_MEM_GUEST_MEMFD);
	vm_userspace_mem_region_add(td->vm, VM_MEM_SRC_ANONYMOUS, TDX_MAILBOX_GPA, MAILBOX_SLOT, 1,
				    KVM_MEM_GUEST_MEMFD);
	/* A guest_memfd without INIT_SHARED starts private where gmem owns the attributes. */
	if (attr_owner == TKVM_ATTR_GMEM &&
	    (r = td_set_attr(td, MAILBOX_SLOT, TDX_MAILBOX_GPA, PAGE_4K, false))) {
		td_fail(td, why, why_len, r, "KVM_SET_MEMORY_ATTRIBUTES2(shared) on the mailbox");
		goto fail;
	}
	pt = td_page_tables(td->vm);
	/* The trampoline turns paging on while running from its page and reads the far pointer
	 * from the parameters after that: both are mapped 1:1. */
	if ((r = tdx_pt_map(&pt, TDX_BOOT_PARAMS_GPA, TDX_BOOT_PARAMS_GPA, 0, true)) ||
	    (r = tdx_pt_map(&pt, TDX_BOOT_CODE_GPA, TDX_BOOT_CODE_GPA, 0, false)) ||
	    (r = tdx_pt_map(&pt, TDX_SHARED_VA_BASE + TDX_MAILBOX_GPA, TDX_MAILBOX_GPA | td->shared_bit,
			    0, true))) {
		WHY("guest page tables for the boot pages and mailbox: %s", strerror(-r));
		goto fail;
	}
	boot = addr_gpa2hva(td->vm, TDX_BOOT_CODE_GPA);
	memcpy(boot + PAGE_4K - (tdx_boot_end - tdx_boot_start), tdx_boot_start,
	       tdx_boot_end - tdx_boot_start);
	r = tdx_boot_params_fill(addr_gpa2hva(td->vm, TDX_BOOT_PARAMS_GPA), td->vm->pgd, td->vm->arch.idt,
				 256 * 16 - 1, stack + TDX_STACK_PAGES * PAGE_4K,
				 (uint64_t)(uintptr_t)tdx_entry64);
	if (r) {
		WHY("boot parameters: page tables, IDT, stack or entry above 4G (cr3 0x%llx)",
		    (unsigned long long)td->vm->pgd);
		r = -EINVAL;
		goto fail;
	}
	/* Decode what the trampoline will load: a mistake here is a TD that never boots. */
	if (tdx_boot_check(&pt, addr_gpa2hva(td->vm, TDX_BOOT_PARAMS_GPA), why, why_len)) {
		r = -EINVAL;
		goto fail;
	}
	td->mailbox = addr_gpa2hva(td->vm, TDX_MAILBOX_GPA);
	memset(td->mailbox, 0, sizeof(*td->mailbox));
	td->mailbox->shared_bit = td->shared_bit;
	*(uint64_t *)addr_gva2hva(td->vm, (vm_vaddr_t)&tdx_guest_mailbox) =
		TDX_SHARED_VA_BASE + TDX_MAILBOX_GPA;

	td->vcpu = __vm_vcpu_add(td->vm, 0);
	if ((r = td_vcpu_init(td, init_cpuid, why, why_len)))
		goto fail;
	free(init_cpuid);
	return td;
fail:
	free(init_cpuid);
	if (td->vm)
		kvm_vm_free(td->vm);
	td->vm = NULL;
	tdx_td_free(td);
	errno = r < 0 ? -r : EIO;
	return NULL;
}

/* ---------------------------------------------------------------- build, step 2 */

/* KVM_TDX_INIT_MEM_REGION of every page libkvm allocated in memslot 0 (the rest stays
 * unaccepted and is never touched), and of the boot slot. Sources are the slots' shared-side
 * memory, where libkvm wrote the image; KVM copies it into the private gmem pages. */
static int add_boot_image(struct tdx_td *td, uint64_t *pages, char *why, size_t why_len)
{
	struct userspace_mem_region *slot0 = memslot2region(td->vm, 0);
	uint64_t base = slot0->region.guest_phys_addr, n = slot0->region.memory_size / PAGE_4K;
	uint64_t pg = 0;
	int r;

	if ((r = td_set_attr(td, 0, base, n * PAGE_4K, true)) ||
	    (r = td_set_attr(td, BOOT_SLOT, TDX_BOOT_PARAMS_GPA, 2 * PAGE_4K, true)))
		return td_fail(td, why, why_len, r, "%s(private) on the boot memory",
			       td->attr_owner == TKVM_ATTR_VM ? "KVM_SET_MEMORY_ATTRIBUTES"
							      : "KVM_SET_MEMORY_ATTRIBUTES2");
	*pages = 0;
	while (pg < n) {
		uint64_t run = 0;

		while (pg < n && sparsebit_is_set(slot0->unused_phy_pages, (base / PAGE_4K) + pg))
			pg++;
		while (pg + run < n && !sparsebit_is_set(slot0->unused_phy_pages, (base / PAGE_4K) + pg + run))
			run++;
		if (!run)
			break;
		r = tdx_init_mem_region(td->vcpu->fd, addr_gpa2hva(td->vm, base + pg * PAGE_4K),
					base + pg * PAGE_4K, run);
		if (r)
			return td_fail(td, why, why_len, r, "KVM_TDX_INIT_MEM_REGION gpa 0x%llx, %llu pages",
				       (unsigned long long)(base + pg * PAGE_4K), (unsigned long long)run);
		*pages += run;
		pg += run;
	}
	r = tdx_init_mem_region(td->vcpu->fd, addr_gpa2hva(td->vm, TDX_BOOT_PARAMS_GPA),
				TDX_BOOT_PARAMS_GPA, 2);
	if (r)
		return td_fail(td, why, why_len, r, "KVM_TDX_INIT_MEM_REGION of the boot pages");
	*pages += 2;
	return 0;
}

/* Build pages (SEMANTICS.md Setup 2): 4K ADD of content 0xADD0000000000000 | gfn; only on a
 * private gfn inside a slot, else setup fails with -EINVAL. */
static int add_build_pages(struct tdx_td *td, const struct tkvm_config *cfg, char *why, size_t why_len)
{
	uint64_t *page = aligned_alloc(PAGE_4K, PAGE_4K);
	uint32_t i;
	int r = 0;

	for (i = 0; i < cfg->nbuild && !r; i++) {
		uint64_t gfn = cfg->build_gfns[i], k;

		if (td->host.gfn_of(td->host.ctx, td->host.gpa_of(td->host.ctx, gfn)) == UINT64_MAX ||
		    !tdx_attr_is_private(&td->attrs, gfn)) {
			WHY("build page gfn 0x%llx is outside the slots or shared", (unsigned long long)gfn);
			r = -EINVAL;
			break;
		}
		for (k = 0; k < PAGE_4K / 8; k++)
			page[k] = 0xADD0000000000000ULL | gfn;
		r = tdx_init_mem_region(td->vcpu->fd, page, td->host.gpa_of(td->host.ctx, gfn), 1);
		if (r)
			td_fail(td, why, why_len, r, "KVM_TDX_INIT_MEM_REGION build page gfn 0x%llx",
				(unsigned long long)gfn);
	}
	free(page);
	return r;
}

static int run_command(struct tdx_td *td);

int tdx_td_finalize(struct tdx_td *td, const struct tkvm_config *cfg, char *why, size_t why_len)
{
	struct tdx_pt pt = td_page_tables(td->vm);
	uint64_t hw_error = 0, image_pages = 0;
	uint32_t i;
	int r;

	/* Both aliases of every slot, in 2M guest pages (the guest's page size says nothing
	 * about the EPT level, which is what the suite observes). */
	for (i = 0; i < cfg->nslots; i++) {
		uint64_t start = td->host.gpa_of(td->host.ctx, cfg->slots[i].base_gfn) & ~((2ULL << 20) - 1);
		uint64_t end = td->host.gpa_of(td->host.ctx, cfg->slots[i].base_gfn + cfg->slots[i].npages);

		end = (end + (2ULL << 20) - 1) & ~((2ULL << 20) - 1);
		if ((r = tdx_pt_map_range(&pt, GUEST_TEST_VA_BASE + start, start, end - start, 1, true)) ||
		    (r = tdx_pt_map_range(&pt, TDX_SHARED_VA_BASE + start, start | td->shared_bit,
					  end - start, 1, true)))
			return WHY("guest page tables for slot %u: %s", cfg->slots[i].id, strerror(-r)), r;
	}
	if ((r = add_build_pages(td, cfg, why, why_len)))
		return r;
	if ((r = add_boot_image(td, &image_pages, why, why_len)))
		return r;
	r = tdx_finalize(td->vm->fd, &hw_error);
	if (r)
		return td_fail(td, why, why_len, r, "KVM_TDX_FINALIZE_VM (hw_error 0x%llx)",
			       (unsigned long long)hw_error);
	td->state = TDX_TD_FINALIZED;
	/* First entry: reset vector -> trampoline -> tdx_entry64 -> command loop, which reports
	 * the empty command. A TD that does not get there never boots. */
	td->mailbox->cmd = TDX_CMD_NONE;
	r = run_command(td);
	if (r)
		return td_fail(td, why, why_len, r,
			       "KVM_RUN: TD did not reach its command loop after FINALIZE (%llu boot pages added)",
			       (unsigned long long)image_pages);
	td->state = TDX_TD_RUNNING;
	return 0;
}

/* ---------------------------------------------------------------- running */

static int handle_map_gpa_exit(struct tdx_td *td)
{
	struct kvm_run *run = td->vcpu->run;
	/* KVM strips the shared bit from args[0] and says the direction in args[2]. */
	struct tdxhp_map_gpa_request q = tdxhp_decode_map_gpa(run->hypercall.args[0], run->hypercall.args[1],
							      run->hypercall.args[2], td->gpaw);
	const uint64_t want_gpa = td->mailbox->gpa, want_end = want_gpa + td->mailbox->npages * PAGE_4K;
	int err;

	/* KVM forwards MapGPA in 2M chunks. The first exit converts the whole range the guest
	 * asked for in one KVM_SET_MEMORY_ATTRIBUTES, so a failure leaves nothing half
	 * converted (MapGpa has Convert's rules, SEMANTICS.md); later chunks of that range are
	 * acknowledged with its result. A chunk outside it is converted on its own. */
	const bool in_request = q.gpa >= want_gpa && q.gpa + q.npages * PAGE_4K <= want_end;

	if (in_request && td->map_gpa_exits) {
		err = td->map_gpa_err;
	} else {
		const uint64_t gpa = in_request ? want_gpa : q.gpa;
		const uint64_t npages = in_request ? td->mailbox->npages : q.npages;
		const uint64_t gfn = td->host.gfn_of(td->host.ctx, gpa);

		err = gfn == UINT64_MAX ? -EINVAL : td->host.convert(td->host.ctx, gfn, npages, q.to_private);
	}
	td->map_gpa_exits++;
	if (err && !td->map_gpa_err)
		td->map_gpa_err = err;
	/* Non-zero ret: the guest gets TDVMCALL_STATUS_INVALID_OPERAND. EINVAL is the value
	 * every KVM version maps to that (later ones give EAGAIN a RETRY meaning). */
	run->hypercall.ret = err ? EINVAL : 0;
	return err;
}

/* Runs the vCPU until the guest reports the mailbox command done. 0, or -errno: -EIO when
 * the TD is dead or stuck, -EPROTO for an exit this flavour does not expect. */
static int run_command(struct tdx_td *td)
{
	uint64_t seq_before = td->mailbox->seq;
	struct kvm_run *run = td->vcpu->run;

	for (;;) {
		/* KVM_EXIT_MEMORY_FAULT is the one exit that comes with -1/EFAULT (api.rst). */
		run->exit_reason = 0;
		if (ioctl(td->vcpu->fd, KVM_RUN, NULL) &&
		    !((errno == EFAULT || errno == EHWPOISON) && run->exit_reason == KVM_EXIT_MEMORY_FAULT)) {
			if (errno == EINTR || errno == EAGAIN)
				continue;
			return errno == EIO ? -EIO : -errno;
		}
		switch (tdxhp_classify_exit(run->exit_reason,
					    run->exit_reason == KVM_EXIT_IO && run->io.port == TDX_DONE_PORT &&
						    run->io.direction == KVM_EXIT_IO_OUT,
					    run->hypercall.nr)) {
		case TDXHP_EXIT_GUEST_DONE: {
			uint32_t v;

			memcpy(&v, (char *)run + run->io.data_offset, sizeof(v));
			if (v == TDX_DONE_STUCK) {
				fprintf(stderr, "TD guest stopped: vector %llu at rip 0x%llx (#VE reason %llu gpa 0x%llx)\n",
					(unsigned long long)td->mailbox->stuck_vector,
					(unsigned long long)td->mailbox->stuck_rip,
					(unsigned long long)td->mailbox->ve_reason,
					(unsigned long long)td->mailbox->ve_gpa);
				return -EIO;
			}
			return td->mailbox->seq == seq_before + 1 ? 0 : -EPROTO;
		}
		case TDXHP_EXIT_CONVERT:
			if (run->exit_reason == KVM_EXIT_HYPERCALL) {
				handle_map_gpa_exit(td);
				continue;
			}
			/* A memory-fault exit: the guest touched a gfn through the alias of the other
			 * attribute. As the series' huge-page test does, convert to what the guest
			 * used and resume; only a conversion that fails ends the command. */
			{
				uint64_t gfn = td->host.gfn_of(td->host.ctx, run->memory_fault.gpa);
				bool priv = run->memory_fault.flags & KVM_MEMORY_EXIT_FLAG_PRIVATE;
				int err = gfn == UINT64_MAX ? -EFAULT
					  : td->host.convert(td->host.ctx, gfn,
							     (run->memory_fault.size + PAGE_4K - 1) / PAGE_4K, priv);

				fprintf(stderr, "TD memory fault exit at gpa 0x%llx size 0x%llx to %s: %s\n",
					(unsigned long long)run->memory_fault.gpa,
					(unsigned long long)run->memory_fault.size, priv ? "private" : "shared",
					err ? strerror(-err) : "converted, resuming");
				if (err)
					return err == -EIO ? -EIO : -EFAULT;
				td->fault_conversions++;
				continue;
			}
		case TDXHP_EXIT_VM_DEAD:
			fprintf(stderr, "TD dead: exit %s\n", exit_reason_str(run->exit_reason));
			return -EIO;
		default:
			fprintf(stderr, "unexpected TD exit %s (port 0x%x)\n", exit_reason_str(run->exit_reason),
				run->exit_reason == KVM_EXIT_IO ? run->io.port : 0);
			return -EPROTO;
		}
	}
}

void tdx_td_note_attributes(struct tdx_td *td, uint64_t gfn, uint64_t npages, bool to_private)
{
	tdx_attr_assign(&td->attrs, gfn, gfn + npages, to_private);
}

int tdx_td_access(struct tdx_td *td, uint64_t gfn, bool write, uint64_t value,
		  struct tkvm_guest_result *res)
{
	uint64_t gpa = td->host.gpa_of(td->host.ctx, gfn);
	int r;

	/* SEMANTICS.md Access: a private gfn through the private alias (AUG, PENDING -> #VE),
	 * a shared one through the shared-bit alias. */
	td->mailbox->cmd = write ? TDX_CMD_WRITE : TDX_CMD_READ;
	td->mailbox->gva = (tdx_attr_is_private(&td->attrs, gfn) ? GUEST_TEST_VA_BASE : TDX_SHARED_VA_BASE) + gpa;
	td->mailbox->value = value;
	td->mailbox->faulted = 0;
	r = run_command(td);
	if (r)
		return r;
	if (td->mailbox->faulted == TDX_VE_VECTOR) {
		res->ve = true;
		if (td->mailbox->ve_reason != EXIT_REASON_EPT_VIOLATION)
			fprintf(stderr, "#VE on gfn 0x%llx with exit reason %llu (not an EPT violation)\n",
				(unsigned long long)gfn, (unsigned long long)td->mailbox->ve_reason);
		return 0;
	}
	if (td->mailbox->faulted) {
		fprintf(stderr, "guest access to gfn 0x%llx took vector %llu\n", (unsigned long long)gfn,
			(unsigned long long)td->mailbox->faulted);
		return -EPROTO;
	}
	if (!write)
		res->value = td->mailbox->value;
	return 0;
}

int tdx_td_accept(struct tdx_td *td, uint64_t gfn, unsigned level, struct tkvm_guest_result *res)
{
	uint64_t gpa = td->host.gpa_of(td->host.ctx, gfn), rcx;
	int r;

	/* A valid accept of a shared or slot-less gfn ends in a memory-fault exit that would
	 * leave the vCPU re-faulting in the TDCALL; its outcome is -EFAULT (SEMANTICS.md
	 * Accept), so it is answered here without entering the guest. */
	if (tdxhp_accept_rcx(gpa, level, &rcx) &&
	    (td->host.gfn_of(td->host.ctx, gpa) == UINT64_MAX || !tdx_attr_is_private(&td->attrs, gfn)))
		return -EFAULT;
	td->mailbox->cmd = TDX_CMD_ACCEPT;
	td->mailbox->gpa = gpa;
	td->mailbox->level = level;
	r = run_command(td);
	if (!r)
		res->tdx_status = td->mailbox->status;
	return r;
}

int tdx_td_map_gpa(struct tdx_td *td, uint64_t gfn, uint64_t npages, bool to_private,
		   struct tkvm_guest_result *res)
{
	int r;

	td->mailbox->cmd = TDX_CMD_MAP_GPA;
	td->mailbox->gpa = td->host.gpa_of(td->host.ctx, gfn);
	td->mailbox->npages = npages;
	td->mailbox->to_private = to_private;
	td->map_gpa_err = 0;
	td->map_gpa_exits = 0;
	r = run_command(td);
	if (r)
		return r;
	res->tdx_status = td->mailbox->status;
	/* The op's result is the conversion userspace did; KVM refusing the range itself
	 * (no exit at all, e.g. an empty range) is the same -EINVAL a Convert would give. */
	res->convert_err = td->map_gpa_exits ? td->map_gpa_err : td->mailbox->status ? -EINVAL : 0;
	return res->convert_err;
}

enum tdx_td_state tdx_td_state(const struct tdx_td *td)
{
	return td->state;
}

unsigned tdx_td_gpaw(const struct tdx_td *td)
{
	return td->gpaw;
}

unsigned tdx_td_fault_conversions(const struct tdx_td *td)
{
	return td->fault_conversions;
}

void tdx_td_free(struct tdx_td *td)
{
	if (!td)
		return;
	tdx_attr_free(&td->attrs);
	free(td);
}

/* ---------------------------------------------------------------- module facts */

static int read_line(const char *path, char *buf, size_t len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n;

	if (fd < 0)
		return -errno;
	n = read(fd, buf, len - 1);
	close(fd);
	if (n < 0)
		return -errno;
	buf[n] = 0;
	while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == ' '))
		buf[--n] = 0;
	return 0;
}

void tdx_module_facts(int tdx_huge_page, char *buf, size_t len)
{
	char version[64] = "";
	bool has_version = read_line("/sys/devices/faux/tdx_host/version", version, sizeof(version)) == 0;

	/* The series exposes no TDX_FEATURES0 in sysfs. kvm_intel clears tdx_huge_page at load
	 * when the module lacks ENHANCED_DEMOTE_INTERRUPTIBILITY (bit 51, L4463), so a Y read
	 * back means bit 51 is present; N says nothing either way. DYNAMIC_PAMT (bit 36) has no
	 * visible trace at all. */
	snprintf(buf, len,
		 "tdx module: version %s; tdx_huge_page %s; TDX_FEATURES0 bit 51 (ENHANCED_DEMOTE_"
		 "INTERRUPTIBILITY) %s; bit 36 (DYNAMIC_PAMT) not exposed in sysfs",
		 has_version ? version : "unknown (no /sys/devices/faux/tdx_host/version)",
		 tdx_huge_page < 0 ? "absent (kvm_intel without the huge-page series)" : tdx_huge_page ? "Y" : "N",
		 tdx_huge_page < 0 ? "unknown"
		 : tdx_huge_page   ? "present (implied: kvm_intel keeps tdx_huge_page=Y only with it)"
				   : "unknown (tdx_huge_page=N is also the admin's choice)");
}
