/* tests/unit/test_http_parse.c — server/http_parse as a table.
 *
 * Every case is a byte string and the transcript it must give (format in
 * tests/unit/http_drive.h): one line per complete request, then "again"
 * or "error NAME". Each case is fed in one piece, cut in two at every
 * byte boundary, and one byte at a time; all must give the expected
 * transcript, and the parser must keep its promises about the bytes it
 * takes and the body spans it hands back.
 *
 * The tables: request line and target, header fields, Host, framing
 * (Content-Length, Transfer-Encoding, Expect), chunked bodies, limits,
 * and the classic request smuggling cases. Every framing gap of issue 12
 * has its own row.
 */
#include "tests/unit/http_drive.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The tables name only the options a row changes; the rest stay zero. */
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"

struct pcase {
	const char *name;
	const char *in;
	const char *want;
	struct hd_opts opt;
	size_t len; /* 0: strlen(in) */
};

#define H11 "Host: t\r\n"
#define CHUNKED "POST /c HTTP/1.1\r\n" H11 "Transfer-Encoding: chunked\r\n\r\n"
#define OK_GET(path) "GET " path " 1.1 f=1 body=\"\"\n"
#define OK_CHUNKED(body) "POST /c 1.1 f=2 chunked body=\"" body "\"\n"

/* Criterion's str_eq does not show the strings: this does. */
#define assert_transcript(o, want, how)                                     \
	cr_assert(strcmp((o)->text, (want)) == 0, "%s: got\n%s\nwant\n%s",   \
		  (how), (o)->text, (want))

static void run_case(const struct pcase *c)
{
	size_t len = c->len ? c->len : strlen(c->in);
	struct hd_out *o = malloc(sizeof(*o));
	size_t *cuts = malloc((len + 1) * sizeof(*cuts));
	char how[256];

	cr_assert(o && cuts);
	hd_run_whole(&c->opt, c->in, len, o);
	cr_assert_null(o->violation, "%s: %s", c->name, o->violation);
	snprintf(how, sizeof(how), "%s, in one piece", c->name);
	assert_transcript(o, c->want, how);
	for (size_t k = 1; k < len; k++) {
		hd_run(&c->opt, c->in, len, &k, 1, o);
		cr_assert_null(o->violation, "%s cut at %zu: %s", c->name, k,
			       o->violation);
		snprintf(how, sizeof(how), "%s, cut at byte %zu", c->name, k);
		assert_transcript(o, c->want, how);
	}
	for (size_t k = 0; k + 1 < len; k++)
		cuts[k] = k + 1;
	hd_run(&c->opt, c->in, len, cuts, len ? len - 1 : 0, o);
	cr_assert_null(o->violation, "%s byte by byte: %s", c->name, o->violation);
	snprintf(how, sizeof(how), "%s, byte by byte", c->name);
	assert_transcript(o, c->want, how);
	free(cuts);
	free(o);
}

static void run_table(const struct pcase *t, size_t n)
{
	for (size_t i = 0; i < n; i++)
		run_case(&t[i]);
}

#define RUN(table) run_table(table, sizeof(table) / sizeof(table[0]))

/* ---- request line and target ------------------------------------------ */

