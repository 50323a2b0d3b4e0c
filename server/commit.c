/* server/commit.c — the durability thread and its queues (see commit.h).
 *
 * Two FIFOs, both touched by the loop thread only: `tq` holds waiters
 * for a sync that covers a ticket (group-mode writes, and reads in every
 * durable mode), in ticket order, since tickets taken later are never
 * smaller; `eq` holds always-mode writes, each owed an fdatasync of its
 * own, in the order the thread runs them.
 */
#include "server/commit.h"

#include "server/clock.h"

#include "engine/durable.h"
#include "engine/errors.h"
#include "server/log.h"

#include <errno.h>
#include <event2/event.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#define QUEUE_INIT 256
/* An idle thread checks this often for a database.bin a compaction
 * replaced, so the old file's space is given back within about this. */
#define FOLLOW_MS 500
/* Transient sync failures: first pause, longest pause, and how long they
 * may go on before the worker gives up and is replaced. */
#define SYNC_RETRY_FIRST_MS 10u
#define SYNC_RETRY_MAX_MS 1000u
#define SYNC_GIVE_UP_MS 3000u

struct waiter {
	uint32_t ticket;
	srv_commit_cb cb;
	void *arg;
};

struct fifo {
	struct waiter *q;
	size_t head, count, cap;
};

struct srv_commit {
	struct eng_db *db;
	struct eng_syncer syncer; /* the thread's own descriptor */
	int group;
	int always;         /* --fsync always: one fdatasync per write */
	int interval_ms;
	int efd;
	struct event *ev;
	pthread_t thread;

	/* loop thread only */
	struct fifo tq, eq;
	uint64_t always_popped;

	/* shared with the thread, under mu */
	pthread_mutex_t mu;
	pthread_cond_t cv;
	uint32_t want;
	uint32_t poked;     /* the loop was poked once this ticket was covered */
	int have_want;
	uint64_t always_queued; /* always mode: writes handed in ... */
	uint64_t always_synced; /* ... and writes a sync of their own covered */
	int stop;
	int kicked;         /* sync soon: the version lease runs low */
	int fatal;          /* the sync machinery itself failed for good */
	/* commit thread only: a run of transient sync failures */
	uint64_t failing_since_ms;
	unsigned retry_ms;
};

/* --- the FIFOs ------------------------------------------------------------ */

static int fifo_push(struct fifo *f, struct waiter w)
{
	if (f->count == f->cap) {
		size_t ncap = f->cap ? f->cap * 2 : QUEUE_INIT;
		struct waiter *nq = malloc(ncap * sizeof(*nq));
		if (!nq)
			return -ENOMEM;
		for (size_t i = 0; i < f->count; i++)
			nq[i] = f->q[(f->head + i) % f->cap];
		free(f->q);
		f->q = nq;
		f->cap = ncap;
		f->head = 0;
	}
	f->q[(f->head + f->count) % f->cap] = w;
	f->count++;
	return 0;
}

static struct waiter fifo_pop(struct fifo *f)
{
	struct waiter w = f->q[f->head];

	f->head = (f->head + 1) % f->cap;
	f->count--;
	return w;
}

/* --- the thread ------------------------------------------------------------ */

static void poke_loop(struct srv_commit *c)
{
	uint64_t one = 1;
	while (write(c->efd, &one, sizeof(one)) < 0 && errno == EINTR)
		;
}

/* Errors that another try may not meet: out of descriptors or memory
 * for the remap after a compaction, a file swapped twice under us. */
static int transient(int rc)
{
	return rc == -EMFILE || rc == -ENFILE || rc == -ENOMEM || rc == -ESTALE ||
	       rc == -EAGAIN || rc == -EINTR || rc == -ETIMEDOUT;
}

/* A sync that failed for a transient reason is tried again, after a
 * pause (this thread may sleep: the loop does not wait on it) that grows
 * to SYNC_RETRY_MAX_MS; one that keeps failing for SYNC_GIVE_UP_MS, or
 * fails otherwise, is fatal: the waiters get the error and the worker
 * asks to be replaced (srv_commit_failed). A poisoned file is the
 * master's to handle (it restarts through recovery). */
