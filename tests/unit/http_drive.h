/* tests/unit/http_drive.h — drives server/http_parse over a byte string
 * cut into pieces, as the connection layer would, and writes down what
 * came out as one line of text per request (a transcript).
 *
 * Shared by the table-driven parser suite (tests/unit/test_http_parse.c)
 * and the parser fuzz harness (tests/fuzz/fuzz_http_parse.c): both
 * compare the transcript of the whole input with the transcripts of the
 * same input cut elsewhere, and the suite also with the one it expects.
 *
 * Transcript, one line per complete request:
 *   METHOD PATH[?QUERY] 1.MINOR f=NFIELDS[ cl=N][ chunked][ close]
 *   [ continue] body="ESCAPED"
 * then, when the input ends, "again" if a request had begun, or
 * "error NAME" (NAME as in SRV_HTTP_PE_NAME) when the parser failed.
 *
 * Everything is static: each includer gets its own copy.
 */
#ifndef CASKD_TESTS_UNIT_HTTP_DRIVE_H
#define CASKD_TESTS_UNIT_HTTP_DRIVE_H

#include "server/http_parse.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Transcripts longer than this are cut (and compare as cut). */
#define HD_TRANSCRIPT_BYTES 8192
/* Body bytes kept per request; more are counted, not kept. */
#define HD_BODY_BYTES 1024

struct hd_opts {
	size_t max_line_bytes;   /* 0: 8 KiB, the server's default */
	size_t max_header_bytes; /* 0: 16 KiB */
	size_t body_limit;       /* 0: none (SIZE_MAX) */
};

struct hd_out {
	char text[HD_TRANSCRIPT_BYTES];
	size_t len;
	int requests;
	int final_rc;           /* last code: AGAIN, DONE or an error */
	const char *violation;  /* a broken contract of srv_http_parse */
};

static const char *const hd_error_names[] = {
	"EMPTY_LINES", "BARE_LF", "REQUEST_LINE", "TARGET", "VERSION",
	"VERSION_UNSUPPORTED", "LINE_TOO_LONG", "HEADERS_TOO_LARGE",
	"TOO_MANY_FIELDS", "FIELD", "OBS_FOLD", "FIELD_VALUE",
	"HOST_MISSING", "HOST_REPEATED", "HOST_INVALID", "CONTENT_LENGTH",
	"CL_REPEATED", "CL_AND_TE", "TE_HTTP10", "TE_UNSUPPORTED", "EXPECT",
	"CHUNK_SIZE", "CHUNK_EXT", "CHUNK_LINE_TOO_LONG", "CHUNK_EOL",
	"CHUNK_DATA_EOL", "TRAILER", "TRAILER_TOO_LARGE", "BODY_TOO_LARGE",
	"NOMEM", "TARGET_SPACE", "HEAD_TIMEOUT", "BODY_TIMEOUT", "BODY_MEMORY",
};

_Static_assert(sizeof(hd_error_names) / sizeof(hd_error_names[0]) ==
		       (size_t)(-SRV_HTTP_PE_LAST - SRV_HTTP_PE_BASE),
	       "one name per SRV_HTTP_PE_* code");

static const char *hd_error_name(int rc)
{
	int i = -rc - SRV_HTTP_PE_BASE - 1;

	if (i < 0 || i >= (int)(sizeof(hd_error_names) / sizeof(hd_error_names[0])))
		return "UNKNOWN";
	return hd_error_names[i];
}

__attribute__((format(printf, 2, 3)))
static void hd_printf(struct hd_out *o, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (o->len >= sizeof(o->text) - 1)
		return;
	va_start(ap, fmt);
	n = vsnprintf(o->text + o->len, sizeof(o->text) - o->len, fmt, ap);
	va_end(ap);
	if (n > 0)
		o->len += (size_t)n;
	if (o->len > sizeof(o->text) - 1)
		o->len = sizeof(o->text) - 1;
}

static void hd_escaped(struct hd_out *o, const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c == '\r')
			hd_printf(o, "\\r");
		else if (c == '\n')
			hd_printf(o, "\\n");
		else if (c == '"' || c == '\\')
			hd_printf(o, "\\%c", c);
		else if (c < ' ' || c >= 0x7f)
			hd_printf(o, "\\x%02x", c);
		else
			hd_printf(o, "%c", c);
	}
}

