/* tests/unit/test_mutex.c — processes that die holding things
 * (ipc/mutex.h, eng_db_reap_worker in engine/store.h) and the OFD byte-
 * range locks (ipc/flock.h).
 *
 * Suites:
 *   ipc_mutex          the robust mutex alone, in an ipc_shm region: a
 *                      child dies holding it, the next locker repairs.
 *   engine_dead_worker a worker of a real store is killed by a failpoint
 *                      inside a write; the master repairs, reaps, reopens.
 *   ipc_flock          OFD locks across descriptors and processes.
 *
 * Children report through their exit status only; every child is reaped
 * before the test ends (the fixture checks).
 */
#include "engine/errors.h"
#include "engine/durable.h"
#include "engine/record.h"
#include "engine/shared.h"
#include "engine/store.h"
#include "ipc/flock.h"
#include "ipc/mutex.h"
#include "ipc/shm.h"
#include "tests/unit/unit_util.h"

#include <criterion/criterion.h>
#include <criterion/new/assert.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define PATH_LEN 128
#define INCREMENTS 20000
#define BLOCKED_MS 100 /* long enough for a child to block on a lock */
#define NKEYS 10

UU_DIR_SUITE(ipc_mutex, "mutex");
TestSuite(engine_dead_worker, .init = setup, .fini = teardown);
TestSuite(ipc_flock, .init = setup, .fini = teardown);

static void sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

/* Blocks until the child writes its one byte: "I hold it now". */
static void wait_ready(int fd)
{
	char c;
	cr_assert(eq(int, (int)read(fd, &c, 1), 1), "child never got ready");
}

static void signal_ready(int fd)
{
	if (write(fd, "r", 1) != 1)
		_exit(98);
}

/* --- the robust mutex alone ------------------------------------------------ */

struct region {
	struct ipc_mtx m;
	long counter;        /* guarded by m */
	int repair_calls;    /* by whoever repaired */
	pid_t repair_dead;
};

static struct region *region_new(void)
{
	struct region *r;

	cr_assert(eq(int, ipc_shm_create(sizeof(*r), (void **)&r), 0));
	cr_assert(eq(int, ipc_mtx_init(&r->m), 0));
	return r;
}

static int repair_ok(struct ipc_mtx *m, pid_t dead, void *arg)
{
	struct region *r = arg;

	r->repair_calls++;
	r->repair_dead = dead;
	return ipc_mtx_held(m) ? 0 : -EINVAL; /* repair runs as the owner */
}

static int repair_fails(struct ipc_mtx *m, pid_t dead, void *arg)
{
	struct region *r = arg;

	(void)m;
	r->repair_calls++;
	r->repair_dead = dead;
	return -EIO;
}

/* A child that takes the mutex and dies holding it: by _exit, or (kill)
 * by SIGKILL from the test once it holds it. Returns its pid, reaped. */
static pid_t die_holding(struct region *r, int kill9)
{
	int p[2];
	pid_t pid;

	cr_assert(eq(int, pipe(p), 0));
	pid = fork();
	cr_assert_geq(pid, 0);
	if (pid == 0) {
		uu_child_init();
		close(p[0]);
		if (ipc_mtx_lock(&r->m, NULL, NULL))
			_exit(1);
		if (!kill9)
			_exit(UU_CHILD_OK);
		signal_ready(p[1]);
		for (;;)
			pause();
	}
	close(p[1]);
	if (kill9) {
		wait_ready(p[0]);
		cr_assert(eq(int, kill(pid, SIGKILL), 0));
		uu_expect_killed(pid, "holder");
	} else {
		uu_expect_exit_ok(pid, "holder");
	}
	close(p[0]);
	return pid;
}

