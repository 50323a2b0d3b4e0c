/* engine/durable.c — group commit (see durable.h). */
#include "engine/durable.h"

#include "engine/logwake.h"

#include "engine/elog.h"
#include "engine/errors.h"
#include "engine/failpoint.h"
#include "engine/io.h"
#include "engine/record.h"
#include "engine/shared.h"
#include "ipc/wake.h"
#include "engine/db.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
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

void eng_sync_poison(struct eng_db *db)
{
	atomic_store(&db->sh->poisoned, 1);
}

int eng_sync_poisoned(struct eng_db *db)
{
	return (int)atomic_load(&db->sh->poisoned);
}

int eng_sync_dirty(struct eng_db *db)
{
	struct eng_shared *sh = db->sh;
	uint64_t tail = __atomic_load_n(&sh->tail, __ATOMIC_RELAXED);

	return atomic_load(&sh->synced_tail) != tail ||
	       __atomic_load_n(&sh->seq, __ATOMIC_RELAXED) + ENG_LEASE_VERSIONS / 2 >
		       atomic_load(&sh->lease);
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

/* What one sync does, decided under sync_mtx when it begins. */
struct sync_plan {
	uint32_t gen;         /* its number */
	uint64_t file_gen;    /* the file it syncs */
	uint64_t writes;      /* writes it covers, for the histogram */
	uint64_t written;     /* every byte below was written before it began */
	uint64_t tail;        /* for the periodic mode's dirty check */
	struct eng_mark mark; /* to put in the header first, if */
	int write_mark;       /* ... it differs from what is there */
	int mark_copy;
};

/* Puts in the header the mark earlier syncs reached (never one computed
 * for this sync: it could reach the disk before the data it vouches
 * for) and, when half of the lease is used, a new lease, which this sync
 * makes durable before any version above the old one is handed out. */
static void plan_mark(struct eng_shared *sh, struct sync_plan *p)
{
	uint64_t lease = atomic_load(&sh->lease);
	uint64_t seq = __atomic_load_n(&sh->seq, __ATOMIC_RELAXED);

	assert(ipc_mtx_held(&sh->sync_mtx));
	p->mark.durable = atomic_load(&sh->durable_end);
	p->mark.lease = lease;
	if (seq + ENG_LEASE_VERSIONS / 2 > lease)
		p->mark.lease = seq + ENG_LEASE_VERSIONS;
	/* A new lease goes in at once; a new durable offset at most every
	 * mark_interval_ns, since the header page is one more write for
	 * the sync to wait for. */
	p->write_mark = sh->mark_file_gen == p->file_gen &&
			(p->mark.lease > sh->mark.lease ||
			 (p->mark.durable > sh->mark.durable &&
			  now_ns() - sh->mark_at_ns >= sh->mark_interval_ns));
	p->mark_copy = !sh->mark_copy;
}

/* Runs one fdatasync of fd, with sync_mtx not held (this process is
 * marked as the syncer). */
static void run_sync(struct eng_db *db, int fd, const struct sync_plan *p)
{
	struct eng_shared *sh = db->sh;
	char mark[ENG_MARK_SIZE];
	int mark_ok = 0, same_file;
	uint64_t t0, dt;
	int rc;

	if (p->write_mark) {
		eng_mark_encode(mark, &p->mark);
		mark_ok = eng_io_pwrite_all(fd, mark, sizeof(mark),
					    eng_mark_off(p->mark_copy)) == 0;
	}
	t0 = now_ns();
	rc = eng_io_datasync(fd);
	dt = now_ns() - t0;
	if (eng_lock_sync(sh) < 0)
		return;
	sh->syncing = 0;
	same_file = atomic_load(&sh->file_gen) == p->file_gen;
	if (rc) {
		atomic_store(&sh->poisoned, 1);
		atomic_fetch_add(&sh->fsync_errors, 1);
		eng_log(ENG_LOG_ERROR, "fdatasync of database.bin failed: %s; "
			"refusing writes until restart", strerror(-rc));
	} else if (same_file) {
		/* After a failed fdatasync a later one that works proves
		 * nothing about the pages the failed one lost: the mark may
		 * not move past them, or recovery would call their damage
		 * corruption instead of an unacknowledged write. */
		atomic_store(&sh->synced_tail, p->tail);
		if (!atomic_load(&sh->poisoned)) {
			if (p->written > atomic_load(&sh->durable_end))
				atomic_store(&sh->durable_end, p->written);
			if (mark_ok) {
				sh->mark = p->mark;
				sh->mark_copy = p->mark_copy;
				sh->mark_at_ns = t0;
				if (p->mark.lease > atomic_load(&sh->lease))
					atomic_store(&sh->lease, p->mark.lease);
			}
		}
	}
	atomic_fetch_add(&sh->fsync_total, 1);
	atomic_fetch_add(&sh->fsync_ns_total, dt);
	observe(sh->fsync_hist, eng_fsync_bounds_s, ENG_FSYNC_BUCKETS,
		(double)dt / 1e9);
	observe(sh->wpf_hist, eng_wpf_bounds, ENG_WPF_BUCKETS, (double)p->writes);
	atomic_fetch_add(&sh->wpf_sum, p->writes);
	atomic_store(&sh->sync_done, p->gen);
	eng_unlock_sync(sh);
	ipc_wake_all(&sh->sync_done);
	eng_log_notify(sh); /* durable now: log readers may show more */
}

/* Maps the file a compaction made (failpoint sync.remap: EMFILE there is
 * what a full descriptor table gives). */
static int syncer_remap(struct eng_db *db)
{
	int rc;

	if ((rc = ENG_FP("sync.remap")))
		return rc;
	return eng_db_refresh(db);
}

/* db is the caller's own: a thread of its own syncs through an
 * eng_syncer's copy, whose mapping and descriptor nobody else switches. */
static int sync_wait(struct eng_db *db, uint32_t ticket)
{
	struct eng_shared *sh = db->sh;
	int rc;

	for (;;) {
		uint32_t done = atomic_load(&sh->sync_done);
		struct sync_plan p;
		pid_t syncer;

		if (gen_reached(done, ticket))
			return eng_sync_poisoned(db) ? ENG_EPOISONED : 0;
		if (db->file_gen != atomic_load(&sh->file_gen) &&
		    (rc = syncer_remap(db)))
			return rc;
		/* Taken before the sync begins, outside sync_mtx (the
		 * two mutexes are only ever nested index -> sync). */
		p.written = eng_db_written_below(db);
		p.tail = __atomic_load_n(&sh->tail, __ATOMIC_RELAXED);
		if ((rc = eng_lock_sync(sh)))
			return rc;
		syncer = sh->syncing;
		if (syncer && kill(syncer, 0) < 0 && errno == ESRCH)
			syncer = sh->syncing = 0; /* died in fdatasync */
		if (syncer) {
			eng_unlock_sync(sh);
			rc = ipc_wake_wait(&sh->sync_done, done, SYNC_WAIT_SLICE_MS);
			if (rc && rc != -ETIMEDOUT && rc != -EINTR)
				return rc;
			continue;
		}
		if (gen_reached(atomic_load(&sh->sync_done), ticket) ||
		    db->file_gen != atomic_load(&sh->file_gen)) {
			eng_unlock_sync(sh);
			continue;
		}
		sh->syncing = getpid();
		p.file_gen = db->file_gen;
		p.writes = atomic_load(&sh->writes_total) - sh->writes_at_sync;
		sh->writes_at_sync += p.writes;
		p.gen = atomic_fetch_add(&sh->sync_started, 1) + 1;
		plan_mark(sh, &p);
		eng_unlock_sync(sh);
		run_sync(db, db->fd, &p);
	}
}

int eng_sync_wait(struct eng_db *db, uint32_t ticket)
{
	return sync_wait(db, ticket);
}

int eng_syncer_init(struct eng_syncer *s, struct eng_db *db)
{
	/* A copy that shares the regions but maps the file on its own: its
	 * repairs and refreshes never touch the loop thread's mapping. */
	memset(&s->own, 0, sizeof(s->own));
	s->own.sh = db->sh;
	s->own.dir = db->dir;
	s->own.path = db->path;
	s->own.seat = db->seat;
	s->own.is_syncer = 1;
	s->own.lock_fd = -1;
	s->own.fd = -1;
	return eng_db_refresh(&s->own);
}

int eng_syncer_wait(struct eng_syncer *s, uint32_t ticket)
{
	return sync_wait(&s->own, ticket);
}

int eng_syncer_follow(struct eng_syncer *s)
{
	if (s->own.file_gen == atomic_load(&s->own.sh->file_gen))
		return 0;
	return syncer_remap(&s->own);
}

void eng_syncer_close(struct eng_syncer *s)
{
	eng_db_unmap(&s->own);
}

void eng_sync_reap(struct eng_db *db, pid_t pid)
{
	struct eng_shared *sh = db->sh;

	if (eng_lock_sync(sh))
		return;
	if (sh->syncing == pid)
		sh->syncing = 0;
	eng_unlock_sync(sh);
}
