/* Host side of the plain and swprot flavours on libkvm-selftests: VM and memslot setup,
 * the host ops of SEMANTICS.md, and the driver that runs one guest command per step. */
#define _GNU_SOURCE
#include "tdxhp_kvm.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/falloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "guest.h"
#include "tdx_td.h"
#include "kvm_util.h"
#include "processor.h"
#include "ucall_common.h"
#include "uapi_compat.h"

/* Defined in kvm_util.c, undeclared in its header; its constructor is stripped (build_libkvm.sh). */
void kvm_selftest_init(void);

#define PAGE_4K 4096ULL
#define SZ_2M_BYTES (2ULL << 20)
/* Test slots start at 4 GiB: above libkvm's memslot 0 and the 32-bit hole, and 1G-aligned
 * so every alignment class of the scenario's gfns (4K/2M/1G) is kept. */
#define TEST_GPA_BASE (1ULL << 32)
#define FIRST_TEST_SLOT 10

struct tkvm_slot_state {
	struct tkvm_slot cfg;
	int gmem_fd;      /* guest_memfd, or -1 */
	int shared_fd;    /* plain without gmem mmap: a memfd holding the memory */
	void *reserve;    /* whole reservation (for munmap) */
	size_t reserve_len;
	void *hva;        /* memslot userspace_addr */
	enum tkvm_backing shared_backing; /* host memory at hva (swprot: anonymous THP/hugetlb) */
};

struct tkvm_vm {
	enum tkvm_flavour flavour;
	struct kvm_vm *vm;
	struct kvm_vcpu *vcpu;
	uint32_t nslots;
	struct tkvm_slot_state slots[TKVM_MAX_SLOTS];
	bool dead;
	struct tdx_td *td; /* tdx flavour (tdx_td.c), else NULL */
	/* gfns whose guest page-table entry exists (mapped lazily, one 4K PTE each). */
	uint64_t *mapped;
	size_t nmapped, capmapped;
};

const char *tkvm_flavour_name(enum tkvm_flavour f)
{
	return f == TKVM_TDX ? "tdx" : f == TKVM_SWPROT ? "swprot" : "plain";
}

/* ---------------------------------------------------------------- probing */

static int read_param(const char *path)
{
	char buf[16] = {0};
	int fd = open(path, O_RDONLY);
	ssize_t n;

	if (fd < 0)
		return -1;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return -1;
	if (buf[0] == 'Y' || buf[0] == 'y' || buf[0] == '1')
		return 1;
	if (buf[0] == 'N' || buf[0] == 'n' || buf[0] == '0')
		return 0;
	return -1;
}

static long check_ext(int fd, long cap)
{
	long r = ioctl(fd, KVM_CHECK_EXTENSION, cap);
	return r < 0 ? 0 : r;
}

/* Cap::SharedDiscard: MADV_DONTNEED must free anonymous private memory (refault reads zero),
 * which is what SEMANTICS.md DiscardShared promises for the shared side. Tried, not assumed. */
