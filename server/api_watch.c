/* server/api_watch.c — GET /watch?prefix=P&since=V[&values=1], and the
 * worker's watchers.
 *
 * A watch is a streamed response (server/http.h) fed by a log reader
 * (engine/logread.h): one ndjson line per change to a key under the
 * prefix, in version order, each once, a batch's lines written together,
 * only what a read may show (durable where reads wait for syncs). The
 * stream pulls: the HTTP layer asks for more whenever the client has
 * taken what was queued, so a watcher holds at most about two stream
 * pieces of output; one that falls further behind in the log than
 * --watch-max-lag, or behind a compaction's cut, gets a last line
 * {"error":"too_slow","version":V} and resumes from V.
 *
 * Owns the worker's hub: the list of its watches, a thread that sleeps
 * on the engine's log futex (writes in any worker wake it; it never
 * touches a watch) and pokes the loop (server/poke.h), and a timer
 * that writes {"progress":V} to watches idle for WATCH_PROGRESS_MS.
 * Everything but the thread runs on the worker's loop thread.
 */
#include "server/api_watch.h"

#include "engine/errors.h"
#include "engine/logread.h"
#include "engine/num.h"
#include "engine/record.h"
#include "server/api_base.h"
#include "server/api_error.h"
#include "server/api_query.h"
#include "server/clock.h"
#include "server/api_wait.h"
#include "server/b64.h"
#include "server/config.h"
#include "server/http.h"
#include "server/log.h"
#include "server/metrics.h"
#include "server/pct.h"
#include "server/poke.h"

#include <errno.h>
#include <event2/event.h>
#include <inttypes.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* Changes read per call of more(): a long run of changes outside the
 * prefix is read a slice per loop turn, never in one go. */
#define WATCH_SCAN_PER_TURN 4096
/* Output written per call, about (a stream piece, server/http.h). */
#define WATCH_OUT_PER_TURN SRV_HTTP_STREAM_LOW_BYTES
/* HTTP-API.md: a progress line at least every 10 s when idle. */
#define WATCH_PROGRESS_MS 5000
#define WATCH_TICK_MS 1000
#define WATCH_LINE_MAX_FIXED 128 /* {"version":..,"op":"put","key":"","value":"","part":..,"parts":..}\n */

struct watch {
	struct srv_watch_hub *hub;
	struct srv_http_req *req;
	struct eng_logread lr;
	char *prefix;
	size_t plen;
	int values;
	int failed;          /* a write to the stream failed */
	size_t out;          /* bytes written in this turn */
	uint64_t last_out_ms;
	char *line;          /* lines not written yet */
	size_t used, cap;
	char *batch;         /* a batch's lines, until its last part */
	size_t bused, bcap;
	unsigned bcount;
	/* A consumer other than a client's watch (replication), or NULL:
	 * it formats the changes and the idle lines itself. */
	const struct srv_watch_sink *sink;
	struct watch *prev, *next;
};

struct srv_watch_hub {
	struct srv_api *api;
	struct watch *head;
	unsigned count;
	struct srv_poke *poke; /* wakes us when any worker writes */
	uint32_t seen;       /* the log futex word at the last poke handled */
};

/* --- lines ------------------------------------------------------------------ */

/* *buf holds at least need bytes. 0 or -ENOMEM. */
static int grow(char **buf, size_t *cap, size_t need)
{
	char *p;

	if (need <= *cap)
		return 0;
	if (!(p = realloc(*buf, need)))
		return -ENOMEM;
	*buf = p;
	*cap = need;
	return 0;
}

static int room(struct watch *w, size_t need)
{
	return grow(&w->line, &w->cap, need);
}

/* Lines gather in w->line and go out as one chunk per turn (or per
 * WATCH_OUT_PER_TURN bytes): one write for many changes. */
static void flush(struct watch *w)
{
	if (!w->used || w->failed)
		return;
	if (srv_http_stream_write(w->req, w->line, w->used))
		w->failed = 1;
	w->out += w->used;
	w->used = 0;
	w->last_out_ms = srv_mono_ms();
}

static void put_line(struct watch *w, const char *s, size_t n)
{
	if (w->failed)
		return;
	if (room(w, w->used + n)) {
		w->failed = 1;
		return;
	}
	memcpy(w->line + w->used, s, n);
	w->used += n;
	if (w->used >= WATCH_OUT_PER_TURN)
		flush(w);
}

/* Formats c's line into buf from off, without its closing "}\n": the
 * length, or 0 when there is no memory. */
