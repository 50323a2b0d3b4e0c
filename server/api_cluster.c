/* server/api_cluster.c — a worker's part in a group (docs/cluster.md):
 * the /cluster/ endpoints and the gate every request passes (writes only
 * on the primary; reads only while its lease holds; a request parked
 * for X-Caskd-Min-Version comes back through api->redispatch). The wait
 * that holds an answer until a majority has what it depends on is below
 * the routes, in api_wait.c.
 *
 * Map: the shared record's questions - the gate - the replication
 * stream (the log reader's second consumer: see api_watch.c's sink) -
 * acks - status - the router of /cluster/ - metrics.
 */
#include "engine/durable.h"
#include "engine/errors.h"
#include "engine/failpoint.h"
#include "engine/num.h"
#include "engine/record.h"
#include "engine/logread.h"
#include "ipc/wake.h"
#include "server/api_cluster.h"

#include "server/api_admin.h"
#include "server/api_base.h"
#include "server/api_error.h"
#include "server/api_query.h"
#include "server/api_wait.h"
#include "server/api_watch.h"
#include "server/clock.h"
#include "server/cluster_state.h"
#include "server/config.h"
#include "server/http.h"
#include "server/json.h"
#include "server/log.h"

#include <errno.h>
#include <event2/event.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

/* A replica that sent nothing for this long is not counted as reachable
 * (it sends an ack at least every heartbeat, 1 s). */
#define REACH_MS 3000
#define STREAM_IDLE_MS 1000
#define MIN_VERSION_POLL_US 10000

/* --- the shared record's questions ------------------------------------------ */

static int is_primary_now(const struct srv_cl_shm *cl)
{
	/* drills: a primary that ignores its lease and newer terms, which
	 * the cluster checker must catch (docs/failpoints.md) */
	if (atomic_load(&cl->role) == SRV_CL_PRIMARY && ENG_FP("cluster.no_fence"))
		return 1;
	return atomic_load(&cl->role) == SRV_CL_PRIMARY && atomic_load(&cl->writable) &&
	       srv_boot_ms() < atomic_load(&cl->lease_until_ms) &&
	       atomic_load(&cl->deposed) <= atomic_load(&cl->term);
}

/* Replicas heard from within REACH_MS, with us: a majority? */
static int majority_reachable(const struct srv_api *api)
{
	const struct srv_cl_shm *cl = api->cl;
	uint32_t nm = atomic_load(&cl->nmembers);
	int self = atomic_load(&cl->self), n = 1;
	uint64_t now = srv_mono_ms();

	for (uint32_t i = 0; i < nm && i < SRV_CL_MEMBERS_MAX; i++)
		if ((int)i != self && now - atomic_load(&cl->members[i].acked_ms) < REACH_MS)
			n++;
	return n > api->cfg->group_size / 2;
}

static int member_index(const struct srv_cl_view *v, const char *node)
{
	for (uint32_t i = 0; i < v->nmembers; i++)
		if (!strcmp(v->node[i], node))
			return (int)i;
	return -1;
}

/* s as a JSON string's body into out (NUL-ended): its length; 0 for "". */
static long json_text(const char *s, char *out, size_t max)
{
	long n = srv_json_escape(s, strlen(s), out, max - 1);

	if (n < 0)
		n = 0;
	out[n] = 0;
	return n;
}

/* --- the gate ------------------------------------------------------------------ */

static int is_write(const char *path, enum srv_http_method m)
{
	if (m != SRV_HTTP_PUT && m != SRV_HTTP_DELETE && m != SRV_HTTP_POST)
		return 0;
	return !strncmp(path, "/kv/", 4) || !strncmp(path, "/incr/", 6) ||
	       !strcmp(path, "/batch");
}

static int is_read(const char *path, enum srv_http_method m)
{
	if (m != SRV_HTTP_GET && m != SRV_HTTP_HEAD)
		return 0;
	return !strncmp(path, "/kv/", 4) || !strcmp(path, "/keys") || !strcmp(path, "/watch");
}