static const struct pcase request_line_cases[] = {
	{ "simple GET", "GET /a/b?x=1&y=2 HTTP/1.1\r\n" H11 "\r\n",
	  "GET /a/b?x=1&y=2 1.1 f=1 body=\"\"\n" },
	{ "a leading empty line is skipped", "\r\nGET /lf HTTP/1.1\r\n" H11 "\r\n",
	  OK_GET("/lf") },
	{ "five leading empty lines are refused", "\r\n\r\n\r\n\r\n\r\nGET / HTTP/1.1\r\n",
	  "error EMPTY_LINES" },
	{ "a bare LF as a leading empty line", "\nGET / HTTP/1.1\r\n" H11 "\r\n",
	  "error BARE_LF" },
	{ "a bare LF ends the request line", "GET / HTTP/1.1\n" H11 "\r\n",
	  "error BARE_LF" },
	{ "an incomplete request waits", "GET / HTTP/1.1\r\nHost: t\r\n",
	  "again" },
	{ "nothing at all", "", "" },
	{ "unknown method is a token", "BREW /pot HTTP/1.1\r\n" H11 "\r\n",
	  "BREW /pot 1.1 f=1 body=\"\"\n" },
	{ "method not a token", "GE(T / HTTP/1.1\r\n" H11 "\r\n", "error REQUEST_LINE" },
	{ "two spaces after the method", "GET  / HTTP/1.1\r\n" H11 "\r\n",
	  "error REQUEST_LINE" },
	{ "no target", "GET HTTP/1.1\r\n" H11 "\r\n", "error REQUEST_LINE" },
	{ "garbage line", "HELLO\r\n\r\n", "error REQUEST_LINE" },
	{ "space after the version", "GET / HTTP/1.1 \r\n" H11 "\r\n", "error VERSION" },
	{ "a space in the target", "GET /kv/a b HTTP/1.1\r\n" H11 "\r\n",
	  "error TARGET_SPACE" },
	{ "spaces in the target, then a version caskd does not serve",
	  "GET /a b c HTTP/2.0\r\n" H11 "\r\n", "error TARGET_SPACE" },
	{ "a space in the target and no version", "GET /a b c\r\n" H11 "\r\n",
	  "error VERSION" },
	{ "lowercase version", "GET / http/1.1\r\n" H11 "\r\n", "error VERSION" },
	{ "HTTP/2.0 is 505", "GET / HTTP/2.0\r\n" H11 "\r\n", "error VERSION_UNSUPPORTED" },
	{ "HTTP/1.2 is 505", "GET / HTTP/1.2\r\n" H11 "\r\n", "error VERSION_UNSUPPORTED" },
	{ "a CR inside the request line", "GET / HTTP/1.1\rX\r\n" H11 "\r\n",
	  "error VERSION" },
	{ "absolute form is split", "GET http://example.com:80/p/q?k=v HTTP/1.1\r\n" H11 "\r\n",
	  "GET /p/q?k=v 1.1 f=1 body=\"\"\n" },
	{ "absolute form without a path", "GET http://example.com HTTP/1.1\r\n" H11 "\r\n",
	  OK_GET("/") },
	{ "absolute form with an IPv6 literal", "GET http://[::1]:80/x HTTP/1.1\r\n" H11 "\r\n",
	  OK_GET("/x") },
	{ "asterisk form", "OPTIONS * HTTP/1.1\r\n" H11 "\r\n",
	  "OPTIONS * 1.1 f=1 body=\"\"\n" },
	{ "a target without a slash", "GET nothing HTTP/1.1\r\n" H11 "\r\n", "error TARGET" },
	{ "authority form", "CONNECT host:443 HTTP/1.1\r\n" H11 "\r\n", "error TARGET" },
	{ "raw UTF-8 in the target", "GET /kv/caf\xc3\xa9 HTTP/1.1\r\n" H11 "\r\n",
	  "error TARGET" },
	{ "a control byte in the target", "GET /a\x01 HTTP/1.1\r\n" H11 "\r\n", "error TARGET" },
	{ "DEL in the target", "GET /a\x7f HTTP/1.1\r\n" H11 "\r\n", "error TARGET" },
	{ "a fragment in the target", "GET /a#b HTTP/1.1\r\n" H11 "\r\n", "error TARGET" },
	{ "braces in the target", "GET /a{b} HTTP/1.1\r\n" H11 "\r\n", "error TARGET" },
	{ "a pipe in the query", "GET /a?b|c HTTP/1.1\r\n" H11 "\r\n", "error TARGET" },
	{ "brackets in the path", "GET /a[0] HTTP/1.1\r\n" H11 "\r\n", "error TARGET" },
	{ "a backslash in the path", "GET /a\\b HTTP/1.1\r\n" H11 "\r\n", "error TARGET" },
	{ "a quote in the path", "GET /a\"b HTTP/1.1\r\n" H11 "\r\n", "error TARGET" },
	{ "every pchar, / and ? pass",
	  "GET /AZaz09-._~!$&'()*+,;=:@%2F?/?x=%zz HTTP/1.1\r\n" H11 "\r\n",
	  OK_GET("/AZaz09-._~!$&'()*+,;=:@%2F?/?x=%zz") },
	{ "raw non-ASCII in an absolute-form authority",
	  "GET http://a\x80/ HTTP/1.1\r\n" H11 "\r\n", "error TARGET" },
};

Test(srv_http_parse, request_line_and_target)
{
	RUN(request_line_cases);
}

/* ---- header fields ------------------------------------------------------ */