static int sync_to(struct srv_commit *c, uint32_t ticket)
{
	int rc = eng_syncer_wait(&c->syncer, ticket);
	uint64_t now;

	if (!rc || rc == ENG_EPOISONED) {
		c->failing_since_ms = 0;
		c->retry_ms = 0;
		return rc;
	}
	now = srv_mono_ms();
	if (transient(rc) && (!c->failing_since_ms ||
			      now - c->failing_since_ms < SYNC_GIVE_UP_MS)) {
		struct timespec pause;

		if (!c->failing_since_ms)
			c->failing_since_ms = now;
		c->retry_ms = c->retry_ms ? c->retry_ms * 2 : SYNC_RETRY_FIRST_MS;
		if (c->retry_ms > SYNC_RETRY_MAX_MS)
			c->retry_ms = SYNC_RETRY_MAX_MS;
		pause.tv_sec = c->retry_ms / 1000;
		pause.tv_nsec = (long)(c->retry_ms % 1000) * 1000000L;
		srv_warn("commit: waiting for a sync failed (%s): trying again in %u ms",
			 eng_strerror(rc), c->retry_ms);
		nanosleep(&pause, NULL);
		return rc;
	}
	pthread_mutex_lock(&c->mu);
	c->fatal = rc;
	pthread_mutex_unlock(&c->mu);
	return rc;
}

static void deadline_in(struct timespec *ts, int ms)
{
	clock_gettime(CLOCK_MONOTONIC, ts);
	ts->tv_sec += ms / 1000;
	ts->tv_nsec += (long)(ms % 1000) * 1000000L;
	if (ts->tv_nsec >= 1000000000L) {
		ts->tv_sec++;
		ts->tv_nsec -= 1000000000L;
	}
}

/* Periodic: sync if the log grew (or the lease needs renewing). */
static void sync_if_dirty(struct srv_commit *c)
{
	if (eng_sync_dirty(c->db))
		sync_to(c, eng_sync_ticket(c->db));
}

/* One step of the thread's work, with mu held; 0 when there is none. */
static int step(struct srv_commit *c)
{
	if (c->always && c->always_synced < c->always_queued) {
		/* A ticket taken now needs a sync that begins after now: no
		 * sharing with writes queued earlier. */
		uint32_t t = eng_sync_ticket(c->db);
		int rc;

		pthread_mutex_unlock(&c->mu);
		rc = sync_to(c, t);
		poke_loop(c);
		pthread_mutex_lock(&c->mu);
		/* a transient failure is tried again: its waiter must not
		 * be answered as if the sync had happened */
		if (!rc || rc == ENG_EPOISONED || c->fatal)
			c->always_synced++;
		return 1;
	}
	if (c->have_want && !eng_sync_covered(c->db, c->want)) {
		uint32_t t = c->want;
		pthread_mutex_unlock(&c->mu);
		sync_to(c, t);
		poke_loop(c);
		pthread_mutex_lock(&c->mu);
		c->poked = t;
		return 1;
	}
	/* Another worker's sync may have covered the ticket before this
	 * thread looked: the loop must hear of it all the same, or its
	 * waiters hang until some later write. */
	if (c->have_want && c->poked != c->want) {
		c->poked = c->want;
		pthread_mutex_unlock(&c->mu);
		poke_loop(c);
		pthread_mutex_lock(&c->mu);
		return 1;
	}
	if (c->kicked) {
		c->kicked = 0;
		pthread_mutex_unlock(&c->mu);
		sync_if_dirty(c);
		pthread_mutex_lock(&c->mu);
		return 1;
	}
	return 0;
}

static void *commit_thread(void *arg)
{
	struct srv_commit *c = arg;
	struct timespec ts;

	pthread_mutex_lock(&c->mu);
	while (!c->stop) {
		int idle_ms = c->group || c->always ? FOLLOW_MS : c->interval_ms;

		if (!c->fatal && step(c))
			continue;
		deadline_in(&ts, idle_ms);
		if (pthread_cond_timedwait(&c->cv, &c->mu, &ts) != ETIMEDOUT)
			continue;
		pthread_mutex_unlock(&c->mu);
		/* Idle, this thread would keep mapping a database.bin a
		 * compaction replaced, and its disk space with it. */
		(void)eng_syncer_follow(&c->syncer);
		if (!c->group && !c->always)
			sync_if_dirty(c);
		pthread_mutex_lock(&c->mu);
	}
	pthread_mutex_unlock(&c->mu);
	if (!c->group && !c->always)
		sync_if_dirty(c); /* graceful stop: nothing left unsynced */
	return NULL;
}

/* --- the loop side ------------------------------------------------------------ */

int srv_commit_failed(struct srv_commit *c)
{
	int rc;

	pthread_mutex_lock(&c->mu);
	rc = c->fatal;
	pthread_mutex_unlock(&c->mu);
	return rc;
}

static int ready_rc(struct srv_commit *c, int fatal)
{
	if (fatal)
		return fatal;
	return eng_sync_poisoned(c->db) ? ENG_EPOISONED : 0;
}

