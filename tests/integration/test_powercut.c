/* tests/integration/test_powercut.c — power cuts under load and during
 * background work, whole daemon.
 *
 * kill -9 keeps the page cache; a power cut does not. The daemon runs
 * with CASKD_SIMDISK (engine/io_sim.h): every write records what it
 * replaced, every sync what it covered, every create, rename and unlink
 * what it changed. At a random moment the whole process group is
 * SIGKILLed, then eng_io_sim_power_loss() undoes the newest directory operations
 * no directory sync covered and drops or tears, page by page, every write
 * no sync covered, as a power cut may. The daemon restarts on what is
 * left and is checked.
 *
 * What runs when the power goes (issue 18): writers and readers of a few
 * hot keys on several workers; a filler whose batches add and delete
 * thousands of keys, so that the table grows past its first size,
 * shrinks, and is rebuilt to purge deleted slots; compactions, asked for
 * (POST /admin/compact) and started by themselves (a low
 * --compact-min-size), each of which writes database.idx when it is done;
 * and every STOP_EVERY cuts a graceful stop, which writes database.idx
 * too. Every other cut comes just after a compaction ended.
 *
 * What must hold after each restart (../shared/HTTP-API.md, durability):
 *   - nothing a sync covered before the cut is lost: each hot key is at
 *     least at the newest version known durable, and each filler block is
 *     no older than the newest durable batch that touched it. A write or
 *     read is known durable once a sync of database.bin began after it:
 *     its client notes the journal's length when the answer came (the
 *     write's entry lies below), and the cut reports where the newest
 *     sync began (covered_below). In group mode every acknowledged write
 *     and every value read is durable;
 *   - a batch is all there or all gone; no version ever names two values,
 *     across all cuts (the version lease); no value is torn; GET /keys
 *     lists no key nobody wrote; caskd_keys is exact.
 *
 * CASKD_POWERCUTS=N sets the number of cuts of the group-mode drill (the
 * periodic one runs a third as many). Each failure names its cut and the
 * cut's seed, which decides when the power goes and what the cut keeps;
 * the load itself depends on timing, so a seed does not replay a run.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <glob.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "engine/io_sim.h"
#include "tests/integration/harness.h"
#include "tests/integration/it_assert.h"

#define PC_WORKERS 2
#define WRITERS 3
#define READERS 2
#define FILLER (WRITERS + READERS)
#define COMPACTOR (FILLER + 1)
#define CLIENTS (COMPACTOR + 1)
#define NKEYS 24
#define VAL_LEN 64
#define DEFAULT_CUTS 50 /* about 20 s on 2 cores; make drill: 600 */
#define MAX_OBS (1u << 22) /* pages are touched only as used */
#define OPS_MAX 20000      /* per client and cut: stops by itself */
#define LOAD_MIN_MS 20
#define LOAD_SPAN_MS 130

/* The filler's keys live in FILL_BLOCKS blocks of FILL_BLOCK_KEYS; a cycle
 * of its batches puts the blocks one by one, then deletes them one by one.
 * At the peak it holds more keys than 7/10 of the first table's 16384
 * slots (engine/index.h), so the table grows; emptied, it shrinks; and
 * the deletes' DEAD slots make rebuilds that purge them. With so many
 * keys, the start-up check of database.idx (64 entries, idxsnap.c) sees
 * only a few of them. */
#define FILL_BLOCKS 8
#define FILL_BLOCK_KEYS 1800
#define FILL_CYCLE (2 * FILL_BLOCKS)
#define FILL_LINE_MAX 40   /* "put f7-1799 fill-00000000\n" with room */
#define FILL_ROUNDS_MAX 1000 /* batches per cut: stops by itself */
#define FILL_KEY NKEYS     /* the key an observation of the filler names */
#define FILL_VAL_LEN 13    /* "fill-%08x" */
/* A pause after each batch, so the hot keys' writers get their share of
 * 2 cores: a cycle spans a few cuts. */
#define FILL_GAP_MS 4

/* The compactor asks for a compaction (one running already answers with
 * its id), waits for it to end, and asks again a while later: the jobs
 * run one at a time, and table rebuilds need their turn. */
#define COMPACT_GAP_MIN_MS 40
#define COMPACT_GAP_SPAN_MS 100
#define COMPACT_POLL_MS 1
#define COMPACT_POSTS_MAX 1000

