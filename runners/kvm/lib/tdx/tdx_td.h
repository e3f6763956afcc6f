/* Internal API of the tdx flavour, called by vm.c's tkvm_* entry points (hook lines only)
 * so the TD specifics live in lib/tdx/. Not part of tdxhp_kvm.h. tdx_td.c never calls back
 * into vm.c by name: it gets the owner's gfn space and conversion as struct tdx_td_host. */
#ifndef TDXHP_KVM_TDX_TD_H
#define TDXHP_KVM_TDX_TD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "attributes.h"
#include "tdxhp_kvm.h"

#ifdef __cplusplus
extern "C" {
#endif

struct kvm_cpuid2;
struct kvm_vm;
struct kvm_vcpu;
struct tdx_td;

/* tdx.c: KVM_MEMORY_ENCRYPT_OP sub-commands, 0 or -errno. */
int tdx_vm_cmd(int vm_fd, unsigned cmd, unsigned flags, void *data, uint64_t *hw_error);
int tdx_vcpu_cmd(int vcpu_fd, unsigned cmd, unsigned flags, uint64_t data);
int tdx_init_vm(int vm_fd, uint64_t attributes, const struct kvm_cpuid2 *supported,
		struct kvm_cpuid2 **used, uint64_t *hw_error);
int tdx_init_mem_region(int vcpu_fd, void *source, uint64_t gpa, uint64_t npages);
int tdx_finalize(int vm_fd, uint64_t *hw_error);

/* What the owner of the TD (vm.c) lends it: scenario gfn <-> GPA, and a conversion that
 * goes wherever the attributes live and updates the owner's records (MapGPA and memory-fault
 * exits convert through it). */
struct tdx_td_host {
	void *ctx;
	uint64_t (*gpa_of)(void *ctx, uint64_t gfn);
	uint64_t (*gfn_of)(void *ctx, uint64_t gpa); /* UINT64_MAX outside the test slots */
	int (*convert)(void *ctx, uint64_t gfn, uint64_t npages, bool to_private);
};

/* How far the build got, for the FAIL message of a TD that does not build or boot. */
enum tdx_td_state {
	TDX_TD_CREATED = 0,
	TDX_TD_INITIALIZED,
	TDX_TD_VCPU_READY,
	TDX_TD_FINALIZED,
	TDX_TD_RUNNING,
};
const char *tdx_td_state_name(enum tdx_td_state s);

/* Step 1 of the TD build: the TDX VM, TD init, memslot 0 with the ELF image, boot and
 * mailbox slots, descriptor tables, stack and vCPU 0 (KVM_TDX_INIT_VCPU). The caller then
 * adds the test slots and their attributes, and calls tdx_td_finalize. NULL with why set
 * (the ioctl, its errno and the TD state) and errno set. */
struct tdx_td *tdx_td_create(uint64_t slot0_pages, enum tkvm_attr_owner attr_owner,
			     const struct tdx_td_host *host, char *why, size_t why_len);
enum tdx_td_state tdx_td_state(const struct tdx_td *td);
unsigned tdx_td_gpaw(const struct tdx_td *td);
/* Memory-fault exits answered by converting and resuming (as the series' selftest does). */
unsigned tdx_td_fault_conversions(const struct tdx_td *td);
struct kvm_vm *tdx_td_vm(struct tdx_td *td);
struct kvm_vcpu *tdx_td_vcpu(struct tdx_td *td);
/* The highest scenario GPA + 1 the TD can address privately and through the shared alias. */
uint64_t tdx_td_gpa_limit(const struct tdx_td *td);

/* Step 2: guest mappings of every test slot (private and shared aliases), build pages
 * (cfg->build_gfns, 4K ADD), INIT_MEM_REGION of the boot image, FINALIZE, and the first run
 * into the command loop. 0 or -errno with why set. */
int tdx_td_finalize(struct tdx_td *td, const struct tkvm_config *cfg, char *why, size_t why_len);

/* What the host set (VM or gmem attributes): picks each access's alias. */
void tdx_td_note_attributes(struct tdx_td *td, uint64_t gfn, uint64_t npages, bool to_private);

/* Guest ops (tdxhp_kvm.h contract). */
int tdx_td_access(struct tdx_td *td, uint64_t gfn, bool write, uint64_t value,
		  struct tkvm_guest_result *res);
int tdx_td_accept(struct tdx_td *td, uint64_t gfn, unsigned level, struct tkvm_guest_result *res);
int tdx_td_map_gpa(struct tdx_td *td, uint64_t gfn, uint64_t npages, bool to_private,
		   struct tkvm_guest_result *res);

/* Frees the tdx state; the kvm_vm itself is freed by the caller (kvm_vm_free). */
void tdx_td_free(struct tdx_td *td);

/* Module facts sysfs offers, one line for `tdxhp caps` (never empty). tdx_huge_page: the
 * probed kvm_intel parameter (1, 0, or -1 when absent). */
void tdx_module_facts(int tdx_huge_page, char *buf, size_t len);

#ifdef __cplusplus
}
#endif
#endif
