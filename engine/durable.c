/* engine/durable.c — group commit (see durable.h). */
#include "engine/durable.h"

#include "engine/elog.h"
#include "engine/errors.h"
#include "engine/io.h"
#include "engine/record.h"
#include "engine/shared.h"
#include "ipc/wake.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* How long a waiter sleeps before checking that the syncing process is
 * still alive (a syncer killed mid-fdatasync holds no mutex, only the
 * syncing mark). */
#define SYNC_WAIT_SLICE_MS 100

const double eng_fsync_bounds_s[ENG_FSYNC_BUCKETS] = {
	0.0001, 0.0005, 0.001, 0.002, 0.005, 0.01,
	0.025, 0.05, 0.1, 0.5, 1.0, 1e300,
};
const double eng_wpf_bounds[ENG_WPF_BUCKETS] = {
	1, 2, 4, 8, 16, 32, 64, 128, 256, 1024, 1e300,
};

static int sync_repair(struct ipc_mtx *m, pid_t dead, void *arg)
{
	struct eng_shared *sh = arg;
	(void)m;
	(void)dead;
	sh->syncing = 0; /* its sync never ended; the next waiter redoes it */
	return 0;
}

/* Generations wrap at 2^32: compare by signed distance. */
static int gen_reached(uint32_t have, uint32_t want)
{
	return (int32_t)(have - want) >= 0;
}

uint32_t eng_sync_ticket(struct eng_db *db)
{
	return atomic_load(&db->sh->sync_started) + 1;
}

int eng_sync_covered(struct eng_db *db, uint32_t ticket)
{
	return gen_reached(atomic_load(&db->sh->sync_done), ticket);
}

int eng_sync_dirty(struct eng_db *db)
{
	struct eng_shared *sh = db->sh;
	uint64_t tail = __atomic_load_n(&sh->tail, __ATOMIC_RELAXED);

	return atomic_load(&sh->synced_tail) != tail;
}

int eng_sync_poisoned(struct eng_db *db)
{
	return (int)atomic_load(&db->sh->poisoned);
}

static void observe(_Atomic uint64_t *hist, const double *bounds, int n,
		    double v)
{
	int i = 0;
	while (i < n - 1 && v > bounds[i])
		i++;
	atomic_fetch_add(&hist[i], 1);
}

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Puts the durable mark reached by earlier syncs into the file header, so
 * this sync makes it durable too. Only the mark of a sync that already
 * completed is written: one computed for this sync could reach the disk
 * before the data it vouches for. A failure only keeps the older mark. */
static void write_mark(struct eng_db *db)
{
	struct eng_shared *sh = db->sh;
	char mark[ENG_MARK_SIZE];
	uint32_t seq = sh->mark_seq + 1;

	if (sh->durable_mark <= sh->mark_written)
		return;
	eng_mark_encode(mark, sh->durable_mark, seq);
	if (eng_io_pwrite_all(db->fd, mark, sizeof(mark),
			      seq % 2 ? ENG_MARK_OFF_A : ENG_MARK_OFF_B) == 0) {
		sh->mark_written = sh->durable_mark;
		sh->mark_seq = seq;
	}
}

/* Runs one fdatasync as generation g, with sync_mtx not held (this
 * process is marked as the syncer). written: every byte below it was
 * written before the sync began. */
static void run_sync(struct eng_db *db, uint32_t g, uint64_t writes,
		     uint64_t written)
{
	struct eng_shared *sh = db->sh;
	uint64_t tail = sh->tail; /* a racy read: for the metric only */
	uint64_t t0, dt;
	int rc;

	write_mark(db);
	t0 = now_ns();
	rc = eng_io_datasync(db->fd);

	dt = now_ns() - t0;
	if (ipc_mtx_lock(&sh->sync_mtx, sync_repair, sh) < 0)
		return;
	sh->syncing = 0;
	if (rc) {
		atomic_store(&sh->poisoned, 1);
		atomic_fetch_add(&sh->fsync_errors, 1);
		eng_log(ENG_LOG_ERROR, "fdatasync of database.bin failed: %s; "
			"refusing writes until restart", strerror(-rc));
	} else {
		atomic_store(&sh->synced_tail, tail);
		/* After a failed fdatasync a later one that works proves
		 * nothing about the pages the failed one lost: the mark may
		 * not move past them, or recovery would call their damage
		 * corruption instead of an unacknowledged write. */
		if (!atomic_load(&sh->poisoned) && written > sh->durable_mark)
			sh->durable_mark = written;
	}
	atomic_fetch_add(&sh->fsync_total, 1);
	atomic_fetch_add(&sh->fsync_ns_total, dt);
	observe(sh->fsync_hist, eng_fsync_bounds_s, ENG_FSYNC_BUCKETS,
		(double)dt / 1e9);
	observe(sh->wpf_hist, eng_wpf_bounds, ENG_WPF_BUCKETS, (double)writes);
	atomic_fetch_add(&sh->wpf_sum, writes);
	atomic_store(&sh->sync_done, g);
	ipc_mtx_unlock(&sh->sync_mtx);
	ipc_wake_all(&sh->sync_done);
}

int eng_sync_wait(struct eng_db *db, uint32_t ticket)
{
	struct eng_shared *sh = db->sh;
	int rc;

	for (;;) {
		uint32_t done = atomic_load(&sh->sync_done);
		pid_t syncer;
		uint64_t writes, written;

		if (gen_reached(done, ticket))
			return eng_sync_poisoned(db) ? ENG_EPOISONED : 0;
		/* Taken before the sync begins, outside sync_mtx (lock order:
		 * the two mutexes are never nested). */
		written = eng_db_written_below(db);
		if ((rc = ipc_mtx_lock(&sh->sync_mtx, sync_repair, sh)))
			return rc;
		syncer = sh->syncing;
		if (syncer && kill(syncer, 0) < 0 && errno == ESRCH)
			syncer = sh->syncing = 0; /* died in fdatasync */
		if (syncer) {
			ipc_mtx_unlock(&sh->sync_mtx);
			rc = ipc_wake_wait(&sh->sync_done, done,
					   SYNC_WAIT_SLICE_MS);
			if (rc && rc != -ETIMEDOUT && rc != -EINTR)
				return rc;
			continue;
		}
		if (gen_reached(atomic_load(&sh->sync_done), ticket)) {
			ipc_mtx_unlock(&sh->sync_mtx);
			continue;
		}
		sh->syncing = getpid();
		writes = atomic_load(&sh->writes_total);
		{
			uint64_t n = writes - sh->writes_at_sync;
			uint32_t g = atomic_fetch_add(&sh->sync_started, 1) + 1;
			sh->writes_at_sync = writes;
			ipc_mtx_unlock(&sh->sync_mtx);
			run_sync(db, g, n, written);
		}
	}
}

void eng_sync_reap(struct eng_db *db, pid_t pid)
{
	struct eng_shared *sh = db->sh;

	if (ipc_mtx_lock(&sh->sync_mtx, sync_repair, sh))
		return;
	if (sh->syncing == pid)
		sh->syncing = 0;
	ipc_mtx_unlock(&sh->sync_mtx);
}
