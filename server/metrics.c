/* server/metrics.c — counters and the Prometheus text (see metrics.h). */
#include "server/metrics.h"

#include "engine/durable.h"
#include "engine/store.h"
#include "ipc/shm.h"
#include "server/version.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const int codes[SRV_NCODES] = {
	200, 201, 202, 204, 304, 400, 401, 403, 404, 405, 408, 409,
	412, 413, 414, 417, 431, 500, 501, 503, 505, 507, 0, 0,
};
static const char *const methods[SRV_METHODS] = {
	"GET", "HEAD", "PUT", "POST", "DELETE", "OPTIONS", "other",
};
static const char *const routes[SRV_ROUTES] = {
	"kv", "incr", "keys", "batch", "admin", "healthz", "metrics", "watch", "other",
};
static const double dur_bounds[SRV_DUR_BUCKETS] = {
	0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005,
	0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 1e300,
};

int srv_metrics_create(struct srv_metrics **out)
{
	struct timespec now;
	int rc = ipc_shm_create(sizeof(struct srv_metrics), (void **)out);

	if (rc)
		return rc;
	clock_gettime(CLOCK_REALTIME, &now);
	(*out)->start_time = (double)now.tv_sec + (double)now.tv_nsec / 1e9;
	return 0;
}

void srv_metrics_destroy(struct srv_metrics *m)
{
	ipc_shm_destroy(m, sizeof(*m));
}

/* Seqlock writer side (the master is the only writer of seq): odd while
 * the retired totals and the seat disagree. */
static void fold(_Atomic uint64_t *to, _Atomic uint64_t *from)
{
	uint64_t v = atomic_load_explicit(from, memory_order_relaxed);

	atomic_store_explicit(to, atomic_load_explicit(to, memory_order_relaxed) + v,
			      memory_order_relaxed);
	atomic_store_explicit(from, 0, memory_order_relaxed);
}

void srv_metrics_retire_seat(struct srv_metrics *m, int seat)
{
	struct srv_wstats *w = &m->w[seat], *r = &m->retired;
	uint32_t seq = atomic_load_explicit(&m->seq, memory_order_relaxed);
	uint64_t served = 0;

	atomic_store_explicit(&m->seq, seq + 1, memory_order_relaxed);
	atomic_thread_fence(memory_order_release);
	for (int ri = 0; ri < SRV_ROUTES; ri++) {
		for (int i = 0; i < SRV_DUR_BUCKETS; i++) {
			served += atomic_load_explicit(&w->dur_hist[ri][i], memory_order_relaxed);
			fold(&r->dur_hist[ri][i], &w->dur_hist[ri][i]);
		}
		for (int mi = 0; mi < SRV_METHODS; mi++) {
			for (int ci = 0; ci < SRV_NCODES; ci++)
				fold(&r->requests[ri][mi][ci], &w->requests[ri][mi][ci]);
			fold(&r->index_locks[ri][mi], &w->index_locks[ri][mi]);
		}
		fold(&r->dur_sum_ns[ri], &w->dur_sum_ns[ri]);
	}
	fold(&r->key_busy_retries, &w->key_busy_retries);
	fold(&r->http.body_refused, &w->http.body_refused);
	fold(&r->http.conns_refused, &w->http.conns_refused);
	fold(&r->http.send_timeouts, &w->http.send_timeouts);
	/* Gauges: what the worker held is gone with it. */
	atomic_store_explicit(&w->http.body_bytes, 0, memory_order_relaxed);
	atomic_store_explicit(&w->body_memory_limit, 0, memory_order_relaxed);
	fold(&r->watch_events, &w->watch_events);
	fold(&r->watch_dropped, &w->watch_dropped);
	for (int c = 0; c < ENG_LAT_CLASSES; c++)
		for (unsigned i = 0; i < ENG_LAT_BUCKETS; i++)
			fold(&r->lat[c][i], &w->lat[c][i]);
	fold(&r->key_views_loaded, &w->key_views_loaded);
	fold(&r->key_views_built, &w->key_views_built);
	/* a gauge: the dead worker's streams are gone with it */
	atomic_store_explicit(&w->watches_open, 0, memory_order_relaxed);
	atomic_store_explicit(&m->retired_by_seat[seat],
			      atomic_load_explicit(&m->retired_by_seat[seat],
						   memory_order_relaxed) + served,
			      memory_order_relaxed);
	atomic_store_explicit(&m->seq, seq + 2, memory_order_release);
}

