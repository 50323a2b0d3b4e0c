/* server/http_response.h — the formatter of the HTTP layer's responses.
 *
 * Owns: the bytes of a response and nothing else: the status line and
 * the headers this layer writes itself (Server, Date, Content-Length or
 * Transfer-Encoding, Content-Type, Connection, Retry-After on a 503), a
 * handler's added header lines (checked so none can break the framing),
 * chunk frames and JSON error bodies. Pure: no socket, connection or
 * clock; server/http_conn.c queues what it formats. Internal to
 * server/http_*.c.
 */
#ifndef CASKD_SERVER_HTTP_RESPONSE_H
#define CASKD_SERVER_HTTP_RESPONSE_H

#include "server/http_buf.h"

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

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
/* Bytes a chunk frame adds to its data: "<hex size>\r\n" and "\r\n". */
#define SRV_HTTP_CHUNK_FRAME_BYTES 24

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

/* Writes the status line and headers; p needs SRV_HTTP_HEAD_FIXED_BYTES
 * plus the lengths of h->ctype and h->extra. Returns the end. */
char *srv_http_format_head(char *p, const struct srv_http_head *h);
/* The IMF-fixdate of t into buf (SRV_HTTP_DATE_BYTES), by hand:
 * strftime follows the locale. */
void srv_http_format_date(char *buf, time_t t);
/* data as one piece of a body into p (room for len +
 * SRV_HTTP_CHUNK_FRAME_BYTES): framed as a chunk if chunked, else as it
 * is. Returns the end. */
char *srv_http_format_piece(char *p, const void *data, size_t len, bool chunked);
/* {"error":"<code>","message":"<msg>"} into dst (cap bytes, at least
 * SRV_HTTP_ERROR_BODY_BYTES); returns its length. */
size_t srv_http_json_error(char *dst, size_t cap, const char *code,
			   const char *msg);
/* Appends "name: value" CRLF to the added headers x: 0, -EINVAL for a
 * name this layer writes itself or a value with CR, LF or another
 * control (header injection), -ENOMEM. */
int srv_http_extra_add(struct srv_http_buf *x, const char *name, const char *value);
/* Do the added headers x hold a Retry-After? */
bool srv_http_extra_has_retry_after(const struct srv_http_buf *x);

#endif
