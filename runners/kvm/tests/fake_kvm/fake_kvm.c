/* The fake KVM (fake_kvm.h). Rules are cited next to the check that enforces them:
 *   tdx.c   = the series' arch/x86/kvm/vmx/tdx.c (intel/tdx; torvalds/linux 3829d81b by name),
 *   seed    = /work/shared/seeds/001_4009ef0f1366aa2f.txt (the huge-page series),
 *   module  = intel/tdx-module tdx_1.5 src/td_dispatcher/vm_exits/tdg_mem_page_accept.c,
 *   gmem    = the in-place conversion series' virt/kvm/guest_memfd.c and kvm_main.c hunks.
 * Single-threaded by design: the tests drive one TD at a time. */
#define _GNU_SOURCE
#include "fake_kvm.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <linux/kvm.h>

#include "guest.h"
#include "tdx_abi.h"
#include "tdx_guest.h"
#include "tdx_layout.h"
#include "uapi_compat.h"

_Static_assert(FAKE_GMEM_MMAP == GUEST_MEMFD_FLAG_MMAP && FAKE_GMEM_HUGETLB == GUEST_MEMFD_FLAG_HUGETLB &&
		       FAKE_GMEM_HUGETLB_2MB == TDXHP_GUESTMEM_HUGETLB_FLAG_2MB &&
		       FAKE_GMEM_HUGETLB_1GB == TDXHP_GUESTMEM_HUGETLB_FLAG_1GB, "flag spellings");

int __real_ioctl(int fd, unsigned long req, ...);
int __real_open(const char *path, int flags, ...);
int __real_close(int fd);

#define PAGE 4096ULL
#define SZ_2M (2ULL << 20)
#define MAX_FD 4096
#define MAX_SLOTS 32
#define MAX_GMEM 64
#define TDX_MAP_GPA_MAX_LEN SZ_2M /* tdx.c __tdx_map_gpa: one exit per 2M */
#define TDVMCALL_INVALID_OPERAND 0x8000000000000000ULL
#define KVM_HC_MAP_GPA_RANGE_NR 12
#define EXIT_REASON_EPT_VIOLATION 48

/* ---------------------------------------------------------------- a small u64 map */

struct map {
	uint64_t *k, *v;
	size_t cap, n;
};

static uint64_t *map_find(struct map *m, uint64_t key, bool add)
{
	size_t i;

	if (add && (m->n + 1) * 2 > m->cap) {
		struct map g = { calloc(m->cap ? m->cap * 2 : 1024, 8), calloc(m->cap ? m->cap * 2 : 1024, 8),
				 m->cap ? m->cap * 2 : 1024, 0 };
		for (i = 0; i < m->cap; i++)
			if (m->k[i])
				*map_find(&g, m->k[i] - 1, true) = m->v[i];
		free(m->k);
		free(m->v);
		*m = g;
	}
	if (!m->cap)
		return NULL;
	for (i = (key * 0x9E3779B97F4A7C15ULL) & (m->cap - 1);; i = (i + 1) & (m->cap - 1)) {
		if (m->k[i] == key + 1)
			return &m->v[i];
		if (!m->k[i]) {
			if (!add)
				return NULL;
			m->k[i] = key + 1;
			m->n++;
			return &m->v[i];
		}
	}
}

static void map_erase(struct map *m, uint64_t key)
{
	/* Rebuild without the key: simple and rare enough here. */
	struct map g = { 0 };
	size_t i;

	if (!map_find(m, key, false))
		return;
	for (i = 0; i < m->cap; i++)
		if (m->k[i] && m->k[i] != key + 1)
			*map_find(&g, m->k[i] - 1, true) = m->v[i];
	free(m->k);
	free(m->v);
	*m = g;
}

static void map_clear(struct map *m)
{
	free(m->k);
	free(m->v);
	memset(m, 0, sizeof(*m));
}

/* ---------------------------------------------------------------- objects */

enum kind { K_NONE = 0, K_DEV, K_VM, K_VCPU, K_GMEM };

struct gmem {
	bool used;
	uint64_t size, flags;
	struct fvm *vm;
};

struct fslot {
	bool used;
	uint32_t id, flags;
	uint64_t gpa, size, hva, gmem_off;
	int gmem; /* index into gmems, -1 none */
};

enum td_state { TD_CREATED, TD_INITIALIZED, TD_RUNNABLE };

/* S-EPT leaf of one 4K gfn: present | accepted | level (a 2M leaf sets all 512). */
#define LEAF_PRESENT 1ULL
#define LEAF_ACCEPTED 2ULL
#define LEAF_LEVEL(v) ((v) >> 8)

struct fvm {
	int fd, type;
	bool dead, x2apic, split_irqchip, map_gpa_exit;
	enum td_state state;
	unsigned gpaw;
	struct fslot slots[MAX_SLOTS];
	struct map vm_attrs;  /* gfn -> 1 private (per-VM attributes) */
	struct map leaves;    /* gfn -> LEAF_* */
	struct map content;   /* gfn -> first 8 bytes of the private page */
	/* the one vCPU */
	int vcpu_fd;
	struct kvm_run *run;
	bool vcpu_init, vcpu_has_x2apic, cpuid_set;
	unsigned vcpu_maxpa;
	/* a MapGPA in flight (tdx.c tdx_map_gpa: map_gpa_next/end) */
	bool map_gpa_active;
	uint64_t map_gpa_next, map_gpa_end;
};

static struct {
	struct fake_kvm_host host;
	struct fake_kvm_counters c;
	enum kind kind[MAX_FD];
	void *obj[MAX_FD];
	struct gmem gmems[MAX_GMEM];
	struct map gmem_attrs; /* (gmem << 40 | page) -> 1 private */
	struct fvm *td;        /* the TD the tests look at */
	char refusal[200];
} F;

struct fake_kvm_host fake_kvm_defaults(void)
{
	struct fake_kvm_host h = {
		.vm_memory_attributes = false, .tdx = true, .tdx_huge_page = true,
		.gmem_flags = GUEST_MEMFD_FLAG_MMAP | GUEST_MEMFD_FLAG_INIT_SHARED | GUEST_MEMFD_FLAG_HUGETLB,
		.guest_pa_bits = 48, .maxphyaddr = 52,
	};
	return h;
}

