// The fixed parts of a TD reproducer (export_tdx.cpp puts the case between them), on the TDX
// selftest library of the huge-page series' tree, intel/tdx tools/testing/selftests/kvm:
//   lib/x86/tdx/tdx_util.c, include/x86/tdx/tdx_util.h  TD create/initialize/vCPU/finalize
//   lib/x86/tdx/tdx.c, include/x86/tdx/tdx.h            guest TDCALLs (accept, VEINFO, MapGPA)
//   lib/x86/tdx/test_util.c, include/x86/tdx/test_util.h is_tdx_enabled
//   lib/x86/ucall.c                                       ucalls from a TD (MMIO TDVMCALL)
//   include/kvm_util.h                                    vm_create_guest_memfd, vm_mem_add
//   x86/tdx_vm_huge_page.c                                the series' own test: the same calls
// Every call below names the file it follows. Kernel style, tabs.
#pragma once

namespace tdxhp::exporter {

// After kCommonHead: the TDX headers, constants and the guest's step table type.
constexpr const char* kTdHead = R"C(
#include "sparsebit.h"
#include "tdx/tdcall.h"
#include "tdx/tdx.h"
#include "tdx/tdx_util.h"
#include "tdx/test_util.h"

/* A test gpa has two guest aliases: private at gva == gpa, shared at SHARED_GVA_OFFSET + gpa
 * (the leaf PTE of the shared one carries the TD's shared bit). Test gpas stay below 2^45. */
#define SHARED_GVA_OFFSET	(1ULL << 45)
/* TDVMCALL status of a MapGPA that KVM stopped early; r11 says where to resume
 * (arch/x86/include/asm/shared/tdx.h, TDVMCALL_STATUS_RETRY). */
#define TDVMCALL_STATUS_RETRY	1

enum guest_op { G_HOST, G_READ, G_WRITE, G_ACCEPT, G_MAP_GPA };

/* One step as the guest runs it; host steps are G_HOST, run by the host while the vCPU is out. */
struct guest_step {
	uint8_t op;
	uint8_t level;		/* G_ACCEPT: 0 4K, 1 2M, 2 1G (TDG.MEM.PAGE.ACCEPT's RCX[2:0]) */
	bool shared;		/* G_READ/G_WRITE: the gfn is shared, so the shared alias */
	bool to_private;	/* G_MAP_GPA */
	uint64_t gfn, npages, value;
};
)C";

// The guest: a #VE handler and the step table walked in order. Needs guest_steps[], NSTEPS.
constexpr const char* kTdGuest = R"C(
/* ---------------------------------------------------------------- guest */

static uint64_t test_gpa(uint64_t gfn)
{
	return TEST_GPA_BASE + gfn * PAGE_4K;
}

/* #VE, e.g. a touch of a PENDING page: TDG.VP.VEINFO.GET first, before another #VE can be
 * delivered (tdg_vp_veinfo_get(), intel/tdx lib/x86/tdx/tdx.c, as x86/tdx_vm_huge_page.c's
 * handler does), then resume after the guarded access (libkvm's KVM_ASM_SAFE protocol). */
static void guest_ve_handler(struct ex_regs *regs)
{
	struct ve_info ve;

	GUEST_ASSERT_EQ(tdg_vp_veinfo_get(&ve), 0);
	if (regs->r9 == KVM_EXCEPTION_MAGIC && regs->rip == regs->r10) {
		regs->rip = regs->r11;
		regs->r9 = regs->vector;
		regs->r10 = regs->error_code;
		return;
	}
	GUEST_FAIL("#VE outside a test access: rip 0x%lx, gpa 0x%lx", regs->rip, ve.gpa);
}

/* One 8-byte load or store; returns the exception vector it took (0: none). */
static uint8_t guest_access(uint64_t gva, bool write, uint64_t *value)
{
	uint64_t ec, v = *value;
	uint8_t vector;

	if (write)
		asm volatile(KVM_ASM_SAFE("movq %[v], (%[p])")
			     : KVM_ASM_SAFE_OUTPUTS(vector, ec)
			     : [p] "r"(gva), [v] "r"(v)
			     : KVM_ASM_SAFE_CLOBBERS, "memory");
	else
		asm volatile(KVM_ASM_SAFE("movq (%[p]), %[v]")
			     : KVM_ASM_SAFE_OUTPUTS(vector, ec), [v] "+r"(v)
			     : [p] "r"(gva)
			     : KVM_ASM_SAFE_CLOBBERS, "memory");
	(void)ec;
	*value = v;
	return vector;
}

