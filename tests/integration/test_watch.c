/* tests/integration/test_watch.c — GET /watch against the real daemon
 * (../shared/HTTP-API.md, "Watch").
 *
 * A watcher reads the ndjson stream over a raw socket (chunked decoding
 * here, a line at a time) while client processes write through other
 * connections, and so usually other workers: every acknowledged change
 * under the prefix must arrive once, in version order, a batch's lines
 * together; a watcher that reconnects with since= its last version
 * misses nothing and sees nothing twice; history below a compaction's
 * floor is 410; a reload ends streams with a progress line; kill -9 of
 * the workers cuts them, and a reconnect resumes.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tests/integration/harness.h"
#include "tests/integration/it_assert.h"

#define WORKERS 3
#define WRITERS 3
#define PER_WRITER 60
#define MAX_EVENTS 4096
#define LINE_MAX_BYTES 2048
#define WAIT_MS 60000

static struct it_daemon d;
static char base[256];

static void setup(void) { it_setup(); }
static void teardown(void) { it_teardown(); }
TestSuite(it_watch, .init = setup, .fini = teardown, .timeout = 120);

/* --- a streaming client ------------------------------------------------------ */

struct wc {
	int fd;
	int status;
	int ended;        /* the last chunk came */
	int eof;
	long chunk_left;  /* >0 data bytes, 0 a size line next, -1 a CRLF next */
	char raw[1 << 16];
	size_t rlen;
	char *body;
	size_t blen, bcap;
};

static int wc_read(struct wc *w, int timeout_ms)
{
	struct pollfd p = { .fd = w->fd, .events = POLLIN };
	ssize_t n;

	if (w->rlen == sizeof(w->raw))
		return 0;
	if (poll(&p, 1, timeout_ms) <= 0)
		return 0;
	n = read(w->fd, w->raw + w->rlen, sizeof(w->raw) - w->rlen);
	if (n <= 0) {
		w->eof = 1;
		return -1;
	}
	w->rlen += (size_t)n;
	return 1;
}

static void consume(struct wc *w, size_t n)
{
	memmove(w->raw, w->raw + n, w->rlen - n);
	w->rlen -= n;
}

/* Moves what can be decoded from raw into body. */
static void decode(struct wc *w)
{
	for (;;) {
		if (w->chunk_left > 0) {
			size_t n = w->rlen < (size_t)w->chunk_left ? w->rlen : (size_t)w->chunk_left;
			if (!n)
				return;
			if (w->blen + n > w->bcap) {
				w->bcap = (w->blen + n) * 2;
				w->body = realloc(w->body, w->bcap);
				cr_assert_not_null(w->body);
			}
			memcpy(w->body + w->blen, w->raw, n);
			w->blen += n;
			consume(w, n);
			w->chunk_left -= (long)n;
			if (!w->chunk_left)
				w->chunk_left = -1;
		} else if (w->chunk_left == -1) {
			if (w->rlen < 2)
				return;
			cr_assert(!memcmp(w->raw, "\r\n", 2), "chunk data not followed by CRLF");
			consume(w, 2);
			w->chunk_left = 0;
		} else {
			char *eol = memmem(w->raw, w->rlen, "\r\n", 2);
			long size;
			if (!eol || w->ended)
				return;
			size = strtol(w->raw, NULL, 16);
			consume(w, (size_t)(eol - w->raw) + 2);
			if (size == 0) {
				w->ended = 1;
				return;
			}
			w->chunk_left = size;
		}
	}
}

/* Opens GET /watch?query and reads the head: the status (200 expected
 * for a stream). */
static void wc_open(struct wc *w, int port, const char *query)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port),
				 .sin_addr.s_addr = htonl(0x7f000001) };
	char req[512], *end;
	int64_t deadline = it_now_ms() + WAIT_MS;
	int n;

	memset(w, 0, sizeof(*w));
	w->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	cr_assert_geq(w->fd, 0);
	cr_assert_eq(connect(w->fd, (struct sockaddr *)&a, sizeof(a)), 0, "connect: %s",
		     strerror(errno));
	n = snprintf(req, sizeof(req), "GET /watch%s%s HTTP/1.1\r\nHost: t\r\n\r\n",
		     query[0] ? "?" : "", query);
	cr_assert_eq(write(w->fd, req, (size_t)n), n);
	while (!(end = memmem(w->raw, w->rlen, "\r\n\r\n", 4))) {
		cr_assert_lt(it_now_ms(), deadline, "no response head to /watch?%s", query);
		cr_assert_geq(wc_read(w, 100), 0, "closed before the head");
	}
	w->status = atoi(w->raw + 9);
	cr_assert(memmem(w->raw, (size_t)(end - w->raw), "chunked", 7),
		  "a stream is chunked: %.*s", (int)(end - w->raw), w->raw);
	consume(w, (size_t)(end - w->raw) + 4);
}

