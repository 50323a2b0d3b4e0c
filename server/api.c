/* server/api.c — the router of the HTTP API, its error mapping and the
 * helpers its routes share (see api.h; the routes are in api_*.c).
 *
 * Map: helpers - error mapping - service endpoints - the router - the
 * access log.
 */
#include "server/api.h"

#include "engine/durable.h"
#include "engine/errors.h"
#include "engine/store.h"
#include "server/api_int.h"
#include "server/commit.h"
#include "server/config.h"
#include "server/http.h"
#include "server/log.h"
#include "server/metrics.h"
#include "server/pct.h"
#include "server/supervise.h"

#include <assert.h>
#include <errno.h>
#include <event2/event.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define KV_PREFIX "/kv/"
#define INCR_PREFIX "/incr/"
#define ADMIN_PREFIX "/admin/"
#define ALLOW_READ "GET, HEAD"
#define ALLOW_BATCH "POST"
#define ALLOW_WATCH "GET"
/* What OPTIONS * answers: every method some path takes. */
#define ALLOW_SERVER "GET, HEAD, PUT, POST, DELETE, OPTIONS"
#define ETAG_MAX 24          /* quotes + 20 digits + NUL */
#define SMALL_BODY_LIMIT (64u << 10) /* bodies of requests that take none */

/* --- helpers ------------------------------------------------------------------ */

void srv_api_set_etag(struct srv_http_req *req, uint64_t version)
{
	char etag[ETAG_MAX];
	snprintf(etag, sizeof(etag), "\"%" PRIu64 "\"", version);
	srv_http_add_header(req, "ETag", etag);
}

int srv_api_retry_later(struct srv_api *api, struct event **retry, int tries,
			void (*cb)(evutil_socket_t, short, void *), void *arg)
{
	struct timeval tv = { 0, tries < SRV_BUSY_SPIN_TRIES ? 0 : SRV_BUSY_RETRY_US };

	srv_metrics_inc(&api->stats->key_busy_retries);
	if (!*retry)
		*retry = evtimer_new(api->base, cb, arg);
	return *retry && evtimer_add(*retry, &tv) == 0 ? 0 : -ENOMEM;
}

uint64_t srv_api_mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

uint64_t srv_api_now_ms(struct srv_api *api)
{
	struct timeval tv;
	event_base_gettimeofday_cached(api->base, &tv);
	return (uint64_t)tv.tv_sec * 1000 + (uint64_t)tv.tv_usec / 1000;
}

/* The parameter at *q ("name[=value]"), moving *q past it and its '&':
 * 1, or 0 at the end of q. Empty parameters ("a=1&&b=2") are skipped. */
static int next_param(const char **q, const char **name, size_t *nlen,
		      const char **val, size_t *vlen)
{
	while (*q && **q == '&')
		(*q)++;
	if (!*q || !**q)
		return 0;
	{
		const char *end = strchr(*q, '&');
		size_t len = end ? (size_t)(end - *q) : strlen(*q);
		const char *eq = memchr(*q, '=', len);

		*name = *q;
		*nlen = eq ? (size_t)(eq - *q) : len;
		*val = eq ? eq + 1 : *q + len;
		*vlen = eq ? len - *nlen - 1 : 0;
		*q = end ? end + 1 : NULL;
	}
	return 1;
}

long srv_api_query_param(const char *q, const char *name, char *out, size_t max)
{
	const char *n, *v;
	size_t nl, vl;

	while (next_param(&q, &n, &nl, &v, &vl)) {
		if (nl == strlen(name) && !strncmp(n, name, nl)) {
			long len = srv_pct_decode(v, vl, out, max - 1, 0);

			if (len < 0)
				return -EINVAL;
			out[len] = '\0';
			return len;
		}
	}
	return -ENOENT;
}

