/* server/http_parse.c — the HTTP/1.1 request parser (contract and
 * strictness rules in http_parse.h).
 *
 * Owns: the parser state (struct srv_http_parser) and the message it
 * fills (struct srv_http_msg). Pure: no I/O, no clock, no allocation but
 * the message's head buffer, no callback.
 *
 * Invariants:
 *  - The head is copied into msg->head line by line as it arrives; only
 *    a complete head is parsed, in place (NULs written into the copy).
 *    Size limits are checked before bytes are copied, and fire exactly
 *    when the complete line would be over its limit, so the outcome never
 *    depends on where the input was split.
 *  - Body bytes are never copied: BODY hands back a span of the input.
 *  - A failed parser stays failed: every later call returns its error.
 *
 * Map of this file:
 *   1. constants, phases, character classes
 *   2. head: scanning lines as they arrive, with limits
 *   3. head: request line, target, version
 *   4. head: field lines, Host, framing
 *   5. body: Content-Length, chunked (a byte-at-a-time machine), trailers
 *   6. entry points and messages
 */
#include "server/http_parse.h"
#include "server/pct.h"

#include <assert.h>
#include <errno.h>
#include <stdint.h>
#include <string.h>
#include <strings.h>

/* ==== 1. constants, phases, character classes ========================= */

/* Empty lines ignored before a request line: RFC 9112 2.2 asks servers to
 * skip at least one (some clients send CRLF after a POST body). */
#define SRV_PARSE_MAX_EMPTY_LINES 4
/* A chunk-size line (extensions included, CRLF not) longer than this is
 * refused: extensions carry nothing caskd uses. */
#define SRV_PARSE_MAX_CHUNK_LINE_BYTES 4096
/* CR LF. */
#define SRV_PARSE_EOL_BYTES 2
/* Bits per hexadecimal digit of a chunk size. */
#define SRV_PARSE_HEX_BITS 4

enum srv_parse_phase {
	SRV_PHASE_HEAD,       /* request line and fields */
	SRV_PHASE_BODY_START, /* head returned; framing not acted on yet */
	SRV_PHASE_CL,         /* inside a Content-Length body */
	SRV_PHASE_CHUNKED,    /* inside a chunked body (chunk_state) */
	SRV_PHASE_DONE,
};

/* RFC 9112 7.1: chunk = chunk-size [ chunk-ext ] CRLF chunk-data CRLF,
 * chunk-ext = *( BWS ";" BWS name [ BWS "=" BWS value ] ). */
enum srv_chunk_state {
	SRV_CS_SIZE_FIRST,  /* the first HEXDIG of a chunk-size */
	SRV_CS_SIZE,        /* more HEXDIG, or what follows them */
	SRV_CS_BWS_SEMI,    /* BWS after the size or a value: ";" must come */
	SRV_CS_NAME_FIRST,  /* after ";" (and BWS): a token must come */
	SRV_CS_NAME,        /* in an extension name */
	SRV_CS_BWS_EQ,      /* BWS after a name: "=" or ";" must come */
	SRV_CS_VAL_FIRST,   /* after "=" (and BWS): token or quoted-string */
	SRV_CS_TOKEN_VAL,   /* in a token value */
	SRV_CS_QUOTED,      /* in a quoted-string value */
	SRV_CS_QUOTED_PAIR, /* after a backslash in it */
	SRV_CS_QUOTED_END,  /* after the closing quote */
	SRV_CS_SIZE_LF,     /* after the CR of the chunk-size line */
	SRV_CS_DATA,        /* chunk data (left bytes to go) */
	SRV_CS_DATA_CR,     /* the CR after chunk data */
	SRV_CS_DATA_LF,
	SRV_CS_TRAILER,     /* the start of a trailer line, or the final CRLF */
	SRV_CS_TNAME,       /* in a trailer field name */
	SRV_CS_TVALUE,      /* after its colon */
	SRV_CS_TLF,         /* after the CR ending a trailer line */
	SRV_CS_END_LF,      /* after the CR of the final CRLF */
};

