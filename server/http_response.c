/* server/http_response.c — the formatter of the HTTP layer's responses
 * (see http_response.h): bytes in a caller's buffer, nothing queued or
 * sent here.
 *
 * Invariants:
 *  - Status line, headers and a copied body fit one extent the caller
 *    reserves (SRV_HTTP_HEAD_FIXED_BYTES plus what it adds), so a batch
 *    of responses leaves in one writev.
 *  - No header a handler adds can break the framing: names this layer
 *    writes are refused, and values with CR, LF or other controls too.
 */
#include "server/http_response.h"

#include "server/http.h"
#include "server/http_parse.h"

#include <assert.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

/* What a 503 tells the client to wait, in seconds, when its handler did
 * not say: every overload caskd answers 503 for (over --max-conns, a busy
 * key, out of memory, a worker handing over on a stop) passes within
 * about a second, and a client retrying at once only adds to it. */
#define SRV_HTTP_RETRY_AFTER "1"
/* CR LF. */
#define SRV_HTTP_EOL_BYTES 2

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

/* ---- added headers -------------------------------------------------------- */

/* Case-insensitive match of a header name against a lowercase literal. */
static bool srv_name_is(const char *name, size_t len, const char *lit)
{
	return len == strlen(lit) && strncasecmp(name, lit, len) == 0;
}

/* Did the handler add a Retry-After of its own? */
bool srv_http_extra_has_retry_after(const struct srv_http_buf *x)
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

/* ---- streams ------------------------------------------------------------- */

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

int srv_http_extra_add(struct srv_http_buf *x, const char *name, const char *value)
{
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

/* ---- dates and pieces of a body ------------------------------------------- */

void srv_http_format_date(char *buf, time_t t)
{
	static const char wday[][4] = { "Sun", "Mon", "Tue", "Wed", "Thu",
					"Fri", "Sat" };
	static const char mon[][4] = { "Jan", "Feb", "Mar", "Apr", "May",
				       "Jun", "Jul", "Aug", "Sep", "Oct",
				       "Nov", "Dec" };
	struct tm tm;

	if (!gmtime_r(&t, &tm))
		return; /* buf keeps the last date */
	snprintf(buf, SRV_HTTP_DATE_BYTES,
		 "%s, %02d %s %04d %02d:%02d:%02d GMT", wday[tm.tm_wday % 7],
		 tm.tm_mday % 100, mon[tm.tm_mon % 12],
		 (tm.tm_year + 1900) % 10000, tm.tm_hour % 100,
		 tm.tm_min % 100, tm.tm_sec % 100);
}

char *srv_http_format_piece(char *p, const void *data, size_t len, bool chunked)
{
	if (chunked)
		p += sprintf(p, "%zx\r\n", len);
	p = srv_put(p, data, len);
	if (chunked)
		p = SRV_PUT_LIT(p, "\r\n");
	return p;
}
