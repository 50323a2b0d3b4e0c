/* server/api.c — routes and handlers of the HTTP API (see api.h).
 *
 * Map: parsing helpers (keys, queries, entity tags) - error mapping -
 * reads - writes (job, retry on a busy key, durability wait) - service
 * endpoints - the router - the access log.
 */
#include "server/api.h"

#include "engine/durable.h"
#include "engine/errors.h"
#include "engine/record.h"
#include "engine/store.h"
#include "server/commit.h"
#include "server/config.h"
#include "server/http.h"
#include "server/log.h"
#include "server/metrics.h"
#include "server/supervise.h"

#include <errno.h>
#include <event2/event.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define KV_PREFIX "/kv/"
#define INCR_PREFIX "/incr/"
#define ALLOW_KV "GET, HEAD, PUT, DELETE"
#define ALLOW_INCR "POST"
#define ALLOW_READ "GET, HEAD"
#define ETAG_MAX 24          /* quotes + 20 digits + NUL */
#define SMALL_BODY_LIMIT (64u << 10) /* bodies of requests that take none */
/* A busy key is retried on the next loop turn this many times (the other
 * write is usually done within microseconds), then every millisecond,
 * and given up (503) after BUSY_GIVE_UP_MS: only a worker that died
 * mid-write and was not reaped yet can hold a key that long. */
#define BUSY_SPIN_TRIES 32
#define BUSY_RETRY_US 1000
#define BUSY_GIVE_UP_MS 10000

/* --- parsing helpers ------------------------------------------------------ */

/* The value of query parameter name, decoded, or 0 if absent. -1: bad. */
static int query_param(const char *q, const char *name, char *out, size_t max)
{
	size_t nl = strlen(name);

	while (q && *q) {
		const char *end = strchr(q, '&');
		size_t len = end ? (size_t)(end - q) : strlen(q);
		if (len > nl && !strncmp(q, name, nl) && q[nl] == '=') {
			long n = srv_http_pct_decode(q + nl + 1, len - nl - 1, out, max - 1);
			if (n < 0)
				return -1;
			out[n] = '\0';
			return 1;
		}
		q = end ? end + 1 : NULL;
	}
	return 0;
}

/* Parses an entity tag: "123", W/"123" or *. 1 for *, 0 for a version in
 * *v, 2 for a weak tag (version in *v), -1 if malformed (including a
 * list, which caskd does not take for If-Match). */
static int parse_etag(const char *s, uint64_t *v)
{
	int weak = !strncmp(s, "W/", 2);
	char *end;

	if (!strcmp(s, "*"))
		return 1;
	if (weak)
		s += 2;
	if (s[0] != '"' || s[1] < '0' || s[1] > '9')
		return -1;
	errno = 0;
	*v = strtoull(s + 1, &end, 10);
	if (errno || end[0] != '"' || end[1] != '\0')
		return -1;
	return weak ? 2 : 0;
}

/* If-None-Match on a read: 1 if it matches version (so 304). A list of
 * tags is allowed here, as RFC 9110 says. -1 if malformed. */
static int none_match(const char *h, uint64_t version)
{
	char tag[64];

	while (*h) {
		size_t n;
		uint64_t v;
		int r;
		while (*h == ' ' || *h == ',')
			h++;
		n = strcspn(h, ",");
		while (n && h[n - 1] == ' ')
			n--;
		if (!n)
			break;
		if (n >= sizeof(tag))
			return -1;
		memcpy(tag, h, n);
		tag[n] = '\0';
		r = parse_etag(tag, &v);
		if (r < 0)
			return -1;
		if (r == 1 || v == version) /* weak comparison: W/ too */
			return 1;
		h += n;
	}
	return 0;
}

static void set_etag(struct srv_http_req *req, uint64_t version)
{
	char etag[ETAG_MAX];
	snprintf(etag, sizeof(etag), "\"%" PRIu64 "\"", version);
	srv_http_add_header(req, "ETag", etag);
}

/* --- errors ------------------------------------------------------------------ */

