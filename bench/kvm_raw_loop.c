/* tdxhp_kvm_raw: the yardstick for the kvm target (issue 16). The ops the kvm target runs on a
 * plain VM (guest reads and writes, 4K and 2M punches), straight through the C API on ONE VM
 * built once: no worker, no oracle, no engine. Prints one JSON line:
 *   {"steps": N, "seconds": wall, "cpu_seconds": user+sys, "steps_per_sec": ..., ...}
 * The op mix follows what `tdxhp run --target kvm` ran on this host (shared/reviews/performance.md
 * step 6: about 0.64 guest accesses and 0.19 punches per step; the other steps never reach KVM).
 * usage: tdxhp_kvm_raw SECONDS */
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <time.h>

#include "tdxhp_kvm.h"

static double now(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec + t.tv_nsec / 1e9;
}

static double cpu(void)
{
	struct rusage u;
	getrusage(RUSAGE_SELF, &u);
	return u.ru_utime.tv_sec + u.ru_stime.tv_sec + (u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e6;
}

int main(int argc, char **argv)
{
	const double seconds = argc > 1 ? atof(argv[1]) : 0;
	enum { BASE = 0x200, NPAGES = 4096 }; /* 16 MiB, the size of the kvm target's usual slots */
	struct tkvm_config cfg = { .flavour = TKVM_PLAIN, .nslots = 1,
				   .slots = { { .id = 0, .base_gfn = BASE, .npages = NPAGES } } };
	struct tkvm_guest_result res;
	char why[256] = "";
	unsigned long long x = 12345, steps = 0, kernel_ops = 0, errors = 0;
	double t0, c0, t, c;
	struct tkvm_vm *vm;

	if (seconds <= 0) {
		fprintf(stderr, "usage: tdxhp_kvm_raw SECONDS (a positive number)\n");
		return 2;
	}
	vm = tkvm_create(&cfg, why, sizeof(why));
	if (!vm) {
		printf("{\"skip\": \"plain VM: %s\"}\n", why);
		return 4;
	}
	t0 = now();
	c0 = cpu();
	do {
		for (int i = 0; i < 64; ++i, ++steps) {
			x = x * 6364136223846793005ULL + 1442695040888963407ULL;
			const unsigned long long r = x >> 33;
			const unsigned long long gfn = BASE + r % NPAGES;
			int e = 0;
			switch (r % 100 / 4) { /* 25 buckets: 16 access (0.64), 5 punch (0.2), 4 no kernel op */
			case 0: case 1: case 2: case 3: case 4: case 5: case 6: case 7:
				e = tkvm_guest_access(vm, gfn, true, r, &res);
				++kernel_ops;
				break;
			case 8: case 9: case 10: case 11: case 12: case 13: case 14: case 15:
				e = tkvm_guest_access(vm, gfn, false, 0, &res);
				++kernel_ops;
				break;
			case 16: case 17: case 18: case 19:
				e = tkvm_punch_hole(vm, gfn, 1);
				++kernel_ops;
				break;
			case 20:
				e = tkvm_punch_hole(vm, gfn & ~511ULL, 512);
				++kernel_ops;
				break;
			default:
				break;
			}
			errors += e != 0;
		}
		t = now() - t0;
	} while (t < seconds);
	c = cpu() - c0;
	printf("{\"steps\": %llu, \"kernel_ops\": %llu, \"errors\": %llu, \"seconds\": %.3f, \"cpu_seconds\": %.3f, "
	       "\"steps_per_sec\": %.1f, \"steps_per_cpu_sec\": %.1f}\n",
	       steps, kernel_ops, errors, t, c, steps / t, c > 0 ? steps / c : 0.0);
	tkvm_destroy(vm);
	return 0;
}
