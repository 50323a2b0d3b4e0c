/* server/cli_http.c — the command-line client's HTTP/1.1 (contract in
 * cli_http.h).
 *
 * Map: 1. the response parser (head, framing, chunked bodies) - 2. flat
 * JSON fields - 3. URLs - 4. the request over a blocking socket.
 */
#include "server/cli_http.h"

#include "server/version.h"

#include <errno.h>
#include <netdb.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

/* Bytes read from the socket at a time. */
#define READ_BYTES 65536
#define STATUS_DIGITS 3
#define HEX_BITS 4

/* ==== 1. the response parser ============================================ */

enum phase {
	PH_HEAD,
	PH_CL,      /* Content-Length body, left bytes to go */
	PH_CHUNKED, /* cstate */
	PH_CLOSE,   /* the body ends with the connection */
	PH_DONE,
	PH_FAILED,
};

enum chunk_state {
	CS_SIZE_FIRST, /* the first hex digit of a chunk size */
	CS_SIZE,       /* more digits, or what ends them */
	CS_EXT,        /* a chunk extension, skipped to the line's end */
	CS_SIZE_LF,    /* after the CR of a chunk-size line */
	CS_DATA,
	CS_DATA_END,   /* the CR (or bare LF) after chunk data */
	CS_DATA_LF,
	CS_TRAILER,    /* the start of a trailer line, or the last line */
	CS_TLINE,      /* inside a trailer line */
	CS_END_LF,     /* after the CR of the last line */
};

static int fail(struct srv_cli_parser *p, const char *what)
{
	p->phase = PH_FAILED;
	p->err = what;
	return -EBADMSG;
}

static bool is_tchar(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	       (c >= '0' && c <= '9') || (c && strchr("!#$%&'*+-.^_`|~", c));
}

static int hex_value(unsigned char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if ((c | 0x20) >= 'a' && (c | 0x20) <= 'f')
		return (c | 0x20) - 'a' + 10;
	return -EINVAL;
}

void srv_cli_parser_init(struct srv_cli_parser *p)
{
	/* all but the head's bytes: no status, field or body byte yet */
	memset(p, 0, offsetof(struct srv_cli_parser, head));
	p->phase = PH_HEAD;
	p->cstate = CS_SIZE_FIRST;
}

const char *srv_cli_header(const struct srv_cli_parser *p, const char *name)
{
	for (int i = 0; i < p->nfields; i++)
		if (!strcasecmp(p->fields[i].name, name))
			return p->fields[i].value;
	return NULL;
}

/* Cuts the line at *s (ending in LF, maybe CRLF) off: NUL-terminated
 * without its end; *s moves past it. */
static char *next_line(char **s)
{
	char *line = *s, *lf = strchr(line, '\n');

	*s = lf + 1;
	if (lf > line && lf[-1] == '\r')
		lf--;
	*lf = '\0';
	return line;
}

/* "HTTP/1.x SSS[ reason]". */
static int status_line(struct srv_cli_parser *p, const char *l)
{
	int st = 0;

	if (strncmp(l, "HTTP/1.", 7) || l[7] < '0' || l[7] > '9' || l[8] != ' ')
		return fail(p, "the status line is not HTTP/1.x");
	for (int i = 0; i < STATUS_DIGITS; i++) {
		if (l[9 + i] < '0' || l[9 + i] > '9')
			return fail(p, "the status is not three digits");
		st = st * 10 + (l[9 + i] - '0');
	}
	if (l[12] != '\0' && l[12] != ' ')
		return fail(p, "the status is not three digits");
	if (st < 100)
		return fail(p, "a status below 100");
	p->status = st;
	return 0;
}

static int field_line(struct srv_cli_parser *p, char *l)
{
	char *colon = l, *v, *e;

	while (is_tchar((unsigned char)*colon))
		colon++;
	if (colon == l || *colon != ':')
		return fail(p, "a malformed header field");
	if (p->nfields == SRV_CLI_FIELDS_MAX)
		return fail(p, "too many header fields");
	*colon = '\0';
	for (v = colon + 1; *v == ' ' || *v == '\t'; v++)
		;
	for (e = v + strlen(v); e > v && (e[-1] == ' ' || e[-1] == '\t'); e--)
		;
	*e = '\0';
	p->fields[p->nfields++] = (struct srv_cli_field){ l, v };
	return 0;
}

