/* server/api.c — the router of the HTTP API (see api.h): the route
 * table, then the service endpoints it serves itself, then the
 * callbacks the HTTP layer calls (body limit, handle, accept hold,
 * access log).
 */
#include "server/api.h"

#include "engine/durable.h"
#include "engine/store.h"
#include "server/api_admin.h"
#include "server/api_batch.h"
#include "server/api_cluster.h"
#include "server/api_error.h"
#include "server/api_keys.h"
#include "server/api_kv.h"
#include "server/api_watch.h"
#include "server/clock.h"
#include "server/config.h"
#include "server/http.h"
#include "server/log.h"
#include "server/metrics.h"
#include "server/supervise.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ALLOW_READ "GET, HEAD"
/* What OPTIONS * answers: every method some path takes. */
#define ALLOW_SERVER "GET, HEAD, PUT, POST, DELETE, OPTIONS"
#define SMALL_BODY_LIMIT (64u << 10) /* bodies of requests that take none */

/* --- the route table --------------------------------------------------------- */

static void route_healthz(struct srv_api *api, struct srv_http_req *req,
			  const char *path);
static void route_metrics(struct srv_api *api, struct srv_http_req *req,
			  const char *path);
static void route_keys(struct srv_api *api, struct srv_http_req *req, const char *path)
{
	srv_api_keys(api, req);
}
static void route_batch(struct srv_api *api, struct srv_http_req *req, const char *path)
{
	srv_api_batch(api, req);
}
static void route_watch(struct srv_api *api, struct srv_http_req *req, const char *path)
{
	srv_api_watch(api, req);
}

struct route {
	const char *path;
	bool prefix;          /* path is a prefix ("/kv/"), else the whole path */
	enum srv_route id;    /* the metrics label (server/metrics.c names it) */
	const char *allow;    /* methods taken, checked here; NULL: the route checks */
	void (*handle)(struct srv_api *api, struct srv_http_req *req, const char *path);
};

/* Every path caskd serves, for routing and for metrics alike; a path no
 * entry takes is SRV_ROUTE_OTHER (404). */
static const struct route routes[] = {
	{ "/kv/", true, SRV_ROUTE_KV, SRV_ALLOW_KV, srv_api_kv },
	{ "/incr/", true, SRV_ROUTE_INCR, SRV_ALLOW_INCR, srv_api_incr },
	{ "/keys", false, SRV_ROUTE_KEYS, SRV_ALLOW_KEYS, route_keys },
	{ "/batch", false, SRV_ROUTE_BATCH, SRV_ALLOW_BATCH, route_batch },
	/* authorization first: the admin routes check their own methods */
	{ "/admin/", true, SRV_ROUTE_ADMIN, NULL, srv_api_admin },
	{ "/watch", false, SRV_ROUTE_WATCH, SRV_ALLOW_WATCH, route_watch },
	/* the group's own endpoints check their methods; counted as other */
	{ "/cluster/", true, SRV_ROUTE_OTHER, NULL, srv_api_cluster },
	{ "/healthz", false, SRV_ROUTE_HEALTHZ, ALLOW_READ, route_healthz },
	{ "/metrics", false, SRV_ROUTE_METRICS, ALLOW_READ, route_metrics },
};

static const struct route *route_find(const char *path)
{
	for (size_t i = 0; i < sizeof(routes) / sizeof(routes[0]); i++) {
		const struct route *r = &routes[i];

		if (r->prefix ? !strncmp(path, r->path, strlen(r->path)) : !strcmp(path, r->path))
			return r;
	}
	return NULL;
}

static enum srv_route route_id(const char *path)
{
	const struct route *r = route_find(path);

	return r ? r->id : SRV_ROUTE_OTHER;
}

/* --- service endpoints ------------------------------------------------------ */

static void route_healthz(struct srv_api *api, struct srv_http_req *req,
			  const char *path)
{
	/* Only the daemon stopping counts: a worker replaced by a reload
	 * drains too, but the service goes on. */
	if (srv_super_stopping(api->super)) {
		srv_api_unavailable(req, "shutting_down", "the daemon is stopping");
		return;
	}
	if (eng_sync_poisoned(api->db)) {
		srv_api_unavailable(req, "io_error",
				    "an fdatasync failed; the daemon is restarting");
		return;
	}
	srv_http_respond(req, 200, "text/plain", "ok", 2);
}

