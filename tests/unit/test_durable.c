/* tests/unit/test_durable.c — group commit (engine/durable.h).
 *
 * A ticket is covered only by a sync that began after it was taken; one
 * fdatasync serves every waiter of every process whose ticket it covers;
 * the durable mark reaches the file header one sync later; and a failed
 * fdatasync poisons the store for good (fsyncgate: a retry that succeeds
 * proves nothing). Failpoints are armed only in forked children.
 */
#include "engine/durable.h"
#include "engine/errors.h"
#include "engine/record.h"
#include "engine/shared.h"
#include "engine/store.h"
#include "tests/unit/unit_util.h"

#include <criterion/criterion.h>
#include <criterion/new/assert.h>
#include <errno.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

#define SYNCERS 2
#define MANY_WAITERS 6

UU_STORE_SUITE(engine_durable, "durable");

static uint64_t fsyncs(void)
{
	return atomic_load(&db.sh->fsync_total);
}

Test(engine_durable, ticket_is_covered_only_after_a_sync, .timeout = 10)
{
	struct eng_stats st;
	uint32_t t1, t2;
	uint64_t before = fsyncs();
	int rc;

	cr_assert(eq(int, uu_put(&db, "k", "v", NULL), 0));
	t1 = eng_sync_ticket(&db);
	cr_assert(eq(int, eng_sync_covered(&db, t1), 0),
		  "nothing has synced since the write");
	cr_assert(eq(u32, eng_sync_ticket(&db), t1), "no sync, same ticket");
	rc = eng_sync_wait(&db, t1);
	cr_assert(eq(int, rc, 0), "%s", eng_strerror(rc));
	cr_assert(eq(int, eng_sync_covered(&db, t1), 1));
	cr_assert(eq(u64, fsyncs(), before + 1));

	/* covered tickets return at once, without another fdatasync */
	cr_assert(eq(int, eng_sync_wait(&db, t1), 0));
	cr_assert(eq(u64, fsyncs(), before + 1));

	/* a write after that sync began needs the next one */
	cr_assert(eq(int, uu_put(&db, "k", "w", NULL), 0));
	t2 = eng_sync_ticket(&db);
	cr_assert(eq(u32, t2, t1 + 1));
	cr_assert(eq(int, eng_sync_covered(&db, t2), 0));
	cr_assert(eq(int, eng_sync_wait(&db, t2), 0));
	cr_assert(eq(int, eng_sync_covered(&db, t2), 1));
	cr_assert(eq(u64, fsyncs(), before + 2));

	eng_stats(&db, &st);
	cr_assert(eq(u64, st.fsync_total, before + 2));
	cr_assert(eq(u64, st.fsync_errors, 0));
	cr_assert(eq(int, st.poisoned, 0));
	cr_assert(eq(u64, atomic_load(&db.sh->synced_tail), db.sh->tail));
}

/* Children write, take their tickets, then all wait at once. The first
 * to get there runs the fdatasync (slowed down by a failpoint so that the
 * others find it running); the rest sleep on it: one sync for all. */
