/* server/api_kv.h — the routes /kv/{key} and /incr/{key}: reads,
 * writes and counters of one key (api_kv.c). Called by the router
 * (api.c) once the method is one the route takes (SRV_ALLOW_KV,
 * SRV_ALLOW_INCR); runs on a worker's event loop thread.
 */
#ifndef CASKD_SERVER_API_KV_H
#define CASKD_SERVER_API_KV_H

struct srv_api;
struct srv_http_req;

#define SRV_ALLOW_KV "GET, HEAD, PUT, DELETE"
#define SRV_ALLOW_INCR "POST"

void srv_api_kv(struct srv_api *api, struct srv_http_req *req, const char *path);
void srv_api_incr(struct srv_api *api, struct srv_http_req *req, const char *path);

#endif