static bool srv_is_alpha(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static bool srv_is_digit(unsigned char c)
{
	return c >= '0' && c <= '9';
}

static int srv_hex_value(unsigned char c)
{
	return srv_pct_hex((char)c);
}

/* RFC 9110 5.6.2 tchar. */
static bool srv_is_tchar(unsigned char c)
{
	return srv_is_alpha(c) || srv_is_digit(c) ||
	       (c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL);
}

static bool srv_is_ws(unsigned char c)
{
	return c == ' ' || c == '\t';
}

/* Field value bytes (RFC 9110 5.5): VCHAR, SP, HTAB and obs-text. */
static bool srv_is_value_char(unsigned char c)
{
	return c == '\t' || (c >= ' ' && c != 0x7f);
}

/* RFC 3986 unreserved and sub-delims. */
static bool srv_is_unreserved(unsigned char c)
{
	return srv_is_alpha(c) || srv_is_digit(c) ||
	       (c != '\0' && strchr("-._~", c) != NULL);
}

static bool srv_is_sub_delim(unsigned char c)
{
	return c != '\0' && strchr("!$&'()*+,;=", c) != NULL;
}

/* Bytes of an origin-form path and query (RFC 3986 pchar, "/", "?"),
 * with "%": whether escapes are well formed is the router's to say,
 * with the more precise error (400 bad_key). */
static bool srv_is_target_char(unsigned char c)
{
	return srv_is_unreserved(c) || srv_is_sub_delim(c) ||
	       (c != '\0' && strchr("%:@/?", c) != NULL);
}

/* RFC 9110 5.6.4 qdtext, and what may follow a backslash. */
static bool srv_is_qdtext(unsigned char c)
{
	return c == '\t' || c == ' ' || c == 0x21 ||
	       (c >= 0x23 && c <= 0x5b) || (c >= 0x5d && c <= 0x7e) ||
	       c >= 0x80;
}

static bool srv_is_quoted_pair_char(unsigned char c)
{
	return c == '\t' || (c >= ' ' && c != 0x7f);
}

/* Case-insensitive match of a field name against a lowercase literal. */
static bool srv_name_is(const char *name, size_t len, const char *lit)
{
	return len == strlen(lit) && strncasecmp(name, lit, len) == 0;
}

static int srv_fail(struct srv_http_parser *p, int rc)
{
	assert(rc < 0);
	p->error = rc;
	return rc;
}

/* ==== 2. head: scanning lines ========================================= */

/* Byte i of the line being received: in the head copy, then in data. */
static unsigned char srv_line_byte(const struct srv_http_parser *p,
				   const char *data, size_t i)
{
	const struct srv_http_buf *h = &p->msg->head;
	size_t have = h->len - p->line;

	return (unsigned char)(i < have ? h->data[p->line + i] : data[i - have]);
}

/* Could the line so far (bytes long) still be the empty line ending the
 * head? Then no size limit applies to it. */
static bool srv_may_be_empty_line(const struct srv_http_parser *p,
				  const char *data, size_t bytes)
{
	if (bytes == 0 || bytes > SRV_PARSE_EOL_BYTES)
		return false;
	return srv_line_byte(p, data, 0) == '\r' &&
	       (bytes == 1 || srv_line_byte(p, data, 1) == '\n');
}

/* Before n more bytes (data[0..n)) of the current line are copied:
 * would the line, once complete, be over its limit? It is complete when
 * they end in LF; otherwise it needs at least one byte more. */
static int srv_check_line_size(const struct srv_http_parser *p,
			       const char *data, size_t n, bool complete)
{
	size_t bytes = p->msg->head.len - p->line + n;
	size_t least = complete ? bytes : bytes + 1;

	if (p->rl_bytes == 0)
		return least > p->lim.max_line_bytes + SRV_PARSE_EOL_BYTES
			       ? SRV_HTTP_PE_LINE_TOO_LONG
			       : 0;
	if (srv_may_be_empty_line(p, data, bytes))
		return 0;
	return least > p->lim.max_header_bytes - p->hdr_bytes
		       ? SRV_HTTP_PE_HEADERS_TOO_LARGE
		       : 0;
}

static int srv_parse_head_done(struct srv_http_parser *p);

/* A line ending in LF was copied: [p->line, head.len). */
static int srv_head_line(struct srv_http_parser *p)
{
	struct srv_http_buf *h = &p->msg->head;
	size_t bytes = h->len - p->line;

	if (bytes < SRV_PARSE_EOL_BYTES || h->data[h->len - 2] != '\r')
		return SRV_HTTP_PE_BARE_LF;
	if (p->rl_bytes == 0 && bytes == SRV_PARSE_EOL_BYTES) {
		if (++p->empty_lines > SRV_PARSE_MAX_EMPTY_LINES)
			return SRV_HTTP_PE_EMPTY_LINES;
		h->len = 0; /* not part of the request */
		return 0;
	}
	if (p->rl_bytes == 0) {
		p->rl_bytes = bytes;
	} else if (bytes == SRV_PARSE_EOL_BYTES) {
		return srv_parse_head_done(p);
	} else {
		if (++p->lines > SRV_HTTP_MAX_FIELDS)
			return SRV_HTTP_PE_TOO_MANY_FIELDS;
		p->hdr_bytes += bytes;
	}
	p->line = h->len;
	return 0;
}

/* Copies head bytes line by line; parses the head once its empty line
 * has come. */
static int srv_parse_head(struct srv_http_parser *p, const char *data,
			  size_t len, size_t *used)
{
	size_t head_max = p->lim.max_line_bytes + p->lim.max_header_bytes +
			  2 * SRV_PARSE_EOL_BYTES;
	size_t pos = 0;
	int rc;

	while (pos < len) {
		const char *nl = memchr(data + pos, '\n', len - pos);
		size_t n = nl ? (size_t)(nl - (data + pos)) + 1 : len - pos;

		rc = srv_check_line_size(p, data + pos, n, nl != NULL);
		if (rc == 0 && srv_http_buf_append(&p->msg->head, data + pos, n,
						   head_max) != 0)
			rc = SRV_HTTP_PE_NOMEM;
		if (rc != 0) {
			*used = pos;
			return srv_fail(p, rc);
		}
		p->started = true;
		pos += n;
		if (!nl)
			break;
		rc = srv_head_line(p);
		if (rc != 0) {
			*used = pos;
			return rc < 0 ? srv_fail(p, rc) : rc;
		}
	}
	*used = pos;
	return SRV_HTTP_PARSE_AGAIN;
}

/* ==== 3. head: request line =========================================== */

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
	case 7:
		if (memcmp(m, "OPTIONS", 7) == 0)
			return SRV_HTTP_OPTIONS;
		break;
	default:
		break;
	}
	return SRV_HTTP_OTHER;
}

