/* server/http_core.h — the structures the files of the HTTP layer share.
 * Internal to server/http_*.c: the rest of the server sees only
 * server/http.h.
 *
 * Owns: the structures of a server, a connection and a request, and the
 * clock and counter helpers every file of the layer uses. Who writes
 * what: http_server.c the listeners and the lifecycle fields of struct
 * srv_http_server; http_conn.c a connection and its responded
 * transition; http_req.c a request object's life; http_respond.c a
 * stream's fields while it runs. Everything runs on the one event loop
 * thread of a worker; nothing here is thread-safe.
 *
 * Ownership: a connection owns its request object (conn->req, never NULL
 * while the connection lives) and reuses it for each request. A request
 * given to the handler belongs to the handler until it responds; if the
 * connection dies first the request is orphaned (req->conn == NULL, on
 * srv->orphans) and responding frees it. Until then its body keeps its
 * share of the server's body memory (srv->body_mem).
 *
 * Files, bottom up: http_buf.c, http_parse.c and http_response.c (pure:
 * buffers, the parser, the formatter); http_req.c (the request object);
 * http_conn.c (connections, the send path, the responded transition);
 * http_server.c (listeners, accept, the server's life) and
 * http_respond.c (what handlers call), both above it.
 */
#ifndef CASKD_SERVER_HTTP_CORE_H
#define CASKD_SERVER_HTTP_CORE_H

#include "server/http.h"
#include "server/http_buf.h"
#include "server/http_parse.h"
#include "server/http_response.h"

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>

#include <event2/event.h>
#include <event2/util.h>

struct evbuffer;
struct evconnlistener;
struct event;
struct event_base;

#define SRV_HTTP_MS_PER_S  1000u
#define SRV_HTTP_US_PER_MS 1000u
/* Statuses a handler may respond with; others are sent as 500. */
#define SRV_HTTP_STATUS_MIN 200
#define SRV_HTTP_STATUS_MAX 599

/* What one request says about itself beyond its head; reset between
 * requests. */
struct srv_req_state {
	const char *limit_code; /* the 413 of srv_http_req_limit_error() */
	const char *limit_msg;
	size_t body_limit;
	size_t body_charged;    /* of srv->body_mem, held for this body */
	uint64_t start_ns;      /* CLOCK_MONOTONIC at the first byte; 0 unset */
	bool dispatched;        /* given to the handler, not yet responded */
};

/* A streamed response in progress (srv_http_stream_begin). */
struct srv_stream {
	void (*more)(struct srv_http_req *req, void *arg);
	void *arg;
	struct event *ev;       /* runs more() from the loop */
	int status;
	size_t bytes;           /* body bytes queued, for the log */
	bool on;
	bool chunked;           /* else the close delimits it (HTTP/1.0) */
	bool scheduled;         /* ev is active */
};

struct srv_http_req {
	struct srv_http_server *srv; /* NULL once the server is freed */
	struct srv_http_conn *conn;  /* NULL once orphaned */
	struct srv_http_req *orphan_prev, *orphan_next; /* srv->orphans */
	bool orphan;
	bool loopback;              /* copied from the connection */
	struct sockaddr_storage peer;
	struct srv_http_msg msg;    /* the parsed head */
	struct srv_req_state st;
	struct srv_http_buf body;
	struct srv_http_buf extra;  /* "Name: value\r\n" from add_header */
	struct srv_stream stream;
};

enum srv_conn_state {
	SRV_CONN_READING, /* the parser takes a request (head or body) */
	SRV_CONN_HANDLER, /* the handler has the request */
	SRV_CONN_CLOSING, /* the last response is being written */
	SRV_CONN_LINGER,  /* written and half-closed; discarding input */
};

/* Which read timeout a connection has; index into srv->read_tv. */
enum srv_tmo {
	SRV_TMO_IDLE,   /* between requests; also while handling (ignored) */
	SRV_TMO_READ,   /* a request is arriving */
	SRV_TMO_LINGER, /* lingering close */
	SRV_TMO_COUNT,
};

/* A connection's input: bytes [start, end) of data are not parsed yet. */
struct srv_ibuf {
	char *data;
	size_t start;
	size_t end;
	size_t cap;
};

