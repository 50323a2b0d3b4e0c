/* server/http_conn.h — the connection layer of the HTTP server
 * (http_conn.c), as the files above it (http_server.c, http_respond.c)
 * call it. Internal to server/http_*.c.
 *
 * Owns: a connection's life, the send path of a response (head and
 * body queued on the connection's output) and the "responded"
 * transition: once a response is queued, srv_http_conn_finish() logs
 * it and closes the connection after it or makes ready for the next
 * request, and (outside the connection's callbacks) writes it now.
 * Runs on a worker's event loop thread.
 */
#ifndef CASKD_SERVER_HTTP_CONN_H
#define CASKD_SERVER_HTTP_CONN_H

#include "server/http_core.h"

/* ---- for the server (http_server.c) ---- */

/* A connection on fd, which it takes (already non-blocking: the listener
 * accepts so); on failure fd is closed. 0 or -errno. */
int srv_http_conn_new(struct srv_http_server *srv, evutil_socket_t fd,
		      const struct sockaddr *sa, socklen_t salen);
void srv_http_conn_free(struct srv_http_conn *conn);
/* Between requests, with nothing of one received. */
bool srv_http_conn_is_idle(const struct srv_http_conn *conn);
/* The read timeouts of srv's connections, from its options. */
void srv_http_conn_timeouts(struct srv_http_server *srv);
/* Once shut down and without connections, done() runs from the loop. */
void srv_http_server_maybe_done(struct srv_http_server *srv);
/* The Date header's value as of this loop iteration. */
const char *srv_http_date(struct srv_http_server *srv);
/* Reports a response to the logged callback. */
void srv_http_log_response(struct srv_http_server *srv,
			   const struct srv_http_req *req, int status,
			   size_t bytes);

/* ---- the send path, for the response API (http_respond.c) ---- */

/* This response must say Connection: close and end the connection. */
bool srv_http_conn_must_close(const struct srv_http_conn *conn);
/* Queues the status line, headers and (if copied) the body. b NULL: no
 * Content-Length (a bodiless status, or a stream: chunked says which).
 * 0 or -ENOMEM (nothing queued). */
int srv_http_conn_queue_head(struct srv_http_conn *conn, int status,
			     const char *ctype, const struct srv_body *b,
			     size_t sent, bool closing, bool chunked);
/* Sends a whole response to req and releases it (an orphan is freed,
 * its body released). */
void srv_http_send(struct srv_http_req *req, int status, const char *ctype,
		   const struct srv_body *b);
/* The same with a JSON error body (also this layer's own refusals). */
void srv_http_send_error(struct srv_http_req *req, int status,
			 const char *code, const char *msg);
void srv_http_body_release(const struct srv_body *b);
/* The responded transition: req's response (status, bytes of body) is
 * queued; log it, then close after it (closing) or get ready for the
 * next request, and write it now if outside the connection's callbacks. */
void srv_http_conn_finish(struct srv_http_req *req, int status, size_t bytes,
			  bool closing);
/* Something was queued on conn's output from outside its callbacks (a
 * streamed piece): write it now. Callers touch conn no more. */
void srv_http_conn_flush_now(struct srv_http_conn *conn);
/* Streams (srv_http_stream_begin): the event that runs more(), made
 * before anything is sent (0 or -ENOMEM; freed by the response API),
 * and has more() run in the next loop turn. */
int srv_http_stream_prepare(struct srv_http_req *req);
void srv_http_stream_schedule(struct srv_http_req *req);

#endif