/* 1*DIGIT; a repeated field must agree (RFC 9112 6.3). */
static int content_length(struct srv_cli_parser *p, uint64_t *cl)
{
	bool seen = false;

	for (int i = 0; i < p->nfields; i++) {
		const char *v = p->fields[i].value;
		uint64_t n = 0;

		if (strcasecmp(p->fields[i].name, "Content-Length"))
			continue;
		if (!*v)
			return fail(p, "an empty Content-Length");
		for (; *v; v++) {
			if (*v < '0' || *v > '9' || n > (UINT64_MAX - 9) / 10)
				return fail(p, "a malformed Content-Length");
			n = n * 10 + (uint64_t)(*v - '0');
		}
		if (seen && n != *cl)
			return fail(p, "Content-Length fields that disagree");
		seen = true;
		*cl = n;
	}
	return seen;
}

/* RFC 9112 6.3: how the body is delimited. */
static int framing(struct srv_cli_parser *p)
{
	const char *te = srv_cli_header(p, "Transfer-Encoding");
	uint64_t cl = 0;
	int has_cl;

	if (p->status == 204 || p->status == 304) {
		p->phase = PH_DONE;
		return 0;
	}
	if (te) {
		if (strcasecmp(te, "chunked"))
			return fail(p, "a transfer coding other than chunked");
		p->phase = PH_CHUNKED;
		return 0;
	}
	if ((has_cl = content_length(p, &cl)) < 0)
		return has_cl;
	p->left = cl;
	p->phase = !has_cl ? PH_CLOSE : cl ? PH_CL : PH_DONE;
	return 0;
}

/* The head in head[0..hlen) ends in an empty line. */
static int head_done(struct srv_cli_parser *p)
{
	char *s = p->head;
	int rc;

	p->head[p->hlen] = '\0';
	if (memchr(p->head, '\0', p->hlen))
		return fail(p, "a NUL byte in the head");
	p->nfields = 0;
	if ((rc = status_line(p, next_line(&s))))
		return rc;
	while (*s != '\r' && *s != '\n')
		if ((rc = field_line(p, next_line(&s))))
			return rc;
	p->hlen = 0;
	if (p->status < 200) {
		if (p->status == 101)
			return fail(p, "101 Switching Protocols to a plain request");
		return 0; /* interim (100 Continue): the real head follows */
	}
	if ((rc = framing(p)))
		return rc;
	return SRV_CLI_HEAD;
}

/* Head bytes, one at a time: the head ends at the first empty line, and
 * no byte past it is taken. */
static int parse_head(struct srv_cli_parser *p, const char *data, size_t len,
		      size_t *used)
{
	for (size_t i = 0; i < len; i++) {
		char *h = p->head;
		size_t n;

		if (p->hlen == SRV_CLI_HEAD_MAX) {
			*used = i;
			return fail(p, "a response head over 16 KiB");
		}
		h[p->hlen++] = data[i];
		n = p->hlen;
		if (h[n - 1] != '\n')
			continue;
		/* a leading empty line is not a status line */
		if (n == 1 || (n == 2 && h[0] == '\r')) {
			*used = i + 1;
			return fail(p, "an empty line where the status line belongs");
		}
		if (h[n - 2] == '\n' || (n >= 3 && h[n - 2] == '\r' && h[n - 3] == '\n')) {
			int rc = head_done(p);

			*used = i + 1;
			if (rc)
				return rc;
		}
	}
	*used = len;
	return SRV_CLI_AGAIN;
}

/* The CR or LF ending a chunk-size line: its data, or the trailers. */
static int chunk_line_end(struct srv_cli_parser *p, unsigned char c)
{
	if (c == '\r')
		p->cstate = CS_SIZE_LF;
	else
		p->cstate = p->left ? CS_DATA : CS_TRAILER;
	return 0;
}