/* TDVMCALL<MapGPA> through tdg_vp_vmcall_map_gpa() (intel/tdx lib/x86/tdx/tdx.c): the shared
 * bit in the address asks for shared (tdx_s_bit: td_initialize() syncs it into the guest,
 * lib/x86/tdx/tdx_util.c). KVM may stop early with TDVMCALL_STATUS_RETRY and the
 * gpa to resume at; the guest goes on from there as long as it moves forward. */
static uint64_t guest_map_gpa(uint64_t gpa, uint64_t size, bool to_private)
{
	uint64_t end = gpa + size, next = 0, ret;

	for (;;) {
		ret = tdg_vp_vmcall_map_gpa(to_private ? gpa : gpa | tdx_s_bit, end - gpa, &next);
		if (ret != TDVMCALL_STATUS_RETRY || (next & ~tdx_s_bit) <= gpa || (next & ~tdx_s_bit) >= end)
			return ret;
		gpa = next & ~tdx_s_bit;
	}
}

/* Each guest step ends in a ucall the host checks: GUEST_SYNC_ARGS(step, result...) over
 * intel/tdx's TD ucall (lib/x86/ucall.c: an MMIO TDVMCALL to the shared ucall gpa). */
static void guest_code(void)
{
	for (uint64_t i = 0; i < NSTEPS; i++) {
		const struct guest_step *s = &guest_steps[i];
		uint64_t gpa = test_gpa(s->gfn), value = s->value;
		uint8_t vector;

		switch (s->op) {
		case G_READ:
		case G_WRITE:
			vector = guest_access((s->shared ? SHARED_GVA_OFFSET : 0) + gpa, s->op == G_WRITE, &value);
			GUEST_SYNC_ARGS(i, vector, value, 0, 0);
			break;
		case G_ACCEPT:
			/* intel/tdx lib/x86/tdx/tdx.c: RCX = gpa | level */
			GUEST_SYNC_ARGS(i, tdg_mem_page_accept(gpa, s->level), 0, 0, 0);
			break;
		case G_MAP_GPA:
			GUEST_SYNC_ARGS(i, guest_map_gpa(gpa, s->npages * PAGE_4K, s->to_private), 0, 0, 0);
			break;
		default:
			break;
		}
	}
	GUEST_DONE();
}
)C";

// The TD build and the guest-step runner. Needs the case's macros, slots[], touched_gfns[],
// build_pages[] and kHostOps before it.
constexpr const char* kTdHost = R"C(
/* ---------------------------------------------------------------- the TD */

/* in place, the attributes belong to guest_memfd (vm_memory_attributes=N): one
 * KVM_SET_MEMORY_ATTRIBUTES2 per slot part, in gfn order, stopping at the first error
 * (tdxhp domain/SEMANTICS.md "Host ops", Convert; the ioctl is the in-place conversion
 * series' uAPI in intel/tdx include/uapi/linux/kvm.h). */
static __attribute__((unused)) int op_convert_in_place(uint64_t gfn, uint64_t npages, bool to_private)
{
	uint64_t end = gfn + npages;
	bool any = false;

	for (size_t i = 0; i < NSLOTS && npages; i++) {
		struct slot *s = &slots[i];
		uint64_t lo = gfn > s->gfn ? gfn : s->gfn;
		uint64_t hi = end < s->gfn + s->npages ? end : s->gfn + s->npages;
		struct kvm_memory_attributes2 attr = {
			.offset = (s->gmem_offset + lo - s->gfn) * PAGE_4K,
			.size = (hi - lo) * PAGE_4K,
			.attributes = to_private ? KVM_MEMORY_ATTRIBUTE_PRIVATE : 0,
		};

		if (lo >= hi)
			continue;
		any = true;
		if (ioctl(s->fd, KVM_SET_MEMORY_ATTRIBUTES2, &attr))
			return -errno;
	}
	return any ? 0 : -EINVAL;
}

