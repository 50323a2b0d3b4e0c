/* server/api_batch.h — the route POST /batch: many keys written all or
 * nothing (api_batch.c). Called by the router (api.c) for a POST; runs
 * on a worker's event loop thread.
 */
#ifndef CASKD_SERVER_API_BATCH_H
#define CASKD_SERVER_API_BATCH_H

struct srv_api;
struct srv_http_req;

#define SRV_ALLOW_BATCH "POST"

void srv_api_batch(struct srv_api *api, struct srv_http_req *req);

#endif
