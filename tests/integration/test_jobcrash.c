/* tests/integration/test_jobcrash.c — every background job killed right
 * after each of its calls through engine/io, under writes.
 *
 * The daemon runs with CASKD_CRASH_SYSCALL=ROLE:K (engine/io.h): the
 * process doing ROLE's work logs each call it makes through engine/io
 * and SIGKILLs itself right after the K-th (ROLE:K:group: the whole
 * process group; ROLE:K:eio: the K-th call is not made and fails with
 * EIO, and the error path runs). A sweep runs K = 1, 2, 3, ..., each on
 * a fresh directory, until a run ends without reaching K (the process
 * then logs how many calls it made). What is swept:
 *   compaction    POST /admin/compact; role "job": the new file, its
 *                 syncs, the rename, the directory sync, database.idx;
 *                 killing the job alone, killing master, workers and
 *                 job at once, and failing the call
 *   table rebuild keys inserted past 7/10 of the table start a resize
 *                 job by themselves; role "job"
 *   database.idx  at a clean stop the master trims database.bin and
 *                 writes database.idx; role "stop"; killed, and failing
 *                 the call
 *   reserve       the master makes database.reserve and zeroes ahead of
 *                 the tail; role "space"
 * A snapshot (GET /admin/snapshot) runs in no job and makes no call of
 * its own (a worker sends it from its mapping): one is asked for after
 * every kill of a compaction and must be served.
 *
 * The calls before a given point vary from run to run (a compaction
 * makes one catch-up pass or three, as writes come), so K alone does not
 * reach every call: the runs' logs name their calls, and a point (a call
 * and its occurrence) that no K of the sweep happened to hit is aimed at
 * again from where it was seen, a few times. The report lists the
 * points, and any missed.
 *
 * During each run a client process writes and records what was
 * acknowledged (and what it tried: a write that got no answer may or may
 * not be there). After each kill (or failed call):
 *   - the job ends: failed, or done (the master finished it);
 *   - the daemon goes on serving: a write succeeds within UNFREEZE_MS
 *     (503s for ever mean writes stayed frozen), the writer's too;
 *   - every acknowledged write reads back with its value and version;
 *   - after a graceful stop and a restart, all of it is there again;
 *   - and separately after a kill -9 of the whole process group and a
 *     restart: the group is stopped (SIGSTOP), its directory copied as a
 *     kill -9 leaves it (the page cache is the file), and a daemon is
 *     started on the copy.
 * A failing K does not stop the sweep: every K runs, each failure is
 * printed with its call and symptom, and the test fails at the end.
 *
 * By default the sweeps that are long or repetitive count a point as a
 * call and the call before it, whichever occurrence (the whole-group
 * compaction; the reserve sweep, which also takes only its first 8 K
 * and then every 11th). CASKD_JOBCRASH_FULL=1 (`make drill`)
 * runs every K of every sweep and aims at every occurrence;
 * CASKD_JOBCRASH_QUICK=1 (`make test`; the ASan run skips these sweeps) takes at most
 * K = 1..4 and then every 3rd (or the sweep's sparser sample), and counts
 * points so in every sweep;
 * CASKD_JOBCRASH_ONLY=K runs that K alone, to reproduce one (the call it
 * reaches may differ: see above).
 */
#include <criterion/criterion.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tests/integration/harness.h"
#include "tests/integration/it_assert.h"

#define WORKERS 2
#define FILL_KEYS 64          /* keys of the fill, overwritten FILL_ROUNDS times */
#define FILL_ROUNDS 3
#define FILL_VAL 1000
#define WKEYS 8               /* keys the writer client cycles through */
#define WVAL 200
#define JOB_WAIT_MS 30000
#define UNFREEZE_MS 10000     /* a write must succeed this soon after a kill */
#define ACKS_BEFORE_JOB 5     /* the writer runs before the job starts */
#define LOG_MAX (1u << 20)
#define FAIL_MAX 1024
#define CALL_MAX 200
#define MAX_RUNS 4096         /* a sweep longer than this is a runaway */
/* The table starts with 16384 slots and grows past 7/10 of them. */
#define RESIZE_KEYS 12000
#define RESIZE_BATCH 2000

static char base[256];

static void setup(void) { it_setup(); }
static void teardown(void) { it_teardown(); }
TestSuite(it_jobcrash, .init = setup, .fini = teardown, .timeout = 3600);

/* --- what was acknowledged ------------------------------------------------- */

/* One key written with rising rounds by one process. acked: the last
 * round a 2xx came back for (-1: none), with its version; tried: the
 * last round sent at all. A round in (acked, tried] may or may not be
 * there; one below acked must not be. */
struct wkey {
	volatile int64_t acked;
	volatile uint64_t ver;
	volatile int64_t tried;
};

struct acks {
	volatile int stop;
	volatile uint64_t nacked;
	struct wkey w[WKEYS];
	struct wkey probe;   /* the test process's own writes */
};

static void wkey_init(struct wkey *k)
{
	k->acked = k->tried = -1;
	k->ver = 0;
}

static struct acks *acks_new(void)
{
	struct acks *a = it_shared_alloc(sizeof(*a));

	for (int i = 0; i < WKEYS; i++)
		wkey_init(&a->w[i]);
	wkey_init(&a->probe);
	return a;
}

static int value_for(char *buf, size_t n, const char *name, int64_t round, size_t len)
{
	int m = snprintf(buf, n, "%s-r%" PRId64 "-", name, round);

	if (m < 0 || (size_t)m >= n || len >= n)
		return -1;
	if ((size_t)m < len) {
		memset(buf + m, 'a' + (int)(round % 26), len - (size_t)m);
		m = (int)len;
	}
	buf[m] = '\0';
	return m;
}

/* PUT /kv/name = round r on c (reopened after a transport error). 1 if
 * acknowledged, 0 if refused (503 ...), -1 on a transport error. */
static int put_tracked(struct it_conn *c, int *open, int port, const char *name,
		       struct wkey *k, int64_t r)
{
	char path[64], val[WVAL + 64];
	struct it_resp resp;
	uint64_t v;
	int n, rc;