/* "HTTP/" DIGIT "." DIGIT; only 1.0 and 1.1 are served. */
static int srv_parse_version(struct srv_http_msg *m, const char *v,
			     size_t len)
{
	static const char name[] = "HTTP/";
	const size_t major = sizeof(name) - 1, dot = major + 1, minor = dot + 1;

	if (len != minor + 1 || memcmp(v, name, major) != 0 ||
	    !srv_is_digit((unsigned char)v[major]) || v[dot] != '.' ||
	    !srv_is_digit((unsigned char)v[minor]))
		return SRV_HTTP_PE_VERSION;
	if (v[major] != '1' || v[minor] > '1')
		return SRV_HTTP_PE_VERSION_UNSUPPORTED;
	m->minor = v[minor] - '0';
	return 0;
}

/* RFC 3986 authority of an absolute-form target, [a, e): userinfo,
 * host (reg-name or IP-literal) and port bytes; the Host field rules
 * below check a host more closely. */
static bool srv_authority_ok(const char *a, const char *e)
{
	for (; a < e; a++) {
		unsigned char c = (unsigned char)*a;

		if (!srv_is_unreserved(c) && !srv_is_sub_delim(c) &&
		    strchr("%:@[]", c) == NULL)
			return false;
	}
	return true;
}

/* absolute-form (RFC 9112 3.2.2): the length of `scheme "://"` at t, or 0
 * if t does not start so. */
static size_t srv_scheme_len(const char *t, const char *e)
{
	const char *p = t;

	if (p == e || !srv_is_alpha((unsigned char)*p))
		return 0;
	while (p < e && (srv_is_alpha((unsigned char)*p) ||
			 srv_is_digit((unsigned char)*p) || *p == '+' ||
			 *p == '-' || *p == '.'))
		p++;
	if (e - p < 3 || memcmp(p, "://", 3) != 0)
		return 0;
	return (size_t)(p + 3 - t);
}

/* Checks the target [t, e) and splits it into path and query, in place
 * (*e becomes NUL). origin-form, absolute-form, or "*". */
static int srv_parse_target(struct srv_http_msg *m, char *t, char *e)
{
	char *path = t, *q;
	size_t scheme;

	if (*t != '/' && !(e - t == 1 && *t == '*')) {
		scheme = srv_scheme_len(t, e);
		if (scheme == 0)
			return SRV_HTTP_PE_TARGET;
		path = t + scheme;
		while (path < e && *path != '/' && *path != '?')
			path++;
		if (!srv_authority_ok(t + scheme, path))
			return SRV_HTTP_PE_TARGET;
	}
	for (const char *c = path; c < e; c++)
		if (!srv_is_target_char((unsigned char)*c))
			return SRV_HTTP_PE_TARGET;
	*e = '\0';
	q = strchr(path, '?');
	if (q) {
		*q = '\0';
		m->query = q + 1;
	}
	/* "http://host" or "http://host?q" asks for the root. */
	m->path = *path == '/' || *path == '*' ? path : "/";
	return 0;
}

/* method SP request-target SP HTTP-version, in [line, line + len). */
static int srv_parse_request_line(struct srv_http_msg *m, char *line,
				  size_t len)
{
	char *end = line + len, *sp = line, *target, *tend;
	int rc;

	while (sp < end && srv_is_tchar((unsigned char)*sp))
		sp++;
	if (sp == line || sp == end || *sp != ' ')
		return SRV_HTTP_PE_REQUEST_LINE;
	target = tend = sp + 1;
	while (tend < end && *tend != ' ')
		tend++;
	if (tend == target || tend == end)
		return SRV_HTTP_PE_REQUEST_LINE;
	rc = srv_parse_version(m, tend + 1, (size_t)(end - tend - 1));
	if (rc == SRV_HTTP_PE_VERSION) {
		/* "GET /kv/a b HTTP/1.1": what follows the first space is no
		 * version, but what follows the last one is; the space is in
		 * the target, and that is what to tell the client. */
		const char *last = memrchr(tend + 1, ' ', (size_t)(end - tend - 1));

		if (last && srv_parse_version(m, last + 1, (size_t)(end - last - 1)) !=
				    SRV_HTTP_PE_VERSION)
			return SRV_HTTP_PE_TARGET_SPACE;
	}
	if (rc != 0)
		return rc;
	rc = srv_parse_target(m, target, tend);
	if (rc != 0)
		return rc;
	*sp = '\0';
	m->method_str = line;
	m->method = srv_method_of(line, (size_t)(sp - line));
	return 0;
}

/* ==== 4. head: field lines, Host, framing ============================= */

/* What the fields say about framing, gathered before it is decided. */
struct srv_framing {
	int hosts;
	int te_fields;
	bool te_chunked;   /* the first Transfer-Encoding is "chunked" */
	bool expect_other; /* an Expect other than 100-continue */
	bool conn_close;
	bool conn_keep;
};

/* uri-host [ ":" port ] (RFC 9112 3.2, RFC 3986 3.2.2). An empty host is
 * refused, with or without a port: RFC 9110 7.2 keeps an empty Host for
 * targets without an authority, which an http request never has, and
 * nginx refuses both. */
