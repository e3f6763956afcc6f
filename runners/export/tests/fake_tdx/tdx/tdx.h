/* Stand-in for intel/tdx tools/testing/selftests/kvm/include/x86/tdx/tdx.h: the guest's
 * TDCALL helpers a TD reproducer uses, with the signatures of the TDX selftest series (posted
 * v8, "KVM: selftests: TDX: Add support for TDG.VP.VEINFO.GET" and the MapGPA and
 * TDG.MEM.PAGE.ACCEPT patches before it), which intel/tdx x86/tdx_vm_huge_page.c (deceaf0d419a)
 * calls with these arguments. The stored intel/tdx tdx.h versions tdxhp could read
 * (04fd485ef239, f2b8d8a302ed) predate these helpers. Declarations only, written for tdxhp. */
#ifndef TDXHP_FAKE_TDX_TDX_H
#define TDXHP_FAKE_TDX_TDX_H

#include <stdint.h>

#include "kvm_util.h"

uint64_t tdg_vp_vmcall_map_gpa(uint64_t address, uint64_t size, uint64_t *data_out);
uint64_t tdg_mem_page_accept(uint64_t gpa, uint8_t level);

struct ve_info {
	uint64_t exit_reason;
	uint64_t exit_qual;
	uint64_t gla;
	uint64_t gpa;
	uint32_t instr_len;
	uint32_t instr_info;
};

uint64_t tdg_vp_veinfo_get(struct ve_info *ve);

#endif
