/* tests/unit/unit_util.h — helpers the unit suites share (header only).
 *
 * Owns: the per-test fixture (a fresh directory under /tmp, removed
 * afterwards, and the teardown checks every suite makes: no descriptor
 * leaked, no child left unreaped), opening a store inside the test
 * process, small key/value wrappers, and the fork/wait plumbing of the
 * multi-process tests.
 *
 * The test process plays master and worker at once: eng_db_open() makes
 * it the master, eng_db_attach(db, 0) gives it worker slot 0 so it may
 * write. Children it forks attach to other slots, report through their
 * exit status only (never a Criterion assertion: the child is not the
 * test), and arm failpoints for themselves alone (CASKD_FAILPOINTS is set
 * after fork, so the test process never sees it).
 */
#ifndef CASKD_TESTS_UNIT_UTIL_H
#define CASKD_TESTS_UNIT_UTIL_H

#include "engine/errors.h"
#include "engine/record.h"
#include "engine/store.h"
#include "engine/failpoint.h"
#include "engine/job.h"

#include <criterion/criterion.h>
#include <criterion/new/assert.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define UU_DIR_MAX 64
#define UU_NFTW_FDS 16          /* descriptors nftw may hold open */
#define UU_MAX_KEYS 1000        /* enough for every suite but the index's */
#define UU_MAX_VALUE (1u << 20) /* the daemon's default --max-value-size */
/* A child's exit status for "everything as expected"; other statuses
 * name the step that went wrong (see each test). */
#define UU_CHILD_OK 0
/* A child outlives no test: a hung child would be orphaned still holding
 * the runner's output pipe when Criterion's .timeout kills the test. */
#define UU_CHILD_ALARM_S 20

struct uu_fixture {
	char dir[UU_DIR_MAX];
	int fds; /* open descriptors when the test began */
};

static inline int uu_count_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *de;
	int n = 0;

	cr_assert_not_null(d, "opendir(/proc/self/fd): %s", strerror(errno));
	while ((de = readdir(d)))
		n += de->d_name[0] != '.';
	closedir(d);
	return n;
}

static inline void uu_fixture_setup(struct uu_fixture *fx, const char *name)
{
	snprintf(fx->dir, sizeof(fx->dir), "/tmp/caskd-%s-XXXXXX", name);
	cr_assert_not_null(mkdtemp(fx->dir), "mkdtemp: %s", strerror(errno));
	fx->fds = uu_count_fds();
}

