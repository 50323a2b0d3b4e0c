/* ipc/flock.h — open-file-description (OFD) byte-range locks.
 *
 * Owns: F_OFD_SETLK / F_OFD_SETLKW wrappers. OFD locks belong to the open
 * file description, not the process: closing some other descriptor of the
 * same file does not drop them (the classic POSIX-lock trap SQLite warns
 * about), and a descriptor inherited across fork() is shared, so every
 * process that needs its own locks must open() the file itself.
 * Linux only, by design (F_OFD_* since 3.15).
 */
#ifndef CASKD_IPC_FLOCK_H
#define CASKD_IPC_FLOCK_H

#include <stdint.h>
#include <sys/types.h>

enum ipc_flock_mode {
	IPC_FLOCK_READ,
	IPC_FLOCK_WRITE,
	IPC_FLOCK_UNLOCK,
};

/* Locks [off, off+len) of fd (len 0: to the end of the file and beyond).
 * wait=0: -EAGAIN if a conflicting lock is held elsewhere. 0 or -errno. */
int ipc_flock(int fd, enum ipc_flock_mode mode, uint64_t off, uint64_t len,
	      int wait);
/* The pid of a process holding a lock conflicting with a write lock on
 * [off, off+len), 0 if none (OFD locks may report -1 for "unknown"). */
pid_t ipc_flock_holder(int fd, uint64_t off, uint64_t len);

#endif