static const struct pcase field_cases[] = {
	{ "values are trimmed", "GET / HTTP/1.1\r\n" H11 "X-Test:  hi there \t\r\n\r\n",
	  "GET / 1.1 f=2 body=\"\"\n" },
	{ "an empty value", "GET / HTTP/1.1\r\n" H11 "X-E:\r\n\r\n", "GET / 1.1 f=2 body=\"\"\n" },
	{ "obs-text in a value", "GET / HTTP/1.1\r\n" H11 "X: caf\xc3\xa9\r\n\r\n",
	  "GET / 1.1 f=2 body=\"\"\n" },
	{ "a bare LF ends a field line", "GET / HTTP/1.1\r\nHost: t\nX: v\r\n\r\n",
	  "error BARE_LF" },
	{ "a bare LF ends the head", "GET / HTTP/1.1\r\nHost: t\r\n\n", "error BARE_LF" },
	{ "all bare LFs", "GET /lf HTTP/1.1\nHost: t\nX-Test: v\n\n", "error BARE_LF" },
	{ "a CR inside a value", "GET / HTTP/1.1\r\n" H11 "X: a\rb\r\n\r\n",
	  "error FIELD_VALUE" },
	{ "a NUL inside a value", "GET / HTTP/1.1\r\n" H11 "X: a\0b\r\n\r\n",
	  "error FIELD_VALUE", .len = sizeof("GET / HTTP/1.1\r\n" H11 "X: a\0b\r\n\r\n") - 1 },
	{ "obs-fold", "GET / HTTP/1.1\r\n" H11 "X-A: 1\r\n folded\r\n\r\n", "error OBS_FOLD" },
	{ "whitespace before the first field", "GET / HTTP/1.1\r\n " H11 "\r\n",
	  "error OBS_FOLD" },
	{ "whitespace before the colon", "GET / HTTP/1.1\r\nHost : t\r\n\r\n", "error FIELD" },
	{ "no colon", "GET / HTTP/1.1\r\n" H11 "NoColon\r\n\r\n", "error FIELD" },
	{ "an empty name", "GET / HTTP/1.1\r\n" H11 ": v\r\n\r\n", "error FIELD" },
	{ "a name that is not a token", "GET / HTTP/1.1\r\n" H11 "X(y): v\r\n\r\n",
	  "error FIELD" },
	{ "HTTP/1.0 without Connection closes", "GET /old HTTP/1.0\r\n\r\n",
	  "GET /old 1.0 f=0 close body=\"\"\n" },
	{ "HTTP/1.0 keep-alive", "GET /old HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n",
	  "GET /old 1.0 f=1 body=\"\"\n" },
	{ "Connection: close among tokens",
	  "GET / HTTP/1.1\r\n" H11 "Connection: foo, close\r\n\r\n",
	  "GET / 1.1 f=2 close body=\"\"\n" },
	{ "Expect: 100-continue", "PUT / HTTP/1.1\r\n" H11 "Expect: 100-Continue\r\n"
	  "Content-Length: 2\r\n\r\nab", "PUT / 1.1 f=3 cl=2 continue body=\"ab\"\n" },
	{ "no 100 for HTTP/1.0", "PUT / HTTP/1.0\r\nExpect: 100-continue\r\n"
	  "Content-Length: 1\r\n\r\na", "PUT / 1.0 f=2 cl=1 close body=\"a\"\n" },
	{ "another expectation", "PUT / HTTP/1.1\r\n" H11 "Expect: something\r\n\r\n",
	  "error EXPECT" },
};

Test(srv_http_parse, header_fields)
{
	RUN(field_cases);
}

/* ---- Host (RFC 9112 3.2) ------------------------------------------------ */

#define HOST_IS(v) "GET / HTTP/1.1\r\nHost: " v "\r\n\r\n"