static void drain(struct srv_commit *c, int force_rc)
{
	uint64_t always_ready;
	int fatal;

	pthread_mutex_lock(&c->mu);
	fatal = c->fatal;
	always_ready = c->always_synced;
	pthread_mutex_unlock(&c->mu);
	while (c->eq.count && (force_rc || fatal || c->always_popped < always_ready)) {
		struct waiter w = fifo_pop(&c->eq);
		c->always_popped++;
		w.cb(force_rc ? force_rc : ready_rc(c, fatal), w.arg);
	}
	while (c->tq.count &&
	       (force_rc || fatal || eng_sync_covered(c->db, c->tq.q[c->tq.head].ticket))) {
		struct waiter w = fifo_pop(&c->tq);
		w.cb(force_rc ? force_rc : ready_rc(c, fatal), w.arg);
	}
}

static void on_poke(evutil_socket_t fd, short what, void *arg)
{
	struct srv_commit *c = arg;
	uint64_t n;

	(void)what;
	if (read(fd, &n, sizeof(n)) < 0 && errno != EAGAIN)
		srv_warn("commit: read(eventfd): %s", strerror(errno));
	drain(c, 0);
}

int srv_commit_start(struct event_base *base, struct eng_db *db,
		     enum srv_commit_mode mode, int interval_ms,
		     struct srv_commit **out)
{
	struct srv_commit *c = calloc(1, sizeof(*c));
	pthread_condattr_t ca;
	int rc;

	if (!c)
		return -ENOMEM;
	c->db = db;
	c->group = mode == SRV_COMMIT_GROUP;
	c->always = mode == SRV_COMMIT_ALWAYS;
	c->interval_ms = interval_ms;
	c->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (c->efd < 0) {
		rc = -errno;
		goto out_free;
	}
	if ((rc = eng_syncer_init(&c->syncer, db)))
		goto out_free;
	pthread_mutex_init(&c->mu, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&c->cv, &ca);
	pthread_condattr_destroy(&ca);
	c->ev = event_new(base, c->efd, EV_READ | EV_PERSIST, on_poke, c);
	if (!c->ev || event_add(c->ev, NULL) < 0) {
		rc = -ENOMEM;
		goto out_free;
	}
	if ((rc = -pthread_create(&c->thread, NULL, commit_thread, c)))
		goto out_free;
	*out = c;
	return 0;
out_free:
	eng_syncer_close(&c->syncer);
	if (c->ev)
		event_free(c->ev);
	if (c->efd >= 0)
		close(c->efd);
	free(c);
	return rc;
}

static int enqueue(struct srv_commit *c, struct fifo *f, uint32_t ticket,
		   srv_commit_cb cb, void *arg)
{
	int rc;

	/* the thread gave up: no sync will come for a new waiter (the
	 * worker is being replaced); the caller answers with the error */
	if ((rc = srv_commit_failed(c)))
		return rc;
	if ((rc = fifo_push(f, (struct waiter){ ticket, cb, arg })))
		return rc;
	pthread_mutex_lock(&c->mu);
	if (f == &c->eq) {
		c->always_queued++;
	} else {
		if (!c->have_want || (int32_t)(ticket - c->want) > 0)
			c->want = ticket;
		c->have_want = 1;
	}
	pthread_cond_signal(&c->cv);
	pthread_mutex_unlock(&c->mu);
	return 0;
}

int srv_commit_wait(struct srv_commit *c, uint32_t ticket, srv_commit_cb cb,
		    void *arg)
{
	if (!c->group && !c->always) {
		cb(0, arg);
		return 0;
	}
	return enqueue(c, c->always ? &c->eq : &c->tq, ticket, cb, arg);
}

int srv_commit_wait_read(struct srv_commit *c, uint32_t ticket,
			 srv_commit_cb cb, void *arg)
{
	if (!c->group && !c->always) {
		cb(0, arg);
		return 0;
	}
	return enqueue(c, &c->tq, ticket, cb, arg);
}

int srv_commit_reads_wait(const struct srv_commit *c)
{
	return c->group || c->always;
}

void srv_commit_kick(struct srv_commit *c)
{
	pthread_mutex_lock(&c->mu);
	c->kicked = 1;
	pthread_cond_signal(&c->cv);
	pthread_mutex_unlock(&c->mu);
}

void srv_commit_stop(struct srv_commit *c)
{
	if (!c)
		return;
	pthread_mutex_lock(&c->mu);
	c->stop = 1;
	pthread_cond_signal(&c->cv);
	pthread_mutex_unlock(&c->mu);
	pthread_join(c->thread, NULL);
	drain(c, 0);
	drain(c, -ECANCELED);
	event_free(c->ev);
	close(c->efd);
	pthread_cond_destroy(&c->cv);
	pthread_mutex_destroy(&c->mu);
	eng_syncer_close(&c->syncer);
	free(c->tq.q);
	free(c->eq.q);
	free(c);
}
