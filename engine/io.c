/* engine/io.c — file I/O with EINTR/short-write handling, the backend
 * and the crash drill (see io.h). */
#include "engine/io.h"

#include "engine/elog.h"
#include "engine/record.h"
#include "engine/failpoint.h"
#include "ipc/mutex.h"

#include <assert.h>

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <linux/falloc.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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

/* --- the crash drill --------------------------------------------------------- */

#define ROLE_MAX 16

enum crash_how { CRASH_SELF, CRASH_GROUP, CRASH_FAIL };

static int crash_armed;               /* CASKD_CRASH_SYSCALL parsed */
static char crash_role[ROLE_MAX];
static uint64_t crash_at;             /* K; 0: trace, crash nowhere */
static enum crash_how crash_how;
static int crash_errno;               /* CRASH_FAIL: the K-th call fails so */
static const char *role;              /* what this process does now */
static pid_t counted_pid;             /* the process the count is of */
static _Atomic uint64_t calls;        /* calls made in crash_role */
static int role_seen;                 /* this process worked in crash_role */

int eng_io_crash_init(void)
{
	static const struct { const char *name; enum crash_how how; int err; } hows[] = {
		{ "", CRASH_SELF, 0 }, { ":group", CRASH_GROUP, 0 },
		{ ":eio", CRASH_FAIL, EIO }, { ":enospc", CRASH_FAIL, ENOSPC },
	};
	const char *spec = getenv("CASKD_CRASH_SYSCALL");
	const char *colon, *k;
	char *end;
	size_t n;

	crash_armed = 0;
	crash_at = 0;
	if (!spec || !*spec)
		return 0;
	colon = strchr(spec, ':');
	n = colon ? (size_t)(colon - spec) : 0;
	if (!n || n >= ROLE_MAX)
		return -EINVAL;
	memcpy(crash_role, spec, n);
	crash_role[n] = '\0';
	k = colon + 1;
	if (!strncmp(k, "trace", 5)) {
		end = (char *)k + 5;
	} else {
		if (*k < '1' || *k > '9')
			return -EINVAL; /* no sign, no space, no zero */
		errno = 0;
		crash_at = strtoull(k, &end, 10);
		if (errno)
			return -EINVAL;
	}
	for (size_t i = 0; i < sizeof(hows) / sizeof(hows[0]); i++)
		if (!strcmp(end, hows[i].name)) {
			crash_how = hows[i].how;
			crash_errno = hows[i].err;
			crash_armed = 1;
			return 0;
		}
	return -EINVAL;
}

/* The process is in the armed role: counts from zero in a process
 * forked since it last counted. */
static int counting(void)
{
	pid_t me;

	if (!role || strcmp(role, crash_role))
		return 0;
	me = getpid();
	if (me != counted_pid) {
		counted_pid = me;
		atomic_store(&calls, 0);
	}
	role_seen = 1;
	return 1;
}

void eng_io_set_role(const char *r)
{
	role = r;
	if (crash_armed)
		counting(); /* a job that makes no call still says so */
}

/* The file fd is open on (its last path component), for the log line. */
static const char *fd_name(int fd, char *buf, size_t n)
{
	char link[32];
	ssize_t len;
	const char *slash;

	snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
	len = readlink(link, buf, n - 1);
	if (len < 0)
		return "?";
	buf[len] = '\0';
	slash = strrchr(buf, '/');
	return slash && slash[1] ? slash + 1 : buf;
}

static const char *base_name(const char *path)
{
	const char *slash = strrchr(path, '/');

	return slash && slash[1] ? slash + 1 : path;
}

/* Before a call: its number in the armed role (0: not counted); *rc
 * gets -errno if the drill makes this call fail without making it. */
static uint64_t call_begin_slow(int *rc)
{
	uint64_t k;

	if (!counting())
		return 0;
	k = atomic_fetch_add(&calls, 1) + 1;
	if (k == crash_at && crash_how == CRASH_FAIL)
		*rc = -crash_errno;
	return k;
}

/* After call k: logs it (the drill's evidence: a test reads which calls
 * came, and which one was the K-th); the K-th kills the process, or its
 * group. fd < 0: the call is on path (and path2). */
