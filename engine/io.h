/* engine/io.h — the engine's file I/O, behind a swappable backend.
 *
 * Owns: every system call the engine makes that changes what is on disk
 * (pwrite, fdatasync, fsync, ftruncate, fallocate and hole punching,
 * sync_file_range, creating opens, rename, unlink, mkdir, directory
 * syncs), the EINTR and short-write loops around them and the failpoints
 * on them. As with SQLite's aSyscall[], a test replaces the backend
 * (eng_io_set_backend) with a crash simulator that keeps unsynced writes
 * aside and drops or tears them at a simulated power cut (engine/io_sim.h
 * and tests/unit/test_powerloss.c); and since every such call of every
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

#endif
