/* Guest side of the plain and swprot flavours: a loop that runs one mailbox command per
 * GUEST_SYNC, like a script the host reads line by line. Built without sanitizers: this
 * code runs inside the VM. */
#include "guest.h"

#include "kvm_util.h"
#include "ucall_common.h"

struct guest_mailbox guest_mailbox;

void guest_command_loop(void)
{
	for (;;) {
		volatile struct guest_mailbox *m = &guest_mailbox;
		volatile uint64_t *p = (volatile uint64_t *)m->gva;

		switch (m->cmd) {
		case GUEST_CMD_READ:
			m->value = *p;
			break;
		case GUEST_CMD_WRITE:
			*p = m->value;
			break;
		default:
			/* accept and MapGPA exist only in a TD (tdx_guest.c). */
			m->status = ~0ULL;
			break;
		}
		m->seq++;
		GUEST_SYNC(m->seq);
	}
}
