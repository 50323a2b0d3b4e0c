/* tests/integration/test_powercut.c — power cuts under load, whole daemon.
 *
 * kill -9 keeps the page cache; a power cut does not. The daemon runs
 * with CASKD_SIMDISK (engine/io_sim.h): every write records what it
 * replaced, every fdatasync what it covered. At a random moment under
 * concurrent writers and readers on several workers the whole process
 * group is SIGKILLed, then eng_io_sim_cut() drops or tears, page by page,
 * every write no fdatasync covered, as a power cut may. The daemon then
 * restarts on what is left, and (../shared/HTTP-API.md, durability):
 *   - group mode: every acknowledged write is there, and every value any
 *     reader got, or a later write of that key (a read never shows a
 *     write before it is durable);
 *   - both modes: no version ever names two values, across all cuts (the
 *     version lease), no value is torn, and the key count is exact.
 * Keys are never deleted here, so a key once seen must stay.
 *
 * CASKD_POWERCUTS=N sets the number of cuts of the group-mode drill (the
 * periodic one runs a sixth as many); the drill logs its seeds.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "engine/io_sim.h"
#include "tests/integration/harness.h"
#include "tests/integration/it_assert.h"

#define PC_WORKERS 2
#define WRITERS 3
#define READERS 2
#define NKEYS 24
#define VAL_LEN 64
#define DEFAULT_CUTS 200
#define MAX_OBS (1u << 22) /* pages are touched only as used */
#define OPS_MAX 20000      /* per client and cut: stops by itself */
#define LOAD_MIN_MS 20
#define LOAD_SPAN_MS 130

enum { OBS_ACK = 1, OBS_READ = 2, OBS_FINAL = 3 };

struct obs {
	uint64_t version;
	uint64_t val;
	uint32_t key;
	uint32_t kind;
};

struct board {
	uint32_t nobs;
	uint32_t cut;
	uint32_t overflow;
	struct obs obs[MAX_OBS];
};

static struct it_daemon d;
static char base[256];
static struct board *bd;

static void setup(void)
{
	it_setup();
	bd = it_shared_alloc(sizeof(*bd));
}

static void teardown(void)
{
	it_shared_free(bd, sizeof(*bd));
	it_teardown();
}

TestSuite(it_powercut, .init = setup, .fini = teardown, .timeout = 240);

static void record(uint32_t kind, uint32_t key, uint64_t version, uint64_t val)
{
	uint32_t i = __atomic_fetch_add(&bd->nobs, 1, __ATOMIC_RELAXED);

	if (i >= MAX_OBS) {
		__atomic_store_n(&bd->overflow, 1, __ATOMIC_RELAXED);
		return;
	}
	bd->obs[i] = (struct obs){ version, val, key, kind };
}

static int make_value(char *buf, uint64_t val)
{
	int n = snprintf(buf, VAL_LEN + 1, "pc:%016" PRIx64 ":", val);

	memset(buf + n, '.', (size_t)(VAL_LEN - n));
	buf[VAL_LEN] = '\0';
	return VAL_LEN;
}

/* 0 and *val if body is exactly a value make_value wrote. */
static int parse_value(const struct it_resp *r, uint64_t *val)
{
	char want[VAL_LEN + 1];

	if (r->body_len != VAL_LEN || sscanf(r->body, "pc:%16" SCNx64 ":", val) != 1)
		return -1;
	make_value(want, *val);
	return memcmp(want, r->body, VAL_LEN) ? -1 : 0;
}

