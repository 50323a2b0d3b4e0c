/* server/http_conn.c — the connection layer of caskd's HTTP/1.1 server
 * (API in server/http.h; for the files above it server/http_conn.h;
 * shared structures in server/http_core.h).
 *
 * Owns: every client connection of a worker (struct srv_http_conn), from
 * the accepted socket (server/http_server.c accepts) to its close:
 * reading, feeding the parser (server/http_parse.c) and answering its
 * refusals from its table, the body limit, the body memory of the
 * worker (opts.body_memory) and 100-continue, handing requests to the
 * handler, the send path and the "responded" transition
 * (srv_http_conn_finish), writing, timeouts, half-closes and the
 * lingering close. Everything runs on the worker's one event loop
 * thread; nothing here is thread-safe.
 *
 * Why not bufferevents: per request they cost an ioctl(FIONREAD) before
 * each read and an epoll_ctl pair to arm and disarm the write event. Here
 * a connection reads with one read() into its own linear buffer and
 * writes its responses with one writev(): at the end of the callback that
 * produced them, or at once when a response comes from outside the
 * connection's callbacks (the commit queue, a timer). The write event is
 * armed only when the socket buffer is full. Steady keep-alive traffic
 * costs a read, a writev and a share of epoll_wait per request.
 *
 * Invariants:
 *  - A connection works on one request at a time (conn->req). The next
 *    pipelined request is parsed only after the current one was answered,
 *    so responses leave in order; the socket is still read meanwhile, up
 *    to srv->input_high bytes.
 *  - A connection is freed only when none of its callbacks is on the
 *    stack (conn->busy): at the end of its own callbacks, from a response
 *    written outside them, by shutdown (idle ones only) or by
 *    srv_http_server_free. Handlers may call srv_http_server_shutdown().
 *  - A response from outside the connection's callbacks is written at
 *    once; a pipelined request behind it is parsed from a callback of the
 *    connection's own (a "kick": rev made active, run without reading),
 *    so no handler ever runs nested in another one's callback.
 *  - A request received whole is answered even if the client half-closes
 *    after sending it (as nginx does); the connection closes after the
 *    responses to what arrived whole, and a partial request is dropped.
 *  - The bodies a server holds (received, or being received, or with
 *    their handler) never reserve more than opts.body_memory in all: a
 *    body is reserved whole when its head arrives (its Content-Length;
 *    a chunked one as it grows), and one that does not fit is answered
 *    503 before it is read, so no client can make a worker hold more.
 *  - A started request is timed as a whole, not per read: its head must
 *    be complete within read_timeout_ms, and its body must bring
 *    min_rate x read_timeout_ms bytes in every window of read_timeout_ms
 *    (or end), else 408; a byte now and then does not keep it alive.
 *  - Parse errors, 408, 413 etc. are answered with a JSON error and
 *    Connection: close; the connection then half-closes and discards input
 *    for a moment (lingering close) so the client reads the error instead
 *    of a TCP reset.
 *
 * Map of this file:
 *   1. constants
 *   2. helpers: clocks, the cached Date, the input buffer
 *   3. new connections
 *   4. requests: the parser loop, refusals, body, dispatch
 *   5. connection: reading, writing, timeouts, half-close, closing
 *   6. after a response: the responded transition, streams' turns
 *   7. sending a response
 */
#include "server/http_conn.h"

#include "server/clock.h"
#include "server/http_req.h"
#include "server/log.h"

#include <arpa/inet.h>
#include <assert.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <event2/util.h>

/* ==== 1. constants ===================================================== */


/* Input buffered while a request is handled (pipelining); reading pauses
 * beyond it. The parser copies heads out as they arrive, so the input
 * never has to hold a whole head. */
#define SRV_HTTP_INPUT_HIGH_BYTES (64u * 1024)
/* First size of a connection's input buffer: one read takes in many
 * pipelined requests, and libevent reads at most this much, too. An
 * input buffer grown past it is freed once empty between requests. */
#define SRV_HTTP_READ_BYTES (16u * 1024)
/* Less room than this left at the end of the input buffer: move the
 * unparsed rest to the front (or grow) before reading again. */
#define SRV_HTTP_READ_MIN_BYTES 2048
/* Body reads at least this large go straight into the body buffer,
 * skipping the copy through the input buffer. */
#define SRV_HTTP_DIRECT_READ_BYTES (16u * 1024)
/* Responses queued for a client that does not read them: its next
 * pipelined request waits until the queue has been written. */
#define SRV_HTTP_OUTPUT_HIGH_BYTES (1024u * 1024)
/* Lingering close: how long a half-closed connection may stay silent,
 * and how long it may keep sending, before it is closed for good. */
#define SRV_HTTP_LINGER_READ_MS  1000
#define SRV_HTTP_LINGER_TOTAL_MS 5000
#define SRV_HTTP_NS_PER_S  1000000000ull

/* Steps return SRV_OK (done, go on), SRV_AGAIN (need more input, or
 * must wait), or the SRV_HTTP_PE_* code of a refusal to answer with
 * (server/http_parse.h: srv_http_refusal). */
