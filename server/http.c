/* server/http.c — caskd's HTTP/1.1 server layer (API and contract in
 * server/http.h).
 *
 * Owns: the listeners of one worker, every client connection of that
 * worker (struct srv_http_conn), the request parser (RFC 9112) and the
 * response writer. Everything runs on the worker's one event loop thread;
 * nothing here is thread-safe.
 *
 * Why not bufferevents: per request they cost an ioctl(FIONREAD) before
 * each read and an epoll_ctl pair to arm and disarm the write event. Here
 * a connection reads with one read() into its own linear buffer (parsed
 * in place, no pullups) and writes its responses with one writev() at the
 * end of the callback that produced them; the write event is armed only
 * when the socket buffer is full. Steady keep-alive traffic costs read,
 * writev and a share of epoll_wait per request, nothing else.
 *
 * Invariants:
 *  - A connection works on one request at a time (conn->req). The next
 *    pipelined request is parsed only after the current one was answered,
 *    so responses leave in order; the socket is still read meanwhile, up
 *    to srv->input_high bytes.
 *  - A request handed to the handler (state SRV_CONN_HANDLER) belongs to
 *    the handler until it responds. If the connection dies first, the
 *    request is orphaned (req->conn == NULL) and responding frees it.
 *    Otherwise responding resets the request for reuse by the next request
 *    of the connection: no allocation per request once buffers are sized.
 *  - A connection is freed only at the end of its own event callbacks
 *    (srv_conn_settle and the error paths next to it), by shutdown (idle
 *    ones only) or by srv_http_server_free; never while one of its
 *    callbacks is on the stack (conn->busy), so handlers may call
 *    srv_http_server_shutdown(). Responses queued from elsewhere (async)
 *    "kick" the connection: its read callback runs in the next loop
 *    iteration, without reading, to flush and go on.
 *  - Parse errors, 408, 413 etc. are answered with a JSON error and
 *    Connection: close; the connection then half-closes and discards input
 *    for a moment (lingering close) so the client reads the error instead
 *    of a TCP reset.
 *
 * Map of this file:
 *   1. constants and structures
 *   2. helpers: clocks, the cached Date, growable buffers, request objects
 *   3. accept: listeners, accept backoff, new connections, 503 at the limit
 *   4. parse: finding the head in the input, request line, header fields
 *   5. body: framing, body limit, 100-continue, Content-Length, chunked
 *   6. connection: reading, input loop, writing, timeouts, closing
 *   7. respond: head formatting, the response writer, public respond calls
 *   8. request accessors
 *   9. server lifecycle: new, shutdown, free
 */
#include "server/http.h"
#include "server/log.h"

#include <assert.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <event2/util.h>

/* ==== 1. constants and structures ====================================== */

/* Defaults, as documented in http.h. */
#define SRV_HTTP_DEFAULT_LINE_BYTES   (8u * 1024)
#define SRV_HTTP_DEFAULT_HEADER_BYTES (16u * 1024)
#define SRV_HTTP_DEFAULT_MAX_CONNS    1024
#define SRV_HTTP_DEFAULT_IDLE_MS      60000
#define SRV_HTTP_DEFAULT_READ_MS      30000
/* On a graceful stop an idle keep-alive connection gets this long to send
 * one more request (answered with Connection: close) before it is closed:
 * closing it at once races with a request already on the wire, which the
 * client then sees fail (reload drills count exactly that). */
#define SRV_HTTP_SHUTDOWN_GRACE_MS    1000

/* Header fields per request; more get 431. Browsers send about 20; the
 * cap sizes the field table inside every request object. */
#define SRV_HTTP_MAX_FIELDS 100
/* Empty lines ignored before a request line: RFC 9112 2.2 asks servers to
 * skip at least one (some clients send CRLF after a POST body). */
#define SRV_HTTP_MAX_EMPTY_LINES 4
/* What the head scan may need beyond the two size limits: skipped empty
 * lines, line terminators, and a byte to see that a limit is exceeded. */
#define SRV_HTTP_HEAD_SLACK_BYTES 64
/* A chunk-size line (extensions included) longer than this: 400. */
#define SRV_HTTP_MAX_CHUNK_LINE_BYTES 4096
/* CR LF. */
#define SRV_HTTP_EOL_BYTES 2
/* Input buffered while a request is handled (pipelining); reading pauses
 * beyond it. Raised to the largest possible head if that is bigger. */
#define SRV_HTTP_INPUT_HIGH_BYTES (64u * 1024)
/* First size of a connection's input buffer: one read takes in many
 * pipelined requests, and libevent reads at most this much, too. */
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
/* Request buffers above this size are freed after their request instead
 * of being kept for the next request of the connection. */
#define SRV_HTTP_KEEP_BUF_BYTES (64u * 1024)
/* First size of a request buffer: a typical head is 100-500 bytes. */
#define SRV_HTTP_BUF_INIT_BYTES 1024
/* Bound of a response's status line plus the headers this layer writes
 * itself, without Content-Type and added headers: status line 46, Server
 * 15, Date 37, Content-Length 38, "Content-Type: " + CRLF 16,
 * "Connection: keep-alive" + CRLF 24, final CRLF 2 = 178. */
#define SRV_HTTP_HEAD_FIXED_BYTES 256
/* JSON error bodies are built on the stack; longer messages are cut. */
#define SRV_HTTP_ERROR_BODY_BYTES 1024
/* "Sun, 06 Nov 1994 08:49:37 GMT" plus NUL (RFC 9110 5.6.7). */
#define SRV_HTTP_DATE_BYTES 30
/* Lingering close: how long a half-closed connection may stay silent,
 * and how long it may keep sending, before it is closed for good. */
#define SRV_HTTP_LINGER_READ_MS  1000
#define SRV_HTTP_LINGER_TOTAL_MS 5000
/* Accept failures like EMFILE pause accepting this long instead of
 * spinning on a listener that stays readable... */
#define SRV_HTTP_ACCEPT_PAUSE_MS 100
/* ...and warnings are printed at most this often. */
#define SRV_HTTP_WARN_INTERVAL_S 60
/* Bytes drained from a connection refused with 503 before closing it:
 * closing with unread input makes the kernel send a reset, which can
 * destroy the 503 before the client reads it. */
#define SRV_HTTP_REFUSE_DRAIN_BYTES 4096
/* Statuses a handler may respond with; others are sent as 500. */
#define SRV_HTTP_STATUS_MIN 200
#define SRV_HTTP_STATUS_MAX 599
/* Parse steps return an HTTP status from here up to refuse a request. */
#define SRV_HTTP_ERROR_MIN 400
/* Bits per hexadecimal digit of a chunk size. */
#define SRV_HTTP_HEX_BITS 4

#define SRV_HTTP_MS_PER_S  1000u
#define SRV_HTTP_US_PER_MS 1000u
#define SRV_HTTP_NS_PER_S  1000000000ull
#define SRV_HTTP_NS_PER_US 1000u

/* Parse steps return one of these, or an HTTP status >= 400 to answer
 * with (the message is left in conn->err_msg). */
enum {
	SRV_OK = 0,       /* step done, go on */
	SRV_AGAIN = 1,    /* need more input (or must wait) */
	SRV_TOO_LONG = 2, /* srv_peek_line: no line end within the limit */
};

enum srv_conn_state {
	SRV_CONN_HEAD,    /* reading a request line and header fields */
	SRV_CONN_BODY,    /* reading the body */
	SRV_CONN_HANDLER, /* the handler has the request */
	SRV_CONN_CLOSING, /* the last response is being written */
	SRV_CONN_LINGER,  /* written and half-closed; discarding input */
};

enum srv_chunk_state {
	SRV_CHUNK_SIZE,     /* expecting a chunk-size line */
	SRV_CHUNK_DATA,     /* inside chunk data */
	SRV_CHUNK_DATA_END, /* expecting the CRLF after chunk data */
	SRV_CHUNK_TRAILER,  /* after the last chunk: trailer lines */
	SRV_CHUNK_DONE,
};

/* Which read timeout a connection has; index into srv->read_tv. */
enum srv_tmo {
	SRV_TMO_IDLE,   /* between requests; also while handling (ignored) */
	SRV_TMO_READ,   /* a request is arriving */
	SRV_TMO_LINGER, /* lingering close */
	SRV_TMO_COUNT,
};

enum srv_te { SRV_TE_NONE, SRV_TE_CHUNKED, SRV_TE_OTHER };
enum srv_expect { SRV_EXPECT_NONE, SRV_EXPECT_CONTINUE, SRV_EXPECT_OTHER };

struct srv_http_buf {
	char *data;
	size_t len;
	size_t cap;
};

/* A connection's input: bytes [start, end) of data are unparsed. */
struct srv_ibuf {
	char *data;
	size_t start;
	size_t end;
	size_t cap;
};