static bool srv_host_ok(const char *h)
{
	if (*h == '\0' || *h == ':')
		return false;
	if (*h == '[') { /* IP-literal: IPv6address or IPvFuture */
		const char *close = strchr(h, ']');

		if (!close || close == h + 1)
			return false;
		for (h++; h < close; h++)
			if (!srv_is_unreserved((unsigned char)*h) &&
			    !srv_is_sub_delim((unsigned char)*h) && *h != ':')
				return false;
		h++;
	} else { /* reg-name, IPv4address among them */
		for (; *h && *h != ':'; h++) {
			unsigned char c = (unsigned char)*h;

			if (c == '%' && srv_hex_value((unsigned char)h[1]) >= 0 &&
			    srv_hex_value((unsigned char)h[2]) >= 0)
				h += 2;
			else if (!srv_is_unreserved(c) && !srv_is_sub_delim(c))
				return false;
		}
	}
	if (*h == ':')
		for (h++; srv_is_digit((unsigned char)*h); h++)
			;
	return *h == '\0';
}

/* 1*DIGIT, at most one field (RFC 9112 6.3; llhttp and nginx refuse a
 * second one even when equal). */
static int srv_note_content_length(struct srv_http_msg *m, const char *v)
{
	size_t n = 0;

	if (m->has_cl)
		return SRV_HTTP_PE_CL_REPEATED;
	if (*v == '\0')
		return SRV_HTTP_PE_CONTENT_LENGTH;
	for (const char *c = v; *c; c++) {
		size_t d = (size_t)(*c - '0');

		if (!srv_is_digit((unsigned char)*c) || n > (SIZE_MAX - d) / 10)
			return SRV_HTTP_PE_CONTENT_LENGTH;
		n = n * 10 + d;
	}
	m->has_cl = true;
	m->content_length = n;
	return 0;
}

/* Connection is a comma-separated token list. */
static void srv_note_connection(struct srv_framing *f, const char *v)
{
	while (*v) {
		const char *e = v + strcspn(v, ","), *s = v, *t = e;

		while (s < t && srv_is_ws((unsigned char)*s))
			s++;
		while (t > s && srv_is_ws((unsigned char)t[-1]))
			t--;
		if (srv_name_is(s, (size_t)(t - s), "close"))
			f->conn_close = true;
		else if (srv_name_is(s, (size_t)(t - s), "keep-alive"))
			f->conn_keep = true;
		v = *e ? e + 1 : e;
	}
}

/* Records what the parser itself needs from a field. */
static int srv_note_field(struct srv_http_msg *m, struct srv_framing *f,
			  const char *name, size_t nlen, const char *value)
{
	if (srv_name_is(name, nlen, "content-length"))
		return srv_note_content_length(m, value);
	if (srv_name_is(name, nlen, "transfer-encoding")) {
		/* Only a lone "chunked" is understood; several fields make
		 * a list, and any list is refused below. */
		if (f->te_fields++ == 0 && strcasecmp(value, "chunked") == 0)
			f->te_chunked = true;
	} else if (srv_name_is(name, nlen, "host")) {
		if (++f->hosts > 1)
			return SRV_HTTP_PE_HOST_REPEATED;
		if (!srv_host_ok(value))
			return SRV_HTTP_PE_HOST_INVALID;
		m->host = value;
	} else if (srv_name_is(name, nlen, "connection")) {
		srv_note_connection(f, value);
	} else if (srv_name_is(name, nlen, "expect")) {
		if (strcasecmp(value, "100-continue") == 0)
			m->expect_continue = true;
		else
			f->expect_other = true;
	}
	return 0;
}

/* field-name ":" OWS field-value OWS, in the line [p, e) (e at its CR). */
static int srv_parse_field(struct srv_http_msg *m, struct srv_framing *f,
			   char *p, char *e)
{
	char *colon = p, *v, *ve;

	if (srv_is_ws((unsigned char)*p))
		return SRV_HTTP_PE_OBS_FOLD;
	while (colon < e && srv_is_tchar((unsigned char)*colon))
		colon++;
	if (colon == p || colon == e || *colon != ':')
		return SRV_HTTP_PE_FIELD;
	for (v = colon + 1; v < e && srv_is_ws((unsigned char)*v); v++)
		;
	for (ve = e; ve > v && srv_is_ws((unsigned char)ve[-1]); ve--)
		;
	for (const char *c = v; c < ve; c++)
		if (!srv_is_value_char((unsigned char)*c))
			return SRV_HTTP_PE_FIELD_VALUE;
	/* *ve is whitespace or the CR of this line: the NUL stays inside. */
	*colon = '\0';
	*ve = '\0';
	assert(m->nfields < SRV_HTTP_MAX_FIELDS); /* srv_head_line counted */
	m->fields[m->nfields++] = (struct srv_http_field){ p, v };
	return srv_note_field(m, f, p, (size_t)(colon - p), v);
}

/* RFC 9112 6.1-6.3, 9110 7.2 and 10.1.1: decide framing and persistence,
 * refusing anything ambiguous (request smuggling). */
