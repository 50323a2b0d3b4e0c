/* server/http_response.c — the response writer of the HTTP layer (API in
 * server/http.h, shared structures in server/http_conn.h).
 *
 * Owns: turning a handler's (or the connection layer's own) response into
 * bytes in the connection's output: the status line and the headers this
 * layer writes itself (Server, Date, Content-Length or Transfer-Encoding,
 * Content-Type, Connection, Retry-After on a 503), the headers a handler
 * added, JSON error bodies, and the body, copied, referenced, or streamed
 * in chunks a producer hands over (srv_http_stream_*). It does not write
 * to the socket: http_conn.c does, told by srv_http_conn_responded() and
 * srv_http_conn_flush_now(), and it calls a stream's producer.
 *
 * Invariants:
 *  - Status line, headers and a copied body go into one contiguous extent
 *    of the output, so a batch of responses leaves in one writev.
 *  - A referenced body (srv_http_respond_ref) has its release called
 *    exactly once: when written, when the connection dies, or at once if
 *    it is never queued.
 *  - A streamed body ends with its last chunk only when its producer says
 *    it is complete; one cut short leaves the connection without it, so
 *    the client cannot take part of a body for the whole.
 *  - No header a handler adds can break the framing: names this layer
 *    writes are refused, and values with CR, LF or other controls too.
 */
#include "server/http_conn.h"

#include <assert.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include <event2/buffer.h>
#include <event2/event.h>

/* Statuses a handler may respond with; others are sent as 500. */
#define SRV_HTTP_STATUS_MIN 200
#define SRV_HTTP_STATUS_MAX 599
/* What a 503 tells the client to wait, in seconds, when its handler did
 * not say: every overload caskd answers 503 for (over --max-conns, a busy
 * key, out of memory, a worker handing over on a stop) passes within
 * about a second, and a client retrying at once only adds to it. */
#define SRV_HTTP_RETRY_AFTER "1"
/* CR LF. */
#define SRV_HTTP_EOL_BYTES 2

/* A response body: copied into the output, or referenced until sent. */
struct srv_body {
	const void *data;
	size_t len;
	bool copy;
	void (*release)(const void *body, size_t len, void *release_arg);
	void *release_arg;
};

const char *srv_http_reason(int status)
{
	switch (status) {
	case 100: return "Continue";
	case 200: return "OK";
	case 201: return "Created";
	case 202: return "Accepted";
	case 204: return "No Content";
	case 206: return "Partial Content";
	case 301: return "Moved Permanently";
	case 302: return "Found";
	case 304: return "Not Modified";
	case 307: return "Temporary Redirect";
	case 308: return "Permanent Redirect";
	case 400: return "Bad Request";
	case 401: return "Unauthorized";
	case 403: return "Forbidden";
	case 404: return "Not Found";
	case 405: return "Method Not Allowed";
	case 406: return "Not Acceptable";
	case 408: return "Request Timeout";
	case 409: return "Conflict";
	case 410: return "Gone";
	case 411: return "Length Required";
	case 412: return "Precondition Failed";
	case 413: return "Content Too Large";
	case 414: return "URI Too Long";
	case 415: return "Unsupported Media Type";
	case 416: return "Range Not Satisfiable";
	case 417: return "Expectation Failed";
	case 422: return "Unprocessable Content";
	case 428: return "Precondition Required";
	case 429: return "Too Many Requests";
	case 431: return "Request Header Fields Too Large";
	case 500: return "Internal Server Error";
	case 501: return "Not Implemented";
	case 502: return "Bad Gateway";
	case 503: return "Service Unavailable";
	case 504: return "Gateway Timeout";
	case 505: return "HTTP Version Not Supported";
	case 507: return "Insufficient Storage";
	default: return "Unknown";
	}
}

/* ---- formatting ----------------------------------------------------------- */

static char *srv_put(char *p, const char *s, size_t len)
{
	memcpy(p, s, len);
	return p + len;
}

#define SRV_PUT_LIT(p, lit) srv_put((p), (lit), sizeof(lit) - 1)

static char *srv_put_str(char *p, const char *s)
{
	return srv_put(p, s, strlen(s));
}

static char *srv_put_size(char *p, size_t v)
{
	char tmp[sizeof("18446744073709551615")];
	char *t = tmp + sizeof(tmp);

	do
		*--t = (char)('0' + v % 10);
	while ((v /= 10) != 0);
	return srv_put(p, t, (size_t)(tmp + sizeof(tmp) - t));
}

