/* tests/unit/test_io.c — engine/io: every wrapper reaches the backend,
 * a backend's NULL members stay the real calls, and the wrappers retry
 * EINTR and short writes and return 0 or -errno.
 *
 * The backend here records the name of each call it gets, so a test can
 * say which system calls a wrapper made, in order; it injects EINTR,
 * short writes or an errno when told to.
 */
#include "engine/io.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/falloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define LOG_MAX 64

static const char *seen[LOG_MAX];
static int nseen;
static int eintr_left;   /* fail this many calls with EINTR first */
static int fail_errno;   /* then fail with this (0: do the call) */
static const char *fail_only; /* ... but only this call (NULL: any) */
static size_t short_max; /* pwrite writes at most this much (0: all) */

static char dir[] = "/tmp/caskd-io-XXXXXX";

static const char *last;

static void saw(const char *name)
{
	cr_assert_lt(nseen, LOG_MAX);
	seen[nseen++] = last = name;
}

/* Injects what the test asked for into the call saw() just logged: -1
 * and errno, or 0 to go on. */
static int inject(void)
{
	if (fail_only && strcmp(fail_only, last))
		return 0;
	if (eintr_left > 0) {
		eintr_left--;
		errno = EINTR;
		return -1;
	}
	if (fail_errno) {
		errno = fail_errno;
		return -1;
	}
	return 0;
}

static ssize_t t_pwrite(int fd, const void *b, size_t n, off_t off)
{
	saw("pwrite");
	if (inject())
		return -1;
	return pwrite(fd, b, short_max && n > short_max ? short_max : n, off);
}

static int t_fdatasync(int fd)
{
	saw("fdatasync");
	return inject() ? -1 : fdatasync(fd);
}

static int t_ftruncate(int fd, off_t len)
{
	saw("ftruncate");
	return inject() ? -1 : ftruncate(fd, len);
}

static int t_fallocate(int fd, int mode, off_t off, off_t len)
{
	saw("fallocate");
	return inject() ? -1 : fallocate(fd, mode, off, len);
}

static int t_fsync(int fd)
{
	saw("fsync");
	return inject() ? -1 : fsync(fd);
}

static int t_sync_file_range(int fd, off_t off, off_t len, unsigned int flags)
{
	saw("sync_file_range");
	return inject() ? -1 : sync_file_range(fd, off, len, flags);
}

static int t_open(const char *path, int flags, mode_t mode)
{
	saw("open");
	return inject() ? -1 : open(path, flags, mode);
}

static int t_rename(const char *from, const char *to)
{
	saw("rename");
	return inject() ? -1 : rename(from, to);
}

static int t_unlink(const char *path)
{
	saw("unlink");
	return inject() ? -1 : unlink(path);
}

static int t_mkdir(const char *path, mode_t mode)
{
	saw("mkdir");
	return inject() ? -1 : mkdir(path, mode);
}

static const struct eng_io_backend every = {
	.pwrite = t_pwrite, .fdatasync = t_fdatasync, .ftruncate = t_ftruncate,
	.fallocate = t_fallocate, .fsync = t_fsync,
	.sync_file_range = t_sync_file_range, .open = t_open, .rename = t_rename,
	.unlink = t_unlink, .mkdir = t_mkdir,
};

static void setup(void)
{
	cr_assert_not_null(mkdtemp(dir));
	nseen = eintr_left = fail_errno = 0;
	fail_only = NULL;
	short_max = 0;
	eng_io_set_backend(&every);
}

static void teardown(void)
{
	char cmd[128];

	eng_io_set_backend(NULL);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	cr_assert_eq(system(cmd), 0);
}

TestSuite(io, .init = setup, .fini = teardown);

static void path_of(char *out, size_t n, const char *name)
{
	cr_assert_lt((size_t)snprintf(out, n, "%s/%s", dir, name), n);
}

static void expect_seen(const char *const *want, int n)
{
	cr_assert_eq(nseen, n, "%d calls reached the backend, expected %d", nseen, n);
	for (int i = 0; i < n; i++)
		cr_assert_str_eq(seen[i], want[i], "call %d", i);
}