/* After a repair the mutex is an ordinary mutex again. */
static void expect_works_again(struct region *r)
{
	uint32_t repairs = atomic_load(&r->m.repairs);
	int calls = r->repair_calls;
	pid_t pid;

	cr_assert(eq(int, ipc_mtx_lock(&r->m, repair_ok, r), 0));
	ipc_mtx_unlock(&r->m);
	pid = fork();
	cr_assert_geq(pid, 0);
	if (pid == 0) {
		uu_child_init();
		if (ipc_mtx_lock(&r->m, repair_ok, r))
			_exit(1);
		ipc_mtx_unlock(&r->m);
		_exit(UU_CHILD_OK);
	}
	uu_expect_exit_ok(pid, "a later locker");
	cr_assert(eq(int, ipc_mtx_lock(&r->m, repair_ok, r), 0));
	ipc_mtx_unlock(&r->m);
	cr_assert(eq(u32, atomic_load(&r->m.repairs), repairs));
	cr_assert(eq(int, r->repair_calls, calls), "no repair without a death");
}

Test(ipc_mutex, lock_unlock_and_held, .timeout = 5)
{
	struct region *r = region_new();

	cr_assert(eq(int, ipc_mtx_held(&r->m), 0));
	cr_assert(eq(int, ipc_mtx_lock(&r->m, repair_ok, r), 0));
	cr_assert(eq(int, ipc_mtx_held(&r->m), 1));
	cr_assert(eq(i32, atomic_load(&r->m.owner), getpid()));
	ipc_mtx_unlock(&r->m);
	cr_assert(eq(int, ipc_mtx_held(&r->m), 0));
	cr_assert(eq(int, r->repair_calls, 0));
	ipc_shm_destroy(r, sizeof(*r));
}

Test(ipc_mutex, excludes_other_processes, .timeout = 20)
{
	struct region *r = region_new();
	pid_t pids[2];

	for (int c = 0; c < 2; c++) {
		pids[c] = fork();
		cr_assert_geq(pids[c], 0);
		if (pids[c] == 0) {
			uu_child_init();
			for (int i = 0; i < INCREMENTS; i++) {
				long v;
				if (ipc_mtx_lock(&r->m, NULL, NULL))
					_exit(1);
				if (!ipc_mtx_held(&r->m))
					_exit(2);
				v = r->counter;
				if (i % 1000 == 0)
					sched_yield(); /* invite the other in */
				r->counter = v + 1;
				ipc_mtx_unlock(&r->m);
			}
			_exit(UU_CHILD_OK);
		}
	}
	for (int c = 0; c < 2; c++)
		uu_expect_exit_ok(pids[c], "incrementer");
	cr_assert(eq(i64, r->counter, 2 * INCREMENTS), "lost updates");
	ipc_shm_destroy(r, sizeof(*r));
}

Test(ipc_mutex, recovers_owner_that_exited, .timeout = 5)
{
	struct region *r = region_new();
	pid_t dead = die_holding(r, 0);

	cr_assert(eq(int, ipc_mtx_lock(&r->m, repair_ok, r), 0));
	cr_assert(eq(int, r->repair_calls, 1));
	cr_assert(eq(i32, r->repair_dead, dead), "repair names the dead owner");
	cr_assert(eq(u32, atomic_load(&r->m.repairs), 1));
	cr_assert(eq(int, ipc_mtx_held(&r->m), 1));
	ipc_mtx_unlock(&r->m);
	expect_works_again(r);
	ipc_shm_destroy(r, sizeof(*r));
}

Test(ipc_mutex, recovers_owner_killed_by_sigkill, .timeout = 5)
{
	struct region *r = region_new();
	pid_t dead = die_holding(r, 1);

	cr_assert(eq(int, ipc_mtx_lock(&r->m, repair_ok, r), 0));
	cr_assert(eq(int, r->repair_calls, 1));
	cr_assert(eq(i32, r->repair_dead, dead));
	cr_assert(eq(u32, atomic_load(&r->m.repairs), 1));
	ipc_mtx_unlock(&r->m);
	expect_works_again(r);
	ipc_shm_destroy(r, sizeof(*r));
}

