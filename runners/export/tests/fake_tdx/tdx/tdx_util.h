/* Stand-in for intel/tdx tools/testing/selftests/kvm/include/x86/tdx/tdx_util.h (stored
 * version 01df4953f34e; the definitions in lib/x86/tdx/tdx_util.c, 001ab102ee10): the host's TD
 * build calls a TD reproducer uses, with the tree's signatures. Declarations only, written
 * for tdxhp. */
#ifndef TDXHP_FAKE_TDX_TDX_UTIL_H
#define TDXHP_FAKE_TDX_TDX_UTIL_H

#include <stdint.h>

#include "kvm_util.h"

extern uint64_t tdx_s_bit;

struct kvm_vcpu *td_vcpu_add(struct kvm_vm *vm, uint32_t vcpu_id, void *guest_code);
struct kvm_vm *td_create(void);
void td_initialize(struct kvm_vm *vm, enum vm_mem_backing_src_type src_type, uint64_t attributes);
void td_finalize(struct kvm_vm *vm);

#endif