int srv_api_query_check(const char *q, const char *const *names, char *bad, size_t n)
{
	const char *pn, *v;
	size_t nl, vl;
	uint32_t seen = 0;

	while (next_param(&q, &pn, &nl, &v, &vl)) {
		int k = 0;

		while (names[k] && (strlen(names[k]) != nl || strncmp(names[k], pn, nl)))
			k++;
		assert(k < 32); /* seen has a bit per name */
		if (!names[k] || seen & 1u << k) {
			snprintf(bad, n, "%.*s", (int)nl, pn);
			return names[k] ? SRV_QUERY_REPEATED : SRV_QUERY_UNKNOWN;
		}
		seen |= 1u << k;
	}
	return SRV_QUERY_OK;
}

int srv_api_query_ok(struct srv_http_req *req, const char *const *names)
{
	char bad[SRV_QUERY_NAME_SHOWN + 1], takes[160], msg[320];
	size_t o = 0;
	int rc = srv_api_query_check(srv_http_req_query(req), names, bad, sizeof(bad));

	if (rc == SRV_QUERY_OK)
		return 0;
	for (int k = 0; names[k] && o < sizeof(takes); k++)
		o += (size_t)snprintf(takes + o, sizeof(takes) - o, "%s%s", k ? ", " : "",
				      names[k]);
	if (rc == SRV_QUERY_REPEATED)
		snprintf(msg, sizeof(msg), "query parameter '%s' is given more than once", bad);
	else if (names[0])
		snprintf(msg, sizeof(msg), "unknown query parameter '%s' (this path takes %s)",
			 bad, takes);
	else
		snprintf(msg, sizeof(msg), "unknown query parameter '%s' (this path takes "
			 "none)", bad);
	srv_http_respond_error(req, 400, "bad_query", msg);
	return -1;
}

void srv_api_want_sync(struct srv_api *api)
{
	srv_commit_kick(api->commit);
}

/* --- errors ------------------------------------------------------------------ */

static void unavailable(struct srv_http_req *req, const char *code,
			const char *msg)
{
	srv_http_add_header(req, "Retry-After", SRV_RETRY_AFTER_S);
	srv_http_respond_error(req, 503, code, msg);
}

void srv_api_error(struct srv_api *api, struct srv_http_req *req, int rc)
{
	switch (rc) {
	case ENG_EPRECOND:
		srv_http_respond_error(req, 412, "precondition_failed",
				       "the key's current version does not match the condition");
		return;
	case -ENOENT:
		srv_http_respond_error(req, 404, "not_found", "no such key");
		return;
	case ENG_EFULL:
		srv_http_respond_error(req, 507, "index_full",
				       "the index holds --max-keys keys (or the largest table caskd "
				       "makes); delete some or raise --max-keys");
		return;
	case -ENOSPC:
	case -EDQUOT:
	case -EFBIG:
		srv_http_respond_error(req, 507, "disk_full",
				       "no space left for database.bin; nothing was written "
				       "(deletes and compaction still work)");
		return;
	case ENG_ENOTINT:
		srv_http_respond_error(req, 409, "not_integer",
				       "the stored value is not a decimal 64-bit integer");
		return;
	case ENG_EOVERFLOW:
		srv_http_respond_error(req, 409, "overflow",
				       "the result does not fit in a signed 64-bit integer");
		return;
	case -E2BIG:
		srv_http_respond_error(req, 413, "value_too_large",
				       "the value is larger than --max-value-size");
		return;
	case -EINVAL:
		srv_http_respond_error(req, 400, "bad_key", "keys are 1 to 1024 bytes");
		return;
	case -EAGAIN:
		unavailable(req, "key_busy", "another write to this key did not finish; retry");
		return;
	case -ENOMEM:
		unavailable(req, "overloaded", "out of memory");
		return;
	case -ENOTRECOVERABLE:
	case -EUCLEAN:
		if (api->escalate)
			api->escalate(rc, api->escalate_arg);
		unavailable(req, "index_lost",
			    "the shared index is being rebuilt from database.bin; retry shortly");
		return;
	case -ETIMEDOUT:
	case -ENOTCONN:
		unavailable(req, "unavailable",
			    "a majority of the group did not confirm this in time; a write "
			    "may still take effect later");
		return;
	case ENG_EPOISONED:
	case -EIO:
	case -ECANCELED:
		unavailable(req, "io_error",
			    "database.bin could not be made durable; the write is not "
			    "acknowledged (its outcome is unknown) and the daemon is restarting");
		return;
	}
	srv_error("unexpected engine error %d: %s", rc, eng_strerror(rc));
	srv_http_respond_error(req, 500, "internal", eng_strerror(rc));
}