	snprintf(path, sizeof(path), "/kv/%s", name);
	n = value_for(val, sizeof(val), name, r, WVAL);
	if (!*open) {
		if (it_conn_open(c, port))
			return -1;
		*open = 1;
	}
	k->tried = r;
	rc = it_conn_request(c, "PUT", path, NULL, val, (size_t)n, &resp);
	if (rc) {
		it_conn_close(c);
		*open = 0;
		return -1;
	}
	rc = (resp.status == 201 || resp.status == 204) && !it_resp_version(&resp, &v);
	if (rc) {
		k->ver = v;
		k->acked = r;
	}
	it_resp_free(&resp);
	return rc;
}

/* The writer client: cycles through its keys until told to stop. */
static void writer_main(struct acks *a, int port)
{
	struct it_conn c;
	int open = 0;

	for (int64_t r = 0; !a->stop; r++) {
		char name[16];
		int rc;

		snprintf(name, sizeof(name), "w%d", (int)(r % WKEYS));
		rc = put_tracked(&c, &open, port, name, &a->w[r % WKEYS], r);
		if (rc > 0)
			a->nacked++;
		else
			it_sleep_ms(rc < 0 ? 20 : 5);
	}
	if (open)
		it_conn_close(&c);
}

static pid_t writer_start(struct acks *a, int port)
{
	pid_t parent = getpid(), pid;

	fflush(NULL);
	pid = fork();
	cr_assert_geq(pid, 0);
	if (pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
		if (getppid() != parent)
			_exit(1);
		writer_main(a, port);
		_exit(0);
	}
	return pid;
}

static void writer_stop(struct acks *a, pid_t pid)
{
	int st;

	a->stop = 1;
	cr_assert_eq(waitpid(pid, &st, 0), pid);
}

/* Waits until the writer has n more acknowledgements; 0, or -1 after
 * ms. */
static int writer_wait(struct acks *a, uint64_t n, int ms)
{
	uint64_t want = a->nacked + n;
	int64_t deadline = it_now_ms() + ms;

	while (a->nacked < want) {
		if (it_now_ms() > deadline)
			return -1;
		it_sleep_ms(5);
	}
	return 0;
}

/* --- one run's outcome ----------------------------------------------------- */

#define TRACE_MAX 512

struct outcome {
	int crashed;            /* the K-th call came (and killed, or failed) */
	uint64_t calls;         /* if not: the calls the process made */
	char call[CALL_MAX];    /* the call it died after, as logged */
	char fail[FAIL_MAX];    /* empty: every check held */
	char log[300];          /* the armed daemon's log */
	int ntrace;             /* the calls logged, in order ("NAME(FILE)") */
	char trace[TRACE_MAX][CALL_MAX];
};