static int chunk_line_byte(struct srv_cli_parser *p, unsigned char c)
{
	int d;

	switch (p->cstate) {
	case CS_SIZE_FIRST:
	case CS_SIZE:
		if ((d = hex_value(c)) >= 0) {
			if (p->left > UINT64_MAX >> HEX_BITS)
				return fail(p, "a chunk size that overflows");
			p->left = p->left << HEX_BITS | (uint64_t)d;
			p->cstate = CS_SIZE;
			return 0;
		}
		if (p->cstate == CS_SIZE && (c == ';' || c == ' ' || c == '\t')) {
			p->cstate = CS_EXT;
			return 0;
		}
		if (p->cstate == CS_SIZE && (c == '\r' || c == '\n'))
			return chunk_line_end(p, c);
		return fail(p, "a chunk size that is not hex");
	case CS_EXT:
		return c == '\r' || c == '\n' ? chunk_line_end(p, c) : 0;
	case CS_SIZE_LF:
		if (c != '\n')
			return fail(p, "a chunk-size line with a CR inside");
		return chunk_line_end(p, c);
	default:
		return fail(p, "a chunked body out of step");
	}
}

/* One byte of a chunked body outside chunk data. */
static int chunk_byte(struct srv_cli_parser *p, unsigned char c)
{
	switch (p->cstate) {
	case CS_DATA_END:
		if (c == '\n')
			p->cstate = CS_SIZE_FIRST;
		else if (c == '\r')
			p->cstate = CS_DATA_LF;
		else
			return fail(p, "chunk data longer than its size");
		return 0;
	case CS_DATA_LF:
		if (c != '\n')
			return fail(p, "chunk data longer than its size");
		p->cstate = CS_SIZE_FIRST;
		return 0;
	case CS_TRAILER:
	case CS_TLINE:
		if (++p->trailer > SRV_CLI_HEAD_MAX)
			return fail(p, "a trailer section over 16 KiB");
		if (p->cstate == CS_TRAILER && c == '\r')
			p->cstate = CS_END_LF;
		else if (p->cstate == CS_TRAILER && c == '\n')
			p->phase = PH_DONE;
		else
			p->cstate = c == '\n' ? CS_TRAILER : CS_TLINE;
		return 0;
	case CS_END_LF:
		if (c != '\n')
			return fail(p, "a CR without LF after the last chunk");
		p->phase = PH_DONE;
		return 0;
	default:
		return chunk_line_byte(p, c);
	}
}

static int parse_chunked(struct srv_cli_parser *p, const char *data, size_t len,
			 size_t *used, size_t *off, size_t *n)
{
	size_t i = 0;

	while (i < len && p->phase == PH_CHUNKED) {
		if (p->cstate == CS_DATA) {
			size_t k = len - i < p->left ? len - i : (size_t)p->left;

			*off = i;
			*n = k;
			p->left -= k;
			if (!p->left)
				p->cstate = CS_DATA_END;
			*used = i + k;
			return SRV_CLI_BODY;
		}
		if (chunk_byte(p, (unsigned char)data[i++]) < 0) {
			*used = i;
			return -EBADMSG;
		}
	}
	*used = i;
	return p->phase == PH_DONE ? SRV_CLI_DONE : SRV_CLI_AGAIN;
}

int srv_cli_parse(struct srv_cli_parser *p, const char *data, size_t len,
		  size_t *used, size_t *off, size_t *n)
{
	size_t k;

	*used = 0;
	switch (p->phase) {
	case PH_HEAD:
		return parse_head(p, data, len, used);
	case PH_CL:
		if (!len)
			return SRV_CLI_AGAIN;
		k = len < p->left ? len : (size_t)p->left;
		*off = 0;
		*n = *used = k;
		if (!(p->left -= k))
			p->phase = PH_DONE;
		return SRV_CLI_BODY;
	case PH_CHUNKED:
		return parse_chunked(p, data, len, used, off, n);
	case PH_CLOSE:
		if (!len)
			return SRV_CLI_AGAIN;
		*off = 0;
		*n = *used = len;
		return SRV_CLI_BODY;
	case PH_DONE:
		return SRV_CLI_DONE;
	default:
		return -EBADMSG;
	}
}

int srv_cli_parse_eof(struct srv_cli_parser *p)
{
	switch (p->phase) {
	case PH_CLOSE:
		p->phase = PH_DONE;
		return SRV_CLI_DONE;
	case PH_DONE:
		return SRV_CLI_DONE;
	case PH_FAILED:
		return -EBADMSG;
	case PH_HEAD:
		return fail(p, p->hlen ? "the connection closed inside the response head"
				       : "the connection closed without a response");
	default:
		return fail(p, "the connection closed before the body was complete");
	}
}

