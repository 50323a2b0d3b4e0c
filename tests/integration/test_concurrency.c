/* tests/integration/test_concurrency.c — lost-update and staleness drills
 * against a 4-worker daemon, driven by several client processes at once.
 *
 * Clients are forked processes (it_fork_clients) that write what they saw
 * into MAP_SHARED memory; the test process checks the totals afterwards.
 * A client reports a failure with it_child_fail(), which names the exact
 * request and response. Fresh connections land on random workers;
 * keep-alive connections stay on one, so the drills mix both.
 */
#include <criterion/criterion.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tests/integration/harness.h"
#include "tests/integration/it_assert.h"

#define INCR_CLIENTS 8
#define INCRS_PER_CLIENT 250
#define CAS_CLIENTS 6
#define CAS_WINS_PER_CLIENT 100
/* A CAS client that needs more tries than this is starved, not unlucky. */
#define CAS_MAX_TRIES_PER_CLIENT 100000
#define PUT_CLIENTS 8
#define PUTS_PER_CLIENT 1000
#define RYW_ROUNDS 100
#define RYW_READS 20

TestSuite(it_concurrency, .init = it_setup, .fini = it_teardown);

static struct it_daemon d;
static char base[64];

static int cmp_i64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

	return (x > y) - (x < y);
}

/* Sorts vals and asserts they are exactly 1..n. */
static void assert_one_to_n(int64_t *vals, int n, const char *what)
{
	qsort(vals, (size_t)n, sizeof(vals[0]), cmp_i64);
	for (int i = 0; i < n; i++)
		cr_assert_eq(vals[i], (int64_t)i + 1, "%s: sorted value #%d is "
			     "%" PRId64 ", want %d (a lost or duplicated "
			     "update; neighbours %" PRId64 ", %" PRId64 ")",
			     what, i, vals[i], i + 1,
			     i > 0 ? vals[i - 1] : 0,
			     i + 1 < n ? vals[i + 1] : 0);
}

/* One request from a client child: keep-alive if c is non-NULL. */
static void client_req(struct it_conn *c, int port, const char *method,
		       const char *path, const char *hdrs, const void *body,
		       size_t len, struct it_resp *r)
{
	int rc = c ? it_conn_request(c, method, path, hdrs, body, len, r)
		   : it_request(port, method, path, hdrs, body, len, r);

	if (rc < 0)
		it_child_fail("%s %s (%s; headers: %s; body: %.*s): no "
			      "response: %s", method, path,
			      c ? "keep-alive" : "fresh connection",
			      hdrs ? hdrs : "-", body ? (int)len : 1,
			      body ? (const char *)body : "-",
			      strerror(-rc));
}

/* ---- incr from many processes ---------------------------------------- */

struct incr_ctx {
	int port;
	int64_t *vals; /* INCR_CLIENTS * INCRS_PER_CLIENT, shared */
};

static void incr_client(int idx, void *arg)
{
	struct incr_ctx *x = arg;
	struct it_conn conn, *c = NULL;
	int64_t prev = INT64_MIN;
	uint64_t prev_ver = 0;

	if (idx % 2 == 0) { /* half keep-alive, half fresh connections */
		int rc = it_conn_open(&conn, x->port);

		if (rc < 0)
			it_child_fail("connect: %s", strerror(-rc));
		c = &conn;
	}
	for (int i = 0; i < INCRS_PER_CLIENT; i++) {
		struct it_resp r;
		int64_t v;
		uint64_t ver;

		client_req(c, x->port, "POST", "/incr/c", NULL, NULL, 0, &r);
		if (r.status != 200 || it_body_int64(&r, &v) < 0)
			it_child_fail("POST /incr/c #%d: want 200 and a decimal"
				      " body, got %s", i, it_resp_brief(&r));
		if (it_resp_version(&r, &ver) < 0)
			it_child_fail("POST /incr/c #%d: no ETag: %s", i,
				      it_resp_brief(&r));
		/* My increments are ordered, so what I see must grow. */
		if (v <= prev || ver <= prev_ver)
			it_child_fail("POST /incr/c #%d: value %" PRId64
				      " version %" PRIu64 " after my previous "
				      "%" PRId64 " version %" PRIu64, i, v,
				      ver, prev, prev_ver);
		prev = v;
		prev_ver = ver;
		x->vals[idx * INCRS_PER_CLIENT + i] = v;
		it_resp_free(&r);
	}
	if (c)
		it_conn_close(c);
}

