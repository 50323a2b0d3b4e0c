/* server/api_write.c — the path every write of the API takes (see
 * api_write.h): try, retry while busy, wait to be durable, answer; and
 * the loop turn's pass that single-key writes share.
 *
 * Map: a try and what follows it - writes tried alone - the pass.
 */
#include "server/api_write.h"

#include "engine/durable.h"
#include "engine/errors.h"
#include "engine/store.h"
#include "server/api_error.h"
#include "server/api_wait.h"
#include "server/config.h"

#include <errno.h>
#include <stdlib.h>

/* A pass takes at most this many writes, and no more record bytes than
 * this unless one write alone is larger: the records of a pass are
 * encoded in one buffer before the one pwrite. */
#define PASS_MAX_WRITES 256
#define PASS_MAX_BYTES (1u << 20)

struct srv_write_pass {
	struct event *ev;
	struct srv_write *head, **tail;
};

static void write_try_cb(evutil_socket_t fd, short what, void *arg);
static void pass_join(struct srv_write *w);

void srv_write_init(struct srv_write *w, const struct srv_write_ops *ops,
		    struct srv_api *api, struct srv_http_req *req, int route)
{
	w->ops = ops;
	w->api = api;
	w->req = req;
	w->started_ms = srv_api_now_ms(api);
	srv_api_tag(req, route, &w->tag);
}

void srv_write_release(struct srv_write *w)
{
	if (w->retry)
		event_free(w->retry);
	w->retry = NULL;
}

void srv_write_durable(int rc, void *arg)
{
	struct srv_write *w = arg;

	w->ops->answer(w, rc);
}

/* --- a try and what follows it ------------------------------------------------ */

/* After a try: retried, refused, failed (all dealt with here), or taken
 * by the engine (true): the caller then waits for it to be durable. */
static bool write_tried(struct srv_write *w, int rc, uint64_t seen_end)
{
	struct srv_api *api = w->api;

	if (rc == ENG_ENEXTPASS) {
		pass_join(w); /* an earlier write of its pass held the key */
		return false;
	}
	if (rc == -EAGAIN && srv_api_now_ms(api) - w->started_ms < SRV_BUSY_GIVE_UP_MS) {
		w->tries++;
		if (srv_api_retry_later(api, &w->retry, w->tries, write_try_cb, w))
			w->ops->answer(w, -ENOMEM);
		return false;
	}
	if (rc && w->ops->is_refusal(rc)) {
		w->refused = rc;
		rc = srv_api_after_durable(api, seen_end, srv_write_durable, w);
		if (rc <= 0)
			srv_write_durable(rc, w);
		return false;
	}
	if (rc) {
		w->ops->answer(w, rc);
		return false;
	}
	w->written = true;
	return true;
}

static void wait_durable(struct srv_write *w)
{
	int rc = srv_api_after_write(w->api, w->version, srv_write_durable, w);

	if (rc)
		srv_write_durable(rc, w);
}

/* --- writes tried alone ------------------------------------------------------- */

static void write_attempt(struct srv_write *w, bool from_timer)
{
	struct srv_api *api = w->api;
	uint64_t locks = api->db->mutex_locks, seen_end = 0;
	bool want_sync = false;
	int rc = w->ops->attempt(w, &seen_end, &want_sync);

	if (from_timer) /* the router did not count this try */
		srv_api_locks_since(api, &w->tag, locks);
	if (want_sync)
		srv_api_want_sync(api);
	if (write_tried(w, rc, seen_end))
		wait_durable(w);
}

static void write_try_cb(evutil_socket_t fd, short what, void *arg)
{
	struct srv_write *w = arg;

	(void)fd;
	(void)what;
	if (w->ops->pass_op)
		pass_join(w);
	else
		write_attempt(w, true);
}

void srv_write_try(struct srv_write *w)
{
	if (w->ops->pass_op)
		pass_join(w);
	else
		write_attempt(w, false);
}

/* --- the pass ------------------------------------------------------------------ */

/* The writes of a pass the engine took, waiting for one sync. */
struct pass_wait {
	size_t n;
	struct srv_write *w[];
};

static void pass_durable(int rc, void *arg)
{
	struct pass_wait *pw = arg;

	for (size_t i = 0; i < pw->n; i++)
		srv_write_durable(rc, pw->w[i]);
	free(pw);
}