/* ==== 2. flat JSON fields ================================================ */

struct jscan {
	const char *s, *e;
};

static void js_ws(struct jscan *j)
{
	while (j->s < j->e && (*j->s == ' ' || *j->s == '\t' || *j->s == '\r' ||
				*j->s == '\n'))
		j->s++;
}

static size_t utf8_put(unsigned cp, char *b)
{
	if (cp < 0x80) {
		b[0] = (char)cp;
		return 1;
	}
	if (cp < 0x800) {
		b[0] = (char)(0xc0 | cp >> 6);
		b[1] = (char)(0x80 | (cp & 0x3f));
		return 2;
	}
	b[0] = (char)(0xe0 | cp >> 12);
	b[1] = (char)(0x80 | (cp >> 6 & 0x3f));
	b[2] = (char)(0x80 | (cp & 0x3f));
	return 3;
}

/* The byte a one-letter escape stands for, or 0 for none. */
static char js_escape(char c)
{
	switch (c) {
	case '"': return '"';
	case '\\': return '\\';
	case '/': return '/';
	case 'b': return '\b';
	case 'f': return '\f';
	case 'n': return '\n';
	case 'r': return '\r';
	case 't': return '\t';
	default: return 0;
	}
}

/* A string at j->s (its opening quote), unescaped into out (cut to fit
 * n, NUL-terminated when n > 0): its length, or -EINVAL if malformed. A
 * surrogate pair comes out as two 3-byte forms, not one character:
 * caskd escapes only control bytes, and a message is for a person. */
static long js_string(struct jscan *j, char *out, size_t n)
{
	size_t o = 0;

	if (j->s == j->e || *j->s != '"')
		return -EINVAL;
	for (j->s++; j->s < j->e; j->s++) {
		char b[4];
		size_t k = 1;
		unsigned char c = (unsigned char)*j->s;

		if (c == '"') {
			j->s++;
			if (n)
				out[o < n ? o : n - 1] = '\0';
			return (long)o;
		}
		if (c < 0x20)
			return -EINVAL;
		b[0] = (char)c;
		if (c == '\\') {
			if (++j->s == j->e)
				return -EINVAL;
			if (*j->s == 'u') {
				unsigned cp = 0;

				for (int i = 1; i <= 4; i++) {
					int d = j->s + i < j->e ? hex_value((unsigned char)j->s[i]) : -EINVAL;
					if (d < 0)
						return -EINVAL;
					cp = cp << 4 | (unsigned)d;
				}
				j->s += 4;
				k = utf8_put(cp, b);
			} else if ((b[0] = js_escape(*j->s)) == 0) {
				return -EINVAL;
			}
		}
		for (size_t i = 0; i < k; i++, o++)
			if (o + 1 < n)
				out[o] = b[i];
	}
	return -EINVAL;
}

/* A number, true, false or null: the bytes up to a delimiter. */
static long js_scalar(struct jscan *j, char *out, size_t n)
{
	const char *v = j->s;
	size_t len;

	while (j->s < j->e && (unsigned char)*j->s > ' ' && *j->s != ',' &&
	       *j->s != '}' && *j->s != '"' && *j->s != '{' && *j->s != '[' &&
	       *j->s != ']' && *j->s != ':')
		j->s++;
	len = (size_t)(j->s - v);
	if (!len)
		return -EINVAL;
	if (n) {
		size_t k = len < n ? len : n - 1;
		memcpy(out, v, k);
		out[k] = '\0';
	}
	return (long)len;
}

long srv_cli_json_field(const char *json, size_t len, const char *name,
			char *out, size_t n)
{
	struct jscan j = { json, json + len };
	char key[64];

	js_ws(&j);
	if (j.s == j.e || *j.s++ != '{')
		return -EBADMSG;
	js_ws(&j);
	if (j.s < j.e && *j.s == '}')
		return -ENOENT;
	for (;;) {
		long kl, vl;
		bool match;

		js_ws(&j);
		if ((kl = js_string(&j, key, sizeof(key))) < 0)
			return -EBADMSG;
		match = (size_t)kl < sizeof(key) && !strcmp(key, name);
		js_ws(&j);
		if (j.s == j.e || *j.s++ != ':')
			return -EBADMSG;
		js_ws(&j);
		vl = j.s < j.e && *j.s == '"' ? js_string(&j, match ? out : NULL, match ? n : 0)
					      : js_scalar(&j, match ? out : NULL, match ? n : 0);
		if (vl < 0)
			return -EBADMSG;
		if (match)
			return vl;
		js_ws(&j);
		if (j.s == j.e)
			return -EBADMSG;
		if (*j.s == '}')
			return -ENOENT;
		if (*j.s++ != ',')
			return -EBADMSG;
	}
}