static void failf(struct outcome *o, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void failf(struct outcome *o, const char *fmt, ...)
{
	size_t used = strlen(o->fail);
	va_list ap;

	if (used && used + 3 < sizeof(o->fail)) {
		memcpy(o->fail + used, "; ", 3);
		used += 2;
	}
	va_start(ap, fmt);
	vsnprintf(o->fail + used, sizeof(o->fail) - used, fmt, ap);
	va_end(ap);
}

/* The call of a log line "... is NAME(FILE) = RC[; SIGKILL ...]": its
 * NAME(FILE) into out. */
static void call_of(const char *p, char *out, size_t n)
{
	size_t len = strcspn(p, "\n;");
	const char *eq = memchr(p, '=', len);

	if (eq && eq > p + 1)
		len = (size_t)(eq - 1 - p);
	if (len >= n)
		len = n - 1;
	memcpy(out, p, len);
	out[len] = '\0';
}

/* Reads the daemon's log: the role's calls in order, and did its K-th
 * call come (and which was it), or how many calls did it make? 1
 * crashed, 0 not, -1 neither line is there (yet). */
static int drill_result(const struct it_daemon *d, const char *role, uint64_t k,
			struct outcome *o)
{
	char *log = malloc(LOG_MAX), pat[96];
	const char *p;
	size_t plen;
	int rc = -1;

	cr_assert_not_null(log);
	snprintf(o->log, sizeof(o->log), "%s", d->log);
	if (it_read_tail(d->log, log, LOG_MAX) < 0) {
		free(log);
		return -1;
	}
	plen = (size_t)snprintf(pat, sizeof(pat), "crash drill: %s call ", role);
	o->ntrace = 0;
	for (p = log; (p = strstr(p, pat)); p += plen) {
		char *is;
		uint64_t n = strtoull(p + plen, &is, 10);

		if (strncmp(is, " is ", 4) || n != (uint64_t)o->ntrace + 1 ||
		    o->ntrace == TRACE_MAX)
			continue;
		call_of(is + 4, o->trace[o->ntrace++], CALL_MAX);
		if (n == k) {
			size_t len = strcspn(is + 4, ";\n");

			if (len >= sizeof(o->call))
				len = sizeof(o->call) - 1;
			memcpy(o->call, is + 4, len);
			o->call[len] = '\0';
			o->crashed = 1;
			rc = 1;
		}
	}
	if (rc < 0) {
		snprintf(pat, sizeof(pat), "crash drill: %s made ", role);
		if ((p = strstr(log, pat))) {
			o->calls = strtoull(p + strlen(pat), NULL, 10);
			rc = 0;
		}
	}
	free(log);
	return rc;
}

static int wait_drill_result(const struct it_daemon *d, const char *role, uint64_t k,
			     struct outcome *o, int ms)
{
	int64_t deadline = it_now_ms() + ms;
	int rc;

	while ((rc = drill_result(d, role, k, o)) < 0 && it_now_ms() < deadline)
		it_sleep_ms(20);
	return rc;
}

/* --- the fill and the checks ------------------------------------------------- */

/* The fill: keys written in batches, one batch per round over a range
 * of them (so a compaction has garbage to drop); round FILL_ROUNDS - 1
 * deletes every eighth key. round[i]: the last round acknowledged for
 * key i, ver[i] the version it gave (0: it deleted the key); tried: the
 * last round sent, acknowledged or not (a batch is all or nothing, so a
 * key holds one of its rounds from round[i] to tried). */
struct fill {
	int keys;
	size_t vlen;
	int tried;
	int round[RESIZE_KEYS];
	uint64_t ver[RESIZE_KEYS];
};

static int fill_deletes(int i, int round)
{
	return round == FILL_ROUNDS - 1 && i % 8 == 0;
}

static void fill_key(char *buf, size_t n, int i)
{
	snprintf(buf, n, "f%05d", i);
}

/* One batch of keys [from, to) at round r: 0 when acknowledged, -1 if
 * not (a busy table's 503s are retried for a while). */
static int fill_batch(int port, struct fill *f, int from, int to, int r)
{
	size_t cap = (size_t)(to - from) * (f->vlen + 32) + 1, len = 0;
	char *body = malloc(cap), key[16], val[FILL_VAL + 64];
	struct it_resp resp;
	uint64_t v;
	int rc = -1;

	cr_assert_not_null(body);
	for (int i = from; i < to; i++) {
		fill_key(key, sizeof(key), i);
		if (fill_deletes(i, r)) {
			len += (size_t)snprintf(body + len, cap - len, "del %s\n", key);
		} else {
			value_for(val, sizeof(val), key, r, f->vlen);
			len += (size_t)snprintf(body + len, cap - len, "put %s %s\n", key, val);
		}
	}
	if (r > f->tried)
		f->tried = r;
	for (int tries = 0; tries < 400; tries++) {
		if (it_request(port, "POST", "/batch", NULL, body, len, &resp))
			break;
		if (resp.status == 200 && it_resp_version(&resp, &v) == 0) {
			for (int i = from; i < to; i++) {
				f->round[i] = r;
				f->ver[i] = fill_deletes(i, r) ? 0 : v;
			}
			rc = 0;
		}
		/* a table filling up answers 503 until it is rebuilt */
		if (resp.status != 503) {
			it_resp_free(&resp);
			break;
		}
		it_resp_free(&resp);
		it_sleep_ms(25);
	}
	free(body);
	return rc;
}

/* Rounds [r0, r1) over keys [0, keys): 0, or -1 at the first batch not
 * acknowledged. */
static int fill_rounds(int port, struct fill *f, int r0, int r1)
{
	int step = f->keys < RESIZE_BATCH ? f->keys : RESIZE_BATCH;

	for (int r = r0; r < r1; r++)
		for (int i = 0; i < f->keys; i += step)
			if (fill_batch(port, f, i, i + step < f->keys ? i + step : f->keys, r))
				return -1;
	return 0;
}

/* The fill of a run, before anything is armed to crash: asserts. */
static void fill_run(int port, struct fill *f, int keys, size_t vlen, int rounds)
{
	f->keys = keys;
	f->vlen = vlen;
	f->tried = -1;
	for (int i = 0; i < keys; i++)
		f->round[i] = -1;
	cr_assert_eq(fill_rounds(port, f, 0, rounds), 0, "the fill was refused");
}

/* GET path on c: the response, or -1 (reopening c next time). */
static int get(struct it_conn *c, int *open, int port, const char *path,
	       struct it_resp *r)
{
	if (!*open) {
		if (it_conn_open(c, port))
			return -1;
		*open = 1;
	}
	if (it_conn_request(c, "GET", path, NULL, NULL, 0, r)) {
		it_conn_close(c);
		*open = 0;
		return -1;
	}
	return 0;
}

/* Checks one tracked key; 0, or -1 with what is wrong in why. */
static int check_wkey(struct it_conn *c, int *open, int port, const char *name,
		      const struct wkey *k, char *why, size_t n)
{
	char path[64], val[WVAL + 64];
	struct it_resp r;
	int64_t round;
	uint64_t v = 0;
	int rc = 0;

	snprintf(path, sizeof(path), "/kv/%s", name);
	if (get(c, open, port, path, &r)) {
		snprintf(why, n, "GET %s: no response", path);
		return -1;
	}
	if (r.status == 404) {
		if (k->acked >= 0) {
			snprintf(why, n, "%s is gone (round %" PRId64 " was acknowledged)",
				 name, k->acked);
			rc = -1;
		}
	} else if (r.status != 200 || sscanf(r.body, "%*[^-]-r%" SCNd64 "-", &round) != 1 ||
		   it_resp_version(&r, &v)) {
		snprintf(why, n, "GET %s: %s", path, it_resp_brief(&r));
		rc = -1;
	} else if (round < k->acked || round > k->tried) {
		snprintf(why, n, "%s holds round %" PRId64 " (acknowledged %" PRId64
			 ", tried up to %" PRId64 ")", name, round, k->acked, k->tried);
		rc = -1;
	} else if (value_for(val, sizeof(val), name, round, WVAL) != (int)r.body_len ||
		   memcmp(val, r.body, r.body_len)) {
		snprintf(why, n, "%s: round %" PRId64 " with a wrong value", name, round);
		rc = -1;
	} else if (round == k->acked && v != k->ver) {
		snprintf(why, n, "%s: version %" PRIu64 ", acknowledged %" PRIu64, name, v,
			 k->ver);
		rc = -1;
	}
	it_resp_free(&r);
	return rc;
}

static int check_fill_key(struct it_conn *c, int *open, int port, const struct fill *f,
			  int i, char *why, size_t n)
{
	char key[16], path[64], val[FILL_VAL + 64];
	struct it_resp r;
	uint64_t v = 0;
	int round, rc = 0;

	fill_key(key, sizeof(key), i);
	snprintf(path, sizeof(path), "/kv/%s", key);
	if (get(c, open, port, path, &r)) {
		snprintf(why, n, "GET %s: no response", path);
		return -1;
	}
	if (r.status == 404) {
		/* only a delete acknowledged, or one tried since, leaves none */
		if (f->ver[i] && !(f->tried >= FILL_ROUNDS - 1 && f->round[i] < FILL_ROUNDS - 1 &&
				   fill_deletes(i, FILL_ROUNDS - 1))) {
			snprintf(why, n, "%s is gone (round %d, version %" PRIu64 " was "
				 "acknowledged)", key, f->round[i], f->ver[i]);
			rc = -1;
		}
	} else if (r.status != 200 || sscanf(r.body, "%*[^-]-r%d-", &round) != 1 ||
		   it_resp_version(&r, &v)) {
		snprintf(why, n, "GET %s: %s", path, it_resp_brief(&r));
		rc = -1;
	} else if (round < f->round[i] || round > f->tried || fill_deletes(i, round) ||
		   (round == f->round[i] && v != f->ver[i])) {
		snprintf(why, n, "%s holds round %d, version %" PRIu64 " (acknowledged: "
			 "round %d, version %" PRIu64 "; tried up to round %d)", key, round, v,
			 f->round[i], f->ver[i], f->tried);
		rc = -1;
	} else if (value_for(val, sizeof(val), key, round, f->vlen) != (int)r.body_len ||
		   memcmp(val, r.body, r.body_len)) {
		snprintf(why, n, "%s: round %d with a wrong value", key, round);
		rc = -1;
	}
	it_resp_free(&r);
	return rc;
}

/* Every acknowledged write of the fill (every key, or every stride-th
 * and the last 100) and of the writers; records what is wrong in o,
 * prefixed by when. 0 or -1. */
static int verify(int port, const struct fill *f, int stride, const struct acks *a,
		  struct outcome *o, const char *when)
{
	struct it_conn c;
	char why[512], name[16];
	int open = 0, bad = 0;

	for (int i = 0; i < f->keys; i++) {
		if (i % stride && i < f->keys - 100)
			continue;
		if (check_fill_key(&c, &open, port, f, i, why, sizeof(why)) && !bad++)
			failf(o, "%s: %s", when, why);
	}
	for (int i = 0; i < WKEYS; i++) {
		snprintf(name, sizeof(name), "w%d", i);
		if (check_wkey(&c, &open, port, name, &a->w[i], why, sizeof(why)) && !bad++)
			failf(o, "%s: %s", when, why);
	}
	if (check_wkey(&c, &open, port, "probe", &a->probe, why, sizeof(why)) && !bad++)
		failf(o, "%s: %s", when, why);
	if (open)
		it_conn_close(&c);
	if (bad > 1)
		failf(o, "%s: %d keys wrong in all", when, bad);
	return bad ? -1 : 0;
}

/* The daemon serves writes: a PUT succeeds within UNFREEZE_MS (busy
 * answers retried). 0 or -1. */
static int probe_write(int port, struct acks *a, struct outcome *o, const char *when)
{
	int64_t deadline = it_now_ms() + UNFREEZE_MS;
	struct it_conn c;
	int open = 0, rc;

	do {
		rc = put_tracked(&c, &open, port, "probe", &a->probe, a->probe.tried + 1);
		if (rc <= 0)
			it_sleep_ms(50);
	} while (rc <= 0 && it_now_ms() < deadline);
	if (open)
		it_conn_close(&c);
	if (rc <= 0)
		failf(o, "%s: no write succeeded for %d ms (writes stay frozen?)", when,
		      UNFREEZE_MS);
	return rc > 0 ? 0 : -1;
}

/* GET /admin/snapshot is served (a consistent cut exists). */
static void probe_snapshot(int port, struct outcome *o)
{
	struct it_resp r;

	if (it_request(port, "GET", "/admin/snapshot", NULL, NULL, 0, &r)) {
		failf(o, "GET /admin/snapshot: no response");
		return;
	}
	if (r.status != 200 || r.body_len < 64 || memcmp(r.body, "CASK", 4))
		failf(o, "GET /admin/snapshot: %s", it_resp_brief(&r));
	it_resp_free(&r);
}

/* The job's state now, into state: 1 if it ended (neither pending nor
 * running), 0 if not, -1 if it cannot be read. */
static int job_state(int port, uint64_t id, char *state, size_t n)
{
	struct it_resp r;
	char path[64];
	int rc = -1;

	snprintf(path, sizeof(path), "/admin/jobs/%" PRIu64, id);
	if (it_request(port, "GET", path, NULL, NULL, 0, &r))
		return -1;
	if (r.status == 200 && it_json_field(r.body, "state", state, n) == 0)
		rc = strcmp(state, "pending") && strcmp(state, "running");
	it_resp_free(&r);
	return rc;
}

/* The job's state once it ended, or "still ..." / "missing" after
 * JOB_WAIT_MS. */
static void job_final_state(int port, uint64_t id, char *state, size_t n)
{
	int64_t deadline = it_now_ms() + JOB_WAIT_MS;
	char last[32] = "missing";

	while (it_now_ms() < deadline) {
		int rc = job_state(port, id, state, n);

		if (rc == 1)
			return;
		if (rc == 0)
			snprintf(last, sizeof(last), "%s", state);
		it_sleep_ms(20);
	}
	if (strcmp(last, "missing"))
		snprintf(state, n, "still %s after %d ms", last, JOB_WAIT_MS);
	else
		snprintf(state, n, "missing");
}

/* --- daemons ------------------------------------------------------------------ */

/* Starts a daemon on dir with CASKD_CRASH_SYSCALL=spec (NULL: unarmed);
 * ready: waits for it to serve. 0 or -errno. */
static int start(struct it_daemon *d, const char *dir, const char *spec, int ready)
{
	int rc;

	if (spec)
		setenv("CASKD_CRASH_SYSCALL", spec, 1);
	rc = ready ? it_daemon_start(d, dir, WORKERS, NULL) :
		     it_daemon_spawn(d, dir, WORKERS, NULL);
	unsetenv("CASKD_CRASH_SYSCALL");
	return rc;
}

/* Stops d with SIGTERM; a failure unless it exits 0. */
static void stop_clean(struct it_daemon *d, struct outcome *o, const char *what)
{
	int st = it_daemon_stop(d);

	if (st < 0 || !WIFEXITED(st) || WEXITSTATUS(st) != 0) {
		failf(o, "%s: the graceful stop ended with wait status %#x", what, st);
		it_daemon_dump_log(d);
	}
	if (d->stragglers)
		failf(o, "%s: %d processes outlived the master", what, d->stragglers);
}

/* Starts an unarmed daemon on dir, checks everything, stops it. */
static void restart_and_verify(const char *dir, const struct fill *f, int stride,
			       const struct acks *a, struct outcome *o, const char *when)
{
	struct it_daemon d;

	if (start(&d, dir, NULL, 1)) {
		failf(o, "%s: the daemon does not start", when);
		it_daemon_dump_log(&d);
		it_daemon_kill9_all(&d);
		return;
	}
	verify(d.port, f, stride, a, o, when);
	stop_clean(&d, o, when);
}

static int copy_file(const char *from, const char *to)
{
	char buf[1 << 16];
	int in = open(from, O_RDONLY | O_CLOEXEC), out, rc = 0;
	ssize_t n;

	if (in < 0)
		return -errno;
	out = open(to, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0640);
	if (out < 0) {
		rc = -errno;
		close(in);
		return rc;
	}
	while ((n = read(in, buf, sizeof(buf))) != 0) {
		if (n < 0) {
			if (errno == EINTR)
				continue;
			rc = -errno;
			break;
		}
		for (ssize_t w = 0; w < n;) {
			ssize_t m = write(out, buf + w, (size_t)(n - w));
			if (m < 0 && errno == EINTR)
				continue;
			if (m <= 0) {
				rc = m < 0 ? -errno : -EIO;
				goto out;
			}
			w += m;
		}
	}
out:
	close(in);
	close(out);
	return rc;
}

/* The data directory as a kill -9 of the whole group now would leave
 * it: the group is stopped while its files are copied (the page cache
 * is what a restart reads). database.reserve is ballast that only has
 * to exist, left out (64 MiB). 0 or -errno. */
static int kill9_image(const struct it_daemon *d, const char *to)
{
	DIR *dir;
	struct dirent *e;
	int rc = 0;

	if (mkdir(to, 0750) < 0)
		return -errno;
	if (killpg(d->pid, SIGSTOP) < 0)
		return -errno;
	if (!(dir = opendir(d->dir))) {
		rc = -errno;
		goto out;
	}
	while (!rc && (e = readdir(dir))) {
		char from[600], dst[600];

		if (e->d_name[0] == '.' || !strncmp(e->d_name, "database.reserve", 16))
			continue;
		snprintf(from, sizeof(from), "%s/%s", d->dir, e->d_name);
		snprintf(dst, sizeof(dst), "%s/%s", to, e->d_name);
		rc = copy_file(from, dst);
	}
	closedir(dir);
out:
	killpg(d->pid, SIGCONT);
	return rc;
}

/* --- the sweep ---------------------------------------------------------------- */

/* What the K-th call does: kill the process, kill its whole process
 * group, or fail with EIO (not made) so that the error paths run. */
enum how { KILL, KILL_GROUP, FAIL_EIO };

static const char *const how_spec[] = { "", ":group", ":eio" };
static const char *const how_label[] = { "", " (whole group)", " (call fails with EIO)" };

struct run_ctx {
	uint64_t k;
	enum how how;
	char dir[300];     /* this run's directory: data/, image/, logs */
	char data[320];
};

typedef void (*run_fn)(struct run_ctx *rc, struct outcome *o);

static int full_mode(void)
{
	const char *s = getenv("CASKD_JOBCRASH_FULL");

	return s && *s && strcmp(s, "0");
}

static int quick_mode(void)
{
	const char *s = getenv("CASKD_JOBCRASH_QUICK");

	return s && *s && strcmp(s, "0") && !full_mode();
}

static uint64_t only_k(void)
{
	const char *s = getenv("CASKD_JOBCRASH_ONLY");

	return s && *s ? strtoull(s, NULL, 10) : 0;
}

/* Which K a sweep runs: every K up to dense_to, then every stride-th,
 * until a run ends without reaching its K. */
struct sample {
	uint64_t dense_to, stride;
	int by_call;   /* a point is a call after a call, whichever
			* occurrence (for sweeps of long runs of the same
			* calls) */
};

/* A crash point: a call as logged (NAME(FILE)) and, in full mode, which
 * occurrence of it in its run. The number of calls before a point can
 * vary from run to run (a compaction makes one catch-up pass or three,
 * as writes come), so the K that reaches it is learnt from the runs'
 * logs, and a point no K of the sweep happened to hit is aimed at again
 * from where it was seen. */
#define SITES_MAX 1024
#define AIMS 6          /* runs aimed at a point before giving up */

struct site {
	char name[CALL_MAX + 16];
	int hit;               /* it was the K-th call of a run */
	uint64_t seen_at;      /* K where a run first saw it */
};

struct sweep {
	const char *kind;
	enum how how;
	int by_call;
	run_fn fn;
	struct site *sites;
	int nsites;
	uint64_t calls, runs, failed;
	char summary[8192];
	size_t used;
};

static struct site *site_get(struct sweep *sw, const char *name)
{
	for (int i = 0; i < sw->nsites; i++)
		if (!strcmp(sw->sites[i].name, name))
			return &sw->sites[i];
	cr_assert_lt(sw->nsites, SITES_MAX, "%s: too many crash points", sw->kind);
	snprintf(sw->sites[sw->nsites].name, sizeof(sw->sites[0].name), "%s", name);
	return &sw->sites[sw->nsites++];
}

static void site_name(const struct sweep *sw, const struct outcome *o, int i,
		      char *name, size_t n)
{
	int occ = 1;

	for (int j = 0; j < i; j++)
		occ += !strcmp(o->trace[j], o->trace[i]);
	if (sw->by_call)
		snprintf(name, n, "%s after %s", o->trace[i], i ? o->trace[i - 1] : "the start");
	else
		snprintf(name, n, "%s #%d", o->trace[i], occ);
}

/* Learns the run's calls up to its K-th (those after a call made to
 * fail are its error path's, never a K-th themselves): each is a point
 * seen at its K. Returns where (K) the point aim came in this run, 0 if
 * it did not. */
static uint64_t learn(struct sweep *sw, const struct outcome *o, uint64_t k,
		      const char *aim)
{
	int n = o->crashed && k < (uint64_t)o->ntrace ? (int)k : o->ntrace;
	uint64_t aim_at = 0;

	for (int i = 0; i < n; i++) {
		char name[CALL_MAX + 16];
		struct site *st;

		site_name(sw, o, i, name, sizeof(name));
		st = site_get(sw, name);
		if (!st->seen_at)
			st->seen_at = (uint64_t)i + 1;
		if (o->crashed && (uint64_t)i + 1 == k)
			st->hit = 1;
		if (aim && !aim_at && !strcmp(name, aim))
			aim_at = (uint64_t)i + 1;
	}
	return aim_at;
}

/* For a failed run: what the armed daemon warned about, but the drill's
 * own list of calls. */
static void print_warnings(const char *path)
{
	char *log = malloc(LOG_MAX);

	cr_assert_not_null(log);
	if (path[0] && it_read_tail(path, log, LOG_MAX) >= 0)
		for (char *line = strtok(log, "\n"); line; line = strtok(NULL, "\n"))
			if ((strstr(line, " warn: ") || strstr(line, " error: ")) &&
			    !(strstr(line, "crash drill: ") && !strstr(line, "; ")))
				fprintf(stderr, "jobcrash:     | %s\n", line);
	free(log);
}

/* One run at K: its own directory, removed afterwards; reports it.
 * Returns whether it crashed; *aim_at: where the point aim came in it
 * (0: not before the crash). */
static int run_one(struct sweep *sw, uint64_t k, const char *aim, uint64_t *aim_at)
{
	struct outcome *o = calloc(1, sizeof(*o));
	struct run_ctx rc = { .k = k, .how = sw->how };
	int64_t t0 = it_now_ms();
	uint64_t at;
	int crashed;

	cr_assert_not_null(o);
	cr_assert_lt(++sw->runs, MAX_RUNS, "%s: the sweep does not end", sw->kind);
	snprintf(rc.dir, sizeof(rc.dir), "%s/k%" PRIu64 "-%" PRIu64, base, k, sw->runs);
	snprintf(rc.data, sizeof(rc.data), "%s/data", rc.dir);
	cr_assert_eq(mkdir(rc.dir, 0750), 0);
	sw->fn(&rc, o);
	at = learn(sw, o, k, aim);
	if (aim_at)
		*aim_at = at;
	if (!o->crashed)
		sw->calls = o->calls;
	if (o->fail[0]) {
		sw->failed++;
		if (sw->used < sizeof(sw->summary))
			sw->used += (size_t)snprintf(sw->summary + sw->used,
						     sizeof(sw->summary) - sw->used,
						     "\n  K=%" PRIu64 " %s: %s", k,
						     o->crashed ? o->call : "(not reached)",
						     o->fail);
	}
	fprintf(stderr, "jobcrash: %s%s K=%" PRIu64 "%s%s: %s%s%s (%.1f s)\n", sw->kind,
		how_label[sw->how], k, aim ? ", aiming at " : "",
		aim ? aim : "", o->crashed ? o->call : "not reached",
		o->fail[0] ? ": FAILED: " : ": ok", o->fail,
		(double)(it_now_ms() - t0) / 1000);
	if (o->fail[0])
		print_warnings(o->log);
	it_rmrf(rc.dir);
	crashed = o->crashed;
	free(o);
	return crashed;
}

/* Aims runs at a point seen but not hit yet: K where it was seen, then
 * where the last aimed run saw it, or one further if it came later. */
static void aim_at_site(struct sweep *sw, struct site *st)
{
	uint64_t k = st->seen_at;

	for (int tries = 0; tries < AIMS && !st->hit && k; tries++) {
		uint64_t at = 0;
		char aim[sizeof(st->name)];

		snprintf(aim, sizeof(aim), "%s", st->name);
		if (!run_one(sw, k, aim, &at))
			k = k > 1 ? k - 1 : 0; /* the run was shorter than K */
		else
			k = at && at != k ? at : k + 1;
	}
}

static uint64_t next_k(const struct sample *s, uint64_t k)
{
	return k < s->dense_to || !s->stride ? k + 1 : k + s->stride;
}

/* Runs K along the sample until a run ends without reaching its K, then
 * aims again at every point seen but not hit; reports every run; fails
 * the test if any run failed. */
static void sweep(const char *kind, run_fn fn, enum how how, struct sample s)
{
	struct sweep sw = { .kind = kind, .how = how, .fn = fn };
	int hit = 0, missed = 0;

	if (full_mode())
		s = (struct sample){ UINT64_MAX, 0, 0 };
	else if (quick_mode())
		s = (struct sample){ s.dense_to < 4 ? s.dense_to : 4,
				     s.stride > 3 ? s.stride : 3, 1 };
	sw.by_call = s.by_call;
	sw.sites = calloc(SITES_MAX, sizeof(*sw.sites));
	cr_assert_not_null(sw.sites);
	cr_assert_eq(it_tmpdir(base, sizeof(base)), 0);
	if (only_k()) {
		run_one(&sw, only_k(), NULL, NULL);
	} else {
		for (uint64_t k = 1; run_one(&sw, k, NULL, NULL); k = next_k(&s, k))
			;
		for (int i = 0; i < sw.nsites; i++)
			if (!sw.sites[i].hit)
				aim_at_site(&sw, &sw.sites[i]);
	}
	for (int i = 0; i < sw.nsites; i++) {
		hit += sw.sites[i].hit;
		if (!sw.sites[i].hit && !only_k()) {
			missed++;
			fprintf(stderr, "jobcrash: %s%s: no run's K-th call was %s\n", kind,
				how_label[how], sw.sites[i].name);
		}
	}
	fprintf(stderr, "jobcrash: %s%s: %" PRIu64 " calls through engine/io in a whole "
		"run; %d distinct crash points%s, %d hit, %d missed; %" PRIu64 " runs, %"
		PRIu64 " failed\n", kind, how_label[how], sw.calls, sw.nsites,
		sw.by_call ? " (call after call)" : " (call and occurrence)", hit, missed, sw.runs,
		sw.failed);
	free(sw.sites);
	cr_assert_eq(sw.failed, 0, "%s%s: %" PRIu64 " of %" PRIu64 " runs failed:%s", kind,
		     how_label[how], sw.failed, sw.runs, sw.summary);
	it_assert_no_leaks();
}

/* --- after a job ended ---------------------------------------------------------- */

/* A job ran in d (armed with job:K or job:K:eio) while writer w wrote,
 * and state is how it ended: the checks of every kill (or failed call).
 * stride: which fill keys are read back. */
static void after_job(struct run_ctx *rc, struct it_daemon *d, const char *state,
		      struct fill *f, int stride, struct acks *a, pid_t w,
		      struct outcome *o)
{
	char image[340];
	int r = wait_drill_result(d, "job", rc->k, o, 5000);

	if (r < 0)
		failf(o, "the job ended (%s) without reaching K or saying how many calls "
		      "it made", state);
	if (strcmp(state, "failed") && strcmp(state, "done"))
		failf(o, "the job did not end: %s", state);
	if (r == 0 && strcmp(state, "done"))
		failf(o, "a job that was not killed ended %s", state);
	/* the daemon goes on serving writes, the writer's too */
	probe_write(d->port, a, o, "after the K-th call");
	if (writer_wait(a, 3, UNFREEZE_MS))
		failf(o, "after the K-th call: the writer got no acknowledgement for %d ms",
		      UNFREEZE_MS);
	writer_stop(a, w);
	verify(d->port, f, stride, a, o, "online after the K-th call");
	probe_snapshot(d->port, o);

	snprintf(image, sizeof(image), "%s/image", rc->dir);
	if ((r = kill9_image(d, image)))
		failf(o, "copying the directory: %s", strerror(-r));
	stop_clean(d, o, "graceful stop after the K-th call");
	restart_and_verify(rc->data, f, stride, a, o, "after a graceful stop and a restart");
	if (!r)
		restart_and_verify(image, f, stride, a, o,
				   "after kill -9 of the group and a restart");
}

/* --- compaction ----------------------------------------------------------------- */

/* With ROLE:K:group: 1 once the group died, 0 once the job ended
 * (state: how), whichever comes first. */
static int group_dies_or_job_ends(struct it_daemon *d, uint64_t id, char *state,
				  size_t n)
{
	int64_t deadline = it_now_ms() + JOB_WAIT_MS;

	snprintf(state, n, "missing");
	while (it_now_ms() < deadline) {
		if (it_daemon_wait_exit(d, 0) == 0)
			return 1;
		if (job_state(d->port, id, state, n) == 1)
			return 0;
		it_sleep_ms(20);
	}
	return it_daemon_wait_exit(d, 0) == 0;
}

static void run_compact(struct run_ctx *rc, struct outcome *o)
{
	static struct fill f;
	struct acks *a = acks_new();
	struct it_daemon d;
	char spec[64], state[96];
	uint64_t id;
	pid_t w;

	snprintf(spec, sizeof(spec), "job:%" PRIu64 "%s", rc->k, how_spec[rc->how]);
	cr_assert_eq(start(&d, rc->data, spec, 1), 0, "caskd with %s did not start", spec);
	fill_run(d.port, &f, FILL_KEYS, FILL_VAL, FILL_ROUNDS);
	w = writer_start(a, d.port);
	if (writer_wait(a, ACKS_BEFORE_JOB, UNFREEZE_MS))
		failf(o, "the writer got no acknowledgement before the job");
	id = it_compact_start(d.port, NULL);

	if (rc->how != KILL_GROUP) {
		job_final_state(d.port, id, state, sizeof(state));
		after_job(rc, &d, state, &f, 1, a, w, o);
	} else if (group_dies_or_job_ends(&d, id, state, sizeof(state))) {
		/* the group died at the K-th call */
		writer_stop(a, w);
		if (wait_drill_result(&d, "job", rc->k, o, 1000) != 1)
			failf(o, "the group died, but not at the crash point (wait status "
			      "%#x)", d.status);
		restart_and_verify(rc->data, &f, 1, a, o, "after the group was killed");
	} else {
		/* or the job ended without reaching K */
		writer_stop(a, w);
		if (wait_drill_result(&d, "job", rc->k, o, 5000) != 0)
			failf(o, "the job ended (%s) without reaching K or saying so", state);
		if (strcmp(state, "done"))
			failf(o, "a compaction that was not killed ended %s", state);
		verify(d.port, &f, 1, a, o, "online");
		stop_clean(&d, o, "stop");
		restart_and_verify(rc->data, &f, 1, a, o, "after a graceful stop");
	}
	it_shared_free(a, sizeof(*a));
}

Test(it_jobcrash, compaction_killed_at_every_call)
{
	sweep("compaction", run_compact, KILL, (struct sample){ UINT64_MAX, 0, 0 });
}

Test(it_jobcrash, compaction_whole_group_killed_at_every_call)
{
	sweep("compaction", run_compact, KILL_GROUP, (struct sample){ UINT64_MAX, 0, 1 });
}

Test(it_jobcrash, compaction_call_fails_at_every_call)
{
	sweep("compaction", run_compact, FAIL_EIO, (struct sample){ UINT64_MAX, 0, 0 });
}

/* --- table rebuild ---------------------------------------------------------------- */

static double metric_of(int port, const char *name)
{
	struct it_resp r;
	double v = -1;

	if (it_request(port, "GET", "/metrics", NULL, NULL, 0, &r))
		return -1;
	if (r.status != 200 || it_metric_value(r.body, name, 0, &v))
		v = -1;
	it_resp_free(&r);
	return v;
}

/* Keys inserted past 7/10 of the table's 16384 slots: writers ask the
 * master for a rebuild, which forks it as job 1. */
static void run_resize(struct run_ctx *rc, struct outcome *o)
{
	static struct fill f;
	struct acks *a = acks_new();
	struct it_daemon d;
	char spec[64], state[96];
	pid_t w;

	snprintf(spec, sizeof(spec), "job:%" PRIu64, rc->k);
	cr_assert_eq(start(&d, rc->data, spec, 1), 0, "caskd with %s did not start", spec);
	w = writer_start(a, d.port);
	if (writer_wait(a, ACKS_BEFORE_JOB, UNFREEZE_MS))
		failf(o, "the writer got no acknowledgement before the job");
	f.keys = RESIZE_KEYS;
	fill_run(d.port, &f, RESIZE_KEYS, 16, 1);
	job_final_state(d.port, 1, state, sizeof(state));
	if (!strcmp(state, "done") && metric_of(d.port, "caskd_index_slots") <= 16384)
		failf(o, "the rebuild is done, but the table did not grow");
	after_job(rc, &d, state, &f, 16, a, w, o);
	it_shared_free(a, sizeof(*a));
}

Test(it_jobcrash, table_rebuild_killed_at_every_call)
{
	sweep("table rebuild", run_resize, KILL, (struct sample){ UINT64_MAX, 0, 0 });
}

/* --- database.idx at a clean stop ----------------------------------------------- */

/* SIGTERM while the writer writes: the master, its workers stopped,
 * trims database.bin and writes database.idx, and dies at its K-th
 * call. What a restart finds must hold every acknowledged write; and
 * once more after a clean stop of that restart. */
static void run_stop(struct run_ctx *rc, struct outcome *o)
{
	static struct fill f;
	struct acks *a = acks_new();
	struct it_daemon d;
	char spec[64];
	pid_t w;
	int st, r;

	snprintf(spec, sizeof(spec), "stop:%" PRIu64 "%s", rc->k, how_spec[rc->how]);
	cr_assert_eq(start(&d, rc->data, spec, 1), 0, "caskd with %s did not start", spec);
	fill_run(d.port, &f, FILL_KEYS, FILL_VAL, FILL_ROUNDS);
	w = writer_start(a, d.port);
	if (writer_wait(a, 3 * ACKS_BEFORE_JOB, UNFREEZE_MS))
		failf(o, "the writer got no acknowledgement");
	st = it_daemon_stop(&d);
	writer_stop(a, w);
	r = wait_drill_result(&d, "stop", rc->k, o, 1000);
	if (r < 0)
		failf(o, "the master stopped (wait status %#x) without reaching K or saying "
		      "how many calls it made", st);
	else if (r == 1 && rc->how == KILL && !(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL))
		failf(o, "the master reached K but ended with wait status %#x", st);
	else if ((r == 0 || rc->how == FAIL_EIO) && !(WIFEXITED(st) && WEXITSTATUS(st) == 0))
		failf(o, "the master was not killed, but ended with wait status %#x", st);
	restart_and_verify(rc->data, &f, 1, a, o, "after the master was killed in its stop");
	restart_and_verify(rc->data, &f, 1, a, o, "after a clean stop of that restart");
	it_shared_free(a, sizeof(*a));
}

Test(it_jobcrash, index_write_at_clean_stop_killed_at_every_call)
{
	sweep("database.idx at a clean stop", run_stop, KILL, (struct sample){ UINT64_MAX, 0, 0 });
}

Test(it_jobcrash, index_write_at_clean_stop_call_fails_at_every_call)
{
	sweep("database.idx at a clean stop", run_stop, FAIL_EIO,
	      (struct sample){ UINT64_MAX, 0, 0 });
}

/* --- the reserve file and the zeros ahead of the tail ----------------------------- */

/* A directory with data and no database.reserve: the armed master makes
 * it in its first tick, then keeps zeros ahead of the tail while the
 * writer and batches from here grow the log by SPACE_GROW_ROUNDS rounds
 * of the fill. The master dies at its K-th call in that work; its
 * workers follow it (they stop when the master is gone). */
#define SPACE_GROW_ROUNDS 24

static void run_space(struct run_ctx *rc, struct outcome *o)
{
	static struct fill f;
	struct acks *a = acks_new();
	struct it_daemon d;
	char spec[64], reserve[400];
	pid_t w = -1;
	int r;

	cr_assert_eq(start(&d, rc->data, NULL, 1), 0, "caskd did not start");
	fill_run(d.port, &f, FILL_KEYS, FILL_VAL, FILL_ROUNDS);
	/* the master makes the reserve in a tick of its own */
	snprintf(reserve, sizeof(reserve), "%s/database.reserve", rc->data);
	for (int64_t end = it_now_ms() + 5000; access(reserve, F_OK) && it_now_ms() < end;)
		it_sleep_ms(20);
	stop_clean(&d, o, "the stop before the drill");
	cr_assert_eq(unlink(reserve), 0, "%s: %s (the master makes it only while the "
		     "file system has twice its size free)", reserve, strerror(errno));

	snprintf(spec, sizeof(spec), "space:%" PRIu64 "%s", rc->k, how_spec[rc->how]);
	cr_assert_eq(start(&d, rc->data, spec, 0), 0, "caskd with %s did not start", spec);
	if (it_daemon_wait_ready(&d, IT_START_TIMEOUT_MS) == 0) {
		w = writer_start(a, d.port);
		/* every round a batch over all keys: ~64 KiB more log */
		fill_rounds(d.port, &f, FILL_ROUNDS, FILL_ROUNDS + SPACE_GROW_ROUNDS);
	}
	/* the master is dead by now, or goes on and is stopped */
	r = wait_drill_result(&d, "space", rc->k, o, 200);
	if (r != 1 && it_daemon_wait_exit(&d, 0) == -ETIMEDOUT) {
		stop_clean(&d, o, "stop");
		r = wait_drill_result(&d, "space", rc->k, o, 1000);
	} else {
		it_daemon_kill9_all(&d); /* whatever of the group is left */
	}
	if (w > 0)
		writer_stop(a, w);
	if (r < 0)
		failf(o, "the master neither reached K nor said how many calls it made");
	restart_and_verify(rc->data, &f, 1, a, o, "after the master was killed");
	it_shared_free(a, sizeof(*a));
}

Test(it_jobcrash, reserve_and_prezero_killed_at_every_call)
{
	sweep("database.reserve and the zeros ahead", run_space, KILL,
	      (struct sample){ 8, 11, 1 });
}