struct srv_http_field {
	const char *name;  /* NUL-terminated, inside req->head */
	const char *value; /* trimmed, NUL-terminated, inside req->head */
};

/* What one request says about itself; reset between requests. */
struct srv_req_state {
	const char *limit_code; /* the 413 of srv_http_req_limit_error() */
	const char *limit_msg;
	enum srv_http_method method;
	const char *method_str; /* "-" until the request line parsed */
	const char *path;       /* "-" until the request line parsed */
	const char *query;
	int minor;              /* HTTP/1.<minor> */
	int nfields;
	int hosts;              /* Host fields seen */
	size_t content_length;
	size_t body_limit;
	uint64_t start_ns;      /* CLOCK_MONOTONIC at the first byte; 0 unset */
	enum srv_te te;
	enum srv_expect expect;
	bool has_cl;
	bool is_head;
	bool conn_close;        /* Connection: close */
	bool conn_keep;         /* Connection: keep-alive */
	bool keep_alive;        /* decided after the fields */
	bool dispatched;        /* given to the handler, not yet responded */
};

struct srv_http_req {
	struct srv_http_conn *conn; /* NULL once orphaned */
	bool loopback;              /* copied from the connection */
	struct srv_req_state st;
	struct srv_http_buf head;   /* request line and fields, NULs inside */
	struct srv_http_buf body;
	struct srv_http_buf extra;  /* "Name: value\r\n" from add_header */
	struct srv_http_field fields[SRV_HTTP_MAX_FIELDS];
};

/* Progress of the head scan, kept across reads so a head that trickles in
 * is scanned once. Offsets from the start of the unparsed input, which
 * stays put until the head is complete. */
struct srv_head_scan {
	size_t line;     /* start of the first line not yet terminated */
	size_t rl_start; /* start of the request line (after empty lines) */
	size_t rl_end;   /* just past the request line's LF; 0 while unseen */
	int empty_lines;
	int fields;
	uint64_t deadline_ms; /* the head must be complete by then; 0 unset */
};

struct srv_http_conn {
	struct srv_http_server *srv;
	struct srv_http_conn *prev, *next; /* srv->conns */
	evutil_socket_t fd;
	struct event *rev;    /* EV_READ|EV_PERSIST, with the read timeout */
	struct event *wev;    /* EV_WRITE|EV_PERSIST, armed while blocked */
	struct srv_ibuf in;
	struct evbuffer *out; /* responses not yet written */
	struct srv_http_req *req;          /* never NULL while the conn lives */
	enum srv_conn_state state;
	struct srv_head_scan scan;
	enum srv_chunk_state chunk;
	size_t body_left;     /* Content-Length, or the current chunk, to go */
	size_t trailer_bytes;
	enum srv_tmo tmo;     /* the timeout rev was added with */
	const char *err_msg;  /* message for the status a parse step returned */
	uint64_t linger_until_ms;
	bool loopback;
	bool busy;            /* one of its callbacks is on the stack */
	bool kicked;          /* rev made active to flush and go on, not read */
	bool out_blocked;     /* parsing waits for the output to drain */
	bool close_after;     /* the response now being sent is the last */
	bool linger;          /* input may follow the last response */
	bool peer_eof;        /* the client closed its side */
	bool broken;          /* a response could not be queued completely */
};

struct srv_http_server {
	struct event_base *base;
	struct srv_http_opts opts;
	struct srv_http_callbacks cb;
	void *arg;
	struct evconnlistener **lev;
	int nlev;
	struct event *accept_resume; /* re-enables accepting after a pause */
	struct event *done_ev;       /* runs done() from the loop */
	struct srv_http_conn *conns;
	int nconns;
	size_t head_max;             /* bytes a head scan may need */
	size_t input_high;
	struct timeval read_tv[SRV_TMO_COUNT];
	struct timeval write_tv;
	bool shutting_down;
	bool done_queued;
	void (*done)(void *arg);
	void *done_arg;
	time_t warned_at;
	time_t date_sec;
	char date[SRV_HTTP_DATE_BYTES];
	struct srv_http_req blank;   /* "-" request, for logging refusals */
};

/* A response body: copied into the output, or referenced until sent. */
struct srv_body {
	const void *data;
	size_t len;
	bool copy;
	void (*release)(const void *body, size_t len, void *release_arg);
	void *release_arg;
};

/* Everything the status line and fixed headers of a response need. */
struct srv_head {
	int status;
	const char *date;
	bool has_length;
	size_t length;
	const char *ctype; /* NULL: no Content-Type */
	const char *extra; /* added headers, CRLF-terminated */
	size_t extra_len;
	const char *connection; /* NULL: no Connection header */
};

static void srv_conn_process(struct srv_http_conn *conn);
static void srv_conn_free(struct srv_http_conn *conn);
static void srv_conn_fail(struct srv_http_conn *conn, int status,
			  const char *msg);
static void srv_send(struct srv_http_req *req, int status, const char *ctype,
		     const struct srv_body *b);
static char *srv_format_head(char *p, const struct srv_head *h);
static size_t srv_json_error(char *dst, size_t cap, const char *code,
			     const char *msg);

/* ==== 2. helpers ======================================================= */

static uint64_t srv_now_ns(void)
{
	struct timespec ts;

	/* vDSO on Linux: no system call per request. */
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * SRV_HTTP_NS_PER_S + (uint64_t)ts.tv_nsec;
}

/* Wall time as of this loop iteration: libevent caches it, so timeouts
 * and the Date header cost no system call. */
static struct timeval srv_loop_time(struct srv_http_server *srv)
{
	struct timeval tv;

	if (event_base_gettimeofday_cached(srv->base, &tv) != 0) {
		tv.tv_sec = time(NULL);
		tv.tv_usec = 0;
	}
	return tv;
}

static uint64_t srv_now_ms(struct srv_http_server *srv)
{
	struct timeval tv = srv_loop_time(srv);

	return (uint64_t)tv.tv_sec * SRV_HTTP_MS_PER_S +
	       (uint64_t)tv.tv_usec / SRV_HTTP_US_PER_MS;
}

static struct timeval srv_ms_to_tv(int ms)
{
	struct timeval tv = {
		.tv_sec = ms / (int)SRV_HTTP_MS_PER_S,
		.tv_usec = (ms % (int)SRV_HTTP_MS_PER_S) * (int)SRV_HTTP_US_PER_MS,
	};
	return tv;
}

/* The IMF-fixdate of RFC 9110, formatted by hand: strftime follows the
 * locale. Reformatted once a second at most. */
static const char *srv_date(struct srv_http_server *srv)
{
	static const char wday[][4] = { "Sun", "Mon", "Tue", "Wed", "Thu",
					"Fri", "Sat" };
	static const char mon[][4] = { "Jan", "Feb", "Mar", "Apr", "May",
				       "Jun", "Jul", "Aug", "Sep", "Oct",
				       "Nov", "Dec" };
	struct timeval tv = srv_loop_time(srv);
	struct tm tm;

	if (tv.tv_sec == srv->date_sec)
		return srv->date;
	if (!gmtime_r(&tv.tv_sec, &tm))
		return srv->date;
	snprintf(srv->date, sizeof(srv->date),
		 "%s, %02d %s %04d %02d:%02d:%02d GMT", wday[tm.tm_wday % 7],
		 tm.tm_mday % 100, mon[tm.tm_mon % 12],
		 (tm.tm_year + 1900) % 10000, tm.tm_hour % 100,
		 tm.tm_min % 100, tm.tm_sec % 100);
	srv->date_sec = tv.tv_sec;
	return srv->date;
}

/* Warnings from hot paths (accept failures) are rate-limited: one per
 * SRV_HTTP_WARN_INTERVAL_S says enough. */
static bool srv_may_warn(struct srv_http_server *srv)
{
	time_t now = srv_loop_time(srv).tv_sec;

	if (srv->warned_at && now - srv->warned_at < SRV_HTTP_WARN_INTERVAL_S)
		return false;
	srv->warned_at = now;
	return true;
}

/* Makes room for need bytes, growing by doubling up to max (need <= max
 * is the caller's business; max bounds only the doubling). */
static int srv_buf_reserve(struct srv_http_buf *b, size_t need, size_t max)
{
	size_t cap;
	char *data;

	if (need <= b->cap)
		return 0;
	cap = b->cap > max / 2 ? max : b->cap * 2;
	if (cap < SRV_HTTP_BUF_INIT_BYTES && SRV_HTTP_BUF_INIT_BYTES <= max)
		cap = SRV_HTTP_BUF_INIT_BYTES;
	if (cap < need)
		cap = need;
	data = realloc(b->data, cap);
	if (!data)
		return -ENOMEM;
	b->data = data;
	b->cap = cap;
	return 0;
}