/* The next owner was already asleep in pthread_mutex_lock when the
 * holder died (the slow path, not the trylock). */
Test(ipc_mutex, blocked_waiter_recovers_when_owner_is_killed, .timeout = 10)
{
	struct region *r = region_new();
	int p[2];
	pid_t holder, waiter;

	cr_assert(eq(int, pipe(p), 0));
	holder = fork();
	cr_assert_geq(holder, 0);
	if (holder == 0) {
		uu_child_init();
		close(p[0]);
		if (ipc_mtx_lock(&r->m, NULL, NULL))
			_exit(1);
		signal_ready(p[1]);
		for (;;)
			pause();
	}
	close(p[1]);
	wait_ready(p[0]);
	close(p[0]);
	waiter = fork();
	cr_assert_geq(waiter, 0);
	if (waiter == 0) {
		uu_child_init();
		if (ipc_mtx_lock(&r->m, repair_ok, r))
			_exit(1);
		if (!ipc_mtx_held(&r->m))
			_exit(2);
		ipc_mtx_unlock(&r->m);
		_exit(UU_CHILD_OK);
	}
	sleep_ms(BLOCKED_MS);
	cr_assert(eq(int, waitpid(waiter, NULL, WNOHANG), 0),
		  "the waiter must still be blocked");
	cr_assert(eq(int, kill(holder, SIGKILL), 0));
	uu_expect_killed(holder, "holder");
	uu_expect_exit_ok(waiter, "waiter");
	cr_assert(eq(int, r->repair_calls, 1));
	cr_assert(eq(i32, r->repair_dead, holder));
	cr_assert(eq(u64, atomic_load(&r->m.acquisitions), 1),
		  "the waiter took the slow path");
	cr_assert(gt(u64, atomic_load(&r->m.wait_ns), 0));
	expect_works_again(r);
	ipc_shm_destroy(r, sizeof(*r));
}

/* A repair that cannot make the guarded data whole must not be papered
 * over: this locker gets the error, every later one ENOTRECOVERABLE. */
Test(ipc_mutex, failed_repair_makes_it_unrecoverable, .timeout = 5)
{
	struct region *r = region_new();
	pid_t dead = die_holding(r, 1), pid;

	cr_assert(eq(int, ipc_mtx_lock(&r->m, repair_fails, r), -EIO));
	cr_assert(eq(int, r->repair_calls, 1));
	cr_assert(eq(i32, r->repair_dead, dead));
	cr_assert(eq(u32, atomic_load(&r->m.repairs), 0));
	cr_assert(eq(int, ipc_mtx_held(&r->m), 0));
	cr_assert(eq(int, ipc_mtx_lock(&r->m, repair_ok, r), -ENOTRECOVERABLE));
	cr_assert(eq(int, r->repair_calls, 1), "no second repair");
	pid = fork();
	cr_assert_geq(pid, 0);
	if (pid == 0) {
		uu_child_init();
		_exit(ipc_mtx_lock(&r->m, repair_ok, r) == -ENOTRECOVERABLE
		      ? UU_CHILD_OK : 1);
	}
	uu_expect_exit_ok(pid, "a later locker in another process");
	ipc_shm_destroy(r, sizeof(*r));
}

/* --- a worker of a real store dies inside a write ------------------------- */

static void key_i(char *key, int i)
{
	snprintf(key, 16, "key%d", i);
}

static void val_i(char *val, const char *gen, int i)
{
	snprintf(val, 32, "%s-value-%d", gen, i);
}

static void fill(struct eng_db *db)
{
	char key[16], val[32];

	for (int i = 0; i < NKEYS; i++) {
		key_i(key, i);
		val_i(val, "old", i);
		cr_assert(eq(int, uu_put(db, key, val, NULL), 0));
	}
}

