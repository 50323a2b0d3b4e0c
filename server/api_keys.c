/* server/api_keys.c — GET /keys?prefix=P&start_after=K&limit=N.
 *
 * A listing scans the table a slice at a time, one slice per loop turn
 * (a timer of 0), so a table of millions of keys neither holds the index
 * mutex (the engine reads it without) nor keeps the worker's other
 * connections waiting for long. The page is then answered, in group and
 * always mode once every record it reflects is durable, and streamed: a
 * slice of keys is encoded each time the client has taken the last
 * (server/http.h, srv_http_stream_*), so a page of 100000 keys of 1 KB
 * (up to 300 MB encoded) costs the worker no more than a slice of output
 * and the engine's page (26 bytes a key, pointing into the mapping of
 * database.bin), however slowly it is read; a client that stops reading
 * is disconnected after --send-timeout. Taking the page (the engine sorts
 * it: 15-90 ms for 30000 keys of 1 KB, mostly cache misses in the
 * mapping) happens for one listing per loop turn, so ten that finish
 * their scans together do not hold the loop for all ten sorts.
 */
#include "server/api_keys.h"

#include "engine/record.h"
#include "engine/store.h"
#include "server/api_base.h"
#include "server/api_error.h"
#include "server/api_query.h"
#include "server/api_wait.h"
#include "server/http.h"
#include "server/metrics.h"
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
/* Encoded keys per piece of the stream: a key takes at most 3 x 1024 + 1
 * bytes, so one always fits. */
#define SLICE_BYTES SRV_HTTP_STREAM_LOW_BYTES

struct listing {
	struct srv_api *api;
	struct srv_http_req *req;
	struct eng_list *list;
	struct event *step;
	const char *const *keys; /* the page, once scanned */
	const uint16_t *lens;
	size_t n, next;          /* keys in it; the first not sent */
	int more;
	struct listing *qnext;  /* in the queue to take its page */
};

/* Listings whose scan is done, in order, waiting to take their page. */
struct srv_list_queue {
	struct listing *head, *tail;
	struct event *ev;        /* a 0 timer: one page per loop turn */
};

static void list_free(struct listing *j)
{
	if (j->step)
		event_free(j->step);
	eng_list_end(j->api->db, j->list);
	free(j);
}

/* The next slice of the page, as the client takes the last. */
static void send_more(struct srv_http_req *req, void *arg)
{
	struct listing *j = arg;
	char buf[SLICE_BYTES];
	size_t o = 0;

	if (!srv_http_req_conn_alive(req)) {
		srv_http_stream_end(req, 0);
		list_free(j);
		return;
	}
	for (; j->next < j->n; j->next++) {
		size_t len = srv_pct_encoded_len(j->keys[j->next], j->lens[j->next]) + 1;

		if (o + len > sizeof(buf))
			break;
		o += srv_pct_encode(j->keys[j->next], j->lens[j->next], buf + o);
		buf[o++] = '\n';
	}
	if (srv_http_stream_write(req, buf, o) < 0 || j->next == j->n) {
		srv_http_stream_end(req, j->next == j->n && srv_http_req_conn_alive(req));
		list_free(j);
	}
}

static void answer(int rc, void *arg)
{
	struct listing *j = arg;

	if (rc) {
		srv_api_error(j->api, j->req, rc);
		list_free(j);
		return;
	}
	if (j->more)
		srv_http_add_header(j->req, "X-Truncated", "true");
	rc = srv_http_stream_begin(j->req, 200, "text/plain; charset=utf-8", send_more, j);
	if (rc < 0)
		srv_api_error(j->api, j->req, rc);
	if (rc != 0) /* refused, or a HEAD: answered */
		list_free(j);
}

/* The page: one percent-encoded key per line, taken from the engine's
 * result (pointers into the mapping) a slice at a time. */
static int take_page(struct listing *j, uint64_t *end)
{
	j->n = eng_list_keys(j->list, &j->keys, &j->lens, &j->more, end);
	if (!j->keys)
		return -ENOMEM;
	return 0;
}

/* The scan is done: the page, once durable, is answered. */
static void page_ready(struct listing *j)
{
	uint64_t end;
	int rc = take_page(j, &end);

	if (rc == 0) {
		rc = srv_api_after_durable(j->api, end, answer, j);
		if (rc > 0)
			return;
	}
	answer(rc < 0 ? rc : 0, j);
}

static void on_queue(evutil_socket_t fd, short what, void *arg)
{
	struct srv_list_queue *q = arg;
	struct timeval now = { 0, 0 };
	struct listing *j = q->head;

	(void)fd;
	(void)what;
	if (!j)
		return;
	q->head = j->qnext;
	if (!q->head)
		q->tail = NULL;
	else if (evtimer_add(q->ev, &now) < 0)
		q->head = q->tail = NULL; /* cannot happen: ev was made */
	page_ready(j);
}

/* Queues j to take its page in a later loop turn: 0 or -ENOMEM. */
static int page_queue(struct listing *j)
{
	struct srv_list_queue *q = j->api->lists;
	struct timeval now = { 0, 0 };

	if (!q) {
		if (!(q = calloc(1, sizeof(*q))))
			return -ENOMEM;
		if (!(q->ev = evtimer_new(j->api->base, on_queue, q))) {
			free(q);
			return -ENOMEM;
		}
		j->api->lists = q;
	}
	if (!q->head && evtimer_add(q->ev, &now) < 0)
		return -ENOMEM;
	j->qnext = NULL;
	if (q->tail)
		q->tail->qnext = j;
	else
		q->head = j;
	q->tail = j;
	return 0;
}

/* The metrics of where this worker's ordered views came from. */
static void note_view(struct srv_api *api)
{
	struct eng_list_stats st;

	eng_list_stats(&st);
	srv_metrics_key_views(api->stats, st.loaded, st.built);
}

static void on_step(evutil_socket_t fd, short what, void *arg)
{
	struct listing *j = arg;
	struct timeval now = { 0, 0 };
	int rc;

	(void)fd;
	(void)what;
	rc = eng_list_step(j->api->db, j->list, SLOTS_PER_TURN);
	if (rc > 0)
		note_view(j->api);
	if (rc == 0) {
		if (evtimer_add(j->step, &now) < 0)
			answer(-ENOMEM, j);
		return;
	}
	if (rc > 0 && (rc = page_queue(j)) == 0)
		return;
	answer(rc, j);
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
	struct listing *j;
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
