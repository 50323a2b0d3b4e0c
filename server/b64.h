/* server/b64.h — base64 (RFC 4648, with padding), for /watch's values
 * and etcd's JSON gateway, which carries keys and values in it. */
#ifndef CASKD_SERVER_B64_H
#define CASKD_SERVER_B64_H

#include <stddef.h>
#include <sys/types.h>

static inline size_t srv_b64_len(size_t n)
{
	return (n + 2) / 3 * 4;
}
/* Writes srv_b64_len(n) bytes (no NUL); returns that length. */
size_t srv_b64_encode(const unsigned char *s, size_t n, char *out);
/* Decodes s[0..n) into out (room for n / 4 * 3): the length, or -EINVAL. */
ssize_t srv_b64_decode(const char *s, size_t n, unsigned char *out);

#endif
