// The fixed parts of an exported reproducer (export_c.cpp puts the case between them).
// C for tools/testing/selftests/kvm on libkvm-selftests 6.12; kernel style, tabs.
#pragma once

namespace tdxhp::exporter {

// Includes, constants and the slot type every flavour uses.
constexpr const char* kCommonHead = R"C(
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <linux/falloc.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include "kvm_util.h"
#include "processor.h"
#include "ucall_common.h"
#include "kselftest.h"

#define PAGE_4K		4096ULL
#define SZ_2M_BYTES	(2ULL << 20)
#define SZ_1G_BYTES	(1ULL << 30)
/* Scenario gfn g is at guest-physical TEST_GPA_BASE + g * 4K: above libkvm's memslot 0 and
 * 1G-aligned, so the case's 4K/2M/1G alignments hold. A swprot/plain guest maps it at
 * GUEST_VA_BASE + gpa (a TD's aliases: td_template.h). */
#define TEST_GPA_BASE	(1ULL << 32)
#define GUEST_VA_BASE	(1ULL << 40)
#define FIRST_SLOT	10
#define TO_PRIVATE	true
#define TO_SHARED	false
/* A step after the oracle's first violation on the clean simulator: run, reported, not judged. */
#define NO_EXPECTATION	1

enum backing { BACK_4K, BACK_THP_2M, BACK_HUGETLB_2M, BACK_HUGETLB_1G };

struct slot {
	uint32_t id;
	uint64_t gfn, npages, gmem_offset, hva_offset;	/* 4K pages */
	int fd;		/* swprot: the slot's guest_memfd; plain: the memfd holding its memory */
	char *hva;	/* userspace_addr: swprot's and tdx's shared side, plain's memory */
};
)C";

// swprot/plain: the guest's command loop.
constexpr const char* kSwprotGuest = R"C(
/* ---------------------------------------------------------------- guest */

enum { CMD_READ = 1, CMD_WRITE };
/* The mailbox: the host copies it into the guest before each command and back after. */
static uint64_t cmd, cmd_gva, cmd_value;

static void guest_code(void)
{
	for (;;) {
		volatile uint64_t *p = (volatile uint64_t *)READ_ONCE(cmd_gva);

		if (READ_ONCE(cmd) == CMD_READ)
			WRITE_ONCE(cmd_value, *p);
		else if (READ_ONCE(cmd) == CMD_WRITE)
			*p = READ_ONCE(cmd_value);
		GUEST_SYNC(cmd);
	}
}
)C";

// Every flavour's host side: the VM, one function per host op kind, the KTAP check of a
// return code. Needs slots[], NSLOTS and SHARED_BACKING.
constexpr const char* kHostOps = R"C(
static struct kvm_vm *vm;
static struct kvm_vcpu *vcpu;
/* Set by an op this host cannot perform at all (a missing capability): the step is a SKIP. */
static const char *host_lacks;

static uint64_t gpa_of(uint64_t gfn)
{
	return TEST_GPA_BASE + gfn * PAGE_4K;
}

static struct slot *slot_of(uint64_t gfn, uint64_t npages)
{
	for (size_t i = 0; i < NSLOTS; i++)
		if (gfn >= slots[i].gfn && gfn + npages <= slots[i].gfn + slots[i].npages)
			return &slots[i];
	return NULL;
}

/* convert: KVM_SET_MEMORY_ATTRIBUTES over the range (per VM: holes included). */
static __attribute__((unused)) int op_convert(uint64_t gfn, uint64_t npages, bool to_private)
{
	struct kvm_memory_attributes attr = {
		.address = gpa_of(gfn),
		.size = npages * PAGE_4K,
		.attributes = to_private ? KVM_MEMORY_ATTRIBUTE_PRIVATE : 0,
	};

	return ioctl(vm->fd, KVM_SET_MEMORY_ATTRIBUTES, &attr) ? -errno : 0;
}

/* punch: fallocate(PUNCH_HOLE | KEEP_SIZE) on the slot's guest_memfd (plain: its memfd). */
static __attribute__((unused)) int op_punch(uint64_t gfn, uint64_t npages)
{
	struct slot *s = slot_of(gfn, npages);

	if (!s)
		return -EINVAL;
	return fallocate(s->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
			 (s->gmem_offset + gfn - s->gfn) * PAGE_4K, npages * PAGE_4K) ? -errno : 0;
}

/* prefault: KVM_PRE_FAULT_MEMORY, looping on its progress like a VMM. */
static __attribute__((unused)) int op_prefault(uint64_t gfn, uint64_t npages)
{
	struct kvm_pre_fault_memory range = { .gpa = gpa_of(gfn), .size = npages * PAGE_4K };

	if (!kvm_has_cap(KVM_CAP_PRE_FAULT_MEMORY)) {
		host_lacks = "this host's KVM lacks KVM_CAP_PRE_FAULT_MEMORY";
		return -EOPNOTSUPP;
	}
	while (range.size)
		if (ioctl(vcpu->fd, KVM_PRE_FAULT_MEMORY, &range) < 0 && errno != EINTR && errno != EAGAIN)
			return -errno;
	return 0;
}