struct srv_http_conn {
	struct srv_http_server *srv;
	struct srv_http_conn *prev, *next; /* srv->conns */
	evutil_socket_t fd;
	struct event *rev;    /* EV_READ|EV_PERSIST, with the read timeout */
	struct event *wev;    /* EV_WRITE|EV_PERSIST, armed while blocked */
	struct srv_ibuf in;
	struct evbuffer *out; /* responses not yet written */
	struct srv_http_req *req;
	struct srv_http_parser parser; /* works on req->msg */
	enum srv_conn_state state;
	enum srv_tmo tmo;     /* the timeout rev was added with */
	/* CLOCK_MONOTONIC ms by which the head must be complete, or the
	 * body's present window must have brought window_need bytes (read
	 * from the socket since rx was window_rx); 0: not set. */
	uint64_t deadline_ms;
	uint64_t rx;          /* bytes read from the socket, in all */
	uint64_t window_rx;
	uint64_t window_need;
	uint64_t linger_until_ms;
	/* Output: bytes written in all; the present send window (while
	 * output waits) began when tx was send_window_tx and ends at
	 * send_deadline_ms (CLOCK_MONOTONIC; 0: no output waiting). */
	uint64_t tx;
	uint64_t send_window_tx;
	uint64_t send_deadline_ms;
	bool loopback;
	bool busy;            /* one of its callbacks is on the stack */
	bool kicked;          /* rev made active to go on, not to read */
	bool out_blocked;     /* parsing waits for the output to drain */
	bool close_after;     /* the response now being sent is the last */
	bool linger;          /* input may follow the last response */
	bool peer_eof;        /* the client closed (or half-closed) its side */
	bool broken;          /* a response could not be queued completely */
};

struct srv_http_server {
	struct event_base *base;
	struct srv_http_opts opts;
	struct srv_http_callbacks cb;
	void *arg;
	struct evconnlistener **lev;
	int nlev;
	struct event *accept_resume; /* ends an accept error pause */
	struct event *accept_recheck; /* asks accept_hold again */
	bool listening;              /* the listeners are enabled */
	bool accept_held;            /* by accept_hold */
	bool accept_errpause;        /* after an accept error (EMFILE) */
	struct event *done_ev;       /* runs done() from the loop */
	struct srv_http_conn *conns;
	int nconns;
	struct srv_http_req *orphans; /* requests whose connection died */
	size_t body_mem;             /* reserved for bodies, <= opts.body_memory */
	size_t input_high;
	struct timeval read_tv[SRV_TMO_COUNT];
	bool shutting_down;
	bool done_queued;
	void (*done)(void *arg);
	void *done_arg;
	time_t warned_at;
	time_t date_sec;
	char date[SRV_HTTP_DATE_BYTES];
	struct srv_http_req blank;   /* "-" request, for logging refusals */
	/* Told of every connection closed (http_server.c asks accept_hold
	 * again): the one way the connection layer reaches the server's. */
	void (*conn_closed)(struct srv_http_server *srv);
};

/* A response body: copied into the output, or referenced until sent. */
struct srv_body {
	const void *data;
	size_t len;
	bool copy;
	void (*release)(const void *body, size_t len, void *release_arg);
	void *release_arg;
};

static inline int srv_http_status_sendable(int status)
{
	return status < SRV_HTTP_STATUS_MIN || status > SRV_HTTP_STATUS_MAX ? 500 : status;
}

/* Counters for /metrics: relaxed stores, one writer (server/http.h). */
static inline void srv_count_set(_Atomic uint64_t *c, uint64_t v)
{
	atomic_store_explicit(c, v, memory_order_relaxed);
}

static inline void srv_count_inc(_Atomic uint64_t *c)
{
	srv_count_set(c, atomic_load_explicit(c, memory_order_relaxed) + 1);
}

/* Wall time as of this loop iteration: libevent caches it, so timeouts
 * and the Date header cost no system call. */
static inline struct timeval srv_loop_time(struct srv_http_server *srv)
{
	struct timeval tv;

	if (event_base_gettimeofday_cached(srv->base, &tv) != 0) {
		tv.tv_sec = time(NULL);
		tv.tv_usec = 0;
	}
	return tv;
}

static inline struct timeval srv_ms_to_tv(int ms)
{
	struct timeval tv = {
		.tv_sec = ms / (int)SRV_HTTP_MS_PER_S,
		.tv_usec = (ms % (int)SRV_HTTP_MS_PER_S) * (int)SRV_HTTP_US_PER_MS,
	};
	return tv;
}

#endif
