/* tests/unit/test_io.c — engine/io: every wrapper reaches the backend,
 * a backend's NULL members stay the real calls, and the wrappers retry
 * EINTR and short writes and return 0 or -errno; the crash drill kills
 * (or fails) exactly the K-th call of its role, per process, and its
 * trace lists the calls.
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
#include <signal.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
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

/* --- the crash drill (CASKD_CRASH_SYSCALL) -----------------------------------
 *
 * Each test forks the process that is armed: the test process itself
 * never reads the variable. */

/* Creates dir/<prefix><i> for i in [from, to], one eng_io_open each. */
static void create_files(const char *prefix, int from, int to)
{
	for (int i = from; i <= to; i++) {
		char p[200];
		int fd;

		snprintf(p, sizeof(p), "%s/%s%d", dir, prefix, i);
		if ((fd = eng_io_open(p, O_WRONLY | O_CREAT | O_CLOEXEC, 0640)) < 0)
			_exit(2);
		close(fd);
	}
}

static int file_there(const char *prefix, int i)
{
	char p[200];

	snprintf(p, sizeof(p), "%s/%s%d", dir, prefix, i);
	return access(p, F_OK) == 0;
}

/* The files prefix1..prefixN exist, prefixN+1.. up to max do not. */
static void expect_files(const char *prefix, int n, int max)
{
	for (int i = 1; i <= max; i++)
		cr_assert_eq(file_there(prefix, i), i <= n, "%s%d %s", prefix, i,
			     i <= n ? "missing" : "made after the crash point");
}

/* Forks a child that arms spec, takes role, and runs fn; returns its
 * wait status. */
static int run_armed(const char *spec, const char *role, void (*fn)(void))
{
	pid_t pid = fork();
	int st;

	cr_assert_geq(pid, 0);
	if (pid == 0) {
		if (setenv("CASKD_CRASH_SYSCALL", spec, 1) || eng_io_crash_init())
			_exit(3);
		eng_io_set_role(role);
		fn();
		_exit(0);
	}
	cr_assert_eq(waitpid(pid, &st, 0), pid);
	return st;
}

static void five_files(void)
{
	create_files("f", 1, 5);
}

static void expect_sigkill(int st)
{
	cr_assert(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL,
		  "wait status %#x: not killed by SIGKILL", st);
}

Test(io, crash_drill_kills_right_after_the_kth_call)
{
	expect_sigkill(run_armed("drill:3", "drill", five_files));
	expect_files("f", 3, 5);
}

Test(io, crash_drill_spares_other_roles)
{
	int st = run_armed("drill:3", "worker", five_files);

	cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "wait status %#x", st);
	expect_files("f", 5, 5);
}

/* Two calls here, then a child (counting from zero) makes five, then
 * this process makes five more: the child dies at its third, this one
 * at its own third, the first of the second lot. */
static void counts_per_process(void)
{
	pid_t pid;
	int st;

	create_files("p", 1, 2);
	if ((pid = fork()) < 0)
		_exit(4);
	if (pid == 0) {
		create_files("c", 1, 5);
		_exit(0);
	}
	if (waitpid(pid, &st, 0) != pid || !WIFSIGNALED(st) || WTERMSIG(st) != SIGKILL)
		_exit(5);
	create_files("q", 1, 5);
}

Test(io, crash_drill_counts_per_process)
{
	expect_sigkill(run_armed("drill:3", "drill", counts_per_process));
	expect_files("p", 2, 2);
	expect_files("c", 3, 5);
	expect_files("q", 1, 5);
}

static volatile pid_t *grandchild;

/* A process group of two: this one and a child that only waits. */
static void group_of_two(void)
{
	pid_t pid;

	if (setpgid(0, 0) < 0 || (pid = fork()) < 0)
		_exit(6);
	if (pid == 0) {
		for (;;)
			pause();
	}
	*grandchild = pid;
	create_files("g", 1, 2);
}

