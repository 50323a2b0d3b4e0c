/* tests/cluster/chttp.c — one HTTP/1.1 request per connection, with one
 * deadline (see chttp.h). */
#include "tests/cluster/chttp.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

/* Response heads beyond this are a protocol error here. */
#define CHTTP_MAX_HEAD_BYTES (64 * 1024)

int64_t chttp_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

int chttp_parse_url(const char *url, char *host, size_t hostn, int *port)
{
	const char *p = url, *colon;
	size_t n;

	if (strncmp(p, "http://", 7) == 0)
		p += 7;
	colon = strchr(p, ':');
	if (!colon)
		return -EINVAL;
	n = (size_t)(colon - p);
	if (n == 0 || n >= hostn)
		return -EINVAL;
	memcpy(host, p, n);
	host[n] = '\0';
	*port = atoi(colon + 1);
	return *port > 0 && *port < 65536 ? 0 : -EINVAL;
}

static int ms_left(int64_t deadline_ns)
{
	int64_t left = (deadline_ns - chttp_now_ns()) / 1000000;

	return left <= 0 ? 0 : (int)left;
}

/* Waits for fd to be ready for ev before the deadline: 0, or -ETIMEDOUT. */
static int wait_fd(int fd, short ev, int64_t deadline_ns)
{
	struct pollfd p = { .fd = fd, .events = ev };
	int rc;

	for (;;) {
		int left = ms_left(deadline_ns);

		if (left == 0)
			return -ETIMEDOUT;
		rc = poll(&p, 1, left);
		if (rc > 0)
			return 0;
		if (rc < 0 && errno != EINTR)
			return -errno;
	}
}

static int connect_to(const char *host, int port, int64_t deadline_ns)
{
	struct sockaddr_in sa = { .sin_family = AF_INET };
	socklen_t sl = sizeof(int);
	int fd, err = 0;

	sa.sin_port = htons((uint16_t)port);
	if (inet_pton(AF_INET, host, &sa.sin_addr) != 1)
		return -EINVAL;
	fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return -errno;
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		if (errno != EINPROGRESS) {
			err = -errno;
			goto out_close;
		}
		err = wait_fd(fd, POLLOUT, deadline_ns);
		if (err < 0)
			goto out_close;
		if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &sl) < 0 || err) {
			err = err ? -err : -errno;
			goto out_close;
		}
	}
	return fd;
out_close:
	close(fd);
	return err;
}

