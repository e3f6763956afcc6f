/* The command mailbox between the host side and the guest's command loop. */
#ifndef TDXHP_KVM_GUEST_H
#define TDXHP_KVM_GUEST_H

#include <stdint.h>

enum guest_cmd { GUEST_CMD_READ = 1, GUEST_CMD_WRITE, GUEST_CMD_ACCEPT, GUEST_CMD_MAP_GPA };

struct guest_mailbox {
	uint64_t cmd;
	uint64_t gva;      /* READ/WRITE: where */
	uint64_t value;    /* WRITE: what; READ: result */
	uint64_t gpa;      /* ACCEPT/MAP_GPA: guest-physical address (tdx) */
	uint64_t level;    /* ACCEPT: 0=4K 1=2M 2=1G */
	uint64_t npages;   /* MAP_GPA */
	uint64_t to_private;
	uint64_t status;   /* ACCEPT/MAP_GPA: TDX status the guest saw */
	uint64_t ve_count; /* #VEs the guest took, cumulative */
	uint64_t seq;      /* bumped by the guest per finished command */
};

/* Guest virtual address at which test gpa is mapped (identity plus a fixed offset, so it
 * never collides with the ELF or libkvm's allocations). */
#define GUEST_TEST_VA_BASE (1ULL << 40)

extern struct guest_mailbox guest_mailbox;
void guest_command_loop(void);

#endif