Test(it_concurrency, incr_from_8_processes_loses_no_update, .timeout = 60)
{
	const int total = INCR_CLIENTS * INCRS_PER_CLIENT;
	size_t size = sizeof(int64_t) * (size_t)total;
	struct incr_ctx x;
	char want[32];
	int failed;

	it_start(&d, base, sizeof(base), NULL);
	x.port = d.port;
	x.vals = it_shared_alloc(size);
	cr_assert_not_null(x.vals);
	failed = it_fork_clients(INCR_CLIENTS, incr_client, &x);
	if (failed)
		it_daemon_dump_log(&d);
	cr_assert_eq(failed, 0, "%d of %d incr clients failed (see stderr)",
		     failed, INCR_CLIENTS);
	snprintf(want, sizeof(want), "%d", total);
	it_expect_value(d.port, "/kv/c", want, strlen(want), 0);
	assert_one_to_n(x.vals, total, "values returned by POST /incr/c");
	it_shared_free(x.vals, size);
	it_stop_clean(&d);
	it_assert_no_leaks();
}

/* ---- read-modify-write with If-Match --------------------------------- */

struct cas_ctx {
	int port;
	int64_t *written; /* CAS_CLIENTS * CAS_WINS_PER_CLIENT, shared */
	int *retries;     /* per client, shared */
};

/* GET /kv/n: its value and ETag header (copied into etag). */
static int64_t cas_read(struct it_conn *c, int port, char *etag, size_t n)
{
	struct it_resp r;
	const char *e;
	int64_t v;

	client_req(c, port, "GET", "/kv/n", NULL, NULL, 0, &r);
	if (r.status != 200 || it_body_int64(&r, &v) < 0)
		it_child_fail("GET /kv/n: want 200 and a decimal body, got %s",
			      it_resp_brief(&r));
	e = it_resp_header(&r, "ETag");
	if (!e)
		it_child_fail("GET /kv/n: no ETag: %s", it_resp_brief(&r));
	snprintf(etag, n, "%s", e);
	it_resp_free(&r);
	return v;
}

static void cas_client(int idx, void *arg)
{
	struct cas_ctx *x = arg;
	struct it_conn c;
	int wins = 0, tries = 0, rc = it_conn_open(&c, x->port);

	if (rc < 0)
		it_child_fail("connect: %s", strerror(-rc));
	while (wins < CAS_WINS_PER_CLIENT) {
		char etag[64], hdr[96], body[32];
		struct it_resp r;
		int64_t v = cas_read(&c, x->port, etag, sizeof(etag));
		int n = snprintf(body, sizeof(body), "%" PRId64, v + 1);

		if (++tries > CAS_MAX_TRIES_PER_CLIENT)
			it_child_fail("%d tries for %d wins: starved", tries,
				      wins);
		snprintf(hdr, sizeof(hdr), "If-Match: %s\r\n", etag);
		client_req(&c, x->port, "PUT", "/kv/n", hdr, body, (size_t)n,
			   &r);
		if (r.status == 204) {
			x->written[idx * CAS_WINS_PER_CLIENT + wins++] = v + 1;
		} else if (r.status == 412) {
			x->retries[idx]++;
		} else {
			it_child_fail("PUT /kv/n %s%s: want 204 or 412, got %s",
				      hdr, body, it_resp_brief(&r));
		}
		it_resp_free(&r);
	}
	it_conn_close(&c);
}

