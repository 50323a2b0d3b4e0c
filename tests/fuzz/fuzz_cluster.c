/* tests/fuzz/fuzz_cluster.c — libFuzzer harness of what a group member
 * parses from others: etcd's and its peers' JSON (server/json.h), the
 * X-Caskd-History header, base64, and its own cluster.state
 * (server/cluster_state.h).
 *
 * Invariants: no read outside the input; an accepted state file formats
 * back to text that parses to the same state; an accepted history is in
 * ascending terms; JSON lookups return 0, -ENOENT or -EINVAL and a found
 * value lies inside the input.
 */
#include "server/b64.h"
#include "server/cluster_state.h"
#include "server/json.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void fz_json(const char *d, size_t n)
{
	static const char *paths[] = { "", "ID", "header.revision", "kvs.0.value",
				       "kvs.1.key", "result.TTL", "a.b.c.d" };
	struct srv_json_val v;
	char s[64];
	uint64_t u;

	for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
		int rc = srv_json_get(d, n, paths[i], &v);
		if (rc != 0 && rc != -ENOENT && rc != -EINVAL)
			abort();
		if (rc == 0 && (v.p < d || v.p + v.len > d + n))
			abort();
		(void)srv_json_str(d, n, paths[i], s, sizeof(s));
		(void)srv_json_u64(d, n, paths[i], &u);
		(void)srv_json_true(d, n, paths[i]);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *s = malloc(size + 1), why[256], out[8192];
	unsigned char *b = malloc(size + 4);
	struct srv_cl_state st, back;
	struct srv_cl_history h;

	if (!s || !b)
		abort();
	memcpy(s, data, size);
	s[size] = 0;
	fz_json(s, size);
	if (srv_b64_decode(s, size, b) > (ssize_t)size)
		abort();
	if (srv_cl_history_parse(s, &h) == 0)
		for (uint32_t i = 1; i < h.n; i++)
			if (h.t[i].term <= h.t[i - 1].term)
				abort();
	if (srv_cl_state_parse(s, size, &st, why, sizeof(why)) == 0) {
		long n = srv_cl_state_format(&st, out, sizeof(out));
		if (n < 0 || srv_cl_state_parse(out, (size_t)n, &back, why, sizeof(why)) ||
		    memcmp(&st, &back, sizeof(st)))
			abort();
	} else if (!memchr(why, 0, sizeof(why))) {
		abort();
	}
	free(s);
	free(b);
	return 0;
}
