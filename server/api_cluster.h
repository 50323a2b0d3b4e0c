/* server/api_cluster.h — a worker's part in a group (docs/cluster.md):
 * the /cluster/ endpoints, the gate every request passes (writes only
 * on the primary; reads only while its lease holds) and the group's
 * figures for /metrics (api_cluster.c). The waits for a majority are
 * below the routes, in server/api_wait.h. Called by the router (api.c);
 * runs on a worker's event loop thread.
 */
#ifndef CASKD_SERVER_API_CLUSTER_H
#define CASKD_SERVER_API_CLUSTER_H

#include <stddef.h>

struct srv_api;
struct srv_http_req;

/* Cluster mode: writes only on the primary, reads only while its lease
 * holds (else 307/503); X-Caskd-Min-Version on a replica. 1 when req was
 * answered (or parked: it comes back through api->redispatch), 0 to go. */
int srv_api_cluster_gate(struct srv_api *api, struct srv_http_req *req);
void srv_api_cluster(struct srv_api *api, struct srv_http_req *req, const char *path);
/* Appends the cluster's figures to /metrics' text (realloc'd). 0 or -ENOMEM. */
int srv_api_cluster_metrics(struct srv_api *api, char **text, size_t *len);

#endif
