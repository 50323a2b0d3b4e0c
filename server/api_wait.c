/* server/api_wait.c — answers that wait (see api_wait.h): for the
 * fdatasync that covers what they show and, in a group, for a majority
 * to have it.
 *
 * Owns the worker's waiters: answers held until srv_cl_committed()
 * passes their version, or their deadline (--replication-timeout), or
 * the term ends. A thread sleeps on the shared ack word (any worker's
 * ack wakes it) and pokes the loop (server/poke.h), as the watch hub
 * does; everything else runs on the loop thread.
 */
#include "server/api_wait.h"

#include "engine/durable.h"
#include "engine/errors.h"
#include "engine/failpoint.h"
#include "engine/store.h"
#include "ipc/wake.h"
#include "server/clock.h"
#include "server/cluster_state.h"
#include "server/config.h"
#include "server/http.h"
#include "server/log.h"
#include "server/poke.h"

#include <errno.h>
#include <event2/event.h>
#include <inttypes.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define WAIT_TICK_MS 50

/* --- waiting for a majority ------------------------------------------------ */

struct waiter {
	uint64_t version, term, deadline_ms;
	srv_commit_cb cb;
	void *arg;
	struct waiter *next;
};

struct srv_cl_waits {
	struct srv_api *api;
	struct waiter *head;
	_Atomic unsigned count;
	struct srv_poke *poke;
};

static uint32_t acks_seq(void *arg)
{
	struct srv_cl_waits *w = arg;

	return atomic_load(&w->api->cl->ack_gen);
}

static void acks_wait(void *arg, uint32_t seen, int timeout_ms)
{
	struct srv_cl_waits *w = arg;

	(void)ipc_wake_wait(&w->api->cl->ack_gen, seen, timeout_ms);
}

/* Only while answers wait: read by the thread, so a poke may be missed,
 * and is then made up by the tick. */
static int acks_wanted(void *arg)
{
	struct srv_cl_waits *w = arg;

	return atomic_load(&w->count) > 0;
}

static void waits_run(void *arg)
{
	struct srv_cl_waits *w = arg;
	struct srv_cl_shm *cl = w->api->cl;
	uint64_t committed = srv_cl_committed(cl, (unsigned)w->api->cfg->group_size);
	uint64_t term = atomic_load(&cl->term), now = srv_mono_ms();
	int primary = atomic_load(&cl->role) == SRV_CL_PRIMARY;
	struct waiter **pp = &w->head, *x;

	while ((x = *pp)) {
		int rc;

		if (x->version <= committed && x->term == term && primary)
			rc = 0;
		else if (x->term != term || !primary)
			rc = -ENOTCONN; /* deposed: it may still be applied by the next */
		else if (now >= x->deadline_ms)
			rc = -ETIMEDOUT;
		else {
			pp = &x->next;
			continue;
		}
		*pp = x->next;
		w->count--;
		atomic_fetch_sub(&cl->waiting, 1);
		x->cb(rc, x->arg);
		free(x);
	}
}

static const struct srv_poke_ops acks_ops = {
	.seq = acks_seq, .wait = acks_wait, .wanted = acks_wanted,
	.on_wake = waits_run, .on_tick = waits_run, .tick_ms = WAIT_TICK_MS,
};

int srv_api_cluster_start(struct srv_api *api)
{
	struct srv_cl_waits *w;
	int rc;

	if (!api->cl)
		return 0;
	if (!(w = calloc(1, sizeof(*w))))
		return -ENOMEM;
	w->api = api;
	if ((rc = srv_poke_start(api->base, &acks_ops, w, &w->poke))) {
		free(w);
		return rc;
	}
	api->cl_waits = w;
	return 0;
}

void srv_api_cluster_stop(struct srv_api *api)
{
	struct srv_cl_waits *w = api->cl_waits;

	if (!w)
		return;
	while (w->head) {
		struct waiter *x = w->head;
		w->head = x->next;
		atomic_fetch_sub(&api->cl->waiting, 1);
		x->cb(-ENOTCONN, x->arg);
		free(x);
	}
	srv_poke_stop(w->poke);
	free(w);
	api->cl_waits = NULL;
}

/* cb(rc, arg) once version is on a majority: 0 now (nothing to wait
 * for), 1 later, or -errno. */
static int wait_majority(struct srv_api *api, uint64_t version, srv_commit_cb cb, void *arg)
{
	struct srv_cl_shm *cl = api->cl;
	struct waiter *x;

	if (!cl || atomic_load(&cl->role) != SRV_CL_PRIMARY)
		return 0;
	if (ENG_FP("cluster.ack_early"))
		return 0; /* drills: acknowledged before it is replicated */
	if (version <= srv_cl_committed(cl, (unsigned)api->cfg->group_size))
		return 0;
	if (!api->cl_waits)
		return -ENOTCONN; /* the worker is stopping */
	if (!(x = calloc(1, sizeof(*x))))
		return -ENOMEM;
	x->version = version;
	x->term = atomic_load(&cl->term);
	x->deadline_ms = srv_mono_ms() + (uint64_t)api->cfg->replication_timeout_ms;
	x->cb = cb;
	x->arg = arg;
	x->next = api->cl_waits->head;
	api->cl_waits->head = x;
	api->cl_waits->count++;
	atomic_fetch_add(&cl->waiting, 1);
	return 1;
}

/* Durable here, then on a majority: the two waits in a row. */
struct chain {
	struct srv_api *api;
	uint64_t version;
	srv_commit_cb cb;
	void *arg;
};

static void chain_local(int rc, void *arg)
{
	struct chain *c = arg;
	srv_commit_cb cb = c->cb;
	void *cbarg = c->arg;

	if (!rc)
		rc = wait_majority(c->api, c->version, cb, cbarg);
	free(c);
	if (rc <= 0)
		cb(rc, cbarg);
}

int srv_api_after_write(struct srv_api *api, uint64_t version, srv_commit_cb cb, void *arg)
{
	struct chain *c;
	int rc;

	if (!api->cl)
		return srv_commit_wait(api->commit, eng_sync_ticket(api->db), cb, arg);
	if (!(c = malloc(sizeof(*c))))
		return -ENOMEM;
	*c = (struct chain){ api, version, cb, arg };
	if ((rc = srv_commit_wait(api->commit, eng_sync_ticket(api->db), chain_local, c)))
		free(c);
	return rc;
}

int srv_api_after_durable(struct srv_api *api, uint64_t end, srv_commit_cb cb,
			  void *arg)
{
	int local = srv_commit_reads_wait(api->commit) && end > eng_durable_end(api->db);
	uint64_t top;
	struct chain *c;
	int rc;

	/* A read on the primary shows nothing a failover could take back:
	 * everything published when it looked must be on a majority. */
	if (api->cl && atomic_load(&api->cl->role) == SRV_CL_PRIMARY &&
	    (top = eng_top_version(api->db)) > srv_cl_committed(api->cl,
							       (unsigned)api->cfg->group_size)) {
		if (!local)
			return wait_majority(api, top, cb, arg);
		if (!(c = malloc(sizeof(*c))))
			return -ENOMEM;
		*c = (struct chain){ api, top, cb, arg };
		rc = srv_commit_wait_read(api->commit, eng_sync_ticket(api->db), chain_local, c);
		if (rc)
			free(c);
		return rc ? rc : 1;
	}
	if (!local)
		return 0;
	/* The record was published before we looked: a sync that begins
	 * from now on covers it. */
	rc = srv_commit_wait_read(api->commit, eng_sync_ticket(api->db), cb, arg);
	return rc ? rc : 1;
}