static size_t format(struct watch *w, char **buf, size_t *cap, size_t off,
		     const struct eng_change *c)
{
	size_t need = off + WATCH_LINE_MAX_FIXED + srv_pct_encoded_len(c->key, c->klen) +
		      (w->values && !c->del ? srv_b64_len(c->vlen) : 0), o;
	char *p;

	if (grow(buf, cap, need))
		return 0;
	p = *buf + off;
	o = (size_t)snprintf(p, need - off, "{\"version\":%" PRIu64 ",\"op\":\"%s\",\"key\":\"",
			     c->version, c->del ? "del" : "put");
	o += srv_pct_encode(c->key, c->klen, p + o);
	if (w->values && !c->del) {
		memcpy(p + o, "\",\"value\":\"", 11);
		o += 11;
		o += srv_b64_encode((const unsigned char *)c->val, c->vlen, p + o);
	}
	p[o++] = '"';
	return o;
}

/* A batch's lines under the prefix wait in w->batch (each ended by a
 * newline, no closing brace) until its last part is read, then go out
 * numbered among themselves: "part":i,"parts":n, so a client cut off
 * inside a batch knows it and resumes from the version before. */
static void batch_line(struct watch *w, const struct eng_change *c, int match)
{
	size_t n;

	if (match) {
		if (!(n = format(w, &w->batch, &w->bcap, w->bused, c)) ||
		    grow(&w->batch, &w->bcap, w->bused + n + 1)) {
			w->failed = 1;
			return;
		}
		w->bused += n;
		w->batch[w->bused++] = '\n';
		w->bcount++;
	}
	if (c->part + 1 != c->parts)
		return;
	for (size_t at = 0, i = 0; at < w->bused; i++) {
		char tail[48];
		char *nl = memchr(w->batch + at, '\n', w->bused - at);
		int t = snprintf(tail, sizeof(tail), ",\"part\":%zu,\"parts\":%u}\n", i,
				 w->bcount);

		put_line(w, w->batch + at, (size_t)(nl - (w->batch + at)));
		put_line(w, tail, (size_t)t);
		at = (size_t)(nl - w->batch) + 1;
	}
	w->bused = 0;
	w->bcount = 0;
}

static int emit(const struct eng_change *c, void *arg)
{
	struct watch *w = arg;
	int match = c->klen >= w->plen && !memcmp(c->key, w->prefix, w->plen);
	size_t n;

	if (w->sink) {
		if (w->sink->change(c, w->sink->arg, &w->line, &w->used, &w->cap))
			w->failed = 1;
		else if (w->used >= WATCH_OUT_PER_TURN)
			flush(w);
		return w->failed;
	}

	if (c->term_mark)
		return 0; /* a group's bookkeeping, no change of a key */
	if (match)
		atomic_fetch_add_explicit(&w->hub->api->stats->watch_events, 1,
					  memory_order_relaxed);
	if (c->parts) {
		batch_line(w, c, match);
		return w->failed;
	}
	if (!match)
		return 0;
	if (!(n = format(w, &w->line, &w->cap, w->used, c)) || room(w, w->used + n + 2)) {
		w->failed = 1;
		return 1;
	}
	memcpy(w->line + w->used + n, "}\n", 2);
	w->used += n + 2;
	if (w->used >= WATCH_OUT_PER_TURN)
		flush(w);
	return w->failed;
}

static void progress(struct watch *w)
{
	char buf[48];
	int n;

	if (w->sink) {
		if (w->sink->idle(w->sink->arg, w->lr.last, &w->line, &w->used, &w->cap))
			w->failed = 1;
		flush(w);
		return;
	}
	n = snprintf(buf, sizeof(buf), "{\"progress\":%" PRIu64 "}\n", w->lr.last);
	put_line(w, buf, (size_t)n);
	flush(w);
}

/* --- a watch's life ------------------------------------------------------------ */

static void hub_leave(struct watch *w);

static void finish(struct watch *w, int complete)
{
	struct srv_http_req *req = w->req;

	hub_leave(w);
	if (w->sink && w->sink->done)
		w->sink->done(w->sink->arg);
	free(w->prefix);
	free(w->line);
	free(w->batch);
	free(w);
	srv_http_stream_end(req, complete);
}

static void too_slow(struct watch *w)
{
	char buf[64];
	int n = snprintf(buf, sizeof(buf), "{\"error\":\"too_slow\",\"version\":%" PRIu64 "}\n",
			 w->lr.last);

	flush(w);
	if (!w->sink) /* a sink's consumer reconnects from where it is */
		put_line(w, buf, (size_t)n);
	flush(w);
	atomic_fetch_add_explicit(&w->hub->api->stats->watch_dropped, 1, memory_order_relaxed);
	finish(w, !w->failed);
}

/* Bytes of log this watch has still to read. */
static uint64_t lag(struct watch *w)
{
	uint64_t end = eng_db_written_below(w->hub->api->db);

	return w->lr.file_gen == w->hub->api->db->file_gen && end > w->lr.off ?
	       end - w->lr.off : 0;
}