static int srv_check_framing(struct srv_http_msg *m,
			     const struct srv_framing *f)
{
	if (m->minor == 1 && f->hosts == 0)
		return SRV_HTTP_PE_HOST_MISSING;
	if (f->te_fields && m->has_cl)
		return SRV_HTTP_PE_CL_AND_TE;
	if (f->te_fields && m->minor == 0)
		return SRV_HTTP_PE_TE_HTTP10;
	if (f->te_fields && !(f->te_fields == 1 && f->te_chunked))
		return SRV_HTTP_PE_TE_UNSUPPORTED;
	if (f->expect_other)
		return SRV_HTTP_PE_EXPECT;
	m->chunked = f->te_chunked;
	if (m->minor == 0) /* 9110 15.2.1: never 100 to an HTTP/1.0 client */
		m->expect_continue = false;
	m->keep_alive = m->minor == 1 ? !f->conn_close
				      : f->conn_keep && !f->conn_close;
	return 0;
}

/* The head is complete in msg->head: request line, field lines, the
 * empty line, every line ending in CRLF. Parsed in place. */
static int srv_parse_head_done(struct srv_http_parser *p)
{
	struct srv_http_msg *m = p->msg;
	char *h = m->head.data, *end = h + m->head.len - SRV_PARSE_EOL_BYTES;
	char *line = h + p->rl_bytes;
	struct srv_framing f = { 0 };
	int rc;

	rc = srv_parse_request_line(m, h, p->rl_bytes - SRV_PARSE_EOL_BYTES);
	while (rc == 0 && line < end) {
		char *cr = memchr(line, '\n', (size_t)(end - line)) - 1;

		rc = srv_parse_field(m, &f, line, cr);
		line = cr + SRV_PARSE_EOL_BYTES;
	}
	if (rc == 0)
		rc = srv_check_framing(m, &f);
	if (rc != 0)
		return rc;
	p->phase = SRV_PHASE_BODY_START;
	return SRV_HTTP_PARSE_HEAD;
}

/* ==== 5. body ========================================================= */

static int srv_chunk_size_digit(struct srv_http_parser *p, int d)
{
	if (p->left > SIZE_MAX >> SRV_PARSE_HEX_BITS)
		return SRV_HTTP_PE_CHUNK_SIZE;
	p->left = p->left << SRV_PARSE_HEX_BITS | (size_t)d;
	return 0;
}

/* The LF of a chunk-size line: the chunk begins, or the trailers. */
static int srv_chunk_begin(struct srv_http_parser *p)
{
	p->chunk_line = 0;
	if (p->left == 0) {
		p->chunk_state = SRV_CS_TRAILER;
		return 0;
	}
	if (p->left > p->body_limit - p->body_len)
		return SRV_HTTP_PE_BODY_TOO_LARGE;
	p->chunk_state = SRV_CS_DATA;
	return 0;
}

/* What may follow a complete size, name or value: BWS, ";", CR. */
static int srv_chunk_after(struct srv_http_parser *p, unsigned char c,
			   int ws_state)
{
	if (srv_is_ws(c))
		p->chunk_state = ws_state;
	else if (c == ';')
		p->chunk_state = SRV_CS_NAME_FIRST;
	else if (c == '\r')
		p->chunk_state = SRV_CS_SIZE_LF;
	else
		return SRV_HTTP_PE_CHUNK_EXT;
	return 0;
}

/* One byte of a chunk-size line (size and extensions). */
static int srv_chunk_line_byte(struct srv_http_parser *p, unsigned char c)
{
	int d;

	if (c == '\n' && p->chunk_state != SRV_CS_SIZE_LF)
		return SRV_HTTP_PE_CHUNK_EOL; /* a bare LF */
	/* Counted up to and with its CR, which the limit does not count. */
	if (p->chunk_state != SRV_CS_SIZE_LF &&
	    ++p->chunk_line > SRV_PARSE_MAX_CHUNK_LINE_BYTES + 1)
		return SRV_HTTP_PE_CHUNK_LINE_TOO_LONG;
	switch (p->chunk_state) {
	case SRV_CS_SIZE_FIRST:
		d = srv_hex_value(c);
		if (d < 0)
			return SRV_HTTP_PE_CHUNK_SIZE;
		p->chunk_state = SRV_CS_SIZE;
		return srv_chunk_size_digit(p, d);
	case SRV_CS_SIZE:
		d = srv_hex_value(c);
		if (d >= 0)
			return srv_chunk_size_digit(p, d);
		if (!srv_is_ws(c) && c != ';' && c != '\r')
			return SRV_HTTP_PE_CHUNK_SIZE;
		return srv_chunk_after(p, c, SRV_CS_BWS_SEMI);
	case SRV_CS_BWS_SEMI:
		if (srv_is_ws(c))
			return 0;
		if (c != ';')
			return SRV_HTTP_PE_CHUNK_EXT;
		p->chunk_state = SRV_CS_NAME_FIRST;
		return 0;
	case SRV_CS_NAME_FIRST:
		if (srv_is_ws(c))
			return 0;
		if (!srv_is_tchar(c))
			return SRV_HTTP_PE_CHUNK_EXT;
		p->chunk_state = SRV_CS_NAME;
		return 0;
	case SRV_CS_NAME:
		if (srv_is_tchar(c))
			return 0;
		if (c == '=') {
			p->chunk_state = SRV_CS_VAL_FIRST;
			return 0;
		}
		return srv_chunk_after(p, c, SRV_CS_BWS_EQ);
	case SRV_CS_BWS_EQ:
		if (srv_is_ws(c))
			return 0;
		if (c == '=')
			p->chunk_state = SRV_CS_VAL_FIRST;
		else if (c == ';')
			p->chunk_state = SRV_CS_NAME_FIRST;
		else
			return SRV_HTTP_PE_CHUNK_EXT;
		return 0;
	case SRV_CS_VAL_FIRST:
		if (srv_is_ws(c))
			return 0;
		if (c == '"')
			p->chunk_state = SRV_CS_QUOTED;
		else if (srv_is_tchar(c))
			p->chunk_state = SRV_CS_TOKEN_VAL;
		else
			return SRV_HTTP_PE_CHUNK_EXT;
		return 0;
	case SRV_CS_TOKEN_VAL:
		if (srv_is_tchar(c))
			return 0;
		return srv_chunk_after(p, c, SRV_CS_BWS_SEMI);
	case SRV_CS_QUOTED:
		if (c == '"')
			p->chunk_state = SRV_CS_QUOTED_END;
		else if (c == '\\')
			p->chunk_state = SRV_CS_QUOTED_PAIR;
		else if (!srv_is_qdtext(c))
			return SRV_HTTP_PE_CHUNK_EXT;
		return 0;
	case SRV_CS_QUOTED_PAIR:
		if (!srv_is_quoted_pair_char(c))
			return SRV_HTTP_PE_CHUNK_EXT;
		p->chunk_state = SRV_CS_QUOTED;
		return 0;
	case SRV_CS_QUOTED_END:
		return srv_chunk_after(p, c, SRV_CS_BWS_SEMI);
	case SRV_CS_SIZE_LF:
		if (c != '\n')
			return SRV_HTTP_PE_CHUNK_EOL;
		return srv_chunk_begin(p);
	default:
		assert(!"not a chunk-size line state");
		return SRV_HTTP_PE_CHUNK_SIZE;
	}
}