/* Every key but skip holds its old value. */
static void expect_old_values(struct eng_db *db, int skip)
{
	char key[16], val[32];

	for (int i = 0; i < NKEYS; i++) {
		if (i == skip)
			continue;
		key_i(key, i);
		val_i(val, "old", i);
		uu_expect_val(db, key, val);
	}
}

/* key holds exactly one of a or b, never a mix or a torn value. */
static int holds_one_of(struct eng_db *db, const char *key, const char *a,
			const char *b)
{
	struct eng_val v;
	int rc = eng_get(db, key, strlen(key), &v);

	cr_assert(eq(int, rc, 0), "'%s': %s", key, eng_strerror(rc));
	if (v.len == strlen(a) && !memcmp(v.data, a, v.len))
		return 0;
	cr_assert(eq(u64, v.len, strlen(b)), "'%s' torn", key);
	cr_assert(eq(int, memcmp(v.data, b, v.len), 0), "'%s' torn: '%.*s'",
		  key, (int)v.len, v.data);
	return 1;
}

static void reopen(struct eng_db *db, struct eng_recovery *rep)
{
	int rc;

	uu_close(db);
	rc = uu_open(fx.dir, UU_MAX_KEYS, db, rep);
	cr_assert(eq(int, rc, 0), "reopen: %s", eng_strerror(rc));
}

Test(engine_dead_worker, killed_mid_publish_is_repaired, .timeout = 10)
{
	struct eng_db db;
	struct eng_recovery rep;
	uint64_t tail;
	int rc;

	uu_open_rw(fx.dir, UU_MAX_KEYS, &db, &rep);
	fill(&db);
	uu_crash_writer(&db, 1, "index.locked=crash", "key3", "new-value-3");
	cr_assert(eq(int, ipc_mtx_held(&db.sh->index_mtx), 0));

	/* Readers take no lock: they go on seeing the published state (the
	 * dead writer changed no slot yet) and trigger no repair. */
	expect_old_values(&db, -1);
	cr_assert(eq(u32, atomic_load(&db.sh->index_mtx.repairs), 0),
		  "a read took the index mutex");
	cr_assert(eq(u64, eng_cur_table(db.sh)->live, NKEYS));

	/* The first lock after the death finds EOWNERDEAD and repairs: the
	 * record was complete when publish began, so the repair finishes
	 * the publish. */
	rc = eng_db_reap_worker(&db, 1);
	cr_assert(eq(int, rc, 0), "reap: %s", eng_strerror(rc));
	cr_assert(eq(u32, atomic_load(&db.sh->index_mtx.repairs), 1),
		  "one death, one repair");
	cr_assert(eq(i32, atomic_load(&db.sh->seats[1].pid), 0));
	cr_assert(eq(u64, db.sh->seats[1].inflight.off, 0));
	(void)holds_one_of(&db, "key3", "new-value-3", "new-value-3");
	expect_old_values(&db, 3);
	cr_assert(eq(u64, eng_cur_table(db.sh)->live, NKEYS));
	cr_assert(eq(int, uu_put(&db, "key3", "after", NULL), 0),
		  "the key is free again");
	uu_expect_val(&db, "key3", "after");
	tail = db.sh->tail;

	reopen(&db, &rep);
	cr_assert(eq(u64, rep.tail, tail));
	cr_assert(eq(u64, rep.keys, NKEYS));
	expect_old_values(&db, 3);
	uu_expect_val(&db, "key3", "after");
	uu_close(&db);
}

Test(engine_dead_worker, killed_mid_publish_of_a_new_key, .timeout = 10)
{
	struct eng_db db;
	struct eng_recovery rep;

	uu_open_rw(fx.dir, UU_MAX_KEYS, &db, &rep);
	fill(&db);
	uu_crash_writer(&db, 1, "index.locked=crash", "fresh", "new");
	cr_assert(eq(int, eng_db_reap_worker(&db, 1), 0)); /* repairs first */
	cr_assert(eq(u32, atomic_load(&db.sh->index_mtx.repairs), 1));
	expect_old_values(&db, -1);
	cr_assert(eq(u64, eng_cur_table(db.sh)->pending, 0));
	/* the record was complete when publish began: the repair finished it */
	uu_expect_val(&db, "fresh", "new");
	cr_assert(eq(u64, eng_cur_table(db.sh)->live, NKEYS + 1));
	cr_assert(eq(int, uu_put(&db, "fresh", "again", NULL), 0));
	uu_close(&db);
}