static int send_all(int fd, const char *p, size_t n, int64_t deadline_ns)
{
	while (n > 0) {
		ssize_t w = send(fd, p, n, MSG_NOSIGNAL);

		if (w < 0) {
			if (errno == EINTR)
				continue;
			if (errno != EAGAIN)
				return -errno;
			if (wait_fd(fd, POLLOUT, deadline_ns) < 0)
				return -ETIMEDOUT;
			continue;
		}
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

/* The value of header `name` in the head (lines after the status line),
 * copied into out; 0 or -ENOENT. */
static int head_value(const char *head, const char *name, char *out,
		      size_t outn)
{
	size_t nl = strlen(name);
	const char *p = strstr(head, "\r\n");

	while (p && p[2]) {
		const char *line = p + 2, *end = strstr(line, "\r\n");

		if (!end)
			break;
		if ((size_t)(end - line) > nl && line[nl] == ':' &&
		    strncasecmp(line, name, nl) == 0) {
			const char *v = line + nl + 1;
			size_t n;

			while (*v == ' ' || *v == '\t')
				v++;
			n = (size_t)(end - v);
			while (n > 0 && (v[n - 1] == ' ' || v[n - 1] == '\t'))
				n--;
			if (n >= outn)
				n = outn - 1;
			memcpy(out, v, n);
			out[n] = '\0';
			return 0;
		}
		p = end;
	}
	return -ENOENT;
}

static void parse_head(const char *head, struct chttp_resp *r)
{
	char v[256];

	r->status = 0;
	if (strncmp(head, "HTTP/1.", 7) == 0)
		r->status = atoi(head + 9);
	if (head_value(head, "ETag", v, sizeof(v)) == 0 && v[0] == '"') {
		char *end;
		unsigned long long e = strtoull(v + 1, &end, 10);

		if (end != v + 1 && *end == '"') {
			r->has_etag = 1;
			r->etag = e;
		}
	}
	head_value(head, "Location", r->location, sizeof(r->location));
	head_value(head, "X-Caskd-Role", r->role, sizeof(r->role));
}

static void parse_error_code(struct chttp_resp *r)
{
	const char *p = r->body ? strstr(r->body, "\"error\"") : NULL;
	size_t n = 0;

	r->error_code[0] = '\0';
	if (!p)
		return;
	p = strchr(p + 7, '"');
	if (!p)
		return;
	p++;
	while (p[n] && p[n] != '"' && n + 1 < sizeof(r->error_code))
		n++;
	memcpy(r->error_code, p, n);
	r->error_code[n] = '\0';
}

/* Reads the whole response (the server closes after it) into buf. */
static int read_all(int fd, char **buf, size_t *len, int64_t deadline_ns)
{
	size_t cap = 4096;
	char *b = malloc(cap);

	*len = 0;
	if (!b)
		return -ENOMEM;
	for (;;) {
		ssize_t got;

		if (*len + 1 >= cap) {
			char *nb = realloc(b, cap * 2);

			if (!nb) {
				free(b);
				return -ENOMEM;
			}
			b = nb;
			cap *= 2;
		}
		got = recv(fd, b + *len, cap - 1 - *len, 0);
		if (got > 0) {
			*len += (size_t)got;
			continue;
		}
		if (got == 0)
			break;
		if (errno == EINTR)
			continue;
		if (errno != EAGAIN) {
			free(b);
			return -errno;
		}
		if (wait_fd(fd, POLLIN, deadline_ns) < 0) {
			free(b);
			return -ETIMEDOUT;
		}
	}
	b[*len] = '\0';
	*buf = b;
	return 0;
}

/* Decodes a chunked body in place; its length, or -EPROTO when cut short
 * (no last chunk: indeterminate). Trailers are ignored. */
static long dechunk(char *b, size_t len)
{
	size_t in = 0, out = 0;

	for (;;) {
		char *end;
		unsigned long n = strtoul(b + in, &end, 16);
		char *eol = memmem(b + in, len - in, "\r\n", 2);

		if (!eol || end == b + in)
			return -EPROTO;
		in = (size_t)(eol - b) + 2;
		if (n == 0)
			return (long)out;
		if (len - in < n + 2)
			return -EPROTO;
		memmove(b + out, b + in, n);
		out += n;
		in += n + 2;
	}
}

/* Splits raw into head and body; checks Content-Length when present. */
static int split_response(char *raw, size_t len, struct chttp_resp *r)
{
	char *sep = strstr(raw, "\r\n\r\n"), cl[32], te[32];
	size_t head_len, body_len;

	if (!sep || (size_t)(sep - raw) > CHTTP_MAX_HEAD_BYTES)
		return -EPROTO;
	head_len = (size_t)(sep - raw) + 4;
	sep[2] = '\0';
	parse_head(raw, r);
	body_len = len - head_len;
	if (head_value(raw, "Transfer-Encoding", te, sizeof(te)) == 0 &&
	    strcasecmp(te, "chunked") == 0) {
		long n = dechunk(raw + head_len, body_len);

		if (n < 0)
			return -EPROTO;
		body_len = (size_t)n;
	} else if (head_value(raw, "Content-Length", cl, sizeof(cl)) == 0 &&
	    strtoull(cl, NULL, 10) != body_len)
		return -EPROTO; /* cut short: indeterminate */
	r->body = malloc(body_len + 1);
	if (!r->body)
		return -ENOMEM;
	memcpy(r->body, raw + head_len, body_len);
	r->body[body_len] = '\0';
	r->body_len = body_len;
	return 0;
}

int chttp_request(const char *host, int port, const char *method,
		  const char *path, const char *extra_headers,
		  const void *body, size_t len, int timeout_ms,
		  struct chttp_resp *r)
{
	int64_t deadline = chttp_now_ns() + (int64_t)timeout_ms * 1000000;
	char head[2048], *raw = NULL;
	size_t raw_len;
	int fd, n, err;

	memset(r, 0, sizeof(*r));
	fd = connect_to(host, port, deadline);
	if (fd < 0) {
		r->fate = fd == -EINVAL ? CHTTP_LOST : CHTTP_NOT_SENT;
		/* A connect that timed out may still be in SYN_SENT on a
		 * partition; nothing was sent either way. */
		return fd == -EINVAL ? fd : 0;
	}
	n = snprintf(head, sizeof(head),
		     "%s %s HTTP/1.1\r\nHost: %s:%d\r\nConnection: close\r\n"
		     "%s" "Content-Length: %zu\r\n\r\n",
		     method, path, host, port, extra_headers ? extra_headers : "",
		     body ? len : (size_t)0);
	r->fate = CHTTP_LOST;
	if (n < 0 || (size_t)n >= sizeof(head)) {
		err = -ENAMETOOLONG;
		goto out_close;
	}
	if (send_all(fd, head, (size_t)n, deadline) < 0)
		goto out_ok;
	if (body && len && send_all(fd, body, len, deadline) < 0)
		goto out_ok;
	if (read_all(fd, &raw, &raw_len, deadline) < 0)
		goto out_ok;
	if (split_response(raw, raw_len, r) == 0) {
		r->fate = CHTTP_DONE;
		parse_error_code(r);
	}
	free(raw);
out_ok:
	err = 0;
out_close:
	close(fd);
	return err;
}

void chttp_resp_free(struct chttp_resp *r)
{
	free(r->body);
	r->body = NULL;
}