static const struct pcase host_cases[] = {
	{ "missing in HTTP/1.1", "GET / HTTP/1.1\r\n\r\n", "error HOST_MISSING" },
	{ "optional in HTTP/1.0", "GET / HTTP/1.0\r\n\r\n", "GET / 1.0 f=0 close body=\"\"\n" },
	{ "twice", "GET / HTTP/1.1\r\nHost: a\r\nHost: a\r\n\r\n", "error HOST_REPEATED" },
	{ "twice in HTTP/1.0", "GET / HTTP/1.0\r\nHost: a\r\nHost: b\r\n\r\n",
	  "error HOST_REPEATED" },
	{ "a space and a slash", HOST_IS("exa mple/x"), "error HOST_INVALID" },
	{ "a slash", HOST_IS("a/b"), "error HOST_INVALID" },
	{ "an at sign", HOST_IS("user@host"), "error HOST_INVALID" },
	{ "a port with a letter", HOST_IS("h:80x"), "error HOST_INVALID" },
	{ "an open bracket", HOST_IS("[::1"), "error HOST_INVALID" },
	{ "empty brackets", HOST_IS("[]"), "error HOST_INVALID" },
	{ "junk after the brackets", HOST_IS("[::1]x"), "error HOST_INVALID" },
	{ "a bad escape", HOST_IS("ex%zzample"), "error HOST_INVALID" },
	{ "raw UTF-8", HOST_IS("caf\xc3\xa9"), "error HOST_INVALID" },
	{ "a name and port", HOST_IS("example.com:8080"), OK_GET("/") },
	{ "an IPv4 address", HOST_IS("127.0.0.1"), OK_GET("/") },
	{ "an IPv6 literal and port", HOST_IS("[::1]:7070"), OK_GET("/") },
	{ "an empty port", HOST_IS("example.com:"), OK_GET("/") },
	{ "an escape", HOST_IS("ex%41mple"), OK_GET("/") },
	{ "empty (as nginx: an http target always has an authority)", HOST_IS(""),
	  "error HOST_INVALID" },
	{ "only a port", HOST_IS(":80"), "error HOST_INVALID" },
};

Test(srv_http_parse, host)
{
	RUN(host_cases);
}

/* ---- Content-Length and Transfer-Encoding ------------------------------ */

#define PUT_CL(cl) "PUT /k HTTP/1.1\r\n" H11 "Content-Length: " cl "\r\n\r\n"
#define POST_TE(te) "POST /c HTTP/1.1\r\n" H11 "Transfer-Encoding: " te "\r\n\r\n"

static const struct pcase length_cases[] = {
	{ "a Content-Length body", PUT_CL("11") "hello world",
	  "PUT /k 1.1 f=2 cl=11 body=\"hello world\"\n" },
	{ "a zero Content-Length", PUT_CL("0"), "PUT /k 1.1 f=2 cl=0 body=\"\"\n" },
	{ "a body still arriving", PUT_CL("5") "hel", "again" },
	{ "leading zeros", PUT_CL("007") "abcdefg", "PUT /k 1.1 f=2 cl=7 body=\"abcdefg\"\n" },
	{ "a letter", PUT_CL("1a"), "error CONTENT_LENGTH" },
	{ "negative", PUT_CL("-1"), "error CONTENT_LENGTH" },
	{ "a plus sign", PUT_CL("+5"), "error CONTENT_LENGTH" },
	{ "a list", PUT_CL("5, 5") "hello", "error CONTENT_LENGTH" },
	{ "empty", PUT_CL(""), "error CONTENT_LENGTH" },
	{ "past SIZE_MAX", PUT_CL("99999999999999999999999"), "error CONTENT_LENGTH" },
	{ "two equal fields", "PUT / HTTP/1.1\r\n" H11 "Content-Length: 3\r\n"
	  "Content-Length: 3\r\n\r\nabc", "error CL_REPEATED" },
	{ "two different fields", "PUT / HTTP/1.1\r\n" H11 "Content-Length: 3\r\n"
	  "Content-Length: 4\r\n\r\nabcd", "error CL_REPEATED" },
	{ "chunked, any case", POST_TE("Chunked") "0\r\n\r\n",
	  "POST /c 1.1 f=2 chunked body=\"\"\n" },
	{ "chunked with OWS around it", POST_TE("\t chunked \t") "0\r\n\r\n",
	  "POST /c 1.1 f=2 chunked body=\"\"\n" },
	{ "gzip, chunked", POST_TE("gzip, chunked"), "error TE_UNSUPPORTED" },
	{ "chunked, chunked", POST_TE("chunked, chunked"), "error TE_UNSUPPORTED" },
	{ "identity", POST_TE("identity"), "error TE_UNSUPPORTED" },
	{ "two Transfer-Encoding fields", "POST / HTTP/1.1\r\n" H11
	  "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n",
	  "error TE_UNSUPPORTED" },
	{ "Transfer-Encoding in HTTP/1.0",
	  "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", "error TE_HTTP10" },
};

Test(srv_http_parse, content_length_and_transfer_encoding)
{
	RUN(length_cases);
}

/* ---- chunked bodies (RFC 9112 7.1) ------------------------------------- */

