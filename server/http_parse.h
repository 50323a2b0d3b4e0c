/* server/http_parse.h — the HTTP/1.1 request parser (RFC 9112), pure.
 *
 * Owns: turning request bytes into a request head (struct srv_http_msg)
 * and body bytes, and nothing else. srv_http_parse() is a function of the
 * parser's state and the bytes it is given: no socket, no clock, no
 * callback, no call into the API layer. It answers with a code: "need
 * more bytes", "head complete", "body bytes here", "request complete", or
 * an error code (SRV_HTTP_PE_*) that the caller maps to a status, as
 * nginx's ngx_http_parse_request_line() leaves the status to its callers.
 *
 * Strictness: what llhttp does in its default (strict) mode, or stricter
 * where nginx is (docs/decisions.md, "The request parser: strict"):
 *  - every line ends in CRLF: request line, field lines, chunk-size lines,
 *    chunk data, the last chunk, trailer lines; a bare LF is an error;
 *  - chunk-size = 1*HEXDIG and chunk-ext follows RFC 9112 7.1.1 exactly
 *    (BWS only before ";" and around "=", token or quoted-string values);
 *  - request-target bytes are those RFC 3986 allows (no raw non-ASCII,
 *    no controls, no '#', '"', '<', '>', '\', '^', '`', '{', '|', '}',
 *    and '[' ']' only inside an absolute-form authority);
 *  - exactly one valid Host in HTTP/1.1 (RFC 9112 3.2), at most one in
 *    HTTP/1.0; one Content-Length field at most; Content-Length with
 *    Transfer-Encoding, or Transfer-Encoding in HTTP/1.0, refused;
 *    only "chunked" is a known transfer coding;
 *  - no obs-fold, no whitespace before a field's colon.
 *
 * Splitting: the bytes may come in pieces of any size, down to one at a
 * time, with the same outcome as in one piece; srv_http_parse() takes
 * (*used) every byte it is given up to the end of the request, so the
 * caller never gives the same byte twice. The head is copied into the
 * message's own buffer (its strings must outlive the caller's input);
 * body bytes are not copied, they are pointed at (SRV_HTTP_PARSE_BODY).
 *
 * Sequence per request: srv_http_parser_start(), then srv_http_parse()
 * until SRV_HTTP_PARSE_HEAD; then optionally srv_http_parse_body_limit();
 * then srv_http_parse() again (BODY any number of times) until
 * SRV_HTTP_PARSE_DONE. After an error the parser stays failed.
 *
 * Not thread-safe; one parser per connection.
 */
#ifndef CASKD_SERVER_HTTP_PARSE_H
#define CASKD_SERVER_HTTP_PARSE_H

#include "server/http.h"
#include "server/http_buf.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Header fields per request; more is 431. Browsers send about 20; the cap
 * sizes the field table of every message. */
#define SRV_HTTP_MAX_FIELDS 100

/* What srv_http_parse() returns besides an error (< 0). */
enum {
	SRV_HTTP_PARSE_AGAIN = 1, /* every byte taken; give more */
	SRV_HTTP_PARSE_HEAD = 2,  /* the head is complete, in the message */
	SRV_HTTP_PARSE_BODY = 3,  /* body bytes: data[span.off, +span.len) */
	SRV_HTTP_PARSE_DONE = 4,  /* the request is complete */
};

/* Errors, below -4096 like the engine's codes and clear of them. The
 * answer to each (status, JSON code, text) is in one table,
 * srv_http_refusal(); the comment gives its status. */