void fake_kvm_reset(const struct fake_kvm_host *h)
{
	int i;

	map_clear(&F.gmem_attrs);
	for (i = 0; i < MAX_FD; i++)
		if (F.kind[i] == K_VM && F.obj[i])
			((struct fvm *)F.obj[i])->fd = -1; /* leaked on purpose: the test process ends */
	memset(&F, 0, sizeof(F));
	F.host = h ? *h : fake_kvm_defaults();
}

const struct fake_kvm_counters *fake_kvm_counters(void)
{
	return &F.c;
}

const char *fake_kvm_last_refusal(void)
{
	return F.refusal;
}

/* A refused ioctl: remember which rule, return -1 with errno like the kernel. */
static int refuse(int err, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(F.refusal, sizeof(F.refusal), fmt, ap);
	va_end(ap);
	errno = err;
	return -1;
}

static int new_fd(enum kind k, void *obj, const char *name)
{
	int fd = memfd_create(name, MFD_CLOEXEC);

	if (fd < 0 || fd >= MAX_FD)
		abort();
	F.kind[fd] = k;
	F.obj[fd] = obj;
	return fd;
}

/* ---------------------------------------------------------------- memory model */

static struct fslot *slot_of_gpa(struct fvm *vm, uint64_t gpa)
{
	int i;

	for (i = 0; i < MAX_SLOTS; i++) {
		struct fslot *s = &vm->slots[i];

		if (s->used && gpa >= s->gpa && gpa < s->gpa + s->size)
			return s;
	}
	return NULL;
}

static bool attrs_gmem_owned(void)
{
	return !F.host.vm_memory_attributes;
}

/* KVM's attribute of a gfn: per VM, or per gmem offset (gmem: a guest_memfd made without
 * INIT_SHARED starts private). */
static int attr_of(struct fvm *vm, uint64_t gpa)
{
	struct fslot *s = slot_of_gpa(vm, gpa);
	uint64_t *v;

	if (!attrs_gmem_owned()) {
		v = map_find(&vm->vm_attrs, gpa / PAGE, false);
		return v && *v;
	}
	if (!s || s->gmem < 0)
		return -1;
	v = map_find(&F.gmem_attrs, ((uint64_t)s->gmem << 40) | ((s->gmem_off + gpa - s->gpa) / PAGE), false);
	if (v)
		return (int)*v;
	return !(F.gmems[s->gmem].flags & GUEST_MEMFD_FLAG_INIT_SHARED);
}

/* A conversion zaps the private leaves of the range (kvm_vm_set_mem_attributes ->
 * kvm_unmap_gfn_range; gmem: kvm_gmem_convert). */
static void zap(struct fvm *vm, uint64_t gpa, uint64_t size)
{
	uint64_t g;

	for (g = gpa / PAGE; g < (gpa + size) / PAGE; g++) {
		map_erase(&vm->leaves, g);
		map_erase(&vm->content, g);
	}
}

/* ---------------------------------------------------------------- /dev/kvm and VM ioctls */

static uint64_t check_extension(struct fvm *vm, long cap)
{
	bool tdx = vm && vm->type == KVM_X86_TDX_VM;

	switch (cap) {
	case KVM_CAP_IMMEDIATE_EXIT:
	case KVM_CAP_USER_MEMORY:
	case KVM_CAP_USER_MEMORY2:
	case KVM_CAP_GUEST_MEMFD:
		return 1;
	case KVM_CAP_VM_TYPES:
		return (1ULL << KVM_X86_DEFAULT_VM) | (F.host.tdx ? 1ULL << KVM_X86_TDX_VM : 0);
	case KVM_CAP_GUEST_MEMFD_FLAGS:
		return tdx ? F.host.gmem_flags : GUEST_MEMFD_FLAG_MMAP;
	case KVM_CAP_MEMORY_ATTRIBUTES:
		/* gmem kvm_main.c: KVM_CAP_MEMORY_ATTRIBUTES is 0 with vm_memory_attributes=N. */
		return tdx && F.host.vm_memory_attributes ? KVM_MEMORY_ATTRIBUTE_PRIVATE : 0;
	case KVM_CAP_GUEST_MEMFD_MEMORY_ATTRIBUTES:
		return tdx && attrs_gmem_owned() ? KVM_MEMORY_ATTRIBUTE_PRIVATE : 0;
	case KVM_CAP_MAX_VCPUS:
	case KVM_CAP_NR_VCPUS:
		return 1;
	default:
		return 0;
	}
}

/* The CPUID KVM supports: enough leaves for libkvm and the TD build; x2APIC offered. */
static void supported_cpuid(struct kvm_cpuid2 *c, uint32_t room)
{
	static const uint32_t leaves[][2] = { { 0, 0 }, { 1, 0 }, { 7, 0 }, { 0xd, 0 }, { 0xd, 1 },
					      { 0x80000000, 0 }, { 0x80000001, 0 }, { 0x80000008, 0 } };
	uint32_t i, n = sizeof(leaves) / sizeof(leaves[0]);

	c->nent = n < room ? n : room;
	for (i = 0; i < c->nent; i++) {
		struct kvm_cpuid_entry2 *e = &c->entries[i];

		memset(e, 0, sizeof(*e));
		e->function = leaves[i][0];
		e->index = leaves[i][1];
		if (e->function == 0xd)
			e->flags = KVM_CPUID_FLAG_SIGNIFCANT_INDEX;
		switch (e->function) {
		case 0:
			e->eax = 0xd;
			e->ebx = 0x756e6547; /* GenuineIntel */
			e->edx = 0x49656e69;
			e->ecx = 0x6c65746e;
			break;
		case 1:
			e->ecx = 1u << 21; /* x2APIC */
			e->edx = 1u << 0;
			break;
		case 0x80000000:
			e->eax = 0x80000008;
			break;
		case 0x80000008:
			e->eax = (F.host.guest_pa_bits & 0xff) << 16 | 48u << 8 | (F.host.maxphyaddr & 0xff);
			break;
		}
	}
}