/* Every other cut comes up to AFTER_SPAN_MS after a compaction ended
 * (or, if none ends within AFTER_WAIT_MS, then): database.idx was just
 * written, and periodic mode syncs every FSYNC_INTERVAL_MS. Half of
 * them come within AFTER_NEAR_MS, before a group commit or two. */
#define AFTER_SPAN_MS 60
#define AFTER_NEAR_MS 4
#define AFTER_WAIT_MS 2000 /* writers fill the disk meanwhile */
#define FSYNC_INTERVAL_MS "50"

/* One cut in STOP_EVERY stops the daemon gracefully first (it writes
 * database.idx) and cuts the power up to STOP_SPAN_MS later: in the
 * middle of that or after. */
#define STOP_EVERY 8
#define STOP_SPAN_MS 60

enum { OBS_ACK = 1, OBS_READ = 2, OBS_FINAL = 3, OBS_FILL = 4 };

struct obs {
	uint64_t version;
	uint64_t val;
	uint64_t jpos;  /* the journal's length when the answer came */
	uint32_t key;   /* 0..NKEYS-1, or FILL_KEY (val: the round) */
	uint32_t kind;
};

struct board {
	uint32_t nobs;
	uint32_t cut;
	uint32_t overflow;
	uint32_t fill_next;  /* the filler's first round in this cut */
	uint32_t fill_sent;  /* rounds sent so far, the one in flight too */
	/* The round that last touched each filler block, as the last restart
	 * found it (a lower bound for a deleted block; -1: none). */
	int64_t fill_last[FILL_BLOCKS];
	uint32_t compactions;        /* the compactor saw done, all cuts */
	uint32_t compactions_failed; /* ... and failed */
	struct obs obs[MAX_OBS];
};

static struct it_daemon d;
static char base[256];
static char jpath[320]; /* the journal of the daemon running now */
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

/* make drill's 600 cuts take about ten minutes on 2 busy cores; a hung
 * daemon fails a request within IT_IO_TIMEOUT_MS anyway. */
TestSuite(it_powercut, .init = setup, .fini = teardown, .timeout = 1800);

/* How long the journal is now. Each write the daemon answered lies below:
 * its entry is appended before the write call returns. */
static uint64_t journal_pos(void)
{
	struct stat st;

	if (stat(jpath, &st) < 0)
		it_child_fail("stat %s: %s", jpath, strerror(errno));
	return (uint64_t)st.st_size;
}

static void record(uint32_t kind, uint32_t key, uint64_t version, uint64_t val,
		   uint64_t jpos)
{
	uint32_t i = __atomic_fetch_add(&bd->nobs, 1, __ATOMIC_RELAXED);

	if (i >= MAX_OBS) {
		__atomic_store_n(&bd->overflow, 1, __ATOMIC_RELAXED);
		return;
	}
	bd->obs[i] = (struct obs){ version, val, jpos, key, kind };
}