#if IN_PLACE
#define td_convert op_convert_in_place
#else
#define td_convert op_convert
#endif

/* A kvm_intel/kvm parameter as the case needs it, else the whole program is a SKIP. */
static void require_param(const char *path, char want)
{
	char got = '?';
	FILE *f = fopen(path, "r");

	if (f) {
		got = (char)fgetc(f);
		fclose(f);
	}
	if (got != want)
		ksft_exit_skip("%s is %c, the case needs %c\n", path, f ? got : '-', want);
}

/* virt_pg_map() leaves the shared bit out of a leaf PTE only for a gpa marked protected in
 * its region (vm_is_gpa_protected(), lib/x86/processor.c), and td_finalize() ADDs every page
 * so marked (load_td_memory_region(), intel/tdx lib/x86/tdx/tdx_util.c). So the private
 * alias is mapped with the mark set, and the mark is put back as it was: only the case's
 * build pages are ADDed. Guest page tables are private after FINALIZE: every alias the steps
 * touch is mapped before it. */
static void map_aliases(uint64_t gfn)
{
	struct slot *s = slot_of(gfn, 1);
	uint64_t gpa = gpa_of(gfn), pfn = gpa >> vm->page_shift;
	struct userspace_mem_region *r;
	bool marked;

	TEST_ASSERT(s, "gfn 0x%lx is in no slot", gfn);
	/* lib/kvm_util.c: the region libkvm keeps for the memslot, with its protected-page marks */
	r = memslot2region(vm, FIRST_SLOT + (s - slots));
	marked = sparsebit_is_set(r->protected_phy_pages, pfn);
	sparsebit_set(r->protected_phy_pages, pfn);
	virt_pg_map(vm, gpa, gpa);
	sparsebit_clear(r->protected_phy_pages, pfn);
	virt_pg_map(vm, SHARED_GVA_OFFSET + gpa, gpa);
	if (marked)
		sparsebit_set(r->protected_phy_pages, pfn);
}