static int dev_ioctl(unsigned long req, void *arg)
{
	switch (req) {
	case KVM_GET_API_VERSION:
		return KVM_API_VERSION;
	case KVM_CHECK_EXTENSION:
		return (int)check_extension(NULL, (long)arg);
	case KVM_GET_VCPU_MMAP_SIZE:
		return 3 * PAGE;
	case KVM_GET_SUPPORTED_CPUID: {
		struct kvm_cpuid2 *c = arg;

		supported_cpuid(c, c->nent);
		return 0;
	}
	case KVM_CREATE_VM: {
		long type = (long)arg;
		struct fvm *vm;

		if (type != KVM_X86_DEFAULT_VM && !(type == KVM_X86_TDX_VM && F.host.tdx))
			return refuse(EINVAL, "KVM_CREATE_VM: type %ld not in KVM_CAP_VM_TYPES", type);
		vm = calloc(1, sizeof(*vm));
		vm->type = (int)type;
		vm->vcpu_fd = -1;
		vm->fd = new_fd(K_VM, vm, "fake-kvm-vm");
		if (type == KVM_X86_TDX_VM)
			F.td = vm;
		return vm->fd;
	}
	default:
		F.c.unhandled_ioctls++;
		fprintf(stderr, "fake kvm: unhandled /dev/kvm ioctl 0x%lx\n", req);
		return refuse(ENOTTY, "/dev/kvm ioctl 0x%lx", req);
	}
}

static int vm_set_region(struct fvm *vm, const struct kvm_userspace_memory_region2 *r)
{
	struct fslot *s = NULL;
	int i;

	for (i = 0; i < MAX_SLOTS; i++)
		if (vm->slots[i].used && vm->slots[i].id == r->slot)
			s = &vm->slots[i];
	if (r->memory_size == 0) {
		if (s)
			s->used = false;
		return 0;
	}
	if ((r->guest_phys_addr | r->memory_size | r->userspace_addr) & (PAGE - 1))
		return refuse(EINVAL, "KVM_SET_USER_MEMORY_REGION2: unaligned slot %u", r->slot);
	if (vm->type == KVM_X86_TDX_VM && !(r->flags & KVM_MEM_GUEST_MEMFD))
		/* tdx.c: a TD's memslots are private-capable (kvm_arch_has_private_mem). */
		return refuse(EINVAL, "KVM_SET_USER_MEMORY_REGION2: TD slot %u without KVM_MEM_GUEST_MEMFD", r->slot);
	if (!s)
		for (i = 0; i < MAX_SLOTS && !s; i++)
			if (!vm->slots[i].used)
				s = &vm->slots[i];
	memset(s, 0, sizeof(*s));
	s->gmem = -1;
	if (r->flags & KVM_MEM_GUEST_MEMFD) {
		int fd = (int)r->guest_memfd;
		struct gmem *g = fd >= 0 && fd < MAX_FD && F.kind[fd] == K_GMEM ? F.obj[fd] : NULL;

		if (!g || g->vm != vm)
			return refuse(EINVAL, "KVM_SET_USER_MEMORY_REGION2: slot %u guest_memfd %d is not this VM's",
				      r->slot, fd);
		if ((r->guest_memfd_offset & (PAGE - 1)) || r->guest_memfd_offset + r->memory_size > g->size)
			return refuse(EINVAL, "KVM_SET_USER_MEMORY_REGION2: slot %u outside its guest_memfd", r->slot);
		s->gmem = (int)(g - F.gmems);
		s->gmem_off = r->guest_memfd_offset;
	}
	s->used = true;
	s->id = r->slot;
	s->flags = r->flags;
	s->gpa = r->guest_phys_addr;
	s->size = r->memory_size;
	s->hva = r->userspace_addr;
	return 0;
}

static int vm_create_gmem(struct fvm *vm, struct kvm_create_guest_memfd *c)
{
	uint64_t allowed = check_extension(vm, KVM_CAP_GUEST_MEMFD_FLAGS);
	uint64_t base_flags = c->flags & ~((uint64_t)0x3f << TDXHP_GUESTMEM_HUGETLB_FLAG_SHIFT);
	uint64_t huge = SZ_2M;
	int i;

	/* guest_memfd.c kvm_gmem_create: unknown flags are -EINVAL. */
	if (base_flags & ~allowed)
		return refuse(EINVAL, "KVM_CREATE_GUEST_MEMFD: flags 0x%llx not in 0x%llx",
			      (unsigned long long)c->flags, (unsigned long long)allowed);
	if ((c->flags >> TDXHP_GUESTMEM_HUGETLB_FLAG_SHIFT) && !(c->flags & GUEST_MEMFD_FLAG_HUGETLB))
		return refuse(EINVAL, "KVM_CREATE_GUEST_MEMFD: a hugetlb size without GUEST_MEMFD_FLAG_HUGETLB");
	if ((c->flags & ((uint64_t)0x3f << TDXHP_GUESTMEM_HUGETLB_FLAG_SHIFT)) == TDXHP_GUESTMEM_HUGETLB_FLAG_1GB)
		huge = 1ULL << 30;
	if (!c->size || (c->size & (PAGE - 1)) ||
	    ((c->flags & GUEST_MEMFD_FLAG_HUGETLB) && (c->size & (huge - 1))))
		return refuse(EINVAL, "KVM_CREATE_GUEST_MEMFD: size 0x%llx not a multiple of the page size",
			      (unsigned long long)c->size);
	for (i = 0; i < MAX_GMEM; i++)
		if (!F.gmems[i].used)
			break;
	if (i == MAX_GMEM)
		abort();
	F.gmems[i] = (struct gmem){ .used = true, .size = c->size, .flags = c->flags, .vm = vm };
	if (vm->type == KVM_X86_TDX_VM)
		F.c.last_gmem_flags = c->flags;
	{
		int fd = new_fd(K_GMEM, &F.gmems[i], "fake-gmem");

		/* The memfd stands in for the file: in place, the flavour mmaps it as shared memory. */
		if (ftruncate(fd, (off_t)c->size))
			abort();
		return fd;
	}
}

static int vm_set_attributes(struct fvm *vm, struct kvm_memory_attributes *a)
{
	uint64_t g;

	F.c.vm_attr_ioctls++;
	/* gmem kvm_main.c hunk: case KVM_SET_MEMORY_ATTRIBUTES: r = -ENOTTY;
	 * if (!vm_memory_attributes) goto out; */
	if (!F.host.vm_memory_attributes)
		return refuse(ENOTTY, "KVM_SET_MEMORY_ATTRIBUTES with vm_memory_attributes=N");
	if (a->flags || (a->attributes & ~KVM_MEMORY_ATTRIBUTE_PRIVATE) || !a->size ||
	    ((a->address | a->size) & (PAGE - 1)))
		return refuse(EINVAL, "KVM_SET_MEMORY_ATTRIBUTES: bad range or attributes");
	for (g = a->address / PAGE; g < (a->address + a->size) / PAGE; g++)
		*map_find(&vm->vm_attrs, g, true) = a->attributes ? 1 : 0;
	zap(vm, a->address, a->size);
	return 0;
}