#define SRV_OK 0
#define SRV_AGAIN (-EAGAIN)

static void srv_conn_process(struct srv_http_conn *conn);
static void srv_conn_fail(struct srv_http_conn *conn, int rc);

/* ==== 2. helpers ======================================================= */

static uint64_t srv_now_ns(void)
{
	struct timespec ts;

	/* vDSO on Linux: no system call per request. */
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * SRV_HTTP_NS_PER_S + (uint64_t)ts.tv_nsec;
}

static uint64_t srv_now_ms(struct srv_http_server *srv)
{
	struct timeval tv = srv_loop_time(srv);

	return (uint64_t)tv.tv_sec * SRV_HTTP_MS_PER_S +
	       (uint64_t)tv.tv_usec / SRV_HTTP_US_PER_MS;
}

/* The Date header's value, reformatted once a second at most. */
const char *srv_http_date(struct srv_http_server *srv)
{
	struct timeval tv = srv_loop_time(srv);

	if (tv.tv_sec != srv->date_sec) {
		srv_http_format_date(srv->date, tv.tv_sec);
		srv->date_sec = tv.tv_sec;
	}
	return srv->date;
}


static size_t srv_in_len(const struct srv_http_conn *conn)
{
	return conn->in.end - conn->in.start;
}

static char *srv_in_data(const struct srv_http_conn *conn)
{
	return conn->in.data + conn->in.start;
}

static void srv_in_drain(struct srv_http_conn *conn, size_t n)
{
	conn->in.start += n;
	if (conn->in.start == conn->in.end) /* the usual case: no memmove */
		conn->in.start = conn->in.end = 0;
}

/* Between requests: an input buffer that grew for a burst of pipelined
 * requests goes back once empty. */
static void srv_in_shrink(struct srv_http_conn *conn)
{
	if (srv_in_len(conn) > 0 || conn->in.cap <= SRV_HTTP_READ_BYTES)
		return;
	free(conn->in.data);
	conn->in = (struct srv_ibuf){ 0 };
}

static size_t srv_out_len(const struct srv_http_conn *conn)
{
	return evbuffer_get_length(conn->out);
}

/* ==== 3. new connections ============================================== */


static bool srv_addr_is_loopback(const struct sockaddr *sa)
{
	struct sockaddr_in sin;
	struct sockaddr_in6 sin6;

	switch (sa->sa_family) {
	case AF_UNIX:
		return true;
	case AF_INET:
		memcpy(&sin, sa, sizeof(sin));
		return ntohl(sin.sin_addr.s_addr) >> IN_CLASSA_NSHIFT ==
		       IN_LOOPBACKNET;
	case AF_INET6:
		memcpy(&sin6, sa, sizeof(sin6));
		if (IN6_IS_ADDR_LOOPBACK(&sin6.sin6_addr))
			return true;
		/* ::ffff:127.x.y.z: the first byte of the IPv4 part. */
		return IN6_IS_ADDR_V4MAPPED(&sin6.sin6_addr) &&
		       sin6.sin6_addr.s6_addr[12] == IN_LOOPBACKNET;
	default:
		return false;
	}
}