/* Empties b, giving its memory back if it grew large for one request. */
static void srv_buf_reset(struct srv_http_buf *b)
{
	b->len = 0;
	if (b->cap <= SRV_HTTP_KEEP_BUF_BYTES)
		return;
	free(b->data);
	b->data = NULL;
	b->cap = 0;
}

static void srv_req_reset(struct srv_http_req *req)
{
	srv_buf_reset(&req->head);
	srv_buf_reset(&req->body);
	srv_buf_reset(&req->extra);
	req->st = (struct srv_req_state){
		.method = SRV_HTTP_OTHER,
		.method_str = "-",
		.path = "-",
		.minor = 1,
		.body_limit = SIZE_MAX,
	};
}

static struct srv_http_req *srv_req_new(struct srv_http_conn *conn)
{
	struct srv_http_req *req = calloc(1, sizeof(*req));

	if (!req)
		return NULL;
	req->conn = conn;
	req->loopback = conn->loopback;
	srv_req_reset(req);
	return req;
}

static void srv_req_free(struct srv_http_req *req)
{
	free(req->head.data);
	free(req->body.data);
	free(req->extra.data);
	free(req);
}

/* Sets conn->err_msg and hands the status back, for parse steps. */
static int srv_reject(struct srv_http_conn *conn, int status, const char *msg)
{
	conn->err_msg = msg;
	return status;
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

static size_t srv_out_len(const struct srv_http_conn *conn)
{
	return evbuffer_get_length(conn->out);
}

/* ==== 3. accept ======================================================== */

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

/* Takes ownership of fd (already non-blocking: the listener accepts so):
 * on failure it is closed. */
static int srv_conn_new(struct srv_http_server *srv, evutil_socket_t fd,
			const struct sockaddr *sa)
{
	struct srv_http_conn *conn;
	int rc = -ENOMEM;

	conn = calloc(1, sizeof(*conn));
	if (!conn)
		goto out_close_fd;
	conn->srv = srv;
	conn->fd = fd;
	conn->loopback = srv_addr_is_loopback(sa);
	conn->req = srv_req_new(conn);
	if (!conn->req)
		goto out_free_conn;
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
	srv_req_free(conn->req);
out_free_conn:
	free(conn);
out_close_fd:
	evutil_closesocket(fd);
	return rc;
}

static void srv_log_response(struct srv_http_server *srv,
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

/* Over max_conns: answer 503 straight from the stack and close, without
 * allocating anything for a connection we cannot afford. */
static void srv_refuse(struct srv_http_server *srv, evutil_socket_t fd)
{
	char body[SRV_HTTP_ERROR_BODY_BYTES];
	char resp[SRV_HTTP_HEAD_FIXED_BYTES + sizeof("application/json") +
		  SRV_HTTP_ERROR_BODY_BYTES];
	char sink[SRV_HTTP_REFUSE_DRAIN_BYTES];
	size_t blen = srv_json_error(body, sizeof(body), "service_unavailable",
				     "too many open connections, retry later");
	struct srv_head h = {
		.status = 503,
		.date = srv_date(srv),
		.has_length = true,
		.length = blen,
		.ctype = "application/json",
		.connection = "close",
	};
	char *p = srv_format_head(resp, &h);

	memcpy(p, body, blen);
	p += blen;
	srv_log_response(srv, &srv->blank, 503, blen);
	/* Best effort on a fresh socket: its send buffer is empty. */
	if (recv(fd, sink, sizeof(sink), MSG_DONTWAIT) < 0) {
		/* nothing arrived yet: fine */
	}
	if (send(fd, resp, (size_t)(p - resp), MSG_DONTWAIT | MSG_NOSIGNAL) < 0) {
		/* the client is gone already */
	}
	evutil_closesocket(fd);
}

static void srv_listeners_enable(struct srv_http_server *srv, bool on);

static void srv_accept_cb(struct evconnlistener *lev, evutil_socket_t fd,
			  struct sockaddr *sa, int salen, void *arg)
{
	struct srv_http_server *srv = arg;
	int rc;

	if (srv->nconns >= srv->opts.max_conns) {
		srv_refuse(srv, fd);
		return;
	}
	rc = srv_conn_new(srv, fd, sa);
	if (rc != 0 && srv_may_warn(srv))
		srv_warn("http: dropped a new connection: setting it up "
			 "failed: %s", strerror(-rc));
	if (srv->cb.accept_pause_ms) {
		int ms = srv->cb.accept_pause_ms(srv->nconns, srv->arg);
		if (ms > 0) {
			struct timeval delay = srv_ms_to_tv(ms);
			srv_listeners_enable(srv, false);
			evtimer_add(srv->accept_resume, &delay);
		}
	}
}

static void srv_listeners_enable(struct srv_http_server *srv, bool on)
{
	for (int i = 0; i < srv->nlev; i++) {
		if (!srv->lev[i])
			continue;
		if (on)
			evconnlistener_enable(srv->lev[i]);
		else
			evconnlistener_disable(srv->lev[i]);
	}
}

/* accept() failed for another reason than "someone else took it" (libevent
 * filters EAGAIN, EINTR and ECONNABORTED). EMFILE and friends leave the
 * listener readable, so accepting again at once would spin: pause. */
static void srv_accept_error_cb(struct evconnlistener *lev, void *arg)
{
	struct srv_http_server *srv = arg;
	int err = EVUTIL_SOCKET_ERROR();
	struct timeval delay = srv_ms_to_tv(SRV_HTTP_ACCEPT_PAUSE_MS);

	srv_listeners_enable(srv, false);
	evtimer_add(srv->accept_resume, &delay);
	if (srv_may_warn(srv))
		srv_warn("http: accept() failed: %s; pausing accepts for %d ms "
			 "(for EMFILE raise the open-file limit or lower "
			 "--max-conns)", strerror(err), SRV_HTTP_ACCEPT_PAUSE_MS);
}

static void srv_accept_resume_cb(evutil_socket_t fd, short what, void *arg)
{
	struct srv_http_server *srv = arg;

	if (!srv->shutting_down)
		srv_listeners_enable(srv, true);
}

static void srv_listeners_free(struct srv_http_server *srv)
{
	for (int i = 0; i < srv->nlev; i++) {
		/* Without LEV_OPT_CLOSE_ON_FREE: the fd stays open for the
		 * other workers and the master. */
		if (srv->lev[i])
			evconnlistener_free(srv->lev[i]);
		srv->lev[i] = NULL;
	}
	if (srv->accept_resume)
		evtimer_del(srv->accept_resume);
}

/* ==== 4. parse ========================================================= */

/* RFC 9110 5.6.2 tchar. */
static bool srv_is_tchar(unsigned char c)
{
	if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	    (c >= '0' && c <= '9'))
		return true;
	return c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

/* Field value bytes (RFC 9110 5.5): VCHAR, SP, HTAB and obs-text. */
static bool srv_is_value_char(unsigned char c)
{
	return c == '\t' || (c >= ' ' && c != 0x7f);
}

/* Request-target bytes: anything visible. Bytes >= 0x80 pass (clients
 * send raw UTF-8); the router percent-decodes and validates keys. */
static bool srv_is_target_char(unsigned char c)
{
	return c > ' ' && c != 0x7f;
}

static bool srv_is_ws(char c)
{
	return c == ' ' || c == '\t';
}

static int srv_hex_value(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Length of a line without its LF and an optional CR before it. */
static size_t srv_line_len(const char *line, size_t with_eol)
{
	size_t len = with_eol - 1;

	if (len > 0 && line[len - 1] == '\r')
		len--;
	return len;
}

/* Case-insensitive match of a field name against a lowercase literal. */
static bool srv_name_is(const char *name, size_t len, const char *lit)
{
	return len == strlen(lit) && strncasecmp(name, lit, len) == 0;
}

/* Looks for the empty line ending the head in p[0..n). Returns SRV_OK with
 * *head_len, SRV_AGAIN, or 400/414/431. */
static int srv_scan_head(struct srv_http_conn *conn, const char *p, size_t n,
			 size_t *head_len)
{
	const struct srv_http_opts *o = &conn->srv->opts;
	struct srv_head_scan *s = &conn->scan;
	const char *nl;

	while ((nl = memchr(p + s->line, '\n', n - s->line)) != NULL) {
		size_t start = s->line, end = (size_t)(nl - p) + 1;
		size_t len = srv_line_len(p + start, end - start);

		s->line = end;
		if (s->rl_end == 0 && len == 0) {
			if (++s->empty_lines > SRV_HTTP_MAX_EMPTY_LINES)
				return srv_reject(conn, 400, "empty lines instead of a request");
			s->rl_start = end;
		} else if (s->rl_end == 0) {
			if (len > o->max_line_bytes)
				return srv_reject(conn, 414, "request line too long");
			s->rl_end = end;
		} else if (len == 0) {
			*head_len = end;
			return SRV_OK;
		} else if (end - s->rl_end > o->max_header_bytes) {
			return srv_reject(conn, 431, "header fields too large");
		} else if (++s->fields > SRV_HTTP_MAX_FIELDS) {
			return srv_reject(conn, 431, "too many header fields");
		}
	}
	/* An unterminated line: is it already over its limit? */
	if (s->rl_end == 0 && n - s->rl_start > o->max_line_bytes + 1)
		return srv_reject(conn, 414, "request line too long");
	if (s->rl_end != 0 && n - s->rl_end > o->max_header_bytes + 1)
		return srv_reject(conn, 431, "header fields too large");
	return SRV_AGAIN;
}

static enum srv_http_method srv_method_of(const char *m, size_t len)
{
	switch (len) {
	case 3:
		if (memcmp(m, "GET", 3) == 0)
			return SRV_HTTP_GET;
		if (memcmp(m, "PUT", 3) == 0)
			return SRV_HTTP_PUT;
		break;
	case 4:
		if (memcmp(m, "HEAD", 4) == 0)
			return SRV_HTTP_HEAD;
		if (memcmp(m, "POST", 4) == 0)
			return SRV_HTTP_POST;
		break;
	case 6:
		if (memcmp(m, "DELETE", 6) == 0)
			return SRV_HTTP_DELETE;
		break;
	default:
		break;
	}
	return SRV_HTTP_OTHER;
}

/* "HTTP/" DIGIT "." DIGIT; only 1.0 and 1.1 are served. */
static int srv_parse_version(struct srv_http_conn *conn, const char *v,
			     size_t len)
{
	static const char name[] = "HTTP/";
	const size_t major = sizeof(name) - 1, dot = major + 1, minor = dot + 1;

	if (len != minor + 1 || memcmp(v, name, major) != 0 ||
	    v[major] < '0' || v[major] > '9' || v[dot] != '.' ||
	    v[minor] < '0' || v[minor] > '9')
		return srv_reject(conn, 400, "malformed HTTP version");
	if (v[major] != '1' || v[minor] > '1')
		return srv_reject(conn, 505, "only HTTP/1.0 and HTTP/1.1 are supported");
	conn->req->st.minor = v[minor] - '0';
	return SRV_OK;
}

/* absolute-form (RFC 9112 3.2.2): returns what follows "scheme://", or
 * NULL if t does not start with a scheme. */
static char *srv_skip_scheme(char *t)
{
	char *p = t;

	if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z')))
		return NULL;
	while (srv_is_tchar((unsigned char)*p)) /* stops at ':' */
		p++;
	return strncmp(p, "://", 3) == 0 ? p + 3 : NULL;
}

/* Splits the NUL-terminated target into path and query. */
static int srv_split_target(struct srv_http_conn *conn, char *t)
{
	struct srv_req_state *st = &conn->req->st;
	char *path = t, *q;

	if (*t != '/' && strcmp(t, "*") != 0) {
		char *auth = srv_skip_scheme(t);

		if (!auth)
			return srv_reject(conn, 400, "malformed request target");
		path = auth + strcspn(auth, "/?");
		if (*path != '/') { /* "http://host" or "http://host?q" */
			st->query = *path == '?' ? path + 1 : NULL;
			st->path = "/";
			return SRV_OK;
		}
	}
	q = strchr(path, '?');
	if (q) {
		*q = '\0';
		st->query = q + 1;
	}
	st->path = path;
	return SRV_OK;
}

/* method SP request-target SP HTTP-version, in place (NULs at the SPs). */
static int srv_parse_request_line(struct srv_http_conn *conn, char *line,
				  size_t len)
{
	struct srv_req_state *st = &conn->req->st;
	char *end = line + len, *sp = line, *target, *tend;
	int rc;

	while (sp < end && srv_is_tchar((unsigned char)*sp))
		sp++;
	if (sp == line || sp == end || *sp != ' ')
		return srv_reject(conn, 400, "malformed request line");
	*sp = '\0';
	st->method_str = line;
	st->method = srv_method_of(line, (size_t)(sp - line));
	st->is_head = st->method == SRV_HTTP_HEAD;
	target = tend = sp + 1;
	while (tend < end && srv_is_target_char((unsigned char)*tend))
		tend++;
	if (tend == target || tend == end || *tend != ' ')
		return srv_reject(conn, 400, "malformed request line");
	rc = srv_parse_version(conn, tend + 1, (size_t)(end - tend - 1));
	if (rc != SRV_OK)
		return rc;
	*tend = '\0';
	return srv_split_target(conn, target);
}

static int srv_note_content_length(struct srv_http_conn *conn, const char *v)
{
	struct srv_req_state *st = &conn->req->st;
	size_t n = 0;
	const char *c;

	if (*v == '\0')
		return srv_reject(conn, 400, "empty Content-Length");
	for (c = v; *c; c++) {
		size_t d = (size_t)(*c - '0');

		if (*c < '0' || *c > '9')
			return srv_reject(conn, 400, "malformed Content-Length");
		if (n > (SIZE_MAX - d) / 10)
			return srv_reject(conn, 400, "Content-Length too large");
		n = n * 10 + d;
	}
	if (st->has_cl && st->content_length != n)
		return srv_reject(conn, 400, "conflicting Content-Length fields");
	st->has_cl = true;
	st->content_length = n;
	return SRV_OK;
}

/* Only a lone "chunked" is understood; several fields make a list. */
static void srv_note_transfer_encoding(struct srv_req_state *st, const char *v)
{
	if (st->te == SRV_TE_NONE && strcasecmp(v, "chunked") == 0)
		st->te = SRV_TE_CHUNKED;
	else
		st->te = SRV_TE_OTHER;
}

/* Connection is a comma-separated token list. */
static void srv_note_connection(struct srv_req_state *st, const char *v)
{
	while (*v) {
		const char *e = v + strcspn(v, ","), *s = v, *t = e;

		while (s < t && srv_is_ws(*s))
			s++;
		while (t > s && srv_is_ws(t[-1]))
			t--;
		if (srv_name_is(s, (size_t)(t - s), "close"))
			st->conn_close = true;
		else if (srv_name_is(s, (size_t)(t - s), "keep-alive"))
			st->conn_keep = true;
		v = *e ? e + 1 : e;
	}
}

/* Records what the layer itself needs from a field. */
static int srv_note_field(struct srv_http_conn *conn, const char *name,
			  size_t nlen, const char *value)
{
	struct srv_req_state *st = &conn->req->st;

	if (srv_name_is(name, nlen, "content-length"))
		return srv_note_content_length(conn, value);
	if (srv_name_is(name, nlen, "transfer-encoding"))
		srv_note_transfer_encoding(st, value);
	else if (srv_name_is(name, nlen, "connection"))
		srv_note_connection(st, value);
	else if (srv_name_is(name, nlen, "host"))
		st->hosts++;
	else if (srv_name_is(name, nlen, "expect"))
		st->expect = strcasecmp(value, "100-continue") == 0
				     ? SRV_EXPECT_CONTINUE
				     : SRV_EXPECT_OTHER;
	return SRV_OK;
}

/* field-name ":" OWS field-value OWS, in the line [p, e). */
static int srv_parse_field(struct srv_http_conn *conn, char *p, char *e)
{
	struct srv_http_req *req = conn->req;
	char *colon = p, *v, *ve;

	if (srv_is_ws(*p))
		return srv_reject(conn, 400, "obsolete line folding is not accepted");
	while (colon < e && srv_is_tchar((unsigned char)*colon))
		colon++;
	if (colon == p || colon == e || *colon != ':')
		return srv_reject(conn, 400, "malformed header field");
	for (v = colon + 1; v < e && srv_is_ws(*v); v++)
		;
	for (ve = e; ve > v && srv_is_ws(ve[-1]); ve--)
		;
	for (char *c = v; c < ve; c++)
		if (!srv_is_value_char((unsigned char)*c))
			return srv_reject(conn, 400, "invalid byte in a header value");
	/* *ve is whitespace, CR or LF of this line: the NUL stays inside. */
	*colon = '\0';
	*ve = '\0';
	if (req->st.nfields >= SRV_HTTP_MAX_FIELDS)
		return srv_reject(conn, 431, "too many header fields");
	req->fields[req->st.nfields++] = (struct srv_http_field){ p, v };
	return srv_note_field(conn, p, (size_t)(colon - p), v);
}

/* The field lines in [p, end), which ends with the empty line. */
static int srv_parse_fields(struct srv_http_conn *conn, char *p, char *end)
{
	while (p < end) {
		char *nl = memchr(p, '\n', (size_t)(end - p));
		size_t len;
		int rc;

		if (!nl)
			return srv_reject(conn, 400, "malformed header section");
		len = srv_line_len(p, (size_t)(nl - p) + 1);
		if (len == 0)
			return SRV_OK;
		rc = srv_parse_field(conn, p, p + len);
		if (rc != SRV_OK)
			return rc;
		p = nl + 1;
	}
	return srv_reject(conn, 400, "malformed header section");
}

/* Copies the complete head out of the input (the strings must outlive the
 * input buffer, which the next read reuses) and parses the copy in
 * place. */
static int srv_take_head(struct srv_http_conn *conn, const char *p,
			 size_t head_len)
{
	struct srv_http_req *req = conn->req;
	struct srv_head_scan s = conn->scan;
	char *h;
	int rc;

	if (srv_buf_reserve(&req->head, head_len + 1, SIZE_MAX) != 0)
		return srv_reject(conn, 503, "out of memory");
	h = req->head.data;
	memcpy(h, p, head_len);
	h[head_len] = '\0';
	req->head.len = head_len;
	srv_in_drain(conn, head_len);
	conn->scan = (struct srv_head_scan){ 0 };
	rc = srv_parse_request_line(conn, h + s.rl_start,
				    srv_line_len(h + s.rl_start,
						 s.rl_end - s.rl_start));
	if (rc != SRV_OK)
		return rc;
	return srv_parse_fields(conn, h + s.rl_end, h + head_len);
}

/* ==== 5. body ========================================================== */

/* RFC 9112 6.1-6.3 and 9110 10.1.1: decide framing and persistence from
 * the fields, refusing anything ambiguous (request smuggling). */
static int srv_check_framing(struct srv_http_conn *conn)
{
	struct srv_req_state *st = &conn->req->st;

	if (st->hosts > 1 || (st->minor == 1 && st->hosts == 0))
		return srv_reject(conn, 400, "an HTTP/1.1 request needs exactly one Host field");
	if (st->te != SRV_TE_NONE && st->has_cl)
		return srv_reject(conn, 400, "Content-Length and Transfer-Encoding together");
	if (st->te != SRV_TE_NONE && st->minor == 0)
		return srv_reject(conn, 400, "Transfer-Encoding in an HTTP/1.0 request");
	if (st->te == SRV_TE_OTHER)
		return srv_reject(conn, 501, "only the chunked transfer coding is supported");
	if (st->expect == SRV_EXPECT_OTHER)
		return srv_reject(conn, 417, "only Expect: 100-continue is supported");
	if (st->minor == 0) /* 9110 15.2.1: never 100 to an HTTP/1.0 client */
		st->expect = SRV_EXPECT_NONE;
	st->keep_alive = st->minor == 1 ? !st->conn_close
					: st->conn_keep && !st->conn_close;
	return SRV_OK;
}

/* Asks for the body limit, refuses a too large Content-Length before any
 * of the body is read, and invites the body with 100 if asked to. */
static int srv_start_body(struct srv_http_conn *conn)
{
	static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
	struct srv_http_server *srv = conn->srv;
	struct srv_http_req *req = conn->req;
	struct srv_req_state *st = &req->st;
	size_t len = st->has_cl ? st->content_length : 0;

	if (srv->cb.body_limit)
		st->body_limit = srv->cb.body_limit(req, srv->arg);
	if (len > st->body_limit)
		return srv_reject(conn, 413, "request body larger than allowed");
	if (len && srv_buf_reserve(&req->body, len, len) != 0)
		return srv_reject(conn, 503, "out of memory");
	conn->body_left = len;
	conn->chunk = SRV_CHUNK_SIZE;
	conn->trailer_bytes = 0;
	/* 9110 10.1.1: a client already sending the body needs no 100. */
	if (st->expect == SRV_EXPECT_CONTINUE &&
	    (len || st->te == SRV_TE_CHUNKED) && srv_in_len(conn) == 0 &&
	    evbuffer_add(conn->out, cont, sizeof(cont) - 1) != 0)
		return srv_reject(conn, 503, "out of memory");
	conn->state = SRV_CONN_BODY;
	return SRV_OK;
}

/* Moves what is there of the expected body bytes into req->body. */
static void srv_take_body(struct srv_http_conn *conn)
{
	struct srv_http_buf *body = &conn->req->body;
	size_t avail = srv_in_len(conn);
	size_t n = avail < conn->body_left ? avail : conn->body_left;

	if (n == 0)
		return;
	memcpy(body->data + body->len, srv_in_data(conn), n);
	srv_in_drain(conn, n);
	body->len += n;
	conn->body_left -= n;
}

/* The next line of the input, without its EOL; *used includes the EOL.
 * SRV_TOO_LONG if no line ends within max bytes. */
static int srv_peek_line(struct srv_http_conn *conn, size_t max,
			 const char **line, size_t *len, size_t *used)
{
	size_t avail = srv_in_len(conn);
	size_t n = avail < max + SRV_HTTP_EOL_BYTES ? avail
						    : max + SRV_HTTP_EOL_BYTES;
	const char *p = srv_in_data(conn), *nl;

	if (n == 0)
		return SRV_AGAIN;
	nl = memchr(p, '\n', n);
	if (!nl)
		return n == max + SRV_HTTP_EOL_BYTES ? SRV_TOO_LONG : SRV_AGAIN;
	*line = p;
	*used = (size_t)(nl - p) + 1;
	*len = srv_line_len(p, *used);
	return SRV_OK;
}

static int srv_chunk_begin(struct srv_http_conn *conn, size_t size)
{
	struct srv_http_req *req = conn->req;

	if (size == 0) {
		conn->chunk = SRV_CHUNK_TRAILER;
		return SRV_OK;
	}
	if (size > req->st.body_limit - req->body.len)
		return srv_reject(conn, 413, "request body larger than allowed");
	if (srv_buf_reserve(&req->body, req->body.len + size,
			    req->st.body_limit) != 0)
		return srv_reject(conn, 503, "out of memory");
	conn->body_left = size;
	conn->chunk = SRV_CHUNK_DATA;
	return SRV_OK;
}

/* chunk-size [ chunk-ext ] CRLF; extensions are ignored. */
static int srv_chunk_size(struct srv_http_conn *conn)
{
	const char *line;
	size_t len, used, size = 0, i;
	int rc, d;

	rc = srv_peek_line(conn, SRV_HTTP_MAX_CHUNK_LINE_BYTES, &line, &len,
			   &used);
	if (rc == SRV_TOO_LONG)
		return srv_reject(conn, 400, "chunk size line too long");
	if (rc != SRV_OK)
		return rc;
	for (i = 0; i < len && (d = srv_hex_value(line[i])) >= 0; i++) {
		if (size > SIZE_MAX >> SRV_HTTP_HEX_BITS)
			return srv_reject(conn, 400, "chunk size too large");
		size = size << SRV_HTTP_HEX_BITS | (size_t)d;
	}
	if (i == 0 || (i < len && line[i] != ';' && !srv_is_ws(line[i])))
		return srv_reject(conn, 400, "malformed chunk size");
	srv_in_drain(conn, used);
	return srv_chunk_begin(conn, size);
}

static int srv_chunk_data_end(struct srv_http_conn *conn)
{
	size_t avail = srv_in_len(conn);
	const char *p = srv_in_data(conn);

	if (avail == 0)
		return SRV_AGAIN;
	if (p[0] == '\n') {
		srv_in_drain(conn, 1);
	} else if (p[0] == '\r') {
		if (avail < SRV_HTTP_EOL_BYTES)
			return SRV_AGAIN;
		if (p[1] != '\n')
			return srv_reject(conn, 400, "chunk data not followed by CRLF");
		srv_in_drain(conn, SRV_HTTP_EOL_BYTES);
	} else {
		return srv_reject(conn, 400, "chunk data not followed by CRLF");
	}
	conn->chunk = SRV_CHUNK_SIZE;
	return SRV_OK;
}

/* Trailer fields are read and dropped; the whole section is held to the
 * header size limit. */
static int srv_chunk_trailer(struct srv_http_conn *conn)
{
	size_t max = conn->srv->opts.max_header_bytes, len, used;
	const char *line;
	int rc = srv_peek_line(conn, max, &line, &len, &used);

	if (rc == SRV_TOO_LONG)
		return srv_reject(conn, 431, "trailer section too large");
	if (rc != SRV_OK)
		return rc;
	conn->trailer_bytes += used;
	if (conn->trailer_bytes > max + SRV_HTTP_EOL_BYTES)
		return srv_reject(conn, 431, "trailer section too large");
	srv_in_drain(conn, used);
	if (len == 0)
		conn->chunk = SRV_CHUNK_DONE;
	return SRV_OK;
}

static int srv_read_chunked(struct srv_http_conn *conn)
{
	int rc = SRV_OK;

	while (rc == SRV_OK && conn->chunk != SRV_CHUNK_DONE) {
		switch (conn->chunk) {
		case SRV_CHUNK_SIZE:
			rc = srv_chunk_size(conn);
			break;
		case SRV_CHUNK_DATA:
			srv_take_body(conn);
			if (conn->body_left)
				return SRV_AGAIN;
			conn->chunk = SRV_CHUNK_DATA_END;
			break;
		case SRV_CHUNK_DATA_END:
			rc = srv_chunk_data_end(conn);
			break;
		case SRV_CHUNK_TRAILER:
			rc = srv_chunk_trailer(conn);
			break;
		case SRV_CHUNK_DONE:
			break;
		}
	}
	return rc;
}

/* ==== 6. connection ==================================================== */

/* A head is still arriving. Inactivity is caught by the read timeout of
 * conn->rev; this caps the whole head (a client sending a byte now and
 * then), like nginx's client_header_timeout. */
static int srv_head_wait(struct srv_http_conn *conn)
{
	uint64_t now = srv_now_ms(conn->srv);

	if (conn->scan.deadline_ms == 0)
		conn->scan.deadline_ms = now + (uint64_t)conn->srv->opts.read_timeout_ms;
	else if (now >= conn->scan.deadline_ms)
		return srv_reject(conn, 408, "request head not received in time");
	return SRV_AGAIN;
}

static int srv_step_head(struct srv_http_conn *conn)
{
	size_t avail = srv_in_len(conn), head_len = 0;
	const char *p = srv_in_data(conn);
	int rc;

	if (avail == 0)
		return SRV_AGAIN;
	/* Pipelining client not reading its responses: wait for it. */
	if (srv_out_len(conn) > SRV_HTTP_OUTPUT_HIGH_BYTES) {
		conn->out_blocked = true;
		return SRV_AGAIN;
	}
	if (conn->req->st.start_ns == 0 && conn->srv->cb.logged)
		conn->req->st.start_ns = srv_now_ns();
	rc = srv_scan_head(conn, p, avail < conn->srv->head_max
					    ? avail
					    : conn->srv->head_max,
			   &head_len);
	if (rc == SRV_AGAIN)
		return srv_head_wait(conn);
	if (rc != SRV_OK)
		return rc;
	rc = srv_take_head(conn, p, head_len);
	if (rc != SRV_OK)
		return rc;
	rc = srv_check_framing(conn);
	if (rc != SRV_OK)
		return rc;
	return srv_start_body(conn);
}

static int srv_step_body(struct srv_http_conn *conn)
{
	struct srv_http_server *srv = conn->srv;
	struct srv_http_req *req = conn->req;
	int rc = SRV_OK;

	if (req->st.te == SRV_TE_CHUNKED) {
		rc = srv_read_chunked(conn);
	} else {
		srv_take_body(conn);
		if (conn->body_left)
			rc = SRV_AGAIN;
	}
	if (rc != SRV_OK)
		return rc;
	conn->state = SRV_CONN_HANDLER;
	req->st.dispatched = true;
	srv->cb.handle(req, srv->arg);
	return SRV_OK;
}

static int srv_conn_step(struct srv_http_conn *conn)
{
	switch (conn->state) {
	case SRV_CONN_HEAD:
		return srv_step_head(conn);
	case SRV_CONN_BODY:
		return srv_step_body(conn);
	default:
		return SRV_AGAIN;
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
	if (rc >= SRV_HTTP_ERROR_MIN)
		srv_conn_fail(conn, rc, conn->err_msg);
}

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
	return conn->state == SRV_CONN_BODY &&
	       conn->req->st.te == SRV_TE_NONE && srv_in_len(conn) == 0 &&
	       conn->body_left >= SRV_HTTP_DIRECT_READ_BYTES;
}

/* One read() per readiness: the poll is level-triggered, so what is left
 * is reported again. > 0 bytes read, 0 at EOF, -EAGAIN, or -errno. */
static ssize_t srv_conn_fill(struct srv_http_conn *conn)
{
	struct srv_http_buf *body = &conn->req->body;
	bool direct = srv_conn_reads_body(conn);
	size_t room = direct ? conn->body_left : srv_in_room(conn);
	char *dst = direct ? body->data + body->len : conn->in.data + conn->in.end;
	ssize_t n;

	if (room == 0) /* full: srv_conn_update_read() stops reading */
		return srv_in_len(conn) >= conn->srv->input_high ? -EAGAIN
								  : -ENOMEM;
	n = read(conn->fd, dst, room);
	if (n < 0)
		return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR
			       ? -EAGAIN
			       : -errno;
	if (direct) {
		body->len += (size_t)n;
		conn->body_left -= (size_t)n;
	} else {
		conn->in.end += (size_t)n;
	}
	return n;
}

/* Writes what is queued with one writev; arms the write event only while
 * the socket buffer is full. SRV_OK when all is written, SRV_AGAIN, or
 * -errno when the connection is dead. */
static int srv_conn_flush(struct srv_http_conn *conn)
{
	if (srv_out_len(conn) > 0 && evbuffer_write(conn->out, conn->fd) < 0) {
		int err = errno;

		if (err != EAGAIN && err != EWOULDBLOCK && err != EINTR)
			return -err;
	}
	if (srv_out_len(conn) == 0) {
		if (event_pending(conn->wev, EV_WRITE, NULL))
			event_del(conn->wev);
		return SRV_OK;
	}
	if (!event_pending(conn->wev, EV_WRITE, NULL) &&
	    event_add(conn->wev, &conn->srv->write_tv) != 0)
		return -EIO;
	return SRV_AGAIN;
}

static enum srv_tmo srv_conn_wanted_timeout(const struct srv_http_conn *conn)
{
	switch (conn->state) {
	case SRV_CONN_HEAD:
		return srv_in_len(conn) ? SRV_TMO_READ : SRV_TMO_IDLE;
	case SRV_CONN_BODY:
		return SRV_TMO_READ;
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

static bool srv_conn_is_idle(const struct srv_http_conn *conn)
{
	return conn->state == SRV_CONN_HEAD && !conn->busy &&
	       srv_in_len(conn) == 0 && srv_out_len(conn) == 0;
}

/* Half-closes and discards input for a while, so a client still sending
 * (the body we refused, more pipelined requests) reads our last response
 * instead of losing it to the reset a close with unread data causes. */
static void srv_conn_linger(struct srv_http_conn *conn)
{
	conn->in.start = conn->in.end = 0;
	if (shutdown(conn->fd, SHUT_WR) != 0) {
		srv_conn_free(conn);
		return;
	}
	conn->state = SRV_CONN_LINGER;
	conn->linger_until_ms = srv_now_ms(conn->srv) + SRV_HTTP_LINGER_TOTAL_MS;
	if (srv_conn_update_read(conn) != 0)
		srv_conn_free(conn);
}

static void srv_conn_linger_read(struct srv_http_conn *conn)
{
	conn->in.start = conn->in.end = 0;
	if (srv_now_ms(conn->srv) >= conn->linger_until_ms)
		srv_conn_free(conn);
}

/* The last response has been written. */
static void srv_conn_close(struct srv_http_conn *conn)
{
	bool more_input = conn->linger || srv_in_len(conn) > 0;

	if (!conn->broken && !conn->peer_eof && more_input)
		srv_conn_linger(conn);
	else
		srv_conn_free(conn);
}

/* The end of every callback of a connection: write what was queued, then
 * close, pause or go on reading. The one place that frees a connection
 * in the normal course; callers touch conn no more. */
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
	if (rc < 0) {
		srv_conn_free(conn);
	} else if (rc == SRV_OK && conn->state == SRV_CONN_CLOSING) {
		srv_conn_close(conn);
	} else if (srv_conn_update_read(conn) != 0) {
		srv_conn_free(conn);
	}
}

/* The client closed its side. One that closes while its request is
 * handled has gone away: the request is orphaned. One that half-closed
 * after its requests still gets the responses already queued. */
static void srv_conn_eof(struct srv_http_conn *conn)
{
	conn->peer_eof = true;
	if (conn->state == SRV_CONN_HANDLER || conn->state == SRV_CONN_LINGER ||
	    srv_out_len(conn) == 0) {
		srv_conn_free(conn);
		return;
	}
	conn->state = SRV_CONN_CLOSING; /* a partial request is dropped */
	srv_conn_settle(conn);
}

/* No input for the current read timeout. */
static void srv_conn_timeout(struct srv_http_conn *conn)
{
	/* Output waiting means a client that does not read: the write
	 * timeout watches that. */
	if (srv_out_len(conn) > 0)
		return;
	switch (conn->state) {
	case SRV_CONN_HEAD:
		if (srv_in_len(conn) == 0) { /* idle keep-alive connection */
			srv_conn_free(conn);
			return;
		}
		break;
	case SRV_CONN_BODY:
		break;
	case SRV_CONN_LINGER:
		srv_conn_free(conn);
		return;
	default: /* the handler is working: not the client's fault */
		return;
	}
	conn->busy = true;
	srv_conn_fail(conn, 408, "request not received in time");
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
	if (!kicked) {
		n = srv_conn_fill(conn);
		if (n == 0) {
			srv_conn_eof(conn);
			return;
		}
		if (n < 0 && n != -EAGAIN) {
			srv_conn_free(conn);
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

	if (what == EV_TIMEOUT) { /* not reading its responses */
		srv_conn_free(conn);
		return;
	}
	srv_conn_settle(conn);
}

/* Has the read callback run in the next loop iteration to flush what was
 * queued from outside the connection's callbacks and go on parsing. Not
 * done inline: the caller may be iterating over its waiting requests. */
static void srv_conn_kick(struct srv_http_conn *conn)
{
	conn->kicked = true;
	event_active(conn->rev, EV_READ, 1);
}

/* Answers a request this layer refuses, and closes after it. */
static void srv_conn_fail(struct srv_http_conn *conn, int status,
			  const char *msg)
{
	char body[SRV_HTTP_ERROR_BODY_BYTES];
	size_t len;
	const char *code;
	struct srv_body b;

	if (status == 413 && conn->req->st.limit_code) {
		code = conn->req->st.limit_code;
		msg = conn->req->st.limit_msg;
		goto out_send;
	}
	switch (status) {
	case 400: code = "bad_request"; break;
	case 408: code = "request_timeout"; break;
	case 413: code = "payload_too_large"; break;
	case 414: code = "uri_too_long"; break;
	case 417: code = "expectation_failed"; break;
	case 431: code = "headers_too_large"; break;
	case 501: code = "not_implemented"; break;
	case 503: code = "service_unavailable"; break;
	case 505: code = "http_version_not_supported"; break;
	default: code = "internal_error"; break;
	}
out_send:
	len = srv_json_error(body, sizeof(body), code, msg ? msg : "");
	b = (struct srv_body){ .data = body, .len = len, .copy = true };
	conn->close_after = true;
	conn->linger = true;
	srv_send(conn->req, status, "application/json", &b);
}

/* Once shut down and empty, done() runs from the loop: never from inside
 * srv_http_server_shutdown() or a respond call, whose callers would not
 * expect the server to be gone when they return. */
static void srv_maybe_done(struct srv_http_server *srv)
{
	if (!srv->shutting_down || srv->nconns || !srv->done ||
	    srv->done_queued)
		return;
	srv->done_queued = true;
	event_active(srv->done_ev, EV_TIMEOUT, 1);
}

static void srv_conn_free(struct srv_http_conn *conn)
{
	struct srv_http_server *srv = conn->srv;

	if (conn->state == SRV_CONN_HANDLER)
		conn->req->conn = NULL; /* the handler still holds it */
	else
		srv_req_free(conn->req);
	srv_conn_unlink(conn);
	event_free(conn->rev);
	event_free(conn->wev);
	/* Reference bodies still queued get their release now. */
	evbuffer_free(conn->out);
	evutil_closesocket(conn->fd);
	free(conn->in.data);
	free(conn);
	srv_maybe_done(srv);
}

/* ==== 7. respond ======================================================= */

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

/* Writes the status line and headers; p needs SRV_HTTP_HEAD_FIXED_BYTES
 * plus the lengths of ctype and extra. */
static char *srv_format_head(char *p, const struct srv_head *h)
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
	if (h->ctype) {
		p = SRV_PUT_LIT(p, "Content-Type: ");
		p = srv_put_str(p, h->ctype);
		p = SRV_PUT_LIT(p, "\r\n");
	}
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

/* {"error":"<code>","message":"<msg>"} into dst; returns its length. */
static size_t srv_json_error(char *dst, size_t cap, const char *code,
			     const char *msg)
{
	static const char start[] = "{\"error\":\"",
			  mid[] = "\",\"message\":\"", tail[] = "\"}";
	const char *end = dst + cap;
	char *p = dst;

	_Static_assert(SRV_HTTP_ERROR_BODY_BYTES >
			       sizeof(start) + sizeof(mid) + sizeof(tail),
		       "error body buffer too small for the JSON frame");
	p = SRV_PUT_LIT(p, start);
	p = srv_json_escape(p, end - (sizeof(mid) - 1) - (sizeof(tail) - 1),
			    code);
	p = SRV_PUT_LIT(p, mid);
	p = srv_json_escape(p, end - (sizeof(tail) - 1), msg);
	p = SRV_PUT_LIT(p, tail);
	return (size_t)(p - dst);
}

static bool srv_conn_must_close(const struct srv_http_conn *conn)
{
	return !conn->req->st.keep_alive || conn->close_after ||
	       conn->srv->shutting_down;
}

/* Status line, headers and (copied) body go into one contiguous extent
 * of the output: the kernel sees one writev per batch of responses. */
static int srv_write_head(struct srv_http_conn *conn, int status,
			  const char *ctype, const struct srv_body *b,
			  size_t sent, bool closing)
{
	const struct srv_http_req *req = conn->req;
	size_t copy = b && b->copy ? sent : 0;
	size_t need = SRV_HTTP_HEAD_FIXED_BYTES + (ctype ? strlen(ctype) : 0) +
		      req->extra.len + copy;
	struct evbuffer_iovec v;
	struct srv_head h = {
		.status = status,
		.date = srv_date(conn->srv),
		.has_length = b != NULL,
		.length = b ? b->len : 0,
		.ctype = ctype,
		.extra = req->extra.data,
		.extra_len = req->extra.len,
		.connection = closing ? "close"
			      : req->st.minor == 0 ? "keep-alive" : NULL,
	};
	char *p;

	if (evbuffer_reserve_space(conn->out, (ev_ssize_t)need, &v, 1) != 1)
		return -ENOMEM;
	p = srv_format_head(v.iov_base, &h);
	if (copy)
		p = srv_put(p, b->data, copy);
	v.iov_len = (size_t)(p - (char *)v.iov_base);
	return evbuffer_commit_space(conn->out, &v, 1) == 0 ? 0 : -ENOMEM;
}

/* After a response: close after it, or get ready for the next request.
 * Responded from outside the connection's callbacks (asynchronously),
 * the connection is kicked to write it out. */
static void srv_req_finish(struct srv_http_conn *conn, bool closing)
{
	if (closing) {
		conn->state = SRV_CONN_CLOSING;
	} else {
		srv_req_reset(conn->req);
		conn->state = SRV_CONN_HEAD;
	}
	if (!conn->busy)
		srv_conn_kick(conn);
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
		srv_req_free(req);
		return;
	}
	if (status < SRV_HTTP_STATUS_MIN || status > SRV_HTTP_STATUS_MAX)
		status = 500;
	bodyless = status == 204 || status == 304;
	sent = bodyless || req->st.is_head ? 0 : b->len;
	closing = srv_conn_must_close(conn);
	rc = srv_write_head(conn, status, ctype, bodyless ? NULL : b, sent,
			    closing);
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
	srv_log_response(conn->srv, req, status, rc == 0 ? sent : 0);
	srv_req_finish(conn, closing);
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

void srv_http_respond_error(struct srv_http_req *req, int status,
			    const char *code, const char *message)
{
	char body[SRV_HTTP_ERROR_BODY_BYTES];
	size_t len = srv_json_error(body, sizeof(body), code ? code : "error",
				    message ? message : "");

	srv_http_respond(req, status, "application/json", body, len);
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

	if (!name || !value || !*name || srv_header_is_reserved(name))
		return -EINVAL;
	for (const char *c = name; *c; c++)
		if (!srv_is_tchar((unsigned char)*c))
			return -EINVAL;
	for (const char *c = value; *c; c++)
		if (!srv_is_value_char((unsigned char)*c))
			return -EINVAL; /* CR, LF: header injection */
	nlen = strlen(name);
	vlen = strlen(value);
	if (srv_buf_reserve(x, x->len + nlen + sizeof(": ") - 1 + vlen +
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

/* ==== 8. request accessors ============================================= */

enum srv_http_method srv_http_req_method(const struct srv_http_req *req)
{
	return req->st.method;
}

const char *srv_http_req_method_str(const struct srv_http_req *req)
{
	return req->st.method_str;
}

const char *srv_http_req_path(const struct srv_http_req *req)
{
	return req->st.path;
}

const char *srv_http_req_query(const struct srv_http_req *req)
{
	return req->st.query;
}

const char *srv_http_req_header(const struct srv_http_req *req,
				const char *name)
{
	for (int i = 0; i < req->st.nfields; i++)
		if (strcasecmp(req->fields[i].name, name) == 0)
			return req->fields[i].value;
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

int srv_http_req_conn_alive(const struct srv_http_req *req)
{
	return req->conn != NULL;
}

int srv_http_req_peer_str(const struct srv_http_req *req, char *buf, size_t len)
{
	struct sockaddr_storage sa;
	socklen_t salen = sizeof(sa);
	char host[NI_MAXHOST], port[NI_MAXSERV];
	int n;

	if (!req->conn) {
		snprintf(buf, len, "-");
		return 0;
	}
	if (getpeername(req->conn->fd, (struct sockaddr *)&sa, &salen) < 0) {
		n = -errno;
		snprintf(buf, len, "-");
		return n;
	}
	if (sa.ss_family == AF_UNIX) {
		n = snprintf(buf, len, "unix");
		return n < 0 || (size_t)n >= len ? -ENOSPC : 0;
	}
	if (getnameinfo((struct sockaddr *)&sa, salen, host, sizeof(host), port,
			sizeof(port), NI_NUMERICHOST | NI_NUMERICSERV) != 0) {
		snprintf(buf, len, "-");
		return -EINVAL;
	}
	n = snprintf(buf, len, sa.ss_family == AF_INET6 ? "[%s]:%s" : "%s:%s", host, port);
	return n < 0 || (size_t)n >= len ? -ENOSPC : 0;
}

/* ==== 9. server lifecycle ============================================== */

void srv_http_opts_default(struct srv_http_opts *opts)
{
	*opts = (struct srv_http_opts){
		.max_line_bytes = SRV_HTTP_DEFAULT_LINE_BYTES,
		.max_header_bytes = SRV_HTTP_DEFAULT_HEADER_BYTES,
		.max_conns = SRV_HTTP_DEFAULT_MAX_CONNS,
		.idle_timeout_ms = SRV_HTTP_DEFAULT_IDLE_MS,
		.read_timeout_ms = SRV_HTTP_DEFAULT_READ_MS,
	};
}

static bool srv_opts_valid(const struct srv_http_opts *o)
{
	/* The limits must leave room for the smallest request, and their
	 * sum must not overflow the head scan arithmetic. */
	return o->max_line_bytes >= sizeof("GET / HTTP/1.1") &&
	       o->max_header_bytes >= sizeof("Host: x") &&
	       o->max_line_bytes < SIZE_MAX / 4 &&
	       o->max_header_bytes < SIZE_MAX / 4 && o->max_conns > 0 &&
	       o->idle_timeout_ms > 0 && o->read_timeout_ms > 0;
}

/* A write to a socket the client closed raises SIGPIPE, which kills the
 * worker by default; evbuffer_write() uses writev, which has no
 * MSG_NOSIGNAL.
 * A handler someone installed on purpose is left alone. */
static void srv_ignore_sigpipe(void)
{
	struct sigaction sa;

	if (sigaction(SIGPIPE, NULL, &sa) == 0 && sa.sa_handler == SIG_DFL)
		signal(SIGPIPE, SIG_IGN);
}

static void srv_done_cb(evutil_socket_t fd, short what, void *arg)
{
	struct srv_http_server *srv = arg;
	void (*done)(void *) = srv->done;

	srv->done = NULL;
	if (done)
		done(srv->done_arg); /* may free srv: touch nothing after */
}

static void srv_setup_times(struct srv_http_server *srv)
{
	srv->read_tv[SRV_TMO_IDLE] = srv_ms_to_tv(srv->opts.idle_timeout_ms);
	srv->read_tv[SRV_TMO_READ] = srv_ms_to_tv(srv->opts.read_timeout_ms);
	srv->read_tv[SRV_TMO_LINGER] = srv_ms_to_tv(SRV_HTTP_LINGER_READ_MS);
	/* A client that stops reading its responses is idle, too. */
	srv->write_tv = srv_ms_to_tv(srv->opts.idle_timeout_ms);
	srv->head_max = srv->opts.max_line_bytes + srv->opts.max_header_bytes +
			SRV_HTTP_HEAD_SLACK_BYTES;
	srv->input_high = srv->head_max > SRV_HTTP_INPUT_HIGH_BYTES
				  ? srv->head_max
				  : SRV_HTTP_INPUT_HIGH_BYTES;
}

static int srv_listen_all(struct srv_http_server *srv, const int *fds,
			  int nfds)
{
	srv->lev = calloc((size_t)(nfds > 0 ? nfds : 1), sizeof(*srv->lev));
	if (!srv->lev)
		return -ENOMEM;
	srv->nlev = nfds;
	for (int i = 0; i < nfds; i++) {
		if (evutil_make_socket_nonblocking(fds[i]) != 0)
			return -errno;
		/* Not LEV_OPT_CLOSE_ON_FREE: the fd is shared with the other
		 * workers and the master. CLOSE_ON_EXEC applies to the
		 * accepted sockets, so a job process does not inherit them. */
		srv->lev[i] = evconnlistener_new(srv->base, srv_accept_cb, srv,
						 LEV_OPT_CLOSE_ON_EXEC, 0,
						 fds[i]);
		if (!srv->lev[i])
			return errno ? -errno : -EINVAL;
		evconnlistener_set_error_cb(srv->lev[i], srv_accept_error_cb);
	}
	return 0;
}

struct srv_http_server *srv_http_server_new(struct event_base *base,
					    const int *fds, int nfds,
					    const struct srv_http_opts *opts,
					    const struct srv_http_callbacks *cb,
					    void *arg)
{
	struct srv_http_server *srv;
	int rc = -EINVAL;

	if (!base || !cb || !cb->handle || nfds < 0 || (nfds && !fds) ||
	    (opts && !srv_opts_valid(opts)))
		goto out_fail;
	rc = -ENOMEM;
	srv = calloc(1, sizeof(*srv));
	if (!srv)
		goto out_fail;
	srv->base = base;
	srv->cb = *cb;
	srv->arg = arg;
	if (opts)
		srv->opts = *opts;
	else
		srv_http_opts_default(&srv->opts);
	srv_setup_times(srv);
	srv_req_reset(&srv->blank);
	srv->done_ev = event_new(base, -1, 0, srv_done_cb, srv);
	srv->accept_resume = evtimer_new(base, srv_accept_resume_cb, srv);
	if (!srv->done_ev || !srv->accept_resume)
		goto out_free_srv;
	rc = srv_listen_all(srv, fds, nfds);
	if (rc != 0)
		goto out_free_srv;
	srv_ignore_sigpipe();
	return srv;

out_free_srv:
	srv_http_server_free(srv);
out_fail:
	errno = -rc;
	return NULL;
}

void srv_http_server_shutdown(struct srv_http_server *srv,
			      void (*done)(void *arg), void *arg)
{
	struct srv_http_conn *conn, *next;

	if (srv->shutting_down)
		return;
	srv->shutting_down = true;
	srv->done = done;
	srv->done_arg = arg;
	srv_listeners_free(srv);
	/* The rest finish their request: srv_conn_must_close() now says
	 * close. Idle ones get a short grace to send one last request. */
	srv->read_tv[SRV_TMO_IDLE] = srv_ms_to_tv(SRV_HTTP_SHUTDOWN_GRACE_MS);
	for (conn = srv->conns; conn; conn = next) {
		next = conn->next;
		if (srv_conn_is_idle(conn) &&
		    event_pending(conn->rev, EV_READ, NULL) &&
		    event_add(conn->rev, &srv->read_tv[SRV_TMO_IDLE]) != 0)
			srv_conn_free(conn);
	}
	srv_maybe_done(srv);
}

void srv_http_server_free(struct srv_http_server *srv)
{
	if (!srv)
		return;
	srv->done = NULL;
	if (srv->lev)
		srv_listeners_free(srv);
	/* Requests with their handler are orphaned, not freed: the handler
	 * may still respond to them. */
	while (srv->conns)
		srv_conn_free(srv->conns);
	if (srv->accept_resume)
		event_free(srv->accept_resume);
	if (srv->done_ev)
		event_free(srv->done_ev);
	free(srv->lev);
	free(srv);
}

long srv_http_pct_decode(const char *s, size_t n, char *out, size_t max)
{
	size_t o = 0;

	for (size_t i = 0; i < n; i++) {
		int c = (unsigned char)s[i];
		if (c == '%') {
			int hi, lo;
			if (i + 2 >= n)
				return -1;
			hi = srv_hex_value(s[i + 1]);
			lo = srv_hex_value(s[i + 2]);
			if (hi < 0 || lo < 0)
				return -1;
			c = hi << 4 | lo;
			i += 2;
		}
		if (c == 0 || o == max)
			return -1;
		out[o++] = (char)c;
	}
	return (long)o;
}

void srv_http_req_limit_error(struct srv_http_req *req, const char *code,
			      const char *message)
{
	req->st.limit_code = code;
	req->st.limit_msg = message;
}

int srv_http_server_conns(const struct srv_http_server *srv)
{
	return srv->nconns;
}