Test(it_concurrency, if_match_loops_from_6_processes_lose_no_update,
     .timeout = 90)
{
	const int total = CAS_CLIENTS * CAS_WINS_PER_CLIENT;
	size_t wsize = sizeof(int64_t) * (size_t)total;
	size_t rsize = sizeof(int) * CAS_CLIENTS;
	struct cas_ctx x;
	char want[32];
	int failed, retries = 0;

	it_start(&d, base, sizeof(base), NULL);
	it_put(d.port, "/kv/n", "0", 1, 201);
	x.port = d.port;
	x.written = it_shared_alloc(wsize);
	x.retries = it_shared_alloc(rsize);
	cr_assert(x.written && x.retries);
	failed = it_fork_clients(CAS_CLIENTS, cas_client, &x);
	if (failed)
		it_daemon_dump_log(&d);
	cr_assert_eq(failed, 0, "%d of %d If-Match clients failed (see "
		     "stderr)", failed, CAS_CLIENTS);
	for (int i = 0; i < CAS_CLIENTS; i++)
		retries += x.retries[i];
	cr_log_info("%d successful If-Match writes needed %d retries on 412",
		    total, retries);
	snprintf(want, sizeof(want), "%d", total);
	it_expect_value(d.port, "/kv/n", want, strlen(want), 0);
	/* Every winning write moved the value by exactly one step. */
	assert_one_to_n(x.written, total, "values written with If-Match");
	it_shared_free(x.written, wsize);
	it_shared_free(x.retries, rsize);
	it_stop_clean(&d);
	it_assert_no_leaks();
}

/* ---- plain writes from many processes --------------------------------- */

struct put_ctx {
	int port;
};

/* Each client overwrites its own key; every PUT must be answered (group
 * commit must wake every waiter) and versions must grow. */
static void put_client(int idx, void *arg)
{
	struct put_ctx *x = arg;
	struct it_conn c;
	uint64_t prev_ver = 0;
	int rc = it_conn_open(&c, x->port);

	if (rc < 0)
		it_child_fail("connect: %s", strerror(-rc));
	for (int i = 0; i < PUTS_PER_CLIENT; i++) {
		char path[32], val[32];
		int n = snprintf(val, sizeof(val), "%d-%d", idx, i);
		struct it_resp r;
		uint64_t ver;

		snprintf(path, sizeof(path), "/kv/p/%d", idx);
		client_req(&c, x->port, "PUT", path, NULL, val, (size_t)n, &r);
		if ((r.status != (i ? 204 : 201)) ||
		    it_resp_version(&r, &ver) < 0 || ver <= prev_ver)
			it_child_fail("PUT %s #%d: want %d with an ETag above %"
				      PRIu64 ", got %s", path, i,
				      i ? 204 : 201, prev_ver,
				      it_resp_brief(&r));
		prev_ver = ver;
		it_resp_free(&r);
	}
	it_conn_close(&c);
}

Test(it_concurrency, puts_from_8_processes_are_all_answered, .timeout = 60)
{
	struct put_ctx x;
	int failed;

	it_start(&d, base, sizeof(base), NULL);
	x.port = d.port;
	failed = it_fork_clients(PUT_CLIENTS, put_client, &x);
	if (failed)
		it_daemon_dump_log(&d);
	cr_assert_eq(failed, 0, "%d of %d PUT clients failed (see stderr)",
		     failed, PUT_CLIENTS);
	for (int i = 0; i < PUT_CLIENTS; i++) {
		char path[32], val[32];
		int n = snprintf(val, sizeof(val), "%d-%d", i,
				 PUTS_PER_CLIENT - 1);

		snprintf(path, sizeof(path), "/kv/p/%d", i);
		it_expect_value(d.port, path, val, (size_t)n, 0);
	}
	it_stop_clean(&d);
	it_assert_no_leaks();
}

/* ---- read your writes ------------------------------------------------- */

Test(it_concurrency, every_worker_reads_the_write_just_acknowledged,
     .timeout = 60)
{
	it_start(&d, base, sizeof(base), NULL);
	for (int i = 0; i < RYW_ROUNDS; i++) {
		char val[64];
		int n = snprintf(val, sizeof(val), "round-%d-of-%d", i,
				 (int)getpid());
		uint64_t v = it_put(d.port, "/kv/ryw", val, (size_t)n,
				    i == 0 ? 201 : 204);

		/* Fresh connections spread over the workers: none may serve
		 * an older value, or none at all. */
		for (int j = 0; j < RYW_READS; j++)
			it_expect_value(d.port, "/kv/ryw", val, (size_t)n, v);
	}
	it_stop_clean(&d);
	it_assert_no_leaks();
}