static void not_primary(struct srv_api *api, struct srv_http_req *req)
{
	struct srv_cl_view v;
	char body[SRV_CL_URL_MAX * 6 + 200], loc[SRV_CL_URL_MAX + 2100], esc[SRV_CL_URL_MAX * 6];
	const char *q = srv_http_req_query(req);
	long n;

	srv_cl_read_text(api->cl, &v);
	if (v.primary_url[0] && (v.self < 0 || strcmp(v.primary_url, v.url[v.self])) &&
	    strlen(srv_http_req_path(req)) + (q ? strlen(q) : 0) < 2000) {
		snprintf(loc, sizeof(loc), "%s%s%s%s", v.primary_url, srv_http_req_path(req),
			 q ? "?" : "", q ? q : "");
		srv_http_add_header(req, "Location", loc);
		srv_http_respond_error(req, 307, "not_primary",
				       "this member is not the primary: the request was not "
				       "applied; send it to Location");
		return;
	}
	n = json_text(v.primary_url, esc, sizeof(esc));
	snprintf(body, sizeof(body), "{\"error\":\"not_primary\",\"message\":\"no primary can "
		 "take writes now; the request was not applied\",\"primary\":%s%s%s}",
		 n > 0 ? "\"" : "", n > 0 ? esc : "null", n > 0 ? "\"" : "");
	srv_http_add_header(req, "Retry-After", SRV_RETRY_AFTER_S);
	srv_http_respond(req, 503, "application/json", body, strlen(body));
}

struct min_wait {
	struct srv_api *api;
	struct srv_http_req *req;
	struct event *ev;
	uint64_t version, deadline_ms;
};

static void min_wait_check(evutil_socket_t fd, short what, void *arg);

/* X-Caskd-Min-Version on a replica: 1 when answered or parked, 0 to go. */
static int min_version(struct srv_api *api, struct srv_http_req *req)
{
	const char *h = srv_http_req_header(req, "X-Caskd-Min-Version");
	uint64_t v;
	struct min_wait *w;
	struct timeval tv = { 0, MIN_VERSION_POLL_US };

	if (!h)
		return 0;
	if (eng_parse_u64(h, strlen(h), &v)) {
		srv_http_respond_error(req, 400, "bad_header",
				       "X-Caskd-Min-Version must be a decimal version");
		return 1;
	}
	if (atomic_load(&api->cl->applied) >= v)
		return 0;
	if (!(w = calloc(1, sizeof(*w))) ||
	    !(w->ev = evtimer_new(api->base, min_wait_check, w)) || evtimer_add(w->ev, &tv)) {
		if (w && w->ev)
			event_free(w->ev);
		free(w);
		srv_api_error(api, req, -ENOMEM);
		return 1;
	}
	w->api = api;
	w->req = req;
	w->version = v;
	w->deadline_ms = srv_mono_ms() + (uint64_t)api->cfg->replication_timeout_ms;
	return 1;
}

static void min_wait_check(evutil_socket_t fd, short what, void *arg)
{
	struct min_wait *w = arg;
	struct timeval tv = { 0, MIN_VERSION_POLL_US };

	(void)fd;
	(void)what;
	if (!srv_http_req_conn_alive(w->req)) {
		/* nobody to answer: the request is answered to release it */
		srv_http_respond_error(w->req, 503, "gone", "the client left");
	} else if (atomic_load(&w->api->cl->applied) >= w->version) {
		/* the version is here: the request goes its way again */
		w->api->redispatch(w->req, w->api);
	} else if (srv_mono_ms() >= w->deadline_ms) {
		srv_http_add_header(w->req, "Retry-After", SRV_RETRY_AFTER_S);
		srv_http_respond_error(w->req, 503, "behind",
				       "this replica has not applied X-Caskd-Min-Version yet");
	} else if (evtimer_add(w->ev, &tv) == 0) {
		return;
	} else {
		srv_api_error(w->api, w->req, -ENOMEM);
	}
	event_free(w->ev);
	free(w);
}