static void respond_engine_error(struct srv_http_req *req, int rc)
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
				       "the index holds --max-keys keys; delete some or restart with a larger --max-keys");
		return;
	case -ENOSPC:
	case -EDQUOT:
		srv_http_respond_error(req, 507, "disk_full",
				       "no space left for database.bin; nothing was written");
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
		srv_http_respond_error(req, 503, "key_busy",
				       "another write to this key did not finish; retry");
		return;
	case -ENOTRECOVERABLE:
	case -EUCLEAN:
		/* The shared index cannot be trusted after a crash inside a
		 * purge: ask the master to restart everything through
		 * recovery, which rebuilds it from database.bin. */
		kill(getppid(), SIGUSR2);
		srv_http_respond_error(req, 503, "index_lost",
				       "the shared index is being rebuilt from database.bin; retry shortly");
		return;
	case ENG_EPOISONED:
	case -EIO:
		srv_http_respond_error(req, 503, "io_error",
				       "database.bin could not be made durable; the write is not acknowledged and the daemon is restarting");
		return;
	}
	srv_error("unexpected engine error %d: %s", rc, eng_strerror(rc));
	srv_http_respond_error(req, 500, "internal", eng_strerror(rc));
}

/* --- reads ------------------------------------------------------------------- */

static void handle_get(struct srv_api *api, struct srv_http_req *req,
		       const char *key, size_t klen)
{
	const char *inm = srv_http_req_header(req, "If-None-Match");
	struct eng_val v;
	int rc = eng_get(api->db, key, klen, &v);

	if (rc) {
		respond_engine_error(req, rc);
		return;
	}
	set_etag(req, v.version);
	if (inm) {
		int m = none_match(inm, v.version);
		if (m < 0) {
			srv_http_respond_error(req, 400, "bad_header",
					       "If-None-Match must be * or a list of \"<version>\" tags");
			return;
		}
		if (m) {
			srv_http_respond(req, 304, NULL, NULL, 0);
			return;
		}
	}
	/* Straight from the read-only mapping: the bytes of a published
	 * record never change (the log is append-only). */
	srv_http_respond_ref(req, 200, "application/octet-stream", v.data,
			     v.len, NULL, NULL);
}

/* --- writes ------------------------------------------------------------------ */

struct write_job {
	struct srv_api *api;
	struct srv_http_req *req;
	struct event *retry;
	struct eng_op op;
	struct eng_result res;
	uint64_t started_ms;
	int tries;
	char key[ENG_KEY_MAX];
};

static uint64_t now_ms(struct event_base *base)
{
	struct timeval tv;
	event_base_gettimeofday_cached(base, &tv);
	return (uint64_t)tv.tv_sec * 1000 + (uint64_t)tv.tv_usec / 1000;
}

static void job_free(struct write_job *job)
{
	if (job->retry)
		event_free(job->retry);
	free(job);
}

static void on_durable(int rc, void *arg)
{
	struct write_job *job = arg;
	struct srv_http_req *req = job->req;
	char num[24];
	int n;

	if (rc) {
		respond_engine_error(req, rc == -ECANCELED ? -EIO : rc);
		goto out_free;
	}
	set_etag(req, job->res.version);
	switch (job->op.kind) {
	case ENG_OP_PUT:
		srv_http_respond(req, job->res.created ? 201 : 204, NULL, NULL, 0);
		break;
	case ENG_OP_DEL:
		srv_http_respond(req, 204, NULL, NULL, 0);
		break;
	case ENG_OP_INCR:
		n = snprintf(num, sizeof(num), "%" PRId64, job->res.value);
		srv_http_respond(req, 200, "text/plain", num, (size_t)n);
		break;
	}
out_free:
	job_free(job);
}

static void try_write(evutil_socket_t fd, short what, void *arg);

static void retry_later(struct write_job *job)
{
	struct timeval tv = { 0, job->tries < BUSY_SPIN_TRIES ? 0 : BUSY_RETRY_US };

	srv_metrics_inc(&job->api->stats->key_busy_retries);
	if (!job->retry)
		job->retry = evtimer_new(job->api->base, try_write, job);
	if (!job->retry || evtimer_add(job->retry, &tv) < 0) {
		srv_http_respond_error(job->req, 503, "overloaded", "out of memory");
		job_free(job);
	}
}

