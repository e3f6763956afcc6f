/* The CPUID a TD is initialised with (KVM_TDX_INIT_VM): KVM's supported CPUID, minus what the
 * TDX module fixes or rejects, ANDed with the module's configurable bits
 * (KVM_TDX_CAPABILITIES). Pure, so it is unit-tested without TDX. */
#ifndef TDXHP_KVM_TDX_CPUID_H
#define TDXHP_KVM_TDX_CPUID_H

#include <linux/kvm.h>
#include <stdbool.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Rewrites entries[0..n) in place and returns the new count: entries the module does not
 * list in configs are dropped, the rest are masked by their config and by the module's
 * fixed rules (no VMX/SMX/SGX/PT/TSC_ADJUST, AMX tiles both-or-none, no LBR, CET U+S
 * together, only the KVM PV features TDX supports). */
uint32_t tdx_cpuid_prepare(struct kvm_cpuid_entry2 *entries, uint32_t n,
			   const struct kvm_cpuid_entry2 *configs, uint32_t nconfigs);

/* KVM takes the TD's guest physical address width (GPAW) from CPUID 0x80000008.EAX[23:16]
 * (GuestPhysAddrSize) and accepts only 48 (4-level EPT, shared bit 47) or 52 (5-level,
 * bit 51). tdxhp asks for 48: it needs no 5-level EPT and its test GPAs stay below 2^45.
 * Returns false when the leaf is absent (INIT_VM would fail). */
bool tdx_cpuid_set_gpaw(struct kvm_cpuid_entry2 *entries, uint32_t n, unsigned gpaw);
/* The GPAW the CPUID asks for: 48 or 52, 0 when KVM would refuse it. */
unsigned tdx_cpuid_gpaw(const struct kvm_cpuid_entry2 *entries, uint32_t n);
/* The GPAW KVM offers in its supported CPUID (GuestPhysAddrSize, else MAXPHYADDR): 48 or
 * 52, 0 when neither fits. */
unsigned tdx_cpuid_gpaw_from_kvm(const struct kvm_cpuid_entry2 *entries, uint32_t n);
/* 0x80000008.EAX[7:0]: the vCPU's MAXPHYADDR, which MapGPA's legality check uses. */
unsigned tdx_cpuid_maxphyaddr(const struct kvm_cpuid_entry2 *entries, uint32_t n);

#ifdef __cplusplus
}
#endif
#endif