int srv_api_cluster_gate(struct srv_api *api, struct srv_http_req *req)
{
	const char *path = srv_http_req_path(req);
	enum srv_http_method m = srv_http_req_method(req);
	uint32_t role;

	if (!api->cl)
		return 0;
	role = atomic_load(&api->cl->role);
	if (is_write(path, m)) {
		if (is_primary_now(api->cl))
			return 0;
		not_primary(api, req);
		return 1;
	}
	if (!is_read(path, m))
		return 0;
	if (role == SRV_CL_PRIMARY) {
		if (is_primary_now(api->cl))
			return 0;
		/* Our lease may have lapsed: another member may be taking
		 * writes we would not show. */
		srv_http_add_header(req, "Retry-After", SRV_RETRY_AFTER_S);
		srv_http_respond_error(req, 503, "lease_expired",
				       "this primary cannot tell that it still leads; retry");
		return 1;
	}
	if (role != SRV_CL_REPLICA) {
		/* a candidate may be a deposed primary, or cut off: it does
		 * not know what it is behind; a member catching up is not
		 * even a copy yet */
		srv_http_add_header(req, "Retry-After", SRV_RETRY_AFTER_S);
		srv_http_add_header(req, "X-Caskd-Role", srv_cl_role_name(role));
		srv_http_respond_error(req, 503, "no_primary",
				       "this member follows no primary now; retry");
		return 1;
	}
	srv_http_add_header(req, "X-Caskd-Role", "replica");
	return min_version(api, req);
}

/* --- the replication stream ------------------------------------------------------- */

/* Frames, little-endian: u8 kind, u8[3] 0, u32 payload length, u64 a,
 * u64 b, payload. 'C': a change, a = the version before it in this
 * stream (a gap shows), payload = its record as database.bin holds it
 * (CRC-checked by the replica). 'H': idle, a = the newest version the
 * stream has read, b = the primary's newest version. */
struct stream {
	struct srv_api *api;
	uint64_t prev;
};

static int frame_room(char **buf, size_t *used, size_t *cap, size_t need)
{
	char *p;
	size_t n = *cap ? *cap : 4096;

	if (*used + need <= *cap)
		return 0;
	while (n < *used + need)
		n *= 2;
	if (!(p = realloc(*buf, n)))
		return -ENOMEM;
	*buf = p;
	*cap = n;
	return 0;
}

static void frame_head(char *p, char kind, uint32_t len, uint64_t a, uint64_t b)
{
	memset(p, 0, SRV_CL_FRAME_HDR);
	p[0] = kind;
	memcpy(p + 4, &len, 4);
	memcpy(p + 8, &a, 8);
	memcpy(p + 16, &b, 8);
}

static int stream_change(const struct eng_change *c, void *arg, char **buf, size_t *used,
			 size_t *cap)
{
	struct stream *s = arg;
	uint64_t rec = c->term_mark ? ENG_REC_TERM_SIZE : eng_rec_size(c->klen, c->del ? 0 : c->vlen);
	char *p;

	if (frame_room(buf, used, cap, SRV_CL_FRAME_HDR + rec))
		return -ENOMEM;
	p = *buf + *used;
	frame_head(p, 'C', (uint32_t)rec, s->prev, 0);
	if (c->term_mark)
		eng_rec_encode_term(p + SRV_CL_FRAME_HDR, c->version);
	else if (c->parts)
		eng_rec_encode_part(p + SRV_CL_FRAME_HDR, c->del ? ENG_REC_DEL : ENG_REC_PUT,
				    c->version, c->key, c->klen, c->val, c->del ? 0 : c->vlen,
				    c->part, c->parts);
	else
		eng_rec_encode(p + SRV_CL_FRAME_HDR, c->del ? ENG_REC_DEL : ENG_REC_PUT,
			       c->version, c->key, c->klen, c->val, c->del ? 0 : c->vlen);
	*used += SRV_CL_FRAME_HDR + rec;
	s->prev = c->version;
	atomic_fetch_add(&s->api->cl->repl_bytes, SRV_CL_FRAME_HDR + rec);
	return 0;
}

