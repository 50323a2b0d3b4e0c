/* server/http_conn.h — what the connection layer (http_conn.c) and the
 * response writer (http_response.c) of the HTTP layer share. Internal to
 * server/http_*.c: the rest of the server sees only server/http.h.
 *
 * Owns: the structures of a server, a connection and a request, and the
 * few calls between the two files. Everything runs on the one event loop
 * thread of a worker; nothing here is thread-safe.
 *
 * Ownership: a connection owns its request object (conn->req, never NULL
 * while the connection lives) and reuses it for each request. A request
 * given to the handler belongs to the handler until it responds; if the
 * connection dies first the request is orphaned (req->conn == NULL, on
 * srv->orphans) and responding frees it. Until then its body keeps its
 * share of the server's body memory (srv->body_mem).
 */
#ifndef CASKD_SERVER_HTTP_CONN_H
#define CASKD_SERVER_HTTP_CONN_H

#include "server/http.h"
#include "server/http_buf.h"
#include "server/http_parse.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>

#include <event2/util.h>

struct evbuffer;
struct evconnlistener;
struct event;
struct event_base;

/* "Sun, 06 Nov 1994 08:49:37 GMT" plus NUL (RFC 9110 5.6.7). */
#define SRV_HTTP_DATE_BYTES 30
/* JSON error bodies are built on the stack; longer messages are cut. */
#define SRV_HTTP_ERROR_BODY_BYTES 1024
/* Bound of a response's status line plus the headers this layer writes
 * itself, without Content-Type and added headers: status line 46, Server
 * 15, Date 37, Content-Length 38 (or "Transfer-Encoding: chunked" 28),
 * "Content-Type: " + CRLF 16, "Connection: keep-alive" + CRLF 24,
 * "Retry-After: " 1 CRLF 16, final CRLF 2 = 194. */
#define SRV_HTTP_HEAD_FIXED_BYTES 256

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
};

/* Everything the status line and fixed headers of a response need. */
struct srv_http_head {
	int status;
	const char *date;
	bool has_length;
	size_t length;
	const char *ctype;      /* NULL: no Content-Type */
	const char *extra;      /* added headers, CRLF-terminated */
	size_t extra_len;
	const char *connection; /* NULL: no Connection header */
	bool chunked;           /* Transfer-Encoding: chunked */
	bool retry_after;       /* a 503 without a Retry-After of its own */
};

/* ---- http_conn.c, for the response writer ---- */

/* The Date header's value as of this loop iteration. */
const char *srv_http_date(struct srv_http_server *srv);
/* Reports a response to the logged callback. */
void srv_http_log_response(struct srv_http_server *srv,
			   const struct srv_http_req *req, int status,
			   size_t bytes);
/* This response must say Connection: close and end the connection. */
bool srv_http_conn_must_close(const struct srv_http_conn *conn);
/* A response was queued on conn: close after it or get ready for the
 * next request, and (outside the connection's callbacks) write it now. */
void srv_http_conn_responded(struct srv_http_conn *conn, bool closing);
/* Frees an orphaned request. */
void srv_http_req_free(struct srv_http_req *req);
/* Something was queued on conn's output from outside its callbacks (a
 * streamed piece): write it now. Callers touch conn no more. */
void srv_http_conn_flush_now(struct srv_http_conn *conn);
/* Streams (srv_http_stream_begin): the event that runs more(), made
 * before anything is sent (0 or -ENOMEM; freed by the response writer),
 * and has more() run in the next loop turn. */
int srv_http_stream_prepare(struct srv_http_req *req);
void srv_http_stream_schedule(struct srv_http_req *req);

/* ---- http_response.c, for the connection layer ---- */

/* Writes the status line and headers; p needs SRV_HTTP_HEAD_FIXED_BYTES
 * plus the lengths of h->ctype and h->extra. Returns the end. */
char *srv_http_format_head(char *p, const struct srv_http_head *h);
/* {"error":"<code>","message":"<msg>"} into dst (cap bytes, at least
 * SRV_HTTP_ERROR_BODY_BYTES); returns its length. */
size_t srv_http_json_error(char *dst, size_t cap, const char *code,
			   const char *msg);
/* Answers req with a JSON error from this layer itself (the request was
 * not dispatched). */
void srv_http_send_error(struct srv_http_req *req, int status,
			 const char *code, const char *msg);

#endif
