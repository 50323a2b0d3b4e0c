/* server/pct.h — percent-encoding (RFC 3986 2.1) of keys and values.
 *
 * Owns: the one decoder of %XX escapes the API uses (paths, queries,
 * batch lines) and the encoder of keys in listings. Pure functions.
 */
#ifndef CASKD_SERVER_PCT_H
#define CASKD_SERVER_PCT_H

#include <stddef.h>

#define SRV_PCT_ALLOW_NUL 1 /* values may hold NUL bytes; keys may not */

/* Decodes s[0..n) into out (room for max bytes): the decoded length, or
 * -EINVAL for a bad escape, a NUL byte (unless SRV_PCT_ALLOW_NUL), or
 * more than max bytes. */
long srv_pct_decode(const char *s, size_t n, char *out, size_t max, int flags);
/* The value of hex digit c, or -EINVAL. */
int srv_pct_hex(char c);
/* Bytes srv_pct_encode writes for s[0..n) (at most 3n). */
size_t srv_pct_encoded_len(const char *s, size_t n);
/* Encodes every byte but the unreserved ones (A-Z a-z 0-9 - . _ ~) and
 * '/', which keys use as a separator. Returns the bytes written. */
size_t srv_pct_encode(const char *s, size_t n, char *out);

#endif