static void run_concurrent_waiters(int n)
{
	pid_t pids[MANY_WAITERS];
	int go[2], ready[2];
	uint64_t before = fsyncs();
	char buf[MANY_WAITERS];

	cr_assert(le(int, n, MANY_WAITERS));
	cr_assert(eq(int, pipe(go), 0));
	cr_assert(eq(int, pipe(ready), 0));
	for (int c = 0; c < n; c++) {
		pids[c] = fork();
		cr_assert_geq(pids[c], 0);
		if (pids[c] == 0) {
			char key[24], x;
			uint32_t t;
			uu_child_init();
			close(go[1]);
			close(ready[0]);
			snprintf(key, sizeof(key), "child%d", c);
			if (eng_db_attach(&db, 1 + c))
				_exit(1);
			uu_child_arm("sync.before=delay");
			if (uu_put(&db, key, "v", NULL))
				_exit(2);
			t = eng_sync_ticket(&db);
			if (write(ready[1], "r", 1) != 1 || read(go[0], &x, 1) != 0)
				_exit(3);
			if (eng_sync_wait(&db, t))
				_exit(4);
			if (!eng_sync_covered(&db, t))
				_exit(5);
			_exit(UU_CHILD_OK);
		}
	}
	close(go[0]);
	close(ready[1]);
	for (int got = 0; got < n;) {
		ssize_t r = read(ready[0], buf, (size_t)(n - got));
		cr_assert(gt(i64, (int64_t)r, 0), "a child did not get ready");
		got += (int)r;
	}
	close(go[1]); /* all tickets are taken: go */
	for (int c = 0; c < n; c++)
		uu_expect_exit_ok(pids[c], "sync waiter");
	close(ready[0]);
	cr_assert(eq(u64, fsyncs(), before + 1),
		  "one fdatasync covers every ticket taken before it began");
	for (int c = 0; c < n; c++) {
		char key[24];
		snprintf(key, sizeof(key), "child%d", c);
		uu_expect_val(&db, key, "v");
	}
	cr_assert(eq(i32, db.sh->syncing, 0), "no sync left running");
}

Test(engine_durable, two_processes_wait_concurrently, .timeout = 10)
{
	run_concurrent_waiters(SYNCERS);
}

Test(engine_durable, many_processes_share_one_fdatasync, .timeout = 10)
{
	run_concurrent_waiters(MANY_WAITERS);
}

/* The durable mark in shared memory moves when a sync completes; the
 * one in the file header is written by the next sync, so it can never
 * reach the disk ahead of the data it vouches for. */
Test(engine_durable, durable_mark_reaches_the_file_one_sync_later,
     .timeout = 10)
{
	struct eng_result res;
	struct eng_mark m0, m;
	uint64_t first_end;
	int slot0, slot, slot1, format;

	cr_assert(eq(int, eng_mark_read(db.map, &m0, &slot0), 0));
	cr_assert(eq(int, uu_put(&db, "a", "1", &res), 0));
	first_end = res.end;
	cr_assert(eq(int, eng_sync_wait(&db, eng_sync_ticket(&db)), 0));
	cr_assert(eq(u64, atomic_load(&db.sh->durable_end), first_end));
	cr_assert(eq(int, eng_mark_read(db.map, &m, &slot), 0));
	cr_assert(lt(u64, m.durable, first_end),
		  "the header mark waits for the next sync");
	cr_assert(ge(u64, m.lease, res.version),
		  "the lease covers every version handed out");
	slot1 = slot;

	cr_assert(eq(int, uu_put(&db, "b", "2", &res), 0));
	cr_assert(eq(int, eng_sync_wait(&db, eng_sync_ticket(&db)), 0));
	cr_assert(eq(int, eng_mark_read(db.map, &m, &slot), 0));
	cr_assert(eq(u64, m.durable, first_end));
	cr_assert(ge(u64, m.lease, res.version));
	cr_assert(ne(int, slot, slot1),
		  "marks alternate between the two slots: a torn one leaves "
		  "the other");
	cr_assert(eq(u64, atomic_load(&db.sh->durable_end), res.end));
	cr_assert(eq(int, eng_file_hdr_check(db.map, ENG_FILE_HDR_SIZE,
					     &format), 0));
	cr_assert(eq(int, format, 2));
	cr_assert(ge(u64, m.durable, m0.durable));
	(void)slot0;
}

/* A write still in flight (reserved, not yet written) holds the durable
 * mark below it, whatever was synced after it. */
