/* server/api_watch.h — the route GET /watch: a stream of the changes to
 * keys, read from the log (api_watch.c). Called by the router (api.c)
 * for a GET, and by the worker when it stops. Runs on a worker's event
 * loop thread (the watch thread is api_watch.c's own).
 */
#ifndef CASKD_SERVER_API_WATCH_H
#define CASKD_SERVER_API_WATCH_H

struct srv_api;
struct srv_http_req;

#define SRV_ALLOW_WATCH "GET"

void srv_api_watch(struct srv_api *api, struct srv_http_req *req);
/* The worker is stopping: every watch ends cleanly (a last progress
 * line, then the end of the stream) and the watch thread stops. */
void srv_api_watch_shutdown(struct srv_api *api);

#endif