/* Counts a byte of a trailer line against the header size limit. */
static int srv_trailer_count(struct srv_http_parser *p)
{
	if (++p->trailer_bytes > p->lim.max_header_bytes)
		return SRV_HTTP_PE_TRAILER_TOO_LARGE;
	return 0;
}

/* One byte of the trailer section: field lines are checked as header
 * field lines are (no obs-fold, token name, value bytes) and dropped. */
static int srv_trailer_byte(struct srv_http_parser *p, unsigned char c)
{
	switch (p->chunk_state) {
	case SRV_CS_TRAILER:
		if (c == '\r') {
			p->chunk_state = SRV_CS_END_LF;
			return 0;
		}
		if (!srv_is_tchar(c))
			return SRV_HTTP_PE_TRAILER;
		p->chunk_state = SRV_CS_TNAME;
		return srv_trailer_count(p);
	case SRV_CS_TNAME:
		if (c == ':')
			p->chunk_state = SRV_CS_TVALUE;
		else if (!srv_is_tchar(c))
			return SRV_HTTP_PE_TRAILER;
		return srv_trailer_count(p);
	case SRV_CS_TVALUE:
		if (c == '\r')
			p->chunk_state = SRV_CS_TLF;
		else if (!srv_is_value_char(c))
			return SRV_HTTP_PE_TRAILER;
		return srv_trailer_count(p);
	case SRV_CS_TLF:
		if (c != '\n')
			return SRV_HTTP_PE_TRAILER;
		p->chunk_state = SRV_CS_TRAILER;
		return srv_trailer_count(p); /* CRLF counts, as for fields */
	case SRV_CS_END_LF:
		if (c != '\n')
			return SRV_HTTP_PE_TRAILER;
		p->phase = SRV_PHASE_DONE;
		return SRV_HTTP_PARSE_DONE;
	default:
		assert(!"not a trailer state");
		return SRV_HTTP_PE_TRAILER;
	}
}

/* One byte outside chunk data. */
static int srv_chunk_byte(struct srv_http_parser *p, unsigned char c)
{
	switch (p->chunk_state) {
	case SRV_CS_DATA_CR:
		if (c != '\r')
			return SRV_HTTP_PE_CHUNK_DATA_EOL;
		p->chunk_state = SRV_CS_DATA_LF;
		return 0;
	case SRV_CS_DATA_LF:
		if (c != '\n')
			return SRV_HTTP_PE_CHUNK_DATA_EOL;
		p->chunk_state = SRV_CS_SIZE_FIRST;
		return 0;
	case SRV_CS_TRAILER:
	case SRV_CS_TNAME:
	case SRV_CS_TVALUE:
	case SRV_CS_TLF:
	case SRV_CS_END_LF:
		return srv_trailer_byte(p, c);
	default:
		return srv_chunk_line_byte(p, c);
	}
}

static int srv_parse_chunked(struct srv_http_parser *p, const char *data,
			     size_t len, size_t *used,
			     struct srv_http_span *span)
{
	size_t pos = 0;
	int rc;

