/* server/http.h — caskd's HTTP/1.1 server layer, on a libevent loop.
 *
 * Owns: accepting connections on already-listening sockets, parsing
 * requests (request line, headers, Content-Length and chunked bodies,
 * Expect: 100-continue), keep-alive and pipelining (one request at a time
 * per connection, answered in order), connection limits and timeouts (a
 * request must arrive, and its responses be taken, at a minimum rate),
 * the memory request bodies may hold (opts.body_memory), and writing
 * responses, whole or streamed in pieces as the client takes them. Every error this layer produces itself (400, 408,
 * 413, 414, 417, 431, 501, 503, 505) has a JSON body
 * {"error":"<code>","message":"<text>"}, like every error of the API.
 * Every 503, the layer's own and a handler's, carries Retry-After (1 s
 * unless the handler added one).
 *
 * Files, bottom up (nothing below calls up): http_buf.c the buffers,
 * http_parse.c the parser (pure: state and bytes in, a code out; strict
 * RFC 9112; one table of refusals), http_response.c the formatter
 * (pure), http_req.c the request object and its accessors, http_conn.c
 * the connection layer (sockets, timeouts, lingering close, the send
 * path and the "responded" transition), then http_server.c (listeners,
 * accept, the server's life) and http_respond.c (the respond and stream
 * calls below). Shared structures: http_core.h. Each connection has its
 * own input buffer and event pair, not a bufferevent (docs/decisions.md).
 *
 * Why not evhttp: it answers its own parse errors with HTML, buffers whole
 * bodies before a handler can refuse them, and measured 0.85-0.9x nginx
 * before any storage work (docs/decisions.md).
 *
 * Threading: everything here runs on the one event loop thread of a worker;
 * nothing is thread-safe. Responses may be sent later than the handler
 * call (asynchronously, e.g. after a group-commit fsync), from any
 * callback of that loop, and are written at once: a request stays valid
 * until it is responded to, even if its connection died meanwhile.
 */
#ifndef CASKD_SERVER_HTTP_H
#define CASKD_SERVER_HTTP_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

struct event_base;
struct srv_http_server;
struct srv_http_req;

enum srv_http_method {
	SRV_HTTP_GET,
	SRV_HTTP_HEAD,
	SRV_HTTP_PUT,
	SRV_HTTP_POST,
	SRV_HTTP_DELETE,
	SRV_HTTP_OPTIONS,
	SRV_HTTP_OTHER, /* any other token: the router answers 501 */
};

struct srv_http_opts {
	size_t max_line_bytes;   /* request line longer: 414 (default 8 KiB) */
	size_t max_header_bytes; /* all header lines longer: 431 (16 KiB) */
	int max_conns;           /* more open connections: 503 and close (4096) */
	int idle_timeout_ms;     /* keep-alive idle connection closed (60000) */
	/* A request's head must arrive within this, and its body must bring
	 * at least min_rate x this many bytes (or its rest) in every window
	 * of this length: else 408 (30000). */
	int read_timeout_ms;
	size_t min_rate;         /* bytes per second; 0: any byte will do (1024) */
	/* A client with responses waiting must take at least min_rate x
	 * this many bytes of them (or all) in every window of this length,
	 * else the connection is closed (60000). */
	int send_timeout_ms;
	/* Request bodies this server holds at once: a body is reserved whole
	 * (its Content-Length, or its capacity as a chunked one grows) and a
	 * reservation past this is answered 503, before the body is read
	 * (256 MiB). */
	size_t body_memory;
	/* Optional: where the layer counts for /metrics (shared memory the
	 * caller owns; relaxed atomic stores, one writer). NULL: nowhere. */
	struct srv_http_counters *counters;
};

/* What the layer counts, for the caller's metrics. */
struct srv_http_counters {
	_Atomic uint64_t body_bytes;     /* gauge: body memory reserved now */
	_Atomic uint64_t body_refused;   /* 503s: no body memory left */
	_Atomic uint64_t conns_refused;  /* 503s: over max_conns */
	_Atomic uint64_t send_timeouts;  /* closed: responses not taken */
};

/* How often a server that holds its accepts (accept_hold) asks again. */
#define SRV_HTTP_ACCEPT_RECHECK_MS 10

struct srv_http_callbacks {
	/* After the headers of a request are parsed: the largest body this
	 * request may carry. A larger Content-Length (or a chunked body that
	 * grows past it) gets 413 before the body is read, and the connection
	 * closes after the response. NULL: no limit beyond SIZE_MAX. */
	size_t (*body_limit)(struct srv_http_req *req, void *arg);
	/* A complete request (body included). Must eventually call one of the
	 * srv_http_respond*() functions, now or later. */
	void (*handle)(struct srv_http_req *req, void *arg);
	/* After each response is queued: for metrics and the access log.
	 * method/path may be "-" for requests that never parsed. */
	void (*logged)(const struct srv_http_req *req, int status,
		       size_t body_bytes, uint64_t duration_ns, void *arg);
	/* After each accepted and each closed connection, with this
	 * server's count: nonzero to stop accepting for now, 0 to accept.
	 * While it holds it is asked again at every close and every
	 * SRV_HTTP_ACCEPT_RECHECK_MS. Workers share one listening socket and
	 * the first to wake takes every waiting connection; this lets a
	 * fuller worker leave new ones to the others (nginx's
	 * accept_disabled), and publish its count. NULL: always accept. */
	int (*accept_hold)(int nconns, void *arg);
};

/* Fills *opts with the defaults above. */
void srv_http_opts_default(struct srv_http_opts *opts);

/* Serves the listening sockets fds[0..nfds) (already bound and listening,
 * shared with other processes; made non-blocking here). NULL on failure
 * with errno set. */
