/* server/http_req.h — the request object of the HTTP layer (http_req.c):
 * its life (made with its connection, reset for each request, orphaned
 * when its connection dies with the handler holding it, freed) and the
 * body memory it holds. The accessors handlers use are in server/http.h.
 * Internal to server/http_*.c; runs on a worker's event loop thread.
 */
#ifndef CASKD_SERVER_HTTP_REQ_H
#define CASKD_SERVER_HTTP_REQ_H

#include "server/http_core.h"

/* A request object for conn, whose peer is sa: NULL if out of memory. */
struct srv_http_req *srv_http_req_new(struct srv_http_conn *conn,
				      const struct sockaddr *sa, socklen_t salen);
/* Empties req for the next request: big buffers go back (a connection
 * that carried one large body keeps no more than small buffers), and so
 * does its body memory. */
void srv_http_req_reset(struct srv_http_req *req);
/* The connection of req died while its handler has it: req lives on
 * (responding frees it), and so does its share of the body memory. */
void srv_http_req_orphan(struct srv_http_req *req);
/* Frees req (an orphan leaves srv->orphans). */
void srv_http_req_free(struct srv_http_req *req);
/* The server is being freed: its orphans keep no share of it. */
void srv_http_orphans_release(struct srv_http_server *srv);

#endif