static void create_td(void)
{
	/* intel/tdx include/x86/tdx/test_util.h: KVM_X86_TDX_VM in KVM_CAP_VM_TYPES */
	if (!is_tdx_enabled())
		ksft_exit_skip("TDX is not supported by this KVM\n");
	require_param("/sys/module/kvm_intel/parameters/tdx_huge_page", TDX_HUGE_PAGE);
#if IN_PLACE
	require_param("/sys/module/kvm/parameters/vm_memory_attributes", 'N');
#endif
	/* intel/tdx lib/x86/tdx/tdx_util.c. TD attributes 0: SEPT_VE_DISABLE is clear, so a
	 * touch of a PENDING page is a #VE in the guest (as in x86/tdx_vm_huge_page.c). */
	vm = td_create();
	td_initialize(vm, VM_MEM_SRC_ANONYMOUS, 0);
	/* MapGPA exits to userspace (x86/tdx_vm_huge_page.c) */
	vm_enable_cap(vm, KVM_CAP_EXIT_HYPERCALL, BIT_ULL(KVM_HC_MAP_GPA_RANGE));
	/* intel/tdx lib/x86/tdx/tdx_util.c: KVM_TDX_INIT_VCPU, boot parameters for guest_code */
	vcpu = td_vcpu_add(vm, 0, guest_code);
	/* handlers reach the guest at td_finalize() (sync_exception_handlers_to_guest), as in
	 * x86/tdx_vm_huge_page.c */
	vm_install_exception_handler(vm, VE_VECTOR, guest_ve_handler);
	for (size_t i = 0; i < NSLOTS; i++) {
		struct slot *s = &slots[i];
		uint64_t file_len = (s->gmem_offset + s->npages) * PAGE_4K;

		TEST_ASSERT(gpa_of(s->gfn + s->npages) <= SHARED_GVA_OFFSET && SHARED_GVA_OFFSET < vm->arch.s_bit,
			    "slot %u does not fit under the shared alias", s->id);
		/* intel/tdx include/kvm_util.h: guest_memfd flags and page order (hugetlb), and
		 * vm_mem_add() binding it, as x86/tdx_vm_huge_page.c does */
		s->fd = vm_create_guest_memfd(vm, file_len, GMEM_FLAGS, GMEM_ORDER);
		vm_mem_add(vm, SHARED_SRC, gpa_of(s->gfn), FIRST_SLOT + i, s->npages, KVM_MEM_GUEST_MEMFD, s->fd,
			   s->gmem_offset * PAGE_4K, GMEM_FLAGS, GMEM_ORDER);
		s->hva = addr_gpa2hva(vm, gpa_of(s->gfn));
	}
	for (size_t i = 0; i < sizeof(touched_gfns) / sizeof(touched_gfns[0]); i++)
		map_aliases(touched_gfns[i]);
	/* Build pages: TDH.MEM.PAGE.ADD at 4K by td_finalize() (load_td_memory_region()). */
	for (size_t i = 0; i < sizeof(build_pages) / sizeof(build_pages[0]); i++) {
		struct slot *s = slot_of(build_pages[i].gfn, build_pages[i].npages);

		TEST_ASSERT(s, "build pages at gfn 0x%lx are in no slot", build_pages[i].gfn);
		sparsebit_set_num(memslot2region(vm, FIRST_SLOT + (s - slots))->protected_phy_pages,
				  gpa_of(build_pages[i].gfn) >> vm->page_shift, build_pages[i].npages);
	}
	td_finalize(vm);	/* intel/tdx lib/x86/tdx/tdx_util.c: ADDs, then KVM_TDX_FINALIZE_VM */
	for (size_t i = 0; i < NSLOTS; i++)
		TEST_ASSERT(!td_convert(slots[i].gfn, slots[i].npages, INITIALLY_PRIVATE),
			    "setting slot %u's initial attributes: %s", slots[i].id, strerror(errno));
}

/* A guest step that ended in a memory-fault exit (-EFAULT): the vCPU sits on the faulting
 * instruction and cannot run the later guest steps. */
static int stuck_step = -1;

/* MapGPA exits: userspace converts (td_convert) and answers KVM. */
static void handle_map_gpa(int *first_err)
{
	struct kvm_run *run = vcpu->run;
	uint64_t gpa = run->hypercall.args[0] & ~vm->arch.s_bit;
	int err;

	TEST_ASSERT(run->hypercall.nr == KVM_HC_MAP_GPA_RANGE, "hypercall %llu", run->hypercall.nr);
	err = td_convert((gpa - TEST_GPA_BASE) / PAGE_4K, run->hypercall.args[1],
			 run->hypercall.args[2] & KVM_MAP_GPA_RANGE_ENCRYPTED);
	if (err && !*first_err)
		*first_err = err;
	run->hypercall.ret = err ? -err : 0;
}

/* Runs the vCPU to the ucall ending guest step `step`. 0 with its results in args[], the
 * first MapGPA conversion error, -EFAULT for a memory-fault exit, or -EIO. */
static int run_guest_step(int step, uint64_t args[3])
{
	int convert_err = 0;
	struct ucall uc;

	if (stuck_step >= 0)
		return -EIO;
	for (;;) {
		if (_vcpu_run(vcpu))
			return -errno;
		if (vcpu->run->exit_reason == KVM_EXIT_HYPERCALL) {
			handle_map_gpa(&convert_err);
			continue;
		}
		if (vcpu->run->exit_reason == KVM_EXIT_MEMORY_FAULT) {
			stuck_step = step;
			return -EFAULT;
		}
		switch (get_ucall(vcpu, &uc)) {
		case UCALL_SYNC:
			TEST_ASSERT(uc.args[1] == (uint64_t)step, "guest at step %lu, host at %d", uc.args[1], step);
			args[0] = uc.args[2];
			args[1] = uc.args[3];
			args[2] = uc.args[4];
			return convert_err;
		case UCALL_ABORT:
			REPORT_GUEST_ASSERT(uc);
		default:
			ksft_print_msg("step %d: unexpected exit %s\n", step, exit_reason_str(vcpu->run->exit_reason));
			return -EIO;
		}
	}
}