/* Killed after reserving log space and before writing a byte: the key
 * stays busy (its writer may still be running, as far as anyone knows)
 * until the master reaps the worker and wipes the range. */
Test(engine_dead_worker, killed_after_reserve_is_undone_by_reap, .timeout = 10)
{
	struct eng_db db;
	struct eng_recovery rep;
	struct eng_inflight *in;
	uint64_t hole, hole_len;
	int rc;

	uu_open_rw(fx.dir, UU_MAX_KEYS, &db, &rep);
	fill(&db);
	uu_crash_writer(&db, 1, "log.after_reserve=crash", "key5", "child");
	in = &db.sh->seats[1].inflight;
	hole = in->off;
	hole_len = in->len;
	cr_assert(eq(u64, hole_len, eng_rec_size(4, 5)));
	cr_assert(eq(u64, db.sh->tail, hole + hole_len));
	cr_assert(eq(u64, eng_db_written_below(&db), hole),
		  "a sync may not vouch for the reserved range");
	cr_assert(eq(int, uu_put(&db, "key5", "parent", NULL), -EAGAIN));
	uu_expect_val(&db, "key5", "old-value-5");
	cr_assert(eq(u32, atomic_load(&db.sh->index_mtx.repairs), 0),
		  "the child did not die holding the mutex");

	rc = eng_db_reap_worker(&db, 1);
	cr_assert(eq(int, rc, 0), "reap: %s", eng_strerror(rc));
	cr_assert(eq(int, uu_put(&db, "key5", "parent", NULL), 0),
		  "the key is free again");
	uu_expect_val(&db, "key5", "parent");
	expect_old_values(&db, 5);

	/* Two syncs: the second writes the mark the first reached, so the
	 * hole lies below the file's durable mark when we reopen. */
	for (int i = 0; i < 2; i++)
		cr_assert(eq(int, eng_sync_wait(&db, eng_sync_ticket(&db)), 0));
	cr_assert(ge(u64, uu_mark_durable(db.map), hole + hole_len));

	reopen(&db, &rep);
	cr_assert(eq(u64, rep.skipped, hole_len), "the hole is skipped");
	cr_assert(eq(u64, rep.cut_bytes, 0));
	cr_assert(eq(u64, rep.keys, NKEYS));
	uu_expect_val(&db, "key5", "parent");
	expect_old_values(&db, 5);
	uu_close(&db);
}

/* Killed with the record fully written but not yet published: it was
 * never visible, so the master wipes it and recovery must not bring it
 * back. */
Test(engine_dead_worker, killed_before_publish_stays_unwritten, .timeout = 10)
{
	struct eng_db db;
	struct eng_recovery rep;
	uint64_t off, len;
	char path[PATH_LEN], *file;
	size_t size;

	uu_open_rw(fx.dir, UU_MAX_KEYS, &db, &rep);
	fill(&db);
	uu_crash_writer(&db, 1, "log.after_write=crash", "key7", "unpublished");
	off = db.sh->seats[1].inflight.off;
	len = db.sh->seats[1].inflight.len;
	cr_assert(eq(int, eng_db_reap_worker(&db, 1), 0));
	uu_expect_val(&db, "key7", "old-value-7");

	uu_path(path, sizeof(path), fx.dir, "database.bin");
	file = uu_read_file(path, &size);
	cr_assert(eq(u64, size, off + len));
	for (uint64_t i = off; i < off + len; i++)
		cr_assert(eq(int, file[i], 0), "byte %llu not wiped",
			  (unsigned long long)i);
	free(file);

	reopen(&db, &rep);
	uu_expect_val(&db, "key7", "old-value-7");
	expect_old_values(&db, -1);
	uu_close(&db);
}