static void call_end_slow(uint64_t k, const char *call, int fd, const char *path,
			  const char *path2, int rc)
{
	char buf[PATH_MAX], what[2 * PATH_MAX + 64];

	if (fd >= 0)
		snprintf(what, sizeof(what), "%s(%s)", call, fd_name(fd, buf, sizeof(buf)));
	else if (path2)
		snprintf(what, sizeof(what), "%s(%s, %s)", call, base_name(path),
			 base_name(path2));
	else
		snprintf(what, sizeof(what), "%s(%s)", call, base_name(path));
	if (k != crash_at) {
		eng_log(ENG_LOG_WARN, "crash drill: %s call %" PRIu64 " is %s = %d",
			crash_role, k, what, rc);
		return;
	}
	if (crash_how == CRASH_FAIL) {
		eng_log(ENG_LOG_WARN, "crash drill: %s call %" PRIu64 " is %s = %d; made "
			"to fail, not made", crash_role, k, what, rc);
		return;
	}
	eng_log(ENG_LOG_WARN, "crash drill: %s call %" PRIu64 " is %s = %d; SIGKILL "
		"to the %s", crash_role, k, what, rc,
		crash_how == CRASH_GROUP ? "process group" : "process");
	kill(crash_how == CRASH_GROUP ? 0 : getpid(), SIGKILL);
	_exit(137); /* not reached: SIGKILL cannot be caught */
}

/* Every wrapper: CALL_BEGIN(k, rc) first (rc is 0, or the drill's
 * errno: then the call is not made), CALL_END(k, ...) once rc is its
 * result. Unarmed: a load and a branch each. */
#define CALL_BEGIN(k, rc)                                                      \
	uint64_t k = 0;                                                        \
	int rc = 0;                                                            \
	if (__builtin_expect(crash_armed, 0))                                  \
		k = call_begin_slow(&rc)

#define CALL_END(k, call, fd, path, path2, rc)                                 \
	do {                                                                   \
		if (__builtin_expect(k != 0, 0))                               \
			call_end_slow(k, call, fd, path, path2, rc);           \
	} while (0)

void eng_io_crash_report(void)
{
	uint64_t n = atomic_load(&calls);

	if (!crash_armed || !role_seen || counted_pid != getpid())
		return;
	eng_log(ENG_LOG_WARN, "crash drill: %s made %" PRIu64 " calls through engine/io%s",
		crash_role, n, !crash_at ? "" : n < crash_at ? "; none was the K-th" :
		"; the K-th failed");
}

/* --- the calls ----------------------------------------------------------------- */

static int pwrite_loop(int fd, const char *p, size_t len, uint64_t off)
{
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
	return 0;
}

/* rc = 0, or -errno of call if it failed other than by EINTR. */
#define RETRY_EINTR(rc, call)                                                  \
	do {                                                                   \
		while ((call) < 0) {                                           \
			if (errno != EINTR) {                                  \
				rc = -errno;                                   \
				break;                                         \
			}                                                      \
		}                                                              \
	} while (0)

