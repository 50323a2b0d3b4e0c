/* server/pct.c — percent-encoding (see pct.h). */
#include "server/pct.h"

#include <errno.h>

int srv_pct_hex(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -EINVAL;
}

long srv_pct_decode(const char *s, size_t n, char *out, size_t max, int flags)
{
	size_t o = 0;

	for (size_t i = 0; i < n; i++) {
		int c = (unsigned char)s[i];
		if (c == '%') {
			int hi, lo;
			if (i + 2 >= n)
				return -EINVAL;
			hi = srv_pct_hex(s[i + 1]);
			lo = srv_pct_hex(s[i + 2]);
			if (hi < 0 || lo < 0)
				return -EINVAL;
			c = hi << 4 | lo;
			i += 2;
		}
		if ((c == 0 && !(flags & SRV_PCT_ALLOW_NUL)) || o == max)
			return -EINVAL;
		out[o++] = (char)c;
	}
	return (long)o;
}

static int kept(unsigned char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
	       (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_' ||
	       c == '~' || c == '/';
}

size_t srv_pct_encoded_len(const char *s, size_t n)
{
	size_t len = 0;

	for (size_t i = 0; i < n; i++)
		len += kept((unsigned char)s[i]) ? 1 : 3;
	return len;
}

size_t srv_pct_encode(const char *s, size_t n, char *out)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t o = 0;

	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if (kept(c)) {
			out[o++] = (char)c;
		} else {
			out[o++] = '%';
			out[o++] = hex[c >> 4];
			out[o++] = hex[c & 15];
		}
	}
	return o;
}