static inline int uu_rm_one(const char *path, const struct stat *st, int flag,
			    struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

static inline void uu_rmrf(const char *dir)
{
	cr_assert(eq(int, nftw(dir, uu_rm_one, UU_NFTW_FDS,
			       FTW_DEPTH | FTW_PHYS), 0),
		  "removing %s: %s", dir, strerror(errno));
}

/* Every child reaped, every descriptor closed, the directory gone. */
static inline void uu_fixture_teardown(struct uu_fixture *fx)
{
	pid_t left = waitpid(-1, NULL, WNOHANG);
	int fds = uu_count_fds();

	uu_rmrf(fx->dir);
	cr_expect(eq(int, left, -1), "a child was left unreaped (pid %d)",
		  (int)left);
	cr_expect(eq(int, fds, fx->fds), "descriptors leaked by the test");
}

/* --- the store inside the test process ------------------------------------ */

static inline int uu_open(const char *dir, uint64_t max_keys,
			  struct eng_db *db, struct eng_recovery *rep)
{
	struct eng_opts o = {
		.dir = dir, .max_keys = max_keys, .max_value = UU_MAX_VALUE,
	};
	return eng_db_open(&o, db, rep);
}

/* Opens dir as master and takes worker slot 0, so the test may write. */
static inline void uu_open_rw(const char *dir, uint64_t max_keys,
			      struct eng_db *db, struct eng_recovery *rep)
{
	int rc = uu_open(dir, max_keys, db, rep);

	cr_assert(eq(int, rc, 0), "eng_db_open(%s): %s", dir,
		  eng_strerror(rc));
	rc = eng_db_attach(db, 0);
	cr_assert(eq(int, rc, 0), "eng_db_attach: %s", eng_strerror(rc));
}

/* Closes a store opened by this process. As its master this process also
 * owns the shared region, which eng_db_close unmaps only for a master. */
static inline void uu_close(struct eng_db *db)
{
	db->seat = -1;
	eng_db_close(db);
}

static inline int uu_put_n(struct eng_db *db, const void *key, size_t klen,
			   const void *val, size_t vlen,
			   struct eng_result *res)
{
	struct eng_op op = {
		.kind = ENG_OP_PUT, .key = key, .klen = klen,
		.val = val, .vlen = vlen,
	};
	struct eng_result scratch;

	return eng_write(db, &op, res ? res : &scratch);
}

static inline int uu_put(struct eng_db *db, const char *key, const char *val,
			 struct eng_result *res)
{
	return uu_put_n(db, key, strlen(key), val, strlen(val), res);
}

static inline int uu_del(struct eng_db *db, const char *key,
			 struct eng_result *res)
{
	struct eng_op op = { .kind = ENG_OP_DEL, .key = key,
			     .klen = strlen(key) };
	struct eng_result scratch;

	return eng_write(db, &op, res ? res : &scratch);
}

static inline int uu_incr(struct eng_db *db, const char *key, int64_t by,
			  struct eng_result *res)
{
	struct eng_op op = { .kind = ENG_OP_INCR, .key = key,
			     .klen = strlen(key), .by = by };
	struct eng_result scratch;

	return eng_write(db, &op, res ? res : &scratch);
}

/* Asserts that key holds exactly val (NULL: that key is absent). */
static inline void uu_expect_val(struct eng_db *db, const char *key,
				 const char *val)
{
	struct eng_val v;
	int rc = eng_get(db, key, strlen(key), &v);

	if (!val) {
		cr_assert(eq(int, rc, -ENOENT), "key '%s' should be absent: %s",
			  key, eng_strerror(rc));
		return;
	}
	cr_assert(eq(int, rc, 0), "key '%s': %s", key, eng_strerror(rc));
	cr_assert(eq(u64, v.len, strlen(val)), "length of key '%s'", key);
	cr_assert(eq(int, memcmp(v.data, val, v.len), 0),
		  "key '%s' holds '%.*s', expected '%s'", key, (int)v.len,
		  v.data, val);
}

/* The durable offset the file header at map vouches for (UINT64_MAX
 * when neither mark slot is valid). */
static inline uint64_t uu_mark_durable(const void *map)
{
	struct eng_mark m;
	int slot;

	(void)eng_mark_read(map, &m, &slot);
	return m.durable;
}

/* --- files and children --------------------------------------------------- */

static inline void uu_path(char *out, size_t n, const char *dir,
			   const char *name)
{
	cr_assert_lt((size_t)snprintf(out, n, "%s/%s", dir, name), n);
}

static inline void uu_write_file(const char *path, const void *buf, size_t n)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);

	cr_assert_geq(fd, 0, "open(%s): %s", path, strerror(errno));
	cr_assert(eq(i64, (int64_t)pwrite(fd, buf, n, 0), (int64_t)n),
		  "pwrite(%s)", path);
	close(fd);
}

/* Reads a whole file into a malloc'ed buffer. */
static inline char *uu_read_file(const char *path, size_t *n)
{
	struct stat st;
	char *buf;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	cr_assert_geq(fd, 0, "open(%s): %s", path, strerror(errno));
	cr_assert(eq(int, fstat(fd, &st), 0));
	buf = malloc((size_t)st.st_size + 1);
	cr_assert_not_null(buf);
	cr_assert(eq(i64, (int64_t)pread(fd, buf, (size_t)st.st_size, 0),
		     (int64_t)st.st_size), "pread(%s)", path);
	close(fd);
	*n = (size_t)st.st_size;
	return buf;
}

/* First call in every forked child: it dies (SIGALRM) rather than hang. */
static inline void uu_child_init(void)
{
	alarm(UU_CHILD_ALARM_S);
}

/* In a child: arms failpoints for this process only. */
static inline void uu_child_arm(const char *spec)
{
	setenv("CASKD_FAILPOINTS", spec, 1);
	if (eng_fp_init() < 0)
		_exit(99);
}

/* Waits for pid; returns its wait status. */
static inline int uu_wait(pid_t pid)
{
	int st;
	pid_t r;

	while ((r = waitpid(pid, &st, 0)) < 0 && errno == EINTR)
		;
	cr_assert(eq(int, r, pid), "waitpid(%d): %s", (int)pid,
		  strerror(errno));
	return st;
}

static inline void uu_expect_exit_ok(pid_t pid, const char *what)
{
	int st = uu_wait(pid);
	int exited = WIFEXITED(st);

	cr_assert(exited, "%s: child died by signal %d", what,
		  WIFSIGNALED(st) ? WTERMSIG(st) : 0);
	cr_assert(eq(int, WEXITSTATUS(st), UU_CHILD_OK),
		  "%s: child failed at step %d", what, WEXITSTATUS(st));
}

/* The child must have been killed by SIGKILL (a `crash` failpoint), not
 * have gone on past the point. */