static int vm_memory_encrypt_op(struct fvm *vm, struct tdxhp_kvm_tdx_cmd *c)
{
	if (vm->type != KVM_X86_TDX_VM)
		return refuse(ENOTTY, "KVM_MEMORY_ENCRYPT_OP on a non-TD");
	/* tdx.c tdx_vm_ioctl: hw_error must be 0 on input. */
	if (c->hw_error)
		return refuse(EINVAL, "KVM_MEMORY_ENCRYPT_OP: hw_error not 0");
	switch (c->id) {
	case TDXHP_KVM_TDX_CAPABILITIES: {
		struct tdxhp_kvm_tdx_capabilities *caps = (void *)(uintptr_t)c->data;
		const uint32_t nconf = 8;

		if (c->flags)
			return refuse(EINVAL, "KVM_TDX_CAPABILITIES: flags");
		/* tdx.c tdx_get_capabilities: nent < num_cpuid_config -> -E2BIG. */
		if (caps->cpuid.nent < nconf) {
			caps->cpuid.nent = nconf;
			return refuse(E2BIG, "KVM_TDX_CAPABILITIES: nent below the config count");
		}
		caps->supported_attrs = 1ULL << 28; /* SEPT_VE_DISABLE */
		caps->supported_xfam = 0x3;
		supported_cpuid(&caps->cpuid, nconf);
		for (uint32_t i = 0; i < caps->cpuid.nent; i++) { /* every bit configurable */
			struct kvm_cpuid_entry2 *e = &caps->cpuid.entries[i];

			e->eax = e->ebx = e->ecx = e->edx = 0xffffffff;
		}
		return 0;
	}
	case TDXHP_KVM_TDX_INIT_VM: {
		struct tdxhp_kvm_tdx_init_vm *iv = (void *)(uintptr_t)c->data;
		uint32_t i, j;
		unsigned gpaw = 0;

		if (vm->state != TD_CREATED)
			return refuse(EINVAL, "KVM_TDX_INIT_VM: TD already initialized");
		if (F.host.fail_init_vm)
			return refuse(F.host.fail_init_vm, "KVM_TDX_INIT_VM: injected failure");
		/* tdx.c tdx_td_init: nent > KVM_MAX_CPUID_ENTRIES -> E2BIG; reserved must be 0. */
		if (iv->cpuid.nent > 256)
			return refuse(E2BIG, "KVM_TDX_INIT_VM: nent > 256");
		for (i = 0; i < 12; i++)
			if (iv->reserved[i])
				return refuse(EINVAL, "KVM_TDX_INIT_VM: reserved not zero");
		/* setup_tdparams: attributes the module does not support are refused. */
		if (iv->attributes & ~(1ULL << 28))
			return refuse(EINVAL, "KVM_TDX_INIT_VM: attributes 0x%llx not supported",
				      (unsigned long long)iv->attributes);
		/* setup_tdparams_cpuids: every entry must be a leaf the module configures. */
		for (i = 0; i < iv->cpuid.nent; i++) {
			struct { struct kvm_cpuid2 h; struct kvm_cpuid_entry2 e[8]; } conf;
			bool found = false;

			supported_cpuid(&conf.h, 8);
			for (j = 0; j < conf.h.nent; j++)
				found |= conf.h.entries[j].function == iv->cpuid.entries[i].function &&
					 conf.h.entries[j].index == iv->cpuid.entries[i].index;
			if (!found)
				return refuse(EINVAL, "KVM_TDX_INIT_VM: CPUID leaf 0x%x.%u has no config entry",
					      iv->cpuid.entries[i].function, iv->cpuid.entries[i].index);
			if (iv->cpuid.entries[i].function == 0x80000008)
				gpaw = (iv->cpuid.entries[i].eax >> 16) & 0xff;
		}
		/* setup_tdparams_eptp_controls: GPAW from 0x80000008.EAX[23:16], 48 or 52 only. */
		if (gpaw != 48 && gpaw != 52)
			return refuse(EINVAL, "KVM_TDX_INIT_VM: GPAW %u (48 or 52 only)", gpaw);
		vm->gpaw = gpaw;
		F.c.shared_bit_log2 = gpaw - 1;
		vm->state = TD_INITIALIZED;
		return 0;
	}
	case TDXHP_KVM_TDX_FINALIZE_VM:
		F.c.finalize_calls++;
		/* tdx.c tdx_td_finalize: only an initialized TD with its vCPU initialized. */
		if (vm->state != TD_INITIALIZED || !vm->vcpu_init)
			return refuse(EINVAL, "KVM_TDX_FINALIZE_VM: TD not initialized or vCPU not initialized");
		if (F.host.finalize_busy > 0) {
			F.host.finalize_busy--;
			return refuse(EBUSY, "KVM_TDX_FINALIZE_VM: busy");
		}
		vm->state = TD_RUNNABLE;
		return 0;
	default:
		return refuse(EINVAL, "KVM_MEMORY_ENCRYPT_OP: VM command %u", c->id);
	}
}