static void client(int idx, void *arg)
{
	struct it_conn c;
	uint64_t seed = (uint64_t)getpid() * 2654435761u + bd->cut;
	char path[32], val[VAL_LEN + 1];

	(void)arg;
	if (it_conn_open(&c, d.port))
		return; /* the daemon is gone already */
	for (uint32_t n = 0; n < OPS_MAX; n++) {
		struct it_resp r;
		uint32_t key;
		uint64_t v, ver;

		seed = seed * 6364136223846793005ull + 1442695040888963407ull;
		key = (uint32_t)(seed >> 33) % NKEYS;
		snprintf(path, sizeof(path), "/kv/pc%02u", key);
		if (idx < WRITERS) {
			v = (uint64_t)bd->cut << 40 | (uint64_t)idx << 32 | n;
			make_value(val, v);
			if (it_conn_request(&c, "PUT", path, NULL, val, VAL_LEN, &r))
				break; /* killed: nothing acknowledged */
			if (r.status == 201 || r.status == 204) {
				if (it_resp_version(&r, &ver))
					it_child_fail("PUT %s: no ETag", path);
				record(OBS_ACK, key, ver, v);
			} else if (r.status != 503) {
				it_child_fail("PUT %s: %s", path, it_resp_brief(&r));
			}
		} else {
			if (it_conn_request(&c, "GET", path, NULL, NULL, 0, &r))
				break;
			if (r.status == 200) {
				if (parse_value(&r, &v))
					it_child_fail("GET %s: torn or foreign value: %s",
						      path, it_resp_brief(&r));
				if (it_resp_version(&r, &ver))
					it_child_fail("GET %s: no ETag", path);
				record(OBS_READ, key, ver, v);
			} else if (r.status != 404 && r.status != 503) {
				it_child_fail("GET %s: %s", path, it_resp_brief(&r));
			}
		}
		it_resp_free(&r);
	}
	it_conn_close(&c);
}

static void journal_path(char *out, size_t n, uint32_t cut)
{
	snprintf(out, n, "%s/journal-%u", base, cut);
}

static void start_on(const char *dir, const char *const *extra)
{
	char j[320];
	int rc;

	journal_path(j, sizeof(j), bd->cut);
	unlink(j);
	setenv("CASKD_SIMDISK", j, 1);
	rc = it_daemon_start(&d, dir, PC_WORKERS, extra);
	unsetenv("CASKD_SIMDISK");
	cr_assert_eq(rc, 0, "caskd did not start after cut %u (see log above)",
		     bd->cut);
}

/* The newest observation of each key before the restart. */
static void newest(uint32_t upto, struct obs *best)
{
	memset(best, 0, sizeof(*best) * NKEYS);
	for (uint32_t i = 0; i < upto; i++) {
		const struct obs *o = &bd->obs[i];

		if (o->version > best[o->key].version)
			best[o->key] = *o;
	}
}

/* After a restart: every key as the drill expects it. */
static void verify(int group, uint32_t upto)
{
	struct obs best[NKEYS];
	uint32_t present = 0;
	double keys = -1;
	char *text;

	newest(upto, best);
	for (uint32_t k = 0; k < NKEYS; k++) {
		char path[32];
		struct it_resp r;
		uint64_t v, ver;

		snprintf(path, sizeof(path), "/kv/pc%02u", k);
		cr_assert_eq(it_request(d.port, "GET", path, NULL, NULL, 0, &r), 0,
			     "cut %u: GET %s: no answer", bd->cut, path);
		if (r.status == 404) {
			cr_assert(!group || !best[k].version,
				  "cut %u: %s is gone; it was %s at version %" PRIu64,
				  bd->cut, path,
				  best[k].kind == OBS_ACK ? "acknowledged" : "read",
				  best[k].version);
			it_resp_free(&r);
			continue;
		}
		cr_assert_eq(r.status, 200, "cut %u: GET %s: %s", bd->cut, path,
			     it_resp_brief(&r));
		cr_assert_eq(parse_value(&r, &v), 0, "cut %u: %s is torn: %s",
			     bd->cut, path, it_resp_brief(&r));
		cr_assert_eq(it_resp_version(&r, &ver), 0);
		if (group) {
			cr_assert_geq(ver, best[k].version,
				      "cut %u: %s went back from version %" PRIu64
				      " (%s) to %" PRIu64, bd->cut, path,
				      best[k].version,
				      best[k].kind == OBS_ACK ? "acknowledged" : "read by a client",
				      ver);
			if (ver == best[k].version)
				cr_assert_eq(v, best[k].val, "cut %u: %s version %" PRIu64
					     " names another value", bd->cut, path, ver);
		}
		record(OBS_FINAL, k, ver, v);
		present++;
		it_resp_free(&r);
	}
	text = it_get_metrics(d.port);
	cr_assert_eq(it_metric_value(text, "caskd_keys", 0, &keys), 0);
	free(text);
	cr_assert_eq((uint32_t)keys, present, "cut %u: caskd_keys %.0f, %u present",
		     bd->cut, keys, present);
}

static int by_version(const void *a, const void *b)
{
	const struct obs *x = a, *y = b;

	return x->version < y->version ? -1 : x->version > y->version;
}