Test(io, each_wrapper_is_one_backend_call_in_order)
{
	static const char *const want[] = {
		"mkdir", "open", "pwrite", "fdatasync", "fsync", "sync_file_range",
		"fallocate", "fallocate", "ftruncate", "rename", "open", "fsync",
		"unlink",
	};
	char sub[200], a[200], b[200];
	struct stat st;
	int fd;

	path_of(sub, sizeof(sub), "sub");
	path_of(a, sizeof(a), "sub/a");
	path_of(b, sizeof(b), "sub/b");
	cr_assert_eq(eng_io_mkdir(sub, 0750), 0);
	fd = eng_io_open(a, O_RDWR | O_CREAT | O_CLOEXEC, 0640);
	cr_assert_geq(fd, 0, "eng_io_open: %s", strerror(-fd));
	cr_assert_eq(eng_io_pwrite_all(fd, "hello", 5, 0), 0);
	cr_assert_eq(eng_io_datasync(fd), 0);
	cr_assert_eq(eng_io_fsync(fd), 0);
	cr_assert_eq(eng_io_sync_range(fd, 0, 5, SYNC_FILE_RANGE_WRITE), 0);
	cr_assert_eq(eng_io_fallocate(fd, 0, 0, 8192), 0);
	cr_assert_eq(eng_io_discard(fd, 4096, 4096), 0);
	cr_assert_eq(eng_io_truncate(fd, 5), 0);
	close(fd);
	cr_assert_eq(eng_io_rename(a, b), 0);
	cr_assert_eq(eng_io_syncdir(sub), 0);
	cr_assert_eq(stat(b, &st), 0);
	cr_assert_eq(st.st_size, 5, "the calls were really made");
	cr_assert_eq(eng_io_unlink(b), 0);
	cr_assert_neq(access(b, F_OK), 0);
	expect_seen(want, (int)(sizeof(want) / sizeof(want[0])));
}

Test(io, errors_come_back_as_minus_errno)
{
	char a[200], b[200];
	int fd;

	path_of(a, sizeof(a), "missing");
	path_of(b, sizeof(b), "other");
	cr_assert_eq(eng_io_unlink(a), -ENOENT);
	cr_assert_eq(eng_io_rename(a, b), -ENOENT);
	cr_assert_eq(eng_io_open(a, O_RDONLY | O_CLOEXEC, 0), -ENOENT);
	cr_assert_eq(eng_io_mkdir(dir, 0750), -EEXIST);
	fd = eng_io_open(b, O_RDWR | O_CREAT | O_CLOEXEC, 0640);
	cr_assert_geq(fd, 0);
	fail_errno = ENOSPC;
	cr_assert_eq(eng_io_pwrite_all(fd, "x", 1, 0), -ENOSPC);
	cr_assert_eq(eng_io_fallocate(fd, 0, 0, 4096), -ENOSPC);
	fail_errno = EIO;
	cr_assert_eq(eng_io_datasync(fd), -EIO);
	cr_assert_eq(eng_io_fsync(fd), -EIO);
	cr_assert_eq(eng_io_truncate(fd, 0), -EIO);
	fail_errno = 0;
	close(fd);
}

Test(io, eintr_is_retried_by_every_wrapper)
{
	char a[200], b[200], sub[200];
	int fd;

	path_of(a, sizeof(a), "a");
	path_of(b, sizeof(b), "b");
	path_of(sub, sizeof(sub), "sub");
	eintr_left = 2;
	fd = eng_io_open(a, O_RDWR | O_CREAT | O_CLOEXEC, 0640);
	cr_assert_geq(fd, 0);
	cr_assert_eq(nseen, 3, "two EINTRs, then the call");
	eintr_left = 1;
	cr_assert_eq(eng_io_pwrite_all(fd, "abc", 3, 0), 0);
	eintr_left = 1;
	cr_assert_eq(eng_io_truncate(fd, 2), 0);
	eintr_left = 1;
	cr_assert_eq(eng_io_fallocate(fd, 0, 0, 4096), 0);
	eintr_left = 1;
	cr_assert_eq(eng_io_sync_range(fd, 0, 2, SYNC_FILE_RANGE_WRITE), 0);
	close(fd);
	eintr_left = 1;
	cr_assert_eq(eng_io_rename(a, b), 0);
	eintr_left = 1;
	cr_assert_eq(eng_io_mkdir(sub, 0750), 0);
	eintr_left = 1;
	cr_assert_eq(eng_io_unlink(b), 0);
	cr_assert_eq(nseen, 3 + 7 * 2, "each retried once");
}

