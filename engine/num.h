/* engine/num.h — the decimal form of integers that incr stores.
 *
 * Owns: the one definition of a canonical decimal int64, shared by the
 * engine (incr reads and writes values in it) and the HTTP query parser
 * (?by=N), so both accept exactly the same strings.
 */
#ifndef CASKD_ENGINE_NUM_H
#define CASKD_ENGINE_NUM_H

#include <stddef.h>
#include <stdint.h>

#define ENG_I64_DIGITS_MAX 20 /* "-9223372036854775808" */

/* Parses a canonical decimal int64 ("0", "-12"; no '+', no leading
 * zeros, no "-0", no spaces). 0 or -EINVAL. */
int eng_parse_i64(const char *s, size_t n, int64_t *out);

#endif