char *srv_http_format_head(char *p, const struct srv_http_head *h)
{
	p = SRV_PUT_LIT(p, "HTTP/1.1 ");
	p = srv_put_size(p, (size_t)h->status);
	*p++ = ' ';
	p = srv_put_str(p, srv_http_reason(h->status));
	p = SRV_PUT_LIT(p, "\r\nServer: caskd\r\nDate: ");
	p = srv_put_str(p, h->date);
	p = SRV_PUT_LIT(p, "\r\n");
	if (h->has_length) {
		p = SRV_PUT_LIT(p, "Content-Length: ");
		p = srv_put_size(p, h->length);
		p = SRV_PUT_LIT(p, "\r\n");
	}
	if (h->chunked)
		p = SRV_PUT_LIT(p, "Transfer-Encoding: chunked\r\n");
	if (h->ctype) {
		p = SRV_PUT_LIT(p, "Content-Type: ");
		p = srv_put_str(p, h->ctype);
		p = SRV_PUT_LIT(p, "\r\n");
	}
	if (h->retry_after)
		p = SRV_PUT_LIT(p, "Retry-After: " SRV_HTTP_RETRY_AFTER "\r\n");
	if (h->extra_len)
		p = srv_put(p, h->extra, h->extra_len);
	if (h->connection) {
		p = SRV_PUT_LIT(p, "Connection: ");
		p = srv_put_str(p, h->connection);
		p = SRV_PUT_LIT(p, "\r\n");
	}
	return SRV_PUT_LIT(p, "\r\n");
}

/* Appends s JSON-escaped, stopping before a character that would pass
 * lim (messages are cut, never split inside an escape). */
static char *srv_json_escape(char *p, const char *lim, const char *s)
{
	static const char hex[] = "0123456789abcdef";

	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;

		if (c == '"' || c == '\\') {
			if (lim - p < 2)
				break;
			*p++ = '\\';
			*p++ = (char)c;
		} else if (c < ' ') {
			if (lim - p < 6)
				break;
			p = SRV_PUT_LIT(p, "\\u00");
			*p++ = hex[c >> 4];
			*p++ = hex[c & 0xf];
		} else {
			if (lim - p < 1)
				break;
			*p++ = (char)c;
		}
	}
	return p;
}

size_t srv_http_json_error(char *dst, size_t cap, const char *code,
			   const char *msg)
{
	static const char start[] = "{\"error\":\"",
			  mid[] = "\",\"message\":\"", tail[] = "\"}";
	const char *end = dst + cap;
	char *p = dst;

	_Static_assert(SRV_HTTP_ERROR_BODY_BYTES >
			       sizeof(start) + sizeof(mid) + sizeof(tail),
		       "error body buffer too small for the JSON frame");
	assert(cap >= SRV_HTTP_ERROR_BODY_BYTES);
	p = SRV_PUT_LIT(p, start);
	p = srv_json_escape(p, end - (sizeof(mid) - 1) - (sizeof(tail) - 1),
			    code);
	p = SRV_PUT_LIT(p, mid);
	p = srv_json_escape(p, end - (sizeof(tail) - 1), msg);
	p = SRV_PUT_LIT(p, tail);
	return (size_t)(p - dst);
}

/* ---- the writer ----------------------------------------------------------- */

/* Case-insensitive match of a header name against a lowercase literal. */
static bool srv_name_is(const char *name, size_t len, const char *lit)
{
	return len == strlen(lit) && strncasecmp(name, lit, len) == 0;
}

/* Did the handler add a Retry-After of its own? */
static bool srv_extra_has_retry_after(const struct srv_http_buf *x)
{
	static const char name[] = "retry-after:";

	for (size_t i = 0; i + sizeof(name) - 1 <= x->len;) {
		const char *line = x->data + i;
		const char *nl = memchr(line, '\n', x->len - i);

		if (srv_name_is(line, sizeof(name) - 1, name))
			return true;
		if (!nl)
			break;
		i = (size_t)(nl - x->data) + 1;
	}
	return false;
}

/* Queues the status line, headers and (if copied) the body. b NULL: no
 * Content-Length (a bodiless status, or a stream: chunked says which). */
static int srv_write_head(struct srv_http_conn *conn, int status,
			  const char *ctype, const struct srv_body *b,
			  size_t sent, bool closing, bool chunked)
{
	const struct srv_http_req *req = conn->req;
	size_t copy = b && b->copy ? sent : 0;
	size_t need = SRV_HTTP_HEAD_FIXED_BYTES + (ctype ? strlen(ctype) : 0) +
		      req->extra.len + copy;
	struct evbuffer_iovec v;
	struct srv_http_head h = {
		.status = status,
		.date = srv_http_date(conn->srv),
		.has_length = b != NULL,
		.length = b ? b->len : 0,
		.ctype = ctype,
		.extra = req->extra.data,
		.extra_len = req->extra.len,
		.connection = closing ? "close"
			      : req->msg.minor == 0 ? "keep-alive" : NULL,
		.chunked = chunked,
		.retry_after = status == 503 &&
			       !srv_extra_has_retry_after(&req->extra),
	};
	char *p;

	if (evbuffer_reserve_space(conn->out, (ev_ssize_t)need, &v, 1) != 1)
		return -ENOMEM;
	p = srv_http_format_head(v.iov_base, &h);
	if (copy)
		p = srv_put(p, b->data, copy);
	v.iov_len = (size_t)(p - (char *)v.iov_base);
	return evbuffer_commit_space(conn->out, &v, 1) == 0 ? 0 : -ENOMEM;
}

static void srv_body_release(const struct srv_body *b)
{
	if (b->release)
		b->release(b->data, b->len, b->release_arg);
}

