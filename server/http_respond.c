/* server/http_respond.c — what a handler calls to answer (API and
 * contract in server/http.h): whole responses, copied or referenced,
 * JSON errors, added headers, and streamed bodies.
 *
 * Owns: the checks of a handler's call (a request is answered once,
 * while dispatched or orphaned) and a stream's run: its head, its
 * pieces framed as chunks (or, to HTTP/1.0, delimited by the close),
 * and its end. The bytes are formatted by server/http_response.c and
 * queued by server/http_conn.c, which also makes the "responded"
 * transition (srv_http_conn_finish); nothing here touches the socket.
 *
 * Invariants:
 *  - A referenced body (srv_http_respond_ref) has its release called
 *    exactly once: when written, when the connection dies, or at once if
 *    it is never queued.
 *  - A streamed body ends with its last chunk only when its producer says
 *    it is complete; one cut short leaves the connection without it, so
 *    the client cannot take part of a body for the whole.
 */
#include "server/http_conn.h"
#include "server/http_req.h"

#include <assert.h>
#include <errno.h>
#include <stdbool.h>

#include <event2/buffer.h>
#include <event2/event.h>

void srv_http_respond(struct srv_http_req *req, int status,
		      const char *content_type, const void *body, size_t len)
{
	struct srv_body b = { .data = body, .len = body ? len : 0, .copy = true };

	assert(req->st.dispatched || !req->conn);
	srv_http_send(req, status, content_type, &b);
}

void srv_http_respond_ref(struct srv_http_req *req, int status,
			  const char *content_type, const void *body,
			  size_t len,
			  void (*release)(const void *body, size_t len,
					  void *release_arg),
			  void *release_arg)
{
	struct srv_body b = {
		.data = body,
		.len = body ? len : 0,
		.release = release,
		.release_arg = release_arg,
	};

	assert(req->st.dispatched || !req->conn);
	srv_http_send(req, status, content_type, &b);
}

void srv_http_respond_error(struct srv_http_req *req, int status,
			    const char *code, const char *message)
{
	assert(req->st.dispatched || !req->conn);
	srv_http_send_error(req, status, code, message);
}

int srv_http_add_header(struct srv_http_req *req, const char *name,
			const char *value)
{
	return srv_http_extra_add(&req->extra, name, value);
}

/* ---- streams ------------------------------------------------------------- */

int srv_http_stream_begin(struct srv_http_req *req, int status,
			  const char *content_type,
			  void (*more)(struct srv_http_req *req, void *arg),
			  void *arg)
{
	struct srv_http_conn *conn = req->conn;
	struct srv_stream *st = &req->stream;
	bool closing, head_only;
	int rc;

	assert(req->st.dispatched || !conn);
	if (!conn)
		return -EPIPE;
	status = srv_http_status_sendable(status);
	head_only = req->msg.method == SRV_HTTP_HEAD;
	/* HTTP/1.0 knows no chunks: the close ends the body. */
	closing = srv_http_conn_must_close(conn) || (!head_only && req->msg.minor == 0);
	if (!head_only && (rc = srv_http_stream_prepare(req)) != 0)
		return rc;
	rc = srv_http_conn_queue_head(conn, status, content_type, NULL, 0, closing,
			    req->msg.minor > 0);
	if (rc != 0) {
		if (st->ev)
			event_free(st->ev);
		st->ev = NULL;
		return rc;
	}
	if (head_only) {
		srv_http_conn_finish(req, status, 0, closing);
		return 1;
	}
	st->more = more;
	st->arg = arg;
	st->status = status;
	st->bytes = 0;
	st->chunked = req->msg.minor > 0;
	st->on = true;
	srv_http_stream_schedule(req);
	srv_http_conn_flush_now(conn); /* the head, now */
	return 0;
}

int srv_http_stream_write(struct srv_http_req *req, const void *data,
			  size_t len)
{
	struct srv_http_conn *conn = req->conn;
	struct srv_stream *st = &req->stream;
	struct evbuffer_iovec v;
	char *p;

	assert(st->on);
	if (!conn)
		return -EPIPE;
	if (len == 0) /* a chunk of 0 would end the body */
		return 0;
	/* "<hex size>\r\n" <data> "\r\n", in one extent: one copy. */
	if (evbuffer_reserve_space(conn->out, (ev_ssize_t)(len + SRV_HTTP_CHUNK_FRAME_BYTES),
				   &v, 1) != 1)
		return -ENOMEM;
	p = srv_http_format_piece(v.iov_base, data, len, st->chunked);
	v.iov_len = (size_t)(p - (char *)v.iov_base);
	if (evbuffer_commit_space(conn->out, &v, 1) != 0)
		return -ENOMEM;
	st->bytes += len;
	srv_http_conn_flush_now(conn); /* may free conn: req is orphaned */
	return 0;
}

void srv_http_stream_end(struct srv_http_req *req, int complete)
{
	struct srv_http_conn *conn = req->conn;
	struct srv_stream *st = &req->stream;
	int status = st->status;
	size_t bytes = st->bytes;
	bool closing;

	assert(st->on);
	if (st->ev)
		event_free(st->ev); /* a pending more() with it */
	*st = (struct srv_stream){ 0 };
	if (!conn) { /* orphaned: its connection died meanwhile */
		srv_http_req_free(req);
		return;
	}
	closing = srv_http_conn_must_close(conn) || req->msg.minor == 0;
	if (complete && req->msg.minor > 0 &&
	    evbuffer_add(conn->out, "0\r\n\r\n", 5) != 0)
		complete = 0;
	if (!complete) { /* cut short: close without the last chunk */
		conn->broken = true;
		closing = true;
	}
	srv_http_conn_finish(req, status, bytes, closing);
}
