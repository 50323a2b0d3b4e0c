/* server/api_keys.c — GET /keys?prefix=P&start_after=K&limit=N.
 *
 * A listing scans the table a slice at a time, one slice per loop turn
 * (a timer of 0), so a table of millions of keys neither holds the index
 * mutex (the engine reads it without) nor keeps the worker's other
 * connections waiting for long. The page is then answered, in group and
 * always mode once every record it reflects is durable.
 */
#include "engine/record.h"
#include "engine/store.h"
#include "server/api_int.h"
#include "server/http.h"
#include "server/pct.h"

#include <errno.h>
#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LIMIT_DEFAULT 1000
#define LIMIT_MAX 100000
#define LIMIT_DIGITS_MAX 6
/* Slots read per loop turn: about a millisecond of work. */
#define SLOTS_PER_TURN 65536

struct list_job {
	struct srv_api *api;
	struct srv_http_req *req;
	struct eng_list *list;
	struct event *step;
	char *body;
	size_t len;
	int more;
};

static void list_free(struct list_job *j)
{
	if (j->step)
		event_free(j->step);
	eng_list_end(j->api->db, j->list);
	free(j->body);
	free(j);
}

static void answer(int rc, void *arg)
{
	struct list_job *j = arg;

	if (rc) {
		srv_api_error(j->api, j->req, rc);
	} else {
		if (j->more)
			srv_http_add_header(j->req, "X-Truncated", "true");
		srv_http_respond(j->req, 200, "text/plain; charset=utf-8", j->body, j->len);
	}
	list_free(j);
}

/* The page: one percent-encoded key per line. */
static int render(struct list_job *j, uint64_t *end)
{
	const char *const *keys;
	const uint16_t *lens;
	size_t n = eng_list_keys(j->list, &keys, &lens, &j->more, end), size = 0, o = 0;

	for (size_t i = 0; i < n; i++)
		size += srv_pct_encoded_len(keys[i], lens[i]) + 1;
	if (!(j->body = malloc(size ? size : 1)))
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		o += srv_pct_encode(keys[i], lens[i], j->body + o);
		j->body[o++] = '\n';
	}
	j->len = o;
	return 0;
}

static void on_step(evutil_socket_t fd, short what, void *arg)
{
	struct list_job *j = arg;
	struct timeval now = { 0, 0 };
	uint64_t end;
	int rc;

	(void)fd;
	(void)what;
	rc = eng_list_step(j->api->db, j->list, SLOTS_PER_TURN);
	if (rc == 0) {
		if (evtimer_add(j->step, &now) < 0)
			answer(-ENOMEM, j);
		return;
	}
	if (rc > 0 && (rc = render(j, &end)) == 0) {
		rc = srv_api_after_durable(j->api, end, answer, j);
		if (rc > 0)
			return;
	}
	answer(rc < 0 ? rc : 0, j);
}

static int parse_limit(const char *q, size_t *limit)
{
	char buf[LIMIT_DIGITS_MAX + 2];
	long n = srv_api_query_param(q, "limit", buf, sizeof(buf));
	size_t v = 0;

	*limit = LIMIT_DEFAULT;
	if (n == -ENOENT)
		return 0;
	if (n <= 0 || n > LIMIT_DIGITS_MAX || (buf[0] == '0'))
		return -EINVAL;
	for (long i = 0; i < n; i++) {
		if (buf[i] < '0' || buf[i] > '9')
			return -EINVAL;
		v = v * 10 + (size_t)(buf[i] - '0');
	}
	if (v < 1 || v > LIMIT_MAX)
		return -EINVAL;
	*limit = v;
	return 0;
}

void srv_api_keys(struct srv_api *api, struct srv_http_req *req)
{
	const char *q = srv_http_req_query(req);
	char prefix[ENG_KEY_MAX + 1], after[ENG_KEY_MAX + 1];
	long plen, alen;
	size_t limit;
	struct list_job *j;
	struct timeval now = { 0, 0 };
	static const char *const params[] = SRV_QUERY_KEYS;
	int rc;

	if (srv_api_query_ok(req, params) < 0)
		return;
	plen = srv_api_query_param(q, "prefix", prefix, sizeof(prefix));
	alen = srv_api_query_param(q, "start_after", after, sizeof(after));
	if (plen == -EINVAL || alen == -EINVAL) {
		srv_http_respond_error(req, 400, "bad_query",
				       "prefix and start_after are percent-encoded keys of at most "
				       "1024 bytes, without NUL");
		return;
	}
	if (parse_limit(q, &limit) < 0) {
		srv_http_respond_error(req, 400, "bad_query",
				       "limit is a whole number from 1 to 100000");
		return;
	}
	if (!(j = calloc(1, sizeof(*j)))) {
		srv_api_error(api, req, -ENOMEM);
		return;
	}
	j->api = api;
	j->req = req;
	rc = eng_list_begin(api->db, prefix, plen > 0 ? (size_t)plen : 0, after,
			    alen > 0 ? (size_t)alen : 0, limit, &j->list);
	if (rc || !(j->step = evtimer_new(api->base, on_step, j)) ||
	    evtimer_add(j->step, &now) < 0) {
		answer(rc ? rc : -ENOMEM, j);
		return;
	}
}
