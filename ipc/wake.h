/* ipc/wake.h — cross-process wait/wake on a 32-bit word in shared memory.
 *
 * Owns: the futex calls. Used by group commit: a process waiting for a
 * sync generation sleeps on the generation word and the syncer wakes all
 * sleepers when it advances. Only threads that may block call wait (never
 * an event loop thread).
 */
#ifndef CASKD_IPC_WAKE_H
#define CASKD_IPC_WAKE_H

#include <stdatomic.h>
#include <stdint.h>

/* Sleeps while *word == expected, at most timeout_ms (<0: no limit).
 * Returns 0 when woken or the value differs, -ETIMEDOUT, or -EINTR. */
int ipc_wake_wait(_Atomic uint32_t *word, uint32_t expected, int timeout_ms);
/* Wakes every process sleeping on word. */
void ipc_wake_all(_Atomic uint32_t *word);

#endif