struct srv_http_server *srv_http_server_new(struct event_base *base,
					    const int *fds, int nfds,
					    const struct srv_http_opts *opts,
					    const struct srv_http_callbacks *cb,
					    void *arg);
/* Graceful stop: stop accepting (listeners freed; the fds stay open for
 * the caller), close idle connections, answer requests already received
 * with Connection: close, and call done(arg) once no connection is left.
 * Calling it twice is harmless. */
void srv_http_server_shutdown(struct srv_http_server *srv,
			      void (*done)(void *arg), void *arg);
/* Frees everything at once; pending requests are dropped. */
void srv_http_server_free(struct srv_http_server *srv);
/* Open connections right now. */
int srv_http_server_conns(const struct srv_http_server *srv);

/* Request accessors. Strings are NUL-terminated and live as long as req. */
enum srv_http_method srv_http_req_method(const struct srv_http_req *req);
const char *srv_http_req_method_str(const struct srv_http_req *req);
/* The path as sent, before '?', not percent-decoded. */
const char *srv_http_req_path(const struct srv_http_req *req);
/* The raw query after '?', or NULL if none. */
const char *srv_http_req_query(const struct srv_http_req *req);
/* First header with this name (case-insensitive), value trimmed; or NULL. */
const char *srv_http_req_header(const struct srv_http_req *req,
				const char *name);
/* The whole body (de-chunked); *len = 0 and a non-NULL pointer if none. */
const void *srv_http_req_body(const struct srv_http_req *req, size_t *len);
/* 1 if the peer is on a loopback address (127/8, ::1, unix). */
int srv_http_req_peer_is_loopback(const struct srv_http_req *req);
/* The peer's address as text into buf (len bytes): "127.0.0.1:5555",
 * "[::1]:5555", "unix", or "-" when unknown (a refusal logged before it
 * had a connection). It is kept with the request, so it is there after
 * the connection has gone. 0, -ENOSPC if buf is too small (64 bytes
 * always suffice), or the -errno of inet_ntop. */
int srv_http_req_peer_str(const struct srv_http_req *req, char *buf,
			  size_t len);
/* 0 once the connection of a pending request has gone away (reset, or
 * freed with the server). A client that only half-closed still counts:
 * it is answered. */
int srv_http_req_conn_alive(const struct srv_http_req *req);

/* From body_limit: the JSON error code and message (static strings) of
 * the 413 this request gets if its body is over the limit. */
void srv_http_req_limit_error(struct srv_http_req *req, const char *code,
			      const char *message);

/* Adds a response header before responding (name and value are copied). */
int srv_http_add_header(struct srv_http_req *req, const char *name,
			const char *value);
/* Responds and releases req. The body is copied. content_type may be NULL
 * (no Content-Type). Content-Length is always sent; for HEAD the body is
 * not. Server, Date and Connection headers are added here, and
 * Retry-After on a 503. Called from outside the connection's callbacks,
 * it writes the response before it returns (the write event is armed only
 * if the socket is full). */
void srv_http_respond(struct srv_http_req *req, int status,
		      const char *content_type, const void *body, size_t len);
/* As srv_http_respond, without copying: body must stay valid until
 * release(body, len, release_arg) is called (release may be NULL). Used to
 * send values straight from the read-only mmap of database.bin. */
void srv_http_respond_ref(struct srv_http_req *req, int status,
			  const char *content_type, const void *body,
			  size_t len,
			  void (*release)(const void *body, size_t len,
					  void *release_arg),
			  void *release_arg);
/* Error response: JSON body {"error":code,"message":message}, with the
 * message JSON-escaped. */
void srv_http_respond_error(struct srv_http_req *req, int status,
			    const char *code, const char *message);

/* Streamed responses, for bodies too large to hold (a listing): the body
 * goes in pieces as the client takes them, so a connection holds at most
 * about 2 x SRV_HTTP_STREAM_LOW_BYTES of it, whatever its size.
 *
 * srv_http_stream_begin() responds with the status line and headers:
 * Transfer-Encoding: chunked to an HTTP/1.1 client; to HTTP/1.0 no
 * length, and the connection closes after the body. Then more(req, arg)
 * is called from the loop (never nested in a call of this API) each time
 * the connection's output holds less than SRV_HTTP_STREAM_LOW_BYTES; it
 * adds about that much with srv_http_stream_write() and, after the last
 * piece, calls srv_http_stream_end(req, 1). Once the connection has died
 * (srv_http_req_conn_alive() == 0) more() is called once more, and must
 * end with srv_http_stream_end(req, 0); so must a producer that cannot
 * go on: the client then sees the body cut short (no last chunk), never
 * a complete-looking one. srv_http_stream_end() releases req.
 *
 * begin returns 0 (more() will be called), 1 when no body is sent (HEAD:
 * the response is complete and req released), or -errno with nothing
 * sent (respond otherwise). write returns 0 or -errno (the producer then
 * ends with 0). */
#define SRV_HTTP_STREAM_LOW_BYTES (64u * 1024)
int srv_http_stream_begin(struct srv_http_req *req, int status,
			  const char *content_type,
			  void (*more)(struct srv_http_req *req, void *arg),
			  void *arg);
int srv_http_stream_write(struct srv_http_req *req, const void *data,
			  size_t len);
void srv_http_stream_end(struct srv_http_req *req, int complete);
/* A producer whose source has something new (a watch: the log grew): has
 * more() called soon if the output runs low now; with output waiting it
 * is called once that drains, as always. */
void srv_http_stream_kick(struct srv_http_req *req);

/* "Not Found" for 404, etc.; "Unknown" for codes it does not know. */
const char *srv_http_reason(int status);

#endif
