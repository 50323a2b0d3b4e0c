/* server/api_query.c — the query strings of the API's routes (see
 * api_query.h): parameters read one at a time, none of them parsed
 * twice by hand.
 */
#include "server/api_query.h"

#include "server/http.h"
#include "server/pct.h"

#include <assert.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

/* The parameter at *q ("name[=value]"), moving *q past it and its '&':
 * 1, or 0 at the end of q. Empty parameters ("a=1&&b=2") are skipped. */
static int next_param(const char **q, const char **name, size_t *nlen,
		      const char **val, size_t *vlen)
{
	while (*q && **q == '&')
		(*q)++;
	if (!*q || !**q)
		return 0;
	{
		const char *end = strchr(*q, '&');
		size_t len = end ? (size_t)(end - *q) : strlen(*q);
		const char *eq = memchr(*q, '=', len);

		*name = *q;
		*nlen = eq ? (size_t)(eq - *q) : len;
		*val = eq ? eq + 1 : *q + len;
		*vlen = eq ? len - *nlen - 1 : 0;
		*q = end ? end + 1 : NULL;
	}
	return 1;
}

long srv_api_query_param(const char *q, const char *name, char *out, size_t max)
{
	const char *n, *v;
	size_t nl, vl;

	while (next_param(&q, &n, &nl, &v, &vl)) {
		if (nl == strlen(name) && !strncmp(n, name, nl)) {
			long len = srv_pct_decode(v, vl, out, max - 1, 0);

			if (len < 0)
				return -EINVAL;
			out[len] = '\0';
			return len;
		}
	}
	return -ENOENT;
}

int srv_api_query_check(const char *q, const char *const *names, char *bad, size_t n)
{
	const char *pn, *v;
	size_t nl, vl;
	uint32_t seen = 0;

	while (next_param(&q, &pn, &nl, &v, &vl)) {
		int k = 0;

		while (names[k] && (strlen(names[k]) != nl || strncmp(names[k], pn, nl)))
			k++;
		assert(k < 32); /* seen has a bit per name */
		if (!names[k] || seen & 1u << k) {
			snprintf(bad, n, "%.*s", (int)nl, pn);
			return names[k] ? SRV_QUERY_REPEATED : SRV_QUERY_UNKNOWN;
		}
		seen |= 1u << k;
	}
	return SRV_QUERY_OK;
}

int srv_api_query_ok(struct srv_http_req *req, const char *const *names)
{
	char bad[SRV_QUERY_NAME_SHOWN + 1], takes[160], msg[320];
	size_t o = 0;
	int rc = srv_api_query_check(srv_http_req_query(req), names, bad, sizeof(bad));

	if (rc == SRV_QUERY_OK)
		return 0;
	for (int k = 0; names[k] && o < sizeof(takes); k++)
		o += (size_t)snprintf(takes + o, sizeof(takes) - o, "%s%s", k ? ", " : "",
				      names[k]);
	if (rc == SRV_QUERY_REPEATED)
		snprintf(msg, sizeof(msg), "query parameter '%s' is given more than once", bad);
	else if (names[0])
		snprintf(msg, sizeof(msg), "unknown query parameter '%s' (this path takes %s)",
			 bad, takes);
	else
		snprintf(msg, sizeof(msg), "unknown query parameter '%s' (this path takes "
			 "none)", bad);
	srv_http_respond_error(req, 400, "bad_query", msg);
	return -EINVAL;
}