static void try_write(evutil_socket_t fd, short what, void *arg)
{
	struct write_job *job = arg;
	struct srv_api *api = job->api;
	int rc;

	(void)fd;
	(void)what;
	rc = eng_write(api->db, &job->op, &job->res);
	if (rc == -EAGAIN &&
	    now_ms(api->base) - job->started_ms < BUSY_GIVE_UP_MS) {
		job->tries++;
		retry_later(job);
		return;
	}
	if (rc) {
		respond_engine_error(job->req, rc);
		job_free(job);
		return;
	}
	rc = srv_commit_wait(api->commit, eng_sync_ticket(api->db), on_durable, job);
	if (rc)
		on_durable(rc, job);
}

/* Fills the conditions of op from If-Match / If-None-Match. 0 or -1
 * after responding 400. */
static int write_conditions(struct srv_http_req *req, struct eng_op *op)
{
	const char *im = srv_http_req_header(req, "If-Match");
	const char *inm = srv_http_req_header(req, "If-None-Match");
	int r;

	if (im) {
		r = parse_etag(im, &op->if_match);
		if (r < 0) {
			srv_http_respond_error(req, 400, "bad_header",
					       "If-Match must be * or one \"<version>\" tag");
			return -1;
		}
		op->has_if_match = 1;
		op->if_match_any = r == 1;
		/* RFC 9110 13.1.1: If-Match compares strongly, so a weak tag
		 * never matches; no version is 0, so this always fails. */
		if (r == 2)
			op->if_match = 0;
	}
	if (inm) {
		if (strcmp(inm, "*")) {
			srv_http_respond_error(req, 400, "bad_header",
					       "on writes If-None-Match must be *");
			return -1;
		}
		op->if_none_match_any = 1;
	}
	return 0;
}

static void start_write(struct srv_api *api, struct srv_http_req *req,
			enum eng_op_kind kind, const char *key, size_t klen,
			int64_t by)
{
	struct write_job *job;
	size_t blen;

	if (!(job = calloc(1, sizeof(*job)))) {
		srv_http_respond_error(req, 503, "overloaded", "out of memory");
		return;
	}
	job->api = api;
	job->req = req;
	job->started_ms = now_ms(api->base);
	memcpy(job->key, key, klen);
	job->op.kind = kind;
	job->op.key = job->key;
	job->op.klen = klen;
	job->op.by = by;
	if (kind == ENG_OP_PUT) {
		job->op.val = srv_http_req_body(req, &blen);
		job->op.vlen = blen;
	}
	if (write_conditions(req, &job->op) < 0) {
		job_free(job);
		return;
	}
	try_write(-1, 0, job);
}

/* --- routes -------------------------------------------------------------------- */

static void method_not_allowed(struct srv_http_req *req, const char *allow)
{
	char msg[96];
	snprintf(msg, sizeof(msg), "this path takes %s", allow);
	srv_http_add_header(req, "Allow", allow);
	srv_http_respond_error(req, 405, "method_not_allowed", msg);
}

/* Decodes the key after prefix; responds 400 and returns -1 if bad. */
static long route_key(struct srv_http_req *req, const char *path,
		      size_t prefix, char *key)
{
	long n = srv_http_pct_decode(path + prefix, strlen(path + prefix), key, ENG_KEY_MAX);

	if (n <= 0) {
		srv_http_respond_error(req, 400, "bad_key",
				       "a key is 1 to 1024 bytes after percent-decoding, without NUL or bad escapes");
		return -1;
	}
	return n;
}

static void route_kv(struct srv_api *api, struct srv_http_req *req,
		     const char *path)
{
	char key[ENG_KEY_MAX];
	enum srv_http_method m = srv_http_req_method(req);
	long klen;

	if (m != SRV_HTTP_GET && m != SRV_HTTP_HEAD && m != SRV_HTTP_PUT &&
	    m != SRV_HTTP_DELETE) {
		method_not_allowed(req, ALLOW_KV);
		return;
	}
	if ((klen = route_key(req, path, strlen(KV_PREFIX), key)) < 0)
		return;
	if (m == SRV_HTTP_GET || m == SRV_HTTP_HEAD)
		handle_get(api, req, key, (size_t)klen);
	else
		start_write(api, req, m == SRV_HTTP_PUT ? ENG_OP_PUT : ENG_OP_DEL,
			    key, (size_t)klen, 0);
}

