/* Host side of the flavours on libkvm-selftests: VM and memslot setup, the host ops of
 * SEMANTICS.md, and the driver that runs one guest command per step (plain/swprot here;
 * the TD's build and command loop are in tdx/tdx_td.c, reached through tdx_td.h). */
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

#include "attributes.h"
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
	uint64_t gmem_flags; /* KVM_CREATE_GUEST_MEMFD flags it was made with */
	enum tkvm_backing shared_backing; /* host memory at hva (swprot: anonymous THP/hugetlb) */
};

struct tkvm_vm {
	enum tkvm_flavour flavour;
	struct kvm_vm *vm;
	struct kvm_vcpu *vcpu;
	uint32_t nslots;
	struct tkvm_slot_state slots[TKVM_MAX_SLOTS];
	bool dead;
	enum tkvm_attr_owner attr_owner; /* where KVM keeps this VM's private/shared */
	struct tdx_td *td; /* tdx flavour (tdx/tdx_td.c), else NULL */
	uint64_t gmem_flags; /* every test slot's guest_memfd flags */
	uint64_t max_gpa;    /* end of this VM's guest-physical space */
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
	if (h->vm_types & (1ULL << KVM_X86_TDX_VM)) {
		/* Caps differ per VM type; a TDX VM that is never initialised costs nothing. */
		vm = ioctl(kvm, KVM_CREATE_VM, KVM_X86_TDX_VM);
		if (vm >= 0) {
			h->tdx_vm_created = true;
			h->tdx_gmem_flags = check_ext(vm, KVM_CAP_GUEST_MEMFD_FLAGS);
			h->tdx_vm_attributes = check_ext(vm, KVM_CAP_MEMORY_ATTRIBUTES);
			h->tdx_gmem_attributes = check_ext(vm, KVM_CAP_GUEST_MEMFD_MEMORY_ATTRIBUTES);
			close(vm);
		}
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

/* ---------------------------------------------------------------- tdx backings */

#define WHY(...) (snprintf(why, why_len, __VA_ARGS__), (void)0)

/* The series' tdx_vm_huge_page test slot: GUEST_MEMFD_FLAG_MMAP (SUPPORT_SHARED in older
 * revisions) | GUEST_MEMFD_FLAG_HUGETLB | GUESTMEM_HUGETLB_FLAG_2MB. A backing the host cannot
 * give is refused naming the flag: never a silent 4K downgrade (INV-LIVE would not arm). */
bool tkvm_tdx_gmem_flags(const struct tkvm_host *h, enum tkvm_backing private_backing, bool in_place,
			 uint64_t *flags, char *why, size_t why_len)
{
	uint64_t f = 0;

	if (in_place) {
		if (!(h->tdx_gmem_attributes & KVM_MEMORY_ATTRIBUTE_PRIVATE))
			return WHY("in-place conversion: KVM_CAP_GUEST_MEMFD_MEMORY_ATTRIBUTES lacks PRIVATE on a "
				   "TDX VM (needs the in-place conversion series and kvm.vm_memory_attributes=N)"),
			       false;
		if (!(h->tdx_gmem_flags & GUEST_MEMFD_FLAG_MMAP))
			return WHY("in-place conversion: GUEST_MEMFD_FLAG_MMAP not in KVM_CAP_GUEST_MEMFD_FLAGS "
				   "(0x%llx) of a TDX VM", (unsigned long long)h->tdx_gmem_flags),
			       false;
		f |= GUEST_MEMFD_FLAG_MMAP;
	}
	switch (private_backing) {
	case TKVM_BACK_4K:
		break;
	case TKVM_BACK_THP_2M:
		return WHY("backing thp_2m: guest_memfd has no THP folios in the huge-page series (hugetlb only)"),
		       false;
	case TKVM_BACK_HUGETLB_2M:
	case TKVM_BACK_HUGETLB_1G:
		/* "just don't support S-EPT hugepages with per-VM memory attributes" (seed
		 * L9806-9813): huge private leaves need guest_memfd-owned attributes. */
		if (!(h->tdx_gmem_attributes & KVM_MEMORY_ATTRIBUTE_PRIVATE))
			return WHY("backing %s: TDX huge pages need guest_memfd-owned attributes "
				   "(KVM_CAP_GUEST_MEMFD_MEMORY_ATTRIBUTES lacks PRIVATE; kvm.vm_memory_attributes=N)",
				   private_backing == TKVM_BACK_HUGETLB_2M ? "hugetlb_2m" : "hugetlb_1g"),
			       false;
		if (!(h->tdx_gmem_flags & GUEST_MEMFD_FLAG_HUGETLB))
			return WHY("backing %s: GUEST_MEMFD_FLAG_HUGETLB not in KVM_CAP_GUEST_MEMFD_FLAGS (0x%llx) "
				   "of a TDX VM", private_backing == TKVM_BACK_HUGETLB_2M ? "hugetlb_2m" : "hugetlb_1g",
				   (unsigned long long)h->tdx_gmem_flags),
			       false;
		f |= GUEST_MEMFD_FLAG_HUGETLB | (private_backing == TKVM_BACK_HUGETLB_2M
							 ? TDXHP_GUESTMEM_HUGETLB_FLAG_2MB
							 : TDXHP_GUESTMEM_HUGETLB_FLAG_1GB);
		break;
	}
	*flags = f;
	return true;
}

void tkvm_tdx_backing_plan(const struct tkvm_host *h, char *buf, size_t len)
{
	bool gmem_attr = h->tdx_gmem_attributes & KVM_MEMORY_ATTRIBUTE_PRIVATE;
	bool vm_attr = h->tdx_vm_attributes & KVM_MEMORY_ATTRIBUTE_PRIVATE;
	bool huge = (h->tdx_gmem_flags & GUEST_MEMFD_FLAG_HUGETLB) && gmem_attr;
	bool mmap_ok = h->tdx_gmem_flags & GUEST_MEMFD_FLAG_MMAP;

	if (!h->tdx_vm_created) {
		snprintf(buf, len,
			 "no TDX VM here, so none. On a host with the huge-page series (vm_memory_attributes=N, "
			 "tdx_huge_page=Y) it uses guest_memfd-owned attributes (KVM_SET_MEMORY_ATTRIBUTES2), "
			 "private memory from guest_memfd 4K or hugetlb 2M/1G (GUEST_MEMFD_FLAG_HUGETLB | "
			 "GUESTMEM_HUGETLB_FLAG_2MB/1GB: hugetlb folios are the only way a private 2M leaf appears), "
			 "and in-place conversion over GUEST_MEMFD_FLAG_MMAP when the case asks for it");
		return;
	}
	snprintf(buf, len,
		 "attributes: %s; private memory: guest_memfd 4K%s%s (hugetlb gives 2M folios, the only way a "
		 "private 2M leaf can appear); in-place conversion (shared side = the mmap'd guest_memfd): %s; "
		 "shared side otherwise: anonymous 4K/THP or hugetlb at userspace_addr",
		 vm_attr ? "per-VM (KVM_SET_MEMORY_ATTRIBUTES)"
		 : gmem_attr ? "guest_memfd-owned (KVM_SET_MEMORY_ATTRIBUTES2; vm_memory_attributes=N)"
			     : "none offered on a TDX VM: the tdx flavour cannot run",
		 huge ? ", hugetlb 2M and 1G (GUEST_MEMFD_FLAG_HUGETLB)" : "",
		 huge ? ""
		 : gmem_attr ? "; no hugetlb 2M/1G: GUEST_MEMFD_FLAG_HUGETLB not offered, so huge backings are SKIPs"
			     : "; no hugetlb 2M/1G: TDX huge pages need guest_memfd-owned attributes "
			       "(vm_memory_attributes=N), so huge backings are SKIPs",
		 gmem_attr && mmap_ok ? "yes" : gmem_attr ? "no (GUEST_MEMFD_FLAG_MMAP not offered)"
							   : "no (needs guest_memfd-owned attributes)");
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

/* Reserves maplen plus two align blocks of address space, maps maplen bytes of fd (anonymous
 * memory when fd < 0) lead bytes past the first align boundary in it, and puts the slot's HVA
 * hva_off bytes into that mapping. */
static int map_aligned(struct tkvm_slot_state *s, int fd, uint64_t fd_off, size_t maplen, int extra_flags,
		       size_t align, size_t lead, size_t hva_off)
{
	size_t reserve = maplen + 2 * align;
	char *base = mmap(NULL, reserve, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	char *want;
	void *p;

	if (base == MAP_FAILED)
		return -errno;
	want = (char *)(((uintptr_t)base + align - 1) & ~(align - 1)) + lead;
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
	s->hva = (char *)p + hva_off;
	return 0;
}

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

	return map_aligned(s, fd, fd_off, maplen, extra_flags, align, huge ? 0 : off, huge ? off : 0);
}

/* In place over a hugetlb guest_memfd: file offsets and addresses must both be huge-aligned,
 * so the HVA keeps the gmem offset's alignment (hva_offset cannot move it). */
static int map_gmem_huge(struct tkvm_slot_state *s, uint64_t gmem_off, size_t len, size_t huge)
{
	uint64_t fd_base = gmem_off & ~(uint64_t)(huge - 1);
	size_t maplen = (gmem_off - fd_base + len + huge - 1) & ~(huge - 1);

	return map_aligned(s, s->gmem_fd, fd_base, maplen, 0, huge, 0, gmem_off - fd_base);
}

/* KVM_SET_USER_MEMORY_REGION2 for test slot idx (size 0 deletes it). Not libkvm's wrapper:
 * that opens /dev/kvm to re-check KVM_CAP_USER_MEMORY2 on every call, three syscalls per slot
 * per case; a KVM without it fails here with ENOTTY, which the caller reports. */
static int set_test_slot(struct tkvm_vm *vm, uint32_t idx, uint32_t flags, uint64_t gfn, uint64_t len,
			 void *hva, int gmem_fd, uint64_t gmem_off)
{
	struct kvm_userspace_memory_region2 region = {
		.slot = FIRST_TEST_SLOT + idx,
		.flags = flags,
		.guest_phys_addr = tkvm_gpa_of(vm, gfn),
		.memory_size = len,
		.userspace_addr = (uintptr_t)hva,
		.guest_memfd = gmem_fd < 0 ? 0 : (uint32_t)gmem_fd,
		.guest_memfd_offset = gmem_off,
	};

	return ioctl(vm->vm->fd, KVM_SET_USER_MEMORY_REGION2, &region);
}

static int add_test_slot(struct tkvm_vm *vm, const struct tkvm_config *cfg, uint32_t idx,
			 uint64_t gmem_flags, char *why, size_t why_len)
{
	struct tkvm_slot_state *s = &vm->slots[idx];
	size_t len = s->cfg.npages * PAGE_4K;
	uint64_t file_len = (s->cfg.gmem_offset + s->cfg.npages) * PAGE_4K;
	uint64_t gmem_off = s->cfg.gmem_offset * PAGE_4K;
	uint32_t flags = 0;
	/* A hugetlb guest_memfd comes in whole huge pages: its size is rounded up to one. */
	size_t huge = gmem_flags & GUEST_MEMFD_FLAG_HUGETLB
			      ? (cfg->private_backing == TKVM_BACK_HUGETLB_1G ? (1ULL << 30) : SZ_2M_BYTES)
			      : 0;
	int r;

	if (huge)
		file_len = (file_len + huge - 1) & ~(uint64_t)(huge - 1);
	s->gmem_fd = s->shared_fd = -1;
	s->shared_backing = cfg->backing;  /* plain: tkvm_create admits 4K only */
	if (cfg->flavour == TKVM_PLAIN && !(gmem_flags & GUEST_MEMFD_FLAG_MMAP)) {
		/* No mmap-able guest_memfd: the memory is a memfd, punch hole acts on it. */
		s->shared_fd = memfd_create("tdxhp-slot", MFD_CLOEXEC);
		if (s->shared_fd < 0 || ftruncate(s->shared_fd, file_len))
			return WHY("memfd for slot %u: %s", s->cfg.id, strerror(errno)), -errno;
		r = map_slot_memory(s, s->shared_fd, gmem_off, len, 0, 0);
	} else {
		s->gmem_flags = gmem_flags;
		s->gmem_fd = __vm_create_guest_memfd(vm->vm, file_len, gmem_flags);
		if (s->gmem_fd < 0)
			return WHY("KVM_CREATE_GUEST_MEMFD(flags 0x%llx) for slot %u: %s",
				   (unsigned long long)gmem_flags, s->cfg.id, strerror(errno)), -errno;
		flags |= KVM_MEM_GUEST_MEMFD;
		if (gmem_flags & GUEST_MEMFD_FLAG_MMAP) {
			/* plain, or tdx in place: the shared side is the guest_memfd itself (a hugetlb
			 * one mapped from a huge boundary, as map_slot_memory does for hugetlb). */
			r = huge ? map_gmem_huge(s, gmem_off, len, huge)
				 : map_slot_memory(s, s->gmem_fd, gmem_off, len, 0, 0);
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

	r = set_test_slot(vm, idx, flags, s->cfg.base_gfn, len, s->hva, s->gmem_fd, gmem_off);
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
	/* The guest code is in this very binary; argv[0] is a bare name when run from $PATH. */
	kvm_vm_elf_load(vm, "/proc/self/exe");
	slot0 = memslot2region(vm, 0);
	ucall_init(vm, slot0->region.guest_phys_addr + slot0->region.memory_size);
	kvm_arch_vm_post_create(vm);
	return vm;
}

/* tdx_td.c's view of its owner (struct tdx_td_host): the scenario's gfn space and the
 * conversion that records attributes here. */
static uint64_t host_gpa_of(void *ctx, uint64_t gfn)
{
	return tkvm_gpa_of(ctx, gfn);
}

static uint64_t host_gfn_of(void *ctx, uint64_t gpa)
{
	return tkvm_gfn_of(ctx, gpa);
}

static int host_convert(void *ctx, uint64_t gfn, uint64_t npages, bool to_private)
{
	return tkvm_set_attributes(ctx, gfn, npages, to_private);
}

/* -EOPNOTSUPP with why set for a config no VM of this kind can take (before any VM is built),
 * else 0. */
static int config_refusal(const struct tkvm_config *cfg, char *why, size_t why_len)
{
	if (cfg->nslots == 0 || cfg->nslots > TKVM_MAX_SLOTS)
		return WHY("%u memslots (1..%d supported)", cfg->nslots, TKVM_MAX_SLOTS), -EOPNOTSUPP;
	if (cfg->backing != TKVM_BACK_4K && cfg->flavour == TKVM_PLAIN)
		return WHY("plain VM: its memory is the guest_memfd/memfd file (4K folios); THP or "
			   "hugetlb shared memory exists only beside private memory (swprot)"),
		       -EOPNOTSUPP;
	if (cfg->flavour != TKVM_TDX && (cfg->private_backing != TKVM_BACK_4K || cfg->in_place))
		return WHY("%s: guest_memfd is 4K and not converted in place here (tdx only)",
			   tkvm_flavour_name(cfg->flavour)),
		       -EOPNOTSUPP;
	return 0;
}

/* The test memslots of cfg on vm, each starting shared or private as cfg says (the TD is
 * finalized by the caller). 0 or -errno with why set. */
static int add_test_slots(struct tkvm_vm *vm, const struct tkvm_config *cfg, char *why, size_t why_len)
{
	uint32_t i;

	vm->nslots = cfg->nslots;
	for (i = 0; i < cfg->nslots; i++) {
		vm->slots[i].cfg = cfg->slots[i];
		vm->slots[i].gmem_fd = vm->slots[i].shared_fd = -1;
	}
	for (i = 0; i < cfg->nslots; i++) {
		const struct tkvm_slot *s = &cfg->slots[i];
		int r;

		if (tkvm_gpa_of(vm, s->base_gfn + s->npages) > vm->max_gpa) {
			WHY("slot %u ends at gfn 0x%llx, beyond this VM's %u-bit guest physical space",
			    s->id, (unsigned long long)(s->base_gfn + s->npages), vm->vm->pa_bits);
			return -EOPNOTSUPP;
		}
		if ((r = add_test_slot(vm, cfg, i, vm->gmem_flags, why, why_len)))
			return r;
	}
	/* A guest_memfd owning the attributes starts private unless made INIT_SHARED: say
	 * every slot's starting attribute explicitly, so both owners begin alike. */
	if (cfg->flavour != TKVM_PLAIN && (cfg->initially_private || vm->attr_owner == TKVM_ATTR_GMEM)) {
		for (i = 0; i < cfg->nslots; i++) {
			int r = tkvm_set_attributes(vm, cfg->slots[i].base_gfn, cfg->slots[i].npages,
						    cfg->initially_private);

			if (r) {
				WHY("%s(%s) slot %u: %s (errno %d)%s%s",
				    vm->attr_owner == TKVM_ATTR_VM ? "KVM_SET_MEMORY_ATTRIBUTES" : "KVM_SET_MEMORY_ATTRIBUTES2",
				    cfg->initially_private ? "private" : "shared", cfg->slots[i].id, strerror(-r), -r,
				    vm->td ? "; TD state: " : "",
				    vm->td ? tdx_td_state_name(tdx_td_state(vm->td)) : "");
				return r;
			}
		}
	}
	return 0;
}

/* NULL with errno = err (tkvm_create's contract); the VM built so far is released. */
static struct tkvm_vm *create_failed(struct tkvm_vm *vm, int err)
{
	tkvm_destroy(vm);
	errno = err < 0 ? -err : err;
	return NULL;
}

struct tkvm_vm *tkvm_create(const struct tkvm_config *cfg, char *why, size_t why_len)
{
	struct tkvm_host probed;
	const struct tkvm_host *hp = cfg->host;
	struct tkvm_vm *vm;
	uint64_t gmem_flags = 0;
	struct vm_shape shape = VM_SHAPE_DEFAULT;

	if (config_refusal(cfg, why, why_len))
		return create_failed(NULL, EOPNOTSUPP);

	if (!hp) {
		tkvm_probe_host(&probed);
		hp = &probed;
	}
	if (!hp->dev_kvm)
		return WHY("%s", hp->error), create_failed(NULL, EOPNOTSUPP);
	if (cfg->flavour == TKVM_TDX) {
		if (!(hp->vm_types & (1ULL << KVM_X86_TDX_VM)))
			return WHY("KVM_X86_TDX_VM not in KVM_CAP_VM_TYPES"), create_failed(NULL, EOPNOTSUPP);
		if (!(hp->tdx_vm_attributes & KVM_MEMORY_ATTRIBUTE_PRIVATE) &&
		    !(hp->tdx_gmem_attributes & KVM_MEMORY_ATTRIBUTE_PRIVATE))
			return WHY("a TDX VM offers PRIVATE in neither KVM_CAP_MEMORY_ATTRIBUTES nor "
				   "KVM_CAP_GUEST_MEMFD_MEMORY_ATTRIBUTES"),
			       create_failed(NULL, EOPNOTSUPP);
		if (!tkvm_tdx_gmem_flags(hp, cfg->private_backing, cfg->in_place, &gmem_flags, why, why_len))
			return create_failed(NULL, EOPNOTSUPP);
	} else if (cfg->flavour == TKVM_SWPROT) {
		if (!(hp->vm_types & (1ULL << KVM_X86_SW_PROTECTED_VM)))
			return WHY("KVM_X86_SW_PROTECTED_VM not in KVM_CAP_VM_TYPES"), create_failed(NULL, EOPNOTSUPP);
		shape.type = KVM_X86_SW_PROTECTED_VM;
	} else {
		if (hp->gmem_flags & GUEST_MEMFD_FLAG_MMAP)
			gmem_flags = GUEST_MEMFD_FLAG_MMAP |
				     (hp->gmem_flags & GUEST_MEMFD_FLAG_INIT_SHARED);
	}

	/* libkvm prints its random seed and reads kvm params in this constructor, which tdxhp
	 * strips from kvm_util.o so the binary starts on hosts without KVM. */
	kvm_selftest_init();

	vm = calloc(1, sizeof(*vm));
	vm->flavour = cfg->flavour;
	vm->attr_owner = TKVM_ATTR_VM;
	/* libkvm copies the running ELF into memslot 0 but sizes that slot for small test
	 * binaries; tdxhp (sanitized, C++) is larger, so reserve room for all of it. */
	if (cfg->flavour == TKVM_TDX) {
		/* The TD's own build (tdx/tdx_td.c): its vCPU starts at the reset vector, not here.
		 * In-place slots need the gmem ioctl; otherwise per-VM attributes where offered. */
		const struct tdx_td_host hooks = { vm, host_gpa_of, host_gfn_of, host_convert };

		vm->attr_owner = !cfg->in_place && !(gmem_flags & GUEST_MEMFD_FLAG_HUGETLB) &&
						 (hp->tdx_vm_attributes & KVM_MEMORY_ATTRIBUTE_PRIVATE)
					 ? TKVM_ATTR_VM : TKVM_ATTR_GMEM;
		vm->td = tdx_td_create(elf_pages() + 1024, vm->attr_owner, &hooks, why, why_len);
		if (!vm->td) {
			int e = errno ? errno : EIO;

			free(vm);
			return create_failed(NULL, e);
		}
		vm->vm = tdx_td_vm(vm->td);
		vm->vcpu = tdx_td_vcpu(vm->td);
	} else {
		vm->vm = create_vm_with_room(shape, elf_pages() + 1024);
		vm->vcpu = vm_vcpu_add(vm->vm, 0, guest_command_loop);
	}
	vm->gmem_flags = gmem_flags;
	vm->max_gpa = vm->td ? tdx_td_gpa_limit(vm->td)
			     : 1ULL << (vm->vm->pa_bits < 46 ? vm->vm->pa_bits : 46);
	{
		int r = add_test_slots(vm, cfg, why, why_len);

		if (r)
			return create_failed(vm, r);
	}
	if (vm->td) {
		int r = tdx_td_finalize(vm->td, cfg, why, why_len);

		if (r)
			return create_failed(vm, r);
	}
	return vm;
}

/* The slot's host memory and its guest_memfd or memfd (the memslot itself is KVM's). */
static void free_slot_memory(struct tkvm_slot_state *s)
{
	if (s->reserve)
		munmap(s->reserve, s->reserve_len);
	if (s->gmem_fd >= 0)
		close(s->gmem_fd);
	if (s->shared_fd >= 0)
		close(s->shared_fd);
}

void tkvm_release(struct tkvm_vm *vm)
{
	uint32_t i;

	if (vm->td)
		return; /* a TD is measured at build: never reset, only destroyed */
	for (i = 0; i < vm->nslots; i++) {
		struct tkvm_slot_state *s = &vm->slots[i];

		if (!vm->dead && vm->flavour != TKVM_PLAIN && vm->attr_owner == TKVM_ATTR_VM)
			tkvm_set_attributes(vm, s->cfg.base_gfn, s->cfg.npages, false);
		if (!vm->dead && s->hva)
			set_test_slot(vm, i, 0, s->cfg.base_gfn, 0, NULL, -1, 0);
		free_slot_memory(s);
		memset(s, 0, sizeof(*s));
		s->gmem_fd = s->shared_fd = -1;
	}
	vm->nslots = 0;
}

int tkvm_reset(struct tkvm_vm *vm, const struct tkvm_config *cfg, char *why, size_t why_len)
{
	int r;

	if (vm->td || vm->dead || cfg->flavour != vm->flavour)
		return WHY("%s VM cannot be reset to this config (a TD is measured at build; a dead "
			   "VM fails every ioctl)", tkvm_flavour_name(vm->flavour)),
		       -EAGAIN;
	if ((r = config_refusal(cfg, why, why_len)))
		return r;
	tkvm_release(vm);
	return add_test_slots(vm, cfg, why, why_len);
}

void tkvm_destroy(struct tkvm_vm *vm)
{
	uint32_t i;

	if (!vm)
		return;
	if (vm->vm && vm->dead) {
		/* A KVM_BUG_ON'd VM fails every ioctl with -EIO, and kvm_vm_free asserts on the
		 * memslot deletes: close its fds and leave libkvm's bookkeeping to process exit. */
		if (vm->vcpu)
			close(vm->vcpu->fd);
		close(vm->vm->fd);
		close(vm->vm->kvm_fd);
	} else if (vm->vm) {
		kvm_vm_free(vm->vm);
	}
	tdx_td_free(vm->td);
	for (i = 0; i < vm->nslots; i++)
		free_slot_memory(&vm->slots[i]);
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

	if (npages == 0)
		return -EINVAL;
	if (vm->attr_owner == TKVM_ATTR_VM) {
		/* Attributes belong to the VM: any gfn range, slots or holes (kvm_vm_set_mem_attributes). */
		if (ioctl(vm->vm->fd, KVM_SET_MEMORY_ATTRIBUTES, &attr))
			return note_dead(vm, -errno);
	} else {
		/* Attributes belong to each slot's guest_memfd: convert the part of the range each
		 * slot holds; a hole has no file and so nothing to convert. */
		uint64_t end = gfn + npages;
		uint32_t i;

		for (i = 0; i < vm->nslots; i++) {
			struct tkvm_slot_state *s = &vm->slots[i];
			uint64_t lo = s->cfg.base_gfn > gfn ? s->cfg.base_gfn : gfn;
			uint64_t hi = s->cfg.base_gfn + s->cfg.npages < end ? s->cfg.base_gfn + s->cfg.npages : end;
			int r;

			if (lo >= hi || s->gmem_fd < 0)
				continue;
			r = tkvm_attr_set_gmem(s->gmem_fd, (s->cfg.gmem_offset + lo - s->cfg.base_gfn) * PAGE_4K,
					       (hi - lo) * PAGE_4K, to_private);
			if (r)
				return note_dead(vm, r);
		}
	}
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
		return note_dead(vm, tdx_td_access(vm->td, gfn, write, value, res));
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
		return vm->dead ? -EIO : note_dead(vm, tdx_td_accept(vm->td, gfn, level, res));
	return -EOPNOTSUPP;  /* TDG.MEM.PAGE.ACCEPT exists only in a TD */
}

int tkvm_guest_map_gpa(struct tkvm_vm *vm, uint64_t gfn, uint64_t npages, bool to_private,
		       struct tkvm_guest_result *res)
{
	memset(res, 0, sizeof(*res));
	if (vm->td)
		return vm->dead ? -EIO
				: note_dead(vm, tdx_td_map_gpa(vm->td, gfn, npages, to_private, res));
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
