/* engine/num.c — canonical decimal int64 (see num.h). */
#include "engine/num.h"

#include <errno.h>

int eng_parse_i64(const char *s, size_t n, int64_t *out)
{
	int neg = 0;
	uint64_t v = 0, lim;

	if (n && s[0] == '-') {
		neg = 1;
		s++;
		n--;
	}
	if (n == 0 || n > ENG_I64_DIGITS_MAX - 1 || (s[0] == '0' && (n > 1 || neg)))
		return -EINVAL;
	lim = neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;
	for (size_t i = 0; i < n; i++) {
		unsigned d = (unsigned char)s[i] - '0';
		if (d > 9 || v > (lim - d) / 10)
			return -EINVAL;
		v = v * 10 + d;
	}
	*out = neg ? (int64_t)(0 - v) : (int64_t)v;
	return 0;
}