Test(io, crash_drill_group_kills_the_whole_process_group)
{
	int st;

	grandchild = mmap(NULL, sizeof(*grandchild), PROT_READ | PROT_WRITE,
			  MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	cr_assert_neq((void *)grandchild, MAP_FAILED);
	/* the grandchild is reparented here when its parent dies */
	cr_assert_eq(prctl(PR_SET_CHILD_SUBREAPER, 1), 0);
	expect_sigkill(run_armed("drill:1:group", "drill", group_of_two));
	expect_files("g", 1, 2);
	cr_assert_gt(*grandchild, 0);
	cr_assert_eq(waitpid(*grandchild, &st, 0), *grandchild);
	expect_sigkill(st);
}

/* The second open is made to fail: exit status 0 if it got -EIO and the
 * others worked. */
static void second_fails(void)
{
	for (int i = 1; i <= 3; i++) {
		char p[200];
		int fd;

		snprintf(p, sizeof(p), "%s/e%d", dir, i);
		fd = eng_io_open(p, O_WRONLY | O_CREAT | O_CLOEXEC, 0640);
		if (i == 2 ? fd != -EIO : fd < 0)
			_exit(9);
		if (fd >= 0)
			close(fd);
	}
}

Test(io, crash_drill_eio_fails_the_kth_call_without_making_it)
{
	int st = run_armed("drill:2:eio", "drill", second_fails);

	cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "wait status %#x", st);
	cr_assert(file_there("e", 1) && !file_there("e", 2) && file_there("e", 3),
		  "only the second open was not made");
}

/* The child's stderr goes to dir/err, read back here. */
static void traced(void)
{
	char p[200];
	int fd;

	snprintf(p, sizeof(p), "%s/err", dir);
	if ((fd = open(p, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640)) < 0 ||
	    dup2(fd, STDERR_FILENO) < 0)
		_exit(7);
	create_files("t", 1, 2);
	eng_io_set_role("other");
	create_files("u", 1, 1); /* not the armed role: not counted */
	eng_io_set_role("drill");
	if (eng_io_rename(p, p) < 0)
		_exit(8);
	eng_io_crash_report();
}

Test(io, crash_drill_trace_lists_every_call_and_the_count)
{
	char p[200], log[4096];
	ssize_t n;
	int fd, st = run_armed("drill:trace", "drill", traced);

	cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "wait status %#x", st);
	snprintf(p, sizeof(p), "%s/err", dir);
	fd = open(p, O_RDONLY | O_CLOEXEC);
	cr_assert_geq(fd, 0);
	n = read(fd, log, sizeof(log) - 1);
	close(fd);
	cr_assert_gt(n, 0);
	log[n] = '\0';
	cr_assert(strstr(log, "crash drill: drill call 1 is open(t1) = 0\n"), "%s", log);
	cr_assert(strstr(log, "crash drill: drill call 2 is open(t2) = 0\n"), "%s", log);
	cr_assert(strstr(log, "crash drill: drill call 3 is rename(err, err) = 0\n"), "%s", log);
	cr_assert(!strstr(log, "(u1)"), "a call in another role was counted: %s", log);
	cr_assert(strstr(log, "crash drill: drill made 3 calls through engine/io\n"), "%s", log);
}

Test(io, crash_drill_spec_is_parsed_strictly)
{
	static const char *const bad[] = {
		"job", "job:", "job:0", "job:-1", "job:+2", "job: 2", "job:x", "job:2x",
		"job:2:grp", "job:2:group:", "job:2:EIO", ":2", "a-role-name-too-long:2",
		"job:traced",
	};
	static const char *const good[] = { "job:1", "job:18446744073709551615",
					    "job:7:group", "job:3:eio", "job:3:enospc",
					    "space:trace" };

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		cr_assert_eq(setenv("CASKD_CRASH_SYSCALL", bad[i], 1), 0);
		cr_assert_eq(eng_io_crash_init(), -EINVAL, "'%s' accepted", bad[i]);
	}
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		cr_assert_eq(setenv("CASKD_CRASH_SYSCALL", good[i], 1), 0);
		cr_assert_eq(eng_io_crash_init(), 0, "'%s' refused", good[i]);
	}
	cr_assert_eq(setenv("CASKD_CRASH_SYSCALL", "", 1), 0);
	cr_assert_eq(eng_io_crash_init(), 0, "empty: unarmed");
	cr_assert_eq(unsetenv("CASKD_CRASH_SYSCALL"), 0);
	cr_assert_eq(eng_io_crash_init(), 0);
}
