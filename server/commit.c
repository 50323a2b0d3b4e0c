/* server/commit.c — the durability thread and its queue (see commit.h). */
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

struct srv_commit {
	struct eng_db *db;
	int group;
	int each;           /* --fsync always: one fdatasync per write */
	int interval_ms;
	int efd;
	struct event *ev;
	pthread_t thread;

	/* loop thread only: a FIFO ring; tickets never decrease along it */
	struct waiter *q;
	size_t head, count, cap;
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
	int fatal; /* the sync machinery itself failed */
};

static void poke_loop(struct srv_commit *c)
{
	uint64_t one = 1;
	while (write(c->efd, &one, sizeof(one)) < 0 && errno == EINTR)
		;
}

static void sync_to(struct srv_commit *c, uint32_t ticket)
{
	int rc = eng_sync_wait(c->db, ticket);

	if (rc && rc != ENG_EPOISONED) {
		pthread_mutex_lock(&c->mu);
		c->fatal = rc;
		pthread_mutex_unlock(&c->mu);
	}
	poke_loop(c);
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

/* Periodic: sync if the log grew since the last sync. */
static void sync_if_dirty(struct srv_commit *c)
{
	if (eng_sync_dirty(c->db))
		sync_to(c, eng_sync_ticket(c->db));
}

static void *commit_thread(void *arg)
{
	struct srv_commit *c = arg;
	struct timespec ts;

	pthread_mutex_lock(&c->mu);
	while (!c->stop) {
		if (c->each && c->each_synced < c->each_queued) {
			/* A ticket taken now needs a sync that begins after
			 * now: no sharing with writes queued earlier. */
			uint32_t t = eng_sync_ticket(c->db);
			int rc;
			pthread_mutex_unlock(&c->mu);
			rc = eng_sync_wait(c->db, t);
			pthread_mutex_lock(&c->mu);
			if (rc && rc != ENG_EPOISONED)
				c->fatal = rc;
			c->each_synced++;
			pthread_mutex_unlock(&c->mu);
			poke_loop(c);
			pthread_mutex_lock(&c->mu);
			continue;
		}
		if (c->group && c->have_want && !eng_sync_covered(c->db, c->want)) {
			uint32_t t = c->want;
			pthread_mutex_unlock(&c->mu);
			sync_to(c, t);
			pthread_mutex_lock(&c->mu);
			c->poked = t;
			continue;
		}
		/* Another worker's sync may have covered the ticket before
		 * this thread looked: the loop must hear of it all the same,
		 * or its waiters hang until some later write. */
		if (c->group && c->have_want && c->poked != c->want) {
			c->poked = c->want;
			pthread_mutex_unlock(&c->mu);
			poke_loop(c);
			pthread_mutex_lock(&c->mu);
			continue;
		}
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

static void drain(struct srv_commit *c, int force_rc)
{
	uint64_t each_ready;
	int fatal;

	pthread_mutex_lock(&c->mu);
	fatal = c->fatal;
	each_ready = c->each_synced;
	pthread_mutex_unlock(&c->mu);
	while (c->count) {
		struct waiter w = c->q[c->head];
		int rc;
		if (force_rc)
			rc = force_rc;
		else if (fatal)
			rc = fatal;
		else if (c->each && c->each_popped < each_ready)
			rc = eng_sync_poisoned(c->db) ? ENG_EPOISONED : 0;
		else if (c->each)
			break;
		else if (eng_sync_covered(c->db, w.ticket))
			rc = eng_sync_poisoned(c->db) ? ENG_EPOISONED : 0;
		else
			break;
		c->head = (c->head + 1) % c->cap;
		c->count--;
		c->each_popped += c->each;
		w.cb(rc, w.arg);
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
	int rc;

	if (!c)
		return -ENOMEM;
	c->db = db;
	c->group = mode == SRV_COMMIT_GROUP;
	c->each = mode == SRV_COMMIT_EACH;
	c->interval_ms = interval_ms;
	c->cap = QUEUE_INIT;
	c->q = calloc(c->cap, sizeof(*c->q));
	c->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (!c->q || c->efd < 0) {
		rc = c->q ? -errno : -ENOMEM;
		goto out_free;
	}
	pthread_mutex_init(&c->mu, NULL);
	{
		pthread_condattr_t ca;
		pthread_condattr_init(&ca);
		pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
		pthread_cond_init(&c->cv, &ca);
		pthread_condattr_destroy(&ca);
	}
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
	if (c->ev)
		event_free(c->ev);
	if (c->efd >= 0)
		close(c->efd);
	free(c->q);
	free(c);
	return rc;
}

static int grow(struct srv_commit *c)
{
	size_t ncap = c->cap * 2;
	struct waiter *nq = malloc(ncap * sizeof(*nq));

	if (!nq)
		return -ENOMEM;
	for (size_t i = 0; i < c->count; i++)
		nq[i] = c->q[(c->head + i) % c->cap];
	free(c->q);
	c->q = nq;
	c->cap = ncap;
	c->head = 0;
	return 0;
}

int srv_commit_wait(struct srv_commit *c, uint32_t ticket, srv_commit_cb cb,
		    void *arg)
{
	int rc;

	if (!c->group && !c->each) {
		cb(0, arg);
		return 0;
	}
	if (c->count == c->cap && (rc = grow(c)))
		return rc;
	c->q[(c->head + c->count) % c->cap] = (struct waiter){ ticket, cb, arg };
	c->count++;
	pthread_mutex_lock(&c->mu);
	c->each_queued += c->each;
	if (!c->have_want || (int32_t)(ticket - c->want) > 0)
		c->want = ticket;
	c->have_want = 1;
	pthread_cond_signal(&c->cv);
	pthread_mutex_unlock(&c->mu);
	return 0;
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
	free(c->q);
	free(c);
}
