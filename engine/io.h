/* engine/io.h — the engine's file I/O, behind a swappable backend.
 *
 * Owns: every write-side system call the engine makes on database.bin
 * (pwrite, fdatasync, ftruncate, hole punching), the EINTR and short-write
 * loops around them, and the failpoints on them. Tests replace the backend
 * (eng_io_set_backend) with a crash simulator that keeps unsynced writes
 * aside and drops or tears them at a simulated power cut, as SQLite's test
 * VFS does; see tests/unit/test_powerloss.c.
 */
#ifndef CASKD_ENGINE_IO_H
#define CASKD_ENGINE_IO_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct eng_io_backend {
	ssize_t (*pwrite)(int fd, const void *buf, size_t len, off_t off);
	int (*fdatasync)(int fd);
	int (*ftruncate)(int fd, off_t len);
	int (*fallocate)(int fd, int mode, off_t off, off_t len);
};

/* Replaces the backend (NULL: the real system calls). Tests only; call
 * before any I/O. */
void eng_io_set_backend(const struct eng_io_backend *b);

/* Writes all of buf at off: loops on EINTR and short writes. 0 or -errno
 * (-ENOSPC, -EIO, ...); after an error part of the range may be written.
 * Failpoints "io.write" (enospc/eio: nothing written) and "io.write.torn"
 * (the second half written, not the first, then the error). */
int eng_io_pwrite_all(int fd, const void *buf, size_t len, uint64_t off);
/* fdatasync. 0 or -errno. Failpoints "io.fsync" (eio) and
 * "sync.before" / "sync.after" (crash). */
int eng_io_datasync(int fd);
/* fsync of a directory, after creating or renaming a file in it. */
int eng_io_syncdir(const char *dir);
int eng_io_truncate(int fd, uint64_t len);
/* Makes [off, off+len) read as zeros and frees its blocks (punch hole);
 * falls back to writing a PAD record header where punching is not
 * supported. Used to wipe a reservation whose write failed or whose
 * writer died, so no half record is ever recovered. 0 or -errno.
 * Failpoint "io.discard" (eio). */
int eng_io_discard(int fd, uint64_t off, uint64_t len);

#endif
