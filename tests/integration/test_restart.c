/* tests/integration/test_restart.c — what survives a restart: graceful
 * (SIGTERM), and kill -9 of the whole process group, idle or under write
 * load, in periodic and group fsync modes.
 *
 * The idle tests keep a model of every key (value is generated from the key
 * index and a generation, so only lengths and versions are stored), restart
 * on the same data dir and compare every key, the key count in /metrics,
 * and that the version sequence resumes above everything seen before.
 *
 * The under-load test forks writers that record in shared memory the last
 * acknowledged and the in-flight value of each key; after kill -9 and a
 * restart every key must hold one of the two.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tests/integration/harness.h"
#include "tests/integration/it_assert.h"

#define NKEYS 200
/* Longest generated value; values are 1..MAX_VAL bytes of any byte. */
#define MAX_VAL 300
/* A value that spans many pages. */
#define BIG_VAL (256 * 1024)
#define INCRS 10

#define LOAD_WRITERS 4
#define LOAD_KEYS 16 /* per writer */
/* How long the writers run before the whole group is SIGKILLed. */
#define LOAD_MS 1000

TestSuite(it_restart, .init = it_setup, .fini = it_teardown);

static struct it_daemon d;
static char base[64];

/* A periodic sync slower than the test: acknowledged writes sit in the page
 * cache only, which kill -9 must not lose. */
static const char *const periodic[] = { "--fsync", "periodic",
					"--fsync-interval-ms", "10000", NULL };

struct model {
	int gen[NKEYS];      /* 0: deleted or never written */
	uint64_t ver[NKEYS]; /* version of the last write */
	uint64_t big_ver;
	uint64_t incr_ver;
	uint64_t max_seen;   /* highest version any response carried */
	int live;
};

static struct model m;

static size_t gen_value(int key, int gen, unsigned char *buf)
{
	size_t len = 1 + (size_t)(key * 37 + gen * 11) % MAX_VAL;

	for (size_t j = 0; j < len; j++)
		buf[j] = (unsigned char)(key * 31 + (int)j * 7 + gen * 13);
	return len;
}

static void key_of(int i, char *path, size_t n)
{
	snprintf(path, n, "/kv/r/%03d", i);
}

static unsigned char *big_value(void)
{
	unsigned char *v = malloc(BIG_VAL);

	cr_assert_not_null(v);
	for (size_t i = 0; i < BIG_VAL; i++)
		v[i] = (unsigned char)(i % 251);
	return v;
}

static void seen(uint64_t v)
{
	if (v > m.max_seen)
		m.max_seen = v;
}

static void put_gen(int port, int i, int gen)
{
	unsigned char val[MAX_VAL];
	char path[32];
	size_t len = gen_value(i, gen, val);

	key_of(i, path, sizeof(path));
	m.ver[i] = it_put(port, path, val, len, m.gen[i] ? 204 : 201);
	if (!m.gen[i])
		m.live++;
	m.gen[i] = gen;
	seen(m.ver[i]);
}

/* 200 keys, a third overwritten, a fifth deleted, a big value, a counter. */
static void populate(int port)
{
	unsigned char *big = big_value();
	struct it_resp r;
	char path[32];

	memset(&m, 0, sizeof(m));
	for (int i = 0; i < NKEYS; i++)
		put_gen(port, i, 1);
	for (int i = 0; i < NKEYS; i += 3)
		put_gen(port, i, 2);
	for (int i = 0; i < NKEYS; i += 5) {
		key_of(i, path, sizeof(path));
		it_do(port, "DELETE", path, NULL, NULL, 0, &r, 204);
		seen(it_version(&r, path));
		it_resp_free(&r);
		m.gen[i] = 0;
		m.live--;
	}
	m.big_ver = it_put(port, "/kv/big", big, BIG_VAL, 201);
	seen(m.big_ver);
	for (int i = 0; i < INCRS; i++) {
		it_do(port, "POST", "/incr/counter", NULL, NULL, 0, &r, 200);
		m.incr_ver = it_version(&r, "incr");
		seen(m.incr_ver);
		it_resp_free(&r);
	}
	m.live += 2;
	free(big);
}

static void verify(int port)
{
	unsigned char val[MAX_VAL], *big = big_value();
	double keys = -1;
	char path[32], *text;

	for (int i = 0; i < NKEYS; i++) {
		key_of(i, path, sizeof(path));
		if (m.gen[i]) {
			size_t len = gen_value(i, m.gen[i], val);

			it_expect_value(port, path, val, len, m.ver[i]);
		} else {
			it_expect_error(port, "GET", path, NULL, NULL, 0, 404,
					"not_found");
		}
	}
	it_expect_value(port, "/kv/big", big, BIG_VAL, m.big_ver);
	it_expect_value(port, "/kv/counter", "10", 2, m.incr_ver);
	text = it_get_metrics(port);
	it_metric_value(text, "caskd_keys", 0, &keys);
	cr_assert_eq(keys, m.live, "after restart caskd_keys is %g, want %d",
		     keys, m.live);
	free(text);
	free(big);
}