static void route_metrics(struct srv_api *api, struct srv_http_req *req,
			  const char *path)
{
	char *text;
	size_t len;

	if (srv_metrics_render(api->metrics, api->super, api->db, &text, &len) < 0 ||
	    srv_api_cluster_metrics(api, &text, &len) < 0) {
		srv_api_unavailable(req, "overloaded", "out of memory");
		return;
	}
	srv_http_respond(req, 200, "text/plain; version=0.0.4; charset=utf-8", text, len);
	free(text);
}

/* --- the router ---------------------------------------------------------------- */

size_t srv_api_body_limit(struct srv_http_req *req, void *arg)
{
	struct srv_api *api = arg;
	enum srv_route id = route_id(srv_http_req_path(req));
	enum srv_http_method m = srv_http_req_method(req);

	if (m == SRV_HTTP_PUT && id == SRV_ROUTE_KV) {
		srv_http_req_limit_error(req, "value_too_large",
					 "the value is larger than --max-value-size");
		return api->cfg->max_value_size;
	}
	if (m == SRV_HTTP_POST && id == SRV_ROUTE_BATCH) {
		srv_http_req_limit_error(req, "batch_too_large",
					 "the batch is larger than --max-batch-size");
		return api->cfg->max_batch_size;
	}
	return SMALL_BODY_LIMIT;
}

static void route(struct srv_api *api, struct srv_http_req *req, const char *path,
		  const struct route *r)
{
	enum srv_http_method m = srv_http_req_method(req);
	char msg[160];

	/* RFC 9110 15.6.2: a method no path takes is not implemented (a
	 * method some other path takes gets 405 there). */
	if (m == SRV_HTTP_OTHER) {
		snprintf(msg, sizeof(msg), "caskd does not implement the method %s; it serves "
			 ALLOW_SERVER, srv_http_req_method_str(req));
		srv_http_respond_error(req, 501, "not_implemented", msg);
		return;
	}
	if (!strcmp(path, "*")) {
		/* RFC 9112 3.2.4: the asterisk form is for OPTIONS only */
		if (m != SRV_HTTP_OPTIONS) {
			srv_http_respond_error(req, 400, "bad_request",
					       "the request target * is for OPTIONS only");
			return;
		}
		srv_http_add_header(req, "Allow", ALLOW_SERVER);
		srv_http_respond(req, 204, NULL, NULL, 0);
		return;
	}
	if (!r) {
		srv_http_respond_error(req, 404, "not_found", "no such endpoint");
		return;
	}
	if (r->allow && !srv_api_method_ok(req, r->allow))
		return;
	r->handle(api, req, path);
}

void srv_api_handle(struct srv_http_req *req, void *arg)
{
	struct srv_api *api = arg;
	const char *path = srv_http_req_path(req);
	const struct route *r = route_find(path);
	uint64_t locks = api->db->mutex_locks;
	struct srv_api_tag tag;

	/* req may be answered and gone after route() */
	srv_api_tag(req, r ? r->id : SRV_ROUTE_OTHER, &tag);
	if (srv_api_cluster_gate(api, req) == 0)
		route(api, req, path, r);
	srv_api_locks_since(api, &tag, locks);
}

int srv_api_accept_hold(int nconns, void *arg)
{
	struct srv_api *api = arg;

	/* A worker that is stopping accepts nothing more (its listeners are
	 * gone); its count is still published, for /metrics. */
	if (api->draining) {
		srv_super_set_conns(api->super, api->seat, nconns);
		return 0;
	}
	return srv_super_accept_hold(api->super, api->seat, nconns, srv_mono_ms());
}

/* --- access log ------------------------------------------------------------ */

void srv_api_logged(const struct srv_http_req *req, int status,
		    size_t body_bytes, uint64_t duration_ns, void *arg)
{
	struct srv_api *api = arg;
	char peer[SRV_ADDR_MAX];

	srv_metrics_request(api->stats, route_id(srv_http_req_path(req)),
			    (int)srv_http_req_method(req), status, duration_ns);
	if (api->access_fd < 0)
		return;
	srv_http_req_peer_str(req, peer, sizeof(peer));
	srv_access_write(api->access_fd, &(struct srv_access){
		.peer = peer, .method = srv_http_req_method_str(req),
		.path = srv_http_req_path(req), .status = status, .bytes = body_bytes,
		.duration_ns = duration_ns, .worker = api->seat,
	});
}
