/* server/token.c — the admin token (see token.h). */
#include "server/token.h"

#include "server/log.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define OPT "--admin-token-file"
/* Room to read past the limit for trailing newlines, which are no part
 * of the token; a file that fills the buffer is too long. */
#define READ_SLACK 64

static int refuse(char *err, size_t n, const char *path, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
static int refuse(char *err, size_t n, const char *path, const char *fmt, ...)
{
	va_list ap;
	int used = snprintf(err, n, OPT " %s: ", path);

	if (used >= 0 && (size_t)used < n) {
		va_start(ap, fmt);
		vsnprintf(err + used, n - (size_t)used, fmt, ap);
		va_end(ap);
	}
	return -EINVAL;
}

/* Reads up to cap bytes of fd: the count, or -errno. */
static ssize_t read_upto(int fd, unsigned char *buf, size_t cap)
{
	size_t got = 0;

	while (got < cap) {
		ssize_t r = read(fd, buf + got, cap - got);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return -errno;
		if (r == 0)
			break;
		got += (size_t)r;
	}
	return (ssize_t)got;
}

int srv_token_read(const char *path, struct srv_token *t, char *err, size_t n)
{
	unsigned char buf[SRV_TOKEN_MAX + READ_SLACK + 1];
	struct stat st;
	ssize_t got;
	size_t len;
	int fd, rc = -1;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY)) < 0)
		return refuse(err, n, path, "cannot open: %s", strerror(errno));
	if (fstat(fd, &st) < 0) {
		refuse(err, n, path, "cannot stat: %s", strerror(errno));
		goto out;
	}
	if ((got = read_upto(fd, buf, sizeof(buf))) < 0) {
		refuse(err, n, path, "cannot read: %s", strerror((int)-got));
		goto out;
	}
	len = (size_t)got;
	while (len && (buf[len - 1] == '\n' || buf[len - 1] == '\r' ||
		       buf[len - 1] == ' ' || buf[len - 1] == '\t'))
		len--;
	if (len == 0) {
		refuse(err, n, path, "is empty");
		goto out;
	}
	if (len > SRV_TOKEN_MAX || (size_t)got == sizeof(buf)) {
		refuse(err, n, path, "the token is longer than %d bytes", SRV_TOKEN_MAX);
		goto out;
	}
	for (size_t i = 0; i < len; i++) {
		if (buf[i] == '\0') {
			refuse(err, n, path, "holds a NUL byte (at offset %zu); a token is "
			       "text an Authorization header can carry", i);
			goto out;
		}
		if ((buf[i] < 0x20 && buf[i] != '\t') || buf[i] == 0x7f) {
			refuse(err, n, path, "holds a control character (0x%02x at offset "
			       "%zu), which no Authorization header can carry", buf[i], i);
			goto out;
		}
	}
	if (S_ISREG(st.st_mode) && (st.st_mode & (S_IRGRP | S_IROTH)))
		srv_warn(OPT " %s can be read by group or others (mode %04o); "
			 "chmod 600 it", path, (unsigned)(st.st_mode & 07777));
	memset(t->buf, 0, sizeof(t->buf));
	memcpy(t->buf, buf, len);
	t->len = len;
	rc = 0;
out:
	explicit_bzero(buf, sizeof(buf));
	close(fd);
	return rc;
}

int srv_token_matches(const struct srv_token *t, const char *presented, size_t len)
{
	/* Every byte of the buffer, whatever either length, and no branch
	 * on the token: the time depends only on len, which the client
	 * knows. The lengths are folded in, so a prefix never matches. */
	unsigned diff = len != t->len;

	for (size_t i = 0; i < SRV_TOKEN_MAX; i++) {
		unsigned char c = i < len ? (unsigned char)presented[i] : 0;
		diff |= (unsigned)(c ^ t->buf[i]);
	}
	return diff == 0;
}
