/* engine/io.h — the engine's file I/O, behind a swappable backend.
 *
 * Owns: every system call the engine makes that changes what is on disk
 * (pwrite, fdatasync, fsync, ftruncate, fallocate and hole punching,
 * sync_file_range, creating opens, rename, unlink, mkdir, directory
 * syncs), the EINTR and short-write loops around them, the failpoints
 * on them, and the crash drill that kills a process right after its
 * K-th call, or fails that call (CASKD_CRASH_SYSCALL, below). As with
 * SQLite's aSyscall[], a test replaces the backend (eng_io_set_backend)
 * with a crash simulator that keeps unsynced writes aside and drops or
 * tears them at a simulated power cut (engine/io_sim.h and
 * tests/unit/test_powerloss.c); and since every such call of every
 * background job passes here, a drill can stop a job at any one of them.
 *
 * Reads (pread, mmap), closes, locks and opens that create nothing stay
 * direct: they change nothing a crash could leave behind.
 */
#ifndef CASKD_ENGINE_IO_H
#define CASKD_ENGINE_IO_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* The system calls under the wrappers. A backend may leave any member
 * NULL: that one stays the real system call. Each returns as the system
 * call does (-1 and errno). */
struct eng_io_backend {
	ssize_t (*pwrite)(int fd, const void *buf, size_t len, off_t off);
	int (*fdatasync)(int fd);
	int (*ftruncate)(int fd, off_t len);
	int (*fallocate)(int fd, int mode, off_t off, off_t len);
	int (*fsync)(int fd);
	int (*sync_file_range)(int fd, off_t off, off_t len, unsigned int flags);
	int (*open)(const char *path, int flags, mode_t mode);
	int (*rename)(const char *from, const char *to);
	int (*unlink)(const char *path);
	int (*mkdir)(const char *path, mode_t mode);
};

/* Replaces the backend (NULL: the real system calls). Tests only; call
 * before any I/O. */
void eng_io_set_backend(const struct eng_io_backend *b);

/* Every function below returns 0 (eng_io_open: a descriptor) or -errno,
 * and retries on EINTR. */

/* Writes all of buf at off: loops on short writes. After an error part
 * of the range may be written. Failpoints "io.write" (enospc/eio:
 * nothing written) and "io.write.torn" (the second half written, not the
 * first, then the error). */
int eng_io_pwrite_all(int fd, const void *buf, size_t len, uint64_t off);
/* A read (direct, as every read: no backend, no failpoint): len bytes at
 * off, through EINTR and short reads. 0, -ENODATA if the file ends
 * first, or -errno. */
int eng_io_pread_all(int fd, void *buf, size_t len, uint64_t off);
/* fdatasync. Failpoints "io.fsync" (eio) and "sync.before" /
 * "sync.after" (crash). Never retried after a failure: see
 * docs/durability.md. */
int eng_io_datasync(int fd);
/* fsync: for a new file whose size and blocks must be durable with it.
 * Failpoint "io.fsync" (eio). */
int eng_io_fsync(int fd);
/* fsync of a directory, after creating, renaming or removing a file in
 * it. */
int eng_io_syncdir(const char *dir);
int eng_io_truncate(int fd, uint64_t len);
/* fallocate(fd, mode, off, len). */
int eng_io_fallocate(int fd, int mode, uint64_t off, uint64_t len);
/* Makes [off, off+len) read as zeros and frees its blocks (punch hole);
 * falls back to writing a PAD record header where punching is not
 * supported. Used to wipe a reservation whose write failed or whose
 * writer died, so no half record is ever recovered.
 * Failpoint "io.discard" (eio). */
int eng_io_discard(int fd, uint64_t off, uint64_t len);
/* sync_file_range: starts (and with the WAIT flags, waits for) write-back
 * of a range. Only a hint about when pages are written, never about
 * durability, so where the kernel lacks it (ENOSYS) it is a no-op: 0. */
int eng_io_sync_range(int fd, uint64_t off, uint64_t len, unsigned int flags);
/* open(path, flags, mode) where flags may create the file (O_CREAT):
 * the descriptor, or -errno. */
int eng_io_open(const char *path, int flags, mode_t mode);
int eng_io_rename(const char *from, const char *to);
/* -ENOENT when there is no such file. */
int eng_io_unlink(const char *path);
/* -EEXIST when it is there already. */
int eng_io_mkdir(const char *path, mode_t mode);

/* --- the crash drill ------------------------------------------------------
 *
 *     CASKD_CRASH_SYSCALL=ROLE:K[:group|:eio|:enospc]  or  ROLE:trace
 *
 * A process doing ROLE's work logs each call of the functions above it
 * makes in that role ("crash drill: ROLE call N is NAME(FILE) = RC";
 * each wrapper call is one call, whatever it loops on) and SIGKILLs
 * itself right after the K-th; with ":group" it kills its whole process
 * group (master, workers, job) at once instead; with ":eio" or
 * ":enospc" the K-th call is not made and fails with that errno, and
 * the process goes on (its error paths are what is drilled). "trace"
 * only logs: the list of the role's crash points. Counts are per
 * process: a forked process counts from zero, as failpoints do.
 * The roles the daemon gives (server/): "master" (start-up recovery and
 * the master's own work), "space" (the master preparing space: the
 * database.reserve file and the zeros ahead of the tail), "stop" (the
 * master once its workers stopped: the trim and database.idx), "job" (a
 * job process, from its start) and "worker". Tests only, as failpoints
 * are: unset, a call costs one load and a predicted branch more. */

/* Reads CASKD_CRASH_SYSCALL: 0 (also when unset), or -EINVAL when
 * malformed. Call once at start, before fork. */
int eng_io_crash_init(void);
/* From now on this process does role's work (a static string; NULL: no
 * role). Not per thread: set it where the process does one thing. */
void eng_io_set_role(const char *role);
/* When the drill is armed for a role this process worked in and it did
 * not crash: logs "crash drill: ROLE made N calls through engine/io",
 * so a drill knows it went past the last call. Call when the work is
 * over. */
void eng_io_crash_report(void);

#endif
