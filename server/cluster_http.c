/* server/cluster_http.c — blocking HTTP calls over libevent's client
 * (see cluster_http.h). */
#include "server/cluster_http.h"

#include <errno.h>
#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CONNS_MAX 16

struct conn {
	char host[128];
	int port;
	struct evhttp_connection *c;
};

struct srv_cl_http {
	struct event_base *base;
	struct conn conns[CONNS_MAX];
	unsigned next;
};

struct call {
	struct srv_cl_reply *r;
	int done;
	struct event_base *base;
};

struct srv_cl_http *srv_cl_http_new(struct event_base *base)
{
	struct srv_cl_http *h = calloc(1, sizeof(*h));

	if (h)
		h->base = base;
	return h;
}

void srv_cl_http_free(struct srv_cl_http *h)
{
	if (!h)
		return;
	for (unsigned i = 0; i < CONNS_MAX; i++)
		if (h->conns[i].c)
			evhttp_connection_free(h->conns[i].c);
	free(h);
}

void srv_cl_reply_free(struct srv_cl_reply *r)
{
	free(r->body);
	r->body = NULL;
	r->len = 0;
}

int srv_cl_url_split(const char *url, char *host, size_t n, int *port)
{
	struct evhttp_uri *u = evhttp_uri_parse(url);
	const char *h;
	int rc = -EINVAL;

	if (!u)
		return -EINVAL;
	h = evhttp_uri_get_host(u);
	if (h && evhttp_uri_get_scheme(u) && !strcmp(evhttp_uri_get_scheme(u), "http") &&
	    strlen(h) < n && *h) {
		snprintf(host, n, "%s", h);
		*port = evhttp_uri_get_port(u) > 0 ? evhttp_uri_get_port(u) : 80;
		rc = 0;
	}
	evhttp_uri_free(u);
	return rc;
}

static struct evhttp_connection *conn_for(struct srv_cl_http *h, const char *host,
					  int port)
{
	struct conn *c;

	for (unsigned i = 0; i < CONNS_MAX; i++)
		if (h->conns[i].c && h->conns[i].port == port &&
		    !strcmp(h->conns[i].host, host))
			return h->conns[i].c;
	c = &h->conns[h->next++ % CONNS_MAX];
	if (c->c)
		evhttp_connection_free(c->c);
	snprintf(c->host, sizeof(c->host), "%s", host);
	c->port = port;
	c->c = evhttp_connection_base_new(h->base, NULL, host, (unsigned short)port);
	return c->c;
}

/* A connection that failed is dropped, so the next call connects anew. */
static void drop_conn(struct srv_cl_http *h, const char *host, int port)
{
	for (unsigned i = 0; i < CONNS_MAX; i++)
		if (h->conns[i].c && h->conns[i].port == port &&
		    !strcmp(h->conns[i].host, host)) {
			evhttp_connection_free(h->conns[i].c);
			h->conns[i].c = NULL;
		}
}

static void on_done(struct evhttp_request *req, void *arg)
{
	struct call *c = arg;
	struct evbuffer *in;
	size_t n;

	c->done = 1;
	event_base_loopbreak(c->base);
	if (!req || !evhttp_request_get_response_code(req))
		return;
	c->r->status = evhttp_request_get_response_code(req);
	{
		const char *hist = evhttp_find_header(evhttp_request_get_input_headers(req),
						      "X-Caskd-History");
		if (hist && strlen(hist) < sizeof(c->r->history))
			snprintf(c->r->history, sizeof(c->r->history), "%s", hist);
	}
	in = evhttp_request_get_input_buffer(req);
	n = evbuffer_get_length(in);
	if (!(c->r->body = malloc(n + 1))) {
		c->r->status = 0;
		return;
	}
	evbuffer_remove(in, c->r->body, n);
	c->r->body[n] = 0;
	c->r->len = n;
}

int srv_cl_http_call(struct srv_cl_http *h, const char *url, const char *method,
		     const char *path, const char *body, size_t len, int timeout_ms,
		     struct srv_cl_reply *r)
{
	char host[128], hosthdr[160];
	struct evhttp_connection *conn;
	struct evhttp_request *req;
	struct call c = { r, 0, h->base };
	struct timeval tv = { timeout_ms / 1000, (timeout_ms % 1000) * 1000 };
	int port;

	memset(r, 0, sizeof(*r));
	if (srv_cl_url_split(url, host, sizeof(host), &port))
		return -EINVAL;
	if (!(conn = conn_for(h, host, port)))
		return -ENOMEM;
	evhttp_connection_set_timeout_tv(conn, &tv);
	evhttp_connection_set_retries(conn, 0);
	if (!(req = evhttp_request_new(on_done, &c)))
		return -ENOMEM;
	snprintf(hosthdr, sizeof(hosthdr), "%s:%d", host, port);
	evhttp_add_header(evhttp_request_get_output_headers(req), "Host", hosthdr);
	if (body) {
		evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type",
				  "application/json");
		evbuffer_add(evhttp_request_get_output_buffer(req), body, len);
	}
	if (evhttp_make_request(conn, req, strcmp(method, "GET") ? EVHTTP_REQ_POST :
				EVHTTP_REQ_GET, path)) {
		drop_conn(h, host, port);
		return -EIO;
	}
	while (!c.done)
		if (event_base_dispatch(h->base) < 0)
			break;
	if (!c.done) {
		/* the base failed under us: the request is still owned by
		 * the connection, which frees it with itself */
		drop_conn(h, host, port);
		return -EIO;
	}
	if (r->status == 0)
		drop_conn(h, host, port);
	return 0;
}