/* --- service endpoints ------------------------------------------------------ */

/* Is method one of the comma-separated tokens of allow? */
static int allows(const char *allow, const char *method)
{
	size_t n = strlen(method);

	while (*allow) {
		size_t len = strcspn(allow, ",");

		if (len == n && !strncmp(allow, method, n))
			return 1;
		allow += len;
		allow += strspn(allow, ", ");
	}
	return 0;
}

int srv_api_method_ok(struct srv_http_req *req, const char *allow)
{
	const char *method = srv_http_req_method_str(req);
	char all[64], msg[160];

	if (srv_http_req_method(req) != SRV_HTTP_OPTIONS && allows(allow, method))
		return 1;
	snprintf(all, sizeof(all), "%s, OPTIONS", allow);
	srv_http_add_header(req, "Allow", all);
	if (srv_http_req_method(req) == SRV_HTTP_OPTIONS) {
		srv_http_respond(req, 204, NULL, NULL, 0);
		return 0;
	}
	snprintf(msg, sizeof(msg), "this path does not take %s; it takes %s", method, all);
	srv_http_respond_error(req, 405, "method_not_allowed", msg);
	return 0;
}

static void route_healthz(struct srv_api *api, struct srv_http_req *req)
{
	/* Only the daemon stopping counts: a worker replaced by a reload
	 * drains too, but the service goes on. */
	if (srv_super_stopping(api->super)) {
		unavailable(req, "shutting_down", "the daemon is stopping");
		return;
	}
	if (eng_sync_poisoned(api->db)) {
		unavailable(req, "io_error", "an fdatasync failed; the daemon is restarting");
		return;
	}
	srv_http_respond(req, 200, "text/plain", "ok", 2);
}

static void route_metrics(struct srv_api *api, struct srv_http_req *req)
{
	char *text;
	size_t len;

	if (srv_metrics_render(api->metrics, api->super, api->db, &text, &len) < 0 ||
	    srv_api_cluster_metrics(api, &text, &len) < 0) {
		unavailable(req, "overloaded", "out of memory");
		return;
	}
	srv_http_respond(req, 200, "text/plain; version=0.0.4; charset=utf-8", text, len);
	free(text);
}

/* --- the router ---------------------------------------------------------------- */

static int prefixed(const char *path, const char *prefix)
{
	return !strncmp(path, prefix, strlen(prefix));
}

static void route(struct srv_api *api, struct srv_http_req *req, const char *path,
		  enum srv_http_method m);

size_t srv_api_body_limit(struct srv_http_req *req, void *arg)
{
	struct srv_api *api = arg;
	const char *path = srv_http_req_path(req);
	enum srv_http_method m = srv_http_req_method(req);

	if (m == SRV_HTTP_PUT && prefixed(path, KV_PREFIX)) {
		srv_http_req_limit_error(req, "value_too_large",
					 "the value is larger than --max-value-size");
		return api->cfg->max_value_size;
	}
	if (m == SRV_HTTP_POST && !strcmp(path, "/batch")) {
		srv_http_req_limit_error(req, "batch_too_large",
					 "the batch is larger than --max-batch-size");
		return api->cfg->max_batch_size;
	}
	return SMALL_BODY_LIMIT;
}

static enum srv_route route_of(const char *path);

void srv_api_locks_since(struct srv_api *api, const struct srv_api_tag *tag,
			 uint64_t before)
{
	srv_metrics_locks(api->stats, tag->route, tag->method,
			  api->db->mutex_locks - before);
}

void srv_api_tag(struct srv_http_req *req, struct srv_api_tag *tag)
{
	tag->route = route_of(srv_http_req_path(req));
	tag->method = (int)srv_http_req_method(req);
}

