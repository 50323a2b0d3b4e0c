/* engine/io.c — file I/O with EINTR/short-write handling (see io.h). */
#include "engine/io.h"

#include "engine/record.h"
#include "engine/failpoint.h"
#include "ipc/mutex.h"

#include <assert.h>

#include <errno.h>
#include <fcntl.h>
#include <linux/falloc.h>
#include <unistd.h>

static ssize_t sys_pwrite(int fd, const void *b, size_t n, off_t off)
{
	return pwrite(fd, b, n, off);
}

static const struct eng_io_backend sys_backend = {
	.pwrite = sys_pwrite,
	.fdatasync = fdatasync,
	.ftruncate = ftruncate,
	.fallocate = fallocate,
};

static const struct eng_io_backend *io = &sys_backend;

void eng_io_set_backend(const struct eng_io_backend *b)
{
	io = b ? b : &sys_backend;
}

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

int eng_io_syncdir(const char *dir)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	int rc = 0;

	if (fd < 0)
		return -errno;
	if (fsync(fd) < 0)
		rc = -errno;
	close(fd);
	return rc;
}

int eng_io_truncate(int fd, uint64_t len)
{
	assert(!ipc_mtx_held_any());
	while (io->ftruncate(fd, (off_t)len) < 0) {
		if (errno != EINTR)
			return -errno;
	}
	return 0;
}

int eng_io_discard(int fd, uint64_t off, uint64_t len)
{
	char pad[ENG_REC_HDR_SIZE];

	int rc;

	assert(!ipc_mtx_held_any());
	if ((rc = ENG_FP("io.discard")))
		return rc;
	if (io->fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
			  (off_t)off, (off_t)len) == 0)
		return 0;
	if (errno != EOPNOTSUPP && errno != ENOSYS)
		return -errno;
	eng_rec_encode_pad(pad, len, 0);
	return eng_io_pwrite_all(fd, pad, sizeof(pad), off);
}