static int vm_ioctl(struct fvm *vm, unsigned long req, void *arg)
{
	if (vm->dead && req != KVM_CHECK_EXTENSION)
		return refuse(EIO, "VM is dead (KVM_BUG_ON)");
	switch (req) {
	case KVM_CHECK_EXTENSION:
		if (vm->dead)
			return refuse(EIO, "VM is dead (KVM_BUG_ON)");
		return (int)check_extension(vm, (long)arg);
	case KVM_ENABLE_CAP: {
		struct kvm_enable_cap *e = arg;

		if (e->cap == KVM_CAP_X2APIC_API)
			vm->x2apic = e->args[0] == 0x3;
		else if (e->cap == KVM_CAP_SPLIT_IRQCHIP)
			vm->split_irqchip = vm->vcpu_fd < 0;
		else if (e->cap == KVM_CAP_EXIT_HYPERCALL)
			vm->map_gpa_exit = e->args[0] & (1ULL << KVM_HC_MAP_GPA_RANGE_NR);
		else
			return refuse(EINVAL, "KVM_ENABLE_CAP %u", e->cap);
		return 0;
	}
	case KVM_CREATE_IRQCHIP:
		/* tdx.c: a TD needs the split irqchip; the in-kernel one is refused. */
		return refuse(EINVAL, "KVM_CREATE_IRQCHIP on a TD");
	case KVM_SET_USER_MEMORY_REGION2:
		return vm_set_region(vm, arg) ? -1 : 0;
	case KVM_CREATE_GUEST_MEMFD:
		return vm_create_gmem(vm, arg);
	case KVM_SET_MEMORY_ATTRIBUTES:
		return vm_set_attributes(vm, arg);
	case KVM_MEMORY_ENCRYPT_OP:
		return vm_memory_encrypt_op(vm, arg);
	case KVM_CREATE_VCPU:
		/* tdx.c tdx_vcpu_create: the TD must be initialized and the irqchip split. */
		if (vm->type == KVM_X86_TDX_VM && (vm->state != TD_INITIALIZED || !vm->split_irqchip))
			return refuse(EINVAL, "KVM_CREATE_VCPU: TD not initialized or no split irqchip");
		if (vm->vcpu_fd >= 0)
			return refuse(EEXIST, "KVM_CREATE_VCPU: one vCPU only in this fake");
		vm->vcpu_fd = new_fd(K_VCPU, vm, "fake-vcpu");
		if (ftruncate(vm->vcpu_fd, 3 * PAGE))
			abort();
		vm->run = mmap(NULL, 3 * PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, vm->vcpu_fd, 0);
		return vm->vcpu_fd;
	default:
		F.c.unhandled_ioctls++;
		fprintf(stderr, "fake kvm: unhandled VM ioctl 0x%lx\n", req);
		return refuse(ENOTTY, "VM ioctl 0x%lx", req);
	}
}

/* ---------------------------------------------------------------- gmem ioctls */

static int gmem_ioctl(struct gmem *g, unsigned long req, void *arg)
{
	struct tdxhp_kvm_memory_attributes2 *a = arg;
	uint64_t p;
	int i;

	if (req != TDXHP_KVM_SET_MEMORY_ATTRIBUTES2) {
		F.c.unhandled_ioctls++;
		return refuse(ENOTTY, "guest_memfd ioctl 0x%lx", req);
	}
	F.c.gmem_attr_ioctls++;
	if (g->vm->dead)
		return refuse(EIO, "VM is dead (KVM_BUG_ON)");
	if (!attrs_gmem_owned())
		return refuse(ENOTTY, "KVM_SET_MEMORY_ATTRIBUTES2 on guest_memfd with vm_memory_attributes=Y");
	/* gmem: offset/size page-aligned, inside the file, attributes PRIVATE or 0. */
	if (a->flags || (a->attributes & ~KVM_MEMORY_ATTRIBUTE_PRIVATE) || !a->size ||
	    ((a->offset | a->size) & (PAGE - 1)) || a->offset + a->size > g->size)
		return refuse(EINVAL, "KVM_SET_MEMORY_ATTRIBUTES2: bad range or attributes");
	for (p = a->offset / PAGE; p < (a->offset + a->size) / PAGE; p++)
		*map_find(&F.gmem_attrs, ((uint64_t)(g - F.gmems) << 40) | p, true) = a->attributes ? 1 : 0;
	for (i = 0; i < MAX_SLOTS; i++) { /* zap what the slots over this range map */
		struct fslot *s = &g->vm->slots[i];
		uint64_t lo, hi;

		if (!s->used || s->gmem != (int)(g - F.gmems))
			continue;
		lo = a->offset > s->gmem_off ? a->offset : s->gmem_off;
		hi = a->offset + a->size < s->gmem_off + s->size ? a->offset + a->size : s->gmem_off + s->size;
		if (lo < hi)
			zap(g->vm, s->gpa + lo - s->gmem_off, hi - lo);
	}
	return 0;
}

/* ---------------------------------------------------------------- vCPU ioctls */

static int vcpu_init_mem_region(struct fvm *vm, struct tdxhp_kvm_tdx_cmd *c)
{
	struct tdxhp_kvm_tdx_init_mem_region *m = (void *)(uintptr_t)c->data;
	uint64_t done = 0;

	/* tdx.c tdx_vcpu_init_mem_region: vCPU initialized, TD not yet runnable, flags MEASURE
	 * only, page-aligned source and gpa, nr_pages > 0. */
	if (!vm->vcpu_init)
		return refuse(EINVAL, "KVM_TDX_INIT_MEM_REGION before KVM_TDX_INIT_VCPU");
	if (vm->state != TD_INITIALIZED)
		return refuse(EINVAL, "KVM_TDX_INIT_MEM_REGION after FINALIZE");
	if (c->flags & ~TDXHP_KVM_TDX_MEASURE_MEMORY_REGION)
		return refuse(EINVAL, "KVM_TDX_INIT_MEM_REGION: flags");
	if (((m->source_addr | m->gpa) & (PAGE - 1)) || !m->nr_pages)
		return refuse(EINVAL, "KVM_TDX_INIT_MEM_REGION: unaligned or empty");
	while (m->nr_pages) {
		struct fslot *s = slot_of_gpa(vm, m->gpa);
		uint64_t g = m->gpa / PAGE;

		if (F.host.init_mem_chunk && done == (uint64_t)F.host.init_mem_chunk)
			/* The kernel copies the advanced struct back and returns -EINTR. */
			return refuse(EINTR, "KVM_TDX_INIT_MEM_REGION: interrupted (progress kept)");
		/* kvm_gmem_populate: a guest_memfd slot, attribute PRIVATE. */
		if (!s || s->gmem < 0)
			return refuse(EINVAL, "KVM_TDX_INIT_MEM_REGION: gpa 0x%llx not in a guest_memfd slot",
				      (unsigned long long)m->gpa);
		if (attr_of(vm, m->gpa) != 1)
			return refuse(EINVAL, "KVM_TDX_INIT_MEM_REGION: gpa 0x%llx is not PRIVATE",
				      (unsigned long long)m->gpa);
		if (map_find(&vm->leaves, g, false))
			return refuse(EEXIST, "KVM_TDX_INIT_MEM_REGION: gpa 0x%llx already mapped",
				      (unsigned long long)m->gpa);
		/* TDH.MEM.PAGE.ADD: a 4K leaf, accepted, with the source's content. */
		*map_find(&vm->leaves, g, true) = LEAF_PRESENT | LEAF_ACCEPTED;
		*map_find(&vm->content, g, true) = *(uint64_t *)(uintptr_t)m->source_addr;
		m->gpa += PAGE;
		m->source_addr += PAGE;
		m->nr_pages--;
		done++;
	}
	return 0;
}