/* ==== 3. URLs ============================================================ */

#define SCHEME "http://"

int srv_cli_url_parse(const char *url, struct srv_cli_url *u, char *err,
		      size_t errlen)
{
	const char *s = url, *auth, *path, *port = NULL, *hend;
	size_t alen;

	memset(u, 0, sizeof(*u));
	if (!strncasecmp(s, SCHEME, strlen(SCHEME))) {
		s += strlen(SCHEME);
	} else if (strstr(s, "://")) {
		snprintf(err, errlen, "--url %s: only http:// is supported (caskd serves "
			 "plain HTTP; put a TLS proxy in front for more)", url);
		return -EINVAL;
	}
	auth = s;
	path = auth + strcspn(auth, "/?#");
	alen = (size_t)(path - auth);
	if (*path == '?' || *path == '#' || alen == 0 || alen >= sizeof(u->authority))
		goto bad;
	memcpy(u->authority, auth, alen);
	if (*auth == '[') {
		hend = memchr(auth, ']', alen);
		if (!hend || hend == auth + 1)
			goto bad;
		if ((size_t)(hend - auth - 1) >= sizeof(u->host))
			goto bad;
		memcpy(u->host, auth + 1, (size_t)(hend - auth - 1));
		if (hend + 1 < path && hend[1] != ':')
			goto bad;
		port = hend + 1 < path ? hend + 2 : NULL;
	} else {
		hend = memchr(auth, ':', alen);
		if (!hend)
			hend = path;
		else
			port = hend + 1;
		if (hend == auth || (size_t)(hend - auth) >= sizeof(u->host))
			goto bad;
		memcpy(u->host, auth, (size_t)(hend - auth));
	}
	if (port) {
		size_t pl = (size_t)(path - port);
		long v = 0;

		if (pl == 0 || pl > 5)
			goto bad;
		for (size_t i = 0; i < pl; i++) {
			if (port[i] < '0' || port[i] > '9')
				goto bad;
			v = v * 10 + (port[i] - '0');
		}
		if (v < 1 || v > 65535)
			goto bad;
		memcpy(u->port, port, pl);
	} else {
		strcpy(u->port, "80");
	}
	if (strlen(path) >= sizeof(u->base))
		goto bad;
	strcpy(u->base, path);
	alen = strlen(u->base);
	while (alen && u->base[alen - 1] == '/')
		u->base[--alen] = '\0';
	return 0;
bad:
	snprintf(err, errlen, "--url %s: not http://HOST[:PORT][/PATH] (HOST a name, "
		 "an IPv4 address or [IPv6], PORT 1..65535)", url);
	return -EINVAL;
}

/* ==== 4. the request ===================================================== */

static void set_timeouts(int fd, int ms)
{
	struct timeval tv = { ms / 1000, (ms % 1000) * 1000 };

	/* Failing to set them only loses the timeout: not worth a refusal. */
	(void)setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	(void)setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
}

/* A connected socket, or -errno with err set. On Linux SO_SNDTIMEO
 * bounds connect() too. */
static int dial(const struct srv_cli_url *u, int timeout_ms, char *err,
		size_t errlen)
{
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM }, *res, *ai;
	int rc = getaddrinfo(u->host, u->port, &hints, &res), fd = -1, e = 0;

	if (rc) {
		snprintf(err, errlen, "cannot resolve %s: %s", u->host, gai_strerror(rc));
		return -EHOSTUNREACH;
	}
	for (ai = res; ai; ai = ai->ai_next) {
		fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
		if (fd < 0) {
			e = errno;
			continue;
		}
		if (timeout_ms)
			set_timeouts(fd, timeout_ms);
		if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0)
			break;
		e = errno;
		close(fd);
		fd = -1;
	}
	freeaddrinfo(res);
	if (fd < 0) {
		if (e == EAGAIN || e == EINPROGRESS)
			e = ETIMEDOUT;
		snprintf(err, errlen, "cannot connect to %s: %s (is caskd running there? "
			 "--url names another)", u->authority, strerror(e));
		return -e;
	}
	return fd;
}

