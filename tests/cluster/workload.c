/* tests/cluster/workload.c — the cluster drills' client: a history
 * recorder (run) and a member dumper (dump).
 *
 *   cluster_workload run --url http://IP:PORT --out HISTORY [--threads N]
 *       [--keys K] [--counters C] [--duration S] [--timeout-ms MS]
 *       [--seed N] [--batch-pct 0..5]
 *   cluster_workload dump --url http://IP:PORT --out DUMP [--tries N]
 *
 * run: N threads, each a loop of random operations on K register keys
 * (r0..) and C counter keys (c0..) until --duration seconds pass or
 * SIGTERM/SIGINT: PUT with a value no other operation writes, GET, CAS
 * (PUT with If-Match: the version this thread last saw for the key),
 * POST /incr/cN?by=1, and POST /batch writing two register keys. Every
 * operation is two lines of the history (format in checker.h): its
 * invocation before the request is sent and its completion after the
 * answer, each with CLOCK_MONOTONIC ns. Outcomes:
 *   ok    2xx (and 404 for GET, 412 for CAS: a definite answer)
 *   fail  never applied: connect failed, 307, 503 not_primary, other 4xx
 *   info  indeterminate: timeout, connection cut, 5xx but not_primary
 *   stale a GET answered by a replica (X-Caskd-Role: replica), which
 *         CLUSTER.md allows to be stale: not held to linearizability
 *
 * dump: GET /keys (all pages), then GET of each key with its ETag: lines
 * "K <key> <version> <value>" (percent-encoded). A key listed but gone
 * by the time it is read is left out (the drill dumps a quiet group).
 * Exits 0 on a complete dump, 1 otherwise.
 */
#include "tests/cluster/checker.h"
#include "tests/cluster/chttp.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define WL_MAX_THREADS 64
#define WL_MAX_KEYS 64
/* A request that takes longer than this is indeterminate. */
#define WL_DEFAULT_TIMEOUT_MS 3000
/* Share of operations, out of 100. */
#define WL_PCT_COUNTER 15
#define WL_PCT_BATCH 5 /* --batch-pct: 0 leaves batches out */
#define WL_PCT_PUT 35
#define WL_PCT_GET 35
/* Pause after an operation that failed or is indeterminate: 20..40 ms,
 * small beside a failover, large beside HAProxy's instant 503s. */
#define WL_BACKOFF_US 20000

struct wl_opts {
	char host[64];
	int port;
	const char *out;
	int threads, keys, counters, duration_s, timeout_ms, batch_pct;
	unsigned seed;
};

static volatile sig_atomic_t stop_flag;
static FILE *hist;
static pthread_mutex_t id_lock = PTHREAD_MUTEX_INITIALIZER;
static long next_id;

static void on_stop(int sig)
{
	stop_flag = 1;
}

static long new_id(void)
{
	long id;

	pthread_mutex_lock(&id_lock);
	id = ++next_id;
	pthread_mutex_unlock(&id_lock);
	return id;
}

struct wl_thread {
	const struct wl_opts *o;
	int idx;
	unsigned rng;
	long seq;
	uint64_t seen[WL_MAX_KEYS]; /* last version seen per register key */
};

static unsigned rnd(struct wl_thread *t, unsigned n)
{
	return (unsigned)rand_r(&t->rng) % n;
}

/* The completion outcome of a response, as the header comment says. */
static const char *outcome(const struct chttp_resp *r, int definite_status)
{
	if (r->fate == CHTTP_NOT_SENT)
		return "fail";
	if (r->fate != CHTTP_DONE)
		return "info";
	if (r->status == 200 && strcmp(r->role, "replica") == 0)
		return "stale";
	if ((r->status >= 200 && r->status < 300) || r->status == definite_status)
		return "ok";
	if (r->status == 307 || strcmp(r->error_code, "not_primary") == 0)
		return "fail";
	if (r->status >= 500 || r->status == 0)
		return "info";
	return "fail";
}

/* Records the completion; returns 1 when the outcome was "ok". */
static int complete(long id, const struct chttp_resp *r, const char *oc,
		    int with_body)
{
	char ver[24] = "-", *val = NULL;
	int64_t now = chttp_now_ns();

	if (r->has_etag)
		snprintf(ver, sizeof(ver), "%" PRIu64, r->etag);
	if (with_body && r->fate == CHTTP_DONE && r->status / 100 == 2)
		val = ckc_encode(r->body, r->body_len);
	fprintf(hist, "C %ld %" PRId64 " %s %d %s %s\n", id, now, oc,
		r->fate == CHTTP_DONE ? r->status : 0, ver, val ? val : "-");
	free(val);
	return strcmp(oc, "ok") == 0;
}

static void invoke(long id, int thread, const char *op, const char *key,
		   const char *a1, const char *a2)
{
	fprintf(hist, "I %ld %d %" PRId64 " %s %s %s %s\n", id, thread,
		chttp_now_ns(), op, key, a1, a2);
}