static int vcpu_memory_encrypt_op(struct fvm *vm, struct tdxhp_kvm_tdx_cmd *c)
{
	switch (c->id) {
	case TDXHP_KVM_TDX_GET_CPUID: {
		struct kvm_cpuid2 *out = (void *)(uintptr_t)c->data;

		if (vm->state == TD_CREATED)
			return refuse(EINVAL, "KVM_TDX_GET_CPUID before INIT_VM");
		supported_cpuid(out, out->nent);
		for (uint32_t i = 0; i < out->nent; i++)
			if (out->entries[i].function == 0x80000008)
				out->entries[i].eax = (vm->gpaw << 16) | 48u << 8 |
						      ((F.host.td_maxphyaddr ? F.host.td_maxphyaddr : F.host.maxphyaddr) & 0xff);
		return 0;
	}
	case TDXHP_KVM_TDX_INIT_VCPU:
		if (vm->vcpu_init)
			return refuse(EINVAL, "KVM_TDX_INIT_VCPU twice");
		/* tdx.c tdx_vcpu_init -> kvm_apic_set_base(X2APIC): the guest CPUID must have x2APIC;
		 * KVM_SET_CPUID2 comes first. */
		if (!vm->cpuid_set || !vm->vcpu_has_x2apic || !vm->x2apic)
			return refuse(EINVAL, "KVM_TDX_INIT_VCPU: no x2APIC in the vCPU CPUID or X2APIC_API");
		vm->vcpu_init = true;
		return 0;
	case TDXHP_KVM_TDX_INIT_MEM_REGION:
		return vcpu_init_mem_region(vm, c);
	default:
		return refuse(EINVAL, "KVM_MEMORY_ENCRYPT_OP: vCPU command %u", c->id);
	}
}

/* ---------------------------------------------------------------- KVM_RUN: guest + module */

static struct tdx_mailbox *mailbox(struct fvm *vm)
{
	struct fslot *s = slot_of_gpa(vm, TDX_MAILBOX_GPA);

	return s ? (struct tdx_mailbox *)(uintptr_t)(s->hva + TDX_MAILBOX_GPA - s->gpa) : NULL;
}

static int exit_done(struct fvm *vm, uint32_t value)
{
	struct kvm_run *run = vm->run;

	run->exit_reason = KVM_EXIT_IO;
	run->io.direction = KVM_EXIT_IO_OUT;
	run->io.size = 4;
	run->io.port = TDX_DONE_PORT;
	run->io.count = 1;
	run->io.data_offset = PAGE;
	memcpy((char *)run + PAGE, &value, 4);
	return 0;
}

static int exit_memory_fault(struct fvm *vm, uint64_t gpa, bool priv)
{
	F.c.memory_fault_exits++;
	vm->run->exit_reason = KVM_EXIT_MEMORY_FAULT;
	vm->run->memory_fault.gpa = gpa & ~(PAGE - 1);
	vm->run->memory_fault.size = PAGE;
	vm->run->memory_fault.flags = priv ? KVM_MEMORY_EXIT_FLAG_PRIVATE : 0;
	errno = EFAULT; /* KVM_RUN returns -EFAULT with the exit filled in */
	return -1;
}

/* The largest level KVM maps a private fault at: 2M needs tdx_huge_page, a hugetlb 2M (or
 * larger) guest_memfd folio under the whole aligned range, one slot, uniform PRIVATE and
 * nothing mapped yet (seed: cover letter L165-176, "huge mappings need gmem huge folios"). */
static int fault_level(struct fvm *vm, uint64_t gpa, int want)
{
	uint64_t base = gpa & ~(SZ_2M - 1), g;
	struct fslot *s = slot_of_gpa(vm, base);

	if (want < 1 || !F.host.tdx_huge_page || !s || s->gmem < 0 ||
	    !(F.gmems[s->gmem].flags & GUEST_MEMFD_FLAG_HUGETLB) || base + SZ_2M > s->gpa + s->size ||
	    ((s->gmem_off + base - s->gpa) & (SZ_2M - 1)))
		return 0;
	for (g = base; g < base + SZ_2M; g += PAGE)
		if (attr_of(vm, g) != 1 || map_find(&vm->leaves, g / PAGE, false))
			return 0;
	return 1;
}

static void map_leaf(struct fvm *vm, uint64_t gpa, int level, bool accepted)
{
	uint64_t n = level ? 512 : 1, base = level ? gpa & ~(SZ_2M - 1) : gpa, i;

	for (i = 0; i < n; i++)
		*map_find(&vm->leaves, base / PAGE + i, true) =
			LEAF_PRESENT | (accepted ? LEAF_ACCEPTED : 0) | ((uint64_t)level << 8);
}

/* TDG.MEM.PAGE.ACCEPT as the module answers it (module :162, :199, :204, :63, :214). */
static uint64_t module_accept(struct fvm *vm, uint64_t rcx)
{
	unsigned level = rcx & 7;
	uint64_t gpa = rcx & ~0xfffULL, *leaf;

	F.c.accept_tdcalls[level > 2 ? 2 : level]++;
	if (level > TDXHP_ACCEPT_2M || (gpa & (tdxhp_level_bytes(level) - 1)))
		return TDXHP_TDX_OPERAND_INVALID | TDXHP_TDX_OPERAND_ID_RCX;
	leaf = map_find(&vm->leaves, gpa / PAGE, false);
	if (leaf) {
		unsigned have = (unsigned)LEAF_LEVEL(*leaf);

		if (have < level)
			return TDXHP_TDX_PAGE_SIZE_MISMATCH | level;
		if (*leaf & LEAF_ACCEPTED)
			return TDXHP_TDX_PAGE_ALREADY_ACCEPTED | level; /* Case 1.1 for a larger leaf */
		if (have > level) { /* a PENDING larger leaf: EPT exit, KVM demotes it, the 4K accept retries */
			uint64_t g, base = gpa & ~(SZ_2M - 1);

			for (g = base; g < base + SZ_2M; g += PAGE)
				*map_find(&vm->leaves, g / PAGE, true) = LEAF_PRESENT;
		}
		map_leaf(vm, gpa, (int)level, true);
		return TDXHP_TDX_SUCCESS;
	}
	/* No mapping: EPT violation -> KVM faults the gfn in at the level it can, then retries. */
	if (fault_level(vm, gpa, (int)level) >= (int)level && level == 1) {
		map_leaf(vm, gpa, 1, true);
		return TDXHP_TDX_SUCCESS;
	}
	map_leaf(vm, gpa, 0, level == 0);
	return level == 0 ? TDXHP_TDX_SUCCESS : TDXHP_TDX_PAGE_SIZE_MISMATCH | level;
}

