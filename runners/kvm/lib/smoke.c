/* tdxhp_kvm_smoke: the C API end to end on this host, without the C++ layers.
 * Prints what happens; exits 0 when a plain VM wrote, read, punched and read zero. */
#include <stdio.h>
#include <string.h>

#include "tdxhp_kvm.h"

int main(void)
{
	struct tkvm_host h;
	struct tkvm_config cfg = { .flavour = TKVM_PLAIN, .nslots = 1,
				   .slots = { { .id = 0, .base_gfn = 0x200, .npages = 1024 } } };
	struct tkvm_guest_result res;
	char why[256] = "";
	struct tkvm_vm *vm;
	int r;

	tkvm_probe_host(&h);
	printf("dev_kvm %d module %s vm_types 0x%llx gmem %d gmem_flags 0x%llx attrs 0x%llx prefault %d\n",
	       h.dev_kvm, h.kvm_module, (unsigned long long)h.vm_types, h.guest_memfd,
	       (unsigned long long)h.gmem_flags, (unsigned long long)h.attributes, h.pre_fault);
	vm = tkvm_create(&cfg, why, sizeof(why));
	if (!vm) {
		printf("create: %s\n", why);
		return 1;
	}
	r = tkvm_guest_access(vm, 0x205, true, 0x1234, &res);
	printf("write gfn 0x205: %d\n", r);
	r = tkvm_guest_access(vm, 0x205, false, 0, &res);
	printf("read gfn 0x205: %d value 0x%llx\n", r, (unsigned long long)res.value);
	if (r || res.value != 0x1234)
		return 1;
	r = tkvm_punch_hole(vm, 0x205, 1);
	printf("punch gfn 0x205: %d\n", r);
	r = tkvm_guest_access(vm, 0x205, false, 0, &res);
	printf("read gfn 0x205 after punch: %d value 0x%llx\n", r, (unsigned long long)res.value);
	tkvm_destroy(vm);
	return r || res.value != 0;
}