static void route_incr(struct srv_api *api, struct srv_http_req *req,
		       const char *path)
{
	char key[ENG_KEY_MAX], by[32];
	int64_t n = 1;
	long klen;
	int r;

	if (srv_http_req_method(req) != SRV_HTTP_POST) {
		method_not_allowed(req, ALLOW_INCR);
		return;
	}
	if ((klen = route_key(req, path, strlen(INCR_PREFIX), key)) < 0)
		return;
	r = query_param(srv_http_req_query(req), "by", by, sizeof(by));
	if (r < 0 || (r == 1 && eng_parse_i64(by, strlen(by), &n) < 0)) {
		srv_http_respond_error(req, 400, "bad_query",
				       "by must be a signed 64-bit decimal integer");
		return;
	}
	start_write(api, req, ENG_OP_INCR, key, (size_t)klen, n);
}

static void route_healthz(struct srv_api *api, struct srv_http_req *req)
{
	/* Only the daemon stopping counts: a worker replaced by a reload
	 * drains too, but the service goes on. */
	if (srv_super_stopping(api->super)) {
		srv_http_respond_error(req, 503, "shutting_down", "the daemon is stopping");
		return;
	}
	if (eng_sync_poisoned(api->db)) {
		srv_http_respond_error(req, 503, "io_error",
				       "an fdatasync failed; the daemon is restarting");
		return;
	}
	srv_http_respond(req, 200, "text/plain", "ok", 2);
}

static void route_metrics(struct srv_api *api, struct srv_http_req *req)
{
	char *text;
	size_t len;

	if (srv_metrics_render(api->metrics, api->super, api->db, &text, &len) < 0) {
		srv_http_respond_error(req, 503, "overloaded", "out of memory");
		return;
	}
	srv_http_respond(req, 200, "text/plain; version=0.0.4; charset=utf-8", text, len);
	free(text);
}

static int prefixed(const char *path, const char *prefix)
{
	return !strncmp(path, prefix, strlen(prefix));
}

size_t srv_api_body_limit(struct srv_http_req *req, void *arg)
{
	struct srv_api *api = arg;
	const char *path = srv_http_req_path(req);

	if (srv_http_req_method(req) == SRV_HTTP_PUT && prefixed(path, KV_PREFIX)) {
		srv_http_req_limit_error(req, "value_too_large",
					 "the value is larger than --max-value-size");
		return api->cfg->max_value_size;
	}
	return SMALL_BODY_LIMIT;
}

void srv_api_handle(struct srv_http_req *req, void *arg)
{
	struct srv_api *api = arg;
	const char *path = srv_http_req_path(req);
	enum srv_http_method m = srv_http_req_method(req);

	if (prefixed(path, KV_PREFIX))
		route_kv(api, req, path);
	else if (prefixed(path, INCR_PREFIX))
		route_incr(api, req, path);
	else if (!strcmp(path, "/healthz") || !strcmp(path, "/metrics")) {
		if (m != SRV_HTTP_GET && m != SRV_HTTP_HEAD)
			method_not_allowed(req, ALLOW_READ);
		else if (path[1] == 'h')
			route_healthz(api, req);
		else
			route_metrics(api, req);
	} else
		srv_http_respond_error(req, 404, "not_found", "no such endpoint");
}

int srv_api_accept_pause(int nconns, void *arg)
{
	struct srv_api *api = arg;

	/* A worker that is stopping takes no share of new connections. */
	if (api->draining)
		return 0;
	return srv_super_accept_pause(api->super, api->slot, nconns);
}

/* --- access log ------------------------------------------------------------ */

/* The metrics' route label, by path prefix (routes still to come
 * included, so their series exist from the day they do). */
static enum srv_route route_of(const char *path)
{
	if (prefixed(path, KV_PREFIX))
		return SRV_ROUTE_KV;
	if (prefixed(path, INCR_PREFIX))
		return SRV_ROUTE_INCR;
	if (prefixed(path, "/keys"))
		return SRV_ROUTE_KEYS;
	if (prefixed(path, "/batch"))
		return SRV_ROUTE_BATCH;
	if (prefixed(path, "/admin/"))
		return SRV_ROUTE_ADMIN;
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