static int op_put(struct wl_thread *t, int k, int cas)
{
	char path[64], key[16], val[48], ver[24] = "-", hdr[64] = "";
	struct chttp_resp r;
	long id = new_id();
	int ok;

	snprintf(key, sizeof(key), "r%d", k);
	snprintf(path, sizeof(path), "/kv/%s", key);
	snprintf(val, sizeof(val), "w%d-%ld", t->idx, ++t->seq);
	if (cas) {
		snprintf(ver, sizeof(ver), "%" PRIu64, t->seen[k]);
		snprintf(hdr, sizeof(hdr), "If-Match: \"%s\"\r\n", ver);
	}
	invoke(id, t->idx, cas ? "cas" : "put", key, val, ver);
	chttp_request(t->o->host, t->o->port, "PUT", path, hdr, val,
		      strlen(val), t->o->timeout_ms, &r);
	ok = complete(id, &r, outcome(&r, cas ? 412 : 0), 0);
	if (r.fate == CHTTP_DONE && r.status / 100 == 2 && r.has_etag)
		t->seen[k] = r.etag;
	chttp_resp_free(&r);
	return ok;
}

static int op_get(struct wl_thread *t, int k)
{
	char path[64], key[16];
	struct chttp_resp r;
	long id = new_id();
	int ok;

	snprintf(key, sizeof(key), "r%d", k);
	snprintf(path, sizeof(path), "/kv/%s", key);
	invoke(id, t->idx, "get", key, "-", "-");
	chttp_request(t->o->host, t->o->port, "GET", path, NULL, NULL, 0,
		      t->o->timeout_ms, &r);
	ok = complete(id, &r, outcome(&r, 404), 1);
	if (r.fate == CHTTP_DONE && r.status == 200 && r.has_etag)
		t->seen[k] = r.etag;
	chttp_resp_free(&r);
	return ok;
}

static int op_incr(struct wl_thread *t, int c)
{
	char path[64], key[16];
	struct chttp_resp r;
	long id = new_id();
	int ok;

	snprintf(key, sizeof(key), "c%d", c);
	snprintf(path, sizeof(path), "/incr/%s?by=1", key);
	invoke(id, t->idx, "incr", key, "1", "-");
	chttp_request(t->o->host, t->o->port, "POST", path, NULL, "", 0,
		      t->o->timeout_ms, &r);
	ok = complete(id, &r, outcome(&r, 0), 1);
	chttp_resp_free(&r);
	return ok;
}

static int op_batch(struct wl_thread *t)
{
	int a = (int)rnd(t, (unsigned)t->o->keys), b;
	char keys[32], vals[100], body[160];
	struct chttp_resp r;
	long id = new_id(), s = ++t->seq;
	int ok;

	if (t->o->keys < 2)
		return 1;
	do
		b = (int)rnd(t, (unsigned)t->o->keys);
	while (b == a);
	snprintf(keys, sizeof(keys), "r%d,r%d", a, b);
	snprintf(vals, sizeof(vals), "b%d-%ld-0,b%d-%ld-1", t->idx, s, t->idx, s);
	snprintf(body, sizeof(body), "put r%d b%d-%ld-0\nput r%d b%d-%ld-1\n",
		 a, t->idx, s, b, t->idx, s);
	invoke(id, t->idx, "batch", keys, vals, "-");
	chttp_request(t->o->host, t->o->port, "POST", "/batch", NULL, body,
		      strlen(body), t->o->timeout_ms, &r);
	ok = complete(id, &r, outcome(&r, 0), 0);
	chttp_resp_free(&r);
	return ok;
}

static void *client_thread(void *arg)
{
	struct wl_thread *t = arg;
	int64_t end = chttp_now_ns() + (int64_t)t->o->duration_s * 1000000000LL;

	while (!stop_flag && chttp_now_ns() < end) {
		unsigned dice = rnd(t, 100);
		int k = (int)rnd(t, (unsigned)t->o->keys), ok;

		if (t->o->counters > 0 && dice < WL_PCT_COUNTER)
			ok = op_incr(t, (int)rnd(t, (unsigned)t->o->counters));
		else if (dice < WL_PCT_COUNTER + WL_PCT_BATCH)
			ok = t->o->batch_pct > 0 && rnd(t, WL_PCT_BATCH) < (unsigned)t->o->batch_pct
			     ? op_batch(t) : op_put(t, k, 0);
		else if (dice < WL_PCT_COUNTER + WL_PCT_BATCH + WL_PCT_PUT)
			ok = op_put(t, k, 0);
		else if (dice < WL_PCT_COUNTER + WL_PCT_BATCH + WL_PCT_PUT + WL_PCT_GET
			 || t->seen[k] == 0)
			ok = op_get(t, k);
		else
			ok = op_put(t, k, 1);
		/* No primary (HAProxy answers at once): don't spin. */
		if (!ok)
			usleep(WL_BACKOFF_US + rnd(t, WL_BACKOFF_US));
	}
	return NULL;
}