/* 0, or -errno of the first failed send. */
static int send_all(int fd, const void *buf, size_t len)
{
	const char *p = buf;

	while (len) {
		ssize_t n = send(fd, p, len, MSG_NOSIGNAL);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return errno == EAGAIN ? -ETIMEDOUT : -errno;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

static int send_request(int fd, const struct srv_cli_url *u,
			const struct srv_cli_req *req)
{
	char *head;
	int n, rc;

	n = req->body ? asprintf(&head, "%s %s%s HTTP/1.1\r\nHost: %s\r\nUser-Agent: caskd/%s\r\n"
				 "Connection: close\r\n%sContent-Length: %zu\r\n\r\n",
				 req->method, u->base, req->target, u->authority, srv_version,
				 req->headers ? req->headers : "", req->len)
		      : asprintf(&head, "%s %s%s HTTP/1.1\r\nHost: %s\r\nUser-Agent: caskd/%s\r\n"
				 "Connection: close\r\n%s\r\n",
				 req->method, u->base, req->target, u->authority, srv_version,
				 req->headers ? req->headers : "");
	if (n < 0)
		return -ENOMEM;
	rc = send_all(fd, head, (size_t)n);
	free(head);
	if (!rc && req->body && req->len)
		rc = send_all(fd, req->body, req->len);
	return rc;
}

/* Feeds buf[0..len) to the parser: SRV_CLI_AGAIN, SRV_CLI_DONE, or an
 * error (-EBADMSG, or on_body's). */
static int feed(const struct srv_cli_req *req, struct srv_cli_parser *p,
		const char *buf, size_t len)
{
	size_t pos = 0;

	while (pos < len || p->phase == PH_DONE) {
		size_t used, off = 0, n = 0;
		int rc = srv_cli_parse(p, buf + pos, len - pos, &used, &off, &n);

		if (rc < 0 || rc == SRV_CLI_DONE)
			return rc;
		if (rc == SRV_CLI_BODY && req->on_body &&
		    (rc = req->on_body(req->arg, p, buf + pos + off, n)))
			return rc;
		pos += used;
		if (rc == SRV_CLI_AGAIN)
			break;
	}
	return SRV_CLI_AGAIN;
}

static int read_response(int fd, const struct srv_cli_url *u,
			 const struct srv_cli_req *req, struct srv_cli_parser *p,
			 char *err, size_t errlen)
{
	char *buf = malloc(READ_BYTES);
	int rc = SRV_CLI_AGAIN;

	if (!buf) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	while (rc == SRV_CLI_AGAIN) {
		ssize_t n = recv(fd, buf, READ_BYTES, 0);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			rc = errno == EAGAIN ? -ETIMEDOUT : -errno;
			snprintf(err, errlen, "reading the answer of %s: %s", u->authority,
				 rc == -ETIMEDOUT ? "no answer in time" : strerror(-rc));
			break;
		}
		rc = n ? feed(req, p, buf, (size_t)n) : srv_cli_parse_eof(p);
		if (rc == -EBADMSG)
			snprintf(err, errlen, "a malformed answer from %s: %s", u->authority,
				 p->err ? p->err : "?");
		else if (rc < 0 && !err[0])
			snprintf(err, errlen, "%s", strerror(-rc));
	}
	free(buf);
	return rc == SRV_CLI_DONE ? 0 : rc;
}

int srv_cli_request(const struct srv_cli_url *u, const struct srv_cli_req *req,
		    struct srv_cli_parser *p, char *err, size_t errlen)
{
	int fd, rc, sent;

	err[0] = '\0';
	srv_cli_parser_init(p);
	if ((fd = dial(u, req->timeout_ms, err, errlen)) < 0)
		return fd;
	/* A server may answer (413) and close before the body is all sent:
	 * its answer is what to report, so it is read either way. */
	sent = send_request(fd, u, req);
	rc = read_response(fd, u, req, p, err, errlen);
	if (rc && sent && !p->status) {
		rc = sent;
		snprintf(err, errlen, "sending the request to %s: %s", u->authority,
			 strerror(-sent));
	}
	close(fd);
	return rc;
}