static bool gva_decode(struct fvm *vm, uint64_t gva, uint64_t *gpa, bool *priv)
{
	if (gva >= TDX_SHARED_VA_BASE) {
		*gpa = gva - TDX_SHARED_VA_BASE;
		*priv = false;
	} else if (gva >= GUEST_TEST_VA_BASE) {
		*gpa = gva - GUEST_TEST_VA_BASE;
		*priv = true;
	} else {
		return false;
	}
	return slot_of_gpa(vm, *gpa) != NULL;
}

/* One guest access (tdx_guest.c guarded_read/write). 1: exit filled, return to userspace. */
static int guest_access(struct fvm *vm, struct tdx_mailbox *m, bool write)
{
	uint64_t gpa, *leaf;
	bool priv;

	if (!gva_decode(vm, m->gva, &gpa, &priv)) {
		m->faulted = 14; /* #PF: no mapping in the guest's page tables */
		return 0;
	}
	if (attr_of(vm, gpa) != (int)priv)
		return exit_memory_fault(vm, gpa, priv), 1;
	if (!priv) {
		struct fslot *s = slot_of_gpa(vm, gpa);
		uint64_t *p = (uint64_t *)(uintptr_t)(s->hva + gpa - s->gpa);

		if (write)
			*p = m->value;
		else
			m->value = *p;
		return 0;
	}
	leaf = map_find(&vm->leaves, gpa / PAGE, false);
	if (!leaf) /* KVM AUGs the page PENDING (SEPT_VE_DISABLE clear), the guest takes #VE */
		map_leaf(vm, gpa, 0, false), leaf = map_find(&vm->leaves, gpa / PAGE, false);
	if (!(*leaf & LEAF_ACCEPTED)) {
		m->faulted = TDX_VE_VECTOR;
		m->ve_count++;
		m->ve_reason = EXIT_REASON_EPT_VIOLATION;
		m->ve_gpa = gpa;
		return 0;
	}
	if (write)
		*map_find(&vm->content, gpa / PAGE, true) = m->value;
	else
		m->value = map_find(&vm->content, gpa / PAGE, false) ? *map_find(&vm->content, gpa / PAGE, false) : 0;
	return 0;
}

/* TDVMCALL<MapGPA> (tdx.c tdx_map_gpa / __tdx_map_gpa / tdx_complete_vmcall_map_gpa). */
static int guest_map_gpa(struct fvm *vm, struct tdx_mailbox *m)
{
	struct kvm_run *run = vm->run;
	uint64_t shared_bit = 1ULL << (vm->gpaw - 1);

	if (vm->map_gpa_active) { /* userspace answered the last chunk */
		if (run->hypercall.ret) {
			vm->map_gpa_active = false;
			m->status = TDVMCALL_INVALID_OPERAND;
			return 0;
		}
		if (vm->map_gpa_next >= vm->map_gpa_end) {
			vm->map_gpa_active = false;
			m->status = 0;
			return 0;
		}
	} else {
		uint64_t gpa = m->to_private ? m->gpa : m->gpa | shared_bit, size = m->npages * PAGE;
		uint64_t legal = 1ULL << vm->vcpu_maxpa;

		/* tdx_map_gpa: no MapGPA exit enabled -> SUBFUNC_UNSUPPORTED; an empty, unaligned
		 * or illegal range (kvm_vcpu_is_legal_gpa on the vCPU's MAXPHYADDR), or one whose
		 * ends differ in privateness -> INVALID_OPERAND, without an exit. */
		if (!vm->map_gpa_exit) {
			m->status = TDVMCALL_INVALID_OPERAND;
			return 0;
		}
		if (!size || (gpa & (PAGE - 1)) || gpa + size < gpa || gpa >= legal || gpa + size - 1 >= legal ||
		    ((gpa & shared_bit) != ((gpa + size - 1) & shared_bit))) {
			m->status = TDVMCALL_INVALID_OPERAND;
			return 0;
		}
		vm->map_gpa_active = true;
		vm->map_gpa_next = gpa;
		vm->map_gpa_end = gpa + size;
	}
	{
		uint64_t next = vm->map_gpa_next;
		uint64_t size = vm->map_gpa_end - next < TDX_MAP_GPA_MAX_LEN ? vm->map_gpa_end - next
									       : TDX_MAP_GPA_MAX_LEN;

		F.c.hypercall_exits++;
		run->exit_reason = KVM_EXIT_HYPERCALL;
		run->hypercall.nr = KVM_HC_MAP_GPA_RANGE_NR;
		run->hypercall.args[0] = next & ~shared_bit;
		run->hypercall.args[1] = size / PAGE;
		run->hypercall.args[2] = (next & shared_bit) ? 0 : KVM_MAP_GPA_RANGE_ENCRYPTED;
		run->hypercall.ret = 0;
		vm->map_gpa_next = next + size;
		return 1;
	}
}

