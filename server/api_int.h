/* server/api_int.h — what the files of the API share (api.c: routes,
 * errors, the access log; api_kv.c: keys and counters; api_keys.c:
 * listings; api_batch.c: batches; api_admin.c: compaction, jobs,
 * snapshots; api_watch.c: watches). Nothing outside server/api*.c includes it.
 */
#ifndef CASKD_SERVER_API_INT_H
#define CASKD_SERVER_API_INT_H

#include "server/api.h"
#include "server/commit.h"

#include <event2/event.h>
#include <stddef.h>
#include <stdint.h>

struct srv_http_req;

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
 * *retry is the job's timer, made on first use. */
int srv_api_retry_later(struct srv_api *api, struct event **retry, int tries,
			void (*cb)(evutil_socket_t, short, void *), void *arg);
/* Seconds a client is told to wait after a 503 (Retry-After). */
#define SRV_RETRY_AFTER_S "1"

/* What a request's metrics are filed under, kept past its answer. */
struct srv_api_tag {
	int route;   /* enum srv_route */
	int method;  /* enum srv_http_method */
};
void srv_api_tag(struct srv_http_req *req, struct srv_api_tag *tag);
/* Counts the index mutex acquisitions made since `before` (a reading
 * of api->db->mutex_locks) for a request (retries run outside the
 * router's own count). */
void srv_api_locks_since(struct srv_api *api, const struct srv_api_tag *tag,
			 uint64_t before);

/* Maps an engine result to its status and JSON error, and nothing else
 * (escalation is api->escalate's). */
void srv_api_error(struct srv_api *api, struct srv_http_req *req, int rc);
void srv_api_set_etag(struct srv_http_req *req, uint64_t version);
/* The method check of a path that takes the methods in allow ("GET,
 * HEAD"): 1 if req's is one of them; else 0 after answering, OPTIONS
 * with 204 and 405 with 405, both with Allow: <allow>, OPTIONS. */
int srv_api_method_ok(struct srv_http_req *req, const char *allow);
uint64_t srv_api_now_ms(struct srv_api *api);
/* CLOCK_MONOTONIC in ms, the clock of heartbeats (server/supervise.h). */
uint64_t srv_api_mono_ms(void);
/* Value of query parameter name of q, decoded into out (room for max,
 * NUL-terminated): its length, -ENOENT if absent, -EINVAL if bad. */
long srv_api_query_param(const char *q, const char *name, char *out, size_t max);
/* The query parameters a route takes, NULL-terminated (at most 32); a
 * route that takes none passes { NULL }. */
#define SRV_QUERY_KEYS { "prefix", "start_after", "limit", NULL }
#define SRV_QUERY_INCR { "by", NULL }
#define SRV_QUERY_WATCH { "prefix", "since", "values", NULL }
#define SRV_QUERY_NONE { NULL }
enum srv_query_fault { SRV_QUERY_OK = 0, SRV_QUERY_UNKNOWN, SRV_QUERY_REPEATED };
/* A typo (prefx=) or a second value (prefix=a&prefix=b) must not pass
 * for what the user meant. Pure: SRV_QUERY_OK if every parameter of q
 * (NULL: none) is one of names and none comes twice; else the fault,
 * with the parameter's name, as sent, in bad (cut to n). */
int srv_api_query_check(const char *q, const char *const *names, char *bad, size_t n);
/* Bytes of a bad parameter's name an answer quotes. */
#define SRV_QUERY_NAME_SHOWN 64
/* The same for req's query: 0, or -1 after answering 400 bad_query
 * naming the parameter and what the path takes. */
int srv_api_query_ok(struct srv_http_req *req, const char *const *names);
/* An answer that depends on records up to log offset end: 0 if it may
 * go now (durable, or periodic mode), 1 if cb(rc, arg) runs once it
 * may, -errno. */
int srv_api_after_durable(struct srv_api *api, uint64_t end, srv_commit_cb cb,
			  void *arg);
/* A write of version, its pwrite returned: cb(rc, arg) once it is
 * durable here and, in a group, on a majority (else -ETIMEDOUT, or
 * -ENOTCONN when this member stopped being the primary meanwhile). 0
 * (cb will run) or -errno (it will not). */
int srv_api_after_write(struct srv_api *api, uint64_t version, srv_commit_cb cb,
			void *arg);
/* Cluster mode: writes only on the primary, reads only while its lease
 * holds (else 307/503); X-Caskd-Min-Version on a replica. 1 when req was
 * answered (or parked: it comes back through srv_api_handle), 0 to go. */
int srv_api_cluster_gate(struct srv_api *api, struct srv_http_req *req);
void srv_api_cluster(struct srv_api *api, struct srv_http_req *req, const char *path);
/* Appends the cluster's figures to /metrics' text (realloc'd). 0 or -ENOMEM. */
int srv_api_cluster_metrics(struct srv_api *api, char **text, size_t *len);
/* The version lease runs low: have a sync soon. */
void srv_api_want_sync(struct srv_api *api);

void srv_api_kv(struct srv_api *api, struct srv_http_req *req, const char *path);
void srv_api_incr(struct srv_api *api, struct srv_http_req *req, const char *path);
void srv_api_keys(struct srv_api *api, struct srv_http_req *req);
void srv_api_batch(struct srv_api *api, struct srv_http_req *req);
void srv_api_admin(struct srv_api *api, struct srv_http_req *req, const char *path);
void srv_api_watch(struct srv_api *api, struct srv_http_req *req);

/* The log reader's second consumer (replication, api_cluster.c): a watch
 * of every change after `since` (written, durable or not), formatted by
 * the sink, with idle(last) written when nothing went out for idle_ms.
 * Each appends to *buf (of *cap bytes, *used of them used), growing it
 * with realloc: 0 or -ENOMEM. done(arg) runs when the stream ends. */
struct eng_change;
struct srv_watch_sink {
	int (*change)(const struct eng_change *c, void *arg, char **buf, size_t *used,
		      size_t *cap);
	int (*idle)(void *arg, uint64_t last, char **buf, size_t *used, size_t *cap);
	void (*done)(void *arg);
	void *arg;
	int idle_ms;
};
/* 0: streaming (sink->done will run); ENG_ECOMPACTED: history after
 * `since` is gone; -ESHUTDOWN: the worker is stopping; -errno. */
int srv_api_watch_sink(struct srv_api *api, struct srv_http_req *req, uint64_t since,
		       const struct srv_watch_sink *sink, const char *content_type);
/* GET /admin/snapshot's cut, for /cluster/snapshot too. */
void srv_api_snapshot(struct srv_api *api, struct srv_http_req *req);

#endif