static int stream_idle(void *arg, uint64_t last, char **buf, size_t *used, size_t *cap)
{
	struct stream *s = arg;

	if (frame_room(buf, used, cap, SRV_CL_FRAME_HDR))
		return -ENOMEM;
	frame_head(*buf + *used, 'H', 0, last, eng_top_version(s->api->db));
	*used += SRV_CL_FRAME_HDR;
	return 0;
}

static void stream_done(void *arg)
{
	free(arg);
}

/* The query's u64 parameter name: 0, or -1 after answering 400. */
static int query_u64(struct srv_http_req *req, const char *name, uint64_t *out)
{
	char num[24];
	long n = srv_api_query_param(srv_http_req_query(req), name, num, sizeof(num));

	if (n < 0 || eng_parse_u64(num, (size_t)n, out)) {
		char msg[80];
		snprintf(msg, sizeof(msg), "%s: a decimal number is required", name);
		srv_http_respond_error(req, 400, "bad_query", msg);
		return -1;
	}
	return 0;
}

/* The requester's node and term, checked against ours: its index in
 * the members, or -1 after answering. */
static int peer_in_term(struct srv_api *api, struct srv_http_req *req, uint64_t term,
			struct srv_cl_view *v)
{
	struct srv_cl_shm *cl = api->cl;
	char node[SRV_CL_NAME_MAX];
	long n = srv_api_query_param(srv_http_req_query(req), "node", node, sizeof(node));
	uint64_t ours = atomic_load(&cl->term);
	int i;

	srv_cl_read_text(cl, v);
	if (n <= 0 || (i = member_index(v, node)) < 0 || i == v->self) {
		srv_http_respond_error(req, 400, "bad_query", "node: not a member of this group");
		return -1;
	}
	if (term > ours) {
		/* a newer term began without us: stop acting in ours now,
		 * before the agent hears of it from etcd */
		uint64_t d = atomic_load(&cl->deposed);
		while (term > d && !atomic_compare_exchange_weak(&cl->deposed, &d, term))
			;
	}
	if (term != ours || !is_primary_now(cl)) {
		char msg[96];
		snprintf(msg, sizeof(msg), "this member is not the primary of term %" PRIu64, term);
		srv_http_respond_error(req, 409, "not_primary", msg);
		return -1;
	}
	return i;
}

static void add_history(struct srv_http_req *req, const struct srv_cl_view *v)
{
	char hist[SRV_CL_HISTORY_MAX * 44 + 1];

	if (srv_cl_history_format(&v->hist, hist, sizeof(hist)) == 0)
		srv_http_add_header(req, "X-Caskd-History", hist);
}

/* GET /cluster/stream?node=N&term=T&after=V: every change after V (the
 * newest version in N's log, durable there or not), then the changes as
 * they come. Acks come apart, by POST /cluster/ack. */