static void assert_sequence_resumes(int port)
{
	uint64_t v = it_put(port, "/kv/after-restart", "new", 3, 201);

	cr_assert_gt(v, m.max_seen, "first write after restart got version %"
		     PRIu64 ", not above %" PRIu64 " seen before the restart",
		     v, m.max_seen);
}

Test(it_restart, sigterm_then_restart_keeps_every_last_write, .timeout = 90)
{
	char dir[256];

	it_start(&d, base, sizeof(base), NULL);
	populate(d.port);
	it_stop_clean(&d);
	snprintf(dir, sizeof(dir), "%s", d.dir);
	it_restart(&d, dir, NULL);
	verify(d.port);
	assert_sequence_resumes(d.port);
	it_stop_clean(&d);
	it_assert_no_leaks();
}

Test(it_restart, kill9_of_group_keeps_every_acknowledged_write_periodic,
     .timeout = 90)
{
	char dir[256];

	it_start(&d, base, sizeof(base), periodic);
	populate(d.port);
	IT_OK(it_daemon_kill9_all(&d));
	snprintf(dir, sizeof(dir), "%s", d.dir);
	it_restart(&d, dir, periodic);
	verify(d.port);
	assert_sequence_resumes(d.port);
	it_stop_clean(&d);
	it_assert_no_leaks();
}

/* ---- kill -9 under write load ---------------------------------------- */

struct load_slot {
	int64_t acked;    /* last counter the daemon acknowledged */
	int64_t inflight; /* counter of a write sent but not answered */
};

struct load_ctx {
	int port;
	pid_t pgid;
	volatile int *killed; /* shared: set just before the SIGKILL */
	struct load_slot *slots; /* LOAD_WRITERS * LOAD_KEYS, shared */
	uint64_t *max_ver;    /* per writer, shared */
	int load_ms;          /* how long the writers run */
};

static void load_writer(int idx, void *arg)
{
	struct load_ctx *x = arg;
	struct it_conn c;
	int rc = it_conn_open(&c, x->port);

	if (rc < 0)
		it_child_fail("connect: %s", strerror(-rc));
	for (int64_t n = 1;; n++) {
		int k = (int)(n % LOAD_KEYS);
		struct load_slot *s = &x->slots[idx * LOAD_KEYS + k];
		char path[48], val[48];
		int len = snprintf(val, sizeof(val), "%d-%d-%" PRId64, idx, k,
				   n);
		struct it_resp r;
		uint64_t ver;

		snprintf(path, sizeof(path), "/kv/load/%d/%d", idx, k);
		s->inflight = n;
		rc = it_conn_request(&c, "PUT", path, NULL, val, (size_t)len,
				     &r);
		if (rc < 0 && *x->killed)
			break;
		if (rc < 0)
			it_child_fail("PUT %s before the kill: %s", path,
				      strerror(-rc));
		if ((r.status != 201 && r.status != 204) ||
		    it_resp_version(&r, &ver) < 0) {
			if (*x->killed) /* e.g. 503 while dying */
				break;
			it_child_fail("PUT %s: %s", path, it_resp_brief(&r));
		}
		s->acked = n;
		s->inflight = 0;
		if (ver > x->max_ver[idx])
			x->max_ver[idx] = ver;
		it_resp_free(&r);
	}
	it_conn_close(&c);
}

/* The extra client: lets the writers run, then kills the whole group. */
static void killer(int idx, void *arg)
{
	struct load_ctx *x = arg;

	usleep((useconds_t)x->load_ms * 1000);
	*x->killed = 1;
	__sync_synchronize();
	if (killpg(x->pgid, SIGKILL) < 0)
		it_child_fail("killpg(%d): %s", (int)x->pgid, strerror(errno));
}

static void load_client_or_killer(int idx, void *arg)
{
	if (idx == LOAD_WRITERS)
		killer(idx, arg);
	else
		load_writer(idx, arg);
}

static void run_writers(struct load_ctx *x, const struct it_daemon *dm)
{
	int failed = it_fork_clients(LOAD_WRITERS + 1, load_client_or_killer,
				     x);

	if (failed)
		it_daemon_dump_log(dm);
	cr_assert_eq(failed, 0, "%d load clients failed (see stderr)",
		     failed);
}

/* Checks one key after the restart against what its writer saw. */
static void verify_slot(int port, int w, int k, const struct load_slot *s)
{
	char path[48], want_acked[48], want_inflight[48];
	struct it_resp r;
	int rc;

	snprintf(path, sizeof(path), "/kv/load/%d/%d", w, k);
	snprintf(want_acked, sizeof(want_acked), "%d-%d-%" PRId64, w, k,
		 s->acked);
	snprintf(want_inflight, sizeof(want_inflight), "%d-%d-%" PRId64, w, k,
		 s->inflight);
	rc = it_request(port, "GET", path, NULL, NULL, 0, &r);
	cr_assert_eq(rc, 0, "GET %s: %s", path, strerror(-rc));
	if (r.status == 404 && s->acked == 0) {
		it_resp_free(&r);
		return; /* never acknowledged: absence is fine */
	}
	cr_assert_eq(r.status, 200, "GET %s after kill -9: acknowledged "
		     "value \"%s\" lost: %s", path, want_acked,
		     it_resp_brief(&r));
	cr_assert(strcmp(r.body, want_acked) == 0 ||
		  (s->inflight && strcmp(r.body, want_inflight) == 0),
		  "GET %s after kill -9: want the acknowledged \"%s\"%s%s%s, "
		  "got %s", path, want_acked,
		  s->inflight ? " or the in-flight \"" : "",
		  s->inflight ? want_inflight : "", s->inflight ? "\"" : "",
		  it_resp_brief(&r));
	it_resp_free(&r);
}

