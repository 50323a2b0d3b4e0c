/* server/api_write.h — the path every write of the API takes, from the
 * engine call to the answer: a single key (api_kv.c) and a batch
 * (api_batch.c) alike.
 *
 * Owns: a write in flight (struct srv_write): its tries while the key
 * is busy (retried from the loop, never by sleeping; given up after
 * SRV_BUSY_GIVE_UP_MS), a refusal read from the index answered once
 * what it saw is durable, and the wait for the fdatasync that covers an
 * accepted write and, in a group, for a majority to have it
 * (srv_api_after_write, server/api_wait.h). The route says how to try
 * and how to answer (struct srv_write_ops); srv_write_durable() is the
 * one continuation between "the engine took it" and "answer": what a
 * write must wait for before it is acknowledged is waited for before
 * it runs. Runs on a worker's event loop thread.
 *
 * Also owns the worker's pass: single-key writes do not go to the
 * engine one by one as they are parsed, but join a queue that one event
 * drains after the loop turn's reads (it is made active when the first
 * write joins, so libevent runs it behind the read callbacks already
 * active in that turn). The pass takes them to the engine together
 * (eng_write_pass: one append, one index mutex hold each way), then
 * asks once for the sync that covers all of them, as Redis does for
 * the writes of one event loop turn in beforeSleep.
 */
#ifndef CASKD_SERVER_API_WRITE_H
#define CASKD_SERVER_API_WRITE_H

#include "engine/store.h"
#include "server/api_base.h"

#include <event2/event.h>
#include <stdbool.h>
#include <stdint.h>

struct srv_write;

struct srv_write_ops {
	/* A write tried on its own (pass_op NULL): one try at the engine:
	 * 0 (and w->version set), -EAGAIN (busy: tried again), a refusal,
	 * or an error. *seen_end: the log offset
	 * a refusal read up to; *want_sync: the version lease runs low. */
	int (*attempt)(struct srv_write *w, uint64_t *seen_end, bool *want_sync);
	/* Is rc a refusal read from the index (answered once durable)? */
	bool (*is_refusal)(int rc);
	/* A single-key write: its operation and where its result goes, so
	 * that it joins the loop turn's pass (eng_write_pass) with the
	 * other single-key writes parsed in the same turn. NULL: tried on
	 * its own through attempt (a batch, all-or-nothing). */
	void (*pass_op)(struct srv_write *w, const struct eng_op **op,
			struct eng_result **res);
	/* The outcome, once: answers w->req and frees w. rc is 0 (durable),
	 * or the error of the engine (w->written false) or of the wait
	 * (true); w->refused holds a refusal then durable (rc 0). */
	void (*answer)(struct srv_write *w, int rc);
};

/* Embedded first in a route's own write (kv: one key; batch: many). */
struct srv_write {
	const struct srv_write_ops *ops;
	struct srv_api *api;
	struct srv_http_req *req;
	struct event *retry;    /* the busy-key timer, made on first use */
	uint64_t started_ms;
	struct srv_api_tag tag;
	int tries;
	int refused;            /* the refusal waiting to be durable; 0: none */
	uint64_t version;       /* the version written, once taken */
	bool written;           /* the engine took it: waiting to be durable */
	struct srv_write *next; /* in the pass queue */
};

/* Fills w for req on route (enum srv_route): call before srv_write_try. */
void srv_write_init(struct srv_write *w, const struct srv_write_ops *ops,
		    struct srv_api *api, struct srv_http_req *req, int route);
/* Tries the write now; from here on ops->answer ends it. */
void srv_write_try(struct srv_write *w);
/* The continuation of a write the engine took (or of a refusal), once
 * the sync covering it is done: rc 0 or the sync's error. */
void srv_write_durable(int rc, void *arg);
/* Frees what srv_write_init made (the route frees w itself). */
void srv_write_release(struct srv_write *w);
/* A stopping worker: writes still waiting for a pass are answered with
 * -ECANCELED, and the pass's event is freed. */
void srv_write_pass_stop(struct srv_api *api);

#endif