/* A pass of three writes (two existing keys and a new one), killed at
 * spec: it must die there. */
static void crash_pass(struct eng_db *db, const char *spec)
{
	static const struct eng_op ops[3] = {
		{ .kind = ENG_OP_PUT, .key = "key3", .klen = 4, .val = "pass-3", .vlen = 6 },
		{ .kind = ENG_OP_PUT, .key = "fresh", .klen = 5, .val = "pass-f", .vlen = 6 },
		{ .kind = ENG_OP_PUT, .key = "key4", .klen = 4, .val = "pass-4", .vlen = 6 },
	};
	pid_t pid = fork();

	cr_assert_geq(pid, 0, "fork: %s", strerror(errno));
	if (pid == 0) {
		const struct eng_op *op[3] = { &ops[0], &ops[1], &ops[2] };
		struct eng_result r[3], *res[3] = { &r[0], &r[1], &r[2] };
		int rcs[3];

		uu_child_init();
		if (eng_db_attach(db, 1))
			_exit(1);
		uu_child_arm(spec);
		eng_write_pass(db, op, 3, res, rcs);
		_exit(2); /* not reached if the failpoint fired */
	}
	uu_expect_killed(pid, spec);
}

/* Killed at each step of a pass: before its records are written, after,
 * and holding the mutex in the publish. The whole pass is undone by the
 * master's reap in the first two (none of it was visible, none was
 * acknowledged), and finished by the repair in the third; no key stays
 * busy, and a reopen agrees. */
static void killed_pass(const char *spec, int finished)
{
	struct eng_db db;
	struct eng_recovery rep;

	uu_open_rw(fx.dir, UU_MAX_KEYS, &db, &rep);
	fill(&db);
	crash_pass(&db, spec);
	cr_assert(eq(u32, db.sh->seats[1].inflight.nrec, 3), "one range for the pass");
	cr_assert(eq(int, eng_db_reap_worker(&db, 1), 0));
	cr_assert(eq(u64, db.sh->seats[1].inflight.off, 0));
	cr_assert(eq(u64, eng_cur_table(db.sh)->pending, 0));
	uu_expect_val(&db, "key3", finished ? "pass-3" : "old-value-3");
	uu_expect_val(&db, "key4", finished ? "pass-4" : "old-value-4");
	uu_expect_val(&db, "fresh", finished ? "pass-f" : NULL);
	for (int i = 0; i < NKEYS; i++)
		if (i != 3 && i != 4) {
			char key[16], val[32];
			key_i(key, i);
			val_i(val, "old", i);
			uu_expect_val(&db, key, val);
		}
	cr_assert(eq(int, uu_put(&db, "key3", "after", NULL), 0), "key3 is free");
	cr_assert(eq(int, uu_put(&db, "fresh", "after", NULL), 0), "fresh is free");
	reopen(&db, &rep);
	uu_expect_val(&db, "key3", "after");
	uu_expect_val(&db, "fresh", "after");
	uu_expect_val(&db, "key4", finished ? "pass-4" : "old-value-4");
	uu_close(&db);
}

Test(engine_dead_worker, pass_killed_after_reserve_is_undone, .timeout = 10)
{
	killed_pass("log.after_reserve=crash", 0);
}

Test(engine_dead_worker, pass_killed_before_publish_is_undone, .timeout = 10)
{
	killed_pass("log.after_write=crash", 0);
}

Test(engine_dead_worker, pass_killed_mid_publish_is_finished, .timeout = 10)
{
	killed_pass("index.locked=crash", 1);
}