static int run(const struct wl_opts *o)
{
	pthread_t th[WL_MAX_THREADS];
	struct wl_thread *ts = calloc((size_t)o->threads, sizeof(*ts));
	struct sigaction sa = { .sa_handler = on_stop };

	if (!ts)
		return 1;
	hist = fopen(o->out, "w");
	if (!hist) {
		fprintf(stderr, "workload: open %s: %s\n", o->out, strerror(errno));
		free(ts);
		return 1;
	}
	setvbuf(hist, NULL, _IOLBF, 0);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	fprintf(hist, "# caskd cluster history: %d threads, %d keys, %d counters\n",
		o->threads, o->keys, o->counters);
	for (int i = 0; i < o->threads; i++) {
		ts[i].o = o;
		ts[i].idx = i;
		ts[i].rng = o->seed * 7919u + (unsigned)i;
		pthread_create(&th[i], NULL, client_thread, &ts[i]);
	}
	for (int i = 0; i < o->threads; i++)
		pthread_join(th[i], NULL);
	fclose(hist);
	free(ts);
	return 0;
}

/* ---- dump ------------------------------------------------------------- */

static int dump_once(const struct wl_opts *o, FILE *out)
{
	struct chttp_resp r;
	char *keys, *line, *save = NULL;
	int bad = 0;

	chttp_request(o->host, o->port, "GET", "/keys?limit=100000", NULL,
		      NULL, 0, o->timeout_ms, &r);
	if (r.fate != CHTTP_DONE || r.status != 200) {
		fprintf(stderr, "dump: GET /keys: fate %d status %d\n", r.fate,
			r.status);
		chttp_resp_free(&r);
		return -1;
	}
	keys = r.body;
	r.body = NULL;
	for (line = strtok_r(keys, "\n", &save); line;
	     line = strtok_r(NULL, "\n", &save)) {
		char path[1200];
		struct chttp_resp g;

		snprintf(path, sizeof(path), "/kv/%s", line);
		chttp_request(o->host, o->port, "GET", path, NULL, NULL, 0,
			      o->timeout_ms, &g);
		if (g.fate == CHTTP_DONE && g.status == 200 && g.has_etag) {
			char *v = ckc_encode(g.body, g.body_len);

			fprintf(out, "K %s %" PRIu64 " %s\n", line, g.etag, v);
			free(v);
		} else if (!(g.fate == CHTTP_DONE && g.status == 404)) {
			fprintf(stderr, "dump: GET %s: fate %d status %d\n",
				path, g.fate, g.status);
			bad = 1;
		}
		chttp_resp_free(&g);
	}
	free(keys);
	return bad ? -1 : 0;
}

static int dump(const struct wl_opts *o, int tries)
{
	for (int i = 0; i < tries; i++) {
		FILE *out = fopen(o->out, "w");

		if (!out) {
			fprintf(stderr, "dump: open %s: %s\n", o->out, strerror(errno));
			return 1;
		}
		if (dump_once(o, out) == 0) {
			fclose(out);
			return 0;
		}
		fclose(out);
		sleep(1);
	}
	return 1;
}

static void usage(void)
{
	fprintf(stderr, "usage: cluster_workload run|dump --url http://IP:PORT "
		"--out FILE [--threads N] [--keys K] [--counters C] "
		"[--duration S] [--timeout-ms MS] [--seed N] [--batch-pct 0..5] "
		"[--tries N]\n");
	exit(2);
}

int main(int argc, char **argv)
{
	struct wl_opts o = { .threads = 4, .keys = 8, .counters = 2,
			     .duration_s = 60, .timeout_ms = WL_DEFAULT_TIMEOUT_MS,
			     .batch_pct = WL_PCT_BATCH,
			     .seed = 1 };
	const char *url = NULL;
	int tries = 10;

	if (argc < 2)
		usage();
	for (int i = 2; i + 1 < argc; i += 2) {
		const char *f = argv[i], *v = argv[i + 1];

		if (!strcmp(f, "--url")) url = v;
		else if (!strcmp(f, "--out")) o.out = v;
		else if (!strcmp(f, "--threads")) o.threads = atoi(v);
		else if (!strcmp(f, "--keys")) o.keys = atoi(v);
		else if (!strcmp(f, "--counters")) o.counters = atoi(v);
		else if (!strcmp(f, "--duration")) o.duration_s = atoi(v);
		else if (!strcmp(f, "--timeout-ms")) o.timeout_ms = atoi(v);
		else if (!strcmp(f, "--seed")) o.seed = (unsigned)atoi(v);
		else if (!strcmp(f, "--tries")) tries = atoi(v);
		else if (!strcmp(f, "--batch-pct")) o.batch_pct = atoi(v);
		else usage();
	}
	if (!url || !o.out || chttp_parse_url(url, o.host, sizeof(o.host), &o.port) < 0
	    || o.threads < 1 || o.threads > WL_MAX_THREADS || o.keys < 1
	    || o.keys > WL_MAX_KEYS || o.counters < 0)
		usage();
	if (!strcmp(argv[1], "run"))
		return run(&o);
	if (!strcmp(argv[1], "dump"))
		return dump(&o, tries);
	usage();
}
