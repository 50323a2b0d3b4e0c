/* server/api_watch.h — the route GET /watch: a stream of the changes to
 * keys, read from the log (api_watch.c). Called by the router (api.c)
 * for a GET, and by the worker when it stops. Runs on a worker's event
 * loop thread (the watch thread is api_watch.c's own).
 */
#ifndef CASKD_SERVER_API_WATCH_H
#define CASKD_SERVER_API_WATCH_H

#include <stddef.h>
#include <stdint.h>

struct eng_change;
struct srv_api;
struct srv_http_req;

#define SRV_ALLOW_WATCH "GET"

void srv_api_watch(struct srv_api *api, struct srv_http_req *req);
/* The worker is stopping: every watch ends cleanly (a last progress
 * line, then the end of the stream) and the watch thread stops. */
void srv_api_watch_shutdown(struct srv_api *api);

/* The log reader's second consumer (replication, api_cluster.c): a watch
 * of every change after `since` (written, durable or not), formatted by
 * the sink, with idle(last) written when nothing went out for idle_ms.
 * Each appends to *buf (of *cap bytes, *used of them used), growing it
 * with realloc: 0 or -ENOMEM. done(arg) runs when the stream ends. */
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

#endif