/* Up to a pass's worth of writes off the queue, oldest first. */
static size_t pass_take(struct srv_write_pass *p, struct srv_write **ws,
			const struct eng_op **ops, struct eng_result **res)
{
	size_t n = 0, bytes = 0;

	while (p->head && n < PASS_MAX_WRITES) {
		struct srv_write *w = p->head;

		w->ops->pass_op(w, &ops[n], &res[n]);
		bytes += ops[n]->klen + ops[n]->vlen;
		if (n && bytes > PASS_MAX_BYTES)
			break; /* it leads the next pass */
		if (!(p->head = w->next))
			p->tail = &p->head;
		w->next = NULL;
		ws[n++] = w;
	}
	return n;
}

/* The writes the engine took wait for durability together (one waiter,
 * the highest version for a group's majority), except with --fsync
 * always, where each is owed an fdatasync of its own. */
static void pass_wait(struct srv_api *api, struct srv_write **ws, size_t n)
{
	struct pass_wait *pw;
	uint64_t top = 0;
	int rc;

	if (n == 1 || api->cfg->fsync == SRV_FSYNC_ALWAYS ||
	    !(pw = malloc(sizeof(*pw) + n * sizeof(pw->w[0])))) {
		for (size_t i = 0; i < n; i++)
			wait_durable(ws[i]);
		return;
	}
	pw->n = n;
	for (size_t i = 0; i < n; i++) {
		pw->w[i] = ws[i];
		if (ws[i]->version > top)
			top = ws[i]->version;
	}
	if ((rc = srv_api_after_write(api, top, pass_durable, pw)))
		pass_durable(rc, pw);
}

static void pass_run(evutil_socket_t fd, short what, void *arg)
{
	struct srv_api *api = arg;
	struct srv_write *ws[PASS_MAX_WRITES];
	const struct eng_op *ops[PASS_MAX_WRITES];
	struct eng_result *res[PASS_MAX_WRITES];
	int rcs[PASS_MAX_WRITES];
	uint64_t locks = api->db->mutex_locks;
	size_t n = pass_take(api->pass, ws, ops, res), taken = 0;
	bool want_sync = false;

	(void)fd;
	(void)what;
	if (!n)
		return;
	if (api->pass->head) /* more than one pass's worth: another turn */
		event_active(api->pass->ev, EV_TIMEOUT, 1);
	if (eng_write_pass(api->db, ops, n, res, rcs) < 0)
		for (size_t i = 0; i < n; i++)
			rcs[i] = -ENOMEM;
	/* A pass holds the mutex for all its writes: counted on the first
	 * one's route, so the counter over requests shows the sharing. */
	srv_api_locks_since(api, &ws[0]->tag, locks);
	for (size_t i = 0; i < n; i++)
		want_sync |= res[i]->want_sync;
	if (want_sync)
		srv_api_want_sync(api);
	for (size_t i = 0; i < n; i++) {
		ws[i]->version = res[i]->version;
		if (write_tried(ws[i], rcs[i], res[i]->seen_end))
			ws[taken++] = ws[i];
	}
	if (taken)
		pass_wait(api, ws, taken);
}

/* Queues w for the pass of this loop turn (made active with the first). */
static void pass_join(struct srv_write *w)
{
	struct srv_api *api = w->api;
	struct srv_write_pass *p = api->pass;

	if (!p) {
		if (!(p = calloc(1, sizeof(*p))) ||
		    !(p->ev = event_new(api->base, -1, 0, pass_run, api))) {
			free(p);
			w->ops->answer(w, -ENOMEM);
			return;
		}
		p->tail = &p->head;
		api->pass = p;
	}
	w->next = NULL;
	*p->tail = w;
	p->tail = &w->next;
	event_active(p->ev, EV_TIMEOUT, 1);
}

void srv_write_pass_stop(struct srv_api *api)
{
	struct srv_write_pass *p = api->pass;

	if (!p)
		return;
	while (p->head) {
		struct srv_write *w = p->head;
		p->head = w->next;
		w->ops->answer(w, -ECANCELED);
	}
	event_free(p->ev);
	free(p);
	api->pass = NULL;
}