Test(engine_durable, inflight_write_holds_the_mark_back, .timeout = 10)
{
	uint64_t hole;

	uu_crash_writer(&db, 1, "log.after_reserve=crash", "slow", "v");
	hole = db.sh->seats[1].inflight.off;
	cr_assert(eq(int, uu_put(&db, "later", "v", NULL), 0));
	cr_assert(eq(int, eng_sync_wait(&db, eng_sync_ticket(&db)), 0));
	cr_assert(eq(u64, atomic_load(&db.sh->durable_end), hole));
	cr_assert(eq(int, eng_db_reap_worker(&db, 1), 0));
	cr_assert(eq(int, eng_sync_wait(&db, eng_sync_ticket(&db)), 0));
	cr_assert(eq(u64, atomic_load(&db.sh->durable_end), db.sh->tail));
}

/* fsyncgate: after one failed fdatasync nothing more is acknowledged and
 * nothing more is written, in any process, even if a later one works. */
Test(engine_durable, failed_fdatasync_poisons_the_store, .timeout = 10)
{
	struct eng_stats st;
	pid_t pid;
	int rc;

	cr_assert(eq(int, uu_put(&db, "before", "v", NULL), 0));
	pid = fork();
	cr_assert_geq(pid, 0);
	if (pid == 0) {
		uint32_t t;
		uu_child_init();
		if (eng_db_attach(&db, 1))
			_exit(1);
		uu_child_arm("io.fsync=eio");
		if (uu_put(&db, "k", "v", NULL))
			_exit(2);
		t = eng_sync_ticket(&db);
		if (eng_sync_wait(&db, t) != ENG_EPOISONED)
			_exit(3);
		if (!eng_sync_poisoned(&db))
			_exit(4);
		if (uu_put(&db, "k", "w", NULL) != ENG_EPOISONED)
			_exit(5);
		_exit(UU_CHILD_OK);
	}
	uu_expect_exit_ok(pid, "syncer with a failing disk");

	cr_assert(eq(int, eng_sync_poisoned(&db), 1));
	eng_stats(&db, &st);
	cr_assert(eq(int, st.poisoned, 1));
	cr_assert(eq(u64, st.fsync_errors, 1));
	rc = uu_put(&db, "after", "v", NULL);
	cr_assert(eq(int, rc, ENG_EPOISONED), "%s", eng_strerror(rc));
	cr_assert(eq(int, uu_del(&db, "before", NULL), ENG_EPOISONED));
	cr_assert(eq(int, uu_incr(&db, "n", 1, NULL), ENG_EPOISONED));
	uu_expect_val(&db, "after", NULL);
	uu_expect_val(&db, "before", "v"); /* reads go on */
	/* this process's disk works; the store stays poisoned all the same */
	rc = eng_sync_wait(&db, eng_sync_ticket(&db));
	cr_assert(eq(int, rc, ENG_EPOISONED), "%s", eng_strerror(rc));
	cr_assert(eq(u64, atomic_load(&db.sh->durable_end), ENG_FILE_HDR_SIZE),
		  "a failed sync vouches for nothing");
}

/* A syncer killed inside fdatasync holds no mutex, only the "syncing"
 * mark: the next waiter must notice and run the sync itself. */
Test(engine_durable, syncer_killed_mid_sync_does_not_hang_waiters,
     .timeout = 10)
{
	pid_t pid;
	int rc;

	cr_assert(eq(int, uu_put(&db, "k", "v", NULL), 0));
	pid = fork();
	cr_assert_geq(pid, 0);
	if (pid == 0) {
		uu_child_init();
		if (eng_db_attach(&db, 1))
			_exit(1);
		uu_child_arm("sync.before=crash");
		eng_sync_wait(&db, eng_sync_ticket(&db));
		_exit(2);
	}
	uu_expect_killed(pid, "syncer");
	cr_assert(eq(i32, db.sh->syncing, pid), "it died marked as the syncer");
	rc = eng_sync_wait(&db, eng_sync_ticket(&db));
	cr_assert(eq(int, rc, 0), "%s", eng_strerror(rc));
	cr_assert(eq(i32, db.sh->syncing, 0));
	cr_assert(eq(int, eng_sync_poisoned(&db), 0));
}