	while (pos < len) {
		if (p->chunk_state == SRV_CS_DATA) {
			size_t n = len - pos < p->left ? len - pos : p->left;

			*span = (struct srv_http_span){ .off = pos, .len = n };
			p->left -= n;
			p->body_len += n;
			if (p->left == 0)
				p->chunk_state = SRV_CS_DATA_CR;
			*used = pos + n;
			return SRV_HTTP_PARSE_BODY;
		}
		rc = srv_chunk_byte(p, (unsigned char)data[pos++]);
		if (rc != 0) {
			*used = pos;
			return rc < 0 ? srv_fail(p, rc) : rc;
		}
	}
	*used = pos;
	return SRV_HTTP_PARSE_AGAIN;
}

static int srv_parse_cl(struct srv_http_parser *p, size_t len, size_t *used,
			struct srv_http_span *span)
{
	size_t n = len < p->left ? len : p->left;

	if (p->left == 0) {
		p->phase = SRV_PHASE_DONE;
		return SRV_HTTP_PARSE_DONE;
	}
	if (n == 0)
		return SRV_HTTP_PARSE_AGAIN;
	*span = (struct srv_http_span){ .off = 0, .len = n };
	*used = n;
	p->left -= n;
	p->body_len += n;
	return SRV_HTTP_PARSE_BODY;
}

/* The head was handed back: act on its framing. */
static void srv_body_start(struct srv_http_parser *p)
{
	const struct srv_http_msg *m = p->msg;

	p->left = 0;
	if (m->chunked) {
		p->phase = SRV_PHASE_CHUNKED;
		p->chunk_state = SRV_CS_SIZE_FIRST;
	} else if (m->has_cl && m->content_length > 0) {
		p->phase = SRV_PHASE_CL;
		p->left = m->content_length;
	} else {
		p->phase = SRV_PHASE_DONE;
	}
}

/* ==== 6. entry points and messages ==================================== */

void srv_http_parser_init(struct srv_http_parser *p,
			  const struct srv_http_limits *lim)
{
	*p = (struct srv_http_parser){ .lim = *lim };
	/* The head arithmetic adds the two limits and a little. */
	assert(lim->max_line_bytes < SIZE_MAX / 4 &&
	       lim->max_header_bytes < SIZE_MAX / 4);
}

void srv_http_parser_start(struct srv_http_parser *p,
			   struct srv_http_msg *msg)
{
	*p = (struct srv_http_parser){
		.lim = p->lim,
		.msg = msg,
		.phase = SRV_PHASE_HEAD,
		.body_limit = SIZE_MAX,
	};
	srv_http_msg_reset(msg);
}

int srv_http_parse(struct srv_http_parser *p, const char *data, size_t len,
		   size_t *used, struct srv_http_span *span)
{
	*used = 0;
	if (p->error)
		return p->error;
	switch (p->phase) {
	case SRV_PHASE_HEAD:
		return srv_parse_head(p, data, len, used);
	case SRV_PHASE_BODY_START:
		srv_body_start(p);
		return srv_http_parse(p, data, len, used, span);
	case SRV_PHASE_CL:
		return srv_parse_cl(p, len, used, span);
	case SRV_PHASE_CHUNKED:
		return srv_parse_chunked(p, data, len, used, span);
	default:
		return SRV_HTTP_PARSE_DONE;
	}
}

int srv_http_parse_body_limit(struct srv_http_parser *p, size_t limit)
{
	assert(p->phase == SRV_PHASE_BODY_START);
	p->body_limit = limit;
	if (p->msg->has_cl && p->msg->content_length > limit)
		return srv_fail(p, SRV_HTTP_PE_BODY_TOO_LARGE);
	return 0;
}

size_t srv_http_parse_cl_left(const struct srv_http_parser *p)
{
	return p->phase == SRV_PHASE_CL && !p->error ? p->left : 0;
}

void srv_http_parse_skip_body(struct srv_http_parser *p, size_t n)
{
	assert(n <= srv_http_parse_cl_left(p));
	p->left -= n;
	p->body_len += n;
}

bool srv_http_parse_started(const struct srv_http_parser *p)
{
	return p->started;
}

bool srv_http_parse_in_head(const struct srv_http_parser *p)
{
	return p->phase == SRV_PHASE_HEAD && !p->error;
}

/* JSON codes, one per status this table answers with. */
#define BAD "bad_request"
#define E400(t) { 400, BAD, t }

/* Every refusal of the HTTP layer, by code: status, JSON code, text. The
 * statuses are the ones nginx's callers of ngx_http_parse_request_line()
 * pick for the like NGX_HTTP_PARSE_* codes. */