/* The next line of the body: 1, 0 on timeout, -1 when the stream ended
 * (cleanly: *clean = 1) or the connection closed. */
static int wc_line(struct wc *w, char *out, size_t n, int timeout_ms, int *clean)
{
	int64_t deadline = it_now_ms() + timeout_ms;

	for (;;) {
		char *nl;

		decode(w);
		if ((nl = memchr(w->body, '\n', w->blen))) {
			size_t len = (size_t)(nl - w->body);
			cr_assert_lt(len, n, "line too long");
			memcpy(out, w->body, len);
			out[len] = '\0';
			memmove(w->body, nl + 1, w->blen - len - 1);
			w->blen -= len + 1;
			return 1;
		}
		if (w->ended || w->eof) {
			if (clean)
				*clean = w->ended;
			return -1;
		}
		if (it_now_ms() >= deadline)
			return 0;
		(void)wc_read(w, 50);
	}
}

static void wc_close(struct wc *w)
{
	if (w->fd >= 0)
		close(w->fd);
	w->fd = -1;
	free(w->body);
	w->body = NULL;
}

/* --- lines ------------------------------------------------------------------ */

struct ev {
	uint64_t version;
	int del;
	char key[64];
	uint64_t progress;  /* a progress line: its version, else 0 */
	int part, parts;    /* a batch's line: which of how many (under the prefix) */
	char error[32];
};

static void parse(const char *line, struct ev *e)
{
	const char *p;

	memset(e, 0, sizeof(*e));
	if ((p = strstr(line, "\"progress\":"))) {
		e->progress = strtoull(p + 11, NULL, 10);
		cr_assert_gt(e->progress, 0, "%s", line);
		return;
	}
	if ((p = strstr(line, "\"error\":\""))) {
		sscanf(p + 9, "%31[^\"]", e->error);
		if ((p = strstr(line, "\"version\":")))
			e->version = strtoull(p + 10, NULL, 10);
		return;
	}
	cr_assert((p = strstr(line, "{\"version\":")), "not a change: %s", line);
	e->version = strtoull(p + 11, NULL, 10);
	cr_assert((p = strstr(line, "\"op\":\"")), "%s", line);
	e->del = !strncmp(p + 6, "del", 3);
	cr_assert((p = strstr(line, "\"key\":\"")), "%s", line);
	sscanf(p + 7, "%63[^\"]", e->key);
	if ((p = strstr(line, "\"part\":"))) {
		e->part = atoi(p + 7);
		cr_assert((p = strstr(line, "\"parts\":")), "%s", line);
		e->parts = atoi(p + 8);
		cr_assert_lt(e->part, e->parts, "%s", line);
	}
}

/* The next line that is a change, within 5 s. */
static void next_change(struct wc *w, struct ev *e)
{
	char line[LINE_MAX_BYTES];
	int clean;

	do
		cr_assert_eq(wc_line(w, line, sizeof(line), 5000, &clean), 1, "no change came");
	while (parse(line, e), e->progress);
}

/* --- writers ---------------------------------------------------------------- */

struct acks {
	uint64_t version[WRITERS][PER_WRITER + 1];
};

static int port_of_test;

static void writer(int idx, void *arg)
{
	struct acks *a = arg;
	char path[64], val[32];

	for (int i = 0; i < PER_WRITER; i++) {
		struct it_resp r;
		uint64_t v;

		snprintf(path, sizeof(path), "/kv/w%%2F%d%%2F%d", idx, i % 7);
		snprintf(val, sizeof(val), "v%d.%d", idx, i);
		if (it_request(port_of_test, "PUT", path, NULL, val, strlen(val), &r) ||
		    (r.status != 201 && r.status != 204) || it_resp_version(&r, &v))
			it_child_fail("PUT %s: %s", path, it_resp_brief(&r));
		it_resp_free(&r);
		a->version[idx][i] = v;
		/* changes outside the prefix, which the watcher must not see */
		snprintf(path, sizeof(path), "/kv/x%d", idx);
		if (it_request(port_of_test, "PUT", path, NULL, "x", 1, &r) ||
		    (r.status != 201 && r.status != 204))
			it_child_fail("PUT %s: %s", path, it_resp_brief(&r));
		it_resp_free(&r);
	}
	{
		/* a batch: its lines arrive together */
		char body[256];
		struct it_resp r;
		uint64_t v;
		int n = snprintf(body, sizeof(body), "put w%%2Fb%d%%2F1 a\nput w%%2Fb%d%%2F2 b\n"
				 "put x%%2Fb%d c\n", idx, idx, idx);
		if (it_request(port_of_test, "POST", "/batch", NULL, body, (size_t)n, &r) ||
		    r.status != 200 || it_resp_version(&r, &v))
			it_child_fail("POST /batch: %s", it_resp_brief(&r));
		it_resp_free(&r);
		a->version[idx][PER_WRITER] = v;
	}
}

