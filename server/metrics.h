/* server/metrics.h — request counters in shared memory, and /metrics.
 *
 * Owns: the server's shared region: one cache-line-aligned block of
 * counters per worker slot (each written only by its worker, with relaxed
 * atomics: no lock, no contention), the worker heartbeats the master
 * watches, and master-wide figures (workers up, restarts). A scrape sums
 * the blocks without locking anything, so it never blocks a request.
 */
#ifndef CASKD_SERVER_METRICS_H
#define CASKD_SERVER_METRICS_H

#include "engine/store.h"

#include <stdalign.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

struct eng_db;

#define SRV_SLOTS ENG_WORKER_SLOTS
#define SRV_METHODS 6      /* GET HEAD PUT POST DELETE other */
#define SRV_NCODES 24
#define SRV_DUR_BUCKETS 14

struct srv_wstats {
	alignas(64) _Atomic int32_t pid;
	_Atomic int32_t ready;           /* serving requests */
	_Atomic uint64_t heartbeat_ms;   /* CLOCK_MONOTONIC, each second */
	_Atomic uint64_t requests[SRV_METHODS][SRV_NCODES];
	_Atomic uint64_t dur_hist[SRV_DUR_BUCKETS];
	_Atomic uint64_t dur_sum_ns;
	_Atomic uint64_t conns;
	_Atomic uint64_t key_busy_retries;
};

struct srv_shared {
	_Atomic uint32_t workers_up;
	_Atomic uint32_t shutting_down;
	_Atomic uint64_t restarts;
	struct srv_wstats w[SRV_SLOTS];
};

/* Master, before fork. 0 or -errno. */
int srv_metrics_create(struct srv_shared **out);
void srv_metrics_destroy(struct srv_shared *m);
/* Resets a slot for a new worker (master, before forking it). */
void srv_metrics_reset_slot(struct srv_shared *m, int slot);

/* Worker: count one response. method is enum srv_http_method. */
void srv_metrics_request(struct srv_wstats *w, int method, int status,
			 uint64_t duration_ns);
static inline void srv_metrics_inc(_Atomic uint64_t *c)
{
	atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) + 1,
			      memory_order_relaxed);
}

/* Worker slot `slot` now has nconns connections: publishes it, and
 * returns how long (ms) the worker should stop accepting because it holds
 * more than its share (the mean over running workers, plus slack). */
int srv_metrics_accept_pause(struct srv_shared *m, int slot, int nconns);

/* Renders Prometheus text format 0.0.4 into a malloc'd buffer. */
int srv_metrics_render(struct srv_shared *m, struct eng_db *db, char **out,
		       size_t *len);

#endif