/* Reads and writes what there is, a turn's worth. */
static void pump(struct watch *w)
{
	unsigned scanned = 0;
	uint64_t floor;
	int n;

	w->out = 0;
	if (lag(w) > w->hub->api->cfg->watch_max_lag) {
		too_slow(w);
		return;
	}
	while (w->out < WATCH_OUT_PER_TURN && scanned < WATCH_SCAN_PER_TURN) {
		n = eng_logread_next(&w->lr, WATCH_SCAN_PER_TURN - scanned, emit, w, &floor);
		if (n == ENG_ECOMPACTED) {
			too_slow(w);
			return;
		}
		if (n < 0) {
			srv_error("watch: reading the log: %s", eng_strerror(n));
			finish(w, 0);
			return;
		}
		if (n == 0)
			break;
		scanned += (unsigned)n;
	}
	flush(w);
	if (w->failed) {
		finish(w, 0);
		return;
	}
	/* more to read but nothing queued that would bring more() back */
	if (scanned >= WATCH_SCAN_PER_TURN && !w->out)
		srv_http_stream_kick(w->req);
}

static void more(struct srv_http_req *req, void *arg)
{
	struct watch *w = arg;

	if (!srv_http_req_conn_alive(req)) {
		finish(w, 0);
		return;
	}
	pump(w);
}

/* --- the hub --------------------------------------------------------------- */

static uint32_t log_seq(void *arg)
{
	struct srv_watch_hub *h = arg;

	return eng_log_seq(h->api->db);
}

static void log_wait(void *arg, uint32_t seen, int timeout_ms)
{
	struct srv_watch_hub *h = arg;

	(void)eng_log_wait(h->api->db, seen, timeout_ms);
}

static void on_poke(void *arg)
{
	struct srv_watch_hub *h = arg;
	uint32_t seq;

	seq = eng_log_seq(h->api->db);
	if (seq == h->seen)
		return; /* the thread's timeout: nothing was written */
	h->seen = seq;
	for (struct watch *w = h->head; w; w = w->next)
		srv_http_stream_kick(w->req);
}

static void on_tick(void *arg)
{
	struct srv_watch_hub *h = arg;
	uint64_t now = srv_mono_ms();
	struct watch *w, *next;

	for (w = h->head; w; w = next) {
		next = w->next;
		if (!srv_http_req_conn_alive(w->req)) {
			finish(w, 0);
		} else if (lag(w) > h->api->cfg->watch_max_lag) {
			too_slow(w);
		} else if (now - w->last_out_ms >=
			   (w->sink ? (uint64_t)w->sink->idle_ms : WATCH_PROGRESS_MS)) {
			progress(w);
			if (w->failed)
				finish(w, 0);
		}
	}
}

static const struct srv_poke_ops hub_ops = {
	.seq = log_seq, .wait = log_wait, .on_wake = on_poke, .on_tick = on_tick,
	.tick_ms = WATCH_TICK_MS,
};

static int hub_start(struct srv_api *api)
{
	struct srv_watch_hub *h = calloc(1, sizeof(*h));
	int rc;

	if (!h)
		return -ENOMEM;
	h->api = api;
	h->seen = eng_log_seq(api->db);
	if ((rc = srv_poke_start(api->base, &hub_ops, h, &h->poke))) {
		free(h);
		return rc;
	}
	api->watch = h;
	return 0;
}

static void hub_join(struct watch *w)
{
	struct srv_watch_hub *h = w->hub;

	w->next = h->head;
	if (h->head)
		h->head->prev = w;
	h->head = w;
	if (h->count++ == 0)
		eng_log_waiters_add(h->api->db, 1);
	atomic_fetch_add_explicit(&h->api->stats->watches_open, 1, memory_order_relaxed);
}

static void hub_leave(struct watch *w)
{
	struct srv_watch_hub *h = w->hub;

	if (w->prev)
		w->prev->next = w->next;
	else
		h->head = w->next;
	if (w->next)
		w->next->prev = w->prev;
	if (--h->count == 0)
		eng_log_waiters_add(h->api->db, -1);
	atomic_fetch_sub_explicit(&h->api->stats->watches_open, 1, memory_order_relaxed);
}

void srv_api_watch_shutdown(struct srv_api *api)
{
	struct srv_watch_hub *h = api->watch;
	struct watch *w, *next;

	if (!h)
		return;
	/* a clean end: what was read, then where a reconnect resumes */
	for (w = h->head; w; w = next) {
		next = w->next;
		if (srv_http_req_conn_alive(w->req)) {
			pump(w);
			/* pump may have ended it (too slow, a failed write) */
			for (struct watch *x = h->head; x; x = x->next)
				if (x == w) {
					progress(w);
					finish(w, !w->failed);
					break;
				}
		} else {
			finish(w, 0);
		}
	}
	/* the thread sees stop within a tick (its wait's timeout) */
	srv_poke_stop(h->poke);
	free(h);
	api->watch = NULL;
}