static const struct srv_http_refusal refusals[] = {
#define AT(rc) [-(rc) - SRV_HTTP_PE_BASE - 1]
	AT(SRV_HTTP_PE_EMPTY_LINES) = E400("empty lines instead of a request"),
	AT(SRV_HTTP_PE_BARE_LF) = E400("a line of the request head ends in LF without CR"),
	AT(SRV_HTTP_PE_REQUEST_LINE) = E400("malformed request line"),
	AT(SRV_HTTP_PE_TARGET) = E400("malformed request target (bytes outside RFC 3986 "
				      "must be percent-encoded)"),
	AT(SRV_HTTP_PE_VERSION) = E400("malformed HTTP version"),
	AT(SRV_HTTP_PE_VERSION_UNSUPPORTED) = { 505, "http_version_not_supported",
						"only HTTP/1.0 and HTTP/1.1 are supported" },
	AT(SRV_HTTP_PE_LINE_TOO_LONG) = { 414, "uri_too_long", "request line too long" },
	AT(SRV_HTTP_PE_HEADERS_TOO_LARGE) = { 431, "headers_too_large",
					      "header fields too large" },
	AT(SRV_HTTP_PE_TOO_MANY_FIELDS) = { 431, "headers_too_large",
					    "too many header fields" },
	AT(SRV_HTTP_PE_FIELD) = E400("malformed header field"),
	AT(SRV_HTTP_PE_OBS_FOLD) = E400("obsolete line folding is not accepted"),
	AT(SRV_HTTP_PE_FIELD_VALUE) = E400("invalid byte in a header value"),
	AT(SRV_HTTP_PE_HOST_MISSING) = E400("an HTTP/1.1 request needs a Host field"),
	AT(SRV_HTTP_PE_HOST_REPEATED) = E400("more than one Host field"),
	AT(SRV_HTTP_PE_HOST_INVALID) = E400("invalid Host field"),
	AT(SRV_HTTP_PE_CONTENT_LENGTH) = E400("malformed Content-Length"),
	AT(SRV_HTTP_PE_CL_REPEATED) = E400("more than one Content-Length field"),
	AT(SRV_HTTP_PE_CL_AND_TE) = E400("Content-Length and Transfer-Encoding together"),
	AT(SRV_HTTP_PE_TE_HTTP10) = E400("Transfer-Encoding in an HTTP/1.0 request"),
	AT(SRV_HTTP_PE_TE_UNSUPPORTED) = { 501, "not_implemented",
					   "only the chunked transfer coding is supported" },
	AT(SRV_HTTP_PE_EXPECT) = { 417, "expectation_failed",
				   "only Expect: 100-continue is supported" },
	AT(SRV_HTTP_PE_CHUNK_SIZE) = E400("malformed chunk size"),
	AT(SRV_HTTP_PE_CHUNK_EXT) = E400("malformed chunk extension"),
	AT(SRV_HTTP_PE_CHUNK_LINE_TOO_LONG) = E400("chunk size line too long"),
	AT(SRV_HTTP_PE_CHUNK_EOL) = E400("chunk size line not ended by CRLF"),
	AT(SRV_HTTP_PE_CHUNK_DATA_EOL) = E400("chunk data not followed by CRLF"),
	AT(SRV_HTTP_PE_TRAILER) = E400("malformed trailer section"),
	AT(SRV_HTTP_PE_TRAILER_TOO_LARGE) = { 431, "headers_too_large",
					      "trailer section too large" },
	AT(SRV_HTTP_PE_BODY_TOO_LARGE) = { 413, "payload_too_large",
					   "request body larger than allowed" },
	AT(SRV_HTTP_PE_NOMEM) = { 503, "service_unavailable", "out of memory" },
	AT(SRV_HTTP_PE_TARGET_SPACE) = E400("a space in the request target (send a space "
					    "in a key as %20)"),
	AT(SRV_HTTP_PE_HEAD_TIMEOUT) = { 408, "request_timeout",
					 "request head not received in time" },
	AT(SRV_HTTP_PE_BODY_TIMEOUT) = { 408, "request_timeout",
					 "request body not received in time (it must "
					 "bring --min-rate bytes a second)" },
	AT(SRV_HTTP_PE_BODY_MEMORY) = { 503, "service_unavailable",
					"request bodies being received fill this "
					"worker's --body-memory; retry later" },
#undef AT
};
_Static_assert(sizeof(refusals) / sizeof(refusals[0]) ==
	       (size_t)(-SRV_HTTP_PE_LAST - SRV_HTTP_PE_BASE),
	       "every SRV_HTTP_PE_* code has its row");

const struct srv_http_refusal *srv_http_refusal(int rc)
{
	static const struct srv_http_refusal unknown = E400("unknown parse error");
	long i = -(long)rc - SRV_HTTP_PE_BASE - 1;

	if (i < 0 || (size_t)i >= sizeof(refusals) / sizeof(refusals[0]) ||
	    !refusals[i].code)
		return &unknown;
	return &refusals[i];
}

const char *srv_http_parse_strerror(int rc)
{
	return srv_http_refusal(rc)->text;
}

bool srv_http_is_token(const char *s)
{
	if (*s == '\0')
		return false;
	for (; *s; s++)
		if (!srv_is_tchar((unsigned char)*s))
			return false;
	return true;
}

bool srv_http_is_field_value(const char *s)
{
	for (; *s; s++)
		if (!srv_is_value_char((unsigned char)*s))
			return false;
	return true;
}

void srv_http_msg_reset(struct srv_http_msg *msg)
{
	struct srv_http_buf head = msg->head;

	srv_http_buf_reset(&head);
	/* fields[] is left as it is: nfields says how much of it counts. */
	msg->head = head;
	msg->method = SRV_HTTP_OTHER;
	msg->method_str = "-";
	msg->path = "-";
	msg->query = NULL;
	msg->host = NULL;
	msg->minor = 1;
	msg->nfields = 0;
	msg->content_length = 0;
	msg->has_cl = false;
	msg->chunked = false;
	msg->expect_continue = false;
	msg->keep_alive = false;
}

void srv_http_msg_free(struct srv_http_msg *msg)
{
	srv_http_buf_free(&msg->head);
}