static void route_stream(struct srv_api *api, struct srv_http_req *req)
{
	static const char *const params[] = { "node", "term", "after", NULL };
	struct srv_cl_view v;
	struct stream *s;
	struct srv_watch_sink *sink;
	uint64_t term, after;
	int i, rc;

	if (srv_api_query_ok(req, params) < 0 || query_u64(req, "term", &term) ||
	    query_u64(req, "after", &after) || (i = peer_in_term(api, req, term, &v)) < 0)
		return;
	add_history(req, &v);
	if (srv_cl_diverged(&v.hist, eng_top_version(api->db), after)) {
		srv_http_respond_error(req, 409, "diverged",
				       "the replica holds writes this primary does not: it "
				       "needs a full copy");
		return;
	}
	if (!(s = calloc(1, sizeof(*s))) || !(sink = calloc(1, sizeof(*sink)))) {
		free(s);
		srv_api_error(api, req, -ENOMEM);
		return;
	}
	s->api = api;
	s->prev = after;
	/* the sink and its state go together: done() frees both */
	*sink = (struct srv_watch_sink){ stream_change, stream_idle, stream_done, s,
					 STREAM_IDLE_MS };
	s = NULL;
	rc = srv_api_watch_sink(api, req, after, sink, "application/octet-stream");
	if (rc == ENG_ECOMPACTED) {
		free(sink->arg);
		free(sink);
		srv_http_respond_error(req, 410, "compacted",
				       "this primary compacted away the history after that "
				       "version: the replica needs a full copy");
	} else if (rc) {
		free(sink->arg);
		free(sink);
		srv_api_error(api, req, rc == -ESHUTDOWN ? -EAGAIN : rc);
	}
}

/* POST /cluster/ack?node=N&term=T&version=V: V is durable on N. */
static void route_ack(struct srv_api *api, struct srv_http_req *req)
{
	static const char *const params[] = { "node", "term", "version", NULL };
	struct srv_cl_view v;
	uint64_t term, version;
	int i;

	if (srv_api_query_ok(req, params) < 0 || query_u64(req, "term", &term) ||
	    query_u64(req, "version", &version) || (i = peer_in_term(api, req, term, &v)) < 0)
		return;
	srv_cl_ack(api->cl, (unsigned)i, version, srv_mono_ms());
	srv_http_respond(req, 204, NULL, NULL, 0);
}

/* --- status --------------------------------------------------------------------- */

static void route_status(struct srv_api *api, struct srv_http_req *req)
{
	struct srv_cl_shm *cl = api->cl;
	struct srv_cl_view v;
	char *body, esc[SRV_CL_URL_MAX * 6];
	size_t cap = 1024 + SRV_CL_MEMBERS_MAX * (SRV_CL_NAME_MAX + SRV_CL_URL_MAX * 6 + 128);
	size_t o = 0;
	uint32_t role = atomic_load(&cl->role);
	int primary = role == SRV_CL_PRIMARY;
	long n;

	srv_cl_read_text(cl, &v);
	if (!(body = malloc(cap))) {
		srv_api_error(api, req, -ENOMEM);
		return;
	}
	n = json_text(v.primary_url, esc, sizeof(esc));
	o += (size_t)snprintf(body + o, cap - o,
		"{\"cluster\":\"%s\",\"node\":\"%s\",\"role\":\"%s\",\"term\":%" PRIu64
		",\"max_term\":%" PRIu64 ",\"primary\":%s%s%s,\"version\":%" PRIu64
		",\"can_write\":%s,\"etcd_ok\":%s,\"replication\":\"%s\",\"members\":[",
		api->cfg->cluster, api->cfg->node, srv_cl_role_name(role),
		atomic_load(&cl->term), atomic_load(&cl->max_term),
		n > 0 ? "\"" : "", n > 0 ? esc : "null", n > 0 ? "\"" : "",
		primary ? eng_top_version(api->db) : atomic_load(&cl->applied),
		is_primary_now(cl) ? "true" : "false",
		srv_mono_ms() - atomic_load(&cl->etcd_ok_ms) < 3000 ? "true" : "false",
		srv_cl_repl_error_name(atomic_load(&cl->repl_error)));
	for (uint32_t i = 0; i < v.nmembers; i++) {
		const char *mrole = (int)i == v.self ? srv_cl_role_name(role) :
				    !strcmp(v.url[i], v.primary_url) ? "primary" : "replica";
		uint64_t ver = (int)i == v.self ? (primary ? eng_top_version(api->db) :
						   atomic_load(&cl->applied)) :
			       primary ? atomic_load(&cl->members[i].acked) : 0;
		n = json_text(v.url[i], esc, sizeof(esc));
		o += (size_t)snprintf(body + o, cap - o,
			"%s{\"node\":\"%s\",\"url\":\"%s\",\"role\":\"%s\",\"version\":",
			i ? "," : "", v.node[i], n > 0 ? esc : "", mrole);
		if ((int)i == v.self || primary)
			o += (size_t)snprintf(body + o, cap - o, "%" PRIu64 "}", ver);
		else
			o += (size_t)snprintf(body + o, cap - o, "null}");
	}
	o += (size_t)snprintf(body + o, cap - o, "]}\n");
	srv_http_respond(req, 200, "application/json", body, o);
	free(body);
}