#define SRV_HTTP_PE_BASE 4200
#define SRV_HTTP_PE(n) (-(SRV_HTTP_PE_BASE + (n)))
enum srv_http_perr {
	SRV_HTTP_PE_EMPTY_LINES = SRV_HTTP_PE(1), /* 400 */
	/* 400: a line ends in LF without CR */
	SRV_HTTP_PE_BARE_LF = SRV_HTTP_PE(2),
	SRV_HTTP_PE_REQUEST_LINE = SRV_HTTP_PE(3), /* 400 */
	/* 400: a byte RFC 3986 does not allow */
	SRV_HTTP_PE_TARGET = SRV_HTTP_PE(4),
	SRV_HTTP_PE_VERSION = SRV_HTTP_PE(5), /* 400: not HTTP/DIGIT.DIGIT */
	/* 505: not 1.0 or 1.1 */
	SRV_HTTP_PE_VERSION_UNSUPPORTED = SRV_HTTP_PE(6),
	SRV_HTTP_PE_LINE_TOO_LONG = SRV_HTTP_PE(7), /* 414 */
	SRV_HTTP_PE_HEADERS_TOO_LARGE = SRV_HTTP_PE(8), /* 431 */
	SRV_HTTP_PE_TOO_MANY_FIELDS = SRV_HTTP_PE(9), /* 431 */
	SRV_HTTP_PE_FIELD = SRV_HTTP_PE(10), /* 400: malformed field line */
	/* 400: a field line starts with SP/HTAB */
	SRV_HTTP_PE_OBS_FOLD = SRV_HTTP_PE(11),
	/* 400: a byte not allowed in a value */
	SRV_HTTP_PE_FIELD_VALUE = SRV_HTTP_PE(12),
	/* 400: none in an HTTP/1.1 request */
	SRV_HTTP_PE_HOST_MISSING = SRV_HTTP_PE(13),
	SRV_HTTP_PE_HOST_REPEATED = SRV_HTTP_PE(14), /* 400 */
	/* 400: not uri-host [ ":" port ] */
	SRV_HTTP_PE_HOST_INVALID = SRV_HTTP_PE(15),
	/* 400: malformed or too large */
	SRV_HTTP_PE_CONTENT_LENGTH = SRV_HTTP_PE(16),
	SRV_HTTP_PE_CL_REPEATED = SRV_HTTP_PE(17), /* 400 */
	SRV_HTTP_PE_CL_AND_TE = SRV_HTTP_PE(18), /* 400 */
	SRV_HTTP_PE_TE_HTTP10 = SRV_HTTP_PE(19), /* 400 */
	SRV_HTTP_PE_TE_UNSUPPORTED = SRV_HTTP_PE(20), /* 501 */
	SRV_HTTP_PE_EXPECT = SRV_HTTP_PE(21), /* 417 */
	/* 400: not 1*HEXDIG, or overflow */
	SRV_HTTP_PE_CHUNK_SIZE = SRV_HTTP_PE(22),
	SRV_HTTP_PE_CHUNK_EXT = SRV_HTTP_PE(23), /* 400: chunk-ext grammar */
	SRV_HTTP_PE_CHUNK_LINE_TOO_LONG = SRV_HTTP_PE(24), /* 400 */
	/* 400: chunk line not ended by CRLF */
	SRV_HTTP_PE_CHUNK_EOL = SRV_HTTP_PE(25),
	/* 400: chunk data not followed by CRLF */
	SRV_HTTP_PE_CHUNK_DATA_EOL = SRV_HTTP_PE(26),
	/* 400: malformed trailer field */
	SRV_HTTP_PE_TRAILER = SRV_HTTP_PE(27),
	SRV_HTTP_PE_TRAILER_TOO_LARGE = SRV_HTTP_PE(28), /* 431 */
	SRV_HTTP_PE_BODY_TOO_LARGE = SRV_HTTP_PE(29), /* 413 */
	/* 503: the head buffer could not grow */
	SRV_HTTP_PE_NOMEM = SRV_HTTP_PE(30),
	/* 400: a space inside the target ("GET /kv/a b HTTP/1.1") */
	SRV_HTTP_PE_TARGET_SPACE = SRV_HTTP_PE(31),
	/* Refusals of the connection layer (server/http_conn.c), never
	 * returned by the parser: they share its table. */
	SRV_HTTP_PE_HEAD_TIMEOUT = SRV_HTTP_PE(32), /* 408 */
	SRV_HTTP_PE_BODY_TIMEOUT = SRV_HTTP_PE(33), /* 408: below --min-rate */
	SRV_HTTP_PE_BODY_MEMORY = SRV_HTTP_PE(34),  /* 503: --body-memory full */
	SRV_HTTP_PE_LAST = SRV_HTTP_PE_BODY_MEMORY,
};

/* How a request refused for an SRV_HTTP_PE_* code is answered. */
struct srv_http_refusal {
	int status;
	const char *code;  /* the JSON "error" */
	const char *text;  /* the JSON "message", for a person */
};

struct srv_http_limits {
	size_t max_line_bytes;   /* request line, without CRLF */
	size_t max_header_bytes; /* field lines with their CRLFs */
};