static int acked(const struct acks *a, uint64_t v, int *batch)
{
	for (int w = 0; w < WRITERS; w++)
		for (int i = 0; i <= PER_WRITER; i++)
			if (a->version[w][i] == v) {
				*batch = i == PER_WRITER;
				return 1;
			}
	return 0;
}

/* Collects change lines until every acknowledged change has come (or the
 * wait runs out), checking order and the prefix on the way. */
static int collect(struct wc *w, const struct acks *a, uint64_t *seen, int max,
		   int n, uint64_t *last)
{
	char line[LINE_MAX_BYTES];
	int64_t deadline = it_now_ms() + WAIT_MS;
	int want = WRITERS * (PER_WRITER + 2), clean;

	while (n < want && it_now_ms() < deadline) {
		struct ev e;
		int rc = wc_line(w, line, sizeof(line), 200, &clean);
		if (rc < 0)
			break;
		if (!rc)
			continue;
		parse(line, &e);
		if (e.progress || e.error[0])
			continue;
		cr_assert(!strncmp(e.key, "w/", 2), "outside the prefix: %s", line);
		if (strstr(e.key, "w/b"))
			cr_assert_eq(e.parts, 2, "a batch's lines under the prefix: %s", line);
		cr_assert_geq(e.version, *last, "out of order: %s after %" PRIu64, line, *last);
		*last = e.version;
		cr_assert_lt(n, max);
		seen[n++] = e.version;
	}
	return n;
}

static void expect_all_once(const struct acks *a, const uint64_t *seen, int n)
{
	int batch, count;

	for (int w = 0; w < WRITERS; w++)
		for (int i = 0; i <= PER_WRITER; i++) {
			uint64_t v = a->version[w][i];
			count = 0;
			for (int j = 0; j < n; j++)
				count += seen[j] == v;
			/* a batch wrote two keys under the prefix */
			cr_assert_eq(count, i == PER_WRITER ? 2 : 1,
				     "version %" PRIu64 " (writer %d, write %d) came %d times", v,
				     w, i, count);
		}
	for (int j = 0; j < n; j++)
		cr_assert(acked(a, seen[j], &batch), "version %" PRIu64 " was never written "
			  "under the prefix", seen[j]);
}

Test(it_watch, every_change_once_in_order_from_every_worker)
{
	struct acks *a = it_shared_alloc(sizeof(*a));
	uint64_t seen[MAX_EVENTS], last = 0;
	struct wc w;
	int n;

	it_start(&d, base, sizeof(base), (const char *const[]){ "--workers", "3", NULL });
	port_of_test = d.port;
	wc_open(&w, d.port, "prefix=w%2F");
	cr_assert_eq(w.status, 200);
	cr_assert_eq(it_fork_clients(WRITERS, writer, a), 0);
	n = collect(&w, a, seen, MAX_EVENTS, 0, &last);
	expect_all_once(a, seen, n);
	wc_close(&w);
	it_stop_clean(&d);
	it_shared_free(a, sizeof(*a));
	it_assert_no_leaks();
}

/* Reconnecting with since= the last version seen, at random points while
 * the writers run: nothing missed, nothing twice. */