Test(io, short_writes_are_finished)
{
	char a[200], got[100], want[100];
	int fd;

	for (int i = 0; i < 100; i++)
		want[i] = (char)('a' + i % 26);
	path_of(a, sizeof(a), "a");
	fd = eng_io_open(a, O_RDWR | O_CREAT | O_CLOEXEC, 0640);
	cr_assert_geq(fd, 0);
	nseen = 0;
	short_max = 7;
	cr_assert_eq(eng_io_pwrite_all(fd, want, sizeof(want), 10), 0);
	cr_assert_eq(nseen, 15, "100 bytes, 7 at a time");
	cr_assert_eq(pread(fd, got, sizeof(got), 10), (ssize_t)sizeof(got));
	cr_assert_eq(memcmp(got, want, sizeof(want)), 0);
	close(fd);
}

Test(io, sync_range_without_kernel_support_is_a_no_op)
{
	char a[200];
	int fd;

	path_of(a, sizeof(a), "a");
	fd = eng_io_open(a, O_RDWR | O_CREAT | O_CLOEXEC, 0640);
	cr_assert_geq(fd, 0);
	fail_errno = ENOSYS;
	cr_assert_eq(eng_io_sync_range(fd, 0, 1, SYNC_FILE_RANGE_WRITE), 0);
	fail_errno = EIO;
	cr_assert_eq(eng_io_sync_range(fd, 0, 1, SYNC_FILE_RANGE_WRITE), -EIO);
	fail_errno = 0;
	close(fd);
}

Test(io, discard_without_hole_punching_writes_a_pad_header)
{
	static const char *const want[] = { "fallocate", "pwrite" };
	char a[200], zeros[64] = { 0 }, got[64];
	int fd;

	path_of(a, sizeof(a), "a");
	fd = eng_io_open(a, O_RDWR | O_CREAT | O_CLOEXEC, 0640);
	cr_assert_geq(fd, 0);
	cr_assert_eq(pwrite(fd, zeros, sizeof(zeros), 0), (ssize_t)sizeof(zeros));
	nseen = 0;
	fail_only = "fallocate";
	fail_errno = EOPNOTSUPP;
	cr_assert_eq(eng_io_discard(fd, 0, sizeof(zeros)), 0);
	expect_seen(want, 2);
	cr_assert_eq(pread(fd, got, sizeof(got), 0), (ssize_t)sizeof(got));
	cr_assert_neq(memcmp(got, zeros, sizeof(got)), 0,
		      "a PAD record header was written over the range");
	/* any other error is the caller's */
	fail_errno = EIO;
	cr_assert_eq(eng_io_discard(fd, 0, sizeof(zeros)), -EIO);
	close(fd);
}

Test(io, null_members_are_the_real_calls)
{
	static const struct eng_io_backend only_rename = { .rename = t_rename };
	char a[200], b[200];
	struct stat st;
	int fd;

	eng_io_set_backend(&only_rename);
	path_of(a, sizeof(a), "a");
	path_of(b, sizeof(b), "b");
	fd = eng_io_open(a, O_RDWR | O_CREAT | O_CLOEXEC, 0640);
	cr_assert_geq(fd, 0);
	cr_assert_eq(eng_io_pwrite_all(fd, "xyz", 3, 0), 0);
	cr_assert_eq(eng_io_datasync(fd), 0);
	close(fd);
	cr_assert_eq(eng_io_rename(a, b), 0);
	cr_assert_eq(nseen, 1, "only the rename reached this backend");
	cr_assert_str_eq(seen[0], "rename");
	cr_assert_eq(stat(b, &st), 0);
	cr_assert_eq(st.st_size, 3);
}
