/* server/cli_http.h — the HTTP/1.1 client of caskd's command-line
 * subcommands (server/cli_client.c: caskd get, put, del, ...).
 *
 * Owns: parsing a --url, one request per connection over a blocking
 * socket (Connection: close), and the response parser. The parser is
 * pure, as server/http_parse.c is: state and bytes in, a code out; no
 * socket, no clock, no allocation; bytes may come in pieces of any size
 * with the same outcome. A response comes off the network from whatever
 * server --url names, so the parser, and the reader of flat JSON objects
 * (error bodies, job records) beside it, are fuzzed
 * (tests/fuzz/fuzz_cli_http.c).
 *
 * Lenient where a client may be (RFC 9112 2.2: a bare LF ends a line),
 * strict where framing is at stake: Content-Length is digits and one
 * value, only the chunked transfer coding is known, and a body cut short
 * by the connection's end is an error, never a shorter value.
 *
 * Single-threaded; the caller is a short-lived command.
 */
#ifndef CASKD_SERVER_CLI_HTTP_H
#define CASKD_SERVER_CLI_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* A response head larger than this is refused: caskd's are a few hundred
 * bytes, and the server's own limit for request heads is 16 KiB. */
#define SRV_CLI_HEAD_MAX 16384
/* Header fields kept; more is refused (caskd sends about ten). */
#define SRV_CLI_FIELDS_MAX 100

/* What srv_cli_parse() returns besides an error (-EBADMSG, the parser's
 * err says what). */
enum {
	SRV_CLI_AGAIN = 1, /* every byte taken; give more (or the end) */
	SRV_CLI_HEAD = 2,  /* the head is complete: status and fields */
	SRV_CLI_BODY = 3,  /* body bytes: data[*off, *off + *n) */
	SRV_CLI_DONE = 4,  /* the response is complete */
};

struct srv_cli_field {
	const char *name;  /* NUL-terminated, inside head[] */
	const char *value; /* without surrounding whitespace, ditto */
};

/* The parser's state; only status, nfields/fields (from SRV_CLI_HEAD
 * on) and err are for the caller to read. */
struct srv_cli_parser {
	int phase;
	int cstate;          /* in a chunked body */
	const char *err;     /* what was malformed, once failed */
	int status;
	int nfields;
	struct srv_cli_field fields[SRV_CLI_FIELDS_MAX];
	uint64_t left;       /* of the Content-Length body or this chunk */
	size_t trailer;      /* trailer bytes so far */
	size_t hlen;
	char head[SRV_CLI_HEAD_MAX + 1];
};

void srv_cli_parser_init(struct srv_cli_parser *p);
/* Parses data[0..len): *used bytes taken (all but what follows the end
 * of the response); *off and *n are set for SRV_CLI_BODY only. A failed
 * parser stays failed. */
int srv_cli_parse(struct srv_cli_parser *p, const char *data, size_t len,
		  size_t *used, size_t *off, size_t *n);
/* The connection ended: SRV_CLI_DONE if that ends the response (a body
 * delimited by the close), else -EBADMSG. */
int srv_cli_parse_eof(struct srv_cli_parser *p);
/* The first field with this name (case-insensitive), or NULL. */
const char *srv_cli_header(const struct srv_cli_parser *p, const char *name);

/* The value of top-level field `name` of the flat JSON object
 * json[0..len), unescaped into out (NUL-terminated, cut to fit n): a
 * string without its quotes, or a number, true, false or null as
 * written. Its length, -ENOENT if absent, -EBADMSG if json is not a
 * flat object. */
long srv_cli_json_field(const char *json, size_t len, const char *name,
			char *out, size_t n);

/* --url: http://HOST[:PORT][/PATH], HOST a name, an IPv4 address or
 * [IPV6]; no scheme means http; the port is 80 when not given. */
struct srv_cli_url {
	char host[256];      /* without brackets */
	char port[8];
	char authority[272]; /* for Host: as written */
	char base[512];      /* path every request goes under, "" or "/x" */
};
/* 0, or -EINVAL with err naming what is wrong. */
int srv_cli_url_parse(const char *url, struct srv_cli_url *u, char *err,
		      size_t errlen);

struct srv_cli_req {
	const char *method;
	const char *target;   /* path and query, after the URL's base */
	const char *headers;  /* more "Name: value\r\n" lines, or NULL */
	const void *body;     /* sent with Content-Length when non-NULL */
	size_t len;
	int timeout_ms;       /* per connect, send and receive; 0: none */
	/* Body bytes as they arrive (the head is parsed by then); non-zero
	 * stops the request with that result. */
	int (*on_body)(void *arg, const struct srv_cli_parser *p,
		       const char *data, size_t n);
	void *arg;
};

/* Sends req to u and reads the response into p (its body to on_body).
 * 0 once the whole response came; else -errno (or what on_body
 * returned) with err saying what failed, naming the server. */
int srv_cli_request(const struct srv_cli_url *u, const struct srv_cli_req *req,
		    struct srv_cli_parser *p, char *err, size_t errlen);

#endif
