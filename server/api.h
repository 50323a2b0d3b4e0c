/* server/api.h — caskd's HTTP API: the router, as the worker sees it.
 *
 * Owns: the route table (server/api.c: a path to its route, the methods
 * it takes, its handler and its metrics label, one table for routing
 * and metrics alike), the body limits, the accept hold and the access
 * log, per ../docs/http-api.md. The layers below, each a file:
 *   api.c             the router (this header)
 *   api_kv.c, api_keys.c, api_batch.c, api_admin.c, api_watch.c,
 *   api_cluster.c     the routes; none calls another (but the cluster's
 *                     use of the watch sink and the snapshot)
 *   api_write.c       the path every write takes: retried while the key
 *                     is busy, answered once durable (and, in a group,
 *                     once a majority has it)
 *   api_wait.c        answers that wait: for a sync, for a majority
 *   api_error.c       engine results as answers: one table
 *   api_query.c       query strings
 *   api_base.c        struct srv_api, the method check, tags, clocks
 * Reads too answer only once durable, in group and always mode, when
 * they show a record no sync has covered yet. Runs on a worker's event
 * loop thread; server/worker.c fills struct srv_api (api_base.h) and
 * hands these functions to the HTTP layer (server/http.h). The cluster
 * gate runs before the routes (api_cluster.h).
 */
#ifndef CASKD_SERVER_API_H
#define CASKD_SERVER_API_H

#include "server/api_base.h"

#include <stddef.h>
#include <stdint.h>

struct srv_http_req;

size_t srv_api_body_limit(struct srv_http_req *req, void *arg);
void srv_api_handle(struct srv_http_req *req, void *arg);
int srv_api_accept_hold(int nconns, void *arg);
void srv_api_logged(const struct srv_http_req *req, int status,
		    size_t body_bytes, uint64_t duration_ns, void *arg);

#endif