/* Small responses must not wait for Nagle's algorithm and delayed ACKs. */
static void srv_set_nodelay(evutil_socket_t fd, const struct sockaddr *sa)
{
	int one = 1;

	if (sa->sa_family != AF_INET && sa->sa_family != AF_INET6)
		return;
	/* Failure only costs latency; the connection still works. */
	(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

static void srv_conn_read_cb(evutil_socket_t fd, short what, void *arg);
static void srv_conn_write_cb(evutil_socket_t fd, short what, void *arg);
static int srv_conn_update_read(struct srv_http_conn *conn);

static void srv_conn_link(struct srv_http_conn *conn)
{
	struct srv_http_server *srv = conn->srv;

	conn->next = srv->conns;
	if (srv->conns)
		srv->conns->prev = conn;
	srv->conns = conn;
	srv->nconns++;
}

static void srv_conn_unlink(struct srv_http_conn *conn)
{
	struct srv_http_server *srv = conn->srv;

	if (conn->prev)
		conn->prev->next = conn->next;
	else
		srv->conns = conn->next;
	if (conn->next)
		conn->next->prev = conn->prev;
	srv->nconns--;
}

int srv_http_conn_new(struct srv_http_server *srv, evutil_socket_t fd,
			const struct sockaddr *sa, socklen_t salen)
{
	struct srv_http_limits lim = {
		.max_line_bytes = srv->opts.max_line_bytes,
		.max_header_bytes = srv->opts.max_header_bytes,
	};
	struct srv_http_conn *conn;
	int rc = -ENOMEM;

	conn = calloc(1, sizeof(*conn));
	if (!conn)
		goto out_close_fd;
	conn->srv = srv;
	conn->fd = fd;
	conn->loopback = srv_addr_is_loopback(sa);
	conn->req = srv_http_req_new(conn, sa, salen);
	if (!conn->req)
		goto out_free_conn;
	srv_http_parser_init(&conn->parser, &lim);
	srv_http_parser_start(&conn->parser, &conn->req->msg);
	conn->out = evbuffer_new();
	if (!conn->out)
		goto out_free_req;
	conn->rev = event_new(srv->base, fd, EV_READ | EV_PERSIST,
			      srv_conn_read_cb, conn);
	if (!conn->rev)
		goto out_free_out;
	conn->wev = event_new(srv->base, fd, EV_WRITE | EV_PERSIST,
			      srv_conn_write_cb, conn);
	if (!conn->wev)
		goto out_free_rev;
	srv_set_nodelay(fd, sa);
	rc = srv_conn_update_read(conn);
	if (rc != 0)
		goto out_free_wev;
	srv_conn_link(conn);
	return 0;

out_free_wev:
	event_free(conn->wev);
out_free_rev:
	event_free(conn->rev); /* deletes it if added */
out_free_out:
	evbuffer_free(conn->out);
out_free_req:
	srv_http_req_free(conn->req);
out_free_conn:
	free(conn);
out_close_fd:
	evutil_closesocket(fd);
	return rc;
}

void srv_http_log_response(struct srv_http_server *srv,
			   const struct srv_http_req *req, int status,
			   size_t bytes)
{
	uint64_t dur = 0;

	if (!srv->cb.logged)
		return;
	if (req->st.start_ns)
		dur = srv_now_ns() - req->st.start_ns;
	srv->cb.logged(req, status, bytes, dur, srv->arg);
}

/* ==== 4. requests ====================================================== */

/* A head is still arriving. This caps the whole head (a client sending
 * a byte now and then), like nginx's client_header_timeout; the read
 * event's timeout is set to the same deadline (srv_conn_update_read). */
static int srv_head_wait(struct srv_http_conn *conn)
{
	uint64_t now = srv_mono_ms();

	if (conn->deadline_ms == 0)
		conn->deadline_ms = now + (uint64_t)conn->srv->opts.read_timeout_ms;
	else if (now >= conn->deadline_ms)
		return SRV_HTTP_PE_HEAD_TIMEOUT;
	return SRV_AGAIN;
}

/* Starts a window of the body's timeout: by its end the body must have
 * brought min_rate x read_timeout bytes (or ended), as Apache's
 * mod_reqtimeout MinRate, but over fixed windows, so that bytes sent
 * early buy no time for a stall later. */
static void srv_body_window(struct srv_http_conn *conn, uint64_t now)
{
	const struct srv_http_opts *o = &conn->srv->opts;
	uint64_t need = (uint64_t)o->min_rate * (uint64_t)o->read_timeout_ms /
			SRV_HTTP_MS_PER_S;

	conn->deadline_ms = now + (uint64_t)o->read_timeout_ms;
	conn->window_rx = conn->rx;
	conn->window_need = need ? need : 1;
}

/* A body is still arriving: a window that brought its bytes starts the
 * next; one that ended without them is a 408. */
static int srv_body_wait(struct srv_http_conn *conn)
{
	uint64_t now = srv_mono_ms();

	if (conn->rx - conn->window_rx >= conn->window_need)
		srv_body_window(conn, now);
	else if (now >= conn->deadline_ms)
		return SRV_HTTP_PE_BODY_TIMEOUT;
	return SRV_AGAIN;
}

/* Reserves body memory so that the body of conn's request may have cap
 * bytes: SRV_OK, or SRV_HTTP_PE_BODY_MEMORY (a 503) when the server's
 * body memory would be passed (Retry-After is added to every 503). */
static int srv_body_charge(struct srv_http_conn *conn, size_t cap)
{
	struct srv_http_server *srv = conn->srv;
	struct srv_req_state *st = &conn->req->st;
	size_t more;

	if (cap <= st->body_charged)
		return SRV_OK;
	more = cap - st->body_charged;
	if (more > srv->opts.body_memory - srv->body_mem) {
		if (srv->opts.counters)
			srv_count_inc(&srv->opts.counters->body_refused);
		return SRV_HTTP_PE_BODY_MEMORY;
	}
	srv->body_mem += more;
	st->body_charged = cap;
	if (srv->opts.counters)
		srv_count_set(&srv->opts.counters->body_bytes, srv->body_mem);
	return SRV_OK;
}

/* The head is parsed: ask for the body limit (a larger Content-Length is
 * refused before any of the body is read), make room for the body, and
 * invite it with 100 if asked to. */
static int srv_conn_head(struct srv_http_conn *conn)
{
	static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
	struct srv_http_server *srv = conn->srv;
	struct srv_http_req *req = conn->req;
	const struct srv_http_msg *m = &req->msg;
	size_t cl = m->has_cl ? m->content_length : 0;
	int rc;

	if (srv->cb.body_limit)
		req->st.body_limit = srv->cb.body_limit(req, srv->arg);
	rc = srv_http_parse_body_limit(&conn->parser, req->st.body_limit);
	if (rc != 0)
		return rc;
	/* Reserved whole now, so that no body can be refused half way for
	 * want of memory another took meanwhile. */
	if (cl && (rc = srv_body_charge(conn, cl)) != SRV_OK)
		return rc;
	if (cl && srv_http_buf_reserve(&req->body, cl, cl) != 0)
		return SRV_HTTP_PE_NOMEM;
	srv_body_window(conn, srv_mono_ms());
	/* 9110 10.1.1: a client already sending the body needs no 100. */
	if (m->expect_continue && (cl || m->chunked) && srv_in_len(conn) == 0 &&
	    evbuffer_add(conn->out, cont, sizeof(cont) - 1) != 0)
		return SRV_HTTP_PE_NOMEM;
	return SRV_OK;
}

static int srv_conn_body(struct srv_http_conn *conn, const char *p, size_t n)
{
	struct srv_http_req *req = conn->req;
	struct srv_http_buf *b = &req->body;
	int rc;

	/* A chunked body reserves as it grows (a Content-Length one has). */
	if (b->len + n > b->cap &&
	    (rc = srv_body_charge(conn, srv_http_buf_grown_cap(b, b->len + n,
							      req->st.body_limit))) != SRV_OK)
		return rc;
	if (srv_http_buf_append(b, p, n, req->st.body_limit) != 0)
		return SRV_HTTP_PE_NOMEM;
	return SRV_OK;
}

static int srv_conn_dispatch(struct srv_http_conn *conn)
{
	struct srv_http_server *srv = conn->srv;
	struct srv_http_req *req = conn->req;

	conn->state = SRV_CONN_HANDLER;
	req->st.dispatched = true;
	srv->cb.handle(req, srv->arg);
	return SRV_OK;
}

/* Gives the buffered input to the parser once and acts on its answer. */
static int srv_conn_step(struct srv_http_conn *conn)
{
	struct srv_http_parser *p = &conn->parser;
	struct srv_http_span span = { 0 };
	size_t used;
	int rc;

	if (conn->state != SRV_CONN_READING)
		return SRV_AGAIN;
	if (!srv_http_parse_started(p)) {
		if (srv_in_len(conn) == 0)
			return SRV_AGAIN;
		/* Pipelining client not reading its responses: wait. */
		if (srv_out_len(conn) > SRV_HTTP_OUTPUT_HIGH_BYTES) {
			conn->out_blocked = true;
			return SRV_AGAIN;
		}
		if (conn->req->st.start_ns == 0 && conn->srv->cb.logged)
			conn->req->st.start_ns = srv_now_ns();
	}
	rc = srv_http_parse(p, srv_in_data(conn), srv_in_len(conn), &used, &span);
	if (rc == SRV_HTTP_PARSE_BODY)
		rc = srv_conn_body(conn, srv_in_data(conn) + span.off, span.len);
	else if (rc < 0)
		return rc;
	srv_in_drain(conn, used);
	switch (rc) {
	case SRV_HTTP_PARSE_AGAIN:
		return srv_http_parse_in_head(p) ? srv_head_wait(conn)
						 : srv_body_wait(conn);
	case SRV_HTTP_PARSE_HEAD:
		return srv_conn_head(conn);
	case SRV_HTTP_PARSE_DONE:
		return srv_conn_dispatch(conn);
	default: /* SRV_OK after a body span, or a refusal */
		return rc;
	}
}

/* Works through the buffered input until it runs out or a request waits
 * for its handler. Responses only queue up here; srv_conn_settle() writes
 * them, all pipelined ones in one writev. */
static void srv_conn_process(struct srv_http_conn *conn)
{
	int rc;

	do
		rc = srv_conn_step(conn);
	while (rc == SRV_OK);
	if (rc != SRV_AGAIN)
		srv_conn_fail(conn, rc);
}

/* Answers a request this layer refuses (rc: an SRV_HTTP_PE_* code),
 * and closes after it. */
static void srv_conn_fail(struct srv_http_conn *conn, int rc)
{
	const struct srv_req_state *st = &conn->req->st;
	const struct srv_http_refusal *r = srv_http_refusal(rc);
	const char *code = r->code, *msg = r->text;

	if (r->status == 413 && st->limit_code) {
		code = st->limit_code;
		msg = st->limit_msg;
	}
	conn->close_after = true;
	conn->linger = true;
	srv_http_send_error(conn->req, r->status, code, msg);
}

/* ==== 5. connection ==================================================== */

/* Room at the end of the input buffer for a read: moves the unparsed rest
 * to the front or grows the buffer when little is left. 0 if the buffer
 * holds input_high bytes (reading pauses) or cannot grow. */
static size_t srv_in_room(struct srv_http_conn *conn)
{
	struct srv_ibuf *b = &conn->in;
	size_t max = conn->srv->input_high, cap;
	char *data;

	if (b->cap - b->end >= SRV_HTTP_READ_MIN_BYTES)
		return b->cap - b->end;
	if (b->start > 0) {
		memmove(b->data, b->data + b->start, b->end - b->start);
		b->end -= b->start;
		b->start = 0;
	}
	if (b->cap - b->end >= SRV_HTTP_READ_MIN_BYTES || b->cap >= max)
		return b->cap - b->end;
	cap = b->cap ? b->cap * 2 : SRV_HTTP_READ_BYTES;
	if (cap > max)
		cap = max;
	data = realloc(b->data, cap);
	if (data) {
		b->data = data;
		b->cap = cap;
	}
	return b->cap - b->end;
}

/* A large Content-Length body with nothing buffered: read it straight
 * into the body, saving a copy of every byte. */
static bool srv_conn_reads_body(const struct srv_http_conn *conn)
{
	return conn->state == SRV_CONN_READING && srv_in_len(conn) == 0 &&
	       srv_http_parse_cl_left(&conn->parser) >= SRV_HTTP_DIRECT_READ_BYTES;
}

/* One read() per readiness: the poll is level-triggered, so what is left
 * is reported again. > 0 bytes read, 0 at EOF, -EAGAIN, or -errno. */
static ssize_t srv_conn_fill(struct srv_http_conn *conn)
{
	struct srv_http_buf *body = &conn->req->body;
	bool direct = srv_conn_reads_body(conn);
	size_t room = direct ? srv_http_parse_cl_left(&conn->parser)
			     : srv_in_room(conn);
	char *dst = direct ? body->data + body->len : conn->in.data + conn->in.end;
	ssize_t n;

	if (room == 0) /* full: srv_conn_update_read() stops reading */
		return srv_in_len(conn) >= conn->srv->input_high ? -EAGAIN
								  : -ENOMEM;
	/* The body buffer has room for the whole Content-Length. */
	assert(!direct || body->cap - body->len >= room);
	n = read(conn->fd, dst, room);
	if (n < 0)
		return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR
			       ? -EAGAIN
			       : -errno;
	conn->rx += (uint64_t)n;
	if (direct) {
		body->len += (size_t)n;
		srv_http_parse_skip_body(&conn->parser, (size_t)n);
	} else {
		conn->in.end += (size_t)n;
	}
	return n;
}

/* Starts a window of the send timeout: by its end the client must have
 * taken min_rate x send_timeout bytes of its responses (or all of them).
 * The rule of a body's windows, the other way: a client reading a byte
 * now and then does not hold a response, and what it pins, for ever. */
static void srv_send_window(struct srv_http_conn *conn, uint64_t now)
{
	conn->send_deadline_ms = now + (uint64_t)conn->srv->opts.send_timeout_ms;
	conn->send_window_tx = conn->tx;
}

/* A streamed response gets its next piece once the output runs low. */
static void srv_stream_pump(struct srv_http_conn *conn)
{
	struct srv_stream *st = &conn->req->stream;

	if (st->on && !st->scheduled && srv_out_len(conn) < SRV_HTTP_STREAM_LOW_BYTES)
		srv_http_stream_schedule(conn->req);
}

/* Writes what is queued with one writev; arms the write event only while
 * the socket buffer is full, with what is left of the send window as its
 * timeout. SRV_OK when all is written, SRV_AGAIN, or -errno when the
 * connection is dead. */
static int srv_conn_flush(struct srv_http_conn *conn)
{
	const struct srv_http_opts *o = &conn->srv->opts;
	uint64_t now, need, left;
	struct timeval tv;
	int n = 0;

	if (srv_out_len(conn) > 0 && (n = evbuffer_write(conn->out, conn->fd)) < 0) {
		int err = errno;

		if (err != EAGAIN && err != EWOULDBLOCK && err != EINTR)
			return -err;
		n = 0;
	}
	conn->tx += (uint64_t)n;
	srv_stream_pump(conn);
	if (srv_out_len(conn) == 0) {
		if (event_pending(conn->wev, EV_WRITE, NULL))
			event_del(conn->wev);
		conn->send_deadline_ms = 0;
		return SRV_OK;
	}
	now = srv_mono_ms();
	need = (uint64_t)o->min_rate * (uint64_t)o->send_timeout_ms / SRV_HTTP_MS_PER_S;
	if (conn->send_deadline_ms == 0 || conn->tx - conn->send_window_tx >= (need ? need : 1))
		srv_send_window(conn, now);
	left = conn->send_deadline_ms > now ? conn->send_deadline_ms - now : 1;
	tv = srv_ms_to_tv((int)left);
	if (event_add(conn->wev, &tv) != 0)
		return -EIO;
	return SRV_AGAIN;
}

static enum srv_tmo srv_conn_wanted_timeout(const struct srv_http_conn *conn)
{
	switch (conn->state) {
	case SRV_CONN_READING:
		return srv_http_parse_started(&conn->parser) || srv_in_len(conn)
			       ? SRV_TMO_READ
			       : SRV_TMO_IDLE;
	case SRV_CONN_LINGER:
		return SRV_TMO_LINGER;
	default:
		/* Handling: a timeout then is ignored; keep what is set. */
		return conn->tmo;
	}
}

/* Reads while there is room and the client may still send; re-adds the
 * read event only when its timeout must change: the keep-alive fast path
 * (whole request in one read, answered at once) changes nothing. Asks
 * libevent whether rev is added rather than keeping a flag: a kick runs
 * rev's persist closure, which re-adds a deleted rev behind our back. */
static int srv_conn_update_read(struct srv_http_conn *conn)
{
	struct srv_http_server *srv = conn->srv;
	bool want = !conn->peer_eof && conn->state != SRV_CONN_CLOSING &&
		    srv_in_len(conn) < srv->input_high;
	bool added = event_pending(conn->rev, EV_READ, NULL);
	enum srv_tmo tmo = srv_conn_wanted_timeout(conn);

	if (!want) {
		if (added)
			event_del(conn->rev);
		return 0;
	}
	/* A request with a deadline: the timeout is what is left of it
	 * (never more than read_timeout_ms), re-armed after each read, so a
	 * trickle of bytes does not push it out. */
	if (tmo == SRV_TMO_READ && conn->deadline_ms &&
	    conn->state == SRV_CONN_READING) {
		uint64_t now = srv_mono_ms(), left = 1;
		struct timeval tv;

		if (conn->deadline_ms > now)
			left = conn->deadline_ms - now;
		if (left > (uint64_t)srv->opts.read_timeout_ms)
			left = (uint64_t)srv->opts.read_timeout_ms;
		tv = srv_ms_to_tv((int)left);
		if (event_add(conn->rev, &tv) != 0)
			return -EIO;
		conn->tmo = tmo;
		return 0;
	}
	/* While stopping, a connection that just went idle must get the
	 * short grace timeout, not keep the long idle one. */
	if (added && tmo == conn->tmo &&
	    !(srv->shutting_down && tmo == SRV_TMO_IDLE))
		return 0;
	if (event_add(conn->rev, &srv->read_tv[tmo]) != 0)
		return -EIO;
	conn->tmo = tmo;
	return 0;
}

bool srv_http_conn_is_idle(const struct srv_http_conn *conn)
{
	return conn->state == SRV_CONN_READING && !conn->busy &&
	       !srv_http_parse_started(&conn->parser) &&
	       srv_in_len(conn) == 0 && srv_out_len(conn) == 0;
}

/* Half-closes and discards input for a while, so a client still sending
 * (the body we refused, more pipelined requests) reads our last response
 * instead of losing it to the reset a close with unread data causes. */
static void srv_conn_linger(struct srv_http_conn *conn)
{
	conn->in.start = conn->in.end = 0;
	if (shutdown(conn->fd, SHUT_WR) != 0) {
		srv_http_conn_free(conn);
		return;
	}
	conn->state = SRV_CONN_LINGER;
	conn->linger_until_ms = srv_now_ms(conn->srv) + SRV_HTTP_LINGER_TOTAL_MS;
	if (srv_conn_update_read(conn) != 0)
		srv_http_conn_free(conn);
}

static void srv_conn_linger_read(struct srv_http_conn *conn)
{
	conn->in.start = conn->in.end = 0;
	if (srv_now_ms(conn->srv) >= conn->linger_until_ms)
		srv_http_conn_free(conn);
}

/* The last response has been written. */
static void srv_conn_close(struct srv_http_conn *conn)
{
	bool more_input = conn->linger || srv_in_len(conn) > 0;

	if (!conn->broken && !conn->peer_eof && more_input)
		srv_conn_linger(conn);
	else
		srv_http_conn_free(conn);
}

/* The end of every callback of a connection, and of a response written
 * from outside them: write what was queued, then close, pause or go on
 * reading. Callers touch conn no more. */
static void srv_conn_settle(struct srv_http_conn *conn)
{
	int rc = srv_conn_flush(conn);

	/* The client caught up (a fast socket may take all at once, again
	 * and again: the input is finite). */
	while (rc == SRV_OK && conn->out_blocked) {
		conn->out_blocked = false;
		conn->busy = true;
		srv_conn_process(conn);
		conn->busy = false;
		rc = srv_conn_flush(conn);
	}
	/* A client that closed its side sends nothing more: what was
	 * received whole has been answered, a partial request is dropped,
	 * and logged and counted as a 400 (as nginx logs a body cut short),
	 * though no answer can reach the client. Nothing of it was applied. */
	if (conn->peer_eof && conn->state == SRV_CONN_READING &&
	    !conn->out_blocked) {
		if (srv_http_parse_started(&conn->parser))
			srv_http_log_response(conn->srv, conn->req, 400, 0);
		conn->state = SRV_CONN_CLOSING;
	}
	if (rc < 0 && rc != SRV_AGAIN) {
		srv_http_conn_free(conn);
	} else if (rc == SRV_OK && conn->state == SRV_CONN_CLOSING) {
		srv_conn_close(conn);
	} else if (srv_conn_update_read(conn) != 0) {
		srv_http_conn_free(conn);
	}
}

/* The client closed its side (or just its sending half: shutdown(SHUT_WR)
 * after its last request). A request received whole is answered all the
 * same, as nginx does, and so are complete pipelined ones behind it;
 * then the connection closes. If the client is gone for good, writing the
 * answer fails and frees the connection; the request was applied either
 * way. */
static void srv_conn_eof(struct srv_http_conn *conn)
{
	conn->peer_eof = true;
	switch (conn->state) {
	case SRV_CONN_LINGER:
		srv_http_conn_free(conn);
		return;
	case SRV_CONN_HANDLER:
		/* Stop reading; responding settles the connection. */
		if (srv_conn_update_read(conn) != 0)
			srv_http_conn_free(conn);
		return;
	default:
		srv_conn_settle(conn);
		return;
	}
}

/* No input for the current read timeout. */
static void srv_conn_timeout(struct srv_http_conn *conn)
{
	/* Output waiting means a client that does not read: the write
	 * timeout watches that. The deadline is checked at the next read;
	 * a full timeout meanwhile, so a passed one does not fire at once
	 * again and again. */
	if (srv_out_len(conn) > 0) {
		if (event_add(conn->rev, &conn->srv->read_tv[conn->tmo]) != 0)
			srv_http_conn_free(conn);
		return;
	}
	switch (conn->state) {
	case SRV_CONN_READING:
		if (!srv_http_parse_started(&conn->parser) &&
		    srv_in_len(conn) == 0) { /* idle keep-alive connection */
			srv_http_conn_free(conn);
			return;
		}
		break;
	case SRV_CONN_LINGER:
		srv_http_conn_free(conn);
		return;
	default: /* the handler is working: not the client's fault */
		/* The request's deadline may have left a short timeout on
		 * rev; a handler (a stream) may take minutes. */
		if (event_add(conn->rev, &conn->srv->read_tv[conn->tmo]) != 0)
			srv_http_conn_free(conn);
		return;
	}
	conn->busy = true;
	srv_conn_fail(conn, srv_http_parse_in_head(&conn->parser)
				? SRV_HTTP_PE_HEAD_TIMEOUT : SRV_HTTP_PE_BODY_TIMEOUT);
	conn->busy = false;
	srv_conn_settle(conn);
}

static void srv_conn_read_cb(evutil_socket_t fd, short what, void *arg)
{
	struct srv_http_conn *conn = arg;
	bool kicked = conn->kicked;
	ssize_t n;

	conn->kicked = false;
	if (what == EV_TIMEOUT && !kicked) {
		srv_conn_timeout(conn);
		return;
	}
	if (!kicked && !conn->peer_eof) {
		n = srv_conn_fill(conn);
		if (n == 0) {
			srv_conn_eof(conn);
			return;
		}
		if (n < 0 && n != -EAGAIN) {
			srv_http_conn_free(conn);
			return;
		}
	}
	if (conn->state == SRV_CONN_LINGER) {
		srv_conn_linger_read(conn);
		return;
	}
	conn->busy = true;
	srv_conn_process(conn);
	conn->busy = false;
	srv_conn_settle(conn);
}

static void srv_conn_write_cb(evutil_socket_t fd, short what, void *arg)
{
	struct srv_http_conn *conn = arg;

	if (what == EV_TIMEOUT) { /* not taking its responses */
		if (conn->srv->opts.counters)
			srv_count_inc(&conn->srv->opts.counters->send_timeouts);
		srv_http_conn_free(conn);
		return;
	}
	srv_conn_settle(conn);
}

/* Has the read callback run in the next loop iteration, without reading,
 * to parse what is buffered. */
static void srv_conn_kick(struct srv_http_conn *conn)
{
	conn->kicked = true;
	event_active(conn->rev, EV_READ, 1);
}

/* Once shut down and empty, done() runs from the loop: never from inside
 * srv_http_server_shutdown() or a respond call, whose callers would not
 * expect the server to be gone when they return. */
void srv_http_server_maybe_done(struct srv_http_server *srv)
{
	if (!srv->shutting_down || srv->nconns || !srv->done ||
	    srv->done_queued)
		return;
	srv->done_queued = true;
	event_active(srv->done_ev, EV_TIMEOUT, 1);
}

void srv_http_conn_free(struct srv_http_conn *conn)
{
	struct srv_http_server *srv = conn->srv;

	if (conn->state == SRV_CONN_HANDLER) {
		srv_http_req_orphan(conn->req); /* the handler still holds it */
		/* A stream's producer hears of it through more(). */
		if (conn->req->stream.on && !conn->req->stream.scheduled)
			srv_http_stream_schedule(conn->req);
	} else {
		srv_http_req_free(conn->req);
	}
	srv_conn_unlink(conn);
	if (srv->conn_closed)
		srv->conn_closed(srv);
	event_free(conn->rev);
	event_free(conn->wev);
	/* Reference bodies still queued get their release now. */
	evbuffer_free(conn->out);
	evutil_closesocket(conn->fd);
	free(conn->in.data);
	free(conn);
	srv_http_server_maybe_done(srv);
}

/* ==== 6. after a response ============================================== */

bool srv_http_conn_must_close(const struct srv_http_conn *conn)
{
	return !conn->req->msg.keep_alive || conn->close_after ||
	       conn->srv->shutting_down;
}

/* A response from outside the connection's callbacks (the commit queue,
 * a timer, another connection's handler): it leaves now, in the loop turn
 * that produced it. Input buffered behind it is parsed from a callback
 * of this connection's own, in the next turn. */
static void srv_conn_resume(struct srv_http_conn *conn)
{
	if (conn->state == SRV_CONN_READING && srv_in_len(conn) > 0) {
		int rc = srv_conn_flush(conn);

		if (rc < 0 && rc != SRV_AGAIN) {
			srv_http_conn_free(conn);
			return;
		}
		srv_conn_kick(conn);
		return;
	}
	srv_conn_settle(conn);
}

static void srv_conn_responded(struct srv_http_conn *conn, bool closing)
{
	if (closing) {
		conn->state = SRV_CONN_CLOSING;
	} else {
		srv_http_req_reset(conn->req);
		srv_http_parser_start(&conn->parser, &conn->req->msg);
		srv_in_shrink(conn);
		conn->deadline_ms = 0;
		conn->state = SRV_CONN_READING;
	}
	if (!conn->busy)
		srv_conn_resume(conn);
}

/* Runs a stream's more() from the loop: never nested in the producer's
 * own calls, and one piece per loop turn, so a long body leaves the
 * other connections their turns. */
static void srv_stream_cb(evutil_socket_t fd, short what, void *arg)
{
	struct srv_http_req *req = arg;

	req->stream.scheduled = false;
	req->stream.more(req, req->stream.arg); /* may release req */
}

int srv_http_stream_prepare(struct srv_http_req *req)
{
	req->stream.ev = event_new(req->srv->base, -1, 0, srv_stream_cb, req);
	return req->stream.ev ? 0 : -ENOMEM;
}

void srv_http_stream_schedule(struct srv_http_req *req)
{
	req->stream.scheduled = true;
	event_active(req->stream.ev, EV_TIMEOUT, 1);
}

void srv_http_stream_kick(struct srv_http_req *req)
{
	struct srv_stream *st = &req->stream;

	if (!st->on || st->scheduled)
		return;
	/* with output waiting, the drain asks for more itself */
	if (req->conn && srv_out_len(req->conn) >= SRV_HTTP_STREAM_LOW_BYTES)
		return;
	srv_http_stream_schedule(req);
}

void srv_http_conn_flush_now(struct srv_http_conn *conn)
{
	if (!conn->busy)
		srv_conn_settle(conn);
}

/* ==== 7. sending a response =========================================== */

int srv_http_conn_queue_head(struct srv_http_conn *conn, int status,
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
			       !srv_http_extra_has_retry_after(&req->extra),
	};
	char *p;

	if (evbuffer_reserve_space(conn->out, (ev_ssize_t)need, &v, 1) != 1)
		return -ENOMEM;
	p = srv_http_format_head(v.iov_base, &h);
	if (copy) {
		memcpy(p, b->data, copy);
		p += copy;
	}
	v.iov_len = (size_t)(p - (char *)v.iov_base);
	return evbuffer_commit_space(conn->out, &v, 1) == 0 ? 0 : -ENOMEM;
}

void srv_http_body_release(const struct srv_body *b)
{
	if (b->release)
		b->release(b->data, b->len, b->release_arg);
}

void srv_http_send(struct srv_http_req *req, int status, const char *ctype,
		   const struct srv_body *b)
{
	struct srv_http_conn *conn = req->conn;
	bool bodyless, closing, handed_over = false;
	size_t sent;
	int rc;

	if (!conn) { /* orphaned: its connection died meanwhile */
		srv_http_body_release(b);
		srv_http_req_free(req);
		return;
	}
	status = srv_http_status_sendable(status);
	bodyless = status == 204 || status == 304;
	sent = bodyless || req->msg.method == SRV_HTTP_HEAD ? 0 : b->len;
	closing = srv_http_conn_must_close(conn);
	rc = srv_http_conn_queue_head(conn, status, ctype, bodyless ? NULL : b, sent,
			    closing, false);
	if (rc == 0 && sent && !b->copy) {
		rc = evbuffer_add_reference(conn->out, b->data, sent,
					    b->release, b->release_arg);
		handed_over = rc == 0;
	}
	if (!handed_over)
		srv_http_body_release(b);
	if (rc != 0) { /* the response is cut short: end the connection */
		conn->broken = true;
		closing = true;
	}
	srv_http_conn_finish(req, status, rc == 0 ? sent : 0, closing);
}

void srv_http_send_error(struct srv_http_req *req, int status,
			 const char *code, const char *msg)
{
	char body[SRV_HTTP_ERROR_BODY_BYTES];
	struct srv_body b = { .data = body, .copy = true };

	b.len = srv_http_json_error(body, sizeof(body), code ? code : "error",
				    msg ? msg : "");
	srv_http_send(req, status, "application/json", &b);
}

void srv_http_conn_finish(struct srv_http_req *req, int status, size_t bytes,
			  bool closing)
{
	struct srv_http_conn *conn = req->conn;

	req->st.dispatched = false;
	srv_http_log_response(conn->srv, req, status, bytes);
	srv_conn_responded(conn, closing);
}


void srv_http_conn_timeouts(struct srv_http_server *srv)
{
	srv->read_tv[SRV_TMO_IDLE] = srv_ms_to_tv(srv->opts.idle_timeout_ms);
	srv->read_tv[SRV_TMO_READ] = srv_ms_to_tv(srv->opts.read_timeout_ms);
	srv->read_tv[SRV_TMO_LINGER] = srv_ms_to_tv(SRV_HTTP_LINGER_READ_MS);
	srv->input_high = SRV_HTTP_INPUT_HIGH_BYTES;
}


