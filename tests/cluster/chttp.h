/* tests/cluster/chttp.h — the cluster drills' HTTP/1.1 client.
 *
 * One request per connection (Connection: close), blocking sockets with
 * one deadline for the whole exchange, to any IPv4 address: the workload
 * talks to HAProxy's frontend from inside the client's network namespace,
 * and the dump talks to each member directly. A fresh connection per
 * request keeps the outcome of a failed request clear: a connect that
 * fails means the request was never sent (definitely not applied), while
 * a failure after the request went out is indeterminate.
 *
 * Thread-safe: no state outside the caller's structures.
 */
#ifndef CASKD_TESTS_CLUSTER_CHTTP_H
#define CASKD_TESTS_CLUSTER_CHTTP_H

#include <stddef.h>
#include <stdint.h>

/* How a request ended, apart from the HTTP status. */
enum chttp_fate {
	CHTTP_DONE = 0,     /* a whole response was read */
	CHTTP_NOT_SENT,     /* connect failed: the server never saw it */
	CHTTP_LOST,         /* sent (maybe), then an error or the deadline */
};

struct chttp_resp {
	enum chttp_fate fate;
	int status;
	int has_etag;
	uint64_t etag;        /* the version in ETag: "<v>" */
	char location[256];
	char role[16];        /* X-Caskd-Role, or "" */
	char error_code[64];  /* "error" of a JSON error body, or "" */
	char *body;           /* malloc'd, NUL-terminated */
	size_t body_len;
};

/* "http://A.B.C.D:PORT" -> host and port. 0 or -EINVAL. */
int chttp_parse_url(const char *url, char *host, size_t hostn, int *port);

/* One request; extra_headers are "Name: v\r\n..." or NULL. Returns 0 when
 * r->fate says what happened (check it), -errno on a local error. */
int chttp_request(const char *host, int port, const char *method,
		  const char *path, const char *extra_headers,
		  const void *body, size_t len, int timeout_ms,
		  struct chttp_resp *r);
void chttp_resp_free(struct chttp_resp *r);

/* CLOCK_MONOTONIC in ns: one clock for every process of the machine, so
 * the workload's history and the drill's fault log line up. */
int64_t chttp_now_ns(void);

#endif