/* A guest step after a memory-fault exit has nothing to run on: SKIP, not FAIL. */
static bool skipped_as_stuck(int step, const char *what)
{
	if (stuck_step < 0)
		return false;
	ksft_test_result_skip("step %d: %s: the vCPU is stuck in step %d's memory-fault exit\n", step, what,
			      stuck_step);
	return true;
}

/* How an accept's status and an access's #VE and read are judged (the header says why). */
enum judge { CHOICE, FIXED, IF_SAME_CHOICE };
#define WANT_VE		true
#define WANT_NO_VE	false
/* A CHOICE status unlike the simulator's: KVM chose another level, IF_SAME_CHOICE is void. */
static bool choice_differs;

static bool judged(enum judge j)
{
	return j == FIXED || (j == IF_SAME_CHOICE && !choice_differs);
}

/* access: the return code, then the #VE and the value read where they are judged. */
static __attribute__((unused)) void expect_access(int step, const char *what, int want, enum judge j, bool want_ve,
						  bool check_value, uint64_t want_value)
{
	uint64_t r[3] = { 0 };
	int got;

	if (skipped_as_stuck(step, what))
		return;
	got = run_guest_step(step, r);
	if (got == 0 && want == 0 && r[0] && r[0] != VE_VECTOR) {
		ksft_test_result_fail("step %d: %s: exception %lu in the guest\n", step, what, r[0]);
		return;
	}
	if (got == 0 && want == 0 && judged(j) && (r[0] == VE_VECTOR) != want_ve) {
		ksft_test_result_fail("step %d: %s: %s, the oracle requires %s\n", step, what,
				      r[0] ? "#VE" : "no #VE", want_ve ? "#VE" : "no #VE");
		return;
	}
	if (got == 0 && want == 0 && judged(j) && !r[0] && check_value && r[1] != want_value) {
		ksft_test_result_fail("step %d: %s: read 0x%lx, the oracle requires 0x%lx\n", step, what, r[1],
				      want_value);
		return;
	}
	if (got == 0 && (!judged(j) || (!check_value && !r[0])))
		ksft_print_msg("step %d: %s, value 0x%lx (%s)\n", step, r[0] ? "#VE" : "no #VE", r[1],
			       judged(j) ? "the spec leaves the value open" : "KVM chose another level before");
	expect_ret(step, what, got, want);
}

/* accept: the return code, then the TDX status where it is judged. */
static __attribute__((unused)) void expect_accept(int step, const char *what, int want, enum judge j, uint64_t want_status)
{
	uint64_t r[3] = { 0 };
	int got;

	if (skipped_as_stuck(step, what))
		return;
	got = run_guest_step(step, r);
	if (got == 0 && want == 0 && judged(j) && r[0] != want_status) {
		ksft_test_result_fail("step %d: %s: status 0x%lx, the oracle requires 0x%lx\n", step, what, r[0],
				      want_status);
		return;
	}
	if (got == 0 && !judged(j)) {
		ksft_print_msg("step %d: status 0x%lx, the simulator's 0x%lx (%s)\n", step, r[0], want_status,
			       j == CHOICE ? "it follows KVM's level choice" : "KVM chose another level before");
		if (j == CHOICE && r[0] != want_status)
			choice_differs = true;
	}
	expect_ret(step, what, got, want);
}

/* MapGPA: the conversion userspace made for it returns what the oracle allows. */
static __attribute__((unused)) void expect_map_gpa(int step, const char *what, int want)
{
	uint64_t r[3] = { 0 };

	if (skipped_as_stuck(step, what))
		return;
	expect_ret(step, what, run_guest_step(step, r), want);
}
)C";

constexpr const char* kTdMain = R"C(
int main(void)
{
	ksft_print_header();
	ksft_set_plan(NSTEPS);
	create_td();
	run_steps();
	kvm_vm_free(vm);
	ksft_finished();
}
)C";

}  // namespace tdxhp::exporter