static const struct pcase chunked_cases[] = {
	{ "extensions and trailers",
	  CHUNKED "5;name=value\r\nhello\r\n6 ; x\r\n world\r\n"
	  "0\r\nX-Trailer: 1\r\nX-Other: 2\r\n\r\n", OK_CHUNKED("hello world") },
	{ "quoted extension values", CHUNKED "3;a=\"x;\\\"y\";b=\"\"\r\nabc\r\n0\r\n\r\n",
	  OK_CHUNKED("abc") },
	{ "BWS around = and ;", CHUNKED "1 \t; a \t= b ; c\r\nx\r\n0;z\r\n\r\n",
	  OK_CHUNKED("x") },
	{ "leading zeros and upper-case hex", CHUNKED "000A\r\n0123456789\r\n00\r\n\r\n",
	  OK_CHUNKED("0123456789") },
	{ "a request after it", CHUNKED "1\r\nx\r\n0\r\n\r\nGET /n HTTP/1.1\r\n" H11 "\r\n",
	  OK_CHUNKED("x") OK_GET("/n") },
	{ "bare LF after the size", CHUNKED "2\nxx\r\n0\r\n\r\n", "error CHUNK_EOL" },
	{ "bare LF after an extension (issue 12)", CHUNKED "2;\nxx\r\n0\r\n\r\n",
	  "error CHUNK_EOL" },
	{ "bare LF after an extension value", CHUNKED "2;a=b\nxx\r\n0\r\n\r\n",
	  "error CHUNK_EOL" },
	{ "bare LF after chunk data", CHUNKED "2\r\nxx\n0\r\n\r\n", "error CHUNK_DATA_EOL" },
	{ "bare LF after the last chunk", CHUNKED "2\r\nxx\r\n0\n\r\n", "error CHUNK_EOL" },
	{ "bare LF ending the trailers", CHUNKED "0\r\n\n", "error TRAILER" },
	{ "bare LF after a trailer field", CHUNKED "0\r\nX: 1\n\r\n", "error TRAILER" },
	{ "CR without LF after the size", CHUNKED "2\rxx\r\n0\r\n\r\n", "error CHUNK_EOL" },
	{ "a space before CRLF (issue 12)", CHUNKED "a \r\n0123456789\r\n0\r\n\r\n",
	  "error CHUNK_EXT" },
	{ "junk after the size (issue 12)", CHUNKED "2 junk\r\nxx\r\n0\r\n\r\n",
	  "error CHUNK_EXT" },
	{ "an empty extension (issue 12)", CHUNKED "2;\r\nxx\r\n0\r\n\r\n", "error CHUNK_EXT" },
	{ "an empty extension value", CHUNKED "2;a=\r\nxx\r\n0\r\n\r\n", "error CHUNK_EXT" },
	{ "an unbalanced quote (issue 12)", CHUNKED "2;a=\"b\r\nxx\r\n0\r\n\r\n",
	  "error CHUNK_EXT" },
	{ "a quote after a token value", CHUNKED "2;a=b\"\r\nxx\r\n0\r\n\r\n", "error CHUNK_EXT" },
	{ "junk after a quoted value", CHUNKED "2;a=\"b\"c\r\nxx\r\n0\r\n\r\n", "error CHUNK_EXT" },
	{ "a space after a quoted value", CHUNKED "2;a=\"b\" \r\nxx\r\n0\r\n\r\n",
	  "error CHUNK_EXT" },
	{ "a control byte in a quoted value", CHUNKED "2;a=\"\x01\"\r\nxx\r\n0\r\n\r\n",
	  "error CHUNK_EXT" },
	{ "data shorter than its size (issue 12)", CHUNKED "5\r\nhell\r\n0\r\n\r\n",
	  "error CHUNK_DATA_EOL" },
	{ "data longer than its size", CHUNKED "3\r\nabcX\r\n", "error CHUNK_DATA_EOL" },
	{ "not hex", CHUNKED "zz\r\n", "error CHUNK_SIZE" },
	{ "0x prefix", CHUNKED "0x5\r\nhello\r\n0\r\n\r\n", "error CHUNK_SIZE" },
	{ "a sign", CHUNKED "-1\r\nx\r\n0\r\n\r\n", "error CHUNK_SIZE" },
	{ "an empty size line", CHUNKED "\r\n", "error CHUNK_SIZE" },
	{ "whitespace before the size", CHUNKED " 1\r\nx\r\n0\r\n\r\n", "error CHUNK_SIZE" },
	{ "a size past SIZE_MAX", CHUNKED "fffffffffffffffff\r\n", "error CHUNK_SIZE" },
	{ "obs-fold in the trailers", CHUNKED "0\r\nX: 1\r\n folded\r\n\r\n", "error TRAILER" },
	{ "a trailer without colon", CHUNKED "0\r\nNoColon\r\n\r\n", "error TRAILER" },
	{ "a trailer with a control byte", CHUNKED "0\r\nX: a\x01\r\n\r\n", "error TRAILER" },
	{ "a chunked body still arriving", CHUNKED "5\r\nhel", "again" },
	{ "over the body limit at the size line", CHUNKED "800\r\n", "error BODY_TOO_LARGE",
	  .opt = { .body_limit = 1000 } },
	{ "chunks adding up past the limit", CHUNKED "3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n",
	  "error BODY_TOO_LARGE", .opt = { .body_limit = 4 } },
	{ "chunks adding up to the limit", CHUNKED "3\r\nabc\r\n1\r\nd\r\n0\r\n\r\n",
	  OK_CHUNKED("abcd"), .opt = { .body_limit = 4 } },
	/* The fields take 37 bytes of 40; the trailer line 40 of its own 40. */
	{ "trailers at the size limit",
	  CHUNKED "0\r\nX: 12345678901234567890123456789012345\r\n\r\n",
	  OK_CHUNKED(""), .opt = { .max_header_bytes = 40 } },
	{ "trailers over the size limit",
	  CHUNKED "0\r\nX: 123456789012345678901234567890123456\r\n\r\n",
	  "error TRAILER_TOO_LARGE", .opt = { .max_header_bytes = 40 } },
};

