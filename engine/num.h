/* engine/num.h — the decimal form of integers that incr stores, and of
 * versions and job ids.
 *
 * Owns: the one definition of a canonical decimal int64 and uint64,
 * shared by the engine (incr reads and writes values in it) and the
 * server (?by=N, batch check versions, job ids), so all accept exactly
 * the same strings.
 */
#ifndef CASKD_ENGINE_NUM_H
#define CASKD_ENGINE_NUM_H

#include <stddef.h>
#include <stdint.h>

#define ENG_I64_DIGITS_MAX 20 /* "-9223372036854775808" */
#define ENG_U64_DIGITS_MAX 20 /* "18446744073709551615" */

/* Parses a canonical decimal int64 ("0", "-12"; no '+', no leading
 * zeros, no "-0", no spaces). 0 or -EINVAL. */
int eng_parse_i64(const char *s, size_t n, int64_t *out);
/* The same for a uint64 ("0", "42"; no sign). 0 or -EINVAL. */
int eng_parse_u64(const char *s, size_t n, uint64_t *out);

#endif