void srv_metrics_restarted(struct srv_metrics *m)
{
	atomic_fetch_add_explicit(&m->restarts, 1, memory_order_relaxed);
}

static int code_index(int status)
{
	for (int i = 0; i < SRV_NCODES && codes[i]; i++)
		if (codes[i] == status)
			return i;
	return 17; /* counted as 500: an unlisted code is a bug too */
}

/* The class of engine/pace.h a response counts in, or -1: key reads
 * and writes only (a listing page or a watch is long by nature). */
static int latency_class(enum srv_route route, int method)
{
	if (route == SRV_ROUTE_KV && (method == SRV_HTTP_GET || method == SRV_HTTP_HEAD))
		return ENG_LAT_READ;
	if ((route == SRV_ROUTE_KV && (method == SRV_HTTP_PUT || method == SRV_HTTP_DELETE)) ||
	    ((route == SRV_ROUTE_INCR || route == SRV_ROUTE_BATCH) && method == SRV_HTTP_POST))
		return ENG_LAT_WRITE;
	return -1;
}

void srv_metrics_request(struct srv_wstats *w, enum srv_route route, int method,
			 int status, uint64_t duration_ns)
{
	double sec = (double)duration_ns / 1e9;
	int b = 0, lat_class;

	if (route < 0 || route >= SRV_ROUTES)
		route = SRV_ROUTE_OTHER;
	if (method < 0 || method >= SRV_METHODS)
		method = SRV_METHODS - 1;
	srv_metrics_inc(&w->requests[route][method][code_index(status)]);
	while (b < SRV_DUR_BUCKETS - 1 && sec > dur_bounds[b])
		b++;
	srv_metrics_inc(&w->dur_hist[route][b]);
	lat_class = latency_class(route, method);
	if (lat_class >= 0)
		srv_metrics_inc(&w->lat[lat_class][eng_lat_bucket(duration_ns)]);
	atomic_store_explicit(&w->dur_sum_ns[route],
			      atomic_load_explicit(&w->dur_sum_ns[route], memory_order_relaxed) +
				      duration_ns,
			      memory_order_relaxed);
}

void srv_metrics_locks(struct srv_wstats *w, enum srv_route route, int method,
		       uint64_t n)
{
	if (!n)
		return;
	if (route < 0 || route >= SRV_ROUTES)
		route = SRV_ROUTE_OTHER;
	if (method < 0 || method >= SRV_METHODS)
		method = SRV_METHODS - 1;
	atomic_store_explicit(&w->index_locks[route][method],
			      atomic_load_explicit(&w->index_locks[route][method],
						   memory_order_relaxed) + n,
			      memory_order_relaxed);
}

struct sbuf {
	char *p;
	size_t len, cap;
	int err;
};

