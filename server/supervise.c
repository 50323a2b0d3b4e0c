/* server/supervise.c — the supervision region (see supervise.h). */
#include "server/supervise.h"

#include "ipc/shm.h"

#include <string.h>

#define RELAXED memory_order_relaxed

int srv_super_create(struct srv_super **out)
{
	return ipc_shm_create(sizeof(struct srv_super), (void **)out);
}

void srv_super_destroy(struct srv_super *s)
{
	ipc_shm_destroy(s, sizeof(*s));
}

/* Only the pid: the child may already have beaten and said ready. */
void srv_super_started(struct srv_super *s, int seat, pid_t pid)
{
	atomic_store_explicit(&s->w[seat].pid, (int32_t)pid, RELAXED);
}

/* The worker is reaped: the seat is left clean for the next one. */
void srv_super_gone(struct srv_super *s, int seat)
{
	struct srv_wsup *w = &s->w[seat];

	atomic_store_explicit(&w->ready, 0, RELAXED);
	atomic_store_explicit(&w->listening, 0, RELAXED);
	atomic_store_explicit(&w->heartbeat_ms, 0, RELAXED);
	atomic_store_explicit(&w->conns, 0, RELAXED);
	atomic_store_explicit(&w->max_conns, 0, RELAXED);
	atomic_store_explicit(&w->pid, 0, RELAXED);
}

void srv_super_set_workers_up(struct srv_super *s, int n)
{
	atomic_store_explicit(&s->workers_up, (uint32_t)n, RELAXED);
}

void srv_super_set_stopping(struct srv_super *s)
{
	atomic_store_explicit(&s->stopping, 1, RELAXED);
}

void srv_super_set_ready(struct srv_super *s, int seat, int ready)
{
	atomic_store_explicit(&s->w[seat].ready, ready ? 1 : 0, RELAXED);
}

void srv_super_listen(struct srv_super *s, int seat, int max_conns)
{
	atomic_store_explicit(&s->w[seat].max_conns, (uint64_t)max_conns, RELAXED);
	atomic_store_explicit(&s->w[seat].listening, 1, RELAXED);
}

void srv_super_unlisten(struct srv_super *s, int seat)
{
	atomic_store_explicit(&s->w[seat].listening, 0, RELAXED);
}

void srv_super_beat(struct srv_super *s, int seat, uint64_t now_ms, int nconns)
{
	atomic_store_explicit(&s->w[seat].heartbeat_ms, now_ms, RELAXED);
	srv_super_set_conns(s, seat, nconns);
}

int srv_super_ready(const struct srv_super *s, int seat)
{
	return atomic_load_explicit(&s->w[seat].ready, RELAXED) != 0;
}

uint64_t srv_super_heartbeat(const struct srv_super *s, int seat)
{
	return atomic_load_explicit(&s->w[seat].heartbeat_ms, RELAXED);
}

int srv_super_stopping(const struct srv_super *s)
{
	return atomic_load_explicit(&s->stopping, RELAXED) != 0;
}

int srv_super_workers_up(const struct srv_super *s)
{
	return (int)atomic_load_explicit(&s->workers_up, RELAXED);
}

uint64_t srv_super_conns(const struct srv_super *s)
{
	uint64_t n = 0;

	for (int i = 0; i < SRV_SEATS; i++)
		n += atomic_load_explicit(&s->w[i].conns, RELAXED);
	return n;
}

uint64_t srv_super_seat_conns(const struct srv_super *s, int seat)
{
	return atomic_load_explicit(&s->w[seat].conns, RELAXED);
}

void srv_super_set_conns(struct srv_super *s, int seat, int nconns)
{
	atomic_store_explicit(&s->w[seat].conns, (uint64_t)nconns, RELAXED);
}

/* A worker may hold this many connections above the mean before it
 * leaves new ones to its siblings. */
#define ACCEPT_SLACK_CONNS 2
/* A sibling whose heartbeat is older than this is not counted on to take
 * connections (a wedged loop): three beats missed. */
#define ACCEPT_STALE_MS (3 * SRV_HEARTBEAT_MS)

/* The count from which a worker of max_conns leaves new connections to
 * siblings with room: 7/8 of it, as nginx's accept_disabled. */
static uint64_t nearly_full(uint64_t max_conns)
{
	return max_conns - max_conns / 8;
}

int srv_super_accept_hold(struct srv_super *s, int seat, int nconns,
			  uint64_t now_ms)
{
	uint64_t n = (uint64_t)nconns, total = n, workers = 1;
	uint64_t max = atomic_load_explicit(&s->w[seat].max_conns, RELAXED);
	int room = 0, ample = 0;

	srv_super_set_conns(s, seat, nconns);
	for (int i = 0; i < SRV_SEATS; i++) {
		const struct srv_wsup *w = &s->w[i];
		uint64_t hb, c, m;

		if (i == seat || !atomic_load_explicit(&w->listening, RELAXED) ||
		    !atomic_load_explicit(&w->ready, RELAXED))
			continue;
		hb = atomic_load_explicit(&w->heartbeat_ms, RELAXED);
		if (!hb || now_ms > hb + ACCEPT_STALE_MS)
			continue;
		c = atomic_load_explicit(&w->conns, RELAXED);
		m = atomic_load_explicit(&w->max_conns, RELAXED);
		workers++;
		total += c;
		room |= c < m;
		ample |= c < nearly_full(m);
	}
	/* Full, with a sibling that is not: a connection this one took
	 * would get 503. With none, take them (up to max_conns, then 503). */
	if (!room)
		return 0;
	if (n >= max)
		return 1;
	/* All nearly full: the rest goes to whoever wakes first. */
	if (!ample)
		return 0;
	if (n >= nearly_full(max))
		return 1;
	return n * workers > total + ACCEPT_SLACK_CONNS * workers;
}