Test(srv_http_parse, chunked_bodies)
{
	RUN(chunked_cases);
}

/* A chunk-size line of exactly SRV_PARSE_MAX_CHUNK_LINE_BYTES (4096) is
 * taken; one byte more is refused. */
Test(srv_http_parse, chunk_line_length_limit)
{
	static char in[2][8192];
	struct pcase c[2];

	for (int i = 0; i < 2; i++) {
		size_t n = (size_t)snprintf(in[i], sizeof(in[i]), CHUNKED "1;a=");

		memset(in[i] + n, 'v', 4096 - 4 + (size_t)i);
		snprintf(in[i] + n + 4096 - 4 + i, sizeof(in[i]) - n - 4096,
			 "\r\nx\r\n0\r\n\r\n");
		c[i] = (struct pcase){ "chunk line limit", in[i],
				       i ? "error CHUNK_LINE_TOO_LONG"
					 : OK_CHUNKED("x") };
	}
	RUN(c);
}

/* ---- limits ------------------------------------------------------------- */

static const struct pcase limit_cases[] = {
	/* "GET /" + 26 x + " HTTP/1.1" = 40 bytes */
	{ "request line at the limit", "GET /xxxxxxxxxxxxxxxxxxxxxxxxxx HTTP/1.1\r\n" H11 "\r\n",
	  OK_GET("/xxxxxxxxxxxxxxxxxxxxxxxxxx"), .opt = { .max_line_bytes = 40 } },
	{ "request line a byte over", "GET /xxxxxxxxxxxxxxxxxxxxxxxxxxx HTTP/1.1\r\n" H11 "\r\n",
	  "error LINE_TOO_LONG", .opt = { .max_line_bytes = 40 } },
	{ "an unterminated request line over the limit",
	  "GET /xxxxxxxxxxxxxxxxxxxxxxxxxxx HTTP/1.1\r", "error LINE_TOO_LONG",
	  .opt = { .max_line_bytes = 40 } },
	{ "an unterminated request line at the limit",
	  "GET /xxxxxxxxxxxxxxxxxxxxxxxxxx HTTP/1.1\r", "again",
	  .opt = { .max_line_bytes = 40 } },
	/* "Host: t\r\n" 9 + "X: 1234567\r\n" 12 = 21 bytes */
	{ "fields at the limit", "GET / HTTP/1.1\r\n" H11 "X: 1234567\r\n\r\n",
	  "GET / 1.1 f=2 body=\"\"\n", .opt = { .max_header_bytes = 21 } },
	{ "fields a byte over", "GET / HTTP/1.1\r\n" H11 "X: 12345678\r\n\r\n",
	  "error HEADERS_TOO_LARGE", .opt = { .max_header_bytes = 21 } },
	{ "an unterminated field over the limit", "GET / HTTP/1.1\r\n" H11 "X: 12345678\r",
	  "error HEADERS_TOO_LARGE", .opt = { .max_header_bytes = 21 } },
	{ "body at the limit", PUT_CL("4") "abcd", "PUT /k 1.1 f=2 cl=4 body=\"abcd\"\n",
	  .opt = { .body_limit = 4 } },
	{ "Content-Length over the limit, before any body", PUT_CL("5"),
	  "error BODY_TOO_LARGE", .opt = { .body_limit = 4 } },
};