static void put(struct sbuf *b, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static void put(struct sbuf *b, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (b->err)
		return;
	for (;;) {
		va_start(ap, fmt);
		n = vsnprintf(b->p + b->len, b->cap - b->len, fmt, ap);
		va_end(ap);
		if (n < 0) {
			b->err = -EINVAL;
			return;
		}
		if ((size_t)n < b->cap - b->len) {
			b->len += (size_t)n;
			return;
		}
		char *np = realloc(b->p, b->cap * 2 + (size_t)n);
		if (!np) {
			b->err = -ENOMEM;
			return;
		}
		b->p = np;
		b->cap = b->cap * 2 + (size_t)n;
	}
}

static void histogram(struct sbuf *b, const char *name, const char *help,
		      const double *bounds, const uint64_t *counts, int n,
		      double sum)
{
	uint64_t cum = 0;

	put(b, "# HELP %s %s\n# TYPE %s histogram\n", name, help, name);
	for (int i = 0; i < n; i++) {
		cum += counts[i];
		if (i == n - 1)
			put(b, "%s_bucket{le=\"+Inf\"} %llu\n", name, (unsigned long long)cum);
		else
			put(b, "%s_bucket{le=\"%g\"} %llu\n", name, bounds[i],
			    (unsigned long long)cum);
	}
	put(b, "%s_sum %.6f\n%s_count %llu\n", name, sum, name, (unsigned long long)cum);
}

void srv_metrics_fmt_double(char *buf, size_t n, double v)
{
	/* 15 digits round-trip most values; 17 always do */
	for (int digits = 15; digits <= 17; digits++) {
		snprintf(buf, n, "%.*g", digits, v);
		if (strtod(buf, NULL) == v)
			return;
	}
}

static void gauge(struct sbuf *b, const char *name, const char *type,
		  const char *help, double v)
{
	char num[32];

	srv_metrics_fmt_double(num, sizeof(num), v);
	put(b, "# HELP %s %s\n# TYPE %s %s\n%s %s\n", name, help, name, type, name, num);
}

/* The request counters summed over the retired totals and every seat,
 * as of one moment between folds. */
struct snapshot {
	uint64_t requests[SRV_ROUTES][SRV_METHODS][SRV_NCODES];
	uint64_t dur[SRV_ROUTES][SRV_DUR_BUCKETS];
	uint64_t dur_sum_ns[SRV_ROUTES];
	uint64_t busy;
	uint64_t body_refused;
	uint64_t conns_refused;
	uint64_t send_timeouts;
	uint64_t watches, watch_events, watch_dropped;
	uint64_t views_loaded, views_built;
	uint64_t locks[SRV_ROUTES][SRV_METHODS];
	uint64_t by_seat[SRV_SEATS];
};

/* A fold takes microseconds; a master killed inside one must not wedge
 * every scrape, so after this many tries the sums are taken as they are. */
#define SNAPSHOT_TRIES 1000

void srv_metrics_key_views(struct srv_wstats *w, uint64_t loaded, uint64_t built)
{
	atomic_store_explicit(&w->key_views_loaded, loaded, memory_order_relaxed);
	atomic_store_explicit(&w->key_views_built, built, memory_order_relaxed);
}

static uint64_t ld(_Atomic uint64_t *c)
{
	return atomic_load_explicit(c, memory_order_relaxed);
}

static void add_block(struct snapshot *sn, struct srv_wstats *w, uint64_t *served)
{
	for (int ri = 0; ri < SRV_ROUTES; ri++) {
		for (int mi = 0; mi < SRV_METHODS; mi++) {
			for (int ci = 0; ci < SRV_NCODES; ci++)
				sn->requests[ri][mi][ci] += ld(&w->requests[ri][mi][ci]);
			sn->locks[ri][mi] += ld(&w->index_locks[ri][mi]);
		}
		for (int i = 0; i < SRV_DUR_BUCKETS; i++) {
			uint64_t n = ld(&w->dur_hist[ri][i]);
			sn->dur[ri][i] += n;
			*served += n;
		}
		sn->dur_sum_ns[ri] += ld(&w->dur_sum_ns[ri]);
	}
	sn->busy += ld(&w->key_busy_retries);
	sn->body_refused += ld(&w->http.body_refused);
	sn->conns_refused += ld(&w->http.conns_refused);
	sn->send_timeouts += ld(&w->http.send_timeouts);
	sn->watches += ld(&w->watches_open);
	sn->watch_events += ld(&w->watch_events);
	sn->watch_dropped += ld(&w->watch_dropped);
	sn->views_loaded += ld(&w->key_views_loaded);
	sn->views_built += ld(&w->key_views_built);
}

static void snapshot(struct srv_metrics *m, struct snapshot *sn)
{
	for (int tries = 0; tries < SNAPSHOT_TRIES; tries++) {
		uint32_t seq = atomic_load_explicit(&m->seq, memory_order_acquire);
		uint64_t retired = 0;

		if (seq & 1)
			continue;
		memset(sn, 0, sizeof(*sn));
		add_block(sn, &m->retired, &retired);
		for (int s = 0; s < SRV_SEATS; s++) {
			sn->by_seat[s] = ld(&m->retired_by_seat[s]);
			add_block(sn, &m->w[s], &sn->by_seat[s]);
		}
		atomic_thread_fence(memory_order_acquire);
		if (atomic_load_explicit(&m->seq, memory_order_relaxed) == seq)
			return;
	}
}

static void add_latency(struct eng_lat_hist *out, struct srv_wstats *w)
{
	for (int c = 0; c < ENG_LAT_CLASSES; c++)
		for (unsigned i = 0; i < ENG_LAT_BUCKETS; i++)
			out->n[c][i] += ld(&w->lat[c][i]);
}

void srv_metrics_latency(struct srv_metrics *m, struct eng_lat_hist *out)
{
	for (int tries = 0; tries < SNAPSHOT_TRIES; tries++) {
		uint32_t seq = atomic_load_explicit(&m->seq, memory_order_acquire);

		if (seq & 1)
			continue;
		memset(out, 0, sizeof(*out));
		add_latency(out, &m->retired);
		for (int s = 0; s < SRV_SEATS; s++)
			add_latency(out, &m->w[s]);
		atomic_thread_fence(memory_order_acquire);
		if (atomic_load_explicit(&m->seq, memory_order_relaxed) == seq)
			return;
	}
}

static void requests(struct sbuf *b, const struct snapshot *sn,
		     const struct srv_super *super)
{
	put(b, "# HELP caskd_requests_total HTTP responses by route, method and status.\n"
	       "# TYPE caskd_requests_total counter\n");
	for (int ri = 0; ri < SRV_ROUTES; ri++)
		for (int mi = 0; mi < SRV_METHODS; mi++)
			for (int ci = 0; ci < SRV_NCODES && codes[ci]; ci++)
				if (sn->requests[ri][mi][ci])
					put(b, "caskd_requests_total{route=\"%s\",method=\"%s\","
					       "code=\"%d\"} %llu\n", routes[ri], methods[mi],
					    codes[ci], (unsigned long long)sn->requests[ri][mi][ci]);
	/* Divided by caskd_requests_total of the same labels: acquisitions
	 * per request. Every route and method that served a request has a
	 * series, 0 included (GET shows 0). */
	put(b, "# HELP caskd_index_mutex_acquisitions_total Index mutex acquisitions made "
	       "for requests, by route and method.\n"
	       "# TYPE caskd_index_mutex_acquisitions_total counter\n");
	for (int ri = 0; ri < SRV_ROUTES; ri++)
		for (int mi = 0; mi < SRV_METHODS; mi++) {
			uint64_t served = 0;
			for (int ci = 0; ci < SRV_NCODES; ci++)
				served += sn->requests[ri][mi][ci];
			if (served)
				put(b, "caskd_index_mutex_acquisitions_total{route=\"%s\","
				       "method=\"%s\"} %llu\n", routes[ri], methods[mi],
				    (unsigned long long)sn->locks[ri][mi]);
		}
	/* By seat, not pid: pids change with every restart and would make a
	 * new series each time. A seat keeps its count across its workers. */
	put(b, "# HELP caskd_worker_requests_total HTTP responses per worker slot.\n"
	       "# TYPE caskd_worker_requests_total counter\n");
	for (int s = 0; s < SRV_SEATS; s++)
		if (sn->by_seat[s] || atomic_load(&super->w[s].pid))
			put(b, "caskd_worker_requests_total{worker=\"%d\"} %llu\n", s,
			    (unsigned long long)sn->by_seat[s]);
}

/* caskd_request_duration_seconds by route; a route no request took is
 * left out (it has no series yet, as Prometheus client libraries do). */
static void durations(struct sbuf *b, const struct snapshot *sn)
{
	const char *name = "caskd_request_duration_seconds";

	put(b, "# HELP %s Time from the first byte of a request to its response, by route.\n"
	       "# TYPE %s histogram\n", name, name);
	for (int ri = 0; ri < SRV_ROUTES; ri++) {
		uint64_t cum = 0;
		for (int i = 0; i < SRV_DUR_BUCKETS; i++)
			cum += sn->dur[ri][i];
		if (!cum)
			continue;
		cum = 0;
		for (int i = 0; i < SRV_DUR_BUCKETS; i++) {
			cum += sn->dur[ri][i];
			if (i == SRV_DUR_BUCKETS - 1)
				put(b, "%s_bucket{route=\"%s\",le=\"+Inf\"} %llu\n", name,
				    routes[ri], (unsigned long long)cum);
			else
				put(b, "%s_bucket{route=\"%s\",le=\"%g\"} %llu\n", name,
				    routes[ri], dur_bounds[i], (unsigned long long)cum);
		}
		put(b, "%s_sum{route=\"%s\"} %.6f\n%s_count{route=\"%s\"} %llu\n", name,
		    routes[ri], (double)sn->dur_sum_ns[ri] / 1e9, name, routes[ri],
		    (unsigned long long)cum);
	}
}

/* Per worker seat, for the seats a worker runs in: the bounds hold per
 * worker, so their use is shown beside each worker's own bound. */
static void per_worker(struct sbuf *b, struct srv_metrics *m, const struct srv_super *super)
{
	put(b, "# HELP caskd_worker_connections Open client connections of a worker "
	       "(see --max-conns).\n# TYPE caskd_worker_connections gauge\n");
	for (int s = 0; s < SRV_SEATS; s++)
		if (atomic_load(&super->w[s].pid))
			put(b, "caskd_worker_connections{worker=\"%d\"} %llu\n", s,
			    (unsigned long long)srv_super_seat_conns(super, s));
	put(b, "# HELP caskd_body_memory_bytes Request body memory a worker has reserved "
	       "now (see --body-memory).\n# TYPE caskd_body_memory_bytes gauge\n");
	for (int s = 0; s < SRV_SEATS; s++)
		if (atomic_load(&super->w[s].pid))
			put(b, "caskd_body_memory_bytes{worker=\"%d\"} %llu\n", s,
			    (unsigned long long)ld(&m->w[s].http.body_bytes));
	put(b, "# HELP caskd_body_memory_limit_bytes The --body-memory a worker runs with.\n"
	       "# TYPE caskd_body_memory_limit_bytes gauge\n");
	for (int s = 0; s < SRV_SEATS; s++)
		if (atomic_load(&super->w[s].pid))
			put(b, "caskd_body_memory_limit_bytes{worker=\"%d\"} %llu\n", s,
			    (unsigned long long)ld(&m->w[s].body_memory_limit));
}

static void build_info(struct sbuf *b, const struct srv_metrics *m)
{
	put(b, "# HELP caskd_build_info The version and source revision running.\n"
	       "# TYPE caskd_build_info gauge\n"
	       "caskd_build_info{version=\"%s\",revision=\"%s\"} 1\n",
	    srv_version, srv_revision);
	put(b, "# HELP process_start_time_seconds When the master started counting "
	       "(its start or last re-exec), in Unix time.\n"
	       "# TYPE process_start_time_seconds gauge\n"
	       "process_start_time_seconds %.3f\n", m->start_time);
}

int srv_metrics_render(struct srv_metrics *m, const struct srv_super *super,
		       struct eng_db *db, char **out, size_t *len)
{
	struct sbuf b = { .cap = 8192 };
	struct snapshot *sn;
	struct eng_stats st;

	if (!(sn = malloc(sizeof(*sn))))
		return -ENOMEM;
	if (!(b.p = malloc(b.cap))) {
		free(sn);
		return -ENOMEM;
	}
	eng_stats(db, &st);
	snapshot(m, sn);

	requests(&b, sn, super);
	durations(&b, sn);
	per_worker(&b, m, super);
	build_info(&b, m);
	gauge(&b, "caskd_keys", "gauge", "Live keys in the index.", (double)st.keys);
	gauge(&b, "caskd_index_capacity", "gauge",
	      "Keys the index table holds now, at most --max-keys (the table grows with the keys).",
	      (double)st.capacity);
	gauge(&b, "caskd_index_capacity_max", "gauge",
	      "Keys the index may ever hold: --max-keys (0: no bound).", (double)st.capacity_max);
	gauge(&b, "caskd_log_bytes", "gauge", "Size of database.bin.", (double)st.log_bytes);
	gauge(&b, "caskd_live_bytes", "gauge", "Bytes of database.bin holding live records.",
	      (double)st.live_bytes);
	gauge(&b, "caskd_fsync_total", "counter", "fdatasync calls on database.bin.",
	      (double)st.fsync_total);
	gauge(&b, "caskd_fsync_errors_total", "counter", "fdatasync calls that failed.",
	      (double)st.fsync_errors);
	histogram(&b, "caskd_fsync_duration_seconds", "Time spent in fdatasync.",
		  eng_fsync_bounds_s, st.fsync_hist, ENG_FSYNC_BUCKETS, (double)st.fsync_ns_total / 1e9);
	histogram(&b, "caskd_writes_per_fsync", "Writes made durable by one fdatasync.",
		  eng_wpf_bounds, st.wpf_hist, ENG_WPF_BUCKETS, (double)st.wpf_sum);
	gauge(&b, "caskd_workers", "gauge", "Worker processes running.",
	      (double)srv_super_workers_up(super));
	gauge(&b, "caskd_worker_restarts_total", "counter",
	      "Workers replaced after dying or hanging.", (double)atomic_load(&m->restarts));
	gauge(&b, "caskd_lock_wait_seconds_total", "counter",
	      "Time spent waiting for the shared index and sync mutexes.",
	      (double)st.lock_wait_ns / 1e9);
	gauge(&b, "caskd_mutex_repairs_total", "counter",
	      "Index mutex recoveries after a holder died.", (double)st.mutex_repairs);
	gauge(&b, "caskd_connections", "gauge", "Open client connections.",
	      (double)srv_super_conns(super));
	gauge(&b, "caskd_key_busy_retries_total", "counter",
	      "Writes that waited for another write to the same key.", (double)sn->busy);
	gauge(&b, "caskd_connections_refused_total", "counter",
	      "Connections answered 503 because their worker held --max-conns.",
	      (double)sn->conns_refused);
	gauge(&b, "caskd_send_timeouts_total", "counter",
	      "Connections closed because their client did not take its responses "
	      "(--send-timeout, --min-rate).", (double)sn->send_timeouts);
	gauge(&b, "caskd_body_memory_refusals_total", "counter",
	      "Requests answered 503 because their body did not fit in --body-memory.",
	      (double)sn->body_refused);
	gauge(&b, "caskd_watches", "gauge", "Open /watch streams, all workers.",
	      (double)sn->watches);
	gauge(&b, "caskd_watch_events_total", "counter",
	      "Change lines sent to /watch streams.", (double)sn->watch_events);
	gauge(&b, "caskd_watch_dropped_total", "counter",
	      "Watchers ended with a too_slow line (behind by --watch-max-lag, or a "
	      "compaction's cut).", (double)sn->watch_dropped);
	put(&b, "# HELP caskd_key_views_total Ordered views of the keys workers made for "
	       "GET /keys: mapped from database.idx's ordered keys, or built by a pass and "
	       "a sort.\n# TYPE caskd_key_views_total counter\n"
	       "caskd_key_views_total{source=\"database.idx\"} %" PRIu64 "\n"
	       "caskd_key_views_total{source=\"built\"} %" PRIu64 "\n",
	    sn->views_loaded, sn->views_built);
	gauge(&b, "caskd_index_slots", "gauge",
	      "Slots of the index table now (it grows and shrinks with the keys).",
	      (double)st.table_slots);
	gauge(&b, "caskd_index_shared_bytes", "gauge",
	      "Shared memory the index uses now (control region and table).",
	      (double)st.shm_bytes);
	gauge(&b, "caskd_compactions_started_total", "counter", "Compactions started.",
	      (double)st.compactions_started);
	gauge(&b, "caskd_compactions_done_total", "counter", "Compactions finished.",
	      (double)st.compactions_done);
	gauge(&b, "caskd_compactions_failed_total", "counter",
	      "Compactions that failed (database.bin went on as before).",
	      (double)st.compactions_failed);
	gauge(&b, "caskd_compaction_seconds_total", "counter",
	      "Time compactions took, in all.", (double)st.compact_ns_total / 1e9);
	gauge(&b, "caskd_compaction_reclaimed_bytes_total", "counter",
	      "Bytes of database.bin compactions gave back.", (double)st.reclaimed_bytes);
	gauge(&b, "caskd_version_lease", "gauge",
	      "No version above this is handed out before a sync renews it.",
	      (double)st.version_lease);
	gauge(&b, "caskd_write_errors_poisoned", "gauge",
	      "1 after an fdatasync failed: writes refused until restart.", (double)st.poisoned);
	free(sn);
	if (b.err) {
		free(b.p);
		return b.err;
	}
	*out = b.p;
	*len = b.len;
	return 0;
}