static inline void uu_expect_killed(pid_t pid, const char *what)
{
	int st = uu_wait(pid);
	int killed = WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL;

	cr_assert(killed,
		  "%s: child should have crashed at the failpoint "
		  "(exit status %d)", what, WIFEXITED(st) ? WEXITSTATUS(st) : -1);
}

/* Forks a worker that attaches to slot, arms failpoint spec (a crash)
 * and writes key = val: it must die at the failpoint. Returns its pid,
 * already reaped by the test (the store does not know yet). */
static inline pid_t uu_crash_writer(struct eng_db *db, int slot,
				    const char *spec, const char *key,
				    const char *val)
{
	pid_t pid = fork();

	cr_assert_geq(pid, 0, "fork: %s", strerror(errno));
	if (pid == 0) {
		uu_child_init();
		if (eng_db_attach(db, slot))
			_exit(1);
		uu_child_arm(spec);
		uu_put(db, key, val, NULL);
		_exit(2); /* not reached if the failpoint fired */
	}
	uu_expect_killed(pid, spec);
	return pid;
}


/* --- jobs, run as the master runs them --------------------------------- */

/* Who gets there first: the master recording the job's start, or the
 * job's end (a short job can finish before the master's
 * eng_job_started() after fork). Either way the job's outcome stands. */
enum uu_job_order { UU_START_FIRST, UU_ENDS_FIRST };

/* Runs the job the master would start now, as the master does: in a
 * process of its own attached to the job slot, its start recorded before
 * or after it ends. Returns the job's record (kind NONE: no job was
 * wanted). */
static inline struct eng_job_info uu_run_job_in(struct eng_db *db,
						 enum uu_job_order order)
{
	struct eng_compact_policy none = { 0 };
	struct eng_job_info info = { .kind = ENG_JOB_NONE };
	uint64_t id;
	int go[2], st, ok;
	pid_t pid;

	eng_job_reclaim(db); /* the area the last rebuild left */
	if (!eng_job_next(db, &none, &id))
		return info;
	cr_assert(eq(int, pipe(go), 0));
	pid = fork();
	cr_assert_geq(pid, 0, "fork: %s", strerror(errno));
	if (pid == 0) {
		char c;
		uu_child_init();
		close(go[1]);
		if (order == UU_START_FIRST && read(go[0], &c, 1) != 1)
			_exit(10);
		if (eng_db_attach(db, ENG_JOB_SEAT))
			_exit(11);
		_exit(eng_job_run(db, id, NULL));
	}
	close(go[0]);
	if (order == UU_ENDS_FIRST) {
		st = uu_wait(pid);
		eng_job_started(db, id, pid);
	} else {
		eng_job_started(db, id, pid);
		cr_assert(eq(i64, (int64_t)write(go[1], "g", 1), 1));
		st = uu_wait(pid);
	}
	close(go[1]);
	cr_assert(eq(u64, eng_job_reaped(db, pid, st), id));
	ok = WIFEXITED(st) && WEXITSTATUS(st) == 0;
	cr_assert(ok, "job %llu: status 0x%x", (unsigned long long)id, st);
	cr_assert(eq(int, eng_db_refresh(db), 0));
	eng_job_reclaim(db);
	cr_assert(eq(int, eng_job_get(db, id, &info), 0));
	cr_assert(eq(int, info.state, ENG_JOB_DONE), "job %llu: %s",
		  (unsigned long long)id, info.error);
	return info;
}

static inline struct eng_job_info uu_run_job(struct eng_db *db)
{
	return uu_run_job_in(db, UU_START_FIRST);
}

/* A suite whose tests each get a fresh directory in fx (setup/teardown
 * are also usable by further suites of the file). */
#define UU_DIR_SUITE(suite, name)                                          \
	static struct uu_fixture fx;                                       \
	static void setup(void) { uu_fixture_setup(&fx, name); }           \
	static void teardown(void) { uu_fixture_teardown(&fx); }           \
	TestSuite(suite, .init = setup, .fini = teardown)

/* The same, with a store open in it for writing (db, rep). */
#define UU_STORE_SUITE(suite, name)                                        \
	static struct uu_fixture fx;                                       \
	static struct eng_db db;                                           \
	static struct eng_recovery rep;                                    \
	static void setup(void)                                            \
	{                                                                  \
		uu_fixture_setup(&fx, name);                               \
		uu_open_rw(fx.dir, UU_MAX_KEYS, &db, &rep);                \
	}                                                                  \
	static void teardown(void)                                         \
	{                                                                  \
		uu_close(&db);                                             \
		uu_fixture_teardown(&fx);                                  \
	}                                                                  \
	TestSuite(suite, .init = setup, .fini = teardown)

#endif