void srv_api_handle(struct srv_http_req *req, void *arg)
{
	struct srv_api *api = arg;
	const char *path = srv_http_req_path(req);
	enum srv_http_method m = srv_http_req_method(req);
	uint64_t locks = api->db->mutex_locks;
	struct srv_api_tag tag;

	srv_api_tag(req, &tag); /* req may be answered and gone after route() */
	if (srv_api_cluster_gate(api, req) == 0)
		route(api, req, path, m);
	srv_api_locks_since(api, &tag, locks);
}

static void route(struct srv_api *api, struct srv_http_req *req, const char *path,
		  enum srv_http_method m)
{
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
	if (prefixed(path, KV_PREFIX)) {
		srv_api_kv(api, req, path);
	} else if (prefixed(path, INCR_PREFIX)) {
		srv_api_incr(api, req, path);
	} else if (!strcmp(path, "/keys")) {
		if (srv_api_method_ok(req, ALLOW_READ))
			srv_api_keys(api, req);
	} else if (!strcmp(path, "/batch")) {
		if (srv_api_method_ok(req, ALLOW_BATCH))
			srv_api_batch(api, req);
	} else if (prefixed(path, ADMIN_PREFIX)) {
		srv_api_admin(api, req, path);
	} else if (!strcmp(path, "/watch")) {
		if (srv_api_method_ok(req, ALLOW_WATCH))
			srv_api_watch(api, req);
	} else if (prefixed(path, "/cluster/")) {
		srv_api_cluster(api, req, path);
	} else if (!strcmp(path, "/healthz") || !strcmp(path, "/metrics")) {
		if (!srv_api_method_ok(req, ALLOW_READ))
			return;
		if (path[1] == 'h')
			route_healthz(api, req);
		else
			route_metrics(api, req);
	} else {
		srv_http_respond_error(req, 404, "not_found", "no such endpoint");
	}
}

int srv_api_accept_hold(int nconns, void *arg)
{
	struct srv_api *api = arg;

	/* A worker that is stopping accepts nothing more (its listeners are
	 * gone); its count is still published, for /metrics. */
	if (api->draining) {
		srv_super_set_conns(api->super, api->slot, nconns);
		return 0;
	}
	return srv_super_accept_hold(api->super, api->slot, nconns, srv_api_mono_ms());
}

/* --- access log ------------------------------------------------------------ */

/* The metrics' route label, by path prefix. */
static enum srv_route route_of(const char *path)
{
	if (prefixed(path, KV_PREFIX))
		return SRV_ROUTE_KV;
	if (prefixed(path, INCR_PREFIX))
		return SRV_ROUTE_INCR;
	if (!strcmp(path, "/keys"))
		return SRV_ROUTE_KEYS;
	if (!strcmp(path, "/batch"))
		return SRV_ROUTE_BATCH;
	if (prefixed(path, ADMIN_PREFIX))
		return SRV_ROUTE_ADMIN;
	if (!strcmp(path, "/watch"))
		return SRV_ROUTE_WATCH;
	if (!strcmp(path, "/healthz"))
		return SRV_ROUTE_HEALTHZ;
	if (!strcmp(path, "/metrics"))
		return SRV_ROUTE_METRICS;
	return SRV_ROUTE_OTHER;
}

void srv_api_logged(const struct srv_http_req *req, int status,
		    size_t body_bytes, uint64_t duration_ns, void *arg)
{
	struct srv_api *api = arg;
	char peer[SRV_ADDR_MAX];

	srv_metrics_request(api->stats, route_of(srv_http_req_path(req)),
			    (int)srv_http_req_method(req), status, duration_ns);
	if (api->access_fd < 0)
		return;
	srv_http_req_peer_str(req, peer, sizeof(peer));
	srv_access_write(api->access_fd, &(struct srv_access){
		.peer = peer, .method = srv_http_req_method_str(req),
		.path = srv_http_req_path(req), .status = status, .bytes = body_bytes,
		.duration_ns = duration_ns, .worker = api->slot,
	});
}