static void kill9_under_load(const char *const *extra)
{
	size_t ssize = sizeof(struct load_slot) * LOAD_WRITERS * LOAD_KEYS;
	struct load_ctx x;
	uint64_t max_seen = 0, v;
	int64_t writes = 0;
	char dir[256];

	it_start(&d, base, sizeof(base), extra);
	x.port = d.port;
	x.pgid = d.pid;
	x.load_ms = LOAD_MS;
	x.killed = it_shared_alloc(sizeof(int));
	x.slots = it_shared_alloc(ssize);
	x.max_ver = it_shared_alloc(sizeof(uint64_t) * LOAD_WRITERS);
	cr_assert(x.killed && x.slots && x.max_ver);
	run_writers(&x, &d);
	IT_OK(it_daemon_kill9_all(&d));
	snprintf(dir, sizeof(dir), "%s", d.dir);
	it_restart(&d, dir, extra);
	for (int w = 0; w < LOAD_WRITERS; w++) {
		for (int k = 0; k < LOAD_KEYS; k++) {
			const struct load_slot *s = &x.slots[w * LOAD_KEYS + k];

			writes += s->acked;
			verify_slot(d.port, w, k, s);
		}
		if (x.max_ver[w] > max_seen)
			max_seen = x.max_ver[w];
	}
	cr_assert_gt(writes, 0, "no write was acknowledged in %d ms", LOAD_MS);
	cr_log_info("kill -9 after about %" PRId64 " acknowledged writes",
		    writes / LOAD_KEYS);
	v = it_put(d.port, "/kv/after-restart", "new", 3, 201);
	cr_assert_gt(v, max_seen, "first write after restart got version %"
		     PRIu64 ", not above %" PRIu64 " acknowledged before",
		     v, max_seen);
	it_shared_free((void *)x.killed, sizeof(int));
	it_shared_free(x.slots, ssize);
	it_shared_free(x.max_ver, sizeof(uint64_t) * LOAD_WRITERS);
	it_stop_clean(&d);
	it_assert_no_leaks();
}

Test(it_restart, kill9_under_write_load_keeps_acknowledged_writes_periodic,
     .timeout = 90)
{
	kill9_under_load(periodic);
}

Test(it_restart, kill9_under_write_load_keeps_acknowledged_writes_group,
     .timeout = 90)
{
	kill9_under_load(NULL);
}

/* An operator (or a supervisor) restarting at once after kill -9 of the
 * whole group: the old workers may still be exiting (one inside an
 * fdatasync), holding the directory's lock. The new caskd must wait for
 * them, not refuse, and serve every acknowledged write. */
#define AT_ONCE_ROUNDS 12
#define AT_ONCE_LOAD_MS 150

Test(it_restart, restart_at_once_after_kill9_of_group_under_load,
     .timeout = 120)
{
	size_t ssize = sizeof(struct load_slot) * LOAD_WRITERS * LOAD_KEYS;
	struct it_daemon old;
	struct load_ctx x;
	char dir[256];

	it_start(&d, base, sizeof(base), NULL);
	snprintf(dir, sizeof(dir), "%s", d.dir);
	x.killed = it_shared_alloc(sizeof(int));
	x.slots = it_shared_alloc(ssize);
	x.max_ver = it_shared_alloc(sizeof(uint64_t) * LOAD_WRITERS);
	cr_assert(x.killed && x.slots && x.max_ver);
	x.load_ms = AT_ONCE_LOAD_MS;
	for (int round = 0; round < AT_ONCE_ROUNDS; round++) {
		int rc;

		x.port = d.port;
		x.pgid = d.pid;
		*x.killed = 0;
		run_writers(&x, &d);
		/* the group got SIGKILL; start again before reaping it */
		old = d;
		rc = it_daemon_start(&d, dir, IT_WORKERS, NULL);
		cr_assert_eq(rc, 0, "round %d: restart right after kill -9 "
			     "failed (see the log above)", round);
		IT_OK(it_daemon_kill9_all(&old));
		for (int w = 0; w < LOAD_WRITERS; w++)
			for (int k = 0; k < LOAD_KEYS; k++)
				verify_slot(d.port, w, k,
					    &x.slots[w * LOAD_KEYS + k]);
	}
	it_shared_free((void *)x.killed, sizeof(int));
	it_shared_free(x.slots, ssize);
	it_shared_free(x.max_ver, sizeof(uint64_t) * LOAD_WRITERS);
	it_stop_clean(&d);
	it_assert_no_leaks();
}