/* GET /cluster/primary: HAProxy's health check. */
static void route_primary(struct srv_api *api, struct srv_http_req *req)
{
	if (is_primary_now(api->cl) && majority_reachable(api))
		srv_http_respond(req, 200, "text/plain", "primary\n", 8);
	else
		srv_http_respond_error(req, 503, "not_primary",
				       "this member cannot acknowledge writes now");
}

/* GET /cluster/replica: a replica within --max-lag of the primary. */
static void route_replica(struct srv_api *api, struct srv_http_req *req)
{
	struct srv_cl_shm *cl = api->cl;
	uint64_t now = srv_mono_ms();

	if (atomic_load(&cl->role) == SRV_CL_REPLICA &&
	    now - atomic_load(&cl->caught_up_ms) < (uint64_t)api->cfg->max_lag_s * 1000)
		srv_http_respond(req, 200, "text/plain", "replica\n", 8);
	else
		srv_http_respond_error(req, 503, "not_caught_up",
				       "this member is not a replica within --max-lag");
}

static void route_snapshot(struct srv_api *api, struct srv_http_req *req)
{
	struct srv_cl_view v;

	if (!is_primary_now(api->cl)) {
		srv_http_respond_error(req, 409, "not_primary",
				       "full copies come from the primary");
		return;
	}
	srv_cl_read_text(api->cl, &v);
	add_history(req, &v);
	srv_api_snapshot(api, req);
}

/* --- the router ------------------------------------------------------------------- */

void srv_api_cluster(struct srv_api *api, struct srv_http_req *req, const char *path)
{
	static const char *const none[] = SRV_QUERY_NONE;

	if (!api->cl) {
		srv_http_respond_error(req, 404, "not_found",
				       "this caskd is not in a group (--cluster)");
		return;
	}
	if (!strcmp(path, "/cluster/stream")) {
		if (srv_api_method_ok(req, "GET"))
			route_stream(api, req);
		return;
	}
	if (!strcmp(path, "/cluster/ack")) {
		if (srv_api_method_ok(req, "POST"))
			route_ack(api, req);
		return;
	}
	if (srv_api_query_ok(req, none) < 0)
		return;
	if (!strcmp(path, "/cluster/status")) {
		if (srv_api_method_ok(req, "GET, HEAD"))
			route_status(api, req);
	} else if (!strcmp(path, "/cluster/primary")) {
		if (srv_api_method_ok(req, "GET, HEAD"))
			route_primary(api, req);
	} else if (!strcmp(path, "/cluster/replica")) {
		if (srv_api_method_ok(req, "GET, HEAD"))
			route_replica(api, req);
	} else if (!strcmp(path, "/cluster/snapshot")) {
		if (srv_api_method_ok(req, "GET"))
			route_snapshot(api, req);
	} else {
		srv_http_respond_error(req, 404, "not_found", "no such cluster endpoint");
	}
}

/* --- metrics ---------------------------------------------------------------------- */

