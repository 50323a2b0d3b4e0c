/* server/api_base.h — what every route of the HTTP API stands on.
 *
 * Owns: struct srv_api (a worker's context for its routes, filled by
 * server/worker.c), the metrics tag of a request, the method check
 * (OPTIONS and 405 answered in one place), entity tags, the loop's
 * clock and the busy-key retry timer.
 * Nothing here knows a route: the routes (api_kv.c, api_keys.c,
 * api_batch.c, api_admin.c, api_watch.c) sit above it, the router
 * (api.c) above them. Runs on a worker's event loop thread.
 */
#ifndef CASKD_SERVER_API_BASE_H
#define CASKD_SERVER_API_BASE_H

#include "server/commit.h"

#include <event2/event.h>
#include <stddef.h>
#include <stdint.h>

struct eng_db;
struct srv_cl_shm;
struct srv_cl_waits;
struct srv_config;
struct srv_http_req;
struct srv_list_queue;
struct srv_metrics;
struct srv_super;
struct srv_token;
struct srv_watch_hub;
struct srv_wstats;

struct srv_api {
	struct event_base *base;
	struct eng_db *db;
	struct srv_commit *commit;
	struct srv_super *super;
	struct srv_metrics *metrics;
	struct srv_wstats *stats;
	const struct srv_config *cfg;
	int seat;
	int draining;      /* this worker is stopping */
	int access_fd;     /* -1: no access log */
	const struct srv_token *admin_token; /* NULL: admin answers loopback peers only */
	/* Every engine error a route answers (server/api_error.c) is shown
	 * to the worker, which decides what follows: a store that cannot
	 * be trusted makes it ask the master for a restart through
	 * recovery. NULL: nothing follows. */
	void (*engine_error)(int rc, void *arg);
	void *engine_error_arg;
	/* Single-key writes waiting for this loop turn's pass (api_write.c);
	 * made on first use. */
	struct srv_write_pass *pass;
	/* Listings waiting to take their page (api_keys.c); made on first use. */
	struct srv_list_queue *lists;
	struct srv_watch_hub *watch; /* NULL until the first watch (api_watch.c) */
	/* Cluster mode: the member's shared record, and the answers this
	 * worker holds for a majority (api_wait.c); NULL alone. */
	struct srv_cl_shm *cl;
	struct srv_cl_waits *cl_waits;
	/* A request the cluster gate parked comes back through here (the
	 * router's srv_api_handle, set by the worker): the gate is below
	 * the router and does not call up into it. */
	void (*redispatch)(struct srv_http_req *req, void *arg);
};

/* A busy key (or a store swapping tables) is retried on the next loop
 * turn this many times (the other write is usually done within
 * microseconds), then every millisecond, and given up (503) after
 * SRV_BUSY_GIVE_UP_MS: only a worker that died mid-write and was not
 * reaped yet, or a stuck job, holds writes off that long. */
#define SRV_BUSY_SPIN_TRIES 32
#define SRV_BUSY_RETRY_US 1000
#define SRV_BUSY_GIVE_UP_MS 10000
/* Schedules cb(arg) for the next try of a write that found its key busy
 * (its tries-th), as above: 0, or -ENOMEM (the caller answers with it).
 * *retry is the write's timer, made on first use. */
int srv_api_retry_later(struct srv_api *api, struct event **retry, int tries,
			void (*cb)(evutil_socket_t, short, void *), void *arg);
/* Seconds a client is told to wait after a 503 (Retry-After). */
#define SRV_RETRY_AFTER_S "1"

/* What a request's metrics are filed under, kept past its answer. */
struct srv_api_tag {
	int route;   /* enum srv_route (server/metrics.h) */
	int method;  /* enum srv_http_method */
};
/* The tag of req, on the route (enum srv_route) that took it. */
void srv_api_tag(struct srv_http_req *req, int route, struct srv_api_tag *tag);
/* Counts the index mutex acquisitions made since `before` (a reading
 * of api->db->mutex_locks) for a request (retries run outside the
 * router's own count). */
void srv_api_locks_since(struct srv_api *api, const struct srv_api_tag *tag,
			 uint64_t before);

void srv_api_set_etag(struct srv_http_req *req, uint64_t version);
/* The method check of a path that takes the methods in allow ("GET,
 * HEAD"): 1 if req's is one of them; else 0 after answering, OPTIONS
 * with 204 and any other with 405 method_not_allowed, both with Allow:
 * <allow>, OPTIONS. The only place a 405 is made. */
int srv_api_method_ok(struct srv_http_req *req, const char *allow);
/* The loop's cached wall clock, in ms. */
uint64_t srv_api_now_ms(struct srv_api *api);
/* The version lease runs low: have a sync soon. */
void srv_api_want_sync(struct srv_api *api);

#endif
