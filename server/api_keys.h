/* server/api_keys.h — the route GET /keys: listings, scanned a slice per
 * loop turn and streamed (api_keys.c). Called by the router (api.c)
 * for GET and HEAD; runs on a worker's event loop thread.
 */
#ifndef CASKD_SERVER_API_KEYS_H
#define CASKD_SERVER_API_KEYS_H

struct srv_api;
struct srv_http_req;

#define SRV_ALLOW_KEYS "GET, HEAD"

void srv_api_keys(struct srv_api *api, struct srv_http_req *req);

#endif
