/* engine/num.c — canonical decimal int64 (see num.h). */
#include "engine/num.h"

#include <errno.h>

/* Canonical decimal digits of a value <= lim: no leading zeros. */
static int parse_digits(const char *s, size_t n, uint64_t lim, uint64_t *out)
{
	uint64_t v = 0;

	if (n == 0 || n > ENG_U64_DIGITS_MAX || (s[0] == '0' && n > 1))
		return -EINVAL;
	for (size_t i = 0; i < n; i++) {
		unsigned d = (unsigned char)s[i] - '0';
		if (d > 9 || v > (lim - d) / 10)
			return -EINVAL;
		v = v * 10 + d;
	}
	*out = v;
	return 0;
}

int eng_parse_i64(const char *s, size_t n, int64_t *out)
{
	int neg = n && s[0] == '-';
	uint64_t v;

	if (neg && n > 1 && s[1] == '0')
		return -EINVAL; /* "-0", "-01" */
	if (parse_digits(s + neg, n - neg, neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX,
			 &v))
		return -EINVAL;
	*out = neg ? (int64_t)(0 - v) : (int64_t)v;
	return 0;
}

int eng_parse_u64(const char *s, size_t n, uint64_t *out)
{
	return parse_digits(s, n, UINT64_MAX, out);
}