struct srv_http_field {
	const char *name;  /* NUL-terminated, inside the message's head */
	const char *value; /* without OWS, NUL-terminated, ditto */
};

/* One request head. Strings point into head.data and are valid from
 * SRV_HTTP_PARSE_HEAD until srv_http_msg_reset(). */
struct srv_http_msg {
	struct srv_http_buf head; /* request line and fields, NULs inside */
	enum srv_http_method method;
	const char *method_str;   /* "-" until the head is parsed */
	const char *path;         /* before '?', not decoded; "-" until then */
	const char *query;        /* after '?', or NULL */
	const char *host;         /* Host value, or NULL (HTTP/1.0 only) */
	int minor;                /* HTTP/1.<minor> */
	int nfields;
	size_t content_length;    /* 0 unless has_cl */
	bool has_cl;
	bool chunked;
	bool expect_continue;     /* Expect: 100-continue, HTTP/1.1 only */
	bool keep_alive;          /* the connection persists after it */
	struct srv_http_field fields[SRV_HTTP_MAX_FIELDS];
};

/* A span of the bytes last given to srv_http_parse(). */
struct srv_http_span {
	size_t off;
	size_t len;
};

/* The parser's state; its fields are private to http_parse.c. */
struct srv_http_parser {
	struct srv_http_limits lim;
	struct srv_http_msg *msg;
	int phase;            /* enum srv_parse_phase */
	int chunk_state;      /* enum srv_chunk_state, in chunked bodies */
	int error;            /* the error once failed, else 0 */
	bool started;         /* a byte of this request was taken */
	/* head */
	size_t line;          /* start of the unterminated line in head */
	size_t rl_bytes;      /* request line with CRLF; 0 until complete */
	size_t hdr_bytes;     /* complete field lines with their CRLFs */
	int empty_lines;
	int lines;            /* complete field lines */
	/* body */
	size_t body_limit;
	size_t body_len;      /* body bytes so far */
	size_t left;          /* of the Content-Length body or this chunk */
	size_t chunk_line;    /* bytes of this chunk-size line so far */
	size_t trailer_bytes; /* of the trailer section so far */
};

void srv_http_parser_init(struct srv_http_parser *p,
			  const struct srv_http_limits *lim);
/* Begins a request whose head goes into msg (reset here). */
void srv_http_parser_start(struct srv_http_parser *p,
			   struct srv_http_msg *msg);
/* Parses data[0..len): see the codes above. *used: bytes taken (all of
 * them, except those after the end of the request). span is set for
 * SRV_HTTP_PARSE_BODY only. */
int srv_http_parse(struct srv_http_parser *p, const char *data, size_t len,
		   size_t *used, struct srv_http_span *span);
/* After SRV_HTTP_PARSE_HEAD: the largest body this request may carry
 * (default SIZE_MAX). SRV_HTTP_PE_BODY_TOO_LARGE at once if its
 * Content-Length is larger (the parser fails); a chunked body fails when
 * a chunk would take it past the limit. */
int srv_http_parse_body_limit(struct srv_http_parser *p, size_t limit);
/* Content-Length body bytes still to come (0 when not in such a body):
 * a caller may read them itself (straight into its body buffer) and say
 * so with srv_http_parse_skip_body(p, n), n <= that. */
size_t srv_http_parse_cl_left(const struct srv_http_parser *p);
void srv_http_parse_skip_body(struct srv_http_parser *p, size_t n);
/* A byte of the current request was taken (a request has begun). */
bool srv_http_parse_started(const struct srv_http_parser *p);
/* The head is not complete yet. */
bool srv_http_parse_in_head(const struct srv_http_parser *p);
/* The answer to an SRV_HTTP_PE_* code, from the one table of them (an
 * unknown code: 400, "unknown parse error"). */
const struct srv_http_refusal *srv_http_refusal(int rc);
/* Its text alone, for a person. */
const char *srv_http_parse_strerror(int rc);

/* s is a non-empty token (RFC 9110 5.6.2): a valid field name. */
bool srv_http_is_token(const char *s);
/* Every byte of s may be in a field value: no CR, LF, NUL or other
 * control but HTAB (a response header cannot be injected through it). */
bool srv_http_is_field_value(const char *s);

/* Empties a message for the next request; a large head buffer is freed. */
void srv_http_msg_reset(struct srv_http_msg *msg);
void srv_http_msg_free(struct srv_http_msg *msg);

#endif
