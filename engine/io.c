/* engine/io.c — file I/O with EINTR/short-write handling, the backend
 * (see io.h). */
#include "engine/io.h"

#include "engine/record.h"
#include "engine/failpoint.h"
#include "ipc/mutex.h"

#include <assert.h>

#include <errno.h>
#include <fcntl.h>
#include <linux/falloc.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

/* --- the backend ------------------------------------------------------------ */

/* The real calls, with the backend's signatures (open and
 * sync_file_range are declared otherwise by libc). */
static ssize_t sys_pwrite(int fd, const void *b, size_t n, off_t off)
{
	return pwrite(fd, b, n, off);
}

static int sys_sync_file_range(int fd, off_t off, off_t len, unsigned int flags)
{
	return sync_file_range(fd, off, len, flags);
}

static int sys_open(const char *path, int flags, mode_t mode)
{
	return open(path, flags, mode);
}

#define SYS_BACKEND {                                   \
	.pwrite = sys_pwrite,                           \
	.fdatasync = fdatasync,                         \
	.ftruncate = ftruncate,                         \
	.fallocate = fallocate,                         \
	.fsync = fsync,                                 \
	.sync_file_range = sys_sync_file_range,         \
	.open = sys_open,                               \
	.rename = rename,                               \
	.unlink = unlink,                               \
	.mkdir = mkdir,                                 \
}

static const struct eng_io_backend sys_backend = SYS_BACKEND;
/* The backend in use: the one set, with its NULL members filled from
 * sys_backend, so that no call site needs to check. */
static struct eng_io_backend cur = SYS_BACKEND;
static const struct eng_io_backend *const io = &cur;

#define FILL(m) cur.m = b && b->m ? b->m : sys_backend.m

void eng_io_set_backend(const struct eng_io_backend *b)
{
	FILL(pwrite);
	FILL(fdatasync);
	FILL(ftruncate);
	FILL(fallocate);
	FILL(fsync);
	FILL(sync_file_range);
	FILL(open);
	FILL(rename);
	FILL(unlink);
	FILL(mkdir);
}

#undef FILL

/* --- the calls ----------------------------------------------------------------- */

int eng_io_pwrite_all(int fd, const void *buf, size_t len, uint64_t off)
{
	const char *p = buf;
	int rc, torn;

	assert(!ipc_mtx_held_any()); /* no mutex across file I/O (mutex.h) */
	if ((rc = ENG_FP("io.write")))
		return rc;
	/* a write the device failed half way: its second half is there
	 * (pages reach the disk in no particular order), its start is not */
	if ((torn = ENG_FP("io.write.torn"))) {
		p += len / 2;
		off += len / 2;
		len -= len / 2;
	}
	while (len) {
		ssize_t n = io->pwrite(fd, p, len, (off_t)off);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (n == 0)
			return -EIO; /* a regular file never does this */
		p += n;
		off += (uint64_t)n;
		len -= (size_t)n;
	}
	return torn;
}

int eng_io_datasync(int fd)
{
	int rc;

	assert(!ipc_mtx_held_any());
	ENG_FP("sync.before");
	rc = ENG_FP("io.fsync");
	if (rc == 0 && io->fdatasync(fd) < 0)
		rc = -errno; /* never retried: see docs/durability.md */
	ENG_FP("sync.after");
	return rc;
}

int eng_io_fsync(int fd)
{
	int rc;

	assert(!ipc_mtx_held_any());
	rc = ENG_FP("io.fsync");
	if (rc == 0 && io->fsync(fd) < 0)
		rc = -errno; /* never retried, as eng_io_datasync */
	return rc;
}

static int open_eintr(const char *path, int flags, mode_t mode)
{
	int fd;

	while ((fd = io->open(path, flags, mode)) < 0)
		if (errno != EINTR)
			return -errno;
	return fd;
}

int eng_io_syncdir(const char *dir)
{
	int fd = open_eintr(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC, 0);
	int rc = 0;

	if (fd >= 0) {
		if (io->fsync(fd) < 0)
			rc = -errno;
		close(fd);
	} else {
		rc = fd;
	}
	return rc;
}

int eng_io_truncate(int fd, uint64_t len)
{
	assert(!ipc_mtx_held_any());
	while (io->ftruncate(fd, (off_t)len) < 0)
		if (errno != EINTR)
			return -errno;
	return 0;
}

int eng_io_fallocate(int fd, int mode, uint64_t off, uint64_t len)
{
	assert(!ipc_mtx_held_any());
	while (io->fallocate(fd, mode, (off_t)off, (off_t)len) < 0)
		if (errno != EINTR)
			return -errno;
	return 0;
}

int eng_io_discard(int fd, uint64_t off, uint64_t len)
{
	char pad[ENG_REC_HDR_SIZE];
	int rc = 0;

	assert(!ipc_mtx_held_any());
	if ((rc = ENG_FP("io.discard")))
		return rc;
	while (io->fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
			     (off_t)off, (off_t)len) < 0) {
		if (errno == EINTR)
			continue;
		if (errno != EOPNOTSUPP && errno != ENOSYS) {
			rc = -errno;
			break;
		}
		eng_rec_encode_pad(pad, len, 0);
		return eng_io_pwrite_all(fd, pad, sizeof(pad), off);
	}
	return rc;
}

int eng_io_sync_range(int fd, uint64_t off, uint64_t len, unsigned int flags)
{
	int rc = 0;

	assert(!ipc_mtx_held_any());
	while (io->sync_file_range(fd, (off_t)off, (off_t)len, flags) < 0) {
		if (errno == EINTR)
			continue;
		if (errno != ENOSYS)
			rc = -errno;
		break;
	}
	return rc;
}

int eng_io_open(const char *path, int flags, mode_t mode)
{
	return open_eintr(path, flags, mode);
}

int eng_io_rename(const char *from, const char *to)
{
	/* a signal can interrupt even a rename on some file systems */
	while (io->rename(from, to) < 0)
		if (errno != EINTR)
			return -errno;
	return 0;
}

int eng_io_unlink(const char *path)
{
	while (io->unlink(path) < 0)
		if (errno != EINTR)
			return -errno;
	return 0;
}

int eng_io_mkdir(const char *path, mode_t mode)
{
	while (io->mkdir(path, mode) < 0)
		if (errno != EINTR)
			return -errno;
	return 0;
}