static uint64_t next_rand(uint64_t *seed)
{
	*seed = *seed * 6364136223846793005ull + 1442695040888963407ull;
	return *seed >> 33;
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

/* --- the clients -------------------------------------------------------- */

static void kv_client(int idx)
{
	struct it_conn c;
	uint64_t seed = (uint64_t)getpid() * 2654435761u + bd->cut;
	char path[32], val[VAL_LEN + 1];

	if (it_conn_open(&c, d.port))
		return; /* the daemon is gone already */
	for (uint32_t n = 0; n < OPS_MAX; n++) {
		struct it_resp r;
		uint32_t key = (uint32_t)next_rand(&seed) % NKEYS;
		uint64_t v, ver;

		snprintf(path, sizeof(path), "/kv/pc%02u", key);
		if (idx < WRITERS) {
			v = (uint64_t)bd->cut << 40 | (uint64_t)idx << 32 | n;
			make_value(val, v);
			if (it_conn_request(&c, "PUT", path, NULL, val, VAL_LEN, &r))
				break; /* killed: nothing acknowledged */
			if (r.status == 201 || r.status == 204) {
				if (it_resp_version(&r, &ver))
					it_child_fail("PUT %s: no ETag", path);
				record(OBS_ACK, key, ver, v, journal_pos());
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
				record(OBS_READ, key, ver, v, journal_pos());
			} else if (r.status != 404 && r.status != 503) {
				it_child_fail("GET %s: %s", path, it_resp_brief(&r));
			}
		}
		it_resp_free(&r);
	}
	it_conn_close(&c);
}

/* Round n of the filler puts block n % FILL_CYCLE in the first half of a
 * cycle and deletes block n % FILL_CYCLE - FILL_BLOCKS in the second. */
static size_t fill_body(char *buf, uint32_t n)
{
	uint32_t phase = n % FILL_CYCLE, b = phase % FILL_BLOCKS;
	size_t len = 0;

	for (uint32_t j = 0; j < FILL_BLOCK_KEYS; j++)
		len += (size_t)(phase < FILL_BLOCKS ?
			sprintf(buf + len, "put f%u-%04u fill-%08x\n", b, j, n) :
			sprintf(buf + len, "del f%u-%04u\n", b, j));
	return len;
}

/* Sends round after round, one at a time; one refused (503) is sent
 * again. A round is never sent in two cuts, so its number names one
 * batch (and one version). */
static void filler(void)
{
	char *body = malloc(FILL_BLOCK_KEYS * FILL_LINE_MAX);
	uint32_t n = bd->fill_next;
	struct it_conn c;

	if (!body)
		it_child_fail("filler: out of memory");
	if (it_conn_open(&c, d.port)) {
		free(body);
		return;
	}
	for (int tries = 0; tries < FILL_ROUNDS_MAX; tries++) {
		size_t len = fill_body(body, n);
		struct it_resp r;
		uint64_t ver;

		__atomic_store_n(&bd->fill_sent, n + 1, __ATOMIC_RELAXED);
		if (it_conn_request(&c, "POST", "/batch", NULL, body, len, &r))
			break;
		if (r.status == 200) {
			if (it_resp_version(&r, &ver))
				it_child_fail("POST /batch: no ETag");
			record(OBS_FILL, FILL_KEY, ver, n, journal_pos());
			n++;
			it_sleep_ms(FILL_GAP_MS);
		} else if (r.status != 503) {
			it_child_fail("POST /batch (round %u): %s", n, it_resp_brief(&r));
		}
		it_resp_free(&r);
	}
	it_conn_close(&c);
	free(body);
}

/* Polls job id until it ends (or the daemon stops); counts how. */
static void await_job(const char *id)
{
	char path[64], state[16];

	snprintf(path, sizeof(path), "/admin/jobs/%s", id);
	for (;;) {
		struct it_resp r;

		if (it_request(d.port, "GET", path, NULL, NULL, 0, &r))
			return; /* killed */
		if (r.status == 503) {
			it_resp_free(&r);
			return; /* stopping */
		}
		if (r.status != 200 || it_json_field(r.body, "state", state, sizeof(state)))
			it_child_fail("GET %s: %s", path, it_resp_brief(&r));
		it_resp_free(&r);
		if (!strcmp(state, "done")) {
			__atomic_fetch_add(&bd->compactions, 1, __ATOMIC_RELEASE);
			return;
		}
		if (!strcmp(state, "failed")) {
			__atomic_fetch_add(&bd->compactions_failed, 1, __ATOMIC_RELAXED);
			return;
		}
		it_sleep_ms(COMPACT_POLL_MS);
	}
}

static void compactor(void)
{
	uint64_t seed = (uint64_t)getpid() * 40503u + bd->cut;

	for (int n = 0; n < COMPACT_POSTS_MAX; n++) {
		struct it_resp r;
		char id[24];

		if (it_request(d.port, "POST", "/admin/compact", NULL, NULL, 0, &r))
			break;
		if (r.status == 202 && it_json_field(r.body, "job", id, sizeof(id)) == 0) {
			it_resp_free(&r);
			await_job(id);
		} else if (r.status == 503) {
			it_resp_free(&r);
		} else {
			it_child_fail("POST /admin/compact: %s", it_resp_brief(&r));
		}
		it_sleep_ms(COMPACT_GAP_MIN_MS + (int)(next_rand(&seed) % COMPACT_GAP_SPAN_MS));
	}
}

static void client(int idx, void *arg)
{
	(void)arg;
	if (idx < WRITERS + READERS)
		kv_client(idx);
	else if (idx == FILLER)
		filler();
	else
		compactor();
}

/* --- the daemon --------------------------------------------------------- */

static void journal_path(char *out, size_t n, uint32_t cut)
{
	snprintf(out, n, "%s/journal-%u", base, cut);
}

static void start_on(const char *dir, const char *const *extra)
{
	int rc;

	journal_path(jpath, sizeof(jpath), bd->cut);
	unlink(jpath);
	setenv("CASKD_SIMDISK", jpath, 1);
	rc = it_daemon_start(&d, dir, PC_WORKERS, extra);
	unsetenv("CASKD_SIMDISK");
	cr_assert_eq(rc, 0, "caskd did not start after cut %u (see log above)",
		     bd->cut);
}

/* Lines that contain what in the logs of all the daemon's runs (each
 * run has a port, and a log, of its own). */
static unsigned log_count(const char *what)
{
	char pattern[300], *line = NULL;
	size_t cap = 0;
	unsigned n = 0;
	glob_t g;

	snprintf(pattern, sizeof(pattern), "%s/caskd-*.log", base);
	cr_assert_eq(glob(pattern, 0, NULL, &g), 0, "no log matches %s", pattern);
	for (size_t i = 0; i < g.gl_pathc; i++) {
		FILE *f = fopen(g.gl_pathv[i], "r");

		cr_assert_not_null(f, "%s: %s", g.gl_pathv[i], strerror(errno));
		while (getline(&line, &cap, f) >= 0)
			n += strstr(line, what) != NULL;
		fclose(f);
	}
	free(line);
	globfree(&g);
	return n;
}

/* --- the checks after a restart ---------------------------------------------- */

/* What the restart must keep. */
struct expect {
	struct obs best[NKEYS]; /* the newest durable version of each key */
	uint32_t fill_lo;       /* the filler's rounds below are durable */
	uint32_t fill_hi;       /* ... and none from here on was sent */
	uint64_t mark;          /* the cut's covered_below (periodic mode) */
	uint64_t seed;
	int group;
};

/* Is observation i, made during this cut if i >= from, known durable? */
static int durable(const struct expect *e, uint32_t i, uint32_t from)
{
	const struct obs *o = &bd->obs[i];

	if (o->kind == OBS_FINAL)
		return 1; /* the last restart found it on disk */
	return i >= from && (e->group || o->jpos <= e->mark);
}

static void expect_from(struct expect *e, uint32_t from, uint32_t upto)
{
	memset(e->best, 0, sizeof(e->best));
	e->fill_lo = bd->fill_next;
	e->fill_hi = bd->fill_sent;
	for (uint32_t i = 0; i < upto; i++) {
		const struct obs *o = &bd->obs[i];

		if (!durable(e, i, from))
			continue;
		if (o->key == FILL_KEY) {
			if (o->kind == OBS_FILL && o->val + 1 > e->fill_lo)
				e->fill_lo = (uint32_t)o->val + 1;
		} else if (o->version > e->best[o->key].version) {
			e->best[o->key] = *o;
		}
	}
}

static const char *kind_name(uint32_t kind)
{
	return kind == OBS_ACK ? "acknowledged" : kind == OBS_READ ? "read" :
	       "found after the last restart";
}

/* The hot keys: each at least at its newest durable version. */
static uint32_t verify_hot(const struct expect *e)
{
	uint32_t present = 0;

	for (uint32_t k = 0; k < NKEYS; k++) {
		const struct obs *b = &e->best[k];
		char path[32];
		struct it_resp r;
		uint64_t v, ver;

		snprintf(path, sizeof(path), "/kv/pc%02u", k);
		cr_assert_eq(it_request(d.port, "GET", path, NULL, NULL, 0, &r), 0,
			     "cut %u: GET %s: no answer", bd->cut, path);
		if (r.status == 404) {
			cr_assert(!b->version, "cut %u (seed %" PRIu64 ", %s mode): %s is "
				  "gone; it was %s at version %" PRIu64 " and durable",
				  bd->cut, e->seed, e->group ? "group" : "periodic", path,
				  kind_name(b->kind), b->version);
			it_resp_free(&r);
			continue;
		}
		cr_assert_eq(r.status, 200, "cut %u: GET %s: %s", bd->cut, path,
			     it_resp_brief(&r));
		cr_assert_eq(parse_value(&r, &v), 0, "cut %u: %s is torn: %s",
			     bd->cut, path, it_resp_brief(&r));
		cr_assert_eq(it_resp_version(&r, &ver), 0);
		cr_assert_geq(ver, b->version, "cut %u (seed %" PRIu64 ", %s mode): %s "
			      "went back from version %" PRIu64 " (%s, durable) to %" PRIu64,
			      bd->cut, e->seed, e->group ? "group" : "periodic", path,
			      b->version, kind_name(b->kind), ver);
		if (ver == b->version)
			cr_assert_eq(v, b->val, "cut %u: %s version %" PRIu64
				     " names another value", bd->cut, path, ver);
		record(OBS_FINAL, k, ver, v, 0);
		present++;
		it_resp_free(&r);
	}
	return present;
}

/* Does round r put block b (1), delete it (-1), or neither (0)? */
static int fill_touch(int64_t r, uint32_t b)
{
	uint32_t phase = (uint32_t)(r % FILL_CYCLE);

	return phase == b ? 1 : phase == b + FILL_BLOCKS ? -1 : 0;
}

/* The newest round of [lo, hi) that touches block b, or -1. */
static int64_t fill_newest(int64_t lo, int64_t hi, uint32_t b)
{
	for (int64_t r = hi - 1; r >= lo && r >= hi - FILL_CYCLE; r--)
		if (fill_touch(r, b))
			return r;
	return -1;
}

/* How many keys of each filler block GET /keys lists; returns how many
 * hot keys it lists. A key nobody wrote fails the drill: an index entry
 * that points at bytes a cut took back lists what they hold now. */
static uint32_t list_keys(const struct expect *e, uint32_t *count)
{
	uint32_t hot = 0;
	struct it_resp r;

	memset(count, 0, sizeof(*count) * FILL_BLOCKS);
	cr_assert_eq(it_request(d.port, "GET", "/keys?limit=100000", NULL, NULL, 0, &r),
		     0, "cut %u: GET /keys: no answer", bd->cut);
	cr_assert_eq(r.status, 200, "cut %u: GET /keys: %s", bd->cut, it_resp_brief(&r));
	cr_assert_null(it_resp_header(&r, "X-Truncated"), "cut %u: GET /keys: %s",
		       bd->cut, it_resp_brief(&r));
	for (const char *p = r.body; *p; p = strchr(p, '\n') + 1) {
		unsigned b, j;
		int used = 0;

		if (sscanf(p, "pc%2u%n", &b, &used) == 1 && p[used] == '\n' && b < NKEYS) {
			hot++;
			continue;
		}
		cr_assert(sscanf(p, "f%u-%4u%n", &b, &j, &used) == 2 && p[used] == '\n' &&
			  b < FILL_BLOCKS && j < FILL_BLOCK_KEYS,
			  "cut %u (seed %" PRIu64 ", %s mode): GET /keys lists a key "
			  "nobody wrote: %.*s", bd->cut, e->seed,
			  e->group ? "group" : "periodic", (int)strcspn(p, "\n"), p);
		count[b]++;
	}
	it_resp_free(&r);
	return hot;
}

/* The round whose batch put the value of a key of live block b. */
static int64_t fill_read_round(uint32_t b)
{
	char path[32];
	struct it_resp r;
	unsigned round;
	uint64_t ver;
	int used = 0;

	snprintf(path, sizeof(path), "/kv/f%u-%04u", b, bd->cut % FILL_BLOCK_KEYS);
	cr_assert_eq(it_request(d.port, "GET", path, NULL, NULL, 0, &r), 0);
	cr_assert_eq(r.status, 200, "cut %u: GET %s: %s (listed)", bd->cut, path,
		     it_resp_brief(&r));
	cr_assert(r.body_len == FILL_VAL_LEN && sscanf(r.body, "fill-%8x%n", &round,
							 &used) == 1 && used == FILL_VAL_LEN,
		  "cut %u: %s is torn: %s", bd->cut, path, it_resp_brief(&r));
	cr_assert_eq(it_resp_version(&r, &ver), 0);
	it_resp_free(&r);
	record(OBS_FINAL, FILL_KEY, ver, round, 0);
	return round;
}

/* One filler block: all its keys or none (a batch is all or nothing), as
 * a round sent left it, no older than the newest durable round that
 * touched it. Records what it found for the next cut. */
static void verify_block(const struct expect *e, uint32_t b, uint32_t count)
{
	int64_t floor = fill_newest(bd->fill_next, e->fill_lo, b), r;
	const char *mode = e->group ? "group" : "periodic";

	if (bd->fill_last[b] > floor)
		floor = bd->fill_last[b];
	cr_assert(count == 0 || count == FILL_BLOCK_KEYS, "cut %u (seed %" PRIu64
		  ", %s mode): filler block %u holds %u of its %u keys, which one batch "
		  "puts and one deletes", bd->cut, e->seed, mode, b, count, FILL_BLOCK_KEYS);
	if (count) {
		r = fill_read_round(b);
		cr_assert(fill_touch(r, b) == 1 && r < e->fill_hi && r >= floor,
			  "cut %u (seed %" PRIu64 ", %s mode): filler block %u holds round "
			  "%" PRId64 "; round %" PRId64 " (%s) was durable, %u sent",
			  bd->cut, e->seed, mode, b, r, floor,
			  floor >= 0 && fill_touch(floor, b) < 0 ? "deleting it" : "putting it",
			  e->fill_hi);
		bd->fill_last[b] = r;
		return;
	}
	cr_assert(floor < 0 || fill_touch(floor, b) < 0 || floor + FILL_BLOCKS < e->fill_hi,
		  "cut %u (seed %" PRIu64 ", %s mode): filler block %u is gone; round %"
		  PRId64 " put it and was durable, and no later round deleted it",
		  bd->cut, e->seed, mode, b, floor);
	if (floor >= 0 && fill_touch(floor, b) > 0)
		floor += FILL_BLOCKS; /* the round that deleted it next */
	bd->fill_last[b] = floor;
}

/* The filler's keys, as GET /keys listed them. Returns how many. */
static uint32_t verify_fill(const struct expect *e, const uint32_t *count)
{
	uint32_t keys = 0;

	for (uint32_t b = 0; b < FILL_BLOCKS; b++) {
		verify_block(e, b, count[b]);
		keys += count[b];
	}
	bd->fill_next = e->fill_hi;
	return keys;
}

/* After a restart: every key as the drill expects it, and no other. */
static void verify(const struct expect *e)
{
	uint32_t count[FILL_BLOCKS], hot = verify_hot(e), listed = list_keys(e, count);
	uint32_t present = hot + verify_fill(e, count);
	double keys = -1;
	char *text;

	cr_assert_eq(listed, hot, "cut %u: GET /keys lists %u hot keys, GET finds %u",
		     bd->cut, listed, hot);
	text = it_get_metrics(d.port);
	cr_assert_eq(it_metric_value(text, "caskd_keys", 0, &keys), 0);
	free(text);
	cr_assert_eq((uint32_t)keys, present, "cut %u (seed %" PRIu64 ", %s mode): "
		     "caskd_keys %.0f, but GET /keys lists %u", bd->cut, e->seed,
		     e->group ? "group" : "periodic", keys, present);
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

/* --- the drill ------------------------------------------------------------- */

static void add_stats(struct eng_io_sim_loss_stats *sum,
		      const struct eng_io_sim_loss_stats *st)
{
	sum->writes += st->writes;
	sum->syncs += st->syncs;
	sum->unsynced += st->unsynced;
	sum->torn += st->torn;
	sum->dropped += st->dropped;
	sum->truncated += st->truncated;
	sum->remnants += st->remnants;
	sum->files += st->files;
	sum->dirops += st->dirops;
	sum->dirsyncs += st->dirsyncs;
	sum->undone += st->undone;
	sum->unjournaled += st->unjournaled;
	sum->swaps += st->swaps;
	sum->swaps_undone += st->swaps_undone;
}

/* Waits for the load to run to the moment of the cut. */
static void await_cut(int c, uint64_t seed)
{
	uint32_t done = __atomic_load_n(&bd->compactions, __ATOMIC_ACQUIRE);
	int64_t deadline = it_now_ms() + AFTER_WAIT_MS;

	if (c % STOP_EVERY == STOP_EVERY - 1) {
		it_sleep_ms(LOAD_MIN_MS + (int)(seed % LOAD_SPAN_MS));
		cr_assert_eq(kill(d.pid, SIGTERM), 0);
		it_sleep_ms((int)(seed / LOAD_SPAN_MS % STOP_SPAN_MS));
	} else if (c % 2) {
		while (__atomic_load_n(&bd->compactions, __ATOMIC_ACQUIRE) == done &&
		       it_now_ms() < deadline)
			it_sleep_ms(1);
		it_sleep_ms((int)(seed % (c % 4 == 1 ? AFTER_NEAR_MS : AFTER_SPAN_MS)));
	} else {
		it_sleep_ms(LOAD_MIN_MS + (int)(seed % LOAD_SPAN_MS));
	}
}

/* Runs the load for a while and cuts the power: SIGKILL of the whole
 * group, then the simulated loss. Returns the cut's covered_below. */
static uint64_t load_and_cut(const char *db, int c, uint64_t seed,
			     struct eng_io_sim_loss_stats *sum)
{
	struct eng_io_sim_loss_stats st;
	int status, rc;
	pid_t pid;

	bd->fill_sent = bd->fill_next;
	pid = fork();
	cr_assert_geq(pid, 0);
	if (pid == 0)
		_exit(it_fork_clients(CLIENTS, client, NULL) ? 1 : 0);
	await_cut(c, seed);
	cr_assert_eq(it_daemon_kill9_all(&d), 0);
	cr_assert_eq(waitpid(pid, &status, 0), pid);
	cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0,
		  "cut %d: a client saw a wrong answer (see above)", c);
	cr_assert_eq(bd->overflow, 0, "observation board full");

	rc = eng_io_sim_power_loss(jpath, db, seed, &st);
	cr_assert_eq(rc, 0, "cut %d (seed %" PRIu64 "): %s", c, seed, strerror(-rc));
	unlink(jpath);
	add_stats(sum, &st);
	return st.covered_below;
}

static void drill(int group, int cuts)
{
	const char *const extra[] = { "--fsync", group ? "group" : "periodic",
				      "--fsync-interval-ms", FSYNC_INTERVAL_MS,
				      "--compact-min-size", "256k",
				      "--compact-garbage-pct", "50", NULL };
	struct eng_io_sim_loss_stats sum = { 0 };
	uint64_t seed0 = (uint64_t)time(NULL);
	char dir[300], db[320];
	uint32_t acked = 0, read = 0, fills = 0;

	cr_assert_eq(it_tmpdir(base, sizeof(base)), 0);
	for (uint32_t b = 0; b < FILL_BLOCKS; b++)
		bd->fill_last[b] = -1;
	snprintf(dir, sizeof(dir), "%s/data", base);
	snprintf(db, sizeof(db), "%s/database.bin", dir);
	cr_log_info("%s drill, %d cuts, seeds from %" PRIu64,
		    group ? "group" : "periodic", cuts, seed0);
	start_on(dir, extra);
	for (int c = 0; c < cuts; c++) {
		struct expect e = { .seed = seed0 + (uint64_t)c, .group = group };
		uint32_t from = bd->nobs;

		e.mark = load_and_cut(db, c, e.seed, &sum);
		expect_from(&e, from, bd->nobs);
		bd->cut++;
		start_on(dir, extra);
		verify(&e);
	}
	for (uint32_t i = 0; i < bd->nobs; i++) {
		acked += bd->obs[i].kind == OBS_ACK;
		read += bd->obs[i].kind == OBS_READ;
		fills += bd->obs[i].kind == OBS_FILL;
	}
	cr_log_info("%d cuts: %u writes and %u batches acknowledged, %u values read; "
		    "%u compactions ended before a cut (%u failed; %u in the logs), %u table "
		    "rebuilds, %u restarts from database.idx", cuts, acked, fills, read,
		    bd->compactions, bd->compactions_failed, log_count(" done in "),
		    log_count("index rebuilt"), log_count("(index from database.idx"));
	cr_log_info("%" PRIu64 " writes, %" PRIu64 " file syncs, %" PRIu64 " unsynced "
		    "at a cut (%" PRIu64 " torn, %" PRIu64 " dropped), %" PRIu64 " bytes cut "
		    "off; %" PRIu64 " creates, renames and unlinks (%" PRIu64 " undone; %"
		    PRIu64 " cuts kept all: a process died before journaling one), %" PRIu64
		    " directory syncs, %" PRIu64 " database.bin swapped in by a rename (%"
		    PRIu64 " undone)", sum.writes, sum.syncs, sum.unsynced, sum.torn,
		    sum.dropped, sum.truncated, sum.dirops, sum.undone, sum.unjournaled,
		    sum.dirsyncs, sum.swaps, sum.swaps_undone);
	cr_assert_gt(acked, 0);
	cr_assert_gt(read, 0);
	cr_assert_gt(fills, 0);
	if (cuts > 1) /* cut 1 waits for one */
		cr_assert_gt(bd->compactions, 0, "no compaction ended before a cut");
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

Test(it_powercut, periodic_mode_loses_nothing_synced)
{
	drill(0, cuts_wanted() / 3 + 1);
}
