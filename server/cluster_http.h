/* server/cluster_http.h — a blocking HTTP call with a deadline, on an
 * event base of the caller's own (libevent's HTTP client), for the
 * cluster agent's talks with etcd and with its peers.
 *
 * Owns: one cached keep-alive connection per peer address. A thread that
 * calls it blocks for at most the timeout: never call it from a worker's
 * loop (the cluster agent has a process of its own for this).
 */
#ifndef CASKD_SERVER_CLUSTER_HTTP_H
#define CASKD_SERVER_CLUSTER_HTTP_H

#include <stddef.h>

struct event_base;
struct srv_cl_http;

struct srv_cl_http *srv_cl_http_new(struct event_base *base);
void srv_cl_http_free(struct srv_cl_http *h);

struct srv_cl_reply {
	int status;     /* 0: no answer (refused, timed out, cut short) */
	char *body;     /* NUL-terminated, malloc'd (free it) */
	size_t len;
	char history[1200]; /* X-Caskd-History of the answer, or "" */
};

/* method "GET"/"POST"; url "http://host:port" (a base: path is added).
 * 0 and *r (r->status may be any HTTP status), or -errno when the
 * request could not be made (a bad URL, no memory). */
int srv_cl_http_call(struct srv_cl_http *h, const char *url, const char *method,
		     const char *path, const char *body, size_t len, int timeout_ms,
		     struct srv_cl_reply *r);
void srv_cl_reply_free(struct srv_cl_reply *r);
/* Splits "http://host:port[/]" into host (room for n) and *port. 0 or
 * -EINVAL. */
int srv_cl_url_split(const char *url, char *host, size_t n, int *port);

#endif
