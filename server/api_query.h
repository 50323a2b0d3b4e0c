/* server/api_query.h — the query strings of the API's routes.
 *
 * Owns: reading a parameter of a query string (percent-decoded) and the
 * check that a route is sent only the parameters it takes, each once: a
 * typo (prefx=) or a second value (prefix=a&prefix=b) must not pass for
 * what the user meant. Pure but for srv_api_query_ok(), which answers
 * the 400. Runs on a worker's event loop thread; unit-tested in
 * tests/unit/test_api_query.c.
 */
#ifndef CASKD_SERVER_API_QUERY_H
#define CASKD_SERVER_API_QUERY_H

#include <stddef.h>

struct srv_http_req;

/* The query parameters a route takes, NULL-terminated (at most 32); a
 * route that takes none passes { NULL }. */
#define SRV_QUERY_KEYS { "prefix", "start_after", "limit", NULL }
#define SRV_QUERY_INCR { "by", NULL }
#define SRV_QUERY_WATCH { "prefix", "since", "values", NULL }
#define SRV_QUERY_NONE { NULL }
/* Bytes of a bad parameter's name an answer quotes. */
#define SRV_QUERY_NAME_SHOWN 64

enum srv_query_fault { SRV_QUERY_OK = 0, SRV_QUERY_UNKNOWN, SRV_QUERY_REPEATED };

/* Value of query parameter name of q, decoded into out (room for max,
 * NUL-terminated): its length, -ENOENT if absent, -EINVAL if bad. */
long srv_api_query_param(const char *q, const char *name, char *out, size_t max);
/* SRV_QUERY_OK if every parameter of q (NULL: none) is one of names and
 * none comes twice; else the fault, with the parameter's name, as sent,
 * in bad (cut to n). */
int srv_api_query_check(const char *q, const char *const *names, char *bad, size_t n);
/* The same for req's query: 0, or -EINVAL after answering 400 bad_query
 * naming the parameter and what the path takes. */
int srv_api_query_ok(struct srv_http_req *req, const char *const *names);

#endif