/* --- the route ------------------------------------------------------------- */

/* A query parameter's value is wrong: 400 bad_query, as on /keys. */
static void bad_query(struct srv_http_req *req, const char *msg)
{
	srv_http_respond_error(req, 400, "bad_query", msg);
}

void srv_api_watch(struct srv_api *api, struct srv_http_req *req)
{
	const char *q = srv_http_req_query(req);
	static const char *const params[] = SRV_QUERY_WATCH;
	char prefix[ENG_KEY_MAX + 1], num[24];
	long plen, n;
	uint64_t since = UINT64_MAX, floor = 0;
	struct watch *w;
	int values = 0, rc;

	if (api->draining) {
		srv_http_add_header(req, "Retry-After", SRV_RETRY_AFTER_S);
		srv_http_respond_error(req, 503, "shutting_down", "this worker is stopping");
		return;
	}
	if (srv_api_query_ok(req, params) < 0)
		return;
	plen = srv_api_query_param(q, "prefix", prefix, sizeof(prefix));
	if (plen == -ENOENT)
		plen = 0;
	if (plen < 0) {
		bad_query(req, "prefix: bad percent-encoding, a NUL, or longer than a key");
		return;
	}
	if ((n = srv_api_query_param(q, "since", num, sizeof(num))) != -ENOENT &&
	    (n < 0 || eng_parse_u64(num, (size_t)n, &since) || since == UINT64_MAX)) {
		bad_query(req, "since: not a decimal version");
		return;
	}
	if ((n = srv_api_query_param(q, "values", num, sizeof(num))) != -ENOENT) {
		if (n != 1 || (num[0] != '0' && num[0] != '1')) {
			bad_query(req, "values: 0 or 1");
			return;
		}
		values = num[0] == '1';
	}
	if (api->watch && api->watch->count >= (unsigned)api->cfg->max_watches) {
		srv_http_add_header(req, "Retry-After", SRV_RETRY_AFTER_S);
		srv_http_respond_error(req, 503, "too_many_watches",
				       "this worker serves --max-watches watches already");
		return;
	}
	if (!api->watch && (rc = hub_start(api))) {
		srv_api_error(api, req, rc);
		return;
	}
	if (!(w = calloc(1, sizeof(*w))) || !(w->prefix = malloc((size_t)plen + 1))) {
		free(w);
		srv_api_error(api, req, -ENOMEM);
		return;
	}
	memcpy(w->prefix, prefix, (size_t)plen);
	w->plen = (size_t)plen;
	w->values = values;
	w->hub = api->watch;
	w->req = req;
	w->last_out_ms = srv_mono_ms();
	rc = eng_logread_start(api->db, since, srv_commit_reads_wait(api->commit), &w->lr,
			       &floor);
	if (rc == ENG_ECOMPACTED) {
		char body[256];
		int len = snprintf(body, sizeof(body), "{\"error\":\"compacted\",\"message\":"
				   "\"history before version %" PRIu64 " was compacted away: "
				   "list and read, then watch from the floor\",\"floor\":%" PRIu64 "}",
				   floor, floor);
		free(w->prefix);
		free(w);
		srv_http_respond(req, 410, "application/json", body, (size_t)len);
		return;
	}
	if (rc) {
		free(w->prefix);
		free(w);
		srv_api_error(api, req, rc);
		return;
	}
	rc = srv_http_stream_begin(req, 200, "application/x-ndjson", more, w);
	if (rc) {
		free(w->prefix);
		free(w);
		if (rc < 0)
			srv_api_error(api, req, rc);
		return;
	}
	hub_join(w);
}

int srv_api_watch_sink(struct srv_api *api, struct srv_http_req *req, uint64_t since,
		       const struct srv_watch_sink *sink, const char *content_type)
{
	uint64_t floor = 0;
	struct watch *w;
	int rc;

	if (api->draining)
		return -ESHUTDOWN;
	if (!api->watch && (rc = hub_start(api)))
		return rc;
	if (!(w = calloc(1, sizeof(*w))))
		return -ENOMEM;
	w->sink = sink;
	w->hub = api->watch;
	w->req = req;
	w->last_out_ms = srv_mono_ms();
	/* every change written, durable here or not: the consumer makes it
	 * durable itself, and the sync here runs at the same time */
	rc = eng_logread_start(api->db, since, 0, &w->lr, &floor);
	if (rc) {
		free(w);
		return rc;
	}
	rc = srv_http_stream_begin(req, 200, content_type, more, w);
	if (rc) {
		free(w);
		return rc < 0 ? rc : 0;
	}
	hub_join(w);
	return 0;
}
