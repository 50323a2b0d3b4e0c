/* server/metrics.h — request counters in shared memory, and /metrics.
 *
 * Owns: the metrics region: one cache-line-aligned block of counters per
 * worker seat (each written only by its worker, with relaxed atomics: no
 * lock, no contention), the totals of workers that are gone, and the
 * master's counters (restarts). A scrape sums the blocks without taking
 * a lock, so it never blocks a request, and no counter it shows ever
 * goes down while the master lives (a re-exec starts from zero, and
 * process_start_time_seconds says so). Gauges of supervision (workers up, connections) are read from
 * server/supervise.h, which owns them; the engine's from eng_stats().
 */
#ifndef CASKD_SERVER_METRICS_H
#define CASKD_SERVER_METRICS_H

#include "engine/pace.h"
#include "server/http.h"
#include "server/supervise.h"

#include <stdalign.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

struct eng_db;

#define SRV_METHODS 7      /* GET HEAD PUT POST DELETE OPTIONS other */
#define SRV_NCODES 24
/* 50 us .. 60 s: a GET from the page cache to a large upload. */
#define SRV_DUR_BUCKETS 20

/* What a request was for, by path (the "route" label). */
enum srv_route {
	SRV_ROUTE_KV,
	SRV_ROUTE_INCR,
	SRV_ROUTE_KEYS,
	SRV_ROUTE_BATCH,
	SRV_ROUTE_ADMIN,
	SRV_ROUTE_HEALTHZ,
	SRV_ROUTE_METRICS,
	SRV_ROUTE_WATCH,
	SRV_ROUTE_OTHER,   /* unknown paths, unparsable requests */
	SRV_ROUTES
};

struct srv_wstats {
	alignas(64) _Atomic uint64_t requests[SRV_ROUTES][SRV_METHODS][SRV_NCODES];
	_Atomic uint64_t dur_hist[SRV_ROUTES][SRV_DUR_BUCKETS];
	_Atomic uint64_t dur_sum_ns[SRV_ROUTES];
	_Atomic uint64_t key_busy_retries;
	/* Index mutex acquisitions made for requests: 0 for a GET, which
	 * reads the table without it. */
	_Atomic uint64_t index_locks[SRV_ROUTES][SRV_METHODS];
	/* The HTTP layer's own counts (server/http.h); its gauges are the
	 * worker's state, zeroed rather than retired when it goes. */
	struct srv_http_counters http;
	_Atomic uint64_t body_memory_limit; /* gauge: its --body-memory */
	/* /watch: streams open now (a gauge the worker keeps), lines of
	 * changes sent, watchers ended as too slow */
	_Atomic uint64_t watches_open;
	_Atomic uint64_t watch_events;
	_Atomic uint64_t watch_dropped;
	/* The same durations as dur_hist, of key reads and writes only, in
	 * the finer buckets of engine/pace.h: what a compaction paces itself
	 * by (a p99 to within 19%, where dur_hist's steps are 2-2.5x). */
	_Atomic uint64_t lat[ENG_LAT_CLASSES][ENG_LAT_BUCKETS];
	/* GET /keys: this worker's ordered views, mapped from database.idx
	 * or built by a sort (engine's eng_list_stats, copied after each
	 * listing by its one writer) */
	_Atomic uint64_t key_views_loaded;
	_Atomic uint64_t key_views_built;
};

/* Counters never go backwards while the master lives (Prometheus reads a
 * decrease as a reset): when a worker is reaped the master folds its
 * block into `retired` and clears it for the next worker of the seat.
 * A scrape sums retired and every seat inside a seqlock, so a fold is
 * never seen half done (counted twice or not at all). */
struct srv_metrics {
	_Atomic uint32_t seq;            /* odd while the master folds a seat */
	double start_time;               /* Unix time, set before fork */
	_Atomic uint64_t restarts;       /* master only */
	struct srv_wstats retired;       /* master only: workers reaped */
	_Atomic uint64_t retired_by_seat[SRV_SEATS]; /* their requests */
	struct srv_wstats w[SRV_SEATS];
};

/* Master, before fork: the region, counting from now (a re-exec starts
 * a new one). 0 or -errno. */
int srv_metrics_create(struct srv_metrics **out);
void srv_metrics_destroy(struct srv_metrics *m);
/* Master, once the worker of seat is reaped: adds its counts to the
 * retired totals and leaves the seat at zero for the next worker. */
void srv_metrics_retire_seat(struct srv_metrics *m, int seat);
/* Master: a worker died unexpectedly and is being replaced. */
void srv_metrics_restarted(struct srv_metrics *m);

/* Worker: count one response. method is enum srv_http_method. */
void srv_metrics_request(struct srv_wstats *w, enum srv_route route, int method,
			 int status, uint64_t duration_ns);
/* Any process: the key read and write latency histograms summed over
 * every worker, gone ones included (counts never go down while the
 * master lives). The job's latency source (server/master_jobs.c). */
void srv_metrics_latency(struct srv_metrics *m, struct eng_lat_hist *out);
/* Worker: n index mutex acquisitions were made for a request. */
void srv_metrics_locks(struct srv_wstats *w, enum srv_route route, int method,
		       uint64_t n);
/* Worker: its ordered views of the keys so far (engine's eng_list_stats). */
void srv_metrics_key_views(struct srv_wstats *w, uint64_t loaded, uint64_t built);
static inline void srv_metrics_inc(_Atomic uint64_t *c)
{
	atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) + 1,
			      memory_order_relaxed);
}

/* Renders Prometheus text format 0.0.4 into a malloc'd buffer (*out,
 * *len). 0 or -ENOMEM. */
/* v in its shortest form that reads back as v (%.15g, %.16g or %.17g):
 * 0.328, never 0.32800000000000001. */
void srv_metrics_fmt_double(char *buf, size_t n, double v);
int srv_metrics_render(struct srv_metrics *m, const struct srv_super *super,
		       struct eng_db *db, char **out, size_t *len);

#endif