static void srv_send(struct srv_http_req *req, int status, const char *ctype,
		     const struct srv_body *b)
{
	struct srv_http_conn *conn = req->conn;
	bool bodyless, closing, handed_over = false;
	size_t sent;
	int rc;

	if (!conn) { /* orphaned: its connection died meanwhile */
		srv_body_release(b);
		srv_http_req_free(req);
		return;
	}
	if (status < SRV_HTTP_STATUS_MIN || status > SRV_HTTP_STATUS_MAX)
		status = 500;
	bodyless = status == 204 || status == 304;
	sent = bodyless || req->msg.method == SRV_HTTP_HEAD ? 0 : b->len;
	closing = srv_http_conn_must_close(conn);
	rc = srv_write_head(conn, status, ctype, bodyless ? NULL : b, sent,
			    closing, false);
	if (rc == 0 && sent && !b->copy) {
		rc = evbuffer_add_reference(conn->out, b->data, sent,
					    b->release, b->release_arg);
		handed_over = rc == 0;
	}
	if (!handed_over)
		srv_body_release(b);
	if (rc != 0) { /* the response is cut short: end the connection */
		conn->broken = true;
		closing = true;
	}
	req->st.dispatched = false;
	srv_http_log_response(conn->srv, req, status, rc == 0 ? sent : 0);
	srv_http_conn_responded(conn, closing);
}

void srv_http_respond(struct srv_http_req *req, int status,
		      const char *content_type, const void *body, size_t len)
{
	struct srv_body b = { .data = body, .len = body ? len : 0, .copy = true };

	assert(req->st.dispatched || !req->conn);
	srv_send(req, status, content_type, &b);
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
	srv_send(req, status, content_type, &b);
}

void srv_http_send_error(struct srv_http_req *req, int status,
			 const char *code, const char *msg)
{
	char body[SRV_HTTP_ERROR_BODY_BYTES];
	struct srv_body b = { .data = body, .copy = true };

	b.len = srv_http_json_error(body, sizeof(body), code ? code : "error",
				    msg ? msg : "");
	srv_send(req, status, "application/json", &b);
}

void srv_http_respond_error(struct srv_http_req *req, int status,
			    const char *code, const char *message)
{
	assert(req->st.dispatched || !req->conn);
	srv_http_send_error(req, status, code, message);
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
	if (status < SRV_HTTP_STATUS_MIN || status > SRV_HTTP_STATUS_MAX)
		status = 500;
	head_only = req->msg.method == SRV_HTTP_HEAD;
	/* HTTP/1.0 knows no chunks: the close ends the body. */
	closing = srv_http_conn_must_close(conn) || (!head_only && req->msg.minor == 0);
	if (!head_only && (rc = srv_http_stream_prepare(req)) != 0)
		return rc;
	rc = srv_write_head(conn, status, content_type, NULL, 0, closing,
			    req->msg.minor > 0);
	if (rc != 0) {
		if (st->ev)
			event_free(st->ev);
		st->ev = NULL;
		return rc;
	}
	if (head_only) {
		req->st.dispatched = false;
		srv_http_log_response(conn->srv, req, status, 0);
		srv_http_conn_responded(conn, closing);
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
	if (evbuffer_reserve_space(conn->out, (ev_ssize_t)(len + 24), &v, 1) != 1)
		return -ENOMEM;
	p = v.iov_base;
	if (st->chunked)
		p += sprintf(p, "%zx\r\n", len);
	p = srv_put(p, data, len);
	if (st->chunked)
		p = SRV_PUT_LIT(p, "\r\n");
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
	req->st.dispatched = false;
	srv_http_log_response(conn->srv, req, status, bytes);
	srv_http_conn_responded(conn, closing);
}

/* Names this layer writes itself: a second copy would break framing. */
static bool srv_header_is_reserved(const char *name)
{
	static const char *const reserved[] = { "content-length",
						"transfer-encoding",
						"connection", "date",
						"server" };
	size_t len = strlen(name);

	for (size_t i = 0; i < sizeof(reserved) / sizeof(reserved[0]); i++)
		if (srv_name_is(name, len, reserved[i]))
			return true;
	return false;
}

int srv_http_add_header(struct srv_http_req *req, const char *name,
			const char *value)
{
	struct srv_http_buf *x = &req->extra;
	size_t nlen, vlen;
	char *p;

	if (!name || !value || !srv_http_is_token(name) ||
	    srv_header_is_reserved(name) || !srv_http_is_field_value(value))
		return -EINVAL; /* CR, LF in a value: header injection */
	nlen = strlen(name);
	vlen = strlen(value);
	if (srv_http_buf_reserve(x, x->len + nlen + sizeof(": ") - 1 + vlen +
					    SRV_HTTP_EOL_BYTES,
				 SIZE_MAX) != 0)
		return -ENOMEM;
	p = srv_put(x->data + x->len, name, nlen);
	p = SRV_PUT_LIT(p, ": ");
	p = srv_put(p, value, vlen);
	p = SRV_PUT_LIT(p, "\r\n");
	x->len = (size_t)(p - x->data);
	return 0;
}