static void probe_shared_discard(struct tkvm_host *h)
{
	volatile char *p = mmap(NULL, 2 * PAGE_4K, PROT_READ | PROT_WRITE,
				MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	if (p == MAP_FAILED) {
		snprintf(h->shared_discard_error, sizeof(h->shared_discard_error),
			 "anonymous mmap: %s", strerror(errno));
		return;
	}
	p[0] = 0x5a;
	p[PAGE_4K] = 0x5a;
	if (madvise((void *)p, PAGE_4K, MADV_DONTNEED))
		snprintf(h->shared_discard_error, sizeof(h->shared_discard_error),
			 "madvise(MADV_DONTNEED): %s", strerror(errno));
	else if (p[0] != 0 || p[PAGE_4K] != 0x5a)
		snprintf(h->shared_discard_error, sizeof(h->shared_discard_error),
			 "MADV_DONTNEED did not free exactly the page it was given");
	else
		h->shared_discard = true;
	munmap((void *)p, 2 * PAGE_4K);
}

void tkvm_probe_host(struct tkvm_host *h)
{
	static const char *modules[] = { "kvm_intel", "kvm_amd", "kvm_pvm" };
	int kvm, vm;
	size_t i;

	memset(h, 0, sizeof(*h));
	h->tdx_enabled = read_param("/sys/module/kvm_intel/parameters/tdx");
	h->tdx_huge_page = read_param("/sys/module/kvm_intel/parameters/tdx_huge_page");
	h->vm_memory_attributes = read_param("/sys/module/kvm/parameters/vm_memory_attributes");
	h->tdp_mmu = read_param("/sys/module/kvm/parameters/tdp_mmu");
	for (i = 0; i < sizeof(modules) / sizeof(modules[0]); i++) {
		char path[64];

		snprintf(path, sizeof(path), "/sys/module/%s", modules[i]);
		if (access(path, F_OK) == 0) {
			snprintf(h->kvm_module, sizeof(h->kvm_module), "%s", modules[i]);
			break;
		}
	}

	probe_shared_discard(h);
	kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	if (kvm < 0) {
		snprintf(h->error, sizeof(h->error), "/dev/kvm: %s", strerror(errno));
		return;
	}
	h->dev_kvm = true;
	h->vm_types = check_ext(kvm, KVM_CAP_VM_TYPES);
	h->pre_fault = check_ext(kvm, KVM_CAP_PRE_FAULT_MEMORY) > 0;
	h->binary_stats = check_ext(kvm, KVM_CAP_BINARY_STATS_FD) > 0;

	vm = ioctl(kvm, KVM_CREATE_VM, KVM_X86_DEFAULT_VM);
	if (vm >= 0) {
		h->guest_memfd = check_ext(vm, KVM_CAP_GUEST_MEMFD) > 0;
		h->gmem_flags = check_ext(vm, KVM_CAP_GUEST_MEMFD_FLAGS);
		h->attributes = check_ext(vm, KVM_CAP_MEMORY_ATTRIBUTES);
		if (!h->pre_fault)
			h->pre_fault = check_ext(vm, KVM_CAP_PRE_FAULT_MEMORY) > 0;
		close(vm);
	} else {
		snprintf(h->error, sizeof(h->error), "KVM_CREATE_VM: %s", strerror(errno));
	}
	if (h->vm_types & (1ULL << KVM_X86_SW_PROTECTED_VM)) {
		vm = ioctl(kvm, KVM_CREATE_VM, KVM_X86_SW_PROTECTED_VM);
		if (vm >= 0) {
			h->swprot_attributes = check_ext(vm, KVM_CAP_MEMORY_ATTRIBUTES);
			close(vm);
		}
	}
	close(kvm);
}

/* ---------------------------------------------------------------- layout */

uint64_t tkvm_gpa_of(const struct tkvm_vm *vm, uint64_t gfn)
{
	(void)vm;
	return TEST_GPA_BASE + gfn * PAGE_4K;
}

uint64_t tkvm_gfn_of(const struct tkvm_vm *vm, uint64_t gpa)
{
	uint64_t gfn;
	uint32_t i;

	if (gpa < TEST_GPA_BASE)
		return UINT64_MAX;
	gfn = (gpa - TEST_GPA_BASE) / PAGE_4K;
	for (i = 0; i < vm->nslots; i++) {
		const struct tkvm_slot *s = &vm->slots[i].cfg;

		if (gfn >= s->base_gfn && gfn < s->base_gfn + s->npages)
			return gfn;
	}
	return UINT64_MAX;
}

int tkvm_vm_fd(const struct tkvm_vm *vm)
{
	return vm->vm->fd;
}

/* The slot holding all of [gfn, gfn + npages), or NULL. */
static struct tkvm_slot_state *slot_of(struct tkvm_vm *vm, uint64_t gfn, uint64_t npages)
{
	uint32_t i;

	for (i = 0; i < vm->nslots; i++) {
		struct tkvm_slot_state *s = &vm->slots[i];

		if (gfn >= s->cfg.base_gfn && npages <= s->cfg.npages &&
		    gfn + npages <= s->cfg.base_gfn + s->cfg.npages)
			return s;
	}
	return NULL;
}

int tkvm_gmem_fd(const struct tkvm_vm *vm, uint32_t slot_id)
{
	uint32_t i;

	for (i = 0; i < vm->nslots; i++)
		if (vm->slots[i].cfg.id == slot_id)
			return vm->slots[i].gmem_fd;
	return -1;
}

bool tkvm_vm_dead(const struct tkvm_vm *vm)
{
	return vm->dead;
}

/* ---------------------------------------------------------------- setup */

#define WHY(...) (snprintf(why, why_len, __VA_ARGS__), (void)0)

/* Maps len bytes of fd (or anonymous memory when fd < 0) so that the slot's HVA is
 * hva_offset pages past a naturally aligned block: INV-SLOT says a misaligned HVA must not
 * limit private mappings, and the shared side's host mapping level depends on it (INV-CONTIG).
 * hugetlb memory (huge != 0) is mapped from a huge boundary and the HVA points hva_offset
 * pages into it, so a misaligned HVA still has hugetlb pages behind it. */
static int map_slot_memory(struct tkvm_slot_state *s, int fd, uint64_t fd_off, size_t len,
			   int extra_flags, size_t huge)
{
	size_t align = huge ? huge : SZ_2M_BYTES;
	size_t off = (s->cfg.hva_offset % (align / PAGE_4K)) * PAGE_4K;
	size_t maplen = huge ? (off + len + huge - 1) / huge * huge : len;
	size_t reserve = maplen + 2 * align;
	char *base = mmap(NULL, reserve, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	char *want;
	void *p;

	if (base == MAP_FAILED)
		return -errno;
	want = (char *)(((uintptr_t)base + align - 1) & ~(align - 1)) + (huge ? 0 : off);
	if (fd >= 0)
		p = mmap(want, maplen, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED | extra_flags, fd, fd_off);
	else
		p = mmap(want, maplen, PROT_READ | PROT_WRITE,
			 MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED | extra_flags, -1, 0);
	if (p == MAP_FAILED) {
		int e = -errno;

		munmap(base, reserve);
		return e;
	}
	s->reserve = base;
	s->reserve_len = reserve;
	s->hva = (char *)p + (huge ? off : 0);
	return 0;
}

static int add_test_slot(struct tkvm_vm *vm, const struct tkvm_config *cfg, uint32_t idx,
			 uint64_t gmem_flags, char *why, size_t why_len)
{
	struct tkvm_slot_state *s = &vm->slots[idx];
	size_t len = s->cfg.npages * PAGE_4K;
	uint64_t file_len = (s->cfg.gmem_offset + s->cfg.npages) * PAGE_4K;
	uint64_t gmem_off = s->cfg.gmem_offset * PAGE_4K;
	uint32_t flags = 0;
	int r;

	s->gmem_fd = s->shared_fd = -1;
	s->shared_backing = cfg->backing;  /* plain: tkvm_create admits 4K only */
	if (cfg->flavour == TKVM_PLAIN && !(gmem_flags & GUEST_MEMFD_FLAG_MMAP)) {
		/* No mmap-able guest_memfd: the memory is a memfd, punch hole acts on it. */
		s->shared_fd = memfd_create("tdxhp-slot", MFD_CLOEXEC);
		if (s->shared_fd < 0 || ftruncate(s->shared_fd, file_len))
			return WHY("memfd for slot %u: %s", s->cfg.id, strerror(errno)), -errno;
		r = map_slot_memory(s, s->shared_fd, gmem_off, len, 0, 0);
	} else {
		s->gmem_fd = __vm_create_guest_memfd(vm->vm, file_len, gmem_flags);
		if (s->gmem_fd < 0)
			return WHY("KVM_CREATE_GUEST_MEMFD(flags 0x%llx) for slot %u: %s",
				   (unsigned long long)gmem_flags, s->cfg.id, strerror(errno)), -errno;
		flags |= KVM_MEM_GUEST_MEMFD;
		if (gmem_flags & GUEST_MEMFD_FLAG_MMAP) {
			r = map_slot_memory(s, s->gmem_fd, gmem_off, len, 0, 0);
		} else if (cfg->backing == TKVM_BACK_HUGETLB_2M || cfg->backing == TKVM_BACK_HUGETLB_1G) {
			/* swprot: shared side from the hugetlb pool (the caller sized it). */
			bool g1 = cfg->backing == TKVM_BACK_HUGETLB_1G;
			size_t huge = g1 ? (1ULL << 30) : SZ_2M_BYTES;

			r = map_slot_memory(s, -1, 0, len,
					    MAP_HUGETLB | (g1 ? (30 << MAP_HUGE_SHIFT) : (21 << MAP_HUGE_SHIFT)),
					    huge);
		} else {
			/* swprot: shared memory is ordinary host memory, THP-backed when asked. */
			r = map_slot_memory(s, -1, 0, len, MAP_NORESERVE, 0);
			if (!r)
				madvise(s->hva, len, cfg->backing == TKVM_BACK_THP_2M ? MADV_HUGEPAGE
										 : MADV_NOHUGEPAGE);
		}
	}
	if (r)
		return WHY("mapping slot %u memory: %s", s->cfg.id, strerror(-r)), r;

	r = __vm_set_user_memory_region2(vm->vm, FIRST_TEST_SLOT + idx, flags,
					 tkvm_gpa_of(vm, s->cfg.base_gfn), len, s->hva,
					 s->gmem_fd < 0 ? 0 : s->gmem_fd, gmem_off);
	if (r)
		return WHY("KVM_SET_USER_MEMORY_REGION2 slot %u: %s", s->cfg.id, strerror(errno)), -errno;
	return 0;
}

static uint64_t elf_pages(void)
{
	struct stat st;

	return stat("/proc/self/exe", &st) ? 16384 : (uint64_t)st.st_size / PAGE_4K + 1;
}

/* __vm_create() of libkvm 6.12 with memslot 0 sized for the ELF (its own size is fixed at
 * ~2 MiB plus page tables, too small for tdxhp). Same steps, in the same order. */
static struct kvm_vm *create_vm_with_room(struct vm_shape shape, uint64_t slot0_pages)
{
	struct kvm_vm *vm = ____vm_create(shape);
	struct userspace_mem_region *slot0;
	int i;

	vm_userspace_mem_region_add(vm, VM_MEM_SRC_ANONYMOUS, 0, 0, slot0_pages, 0);
	for (i = 0; i < NR_MEM_REGIONS; i++)
		vm->memslots[i] = 0;
	kvm_vm_elf_load(vm, program_invocation_name);
	slot0 = memslot2region(vm, 0);
	ucall_init(vm, slot0->region.guest_phys_addr + slot0->region.memory_size);
	kvm_arch_vm_post_create(vm);
	return vm;
}

struct tkvm_vm *tkvm_create(const struct tkvm_config *cfg, char *why, size_t why_len)
{
	struct tkvm_host host;
	struct tkvm_vm *vm;
	uint64_t gmem_flags = 0, max_gpa;
	struct vm_shape shape = VM_SHAPE_DEFAULT;
	uint32_t i;

	if (cfg->nslots == 0 || cfg->nslots > TKVM_MAX_SLOTS)
		return WHY("%u memslots (1..%d supported)", cfg->nslots, TKVM_MAX_SLOTS), NULL;
	if (cfg->backing != TKVM_BACK_4K && cfg->flavour == TKVM_PLAIN)
		return WHY("plain VM: its memory is the guest_memfd/memfd file (4K folios); THP or "
			   "hugetlb shared memory exists only beside private memory (swprot)"), NULL;

	tkvm_probe_host(&host);
	if (!host.dev_kvm)
		return WHY("%s", host.error), NULL;
	if (cfg->flavour == TKVM_TDX) {
		if (!(host.vm_types & (1ULL << KVM_X86_TDX_VM)))
			return WHY("KVM_X86_TDX_VM not in KVM_CAP_VM_TYPES"), NULL;
	} else if (cfg->flavour == TKVM_SWPROT) {
		if (!(host.vm_types & (1ULL << KVM_X86_SW_PROTECTED_VM)))
			return WHY("KVM_X86_SW_PROTECTED_VM not in KVM_CAP_VM_TYPES"), NULL;
		shape.type = KVM_X86_SW_PROTECTED_VM;
	} else {
		if (host.gmem_flags & GUEST_MEMFD_FLAG_MMAP)
			gmem_flags = GUEST_MEMFD_FLAG_MMAP |
				     (host.gmem_flags & GUEST_MEMFD_FLAG_INIT_SHARED);
	}

	/* libkvm prints its random seed and reads kvm params in this constructor, which tdxhp
	 * strips from kvm_util.o so the binary starts on hosts without KVM. */
	kvm_selftest_init();

	vm = calloc(1, sizeof(*vm));
	vm->flavour = cfg->flavour;
	/* libkvm copies the running ELF into memslot 0 but sizes that slot for small test
	 * binaries; tdxhp (sanitized, C++) is larger, so reserve room for all of it. */
	if (cfg->flavour == TKVM_TDX) {
		/* The TD's own build (tdx_td.c): its vCPU starts at the reset vector, not here. */
		vm->td = tdx_td_create(elf_pages() + 1024, why, why_len);
		if (!vm->td) {
			free(vm);
			return NULL;
		}
		vm->vm = tdx_td_vm(vm->td);
		vm->vcpu = tdx_td_vcpu(vm->td);
	} else {
		vm->vm = create_vm_with_room(shape, elf_pages() + 1024);
		vm->vcpu = vm_vcpu_add(vm->vm, 0, guest_command_loop);
	}
	vm->nslots = cfg->nslots;
	max_gpa = vm->td ? tdx_td_gpa_limit(vm->td)
			 : 1ULL << (vm->vm->pa_bits < 46 ? vm->vm->pa_bits : 46);
	for (i = 0; i < cfg->nslots; i++) {
		vm->slots[i].cfg = cfg->slots[i];
		vm->slots[i].gmem_fd = vm->slots[i].shared_fd = -1;
	}
	for (i = 0; i < cfg->nslots; i++) {
		const struct tkvm_slot *s = &cfg->slots[i];

		if (tkvm_gpa_of(vm, s->base_gfn + s->npages) > max_gpa) {
			WHY("slot %u ends at gfn 0x%llx, beyond this VM's %u-bit guest physical space",
			    s->id, (unsigned long long)(s->base_gfn + s->npages), vm->vm->pa_bits);
			tkvm_destroy(vm);
			return NULL;
		}
		if (add_test_slot(vm, cfg, i, gmem_flags, why, why_len)) {
			tkvm_destroy(vm);
			return NULL;
		}
	}
	if (cfg->flavour != TKVM_PLAIN && cfg->initially_private) {
		for (i = 0; i < cfg->nslots; i++) {
			int r = tkvm_set_attributes(vm, cfg->slots[i].base_gfn, cfg->slots[i].npages, true);

			if (r) {
				WHY("KVM_SET_MEMORY_ATTRIBUTES(private) slot %u: %s", cfg->slots[i].id,
				    strerror(-r));
				tkvm_destroy(vm);
				return NULL;
			}
		}
	}
	if (vm->td && tdx_td_finalize(vm->td, vm, cfg, why, why_len)) {
		tkvm_destroy(vm);
		return NULL;
	}
	return vm;
}

void tkvm_destroy(struct tkvm_vm *vm)
{
	uint32_t i;

	if (!vm)
		return;
	if (vm->vm)
		kvm_vm_free(vm->vm);
	tdx_td_free(vm->td);
	for (i = 0; i < vm->nslots; i++) {
		struct tkvm_slot_state *s = &vm->slots[i];

		if (s->reserve)
			munmap(s->reserve, s->reserve_len);
		if (s->gmem_fd >= 0)
			close(s->gmem_fd);
		if (s->shared_fd >= 0)
			close(s->shared_fd);
	}
	free(vm->mapped);
	free(vm);
}

/* ---------------------------------------------------------------- host ops */

static int note_dead(struct tkvm_vm *vm, int err)
{
	if (err == -EIO)
		vm->dead = true;
	return err;
}

int tkvm_set_attributes(struct tkvm_vm *vm, uint64_t gfn, uint64_t npages, bool to_private)
{
	struct kvm_memory_attributes attr = {
		.address = tkvm_gpa_of(vm, gfn),
		.size = npages * PAGE_4K,
		.attributes = to_private ? KVM_MEMORY_ATTRIBUTE_PRIVATE : 0,
	};

	/* Attributes belong to the VM: any gfn range, slots or holes (kvm_vm_set_mem_attributes). */
	if (npages == 0)
		return -EINVAL;
	if (ioctl(vm->vm->fd, KVM_SET_MEMORY_ATTRIBUTES, &attr))
		return note_dead(vm, -errno);
	if (vm->td)
		tdx_td_note_attributes(vm->td, gfn, npages, to_private);
	return 0;
}

int tkvm_punch_hole(struct tkvm_vm *vm, uint64_t gfn, uint64_t npages)
{
	struct tkvm_slot_state *s = npages ? slot_of(vm, gfn, npages) : NULL;
	int fd;

	if (!s)
		return -EINVAL;
	fd = s->gmem_fd >= 0 ? s->gmem_fd : s->shared_fd;
	if (fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
		      (s->cfg.gmem_offset + gfn - s->cfg.base_gfn) * PAGE_4K, npages * PAGE_4K))
		return note_dead(vm, -errno);
	return 0;
}

int tkvm_prefault(struct tkvm_vm *vm, uint64_t gfn, uint64_t npages)
{
	struct kvm_pre_fault_memory range = {
		.gpa = tkvm_gpa_of(vm, gfn),
		.size = npages * PAGE_4K,
	};

	if (npages == 0)
		return -EINVAL;
	/* The ioctl maps in chunks and reports progress; loop like a VMM would. */
	while (range.size) {
		if (ioctl(vm->vcpu->fd, KVM_PRE_FAULT_MEMORY, &range) < 0) {
			if (errno == EINTR || errno == EAGAIN)
				continue;
			return note_dead(vm, -errno);
		}
	}
	return 0;
}

/* A THP block discarded in part has its PMD split; khugepaged could collapse it again at any
 * time, which would make the host level (INV-CONTIG's bound) depend on timing. The domain
 * says such a block stays 4K (SEMANTICS.md DiscardShared), so pin that with MADV_NOHUGEPAGE. */
static void keep_split_thp_blocks_4k(struct tkvm_slot_state *s, char *start, char *end)
{
	char *lo = s->hva, *hi = (char *)s->hva + s->cfg.npages * PAGE_4K;
	char *edges[2] = { start, end };
	int i;

	for (i = 0; i < 2; i++) {
		char *b = (char *)((uintptr_t)edges[i] & ~(SZ_2M_BYTES - 1));
		char *a = b < lo ? lo : b, *z = b + SZ_2M_BYTES > hi ? hi : b + SZ_2M_BYTES;

		if (edges[i] == b)
			continue;  /* the edge is on a block boundary: no block cut in part here */
		if (a < z)
			madvise(a, z - a, MADV_NOHUGEPAGE);
	}
}

int tkvm_shared_discard(struct tkvm_vm *vm, uint64_t gfn, uint64_t npages)
{
	struct tkvm_slot_state *s = npages ? slot_of(vm, gfn, npages) : NULL;
	char *p;

	if (vm->flavour == TKVM_PLAIN)
		return -EOPNOTSUPP;  /* its memory is the gmem/memfd file, not separate host memory */
	if (!s)
		return -EINVAL;
	p = (char *)s->hva + (gfn - s->cfg.base_gfn) * PAGE_4K;
	/* hugetlb: the kernel itself fails a misaligned start and rounds the end down. */
	if (madvise(p, npages * PAGE_4K, MADV_DONTNEED))
		return -errno;
	if (s->shared_backing == TKVM_BACK_THP_2M)
		keep_split_thp_blocks_4k(s, p, p + npages * PAGE_4K);
	return 0;
}

/* ---------------------------------------------------------------- guest ops */

static void ensure_guest_mapping(struct tkvm_vm *vm, uint64_t gfn)
{
	size_t i;

	for (i = 0; i < vm->nmapped; i++)
		if (vm->mapped[i] == gfn)
			return;
	if (vm->nmapped == vm->capmapped) {
		vm->capmapped = vm->capmapped ? 2 * vm->capmapped : 64;
		vm->mapped = realloc(vm->mapped, vm->capmapped * sizeof(*vm->mapped));
	}
	vm->mapped[vm->nmapped++] = gfn;
	virt_pg_map(vm->vm, GUEST_TEST_VA_BASE + tkvm_gpa_of(vm, gfn), tkvm_gpa_of(vm, gfn));
}

/* Runs the guest until it finishes the mailbox command. */
static int run_guest_command(struct tkvm_vm *vm)
{
	uint64_t seq_before = guest_mailbox.seq;
	struct ucall uc;

	sync_global_to_guest(vm->vm, guest_mailbox);
	for (;;) {
		int r = _vcpu_run(vm->vcpu);

		if (r)
			return note_dead(vm, -errno);
		switch (get_ucall(vm->vcpu, &uc)) {
		case UCALL_SYNC:
			sync_global_from_guest(vm->vm, guest_mailbox);
			return guest_mailbox.seq == seq_before + 1 ? 0 : -EPROTO;
		case UCALL_ABORT:
			fprintf(stderr, "guest assertion: %s\n", uc.buffer);
			return -EPROTO;
		default:
			break;
		}
		switch (vm->vcpu->run->exit_reason) {
		case KVM_EXIT_MEMORY_FAULT:
			/* swprot: the guest touched a gfn whose attribute has no backing of that
			 * kind (e.g. private after a failed conversion). The access cannot finish. */
			fprintf(stderr, "memory fault exit at gpa 0x%llx flags 0x%llx\n",
				(unsigned long long)vm->vcpu->run->memory_fault.gpa,
				(unsigned long long)vm->vcpu->run->memory_fault.flags);
			return -EFAULT;
		case KVM_EXIT_SHUTDOWN:
		case KVM_EXIT_FAIL_ENTRY:
		case KVM_EXIT_INTERNAL_ERROR:
			fprintf(stderr, "VM dead: exit %s\n", exit_reason_str(vm->vcpu->run->exit_reason));
			vm->dead = true;
			return -EIO;
		default:
			fprintf(stderr, "unexpected exit %s\n", exit_reason_str(vm->vcpu->run->exit_reason));
			return -EPROTO;
		}
	}
}

int tkvm_guest_access(struct tkvm_vm *vm, uint64_t gfn, bool write, uint64_t value,
		      struct tkvm_guest_result *res)
{
	int r;

	memset(res, 0, sizeof(*res));
	if (vm->dead)
		return -EIO;
	if (!slot_of(vm, gfn, 1))
		return -EFAULT;
	if (vm->td)
		return note_dead(vm, tdx_td_access(vm->td, vm, gfn, write, value, res));
	ensure_guest_mapping(vm, gfn);
	guest_mailbox.cmd = write ? GUEST_CMD_WRITE : GUEST_CMD_READ;
	guest_mailbox.gva = GUEST_TEST_VA_BASE + tkvm_gpa_of(vm, gfn);
	guest_mailbox.value = value;
	r = run_guest_command(vm);
	if (!r && !write)
		res->value = guest_mailbox.value;
	return r;
}

int tkvm_guest_accept(struct tkvm_vm *vm, uint64_t gfn, unsigned level,
		      struct tkvm_guest_result *res)
{
	memset(res, 0, sizeof(*res));
	if (vm->td)
		return vm->dead ? -EIO : note_dead(vm, tdx_td_accept(vm->td, vm, gfn, level, res));
	return -EOPNOTSUPP;  /* TDG.MEM.PAGE.ACCEPT exists only in a TD */
}

int tkvm_guest_map_gpa(struct tkvm_vm *vm, uint64_t gfn, uint64_t npages, bool to_private,
		       struct tkvm_guest_result *res)
{
	memset(res, 0, sizeof(*res));
	if (vm->td)
		return vm->dead ? -EIO
				: note_dead(vm, tdx_td_map_gpa(vm->td, vm, gfn, npages, to_private, res));
	return -EOPNOTSUPP;  /* TDVMCALL MapGPA exists only in a TD */
}

/* ---------------------------------------------------------------- stats */

int tkvm_stat(struct tkvm_vm *vm, const char *name, uint64_t *value)
{
	struct kvm_stats_header hdr;
	struct kvm_stats_desc *d;
	size_t dsz;
	char *descs;
	uint32_t i;
	int fd = ioctl(vm->vm->fd, KVM_GET_STATS_FD, NULL), r = -ENOENT;

	if (fd < 0)
		return -errno;
	if (pread(fd, &hdr, sizeof(hdr), 0) != (ssize_t)sizeof(hdr)) {
		close(fd);
		return -EIO;
	}
	dsz = sizeof(*d) + hdr.name_size;
	descs = calloc(hdr.num_desc, dsz);
	if (pread(fd, descs, dsz * hdr.num_desc, hdr.desc_offset) != (ssize_t)(dsz * hdr.num_desc)) {
		free(descs);
		close(fd);
		return -EIO;
	}
	for (i = 0; i < hdr.num_desc; i++) {
		d = (struct kvm_stats_desc *)(descs + i * dsz);
		if (strcmp(d->name, name) == 0) {
			r = pread(fd, value, sizeof(*value), hdr.data_offset + d->offset) == sizeof(*value)
				    ? 0 : -EIO;
			break;
		}
	}
	free(descs);
	close(fd);
	return r;
}