Test(engine_dead_worker, reaping_an_idle_worker_changes_nothing, .timeout = 5)
{
	struct eng_db db;
	struct eng_recovery rep;
	pid_t pid;

	uu_open_rw(fx.dir, UU_MAX_KEYS, &db, &rep);
	fill(&db);
	pid = fork();
	cr_assert_geq(pid, 0);
	if (pid == 0) {
		uu_child_init();
		if (eng_db_attach(&db, 1) || uu_put(&db, "key1", "child", NULL))
			_exit(1);
		_exit(UU_CHILD_OK);
	}
	uu_expect_exit_ok(pid, "idle worker");
	cr_assert(eq(int, eng_db_reap_worker(&db, 1), 0));
	cr_assert(eq(i32, atomic_load(&db.sh->seats[1].pid), 0));
	uu_expect_val(&db, "key1", "child");
	expect_old_values(&db, 1);
	uu_close(&db);
}

/* --- OFD byte-range locks -------------------------------------------------- */

static int open_lockfile(void)
{
	char path[PATH_LEN];
	int fd;

	uu_path(path, sizeof(path), fx.dir, "locked");
	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0640);
	cr_assert_geq(fd, 0, "open(%s): %s", path, strerror(errno));
	return fd;
}

Test(ipc_flock, write_lock_excludes_overlapping_ranges_only, .timeout = 5)
{
	int a = open_lockfile(), b = open_lockfile();

	cr_assert(eq(int, ipc_flock(a, IPC_FLOCK_WRITE, 100, 100, 0), 0));
	cr_assert(eq(int, ipc_flock(b, IPC_FLOCK_WRITE, 150, 10, 0), -EAGAIN));
	cr_assert(eq(int, ipc_flock(b, IPC_FLOCK_WRITE, 199, 1, 0), -EAGAIN));
	cr_assert(eq(int, ipc_flock(b, IPC_FLOCK_WRITE, 50, 51, 0), -EAGAIN));
	cr_assert(eq(int, ipc_flock(b, IPC_FLOCK_READ, 100, 1, 0), -EAGAIN));
	cr_assert(eq(int, ipc_flock(b, IPC_FLOCK_WRITE, 0, 0, 0), -EAGAIN),
		  "a whole-file lock overlaps everything");
	/* adjacent, not overlapping */
	cr_assert(eq(int, ipc_flock(b, IPC_FLOCK_WRITE, 200, 50, 0), 0));
	cr_assert(eq(int, ipc_flock(b, IPC_FLOCK_WRITE, 50, 50, 0), 0));
	cr_assert(ne(i32, ipc_flock_holder(b, 120, 1), 0));
	cr_assert(eq(i32, ipc_flock_holder(b, 300, 10), 0));
	/* a description never conflicts with itself */
	cr_assert(eq(int, ipc_flock(a, IPC_FLOCK_WRITE, 100, 100, 0), 0));
	cr_assert(eq(int, ipc_flock(a, IPC_FLOCK_UNLOCK, 100, 100, 0), 0));
	cr_assert(eq(int, ipc_flock(b, IPC_FLOCK_WRITE, 100, 100, 0), 0));
	cr_assert(eq(int, ipc_flock(a, IPC_FLOCK_READ, 150, 1, 0), -EAGAIN));
	close(a);
	close(b);
}

Test(ipc_flock, read_locks_share, .timeout = 5)
{
	int a = open_lockfile(), b = open_lockfile(), c = open_lockfile();

	cr_assert(eq(int, ipc_flock(a, IPC_FLOCK_READ, 0, 64, 0), 0));
	cr_assert(eq(int, ipc_flock(b, IPC_FLOCK_READ, 32, 64, 0), 0));
	cr_assert(eq(int, ipc_flock(c, IPC_FLOCK_WRITE, 60, 1, 0), -EAGAIN));
	cr_assert(eq(int, ipc_flock(a, IPC_FLOCK_UNLOCK, 0, 0, 0), 0));
	cr_assert(eq(int, ipc_flock(c, IPC_FLOCK_WRITE, 0, 32, 0), 0));
	cr_assert(eq(int, ipc_flock(c, IPC_FLOCK_WRITE, 32, 1, 0), -EAGAIN));
	close(a);
	close(b);
	close(c);
}