Test(srv_http_parse, limits)
{
	RUN(limit_cases);
}

/* 100 fields pass; the 101st is refused (SRV_HTTP_MAX_FIELDS). */
Test(srv_http_parse, field_count_limit)
{
	static char in[2][4096];
	struct pcase c[2];

	for (int i = 0; i < 2; i++) {
		size_t n = (size_t)snprintf(in[i], sizeof(in[i]), "GET / HTTP/1.1\r\n" H11);

		for (int f = 1; f < SRV_HTTP_MAX_FIELDS + i; f++)
			n += (size_t)snprintf(in[i] + n, sizeof(in[i]) - n, "X-%d: v\r\n", f);
		snprintf(in[i] + n, sizeof(in[i]) - n, "\r\n");
		c[i] = (struct pcase){ "field count", in[i],
				       i ? "error TOO_MANY_FIELDS"
					 : "GET / 1.1 f=100 body=\"\"\n" };
	}
	RUN(c);
}

/* ---- request smuggling --------------------------------------------------- */

static const struct pcase smuggling_cases[] = {
	{ "CL.TE", "POST / HTTP/1.1\r\n" H11 "Content-Length: 13\r\n"
	  "Transfer-Encoding: chunked\r\n\r\n0\r\n\r\nSMUGGLED", "error CL_AND_TE" },
	{ "TE.CL", "POST / HTTP/1.1\r\n" H11 "Transfer-Encoding: chunked\r\n"
	  "Content-Length: 3\r\n\r\n8\r\nSMUGGLED\r\n0\r\n\r\n", "error CL_AND_TE" },
	{ "TE.CL with an unknown coding", "POST / HTTP/1.1\r\n" H11
	  "Transfer-Encoding: xchunked\r\nContent-Length: 3\r\n\r\n", "error CL_AND_TE" },
	{ "duplicate CL, the first short",
	  "POST / HTTP/1.1\r\n" H11 "Content-Length: 0\r\nContent-Length: 44\r\n\r\n"
	  "GET /hidden HTTP/1.1\r\n" H11 "\r\n", "error CL_REPEATED" },
	{ "TE: space before the colon",
	  "POST / HTTP/1.1\r\n" H11 "Transfer-Encoding : chunked\r\n\r\n0\r\n\r\n",
	  "error FIELD" },
	{ "TE: vertical tab", "POST / HTTP/1.1\r\n" H11 "Transfer-Encoding: chunked\x0b\r\n\r\n",
	  "error FIELD_VALUE" },
	{ "TE: obs-fold", "POST / HTTP/1.1\r\n" H11 "Transfer-Encoding:\r\n chunked\r\n\r\n",
	  "error OBS_FOLD" },
	{ "TE: quoted", POST_TE("\"chunked\""), "error TE_UNSUPPORTED" },
	{ "TE: with a parameter", POST_TE("chunked;q=1"), "error TE_UNSUPPORTED" },
	{ "TE: a prefix", POST_TE("xchunked"), "error TE_UNSUPPORTED" },
	{ "TE: a suffix", POST_TE("chunkedx"), "error TE_UNSUPPORTED" },
	{ "TE: a comma", POST_TE("chunked,"), "error TE_UNSUPPORTED" },
	{ "TE: bare LF before it", "POST / HTTP/1.1\r\n" H11 "X: y\nTransfer-Encoding: chunked\r\n\r\n",
	  "error BARE_LF" },
	{ "TE: a NUL inside", "POST / HTTP/1.1\r\n" H11 "Transfer-Encoding: chun\0ked\r\n\r\n",
	  "error FIELD_VALUE",
	  .len = sizeof("POST / HTTP/1.1\r\n" H11 "Transfer-Encoding: chun\0ked\r\n\r\n") - 1 },
	{ "TE: an underscore is another field", "POST / HTTP/1.1\r\n" H11
	  "Transfer_Encoding: chunked\r\n\r\n0\r\n\r\n",
	  "POST / 1.1 f=2 body=\"\"\nerror REQUEST_LINE" },
	{ "a request hidden behind a bare-LF chunk line (issue 12)",
	  CHUNKED "2;\nxx\r\n0\r\n\r\nGET /hidden HTTP/1.1\r\n" H11 "\r\n", "error CHUNK_EOL" },
	{ "a request hidden in short chunk data",
	  CHUNKED "21\r\nGET /hidden HTTP/1.1\r\n" H11 "\r\n\r\n0\r\n\r\n",
	  OK_CHUNKED("GET /hidden HTTP/1.1\\r\\nHost: t\\r\\n\\r\\n") },
	{ "pipelined requests stay apart",
	  PUT_CL("3") "abcGET /two HTTP/1.1\r\n" H11 "\r\nHEAD /three HTTP/1.1\r\n" H11 "\r\n",
	  "PUT /k 1.1 f=2 cl=3 body=\"abc\"\n" OK_GET("/two") "HEAD /three 1.1 f=1 body=\"\"\n" },
	{ "a pipelined request after an error is never parsed",
	  "GET / HTTP/1.1\r\nHost: a b\r\n\r\nGET /two HTTP/1.1\r\n" H11 "\r\n",
	  "error HOST_INVALID" },
};

