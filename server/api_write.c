/* server/api_write.c — the path every write of the API takes (see
 * api_write.h): try, retry while busy, wait to be durable, answer.
 */
#include "server/api_write.h"

#include "engine/durable.h"
#include "engine/store.h"
#include "server/api_error.h"
#include "server/api_wait.h"

#include <errno.h>

static void write_try_cb(evutil_socket_t fd, short what, void *arg);

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
	if (rc == -EAGAIN && srv_api_now_ms(api) - w->started_ms < SRV_BUSY_GIVE_UP_MS) {
		w->tries++;
		if (srv_api_retry_later(api, &w->retry, w->tries, write_try_cb, w))
			w->ops->answer(w, -ENOMEM);
		return;
	}
	if (rc && w->ops->is_refusal(rc)) {
		w->refused = rc;
		rc = srv_api_after_durable(api, seen_end, srv_write_durable, w);
		if (rc <= 0)
			srv_write_durable(rc, w);
		return;
	}
	if (rc) {
		w->ops->answer(w, rc);
		return;
	}
	w->written = true;
	rc = srv_api_after_write(api, w->version, srv_write_durable, w);
	if (rc)
		srv_write_durable(rc, w);
}

static void write_try_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	write_attempt(arg, true);
}

void srv_write_try(struct srv_write *w)
{
	write_attempt(w, false);
}