/* No version ever named two values, whichever cut it was seen in. */
static void expect_versions_unique(void)
{
	uint32_t n = bd->nobs < MAX_OBS ? bd->nobs : MAX_OBS;

	qsort(bd->obs, n, sizeof(bd->obs[0]), by_version);
	for (uint32_t i = 1; i < n; i++) {
		const struct obs *a = &bd->obs[i - 1], *b = &bd->obs[i];

		if (a->version != b->version)
			continue;
		cr_assert(a->key == b->key && a->val == b->val,
			  "version %" PRIu64 " named key %u value %" PRIx64
			  " and key %u value %" PRIx64, a->version, a->key, a->val,
			  b->key, b->val);
	}
}

static void drill(int group, int cuts)
{
	const char *const extra[] = { "--fsync", group ? "group" : "periodic",
				      "--fsync-interval-ms", "50", NULL };
	struct eng_io_sim_cut_stats st, sum = { 0 };
	uint64_t seed0 = (uint64_t)time(NULL);
	char dir[300], db[320], j[320];
	uint32_t acked = 0, read = 0;

	cr_assert_eq(it_tmpdir(base, sizeof(base)), 0);
	snprintf(dir, sizeof(dir), "%s/data", base);
	snprintf(db, sizeof(db), "%s/database.bin", dir);
	cr_log_info("%s drill, %d cuts, seeds from %" PRIu64,
		    group ? "group" : "periodic", cuts, seed0);
	start_on(dir, extra);
	for (int c = 0; c < cuts; c++) {
		uint64_t seed = seed0 + (uint64_t)c;
		uint32_t upto;
		pid_t pid;
		int status, rc;

		pid = fork();
		cr_assert_geq(pid, 0);
		if (pid == 0)
			_exit(it_fork_clients(WRITERS + READERS, client, NULL) ? 1 : 0);
		it_sleep_ms(LOAD_MIN_MS + (int)(seed % LOAD_SPAN_MS));
		cr_assert_eq(it_daemon_kill9_all(&d), 0);
		cr_assert_eq(waitpid(pid, &status, 0), pid);
		cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0,
			  "cut %d: a client saw a wrong answer (see above)", c);
		upto = bd->nobs;
		cr_assert_eq(bd->overflow, 0, "observation board full");

		journal_path(j, sizeof(j), bd->cut);
		rc = eng_io_sim_cut(j, db, seed, &st);
		cr_assert_eq(rc, 0, "cut %d (seed %" PRIu64 "): %s", c, seed,
			     strerror(-rc));
		unlink(j);
		sum.writes += st.writes;
		sum.syncs += st.syncs;
		sum.unsynced += st.unsynced;
		sum.torn += st.torn;
		sum.dropped += st.dropped;
		sum.truncated += st.truncated;
		sum.remnants += st.remnants;

		bd->cut++;
		start_on(dir, extra);
		verify(group, upto);
	}
	for (uint32_t i = 0; i < bd->nobs; i++) {
		acked += bd->obs[i].kind == OBS_ACK;
		read += bd->obs[i].kind == OBS_READ;
	}
	cr_log_info("%d cuts: %u writes acknowledged, %u values read; %" PRIu64
		    " writes to database.bin, %" PRIu64 " fdatasyncs, %" PRIu64 " unsynced at a cut (%"
		    PRIu64 " torn, %" PRIu64 " dropped), %" PRIu64 " bytes cut off",
		    cuts, acked, read, sum.writes, sum.syncs, sum.unsynced, sum.torn,
		    sum.dropped, sum.truncated);
	cr_assert_gt(acked, 0);
	cr_assert_gt(read, 0);
	cr_assert_gt(sum.unsynced, 0, "no cut caught a write in flight");
	expect_versions_unique();
	it_stop_clean(&d);
	it_assert_no_leaks();
}

static int cuts_wanted(void)
{
	const char *s = getenv("CASKD_POWERCUTS");
	int n = s ? atoi(s) : DEFAULT_CUTS;

	return n > 0 ? n : DEFAULT_CUTS;
}

Test(it_powercut, group_mode_loses_nothing_acknowledged_or_read)
{
	drill(1, cuts_wanted());
}

Test(it_powercut, periodic_mode_never_reuses_a_version)
{
	drill(0, cuts_wanted() / 6 + 1);
}