static void hd_request(struct hd_out *o, const struct srv_http_msg *m,
		       const char *body, size_t blen, size_t btotal)
{
	hd_printf(o, "%s %s", m->method_str, m->path);
	if (m->query)
		hd_printf(o, "?%s", m->query);
	hd_printf(o, " 1.%d f=%d", m->minor, m->nfields);
	if (m->has_cl)
		hd_printf(o, " cl=%zu", m->content_length);
	if (m->chunked)
		hd_printf(o, " chunked");
	if (!m->keep_alive)
		hd_printf(o, " close");
	if (m->expect_continue)
		hd_printf(o, " continue");
	hd_printf(o, " body=\"");
	hd_escaped(o, body, blen);
	if (btotal > blen)
		hd_printf(o, "...(%zu)", btotal);
	hd_printf(o, "\"\n");
	o->requests++;
}

/* Checks what srv_http_parse() promises about used and span. */
static const char *hd_check(int rc, size_t len, size_t used,
			    const struct srv_http_span *span)
{
	if (used > len)
		return "used more bytes than given";
	if (rc == SRV_HTTP_PARSE_AGAIN && used != len)
		return "AGAIN without taking every byte";
	if (rc == SRV_HTTP_PARSE_BODY &&
	    (span->len == 0 || span->off + span->len != used))
		return "BODY span not at the end of the bytes taken";
	if (rc < 0 && (rc > -SRV_HTTP_PE_BASE - 1 || rc < SRV_HTTP_PE_LAST))
		return "an error code outside SRV_HTTP_PE_*";
	if (rc > SRV_HTTP_PARSE_DONE || rc == 0)
		return "an unknown result code";
	return NULL;
}

/* Runs the parser over data[0..len), given in pieces that end at cuts[]
 * (ascending, each < len; the last piece ends at len). Fills *o. */
static void hd_run(const struct hd_opts *opt, const char *data, size_t len,
		   const size_t *cuts, size_t ncuts, struct hd_out *o)
{
	struct srv_http_limits lim = {
		.max_line_bytes = opt->max_line_bytes ? opt->max_line_bytes : 8192,
		.max_header_bytes = opt->max_header_bytes ? opt->max_header_bytes
							  : 16384,
	};
	static struct srv_http_msg msg; /* large; one run at a time */
	struct srv_http_parser p;
	char body[HD_BODY_BYTES];
	size_t blen = 0, btotal = 0, start = 0;
	int rc = SRV_HTTP_PARSE_AGAIN;

	memset(o, 0, sizeof(*o));
	srv_http_parser_init(&p, &lim);
	srv_http_parser_start(&p, &msg);
	for (size_t piece = 0; piece <= ncuts && rc >= 0; piece++) {
		size_t end = piece < ncuts ? cuts[piece] : len, pos = start;

		if (end < start || end > len)
			continue; /* not ascending: ignore the cut */
		do {
			struct srv_http_span span = { 0 };
			size_t used;

			rc = srv_http_parse(&p, data + pos, end - pos, &used, &span);
			o->violation = o->violation ? o->violation
						    : hd_check(rc, end - pos, used, &span);
			if (rc == SRV_HTTP_PARSE_HEAD && opt->body_limit &&
			    srv_http_parse_body_limit(&p, opt->body_limit) != 0)
				rc = SRV_HTTP_PE_BODY_TOO_LARGE;
			if (rc == SRV_HTTP_PARSE_BODY) {
				size_t n = span.len;

				if (n > sizeof(body) - blen)
					n = sizeof(body) - blen;
				memcpy(body + blen, data + pos + span.off, n);
				blen += n;
				btotal += span.len;
			}
			pos += used;
			if (rc == SRV_HTTP_PARSE_DONE) {
				hd_request(o, &msg, body, blen, btotal);
				blen = btotal = 0;
				srv_http_parser_start(&p, &msg);
			}
		} while (rc == SRV_HTTP_PARSE_HEAD || rc == SRV_HTTP_PARSE_BODY ||
			 (rc == SRV_HTTP_PARSE_DONE && pos < end));
		start = end;
	}
	o->final_rc = rc;
	if (rc < 0)
		hd_printf(o, "error %s", hd_error_name(rc));
	else if (srv_http_parse_started(&p))
		hd_printf(o, "again");
	o->text[o->len] = '\0';
	srv_http_msg_free(&msg);
}

/* In one piece. */
static void hd_run_whole(const struct hd_opts *opt, const char *data,
			 size_t len, struct hd_out *o)
{
	hd_run(opt, data, len, NULL, 0, o);
}

#endif