static int vcpu_run(struct fvm *vm)
{
	struct tdx_mailbox *m = mailbox(vm);
	int exited = 0;

	/* tdx.c tdx_vcpu_pre_run: only a RUNNABLE TD enters. */
	if (vm->state != TD_RUNNABLE)
		return refuse(EINVAL, "KVM_RUN before KVM_TDX_FINALIZE_VM");
	if (!m)
		return refuse(EINVAL, "KVM_RUN: no mailbox slot (the guest would fault)");
	switch (m->cmd) {
	case TDX_CMD_READ:
	case TDX_CMD_WRITE:
		m->faulted = 0;
		exited = guest_access(vm, m, m->cmd == TDX_CMD_WRITE);
		break;
	case TDX_CMD_ACCEPT: {
		uint64_t rcx;

		/* The guest's own decision (lib/tdx/tdx.c tdx_guest_accept): the flavour's code. */
		if (!tdxhp_accept_rcx(m->gpa, (unsigned)m->level, &rcx)) {
			m->status = TDXHP_TDX_OPERAND_INVALID | TDXHP_TDX_OPERAND_ID_RCX; /* as tdx_guest_accept */
			break;
		}
		if (attr_of(vm, m->gpa) != 1) /* EPT violation on a shared gfn: to-private fault */
			return exit_memory_fault(vm, m->gpa, true);
		m->status = module_accept(vm, rcx);
		break;
	}
	case TDX_CMD_MAP_GPA:
		exited = guest_map_gpa(vm, m);
		break;
	default:
		break;
	}
	if (exited)
		return vm->run->exit_reason == KVM_EXIT_MEMORY_FAULT ? -1 : 0;
	m->seq++;
	return exit_done(vm, TDX_DONE_OK);
}

static int vcpu_ioctl(struct fvm *vm, unsigned long req, void *arg)
{
	if (vm->dead)
		return refuse(EIO, "VM is dead (KVM_BUG_ON)");
	switch (req) {
	case KVM_SET_CPUID2: {
		struct kvm_cpuid2 *c = arg;

		vm->cpuid_set = true;
		vm->vcpu_has_x2apic = false;
		for (uint32_t i = 0; i < c->nent; i++) {
			if (c->entries[i].function == 1)
				vm->vcpu_has_x2apic = c->entries[i].ecx & (1u << 21);
			if (c->entries[i].function == 0x80000008)
				vm->vcpu_maxpa = c->entries[i].eax & 0xff;
		}
		return 0;
	}
	case KVM_MEMORY_ENCRYPT_OP:
		return vcpu_memory_encrypt_op(vm, arg);
	case KVM_RUN:
		return vcpu_run(vm);
	default:
		F.c.unhandled_ioctls++;
		fprintf(stderr, "fake kvm: unhandled vCPU ioctl 0x%lx\n", req);
		return refuse(ENOTTY, "vCPU ioctl 0x%lx", req);
	}
}

/* ---------------------------------------------------------------- the seam */

int __wrap_ioctl(int fd, unsigned long req, ...)
{
	va_list ap;
	void *arg;

	va_start(ap, req);
	arg = va_arg(ap, void *);
	va_end(ap);
	if (fd < 0 || fd >= MAX_FD || F.kind[fd] == K_NONE)
		return __real_ioctl(fd, req, arg);
	switch (F.kind[fd]) {
	case K_DEV:
		return dev_ioctl(req, arg);
	case K_VM:
		return vm_ioctl(F.obj[fd], req, arg);
	case K_VCPU:
		return vcpu_ioctl(F.obj[fd], req, arg);
	case K_GMEM:
		return gmem_ioctl(F.obj[fd], req, arg);
	default:
		return __real_ioctl(fd, req, arg);
	}
}

/* Module parameters the flavour and libkvm read, answered from the fake host. */
static int param_file(const char *path)
{
	static const char *names[] = {
		"/sys/module/kvm_intel/parameters/tdx", "/sys/module/kvm_intel/parameters/tdx_huge_page",
		"/sys/module/kvm/parameters/vm_memory_attributes", "/sys/module/kvm/parameters/tdp_mmu",
		"/sys/module/kvm/parameters/force_emulation_prefix",
	};
	const char *val = NULL;
	int fd;

	if (!strcmp(path, names[0]))
		val = F.host.tdx ? "Y\n" : "N\n";
	else if (!strcmp(path, names[1]))
		val = F.host.tdx_huge_page ? "Y\n" : "N\n";
	else if (!strcmp(path, names[2]))
		val = F.host.vm_memory_attributes ? "Y\n" : "N\n";
	else if (!strcmp(path, names[3]))
		val = "Y\n";
	else if (!strcmp(path, names[4]))
		val = "0\n";
	else
		return -2;
	fd = memfd_create("fake-param", MFD_CLOEXEC);
	if (write(fd, val, strlen(val)) < 0 || lseek(fd, 0, SEEK_SET) < 0)
		abort();
	return fd;
}

int __wrap_open(const char *path, int flags, ...)
{
	va_list ap;
	int mode, fd;

	va_start(ap, flags);
	mode = va_arg(ap, int);
	va_end(ap);
	if (!strcmp(path, "/dev/kvm"))
		return new_fd(K_DEV, NULL, "fake-dev-kvm");
	fd = param_file(path);
	if (fd != -2)
		return fd;
	return __real_open(path, flags, mode);
}

int __wrap_close(int fd)
{
	if (fd >= 0 && fd < MAX_FD) {
		if (F.kind[fd] == K_VM && F.td == F.obj[fd] && F.td->state == TD_CREATED)
			F.td = NULL; /* the probe's TDX VM, closed unused */
		if (F.kind[fd] == K_GMEM)
			((struct gmem *)F.obj[fd])->used = false;
		F.kind[fd] = K_NONE;
		F.obj[fd] = NULL;
	}
	return __real_close(fd);
}

/* ---------------------------------------------------------------- introspection */

int fake_kvm_leaf_level(uint64_t gpa)
{
	uint64_t *v = F.td ? map_find(&F.td->leaves, gpa / PAGE, false) : NULL;

	return v ? (int)LEAF_LEVEL(*v) : -1;
}

int fake_kvm_attr(uint64_t gpa)
{
	return F.td ? attr_of(F.td, gpa) : -1;
}

void fake_kvm_force_attr(uint64_t gpa, bool priv)
{
	struct fslot *s;

	if (!F.td)
		return;
	s = slot_of_gpa(F.td, gpa);
	if (!attrs_gmem_owned())
		*map_find(&F.td->vm_attrs, gpa / PAGE, true) = priv;
	else if (s && s->gmem >= 0)
		*map_find(&F.gmem_attrs, ((uint64_t)s->gmem << 40) | ((s->gmem_off + gpa - s->gpa) / PAGE), true) = priv;
	zap(F.td, gpa & ~(PAGE - 1), PAGE);
}

void fake_kvm_kill_vm(void)
{
	if (F.td)
		F.td->dead = true;
}
