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
void srv_super_started(struct srv_super *s, int slot, pid_t pid)
{
	atomic_store_explicit(&s->w[slot].pid, (int32_t)pid, RELAXED);
}

/* The worker is reaped: the slot is left clean for the next one. */
void srv_super_gone(struct srv_super *s, int slot)
{
	struct srv_wsup *w = &s->w[slot];

	atomic_store_explicit(&w->ready, 0, RELAXED);
	atomic_store_explicit(&w->heartbeat_ms, 0, RELAXED);
	atomic_store_explicit(&w->conns, 0, RELAXED);
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

void srv_super_set_ready(struct srv_super *s, int slot, int ready)
{
	atomic_store_explicit(&s->w[slot].ready, ready ? 1 : 0, RELAXED);
}

void srv_super_beat(struct srv_super *s, int slot, uint64_t now_ms, int nconns)
{
	atomic_store_explicit(&s->w[slot].heartbeat_ms, now_ms, RELAXED);
	atomic_store_explicit(&s->w[slot].conns, (uint64_t)nconns, RELAXED);
}

int srv_super_ready(const struct srv_super *s, int slot)
{
	return atomic_load_explicit(&s->w[slot].ready, RELAXED) != 0;
}

uint64_t srv_super_heartbeat(const struct srv_super *s, int slot)
{
	return atomic_load_explicit(&s->w[slot].heartbeat_ms, RELAXED);
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

	for (int i = 0; i < SRV_SLOTS; i++)
		n += atomic_load_explicit(&s->w[i].conns, RELAXED);
	return n;
}

/* A worker may hold this many connections above the mean before it stops
 * accepting for a moment; the pause is short because the others are
 * accepting meanwhile. */
#define ACCEPT_SLACK_CONNS 2
#define ACCEPT_PAUSE_MS 2

int srv_super_accept_pause(struct srv_super *s, int slot, int nconns)
{
	uint64_t total = 0, workers = 0;

	atomic_store_explicit(&s->w[slot].conns, (uint64_t)nconns, RELAXED);
	for (int i = 0; i < SRV_SLOTS; i++) {
		if (!atomic_load_explicit(&s->w[i].ready, RELAXED))
			continue;
		workers++;
		total += atomic_load_explicit(&s->w[i].conns, RELAXED);
	}
	if (workers < 2)
		return 0;
	return (uint64_t)nconns * workers > total + ACCEPT_SLACK_CONNS * workers
		       ? ACCEPT_PAUSE_MS : 0;
}
