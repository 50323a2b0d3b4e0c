/* server/token.h — the admin token (--admin-token-file).
 *
 * Owns: reading the token file, and comparing a token a client presents
 * against it. The file holds 1..SRV_TOKEN_MAX bytes of token; trailing
 * newlines (and spaces or tabs, which an HTTP header value cannot end
 * with) are not part of it. A file that is missing, unreadable, empty,
 * longer than that, or holds a NUL byte or another control character
 * (which no Authorization header can carry) is refused, never cut: a
 * token cut at a NUL would let `Bearer a` open a file holding
 * "a\0long-secret". A file that group or others may read is taken, with
 * a warning. The comparison takes time that depends only on the length
 * of what the client sent, never on the token's bytes or its length.
 */
#ifndef CASKD_SERVER_TOKEN_H
#define CASKD_SERVER_TOKEN_H

#include <stddef.h>

#define SRV_TOKEN_MAX 4096

struct srv_token {
	size_t len;                        /* 1..SRV_TOKEN_MAX */
	unsigned char buf[SRV_TOKEN_MAX];  /* the token, zeros after it */
};

/* Reads the token in path into *t. 0, or -EINVAL with one line in err that
 * names --admin-token-file, the path and what is wrong. */
int srv_token_read(const char *path, struct srv_token *t, char *err, size_t n);
/* 1 if presented[0..len) is the token, else 0. */
int srv_token_matches(const struct srv_token *t, const char *presented, size_t len);

#endif