Test(it_watch, reconnecting_with_since_misses_nothing)
{
	struct acks *a = it_shared_alloc(sizeof(*a));
	uint64_t seen[MAX_EVENTS], last = 0, since;
	char q[64], line[LINE_MAX_BYTES];
	struct wc w;
	pid_t pid;
	int n = 0, want = WRITERS * (PER_WRITER + 2), clean, open_batch = 0;
	int64_t deadline;
	struct it_resp r;

	it_start(&d, base, sizeof(base), (const char *const[]){ "--workers", "3", NULL });
	port_of_test = d.port;
	/* since = the version before any write */
	IT_OK(it_request(d.port, "PUT", "/kv/start", NULL, "s", 1, &r));
	cr_assert(!it_resp_version(&r, &since));
	it_resp_free(&r);
	pid = fork();
	cr_assert_geq(pid, 0);
	if (pid == 0)
		_exit(it_fork_clients(WRITERS, writer, a) ? 1 : 0);
	srandom(4242);
	deadline = it_now_ms() + WAIT_MS;
	while (n < want && it_now_ms() < deadline) {
		int take = 1 + (int)(random() % 40), rc;
		snprintf(q, sizeof(q), "prefix=w%%2F&since=%" PRIu64, since);
		wc_open(&w, d.port, q);
		cr_assert_eq(w.status, 200);
		while (take > 0 && it_now_ms() < deadline &&
		       (rc = wc_line(&w, line, sizeof(line), 200, &clean)) >= 0) {
			struct ev e;
			if (!rc)
				continue;
			parse(line, &e);
			if (e.progress || e.error[0])
				continue;
			cr_assert_geq(e.version, last, "out of order: %s", line);
			last = e.version;
			seen[n++] = e.version;
			open_batch = e.parts && e.part + 1 < e.parts;
			take--;
			if (n >= want)
				break;
		}
		/* the next connection resumes after the last version whose
		 * lines all came: the lines of a batch cut off half way
		 * (part + 1 < parts) are dropped and taken again */
		since = last;
		if (open_batch) {
			while (n > 0 && seen[n - 1] == last)
				n--;
			since = last = last - 1;
			open_batch = 0;
		}
		wc_close(&w);
	}
	cr_assert_eq(waitpid(pid, NULL, 0), pid);
	expect_all_once(a, seen, n);
	it_stop_clean(&d);
	it_shared_free(a, sizeof(*a));
	it_assert_no_leaks();
}

Test(it_watch, history_below_the_compaction_floor_is_410)
{
	struct it_resp r;
	uint64_t first = 0, floor, v;
	char q[64], line[LINE_MAX_BYTES];
	struct wc w;
	struct ev e;
	int clean;

	it_start(&d, base, sizeof(base), NULL);
	for (int i = 0; i < 100; i++) {
		v = it_put(d.port, "/kv/c", "overwritten", 11, 0);
		if (!first)
			first = v;
	}
	/* before any compaction, all history is there */
	snprintf(q, sizeof(q), "since=%" PRIu64, first - 1);
	wc_open(&w, d.port, q);
	cr_assert_eq(wc_line(&w, line, sizeof(line), 5000, &clean), 1);
	parse(line, &e);
	cr_assert_eq(e.version, first, "%s", line);
	wc_close(&w);

	{
		char state[32];
		char *job = it_job_wait(d.port, it_compact_start(d.port, NULL), NULL, state,
					sizeof(state));
		cr_assert_str_eq(state, "done", "%s", job);
		free(job);
	}
	snprintf(q, sizeof(q), "/watch?since=%" PRIu64, first);
	IT_OK(it_request(d.port, "GET", q, NULL, NULL, 0, &r));
	cr_assert_eq(r.status, 410, "%s", it_resp_brief(&r));
	cr_assert(it_is_json_error(&r, "compacted"), "%s", it_resp_brief(&r));
	floor = it_json_u64(r.body, "floor");
	cr_assert_geq(floor, v, "the floor covers what the compaction cut: %s", r.body);
	it_resp_free(&r);
	/* from the floor on, every later change */
	snprintf(q, sizeof(q), "since=%" PRIu64, floor);
	wc_open(&w, d.port, q);
	v = it_put(d.port, "/kv/after", "a", 1, 201);
	cr_assert_eq(wc_line(&w, line, sizeof(line), 5000, &clean), 1);
	parse(line, &e);
	cr_assert_eq(e.version, v, "%s", line);
	cr_assert_str_eq(e.key, "after");
	wc_close(&w);
	it_stop_clean(&d);
	it_assert_no_leaks();
}

Test(it_watch, bad_parameters_are_400_before_the_stream)
{
	static const char *const bad[] = {
		"/watch?since=abc", "/watch?since=-1", "/watch?since=", "/watch?bogus=1",
		"/watch?prefix=a&prefix=b", "/watch?prefix=%ZZ", "/watch?values=2",
		"/watch?since=18446744073709551616",
	};

	it_start(&d, base, sizeof(base), NULL);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		it_expect_error(d.port, "GET", bad[i], NULL, NULL, 0, 400, "bad_query");
	it_expect_error_saying(d.port, "GET", "/watch?prefx=a", NULL, NULL, 0, 400, "bad_query",
			       "unknown query parameter 'prefx'");
	it_expect_error_saying(d.port, "GET", "/watch?since=1&since=2", NULL, NULL, 0, 400,
			       "bad_query", "'since'");
	it_expect_error(d.port, "PUT", "/watch", NULL, NULL, 0, 405, "method_not_allowed");
	it_stop_clean(&d);
	it_assert_no_leaks();
}

