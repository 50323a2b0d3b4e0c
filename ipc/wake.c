/* ipc/wake.c — futex wait/wake across processes (see wake.h).
 *
 * Shared (non-private) futex operations, because the waiters are in
 * different processes mapping the same anonymous shared page.
 */
#include "ipc/wake.h"

#include <errno.h>
#include <limits.h>
#include <linux/futex.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

int ipc_wake_wait(_Atomic uint32_t *word, uint32_t expected, int timeout_ms)
{
	struct timespec ts, *tp = NULL;

	if (timeout_ms >= 0) {
		ts.tv_sec = timeout_ms / 1000;
		ts.tv_nsec = (long)(timeout_ms % 1000) * 1000000L;
		tp = &ts;
	}
	if (syscall(SYS_futex, (uint32_t *)word, FUTEX_WAIT, expected, tp,
		    NULL, 0) == 0)
		return 0;
	if (errno == EAGAIN)
		return 0; /* the value had already changed */
	return -errno;
}

void ipc_wake_all(_Atomic uint32_t *word)
{
	syscall(SYS_futex, (uint32_t *)word, FUTEX_WAKE, INT_MAX, NULL, NULL,
		0);
}