Test(srv_http_parse, request_smuggling)
{
	RUN(smuggling_cases);
}

/* ---- the parser's own contract ------------------------------------------ */

/* A failed parser stays failed, and reports nothing else. */
Test(srv_http_parse, failure_is_sticky)
{
	static struct srv_http_msg msg;
	struct srv_http_limits lim = { 8192, 16384 };
	struct srv_http_parser p;
	struct srv_http_span span;
	size_t used;
	int rc;

	srv_http_parser_init(&p, &lim);
	srv_http_parser_start(&p, &msg);
	rc = srv_http_parse(&p, "GET / HTTP/1.1\n", 15, &used, &span);
	cr_assert_eq(rc, SRV_HTTP_PE_BARE_LF);
	rc = srv_http_parse(&p, "GET / HTTP/1.1\r\n", 16, &used, &span);
	cr_assert_eq(rc, SRV_HTTP_PE_BARE_LF);
	cr_assert_eq(used, 0);
	cr_assert_eq(srv_http_parse_in_head(&p), false);
	srv_http_msg_free(&msg);
}

/* The connection layer reads a large Content-Length body straight into
 * its buffer: skip_body accounts for it. */
Test(srv_http_parse, skip_body_accounts_for_bytes_read_elsewhere)
{
	static const char head[] = PUT_CL("10");
	static struct srv_http_msg msg;
	struct srv_http_limits lim = { 8192, 16384 };
	struct srv_http_parser p;
	struct srv_http_span span;
	size_t used;

	srv_http_parser_init(&p, &lim);
	srv_http_parser_start(&p, &msg);
	cr_assert_eq(srv_http_parse_started(&p), false);
	cr_assert_eq(srv_http_parse(&p, head, sizeof(head) - 1, &used, &span),
		     SRV_HTTP_PARSE_HEAD);
	cr_assert_eq(used, sizeof(head) - 1);
	cr_assert_eq(srv_http_parse_body_limit(&p, 10), 0);
	cr_assert_eq(srv_http_parse(&p, "ab", 2, &used, &span), SRV_HTTP_PARSE_BODY);
	cr_assert_eq(span.len, 2);
	cr_assert_eq(srv_http_parse_cl_left(&p), 8);
	srv_http_parse_skip_body(&p, 8);
	cr_assert_eq(srv_http_parse_cl_left(&p), 0);
	cr_assert_eq(srv_http_parse(&p, "GET", 3, &used, &span), SRV_HTTP_PARSE_DONE);
	cr_assert_eq(used, 0, "bytes of the next request are not taken");
	srv_http_msg_free(&msg);
}

/* Every code has a message of its own. */
Test(srv_http_parse, every_error_has_a_message)
{
	for (int rc = -SRV_HTTP_PE_BASE - 1; rc >= SRV_HTTP_PE_LAST; rc--)
		cr_assert_str_neq(srv_http_parse_strerror(rc), "unknown parse error",
				  "code %d (%s)", rc, hd_error_name(rc));
}
