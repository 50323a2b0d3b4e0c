/* server/api.h — caskd's HTTP API: routes and handlers.
 *
 * Owns: mapping requests to engine calls and engine results to status
 * codes, headers and JSON errors, per ../docs/http-api.md. Writes answer
 * only once durable (through server/commit), and so do reads, in group
 * and always mode, of records no sync has covered yet; a write to a key
 * that another write holds is retried from the event loop (never by
 * sleeping), and so are listings, a bounded slice of the table per loop
 * turn. Runs on a worker's event loop thread. The routes live in
 * api_kv.c, api_keys.c, api_batch.c, api_admin.c and api_watch.c.
 */
#ifndef CASKD_SERVER_API_H
#define CASKD_SERVER_API_H

#include <stddef.h>
#include <stdint.h>

struct event_base;
struct eng_db;
struct srv_commit;
struct srv_config;
struct srv_http_req;
struct srv_metrics;
struct srv_super;
struct srv_token;
struct srv_watch_hub;
struct srv_cl_shm;
struct srv_cl_waits;
struct srv_wstats;

struct srv_api {
	struct event_base *base;
	struct eng_db *db;
	struct srv_commit *commit;
	struct srv_super *super;
	struct srv_metrics *metrics;
	struct srv_wstats *stats;
	const struct srv_config *cfg;
	int slot;
	int draining;      /* this worker is stopping */
	int access_fd;     /* -1: no access log */
	const struct srv_token *admin_token; /* NULL: admin answers loopback peers only */
	/* The store cannot be trusted (a repair failed): the worker decides
	 * how to escalate (the master restarts through recovery). */
	void (*escalate)(int rc, void *arg);
	void *escalate_arg;
	/* Listings waiting to take their page (api_keys.c); made on first use. */
	struct srv_list_queue *lists;
	struct srv_watch_hub *watch; /* NULL until the first watch (api_watch.c) */
	/* Cluster mode: the member's shared record, and the answers this
	 * worker holds for a majority (api_cluster.c); NULL alone. */
	struct srv_cl_shm *cl;
	struct srv_cl_waits *cl_waits;
};

size_t srv_api_body_limit(struct srv_http_req *req, void *arg);
void srv_api_handle(struct srv_http_req *req, void *arg);
int srv_api_accept_hold(int nconns, void *arg);
void srv_api_logged(const struct srv_http_req *req, int status,
		    size_t body_bytes, uint64_t duration_ns, void *arg);
/* The worker is stopping: every watch ends cleanly (a last progress
 * line, then the end of the stream) and the watch thread stops. */
void srv_api_watch_shutdown(struct srv_api *api);
/* Cluster mode: the worker's waiters (start before serving; stop answers
 * every held request 503, as after a failover). 0 or -errno. */
int srv_api_cluster_start(struct srv_api *api);
void srv_api_cluster_stop(struct srv_api *api);

#endif