/* values=1 carries the value, base64; a delete has none. */
Test(it_watch, values_come_base64_and_deletes_without)
{
	char line[LINE_MAX_BYTES];
	struct wc w;
	struct it_resp r;
	int clean;

	it_start(&d, base, sizeof(base), NULL);
	wc_open(&w, d.port, "values=1");
	it_put(d.port, "/kv/k%2Fb", "hello", 5, 201);
	cr_assert_eq(wc_line(&w, line, sizeof(line), 5000, &clean), 1);
	cr_assert(strstr(line, "\"key\":\"k/b\""), "%s", line);
	cr_assert(strstr(line, "\"value\":\"aGVsbG8=\""), "%s", line);
	IT_OK(it_request(d.port, "DELETE", "/kv/k%2Fb", NULL, NULL, 0, &r));
	cr_assert_eq(r.status, 204);
	it_resp_free(&r);
	cr_assert_eq(wc_line(&w, line, sizeof(line), 5000, &clean), 1);
	cr_assert(strstr(line, "\"op\":\"del\""), "%s", line);
	cr_assert(!strstr(line, "\"value\""), "%s", line);
	wc_close(&w);
	it_stop_clean(&d);
	it_assert_no_leaks();
}

/* Idle streams get progress lines; a reload ends them cleanly with one,
 * and a reconnect from it misses nothing. */
Test(it_watch, idle_progress_and_a_reload_ends_streams_cleanly)
{
	char line[LINE_MAX_BYTES], q[64];
	struct wc w;
	struct ev e;
	uint64_t v, got = 0, last = 0;
	int clean = 0, rc;

	it_start(&d, base, sizeof(base), (const char *const[]){ "--workers", "2", NULL });
	v = it_put(d.port, "/kv/p", "1", 1, 201);
	wc_open(&w, d.port, "");
	/* idle: a progress line within 10 s, at the current version */
	cr_assert_eq(wc_line(&w, line, sizeof(line), 11000, &clean), 1, "no progress line");
	parse(line, &e);
	cr_assert_geq(e.progress, v, "%s", line);
	v = it_put(d.port, "/kv/p", "2", 1, 204);
	cr_assert_eq(kill(d.pid, SIGHUP), 0);
	while ((rc = wc_line(&w, line, sizeof(line), 15000, &clean)) == 1) {
		parse(line, &e);
		if (e.version)
			got = e.version;
		if (e.progress)
			last = e.progress;
	}
	cr_assert(clean, "the stream ended with its last chunk");
	cr_assert_eq(got, v, "the write before the reload came");
	cr_assert_geq(last, v, "a last progress line says where to resume");
	wc_close(&w);
	snprintf(q, sizeof(q), "since=%" PRIu64, last);
	wc_open(&w, d.port, q);
	v = it_put(d.port, "/kv/p", "3", 1, 204);
	next_change(&w, &e);
	cr_assert_eq(e.version, v);
	wc_close(&w);
	it_stop_clean(&d);
	it_assert_no_leaks();
}

/* kill -9 of the workers cuts the stream (never a clean end); the
 * master replaces them and a reconnect from the last version misses
 * nothing. */
Test(it_watch, kill9_of_the_workers_then_resume)
{
	char line[LINE_MAX_BYTES], q[64], cmd[64];
	struct wc w;
	struct ev e;
	uint64_t v1, v2;
	int clean = 1, rc;

	it_start(&d, base, sizeof(base), (const char *const[]){ "--workers", "2", NULL });
	wc_open(&w, d.port, "");
	v1 = it_put(d.port, "/kv/a", "1", 1, 201);
	cr_assert_eq(wc_line(&w, line, sizeof(line), 5000, &clean), 1);
	parse(line, &e);
	cr_assert_eq(e.version, v1);
	snprintf(cmd, sizeof(cmd), "pkill -KILL -P %d", (int)d.pid);
	cr_assert_eq(system(cmd), 0);
	while ((rc = wc_line(&w, line, sizeof(line), 10000, &clean)) == 1)
		;
	cr_assert_eq(rc, -1, "the stream was cut");
	cr_assert(!clean, "a killed worker cannot end its stream cleanly");
	wc_close(&w);
	IT_OK(it_daemon_wait_ready(&d, 10000));
	v2 = it_put(d.port, "/kv/b", "2", 1, 201);
	snprintf(q, sizeof(q), "since=%" PRIu64, v1);
	wc_open(&w, d.port, q);
	next_change(&w, &e);
	cr_assert_eq(e.version, v2);
	wc_close(&w);
	it_stop_clean(&d);
	it_assert_no_leaks();
}
