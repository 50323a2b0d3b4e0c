/* server/http_req.c — the request object of the HTTP layer (see
 * http_req.h) and its accessors (server/http.h).
 *
 * Map: body memory - life (new, reset, orphaned, freed) - accessors.
 */
#include "server/http_req.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <event2/event.h>

/* A body buffer kept for the connection's next request (outside the body
 * memory, which counts requests in progress): small, so that idle
 * connections hold little (max_conns x this at most). */
#define SRV_HTTP_BODY_KEEP_BYTES      4096

/* Gives back the body memory req holds. */
static void srv_req_uncharge(struct srv_http_req *req)
{
	struct srv_http_server *srv = req->srv;

	if (!srv || !req->st.body_charged)
		return;
	srv->body_mem -= req->st.body_charged;
	req->st.body_charged = 0;
	if (srv->opts.counters)
		srv_count_set(&srv->opts.counters->body_bytes, srv->body_mem);
}

void srv_http_req_reset(struct srv_http_req *req)
{
	srv_req_uncharge(req);
	srv_http_msg_reset(&req->msg);
	srv_http_buf_reset_to(&req->body, SRV_HTTP_BODY_KEEP_BYTES);
	srv_http_buf_reset(&req->extra);
	req->st = (struct srv_req_state){ .body_limit = SIZE_MAX };
}

struct srv_http_req *srv_http_req_new(struct srv_http_conn *conn,
				      const struct sockaddr *sa, socklen_t salen)
{
	struct srv_http_req *req = calloc(1, sizeof(*req));

	if (!req)
		return NULL;
	req->srv = conn->srv;
	req->conn = conn;
	req->loopback = conn->loopback;
	if (salen > 0 && (size_t)salen <= sizeof(req->peer))
		memcpy(&req->peer, sa, (size_t)salen);
	else
		req->peer.ss_family = AF_UNSPEC;
	srv_http_req_reset(req);
	return req;
}

static void srv_orphan_unlink(struct srv_http_req *req)
{
	if (req->orphan_prev)
		req->orphan_prev->orphan_next = req->orphan_next;
	else if (req->srv)
		req->srv->orphans = req->orphan_next;
	if (req->orphan_next)
		req->orphan_next->orphan_prev = req->orphan_prev;
	req->orphan_prev = req->orphan_next = NULL;
	req->orphan = false;
}

void srv_http_req_orphan(struct srv_http_req *req)
{
	struct srv_http_server *srv = req->srv;

	req->conn = NULL;
	req->orphan = true;
	req->orphan_prev = NULL;
	req->orphan_next = srv->orphans;
	if (srv->orphans)
		srv->orphans->orphan_prev = req;
	srv->orphans = req;
}

void srv_http_req_free(struct srv_http_req *req)
{
	if (req->stream.ev) /* a stream never ended: the server is going */
		event_free(req->stream.ev);
	srv_req_uncharge(req);
	if (req->orphan)
		srv_orphan_unlink(req);
	srv_http_msg_free(&req->msg);
	srv_http_buf_free(&req->body);
	srv_http_buf_free(&req->extra);
	free(req);
}

void srv_http_orphans_release(struct srv_http_server *srv)
{
	while (srv->orphans) {
		struct srv_http_req *req = srv->orphans;

		srv_req_uncharge(req);
		srv_orphan_unlink(req);
		req->srv = NULL;
	}
}

/* ---- accessors ------------------------------------------------------------ */

enum srv_http_method srv_http_req_method(const struct srv_http_req *req)
{
	return req->msg.method;
}

const char *srv_http_req_method_str(const struct srv_http_req *req)
{
	return req->msg.method_str;
}

const char *srv_http_req_path(const struct srv_http_req *req)
{
	return req->msg.path;
}

const char *srv_http_req_query(const struct srv_http_req *req)
{
	return req->msg.query;
}

const char *srv_http_req_header(const struct srv_http_req *req,
				const char *name)
{
	for (int i = 0; i < req->msg.nfields; i++)
		if (strcasecmp(req->msg.fields[i].name, name) == 0)
			return req->msg.fields[i].value;
	return NULL;
}

const void *srv_http_req_body(const struct srv_http_req *req, size_t *len)
{
	*len = req->body.len;
	return req->body.len ? req->body.data : "";
}

int srv_http_req_peer_is_loopback(const struct srv_http_req *req)
{
	return req->loopback;
}

int srv_http_req_peer_str(const struct srv_http_req *req, char *buf,
			  size_t len)
{
	char host[INET6_ADDRSTRLEN];
	struct sockaddr_in sin;
	struct sockaddr_in6 sin6;
	int n;

	switch (req->peer.ss_family) {
	case AF_INET:
		memcpy(&sin, &req->peer, sizeof(sin));
		if (!inet_ntop(AF_INET, &sin.sin_addr, host, sizeof(host)))
			return -errno;
		n = snprintf(buf, len, "%s:%u", host, ntohs(sin.sin_port));
		break;
	case AF_INET6:
		memcpy(&sin6, &req->peer, sizeof(sin6));
		if (!inet_ntop(AF_INET6, &sin6.sin6_addr, host, sizeof(host)))
			return -errno;
		n = snprintf(buf, len, "[%s]:%u", host, ntohs(sin6.sin6_port));
		break;
	case AF_UNIX:
		n = snprintf(buf, len, "unix");
		break;
	default: /* not known: a refusal logged without an address */
		n = snprintf(buf, len, "-");
		break;
	}
	return n < 0 || (size_t)n >= len ? -ENOSPC : 0;
}

int srv_http_req_conn_alive(const struct srv_http_req *req)
{
	return req->conn != NULL;
}

void srv_http_req_limit_error(struct srv_http_req *req, const char *code,
			      const char *message)
{
	req->st.limit_code = code;
	req->st.limit_msg = message;
}