int eng_io_pread_all(int fd, void *buf, size_t len, uint64_t off)
{
	char *p = buf;

	while (len) {
		ssize_t n = pread(fd, p, len, (off_t)off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			return -ENODATA;
		p += n;
		len -= (size_t)n;
		off += (uint64_t)n;
	}
	return 0;
}

int eng_io_pwrite_all(int fd, const void *buf, size_t len, uint64_t off)
{
	CALL_BEGIN(k, rc);

	assert(!ipc_mtx_held_any()); /* no mutex across file I/O (mutex.h) */
	if (!rc)
		rc = ENG_FP("io.write");
	/* a write the device failed half way: its second half is there
	 * (pages reach the disk in no particular order), its start is not */
	if (!rc && (rc = ENG_FP("io.write.torn")) != 0)
		(void)pwrite_loop(fd, (const char *)buf + len / 2, len - len / 2,
				  off + len / 2);
	if (!rc)
		rc = pwrite_loop(fd, buf, len, off);
	CALL_END(k, "pwrite", fd, NULL, NULL, rc);
	return rc;
}

int eng_io_datasync(int fd)
{
	CALL_BEGIN(k, rc);

	assert(!ipc_mtx_held_any());
	ENG_FP("sync.before");
	if (!rc)
		rc = ENG_FP("io.fsync");
	if (rc == 0 && io->fdatasync(fd) < 0)
		rc = -errno; /* never retried: see docs/durability.md */
	ENG_FP("sync.after");
	CALL_END(k, "fdatasync", fd, NULL, NULL, rc);
	return rc;
}

int eng_io_fsync(int fd)
{
	CALL_BEGIN(k, rc);

	assert(!ipc_mtx_held_any());
	if (!rc)
		rc = ENG_FP("io.fsync");
	if (rc == 0 && io->fsync(fd) < 0)
		rc = -errno; /* never retried, as eng_io_datasync */
	CALL_END(k, "fsync", fd, NULL, NULL, rc);
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
	CALL_BEGIN(k, rc);
	int fd = rc ? rc : open_eintr(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC, 0);

	if (fd >= 0) {
		if (io->fsync(fd) < 0)
			rc = -errno;
		close(fd);
	} else {
		rc = fd;
	}
	CALL_END(k, "syncdir", -1, dir, NULL, rc);
	return rc;
}

int eng_io_truncate(int fd, uint64_t len)
{
	CALL_BEGIN(k, rc);

	assert(!ipc_mtx_held_any());
	if (!rc)
		RETRY_EINTR(rc, io->ftruncate(fd, (off_t)len));
	CALL_END(k, "ftruncate", fd, NULL, NULL, rc);
	return rc;
}

int eng_io_fallocate(int fd, int mode, uint64_t off, uint64_t len)
{
	CALL_BEGIN(k, rc);

	assert(!ipc_mtx_held_any());
	if (!rc)
		RETRY_EINTR(rc, io->fallocate(fd, mode, (off_t)off, (off_t)len));
	CALL_END(k, "fallocate", fd, NULL, NULL, rc);
	return rc;
}

int eng_io_discard(int fd, uint64_t off, uint64_t len)
{
	char pad[ENG_REC_HDR_SIZE];
	CALL_BEGIN(k, rc);

	assert(!ipc_mtx_held_any());
	if (!rc)
		rc = ENG_FP("io.discard");
	if (!rc) {
		RETRY_EINTR(rc, io->fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
					      (off_t)off, (off_t)len));
		if (rc == -EOPNOTSUPP || rc == -ENOSYS) {
			eng_rec_encode_pad(pad, len, 0);
			rc = pwrite_loop(fd, pad, sizeof(pad), off);
		}
	}
	CALL_END(k, "discard", fd, NULL, NULL, rc);
	return rc;
}

int eng_io_sync_range(int fd, uint64_t off, uint64_t len, unsigned int flags)
{
	CALL_BEGIN(k, rc);

	assert(!ipc_mtx_held_any());
	if (!rc) {
		RETRY_EINTR(rc, io->sync_file_range(fd, (off_t)off, (off_t)len, flags));
		if (rc == -ENOSYS)
			rc = 0;
	}
	CALL_END(k, "sync_file_range", fd, NULL, NULL, rc);
	return rc;
}

int eng_io_open(const char *path, int flags, mode_t mode)
{
	CALL_BEGIN(k, rc);
	int fd = rc ? rc : open_eintr(path, flags, mode);

	CALL_END(k, "open", -1, path, NULL, fd < 0 ? fd : 0);
	return fd;
}

int eng_io_rename(const char *from, const char *to)
{
	CALL_BEGIN(k, rc);

	/* a signal can interrupt even a rename on some file systems */
	if (!rc)
		RETRY_EINTR(rc, io->rename(from, to));
	CALL_END(k, "rename", -1, from, to, rc);
	return rc;
}

int eng_io_unlink(const char *path)
{
	CALL_BEGIN(k, rc);

	if (!rc)
		RETRY_EINTR(rc, io->unlink(path));
	CALL_END(k, "unlink", -1, path, NULL, rc);
	return rc;
}

int eng_io_mkdir(const char *path, mode_t mode)
{
	CALL_BEGIN(k, rc);

	if (!rc)
		RETRY_EINTR(rc, io->mkdir(path, mode));
	CALL_END(k, "mkdir", -1, path, NULL, rc);
	return rc;
}