/* The POSIX-lock trap: closing any descriptor of a file drops all of a
 * process's classic fcntl locks on it. OFD locks stay with their own
 * open file description. */
Test(ipc_flock, closing_another_descriptor_keeps_the_lock, .timeout = 5)
{
	int a = open_lockfile(), b = open_lockfile(), other, dup_a;

	cr_assert(eq(int, ipc_flock(a, IPC_FLOCK_WRITE, 0, 4096, 0), 0));
	other = open_lockfile();
	close(other);
	cr_assert(eq(int, ipc_flock(b, IPC_FLOCK_WRITE, 0, 1, 0), -EAGAIN),
		  "closing an unrelated descriptor dropped the lock");
	dup_a = dup(a);
	cr_assert_geq(dup_a, 0);
	close(dup_a);
	cr_assert(eq(int, ipc_flock(b, IPC_FLOCK_WRITE, 0, 1, 0), -EAGAIN),
		  "closing a duplicate dropped the lock");
	close(a); /* the last descriptor of that description: now it goes */
	cr_assert(eq(int, ipc_flock(b, IPC_FLOCK_WRITE, 0, 1, 0), 0));
	close(b);
}

/* Why each worker open()s database.bin itself: a descriptor inherited
 * across fork() shares the description, and so the locks. */
Test(ipc_flock, inherited_descriptor_is_the_same_owner, .timeout = 5)
{
	int a = open_lockfile();
	pid_t pid;

	cr_assert(eq(int, ipc_flock(a, IPC_FLOCK_WRITE, 0, 100, 0), 0));
	pid = fork();
	cr_assert_geq(pid, 0);
	if (pid == 0) {
		uu_child_init();
		int own = open_lockfile();
		if (ipc_flock(own, IPC_FLOCK_WRITE, 0, 100, 0) != -EAGAIN)
			_exit(1);
		if (ipc_flock(a, IPC_FLOCK_WRITE, 0, 100, 0) != 0)
			_exit(2); /* the inherited one is the owner itself */
		_exit(UU_CHILD_OK);
	}
	uu_expect_exit_ok(pid, "child with inherited descriptor");
	close(a);
}

Test(ipc_flock, blocking_lock_waits_for_the_holder, .timeout = 10)
{
	int ready[2], released[2], a;
	pid_t pid;
	char c;

	cr_assert(eq(int, pipe(ready), 0));
	cr_assert(eq(int, pipe2(released, O_NONBLOCK), 0));
	pid = fork();
	cr_assert_geq(pid, 0);
	if (pid == 0) {
		int own;
		uu_child_init();
		own = open_lockfile();
		close(ready[0]);
		close(released[0]);
		if (ipc_flock(own, IPC_FLOCK_WRITE, 10, 10, 0))
			_exit(1);
		signal_ready(ready[1]);
		sleep_ms(BLOCKED_MS);
		signal_ready(released[1]); /* before letting go */
		if (ipc_flock(own, IPC_FLOCK_UNLOCK, 10, 10, 0))
			_exit(2);
		_exit(UU_CHILD_OK);
	}
	close(ready[1]);
	close(released[1]);
	wait_ready(ready[0]);
	close(ready[0]);
	a = open_lockfile();
	cr_assert(eq(int, ipc_flock(a, IPC_FLOCK_WRITE, 0, 15, 0), -EAGAIN));
	cr_assert(eq(int, ipc_flock(a, IPC_FLOCK_WRITE, 0, 15, 1), 0));
	cr_assert(eq(int, (int)read(released[0], &c, 1), 1),
		  "the lock was granted before the holder let go");
	uu_expect_exit_ok(pid, "holder");
	close(released[0]);
	close(a);
}