/* discard-shared: MADV_DONTNEED on the shared host memory. A THP block cut in part stays 4K
 * (MADV_NOHUGEPAGE), as the spec says, so khugepaged cannot change the host level later. */
static __attribute__((unused)) int op_discard_shared(uint64_t gfn, uint64_t npages)
{
	struct slot *s = slot_of(gfn, npages);
	char *start, *end;

	if (!s)
		return -EINVAL;
	start = s->hva + (gfn - s->gfn) * PAGE_4K;
	end = start + npages * PAGE_4K;
	if (madvise(start, npages * PAGE_4K, MADV_DONTNEED))
		return -errno;
	if (SHARED_BACKING == BACK_THP_2M) {
		char *edges[2] = { start, end };

		for (int i = 0; i < 2; i++) {
			char *b = (char *)((uintptr_t)edges[i] & ~(SZ_2M_BYTES - 1));
			char *lo = b < s->hva ? s->hva : b;
			char *hi = b + SZ_2M_BYTES > s->hva + s->npages * PAGE_4K ? s->hva + s->npages * PAGE_4K
										  : b + SZ_2M_BYTES;

			if (edges[i] != b && lo < hi)
				madvise(lo, hi - lo, MADV_NOHUGEPAGE);
		}
	}
	return 0;
}

/* ---------------------------------------------------------------- checks (KTAP) */

static void expect_ret(int step, const char *what, int got, int want)
{
	if (host_lacks) {
		ksft_test_result_skip("step %d: %s: %s\n", step, what, host_lacks);
		host_lacks = NULL;
	} else if (want == NO_EXPECTATION)
		ksft_test_result_skip("step %d: %s: returned %d; no expectation (the clean simulator failed earlier)\n",
				      step, what, got);
	else if (got == want)
		ksft_test_result_pass("step %d: %s\n", step, what);
	else
		ksft_test_result_fail("step %d: %s: returned %d (%s), the oracle allows %d (%s)\n", step, what, got,
				      strerror(-got), want, strerror(-want));
}

)C";

// swprot/plain: the VM build.
constexpr const char* kVmCreate = R"C(
/* The slot's memory, hva_offset pages past a naturally aligned block (as tdxhp's kvm target
 * maps it: the shared side's host mapping level depends on it). hugetlb is mapped from a huge
 * boundary and the HVA points hva_offset pages into it. */
static char *map_memory(uint64_t len, uint64_t hva_offset, int fd, uint64_t fd_off, enum backing b)
{
	bool huge = b == BACK_HUGETLB_2M || b == BACK_HUGETLB_1G;
	size_t align = b == BACK_HUGETLB_1G ? SZ_1G_BYTES : SZ_2M_BYTES;
	size_t off = (hva_offset % (align / PAGE_4K)) * PAGE_4K;
	size_t maplen = huge ? (off + len + align - 1) / align * align : len;
	char *base = mmap(NULL, maplen + 2 * align, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	char *want, *p;
	int flags = MAP_FIXED;

	TEST_ASSERT(base != MAP_FAILED, "reserving address space: %s", strerror(errno));
	want = (char *)(((uintptr_t)base + align - 1) & ~(align - 1)) + (huge ? 0 : off);
	if (fd >= 0)
		flags |= MAP_SHARED;
	else
		flags |= MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE;
	if (huge)
		flags |= MAP_HUGETLB | (b == BACK_HUGETLB_1G ? 30 << MAP_HUGE_SHIFT : 21 << MAP_HUGE_SHIFT);
	p = mmap(want, maplen, PROT_READ | PROT_WRITE, flags, fd, fd >= 0 ? fd_off : 0);
	if (p == MAP_FAILED)
		ksft_exit_skip("mapping %s slot memory: %s\n", huge ? "hugetlb (is the pool big enough?)" : "the",
			       strerror(errno));
	if (!huge)
		madvise(p, maplen, b == BACK_THP_2M ? MADV_HUGEPAGE : MADV_NOHUGEPAGE);
	return p + (huge ? off : 0);
}

static void create_vm(void)
{
#if FLAVOUR_SWPROT
	struct vm_shape shape = { .mode = VM_MODE_DEFAULT, .type = KVM_X86_SW_PROTECTED_VM };

	if (!(kvm_check_cap(KVM_CAP_VM_TYPES) & BIT(KVM_X86_SW_PROTECTED_VM)))
		ksft_exit_skip("KVM_X86_SW_PROTECTED_VM is not in KVM_CAP_VM_TYPES\n");
#else
	struct vm_shape shape = VM_SHAPE_DEFAULT;
#endif
	/* 1024 extra pages: guest page tables for the gfns the steps touch. */
	vm = __vm_create_shape_with_one_vcpu(shape, &vcpu, 1024, guest_code);
	for (size_t i = 0; i < NSLOTS; i++) {
		struct slot *s = &slots[i];
		uint64_t len = s->npages * PAGE_4K, file_len = (s->gmem_offset + s->npages) * PAGE_4K;

#if FLAVOUR_SWPROT
		s->fd = vm_create_guest_memfd(vm, file_len, 0);
		s->hva = map_memory(len, s->hva_offset, -1, 0, SHARED_BACKING);
		vm_set_user_memory_region2(vm, FIRST_SLOT + i, KVM_MEM_GUEST_MEMFD, gpa_of(s->gfn), len, s->hva,
					   s->fd, s->gmem_offset * PAGE_4K);
#else
		s->fd = memfd_create("tdxhp-repro-slot", MFD_CLOEXEC);
		TEST_ASSERT(s->fd >= 0 && !ftruncate(s->fd, file_len), "memfd for slot %u: %s", s->id, strerror(errno));
		s->hva = map_memory(len, s->hva_offset, s->fd, s->gmem_offset * PAGE_4K, BACK_4K);
		vm_set_user_memory_region2(vm, FIRST_SLOT + i, 0, gpa_of(s->gfn), len, s->hva, 0, 0);
#endif
#if FLAVOUR_SWPROT && INITIALLY_PRIVATE
		vm_set_memory_attributes(vm, gpa_of(s->gfn), len, KVM_MEMORY_ATTRIBUTE_PRIVATE);
#endif
	}
}

)C";

