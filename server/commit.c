/* server/commit.c — the durability thread and its queues (see commit.h).
 *
 * Two FIFOs, both touched by the loop thread only: `tq` holds waiters
 * for a sync that covers a ticket (group-mode writes, and reads in every
 * durable mode), in ticket order, since tickets taken later are never
 * smaller; `eq` holds always-mode writes, each owed an fdatasync of its
 * own, in the order the thread runs them.
 */
#include "server/commit.h"

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
	int each;           /* --fsync always: one fdatasync per write */
	int interval_ms;
	int efd;
	struct event *ev;
	pthread_t thread;

	/* loop thread only */
	struct fifo tq, eq;
	uint64_t each_popped;

	/* shared with the thread, under mu */
	pthread_mutex_t mu;
	pthread_cond_t cv;
	uint32_t want;
	uint32_t poked;     /* the loop was poked once this ticket was covered */
	int have_want;
	uint64_t each_queued; /* always mode: writes handed in ... */
	uint64_t each_synced; /* ... and writes a sync of their own covered */
	int stop;
	int kicked;         /* sync soon: the version lease runs low */
	int fatal;          /* the sync machinery itself failed */
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

static int sync_to(struct srv_commit *c, uint32_t ticket)
{
	int rc = eng_syncer_wait(&c->syncer, ticket);

	if (rc && rc != ENG_EPOISONED) {
		pthread_mutex_lock(&c->mu);
		c->fatal = rc;
		pthread_mutex_unlock(&c->mu);
	}
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
	if (c->each && c->each_synced < c->each_queued) {
		/* A ticket taken now needs a sync that begins after now: no
		 * sharing with writes queued earlier. */
		uint32_t t = eng_sync_ticket(c->db);
		pthread_mutex_unlock(&c->mu);
		sync_to(c, t);
		poke_loop(c);
		pthread_mutex_lock(&c->mu);
		c->each_synced++;
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
		if (step(c))
			continue;
		if (c->group || c->each) {
			pthread_cond_wait(&c->cv, &c->mu);
			continue;
		}
		deadline_in(&ts, c->interval_ms);
		if (pthread_cond_timedwait(&c->cv, &c->mu, &ts) == ETIMEDOUT) {
			pthread_mutex_unlock(&c->mu);
			sync_if_dirty(c);
			pthread_mutex_lock(&c->mu);
		}
	}
	pthread_mutex_unlock(&c->mu);
	if (!c->group && !c->each)
		sync_if_dirty(c); /* graceful stop: nothing left unsynced */
	return NULL;
}

/* --- the loop side ------------------------------------------------------------ */

static int ready_rc(struct srv_commit *c, int fatal)
{
	if (fatal)
		return fatal;
	return eng_sync_poisoned(c->db) ? ENG_EPOISONED : 0;
}

static void drain(struct srv_commit *c, int force_rc)
{
	uint64_t each_ready;
	int fatal;

	pthread_mutex_lock(&c->mu);
	fatal = c->fatal;
	each_ready = c->each_synced;
	pthread_mutex_unlock(&c->mu);
	while (c->eq.count && (force_rc || fatal || c->each_popped < each_ready)) {
		struct waiter w = fifo_pop(&c->eq);
		c->each_popped++;
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
	c->each = mode == SRV_COMMIT_EACH;
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
	int rc = fifo_push(f, (struct waiter){ ticket, cb, arg });

	if (rc)
		return rc;
	pthread_mutex_lock(&c->mu);
	if (f == &c->eq) {
		c->each_queued++;
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
	if (!c->group && !c->each) {
		cb(0, arg);
		return 0;
	}
	return enqueue(c, c->each ? &c->eq : &c->tq, ticket, cb, arg);
}

int srv_commit_wait_read(struct srv_commit *c, uint32_t ticket,
			 srv_commit_cb cb, void *arg)
{
	if (!c->group && !c->each) {
		cb(0, arg);
		return 0;
	}
	return enqueue(c, &c->tq, ticket, cb, arg);
}

int srv_commit_reads_wait(const struct srv_commit *c)
{
	return c->group || c->each;
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
