/* TD CPUID preparation (tdx_cpuid.h). The bit rules are the TDX module's CPUID
 * virtualisation as KVM's TDX selftests apply them (intel/tdx tools/testing/selftests/kvm
 * lib/x86/tdx/tdx_util.c). */
#include "tdx_cpuid.h"

#include <string.h>

#define CPUID_BIT(n) (1u << (n))
#define XTILE_MASK (CPUID_BIT(17) | CPUID_BIT(18))   /* XFEATURE XTILE_CFG | XTILE_DATA */
#define LBR_MASK CPUID_BIT(15)                 /* XFEATURE LBR (IA32_XSS) */
#define CET_MASK (CPUID_BIT(11) | CPUID_BIT(12))     /* XFEATURE CET_USER | CET_KERNEL */
/* KVM PV features a TD may see (CPUID 0x40000001.EAX). */
#define TDX_KVM_FEATURES (CPUID_BIT(1) | CPUID_BIT(7) | CPUID_BIT(9) | CPUID_BIT(11) | CPUID_BIT(12) | CPUID_BIT(13) | CPUID_BIT(15))

static void apply_fixed_rules(struct kvm_cpuid_entry2 *e)
{
	if (e->function == 0xd && e->index == 0 && (e->eax & XTILE_MASK) != XTILE_MASK)
		e->eax &= ~XTILE_MASK;
	if (e->function == 0xd && e->index == 1) {
		e->ecx &= ~LBR_MASK;
		if (e->ecx & CET_MASK)
			e->ecx |= CET_MASK;
	}
	if (e->index)
		return;
	switch (e->function) {
	case 0x1:
		e->ecx &= ~(CPUID_BIT(5) | CPUID_BIT(6)); /* VMX, SMX */
		e->edx &= ~CPUID_BIT(17);           /* PSE36 */
		break;
	case 0x7:
		e->ebx &= ~(CPUID_BIT(1) | CPUID_BIT(2) | CPUID_BIT(25)); /* TSC_ADJUST, SGX, INTEL_PT */
		e->ecx &= ~CPUID_BIT(30);                     /* SGX_LC */
		break;
	case 0x40000001:
		e->eax &= TDX_KVM_FEATURES;
		break;
	case 0x80000007:
		e->edx |= CPUID_BIT(8); /* invariant TSC: the module reports it set */
		break;
	case 0x80000008:
		e->ebx &= CPUID_BIT(9); /* WBNOINVD only */
		break;
	default:
		break;
	}
}

uint32_t tdx_cpuid_prepare(struct kvm_cpuid_entry2 *entries, uint32_t n,
			   const struct kvm_cpuid_entry2 *configs, uint32_t nconfigs)
{
	uint32_t in, out = 0;

	for (in = 0; in < n; in++) {
		struct kvm_cpuid_entry2 e = entries[in];
		const struct kvm_cpuid_entry2 *c = NULL;
		uint32_t k;

		for (k = 0; k < nconfigs && !c; k++)
			if (configs[k].function == e.function && configs[k].index == e.index)
				c = &configs[k];
		if (!c)
			continue;
		apply_fixed_rules(&e);
		e.eax &= c->eax;
		e.ebx &= c->ebx;
		e.ecx &= c->ecx;
		e.edx &= c->edx;
		entries[out++] = e;
	}
	return out;
}

static struct kvm_cpuid_entry2 *leaf_80000008(struct kvm_cpuid_entry2 *entries, uint32_t n)
{
	uint32_t i;

	for (i = 0; i < n; i++)
		if (entries[i].function == 0x80000008 && entries[i].index == 0)
			return &entries[i];
	return NULL;
}

bool tdx_cpuid_set_gpaw(struct kvm_cpuid_entry2 *entries, uint32_t n, unsigned gpaw)
{
	struct kvm_cpuid_entry2 *e = leaf_80000008(entries, n);

	if (!e)
		return false;
	e->eax = (e->eax & ~0x00FF0000u) | ((gpaw & 0xFF) << 16);
	return true;
}

unsigned tdx_cpuid_gpaw(const struct kvm_cpuid_entry2 *entries, uint32_t n)
{
	const struct kvm_cpuid_entry2 *e = leaf_80000008((struct kvm_cpuid_entry2 *)entries, n);
	unsigned bits = e ? (e->eax >> 16) & 0xFF : 0;

	return bits == 48 || bits == 52 ? bits : 0;
}

unsigned tdx_cpuid_gpaw_from_kvm(const struct kvm_cpuid_entry2 *entries, uint32_t n)
{
	uint32_t i;

	for (i = 0; i < n; i++) {
		unsigned g, maxpa;

		if (entries[i].function != 0x80000008 || entries[i].index != 0)
			continue;
		g = (entries[i].eax >> 16) & 0xFF;
		maxpa = entries[i].eax & 0xFF;
		if (!g)
			g = maxpa >= 52 ? 52 : maxpa >= 48 ? 48 : 0;
		return g == 48 || g == 52 ? g : 0;
	}
	return 0;
}

unsigned tdx_cpuid_maxphyaddr(const struct kvm_cpuid_entry2 *entries, uint32_t n)
{
	uint32_t i;

	for (i = 0; i < n; i++)
		if (entries[i].function == 0x80000008 && entries[i].index == 0)
			return entries[i].eax & 0xFF;
	return 0;
}