// swprot/plain: the guest ops through the mailbox.
constexpr const char* kSwprotGuestOps = R"C(
/* The guest runs one mailbox command; 0, or -EFAULT for a KVM_EXIT_MEMORY_FAULT (the gfn's
 * attribute has no memory of that kind behind it), -EIO when the VM is dead. */
static int guest_command(uint64_t command, uint64_t gfn, uint64_t *value)
{
	static uint64_t mapped[4096];
	static size_t nmapped;
	struct ucall uc;
	size_t i;

	if (!slot_of(gfn, 1))
		return -EFAULT;
	for (i = 0; i < nmapped && mapped[i] != gfn; i++)
		;
	if (i == nmapped) {
		TEST_ASSERT(nmapped < 4096, "too many distinct gfns");
		mapped[nmapped++] = gfn;
		virt_pg_map(vm, GUEST_VA_BASE + gpa_of(gfn), gpa_of(gfn));
	}
	cmd = command;
	cmd_gva = GUEST_VA_BASE + gpa_of(gfn);
	cmd_value = *value;
	sync_global_to_guest(vm, cmd);
	sync_global_to_guest(vm, cmd_gva);
	sync_global_to_guest(vm, cmd_value);
	if (_vcpu_run(vcpu))
		return -errno;
	switch (get_ucall(vcpu, &uc)) {
	case UCALL_SYNC:
		sync_global_from_guest(vm, cmd_value);
		*value = cmd_value;
		return 0;
	case UCALL_ABORT:
		REPORT_GUEST_ASSERT(uc);
	default:
		break;
	}
	if (vcpu->run->exit_reason == KVM_EXIT_MEMORY_FAULT)
		return -EFAULT;
	ksft_print_msg("unexpected exit %s\n", exit_reason_str(vcpu->run->exit_reason));
	return -EIO;
}

/* access (write): the guest stores value at the gfn. */
static __attribute__((unused)) int op_write(uint64_t gfn, uint64_t value)
{
	return guest_command(CMD_WRITE, gfn, &value);
}

/* access (read): the guest loads the gfn's first 8 bytes. */
static __attribute__((unused)) int op_read(uint64_t gfn, uint64_t *value)
{
	*value = 0;
	return guest_command(CMD_READ, gfn, value);
}

static __attribute__((unused)) void expect_read(int step, const char *what, uint64_t gfn, int want, bool check, uint64_t want_value)
{
	uint64_t value;
	int got = op_read(gfn, &value);

	if (want != NO_EXPECTATION && got == want && got == 0 && check && value != want_value) {
		ksft_test_result_fail("step %d: %s: read 0x%llx, the oracle requires 0x%llx\n", step, what,
				      (unsigned long long)value, (unsigned long long)want_value);
		return;
	}
	if (got == 0 && !check)
		ksft_print_msg("step %d: read 0x%llx (the spec leaves this value open)\n", step,
			       (unsigned long long)value);
	expect_ret(step, what, got, want);
}
)C";

constexpr const char* kMain = R"C(
#ifdef TDXHP_LIBKVM_STRIPPED
void kvm_selftest_init(void);	/* tdxhp's libkvm.a drops kvm_util.o's constructor */
#endif

int main(void)
{
#ifdef TDXHP_LIBKVM_STRIPPED
	kvm_selftest_init();
#endif
	ksft_print_header();
	ksft_set_plan(NSTEPS);
	create_vm();
	run_steps();
	kvm_vm_free(vm);
	ksft_finished();
}
)C";

}  // namespace tdxhp::exporter