int srv_api_cluster_metrics(struct srv_api *api, char **text, size_t *len)
{
	struct srv_cl_shm *cl = api->cl;
	uint32_t role;
	uint64_t now = srv_mono_ms(), lag_v = 0, lag_ms = 0, top, applied;
	size_t cap, o;
	char *p;

	if (!cl)
		return 0;
	role = atomic_load(&cl->role);
	applied = atomic_load(&cl->applied);
	if (role == SRV_CL_PRIMARY) {
		uint64_t c = srv_cl_committed(cl, (unsigned)api->cfg->group_size);
		top = eng_top_version(api->db);
		lag_v = c < top ? top - c : 0;
	} else {
		top = atomic_load(&cl->primary_top);
		lag_v = top > applied ? top - applied : 0;
		lag_ms = now - atomic_load(&cl->caught_up_ms);
	}
	cap = *len + 4096;
	if (!(p = realloc(*text, cap)))
		return -ENOMEM;
	*text = p;
	o = *len;
	o += (size_t)snprintf(p + o, cap - o,
		"# HELP caskd_cluster_role The role this member has now (1) in its group.\n"
		"# TYPE caskd_cluster_role gauge\n");
	for (uint32_t r = SRV_CL_CANDIDATE; r <= SRV_CL_CATCHING_UP; r++)
		o += (size_t)snprintf(p + o, cap - o, "caskd_cluster_role{role=\"%s\"} %d\n",
				      srv_cl_role_name(r), r == role);
	o += (size_t)snprintf(p + o, cap - o,
		"# HELP caskd_cluster_term The term this member acts in.\n"
		"# TYPE caskd_cluster_term gauge\n"
		"caskd_cluster_term %" PRIu64 "\n"
		"# HELP caskd_cluster_failovers_total Times this member became the primary.\n"
		"# TYPE caskd_cluster_failovers_total counter\n"
		"caskd_cluster_failovers_total %" PRIu64 "\n"
		"# HELP caskd_cluster_replication_lag_versions Versions not yet on a majority "
		"(primary), or not yet applied here (replica).\n"
		"# TYPE caskd_cluster_replication_lag_versions gauge\n"
		"caskd_cluster_replication_lag_versions %" PRIu64 "\n"
		"# HELP caskd_cluster_replication_lag_seconds Replica: since it last held all "
		"the primary had.\n"
		"# TYPE caskd_cluster_replication_lag_seconds gauge\n"
		"caskd_cluster_replication_lag_seconds %.3f\n"
		"# HELP caskd_cluster_writes_waiting Writes held until a majority has them.\n"
		"# TYPE caskd_cluster_writes_waiting gauge\n"
		"caskd_cluster_writes_waiting %" PRIu64 "\n"
		"# HELP caskd_cluster_replication_bytes_total Bytes of replication sent "
		"(primary) or received (replica), full copies included.\n"
		"# TYPE caskd_cluster_replication_bytes_total counter\n"
		"caskd_cluster_replication_bytes_total %" PRIu64 "\n"
		"# HELP caskd_cluster_replica_acknowledging Replica: 1 while it acknowledges "
		"the primary's writes.\n"
		"# TYPE caskd_cluster_replica_acknowledging gauge\n"
		"caskd_cluster_replica_acknowledging{reason=\"%s\"} %d\n",
		atomic_load(&cl->term), atomic_load(&cl->failovers), lag_v,
		role == SRV_CL_PRIMARY ? 0.0 : (double)lag_ms / 1000.0,
		atomic_load(&cl->waiting), atomic_load(&cl->repl_bytes),
		srv_cl_repl_error_name(atomic_load(&cl->repl_error)),
		role != SRV_CL_PRIMARY && atomic_load(&cl->repl_error) == SRV_CL_REPL_OK &&
		now - atomic_load(&cl->primary_heard_ms) < REACH_MS);
	*len = o < cap ? o : cap - 1;
	return 0;
}
