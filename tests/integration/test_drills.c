/* tests/integration/test_drills.c — crash and fault drills against the real
 * daemon (docs/failpoints.md points here).
 *
 *   1. kill -9 of single workers under write load: each is replaced within
 *      1 s, clients keep going, every acknowledged write is readable at once.
 *   2. kill -9 of the whole process group under write load (group and
 *      periodic fsync): every acknowledged write survives a restart.
 *   3. a crash at each failpoint; ENOSPC on a write and EIO on an fdatasync
 *      by failpoint.
 *   4. a log range a killed worker reserved and never wrote is wiped: never
 *      served, never in the way of recovery.
 *   5. torn tails: garbage appended, the last record cut in half.
 *   6. a damaged record in the middle: caskd refuses to start and names the
 *      offset; `caskd check` reports it, `caskd check --repair` drops it.
 *   7. a real full disk (a 2 MiB tmpfs): 507, nothing partial, writes
 *      again once room is made, restarts (also while still full).
 *
 * The load model (drills 1-3): NCLIENTS client processes; client i writes
 * keys client-<i>-<n> (new keys and overwrites of its own keys) and
 * increments one shared counter. Every value names its key and a per-client
 * attempt number, so a value read later tells which attempt wrote it. A
 * client records in shared memory, per key, the last attempt acknowledged
 * (2xx) and the last one sent; the value found later must come from an
 * attempt between the two (a write sent but not answered may or may not
 * have landed) and carry the acknowledged version if it is that attempt.
 * A connection error or a 503 is "not acknowledged": the client reconnects
 * and retries with a new attempt. No answer within the harness's 10 s socket
 * timeout is a hang, and fails the drill.
 *
 * Failpoints are armed through CASKD_FAILPOINTS in the daemon's environment
 * (set around it_daemon_start only; restarts run unarmed). The master passes
 * io.write and the sync points itself (lock file pid, durable mark and
 * fdatasyncs while it recovers, prepared space on its timer), so the ENOSPC
 * and EIO drills start on a data dir made beforehand, which keeps the
 * master's start-up passes below the armed one, and the crash drills
 * accept the master itself being the process the failpoint kills: the
 * daemon is then restarted and must recover (docs/failpoints.md: "or the
 * restarted daemon recovers").
 */
#include <criterion/criterion.h>
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "engine/record.h"
#include "tests/integration/harness.h"
#include "tests/integration/it_assert.h"

#define NCLIENTS 3
#define MAXK 1024              /* keys per client */
#define MAXINCR 4096           /* acknowledged incr results kept per client */
#define VAL_MAX 256
#define COUNTER "drill-counter"
#define KILLS 6                /* drill 1: workers killed one by one */
#define KILL_EVERY_MS 300
#define REPLACE_WITHIN_MS 1000 /* a killed worker must be replaced this fast */
#define AFTER_KILLS_MS 700     /* load that must go on after the last kill */
#define GROUP_KILL_AFTER_MS 800
#define FP_OPS 10              /* drill 3: acknowledged ops per client */
#define LOG_MAX (256 * 1024)
#define MAX_CHILDREN 64
#define CHECK_TIMEOUT_MS 10000
#define EXIT_WAIT_MS 5000      /* "promptly" for a daemon that must refuse */

TestSuite(it_drills, .init = it_setup, .fini = it_teardown);

static struct it_daemon d;
static char base[64];

/* A periodic sync slower than any drill: acknowledged writes sit in the
 * page cache only. */
static const char *const periodic[] = { "--fsync", "periodic",
					"--fsync-interval-ms", "10000", NULL };

/* ---- small helpers -------------------------------------------------------- */

static uint64_t rng_next(uint64_t *s)
{
	uint64_t x = *s;

	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	return *s = x;
}

static void data_dir_of(char *out, size_t n)
{
	snprintf(out, n, "%s/data", base);
}

/* Reads the tail of the daemon's log (the whole of it for a drill). */
static char *read_log(const struct it_daemon *dm)
{
	char *buf = malloc(LOG_MAX);

	cr_assert_not_null(buf);
	if (it_read_tail(dm->log, buf, LOG_MAX) < 0)
		buf[0] = '\0';
	return buf;
}

/* Waits up to ms for the log to contain s; 1 if it does. */
static int log_has(const struct it_daemon *dm, const char *s, int ms)
{
	int64_t deadline = it_now_ms() + ms;

	for (;;) {
		char *log = read_log(dm);
		int found = strstr(log, s) != NULL;

		free(log);
		if (found)
			return 1;
		if (it_now_ms() >= deadline)
			return 0;
		it_sleep_ms(20);
	}
}

static double metric(int port, const char *name)
{
	char *text = it_get_metrics(port);
	double v = -1;
	int rc = it_metric_value(text, name, 1, &v);

	cr_assert_eq(rc, 0, "/metrics has no %s:\n%.2000s", name, text);
	free(text);
	return v;
}

/* Runs `caskd check [--repair] dir`; returns the exit status, fills out. */
static int run_check(const char *dir, int repair, char *out, size_t outn,
		     char *err, size_t errn)
{
	const char *bin = getenv("CASKD_BIN");
	const char *argv[5];
	int n = 0, st = 0, rc;

	argv[n++] = bin;
	argv[n++] = "check";
	if (repair)
		argv[n++] = "--repair";
	argv[n++] = dir;
	argv[n] = NULL;
	rc = it_run_capture(argv, CHECK_TIMEOUT_MS, out, outn, err, errn, &st);
	cr_assert_eq(rc, 0, "caskd check%s %s: %s", repair ? " --repair" : "",
		     dir, strerror(-rc));
	cr_assert(WIFEXITED(st), "caskd check%s %s: killed by signal %d",
		  repair ? " --repair" : "", dir, WTERMSIG(st));
	return WEXITSTATUS(st);
}

/* After a drill and a clean stop: the file is one caskd opens as is. */
static void assert_check_ok(const char *dir)
{
	char out[8192], err[4096];
	int st = run_check(dir, 0, out, sizeof(out), err, sizeof(err));

	cr_assert_eq(st, 0, "caskd check %s after the drill: exit %d, want 0 "
		     "(no corruption)\nstdout:\n%s\nstderr:\n%s", dir, st, out,
		     err);
	cr_assert(strstr(out, "CORRUPT") == NULL, "caskd check %s found "
		  "corruption after the drill:\n%s", dir, out);
}

/* Polls GET /healthz until 200; connection errors and 503 are waited out. */
static int wait_healthy(int port, int ms)
{
	int64_t deadline = it_now_ms() + ms;

	while (it_now_ms() < deadline) {
		struct it_resp r;

		if (it_request(port, "GET", "/healthz", NULL, NULL, 0, &r) == 0) {
			int st = r.status;

			it_resp_free(&r);
			if (st == 200)
				return 0;
		}
		it_sleep_ms(20);
	}
	return -ETIMEDOUT;
}

/* Children of pid (its workers, for a master). */
static int list_children(pid_t pid, pid_t *out, int max)
{
	char path[64], buf[4096];
	int fd, n = 0;
	ssize_t got;

	snprintf(path, sizeof(path), "/proc/%d/task/%d/children", (int)pid,
		 (int)pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd >= 0) {
		got = read(fd, buf, sizeof(buf) - 1);
		close(fd);
		if (got < 0)
			return -errno;
		buf[got] = '\0';
		for (char *p = buf; *p && n < max;) {
			char *end;
			long v = strtol(p, &end, 10);

			if (end == p)
				break;
			out[n++] = (pid_t)v;
			p = end;
			while (*p == ' ' || *p == '\n')
				p++;
		}
		return n;
	}
	/* No CONFIG_PROC_CHILDREN: scan /proc for the parent pid. */
	{
		DIR *dir = opendir("/proc");
		struct dirent *e;

		if (!dir)
			return -errno;
		while ((e = readdir(dir)) && n < max) {
			char sp[300], sb[512], *rp;
			int pfd, ppid;
			ssize_t k;

			if (!isdigit((unsigned char)e->d_name[0]))
				continue;
			snprintf(sp, sizeof(sp), "/proc/%s/stat", e->d_name);
			pfd = open(sp, O_RDONLY | O_CLOEXEC);
			if (pfd < 0)
				continue;
			k = read(pfd, sb, sizeof(sb) - 1);
			close(pfd);
			if (k <= 0)
				continue;
			sb[k] = '\0';
			rp = strrchr(sb, ')');
			if (rp && sscanf(rp + 2, "%*c %d", &ppid) == 1 &&
			    ppid == (int)pid)
				out[n++] = (pid_t)atoi(e->d_name);
		}
		closedir(dir);
		return n;
	}
}

static int has_pid(const pid_t *v, int n, pid_t p)
{
	for (int i = 0; i < n; i++)
		if (v[i] == p)
			return 1;
	return 0;
}

/* ---- the load model --------------------------------------------------------- */

struct kst {
	int32_t acked;  /* attempt acknowledged last; 0: none */
	int32_t sent;   /* attempt sent last; 0: never */
	uint64_t ver;   /* version of the acknowledged attempt */
};

struct cstate {
	struct kst k[MAXK];
	int nkeys;
	int64_t acked_ops;
	int64_t unacked;        /* connection errors and 503s */
	int64_t n503;
	int64_t after_mark;     /* acknowledged ops sent after load.mark_ms */
	int64_t incr_sent;
	int64_t incr_acked;
	int64_t incr_vals[MAXINCR];
	int nincr_vals;
	int64_t max_lat_ms;
	uint64_t max_ver;
};

struct load {
	volatile int port;      /* moves if the drill restarts the daemon */
	pid_t master;
	int workers;
	int max_ops;            /* acknowledged ops per client; 0: until stop */
	int pause_us;
	int64_t deadline_ms;    /* a client still running then fails */
	volatile int stop;
	volatile int killed;    /* the whole group was SIGKILLed */
	volatile int64_t mark_ms;
	/* drill 1: what the killer saw */
	pid_t victim[KILLS];
	int64_t replace_ms[KILLS]; /* -1: not replaced within 2 s */
	struct cstate c[NCLIENTS];
};

enum op_kind { OP_NEW, OP_OVER, OP_INCR };

static struct load *load_new(int port, pid_t master, int workers)
{
	struct load *x = it_shared_alloc(sizeof(*x));

	cr_assert_not_null(x, "it_shared_alloc(%zu)", sizeof(*x));
	x->port = port;
	x->master = master;
	x->workers = workers;
	x->deadline_ms = it_now_ms() + 40000;
	return x;
}

static void load_free(struct load *x)
{
	it_shared_free(x, sizeof(*x));
}

/* The value attempt att writes to client-<ci>-<n>: self-describing. */
static size_t gen_value(int ci, int n, int32_t att, char *buf)
{
	int h = snprintf(buf, VAL_MAX, "client-%d-%d:%" PRId32 ":", ci, n, att);
	size_t len = (size_t)h + (size_t)((att * 37) % 150);

	for (size_t j = (size_t)h; j < len; j++)
		buf[j] = (char)('a' + (j * 7 + (size_t)att) % 26);
	return len;
}

static void pick_op(struct cstate *cs, unsigned step, int *op, int *key)
{
	if (step % 5 == 4) {
		*op = OP_INCR;
		*key = -1;
	} else if ((step % 5 == 2 && cs->nkeys > 0) || cs->nkeys == MAXK) {
		*op = OP_OVER;
		*key = (int)((step * 2654435761u) % (unsigned)cs->nkeys);
	} else {
		*op = OP_NEW;
		*key = cs->nkeys++;
	}
}

/* One client process: writes until stop (or max_ops acknowledged). */
static void client_run(int idx, void *arg)
{
	struct load *x = arg;
	struct cstate *cs = &x->c[idx];
	struct it_conn c;
	int connected = 0, op = -1, key = -1;
	unsigned step = 0;
	int32_t att = 0;

	while (!x->stop && (!x->max_ops || cs->acked_ops < x->max_ops)) {
		char path[64], val[VAL_MAX];
		const char *method;
		size_t len = 0;
		struct it_resp r;
		uint64_t ver = 0;
		int64_t t0, lat;
		int rc;

		if (it_now_ms() > x->deadline_ms)
			it_child_fail("client %d: only %" PRId64 " ops acknowledged "
				      "by the drill's deadline", idx, cs->acked_ops);
		if (!connected) {
			rc = it_conn_open(&c, x->port);
			if (rc < 0) {
				if (x->killed)
					break;
				if (rc == -ETIMEDOUT)
					it_child_fail("connect: no answer within "
						      "%d ms", IT_IO_TIMEOUT_MS);
				it_sleep_ms(5);
				continue;
			}
			connected = 1;
		}
		if (op < 0)
			pick_op(cs, step, &op, &key);
		att++;
		if (op == OP_INCR) {
			method = "POST";
			snprintf(path, sizeof(path), "/incr/%s", COUNTER);
			cs->incr_sent++;
		} else {
			method = "PUT";
			snprintf(path, sizeof(path), "/kv/client-%d-%d", idx, key);
			len = gen_value(idx, key, att, val);
			cs->k[key].sent = att;
		}
		t0 = it_now_ms();
		rc = it_conn_request(&c, method, path, NULL,
				     op == OP_INCR ? NULL : val, len, &r);
		lat = it_now_ms() - t0;
		if (lat > cs->max_lat_ms)
			cs->max_lat_ms = lat;
		if (rc == -ETIMEDOUT)
			it_child_fail("%s %s: no response within %d ms: the "
				      "daemon hangs", method, path,
				      IT_IO_TIMEOUT_MS);
		if (rc < 0) { /* reset or EOF: not acknowledged */
			cs->unacked++;
			it_conn_close(&c);
			connected = 0;
			if (x->killed)
				break;
			continue;
		}
		if (r.status == 503) {
			if (!it_is_json_error(&r, NULL))
				it_child_fail("%s %s: 503 without a JSON error: %s",
					      method, path, it_resp_brief(&r));
			cs->unacked++;
			cs->n503++;
			it_resp_free(&r);
			if (x->killed)
				break;
			it_sleep_ms(2);
			continue;
		}
		if (op == OP_INCR) {
			int64_t v;

			if (r.status != 200 || it_body_int64(&r, &v) < 0 ||
			    it_resp_version(&r, &ver) < 0)
				it_child_fail("POST %s: want 200, the new value "
					      "and an ETag; got %s", path,
					      it_resp_brief(&r));
			cs->incr_acked++;
			if (cs->nincr_vals < MAXINCR)
				cs->incr_vals[cs->nincr_vals++] = v;
		} else {
			struct kst *k = &cs->k[key];

			if ((r.status != 201 && r.status != 204) ||
			    it_resp_version(&r, &ver) < 0)
				it_child_fail("PUT %s: want 201 or 204 with an "
					      "ETag, got %s", path,
					      it_resp_brief(&r));
			if (k->acked && r.status == 201)
				it_child_fail("PUT %s: 201 Created, but attempt "
					      "%" PRId32 " (version %" PRIu64 ") "
					      "was acknowledged before: an "
					      "acknowledged write was lost",
					      path, k->acked, k->ver);
			if (k->acked && ver <= k->ver)
				it_child_fail("PUT %s: version %" PRIu64 " is not "
					      "above the previous acknowledged "
					      "%" PRIu64, path, ver, k->ver);
			k->acked = att;
			k->ver = ver;
		}
		if (ver > cs->max_ver)
			cs->max_ver = ver;
		cs->acked_ops++;
		if (x->mark_ms && t0 >= x->mark_ms)
			cs->after_mark++;
		it_resp_free(&r);
		step++;
		op = -1;
		if (x->pause_us)
			usleep((useconds_t)x->pause_us);
	}
	if (connected)
		it_conn_close(&c);
}

static int cmp_i64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

	return x < y ? -1 : x > y;
}

static int verify_get(struct it_conn *c, int port, const char *path,
		      struct it_resp *r)
{
	int rc = it_conn_request(c, "GET", path, NULL, NULL, 0, r);

	if (rc < 0) { /* the worker behind the connection may be gone */
		it_conn_close(c);
		IT_OK(it_conn_open(c, port));
		rc = it_conn_request(c, "GET", path, NULL, NULL, 0, r);
	}
	return rc;
}

/* Every acknowledged write is there: its value or a later attempt's. */
static void verify_load(int port, const struct load *x, const char *when)
{
	int64_t incr_acked = 0, incr_sent = 0, counter = 0, keys = 0;
	int64_t *vals = malloc(sizeof(int64_t) * MAXINCR * NCLIENTS);
	int nvals = 0;
	struct it_conn c;
	struct it_resp r;
	int rc;

	cr_assert_not_null(vals);
	IT_OK(it_conn_open(&c, port));
	for (int i = 0; i < NCLIENTS; i++) {
		const struct cstate *cs = &x->c[i];

		for (int n = 0; n < cs->nkeys; n++) {
			const struct kst *k = &cs->k[n];
			char path[64], want[VAL_MAX];
			int ci, cn;
			int32_t att;
			uint64_t ver = 0;

			if (!k->sent)
				continue;
			keys++;
			snprintf(path, sizeof(path), "/kv/client-%d-%d", i, n);
			rc = verify_get(&c, port, path, &r);
			cr_assert_eq(rc, 0, "%s: GET %s: %s", when, path,
				     strerror(-rc));
			if (r.status == 404) {
				cr_assert_eq(k->acked, 0, "%s: GET %s: 404, but "
					     "attempt %" PRId32 " was acknowledged"
					     " with version %" PRIu64 ": an "
					     "acknowledged write was lost", when,
					     path, k->acked, k->ver);
				it_resp_free(&r);
				continue;
			}
			cr_assert_eq(r.status, 200, "%s: GET %s: %s", when, path,
				     it_resp_brief(&r));
			cr_assert(sscanf(r.body, "client-%d-%d:%" SCNd32 ":", &ci,
					 &cn, &att) == 3 && ci == i && cn == n,
				  "%s: GET %s: a value no attempt wrote: %s", when,
				  path, it_resp_brief(&r));
			cr_assert(r.body_len == gen_value(i, n, att, want) &&
				  memcmp(r.body, want, r.body_len) == 0,
				  "%s: GET %s: a torn or altered value: %s", when,
				  path, it_resp_brief(&r));
			cr_assert(att >= k->acked && att <= k->sent,
				  "%s: GET %s: value of attempt %" PRId32 ", but "
				  "attempt %" PRId32 " was the last acknowledged "
				  "and %" PRId32 " the last sent", when, path, att,
				  k->acked, k->sent);
			ver = it_version(&r, path);
			if (k->acked && att == k->acked)
				cr_assert_eq(ver, k->ver, "%s: GET %s: version "
					     "%" PRIu64 ", acknowledged as %"
					     PRIu64, when, path, ver, k->ver);
			else if (k->acked)
				cr_assert_gt(ver, k->ver, "%s: GET %s: a later "
					     "attempt with version %" PRIu64
					     " not above the acknowledged %"
					     PRIu64, when, path, ver, k->ver);
			it_resp_free(&r);
		}
		incr_acked += cs->incr_acked;
		incr_sent += cs->incr_sent;
		memcpy(vals + nvals, cs->incr_vals,
		       sizeof(int64_t) * (size_t)cs->nincr_vals);
		nvals += cs->nincr_vals;
	}
	rc = verify_get(&c, port, "/kv/" COUNTER, &r);
	cr_assert_eq(rc, 0, "%s: GET /kv/" COUNTER ": %s", when, strerror(-rc));
	if (r.status == 404) {
		cr_assert_eq(incr_acked, 0, "%s: the counter is gone after %"
			     PRId64 " acknowledged incrs", when, incr_acked);
	} else {
		cr_assert_eq(r.status, 200, "%s: GET /kv/" COUNTER ": %s", when,
			     it_resp_brief(&r));
		cr_assert_eq(it_body_int64(&r, &counter), 0, "%s: counter: %s",
			     when, it_resp_brief(&r));
	}
	it_resp_free(&r);
	cr_assert(counter >= incr_acked && counter <= incr_sent,
		  "%s: the counter is %" PRId64 "; %" PRId64 " incrs were "
		  "acknowledged and %" PRId64 " sent", when, counter,
		  incr_acked, incr_sent);
	qsort(vals, (size_t)nvals, sizeof(int64_t), cmp_i64);
	for (int i = 0; i < nvals; i++) {
		cr_assert(vals[i] >= 1 && vals[i] <= counter, "%s: an incr was "
			  "answered %" PRId64 ", outside 1..%" PRId64, when,
			  vals[i], counter);
		cr_assert(i == 0 || vals[i] != vals[i - 1], "%s: two incrs were "
			  "both answered %" PRId64 ": a lost update", when,
			  vals[i]);
	}
	it_conn_close(&c);
	free(vals);
	cr_log_info("%s: %" PRId64 " keys checked, counter %" PRId64
		    " (%" PRId64 " incrs acknowledged, %" PRId64 " sent)", when,
		    keys, counter, incr_acked, incr_sent);
}

static int64_t load_acked(const struct load *x)
{
	int64_t n = 0;

	for (int i = 0; i < NCLIENTS; i++)
		n += x->c[i].acked_ops;
	return n;
}

static uint64_t load_max_ver(const struct load *x)
{
	uint64_t v = 0;

	for (int i = 0; i < NCLIENTS; i++)
		if (x->c[i].max_ver > v)
			v = x->c[i].max_ver;
	return v;
}

static void load_summary(const struct load *x, const char *what)
{
	int64_t unacked = 0, n503 = 0, lat = 0;

	for (int i = 0; i < NCLIENTS; i++) {
		unacked += x->c[i].unacked;
		n503 += x->c[i].n503;
		if (x->c[i].max_lat_ms > lat)
			lat = x->c[i].max_lat_ms;
	}
	cr_log_info("%s: %" PRId64 " ops acknowledged, %" PRId64 " not (%"
		    PRId64 " of them 503), slowest request %" PRId64 " ms",
		    what, load_acked(x), unacked, n503, lat);
}

static void run_clients(struct load *x, int n,
			void (*fn)(int idx, void *arg))
{
	int failed = it_fork_clients(n, fn, x);

	if (failed)
		it_daemon_dump_log(&d);
	cr_assert_eq(failed, 0, "%d of %d client processes failed (see stderr)",
		     failed, n);
}

/* ---- 1. kill -9 of single workers ------------------------------------------ */

static void worker_killer(struct load *x)
{
	uint64_t seed = (uint64_t)getpid() * 2654435761u ^ (uint64_t)it_now_ms();
	pid_t spare = 0; /* the newest replacement: let it age first */

	for (int k = 0; k < KILLS; k++) {
		pid_t before[MAX_CHILDREN], after[MAX_CHILDREN], cand[MAX_CHILDREN];
		int nb, nc = 0;
		int64_t t0;

		it_sleep_ms(KILL_EVERY_MS);
		nb = list_children(x->master, before, MAX_CHILDREN);
		if (nb != x->workers) {
			x->stop = 1;
			it_child_fail("before kill %d the master (pid %d) has %d "
				      "children, want %d", k + 1, (int)x->master,
				      nb, x->workers);
		}
		for (int i = 0; i < nb; i++)
			if (before[i] != spare)
				cand[nc++] = before[i];
		x->victim[k] = cand[rng_next(&seed) % (uint64_t)nc];
		x->replace_ms[k] = -1;
		t0 = it_now_ms();
		if (kill(x->victim[k], SIGKILL) < 0) {
			x->stop = 1;
			it_child_fail("kill(%d, SIGKILL): %s", (int)x->victim[k],
				      strerror(errno));
		}
		while (it_now_ms() - t0 < 2 * REPLACE_WITHIN_MS) {
			int na = list_children(x->master, after, MAX_CHILDREN);

			if (na == x->workers && !has_pid(after, na, x->victim[k])) {
				x->replace_ms[k] = it_now_ms() - t0;
				for (int i = 0; i < na; i++)
					if (!has_pid(before, nb, after[i]))
						spare = after[i];
				break;
			}
			it_sleep_ms(5);
		}
	}
	x->mark_ms = it_now_ms();
	it_sleep_ms(AFTER_KILLS_MS);
	x->stop = 1;
}

static void client_or_worker_killer(int idx, void *arg)
{
	if (idx == NCLIENTS)
		worker_killer(arg);
	else
		client_run(idx, arg);
}

Test(it_drills, kill9_of_workers_under_load_replaced_and_nothing_lost,
     .timeout = 90)
{
	const int workers = 3;
	char dir[300];
	struct load *x;
	pid_t kids[MAX_CHILDREN];
	double restarts;
	int n;

	IT_OK(it_tmpdir(base, sizeof(base)));
	data_dir_of(dir, sizeof(dir));
	IT_OK(it_daemon_start(&d, dir, workers, NULL));
	x = load_new(d.port, d.pid, workers);
	x->pause_us = 500;
	run_clients(x, NCLIENTS + 1, client_or_worker_killer);
	load_summary(x, "kill -9 of workers");
	for (int k = 0; k < KILLS; k++) {
		cr_assert(x->replace_ms[k] >= 0 &&
			  x->replace_ms[k] <= REPLACE_WITHIN_MS,
			  "kill %d (worker pid %d): %s %" PRId64 " ms", k + 1,
			  (int)x->victim[k], x->replace_ms[k] < 0 ?
			  "not replaced within" : "replaced only after",
			  x->replace_ms[k] < 0 ? (int64_t)2 * REPLACE_WITHIN_MS :
			  x->replace_ms[k]);
		cr_log_info("kill %d: worker %d replaced in %" PRId64 " ms",
			    k + 1, (int)x->victim[k], x->replace_ms[k]);
	}
	n = list_children(d.pid, kids, MAX_CHILDREN);
	cr_assert_eq(n, workers, "after the drill the master has %d workers, "
		     "want %d", n, workers);
	for (int i = 0; i < NCLIENTS; i++) {
		cr_assert_gt(x->c[i].acked_ops, 0, "client %d: nothing "
			     "acknowledged", i);
		cr_assert_gt(x->c[i].after_mark, 0, "client %d made no progress "
			     "in the %d ms after the last kill (%" PRId64 " ops "
			     "acknowledged before)", i, AFTER_KILLS_MS,
			     x->c[i].acked_ops);
		cr_assert_lt(x->c[i].max_lat_ms, IT_IO_TIMEOUT_MS);
	}
	verify_load(d.port, x, "right after the kills");
	restarts = metric(d.port, "caskd_worker_restarts_total");
	cr_assert_geq(restarts, KILLS, "caskd_worker_restarts_total is %g "
		      "after %d kills", restarts, KILLS);
	it_stop_clean(&d);
	assert_check_ok(dir);
	load_free(x);
	it_assert_no_leaks();
}

/* ---- 2. kill -9 of the whole group ------------------------------------------ */

static void group_killer(struct load *x)
{
	it_sleep_ms(GROUP_KILL_AFTER_MS);
	x->killed = 1;
	__sync_synchronize();
	if (killpg(x->master, SIGKILL) < 0)
		it_child_fail("killpg(%d): %s", (int)x->master, strerror(errno));
}

static void client_or_group_killer(int idx, void *arg)
{
	if (idx == NCLIENTS)
		group_killer(arg);
	else
		client_run(idx, arg);
}

static void kill9_group_under_load(const char *const *extra, const char *mode)
{
	char dir[300], what[64];
	struct load *x;
	uint64_t v;

	IT_OK(it_tmpdir(base, sizeof(base)));
	data_dir_of(dir, sizeof(dir));
	IT_OK(it_daemon_start(&d, dir, 3, extra));
	x = load_new(d.port, d.pid, 3);
	run_clients(x, NCLIENTS + 1, client_or_group_killer);
	snprintf(what, sizeof(what), "kill -9 of the group (%s)", mode);
	load_summary(x, what);
	cr_assert_gt(load_acked(x), 0, "no write acknowledged in %d ms",
		     GROUP_KILL_AFTER_MS);
	IT_OK(it_daemon_kill9_all(&d));
	/* The restarted daemon must come up: /healthz 200 */
	IT_OK(it_daemon_start(&d, dir, 3, extra));
	verify_load(d.port, x, what);
	v = it_put(d.port, "/kv/after-restart", "new", 3, 201);
	cr_assert_gt(v, load_max_ver(x), "first write after the restart got "
		     "version %" PRIu64 ", not above %" PRIu64 " acknowledged "
		     "before the kill", v, load_max_ver(x));
	it_stop_clean(&d);
	load_free(x);
	it_assert_no_leaks();
}

Test(it_drills, kill9_of_group_under_load_group_fsync, .timeout = 60)
{
	kill9_group_under_load(NULL, "fsync group");
}

Test(it_drills, kill9_of_group_under_load_periodic_fsync, .timeout = 60)
{
	kill9_group_under_load(periodic, "fsync periodic");
}

/* ---- 3. failpoints ------------------------------------------------------------ */

/* Workers the master's log reports killed by SIGKILL. */
static int worker_kills(const char *log)
{
	int n = 0;

	for (const char *p = log; (p = strstr(p, "killed by signal 9")); p++) {
		const char *bol = p;

		while (bol > log && bol[-1] != '\n')
			bol--;
		n += memmem(bol, (size_t)(p - bol), "worker", 6) != NULL;
	}
	return n;
}

static pid_t fork_client(int idx, struct load *x)
{
	pid_t pid;

	fflush(NULL);
	pid = fork();
	cr_assert(pid >= 0, "fork: %s", strerror(errno));
	if (pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
		client_run(idx, x);
		fflush(NULL);
		_exit(0);
	}
	return pid;
}

/* Every worker (and every replacement) crashes once, on its 5th pass of the
 * point, while 3 clients write: the daemon keeps serving, never hangs, loses
 * no acknowledged write, and its file opens after a stop. The master passes
 * the sync points too (its own fdatasyncs); if the failpoint kills it, the
 * whole daemon is gone (its workers follow it), and the drill becomes "the
 * restarted daemon recovers": it is restarted, unarmed, on the same data
 * dir, and the clients carry on against it. */
static void crash_drill(const char *spec)
{
	pid_t pids[NCLIENTS];
	char dir[300], *armed_log = NULL;
	int left = NCLIENTS, failed = 0, master_deaths = 0;
	double restarts = 0;
	struct load *x;

	IT_OK(it_tmpdir(base, sizeof(base)));
	data_dir_of(dir, sizeof(dir));
	it_start_armed(&d, spec, dir, 3, NULL);
	x = load_new(d.port, d.pid, 3);
	x->max_ops = FP_OPS;
	x->pause_us = 2000;
	for (int i = 0; i < NCLIENTS; i++)
		pids[i] = fork_client(i, x);
	while (left) {
		for (int i = 0; i < NCLIENTS; i++) {
			int st;

			if (!pids[i] || waitpid(pids[i], &st, WNOHANG) != pids[i])
				continue;
			pids[i] = 0;
			left--;
			if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
				failed++;
		}
		if (!master_deaths && it_daemon_wait_exit(&d, 0) == 0) {
			armed_log = read_log(&d);
			master_deaths++;
			cr_log_info("%s: the master itself died (wait status 0x%x: "
				    "%s %d); restarting unarmed", spec, d.status,
				    WIFSIGNALED(d.status) ? "signal" : "exit",
				    WIFSIGNALED(d.status) ? WTERMSIG(d.status) :
				    WEXITSTATUS(d.status));
			it_restart(&d, dir, NULL);
			x->port = d.port;
		}
		it_sleep_ms(10);
	}
	if (failed)
		it_daemon_dump_log(&d);
	cr_assert_eq(failed, 0, "%d of %d client processes failed (see "
		     "stderr)", failed, NCLIENTS);
	load_summary(x, spec);
	for (int i = 0; i < NCLIENTS; i++)
		cr_assert_eq(x->c[i].acked_ops, FP_OPS, "client %d got %" PRId64
			     " of %d ops acknowledged", i, x->c[i].acked_ops,
			     FP_OPS);
	/* The daemon that served the load (the armed one, or its unarmed
	 * successor) serves everything acknowledged, at once. */
	verify_load(d.port, x, spec);
	if (!master_deaths) {
		restarts = metric(d.port, "caskd_worker_restarts_total");
		armed_log = read_log(&d);
		cr_assert_geq(restarts, worker_kills(armed_log), "%s: "
			      "caskd_worker_restarts_total below the workers the "
			      "log shows killed", spec);
	}
	cr_log_info("%s: %d worker(s) killed by the failpoint, %g replaced "
		    "(metric), %d master death(s)", spec,
		    worker_kills(armed_log), restarts, master_deaths);
	cr_assert(worker_kills(armed_log) + master_deaths > 0, "%s: no caskd "
		  "process crashed: the drill did not happen", spec);
	free(armed_log);
	it_stop_clean(&d);
	it_restart(&d, dir, NULL);
	verify_load(d.port, x, "after the restart");
	it_put(d.port, "/kv/after-restart", "new", 3, 201);
	it_stop_clean(&d);
	assert_check_ok(dir);
	load_free(x);
	it_assert_no_leaks();
}

Test(it_drills, crash_at_log_after_reserve, .timeout = 60)
{
	crash_drill("log.after_reserve=crash@5");
}

Test(it_drills, crash_at_log_after_write, .timeout = 60)
{
	crash_drill("log.after_write=crash@5");
}

Test(it_drills, crash_at_index_locked, .timeout = 60)
{
	crash_drill("index.locked=crash@5");
}

Test(it_drills, crash_at_sync_before, .timeout = 60)
{
	crash_drill("sync.before=crash@5");
}

Test(it_drills, crash_at_sync_after, .timeout = 60)
{
	crash_drill("sync.after=crash@5");
}

/* A data dir with a few acknowledged keys, made by an unarmed daemon. */
#define SEEDS 3
static uint64_t seed_ver[SEEDS];

static void make_seeded_dir(char *dir, size_t n)
{
	IT_OK(it_tmpdir(base, sizeof(base)));
	snprintf(dir, n, "%s/data", base);
	IT_OK(it_daemon_start(&d, dir, 3, NULL));
	for (int i = 0; i < SEEDS; i++) {
		char path[32], val[32];

		snprintf(path, sizeof(path), "/kv/seed-%d", i);
		snprintf(val, sizeof(val), "seed value %d", i);
		seed_ver[i] = it_put(d.port, path, val, strlen(val), 201);
	}
	it_stop_clean(&d);
}

static void expect_seeds(int port)
{
	for (int i = 0; i < SEEDS; i++) {
		char path[32], val[32];

		snprintf(path, sizeof(path), "/kv/seed-%d", i);
		snprintf(val, sizeof(val), "seed value %d", i);
		it_expect_value(port, path, val, strlen(val), seed_ver[i]);
	}
}

/* A model of keys written one at a time from the test process. */
#define MKEYS 16
struct mkey {
	int present;
	char val[64];
	uint64_t ver;
};

/* GET path must show exactly what the model says. */
static void expect_model(int port, const char *path, const struct mkey *m,
			 const char *when)
{
	struct it_resp r;

	it_do(port, "GET", path, NULL, NULL, 0, &r, m->present ? 200 : 404);
	if (m->present) {
		cr_assert(r.body_len == strlen(m->val) &&
			  memcmp(r.body, m->val, r.body_len) == 0,
			  "%s: GET %s: want \"%s\", got %s", when, path, m->val,
			  it_resp_brief(&r));
		cr_assert_eq(it_version(&r, path), m->ver, "%s: GET %s: want "
			     "version %" PRIu64 ", got %s", when, path, m->ver,
			     it_resp_brief(&r));
	}
	it_resp_free(&r);
}

Test(it_drills, enospc_by_failpoint_is_507_and_leaves_nothing_visible,
     .timeout = 60)
{
	const int workers = 3;
	struct mkey m[MKEYS];
	char dir[300], path[32];
	int n507 = 0;

	memset(m, 0, sizeof(m));
	make_seeded_dir(dir, sizeof(dir));
	/* periodic: the only io.write passes of a worker are its records
	 * (group mode adds durable-mark writes, whose failure is harmless) */
	it_start_armed(&d, "io.write=enospc@3", dir, workers, periodic);
	for (int i = 0; i < 2 * MKEYS; i++) {
		int k = i % MKEYS, done = 0;

		snprintf(path, sizeof(path), "/kv/e-%d", k);
		for (int a = 0; a < 2 + workers && !done; a++) {
			struct it_resp r;
			char val[64];
			uint64_t ver;
			int rc;

			snprintf(val, sizeof(val), "e-%d op %d try %d", k, i, a);
			rc = it_request(d.port, "PUT", path, NULL, val,
					strlen(val), &r);
			cr_assert_eq(rc, 0, "PUT %s: no response: %s", path,
				     strerror(-rc));
			if (r.status == 507) {
				cr_assert(it_is_json_error(&r, "disk_full"),
					  "PUT %s: want 507 {\"error\":\"disk_full"
					  "\"}, got %s", path, it_resp_brief(&r));
				it_resp_free(&r);
				n507++;
				/* nothing of it is visible */
				expect_model(d.port, path, &m[k],
					     "right after a 507");
				continue;
			}
			cr_assert_eq(r.status, m[k].present ? 204 : 201,
				     "PUT %s: %s", path, it_resp_brief(&r));
			ver = it_version(&r, path);
			it_resp_free(&r);
			m[k].present = 1;
			m[k].ver = ver;
			snprintf(m[k].val, sizeof(m[k].val), "%s", val);
			done = 1;
		}
		cr_assert(done, "PUT %s: writes did not succeed again after 507",
			  path);
	}
	cr_log_info("io.write=enospc@3: %d write(s) got 507", n507);
	cr_assert_geq(n507, 1, "no write got 507: the failpoint never fired");
	cr_assert_leq(n507, workers, "%d writes got 507; the failpoint fires "
		      "once per worker and no worker was replaced", n507);
	for (int k = 0; k < MKEYS; k++) {
		snprintf(path, sizeof(path), "/kv/e-%d", k);
		expect_model(d.port, path, &m[k], "after the load");
	}
	expect_seeds(d.port);
	it_stop_clean(&d);
	it_restart(&d, dir, NULL);
	for (int k = 0; k < MKEYS; k++) {
		snprintf(path, sizeof(path), "/kv/e-%d", k);
		expect_model(d.port, path, &m[k], "after the restart");
	}
	expect_seeds(d.port);
	it_stop_clean(&d);
	assert_check_ok(dir);
	it_assert_no_leaks();
}

/* docs/failpoints.md: "@N fires on the N-th pass of that point in each
 * process". On a data dir that already exists the master passes io.write
 * twice while it starts (pid in caskd.lock, durable mark), below @3; the
 * single worker must then fail its own 3rd write, not an earlier one. */
Test(it_drills, failpoint_at_n_counts_the_workers_own_passes, .timeout = 30)
{
	char dir[300], got[128];
	int st[4], len = 0;

	make_seeded_dir(dir, sizeof(dir));
	it_start_armed(&d, "io.write=enospc@3", dir, 1, periodic);
	for (int i = 0; i < 4; i++) {
		struct it_resp r;
		char path[32];

		snprintf(path, sizeof(path), "/kv/p-%d", i);
		IT_OK(it_request(d.port, "PUT", path, NULL, "v", 1, &r));
		st[i] = r.status;
		it_resp_free(&r);
		len += snprintf(got + len, sizeof(got) - (size_t)len, "%s%d",
				i ? ", " : "", st[i]);
	}
	cr_assert(st[0] == 201 && st[1] == 201 && st[2] == 507 && st[3] == 201,
		  "with io.write=enospc@3 and one worker, 4 PUTs of new keys "
		  "got %s; want 201, 201, 507, 201 (the worker's own 3rd "
		  "write fails)", got);
	it_stop_clean(&d);
	it_assert_no_leaks();
}

/* A failed fdatasync: the writes it covered are not acknowledged (503
 * io_error), the daemon stops taking writes and restarts itself through
 * recovery (the master re-executes), then serves again; nothing
 * acknowledged is lost. @4, not @3: the master's own recovery passes two
 * fdatasyncs, and a re-executed master does so again. */
Test(it_drills, eio_on_fsync_never_acknowledged_and_daemon_recovers,
     .timeout = 90)
{
	const char *spec = "io.fsync=eio@4";
	struct mkey m[32];
	char dir[300], path[32], val[64];
	int failed = -1;
	struct it_resp r;
	int rc;

	memset(m, 0, sizeof(m));
	make_seeded_dir(dir, sizeof(dir));
	it_start_armed(&d, spec, dir, 3, NULL);
	for (int i = 0; i < 32 && failed < 0; i++) {
		snprintf(path, sizeof(path), "/kv/f-%d", i);
		snprintf(val, sizeof(val), "f-%d value", i);
		rc = it_request(d.port, "PUT", path, NULL, val, strlen(val), &r);
		cr_assert_eq(rc, 0, "PUT %s: no response: %s", path,
			     strerror(-rc));
		if (r.status == 201) {
			m[i].present = 1;
			m[i].ver = it_version(&r, path);
			snprintf(m[i].val, sizeof(m[i].val), "%s", val);
		} else {
			cr_assert_eq(r.status, 503, "PUT %s: want 201, or 503 "
				     "when its fdatasync fails; got %s", path,
				     it_resp_brief(&r));
			cr_assert(it_is_json_error(&r, "io_error"), "PUT %s: want"
				  " 503 {\"error\":\"io_error\"}, got %s", path,
				  it_resp_brief(&r));
			cr_assert(it_resp_header(&r, "Retry-After"), "PUT %s: "
				  "a 503 without Retry-After: %s", path,
				  it_resp_brief(&r));
			failed = i;
		}
		it_resp_free(&r);
	}
	cr_assert_geq(failed, 0, "%s: 32 writes and no fdatasync failed", spec);
	cr_log_info("%s: write %d was refused with 503 io_error", spec, failed);
	/* Right after: not healthy (poisoned, stopping, or re-executing). */
	rc = it_request(d.port, "GET", "/healthz", NULL, NULL, 0, &r);
	if (rc == 0) {
		cr_assert_neq(r.status, 200, "/healthz is 200 right after an "
			      "fdatasync failed: %s", it_resp_brief(&r));
		it_resp_free(&r);
	}
	IT_OK(wait_healthy(d.port, 15000));
	cr_assert(log_has(&d, "fdatasync of database.bin failed", 2000),
		  "the log does not report the failed fdatasync");
	cr_assert(log_has(&d, "re-executing to recover", 2000),
		  "the master did not restart through recovery");
	cr_assert_eq(it_daemon_wait_exit(&d, 0), -ETIMEDOUT, "the master "
		     "exited (status 0x%x) instead of re-executing", d.status);
	/* It serves again, with everything acknowledged. */
	expect_seeds(d.port);
	for (int i = 0; i < failed; i++) {
		snprintf(path, sizeof(path), "/kv/f-%d", i);
		expect_model(d.port, path, &m[i], "after the re-exec");
	}
	it_put(d.port, "/kv/f-after", "after", 5, 201);
	/* The refused write may or may not be there, but never torn. */
	snprintf(path, sizeof(path), "/kv/f-%d", failed);
	snprintf(val, sizeof(val), "f-%d value", failed);
	it_stop_clean(&d);
	it_restart(&d, dir, NULL);
	expect_seeds(d.port);
	for (int i = 0; i < failed; i++) {
		char p[32];

		snprintf(p, sizeof(p), "/kv/f-%d", i);
		expect_model(d.port, p, &m[i], "after the final restart");
	}
	it_expect_value(d.port, "/kv/f-after", "after", 5, 0);
	IT_OK(it_request(d.port, "GET", path, NULL, NULL, 0, &r));
	cr_assert(r.status == 404 || (r.status == 200 &&
		  r.body_len == strlen(val) && !memcmp(r.body, val, r.body_len)),
		  "GET %s (its write got 503): want 404 or \"%s\", got %s", path,
		  val, it_resp_brief(&r));
	it_resp_free(&r);
	it_stop_clean(&d);
	assert_check_ok(dir);
	it_assert_no_leaks();
}

/* ---- 4. a reservation never written ------------------------------------------- */

/* The 3rd write of a worker dies between reserving its log range and
 * writing it. The master wipes the range: the write is never served (the
 * key keeps its previous value, or stays absent), recovery skips the hole. */
Test(it_drills, reserved_but_unwritten_range_is_wiped_never_served,
     .timeout = 60)
{
	const char *spec = "log.after_reserve=crash@3";
	char dir[300], out[8192], err[4096];
	struct it_resp r;
	uint64_t va, vb, vc, vd;
	int rc, st;

	IT_OK(it_tmpdir(base, sizeof(base)));
	data_dir_of(dir, sizeof(dir));
	it_start_armed(&d, spec, dir, 1, NULL);
	va = it_put(d.port, "/kv/a", "a1", 2, 201);
	vb = it_put(d.port, "/kv/b", "b1", 2, 201);
	/* 3rd write: the worker dies after reserving; no answer */
	rc = it_request(d.port, "PUT", "/kv/a", NULL, "a2", 2, &r);
	if (rc == 0) {
		cr_assert_fail("PUT /kv/a (the worker's 3rd write) was answered,"
			       " want the connection dropped: %s",
			       it_resp_brief(&r));
	}
	cr_assert_neq(rc, -ETIMEDOUT, "PUT /kv/a: the daemon hung");
	IT_OK(wait_healthy(d.port, 5000));
	cr_assert(log_has(&d, "wiped 1 unfinished write", 2000),
		  "the master did not wipe the dead worker's reservation");
	it_expect_value(d.port, "/kv/a", "a1", 2, va);
	/* the replacement: two writes, then its 3rd dies too (a new key) */
	vc = it_put(d.port, "/kv/c", "c1", 2, 201);
	vd = it_put(d.port, "/kv/d", "d1", 2, 201);
	rc = it_request(d.port, "PUT", "/kv/e", NULL, "e1", 2, &r);
	if (rc == 0) {
		cr_assert_fail("PUT /kv/e (the replacement's 3rd write) was "
			       "answered: %s", it_resp_brief(&r));
	}
	cr_assert_neq(rc, -ETIMEDOUT, "PUT /kv/e: the daemon hung");
	IT_OK(wait_healthy(d.port, 5000));
	it_expect_error(d.port, "GET", "/kv/e", NULL, NULL, 0, 404, "not_found");
	it_expect_value(d.port, "/kv/a", "a1", 2, va);
	cr_assert_geq(metric(d.port, "caskd_worker_restarts_total"), 2);
	it_stop_clean(&d);
	st = run_check(dir, 0, out, sizeof(out), err, sizeof(err));
	cr_assert_eq(st, 0, "caskd check after wiped reservations: exit %d\n%s%s",
		     st, out, err);
	cr_assert(strstr(out, "abandoned") && !strstr(out, "CORRUPT"),
		  "caskd check: want the wiped range reported as abandoned, "
		  "got:\n%s", out);
	it_restart(&d, dir, NULL);
	it_expect_value(d.port, "/kv/a", "a1", 2, va);
	it_expect_value(d.port, "/kv/b", "b1", 2, vb);
	it_expect_value(d.port, "/kv/c", "c1", 2, vc);
	it_expect_value(d.port, "/kv/d", "d1", 2, vd);
	it_expect_error(d.port, "GET", "/kv/e", NULL, NULL, 0, 404, "not_found");
	va = it_put(d.port, "/kv/a", "a3", 2, 204);
	it_put(d.port, "/kv/e", "e2", 2, 201);
	it_put(d.port, "/kv/f", "f1", 2, 201);
	it_expect_value(d.port, "/kv/a", "a3", 2, va);
	it_expect_value(d.port, "/kv/e", "e2", 2, 0);
	it_stop_clean(&d);
	it_assert_no_leaks();
}

/* ---- the file, parsed (engine/record.h) ----------------------------------------- */

#define FILE_HDR 64
#define REC_HDR 32
#define REC_MAGIC 0x52444B43u
#define MAX_RECS 256

struct rec {
	uint64_t off;
	uint64_t total;
	uint8_t type;
	uint16_t klen;
	uint32_t vlen;
	uint64_t version;
	char key[64];
};

static uint64_t le(const unsigned char *p, int n)
{
	uint64_t v = 0;

	for (int i = n - 1; i >= 0; i--)
		v = v << 8 | p[i];
	return v;
}

static unsigned char *read_file(const char *path, size_t *len)
{
	struct stat st;
	unsigned char *buf;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t got;

	cr_assert(fd >= 0, "open %s: %s", path, strerror(errno));
	cr_assert_eq(fstat(fd, &st), 0);
	buf = malloc((size_t)st.st_size + 1);
	cr_assert_not_null(buf);
	got = pread(fd, buf, (size_t)st.st_size, 0);
	close(fd);
	cr_assert_eq(got, st.st_size, "read %s", path);
	*len = (size_t)st.st_size;
	return buf;
}

/* The records of database.bin, in file order, up to the first bad one. */
static int parse_records(const char *path, struct rec *out, int max,
			 size_t *file_len)
{
	unsigned char *b = read_file(path, file_len);
	uint64_t off = FILE_HDR;
	int n = 0;

	cr_assert(*file_len >= FILE_HDR && !memcmp(b, "CASKDB\0\0", 8),
		  "%s is not a caskd file", path);
	while (off + REC_HDR <= *file_len && n < max) {
		const unsigned char *h = b + off;
		struct rec *r = &out[n];

		if (le(h, 4) != REC_MAGIC)
			break;
		r->off = off;
		r->type = h[8];
		r->klen = (uint16_t)le(h + 10, 2);
		r->vlen = (uint32_t)le(h + 12, 4);
		r->version = le(h + 16, 8);
		r->total = (REC_HDR + r->klen + r->vlen + 7) & ~(uint64_t)7;
		if (off + r->total > *file_len)
			break;
		snprintf(r->key, sizeof(r->key), "%.*s",
			 r->klen < 63 ? r->klen : 63, (const char *)h + REC_HDR);
		off += r->total;
		n++;
	}
	free(b);
	return n;
}

static void db_path(char *out, size_t n, const char *dir)
{
	snprintf(out, n, "%s/database.bin", dir);
}

/* ---- 5. torn tails ------------------------------------------------------------------ */

#define TKEYS 20

static uint64_t tver[TKEYS];

static void tval(int i, int gen, char *buf, size_t n)
{
	snprintf(buf, n, "torn-drill value %d generation %d", i, gen);
}

/* 20 keys, then key 5 overwritten last; stopped cleanly. */
static void write_tail_keys(char *dir, size_t n, uint64_t *v5_old)
{
	char path[32], val[64];

	IT_OK(it_tmpdir(base, sizeof(base)));
	snprintf(dir, n, "%s/data", base);
	it_restart(&d, dir, NULL);
	for (int i = 0; i < TKEYS; i++) {
		snprintf(path, sizeof(path), "/kv/t-%d", i);
		tval(i, 1, val, sizeof(val));
		tver[i] = it_put(d.port, path, val, strlen(val), 201);
	}
	*v5_old = tver[5];
	tval(5, 2, val, sizeof(val));
	tver[5] = it_put(d.port, "/kv/t-5", val, strlen(val), 204);
	it_stop_clean(&d);
}

static void expect_tail_keys(int port, int gen5, uint64_t v5)
{
	char path[32], val[64];

	for (int i = 0; i < TKEYS; i++) {
		snprintf(path, sizeof(path), "/kv/t-%d", i);
		tval(i, i == 5 ? gen5 : 1, val, sizeof(val));
		it_expect_value(port, path, val, strlen(val),
				i == 5 ? v5 : tver[i]);
	}
}

static off_t file_size(const char *path)
{
	struct stat st;

	cr_assert_eq(stat(path, &st), 0, "stat %s: %s", path, strerror(errno));
	return st.st_size;
}

Test(it_drills, torn_tail_of_random_bytes_is_cut, .timeout = 60)
{
	char dir[300], db[320], junk[1000];
	uint64_t s = (uint64_t)it_now_ms() | 1, v5_old, v;
	off_t size;
	int fd;

	write_tail_keys(dir, sizeof(dir), &v5_old);
	db_path(db, sizeof(db), dir);
	size = file_size(db);
	for (size_t i = 0; i < sizeof(junk); i++)
		junk[i] = (char)rng_next(&s);
	fd = open(db, O_WRONLY | O_APPEND | O_CLOEXEC);
	cr_assert(fd >= 0, "open %s: %s", db, strerror(errno));
	cr_assert_eq(write(fd, junk, sizeof(junk)), (ssize_t)sizeof(junk));
	close(fd);
	it_restart(&d, dir, NULL);
	cr_assert(log_has(&d, "torn tail", 2000), "the log of a start over a "
		  "file with %zu bytes of garbage appended does not mention a "
		  "torn tail", sizeof(junk));
	cr_assert_eq(file_size(db), size, "the garbage was not cut: %lld bytes,"
		     " want %lld", (long long)file_size(db), (long long)size);
	expect_tail_keys(d.port, 2, tver[5]);
	v = it_put(d.port, "/kv/t-new", "new", 3, 201);
	cr_assert_gt(v, tver[5]);
	it_stop_clean(&d);
	it_assert_no_leaks();
}

/* The durable mark of db's header, both slots, set to off: as a crash
 * leaves it when the last write was not yet covered by a sync. */
static void lower_mark(const char *db, uint64_t off)
{
	char hdr[ENG_FILE_HDR_SIZE], mark[ENG_MARK_SIZE];
	struct eng_mark m;
	int fd = open(db, O_RDWR), slot;

	cr_assert_geq(fd, 0, "open %s: %s", db, strerror(errno));
	cr_assert_eq(pread(fd, hdr, sizeof(hdr), 0), (ssize_t)sizeof(hdr));
	cr_assert_eq(eng_mark_read(hdr, &m, &slot), 0, "%s: no valid durable mark", db);
	m.durable = off;
	eng_mark_encode(mark, &m);
	for (int i = 0; i < 2; i++)
		cr_assert_eq(pwrite(fd, mark, sizeof(mark), (off_t)eng_mark_off(i)),
			     (ssize_t)sizeof(mark));
	close(fd);
}

Test(it_drills, torn_tail_cut_inside_last_record, .timeout = 60)
{
	struct rec recs[MAX_RECS];
	char dir[300], db[320];
	uint64_t v5_old, v;
	size_t len;
	int n;

	write_tail_keys(dir, sizeof(dir), &v5_old);
	db_path(db, sizeof(db), dir);
	n = parse_records(db, recs, MAX_RECS, &len);
	cr_assert_eq(n, TKEYS + 1, "%s: %d records parsed, want %d", db, n,
		     TKEYS + 1);
	cr_assert(!strcmp(recs[n - 1].key, "t-5") &&
		  recs[n - 1].version == tver[5] &&
		  recs[n - 1].off + recs[n - 1].total == len,
		  "the last record is not the overwrite of t-5");
	cr_assert_eq(truncate(db, (off_t)(recs[n - 1].off +
					  recs[n - 1].total / 2)), 0);
	/* A crash tears only what no sync vouched for yet: the mark is
	 * below the last record (a clean stop put it at the end). */
	lower_mark(db, recs[n - 1].off);
	it_restart(&d, dir, NULL);
	cr_assert(log_has(&d, "torn tail", 2000), "the log of a start over a "
		  "file whose last record is cut does not mention a torn tail");
	cr_assert_eq(file_size(db), (off_t)recs[n - 1].off, "the torn record "
		     "was not cut off");
	/* t-5 is back at its previous value; everything else intact */
	expect_tail_keys(d.port, 1, v5_old);
	v = it_put(d.port, "/kv/t-new", "new", 3, 201);
	cr_assert_gt(v, recs[n - 2].version);
	it_stop_clean(&d);
	it_assert_no_leaks();
}

/* ---- 6. a damaged record in the middle -------------------------------------------- */

#define CKEYS 20
#define CVICTIM 10 /* the key whose second version is damaged */

static uint64_t cver[CKEYS];

static void cval(int i, int gen, char *buf, size_t n)
{
	snprintf(buf, n, "corruption-drill value %d generation %d", i, gen);
}

enum damage { DAMAGE_VALUE, DAMAGE_HEADER };

/* Waits for a daemon that must refuse to start: 0 once the master exited
 * (d->status set), 1 if it answers /healthz 200 instead, -ETIMEDOUT. */
static int wait_refusal(struct it_daemon *dm, int ms)
{
	int64_t deadline = it_now_ms() + ms;

	while (it_now_ms() < deadline) {
		struct it_resp r;

		if (it_daemon_wait_exit(dm, 20) == 0)
			return 0;
		if (it_request(dm->port, "GET", "/healthz", NULL, NULL, 0,
			       &r) == 0) {
			int up = r.status == 200;

			it_resp_free(&r);
			if (up)
				return 1;
		}
	}
	return -ETIMEDOUT;
}

/* 20 keys; k-10 gets a second version in the middle of the file; that
 * record is damaged (a byte of its value, or of its header's version)
 * while caskd is stopped. Start refused; check reports it; repair drops
 * it; every other record is intact, k-10 is back at its first version. */
static void corruption_drill(enum damage how)
{
	struct rec recs[MAX_RECS];
	char dir[300], db[320], path[32], val[64], want[64];
	char out[16384], err[4096], *log;
	uint64_t v10_old = 0, bad_off = 0;
	unsigned char byte;
	size_t len;
	int n, st, fd;
	off_t at;

	IT_OK(it_tmpdir(base, sizeof(base)));
	data_dir_of(dir, sizeof(dir));
	it_restart(&d, dir, NULL);
	for (int i = 0; i < CKEYS; i++) {
		snprintf(path, sizeof(path), "/kv/k-%d", i);
		cval(i, 1, val, sizeof(val));
		cver[i] = it_put(d.port, path, val, strlen(val), 201);
		if (i == 14) { /* the victim's 2nd version, mid-file */
			v10_old = cver[CVICTIM];
			cval(CVICTIM, 2, val, sizeof(val));
			cver[CVICTIM] = it_put(d.port, "/kv/k-10", val,
					       strlen(val), 204);
		}
	}
	it_stop_clean(&d);

	db_path(db, sizeof(db), dir);
	n = parse_records(db, recs, MAX_RECS, &len);
	cr_assert_eq(n, CKEYS + 1, "%d records parsed, want %d", n, CKEYS + 1);
	for (int i = 0; i < n; i++)
		if (!strcmp(recs[i].key, "k-10") && recs[i].version == cver[CVICTIM])
			bad_off = recs[i].off;
	cr_assert(bad_off > 0 && bad_off < recs[n - 2].off,
		  "the victim record is not in the middle of the file");
	at = how == DAMAGE_VALUE ? (off_t)(bad_off + REC_HDR + 4 + 10)
				 : (off_t)(bad_off + 16); /* version, LSB */
	fd = open(db, O_RDWR | O_CLOEXEC);
	cr_assert(fd >= 0);
	cr_assert_eq(pread(fd, &byte, 1, at), 1);
	byte ^= 0x5a;
	cr_assert_eq(pwrite(fd, &byte, 1, at), 1);
	close(fd);
	cr_log_info("damaged the %s of the record at offset %" PRIu64
		    " (byte %lld)", how == DAMAGE_VALUE ? "value" : "header",
		    bad_off, (long long)at);
	/* With the index snapshot of the clean stop a start does not read
	 * the log it covers (reads check each record instead: see
	 * damaged_live_value_is_never_served): without it, the scan must
	 * find the damage. */
	snprintf(path, sizeof(path), "/database.idx");
	{
		char idx[340];
		snprintf(idx, sizeof(idx), "%s%s", dir, path);
		cr_assert_eq(unlink(idx), 0, "unlink %s: %s", idx, strerror(errno));
	}

	/* caskd refuses, promptly, and names the offset */
	IT_OK(it_daemon_spawn(&d, dir, IT_WORKERS, NULL));
	st = wait_refusal(&d, EXIT_WAIT_MS);
	if (st != 0) {
		it_daemon_dump_log(&d);
		cr_assert_fail("caskd %s on a file damaged at offset %" PRIu64
			       " with valid records after it; want it to refuse "
			       "to start", st == 1 ? "started and serves (/healthz"
			       " 200)" : "still runs 5 s after starting", bad_off);
	}
	log = read_log(&d);
	cr_assert(WIFEXITED(d.status) && WEXITSTATUS(d.status) != 0,
		  "caskd on a damaged file: wait status 0x%x, want a non-zero "
		  "exit\nlog:\n%s", d.status, log);
	snprintf(want, sizeof(want), "offset %" PRIu64, bad_off);
	cr_assert(strstr(log, want), "the log does not name \"%s\":\n%s", want,
		  log);
	free(log);

	/* check: exit 1, CORRUPT at that offset */
	st = run_check(dir, 0, out, sizeof(out), err, sizeof(err));
	snprintf(want, sizeof(want), "offset %" PRIu64 ",", bad_off);
	cr_assert_eq(st, 1, "caskd check on a damaged file: exit %d, want 1\n"
		     "%s%s", st, out, err);
	cr_assert(strstr(out, "CORRUPT") && strstr(out, want), "caskd check "
		  "does not report CORRUPT at %s:\n%s", want, out);
	/* repair: exit 0, says what it dropped */
	st = run_check(dir, 1, out, sizeof(out), err, sizeof(err));
	cr_assert_eq(st, 0, "caskd check --repair: exit %d, want 0\n%s%s", st,
		     out, err);
	cr_assert(strstr(out, want) && strstr(out, "dropped"), "caskd check "
		  "--repair does not say it dropped the region at %s:\n%s", want,
		  out);
	st = run_check(dir, 0, out, sizeof(out), err, sizeof(err));
	cr_assert_eq(st, 0, "caskd check after the repair: exit %d\n%s%s", st,
		     out, err);

	/* starts; every other record intact; the victim at its old version */
	it_restart(&d, dir, NULL);
	for (int i = 0; i < CKEYS; i++) {
		snprintf(path, sizeof(path), "/kv/k-%d", i);
		if (i == CVICTIM)
			continue;
		cval(i, 1, val, sizeof(val));
		it_expect_value(d.port, path, val, strlen(val), cver[i]);
	}
	cval(CVICTIM, 1, val, sizeof(val));
	it_expect_value(d.port, "/kv/k-10", val, strlen(val), v10_old);
	it_put(d.port, "/kv/k-10", "after repair", 12, 204);
	it_stop_clean(&d);
	it_assert_no_leaks();
}

Test(it_drills, damaged_value_in_middle_record_refused_checked_repaired,
     .timeout = 60)
{
	corruption_drill(DAMAGE_VALUE);
}

Test(it_drills, damaged_header_in_middle_record_refused_checked_repaired,
     .timeout = 60)
{
	corruption_drill(DAMAGE_HEADER);
}

Test(it_drills, check_refuses_a_dir_in_use, .timeout = 30)
{
	char dir[300], out[8192], err[4096];
	int st;

	IT_OK(it_tmpdir(base, sizeof(base)));
	data_dir_of(dir, sizeof(dir));
	it_restart(&d, dir, NULL);
	it_put(d.port, "/kv/x", "x", 1, 201);
	/* A check only reads: it runs beside caskd and says so. */
	st = run_check(dir, 0, out, sizeof(out), err, sizeof(err));
	cr_assert_eq(st, 0, "caskd check beside a running caskd: exit %d\n%s%s", st, out, err);
	cr_assert(strstr(out, "serves it now"), "no note that a caskd serves it:\n%s", out);
	/* A repair needs the file to itself. */
	st = run_check(dir, 1, out, sizeof(out), err, sizeof(err));
	cr_assert_eq(st, 1, "caskd check --repair beside a running caskd: exit %d, want 1\n%s%s",
		     st, out, err);
	cr_assert(strstr(err, "in use"), "caskd check --repair beside a running caskd: want "
		  "\"in use\" on stderr, got:\n%s", err);
	it_expect_value(d.port, "/kv/x", "x", 1, 0);
	it_stop_clean(&d);
	it_assert_no_leaks();
}

/* ---- 7. a real full disk ------------------------------------------------------------ */

#define TMPFS_SIZE "2m"
#define FILLER_BYTES (512 * 1024)
#define BIG (64 * 1024)
#define MAX_BIG 64

static char mnt[300];
static int mounted;

static void tmpfs_fini(void)
{
	if (mounted && umount2(mnt, MNT_DETACH) == 0)
		mounted = 0;
	it_teardown();
}

TestSuite(it_drills_disk_full, .init = it_setup, .fini = tmpfs_fini);

static void big_value(int i, int gen, unsigned char *buf)
{
	for (size_t j = 0; j < BIG; j++)
		buf[j] = (unsigned char)(i * 31 + gen * 7 + (int)(j % 251));
}

struct bigkey {
	int present;
	int gen;
	uint64_t ver;
};

static void expect_big(int port, int i, const struct bigkey *b,
		       unsigned char *buf, const char *when)
{
	char path[32];

	snprintf(path, sizeof(path), "/kv/big-%d", i);
	if (!b->present) {
		it_expect_error(port, "GET", path, NULL, NULL, 0, 404,
				"not_found");
		return;
	}
	big_value(i, b->gen, buf);
	it_expect_value(port, path, buf, BIG, b->ver);
	(void)when;
}

/* PUT big-i (generation gen): the status, and the model updated on 2xx. */
static int put_big(int port, int i, int gen, struct bigkey *b,
		   unsigned char *buf)
{
	struct it_resp r;
	char path[32];
	int st;

	snprintf(path, sizeof(path), "/kv/big-%d", i);
	big_value(i, gen, buf);
	IT_OK(it_request(port, "PUT", path, NULL, buf, BIG, &r));
	st = r.status;
	if (st == 201 || st == 204) {
		cr_assert_eq(st, b->present ? 204 : 201, "PUT %s: %s", path,
			     it_resp_brief(&r));
		b->present = 1;
		b->gen = gen;
		b->ver = it_version(&r, path);
	} else {
		cr_assert_eq(st, 507, "PUT %s on a full disk: want 2xx or 507, "
			     "got %s", path, it_resp_brief(&r));
		cr_assert(it_is_json_error(&r, "disk_full"), "PUT %s: want 507 "
			  "{\"error\":\"disk_full\"}, got %s", path,
			  it_resp_brief(&r));
	}
	it_resp_free(&r);
	return st;
}

/* Mounts a tmpfs of size as the data dir (skips the test where
 * mounting is not allowed) with a filler file in it, removed later to make
 * room; its path goes to filler. */
static void mount_tmpfs(const char *size, size_t filler_bytes, char *filler,
			size_t n)
{
	char opts[64];

	unsigned char *fill;
	int fd;

	IT_OK(it_tmpdir(base, sizeof(base)));
	data_dir_of(mnt, sizeof(mnt));
	cr_assert_eq(mkdir(mnt, 0755), 0);
	snprintf(opts, sizeof(opts), "size=%s,mode=0755", size);
	if (mount("tmpfs", mnt, "tmpfs", MS_NOSUID | MS_NODEV, opts) < 0) {
		if (errno == EPERM)
			cr_skip_test("mount -t tmpfs %s: EPERM (not allowed to "
				     "mount here): no real full-disk drill", mnt);
		cr_assert_fail("mount -t tmpfs %s: %s", mnt, strerror(errno));
	}
	mounted = 1;
	snprintf(filler, n, "%s/filler", mnt);
	fill = malloc(filler_bytes);
	cr_assert_not_null(fill);
	memset(fill, 0xa5, filler_bytes);
	fd = open(filler, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
	cr_assert(fd >= 0, "open %s: %s", filler, strerror(errno));
	cr_assert_eq(write(fd, fill, filler_bytes), (ssize_t)filler_bytes);
	close(fd);
	free(fill);
}

static void mount_small_tmpfs(char *filler, size_t n)
{
	mount_tmpfs(TMPFS_SIZE, FILLER_BYTES, filler, n);
}

/* PUTs 64 KiB values big-0, big-1, ... until 507; returns the index of
 * the one refused, *ok the number stored. */
static int fill_disk(int port, struct bigkey *b, unsigned char *buf, int *ok)
{
	int full = -1;

	*ok = 0;
	for (int i = 0; i < MAX_BIG && full < 0; i++) {
		if (put_big(port, i, 1, &b[i], buf) == 507)
			full = i;
		else
			(*ok)++;
	}
	cr_assert_geq(full, 0, "%d values of 64 KiB fit in a %s tmpfs",
		      MAX_BIG, TMPFS_SIZE);
	cr_assert_geq(*ok, 4, "only %d values fit before the disk was full",
		      *ok);
	return full;
}

/* Starts caskd again on the tmpfs; on failure says how it ended. */
static void restart_on_tmpfs(const char *when)
{
	int st = it_daemon_start(&d, mnt, 3, NULL);

	if (st < 0) {
		char *log = read_log(&d);

		cr_assert_fail("caskd did not start again %s: %s; wait status "
			       "0x%x (%s %d)\nlog:\n%s", when, strerror(-st),
			       d.status, WIFSIGNALED(d.status) ? "signal" :
			       "exit", WIFSIGNALED(d.status) ?
			       WTERMSIG(d.status) : WEXITSTATUS(d.status), log);
	}
}

static void unmount_tmpfs(void)
{
	if (umount2(mnt, 0) < 0)
		cr_assert_eq(umount2(mnt, MNT_DETACH), 0, "umount %s: %s", mnt,
			     strerror(errno));
	mounted = 0;
}

Test(it_drills_disk_full, tmpfs_full_507_nothing_partial_then_recovers,
     .timeout = 60)
{
	struct bigkey b[MAX_BIG];
	unsigned char *buf = malloc(BIG);
	char filler[340];
	struct it_resp r;
	int full, ok, st;

	cr_assert_not_null(buf);
	memset(b, 0, sizeof(b));
	mount_small_tmpfs(filler, sizeof(filler));
	/* the log lands beside the mount point, on the real disk */
	IT_OK(it_daemon_start(&d, mnt, 3, NULL));
	full = fill_disk(d.port, b, buf, &ok);
	cr_log_info("disk full after %d values of 64 KiB", ok);
	/* Let the master's timer try to prepare space ahead of the tail on
	 * the full disk (it writes zeros there) before going on. */
	it_sleep_ms(300);
	/* nothing partial is visible, earlier keys read fine */
	expect_big(d.port, full, &b[full], buf, "after 507");
	st = put_big(d.port, 0, 2, &b[0], buf);
	cr_assert_eq(st, 507, "an overwrite of 64 KiB fit on the full disk");
	for (int i = 0; i < full; i++)
		expect_big(d.port, i, &b[i], buf, "disk full");
	IT_OK(it_request(d.port, "GET", "/healthz", NULL, NULL, 0, &r));
	cr_assert_eq(r.status, 200, "/healthz on a full disk: %s",
		     it_resp_brief(&r));
	it_resp_free(&r);
	/* a delete appends a tombstone: it frees nothing */
	IT_OK(it_request(d.port, "DELETE", "/kv/big-1", NULL, NULL, 0, &r));
	cr_assert(r.status == 204 || (r.status == 507 &&
		  it_is_json_error(&r, "disk_full")),
		  "DELETE on a full disk: want 204 or 507 disk_full, got %s",
		  it_resp_brief(&r));
	if (r.status == 204)
		b[1].present = 0;
	it_resp_free(&r);
	st = put_big(d.port, full, 1, &b[full], buf);
	cr_assert_eq(st, 507, "a 64 KiB write fit after a DELETE on a full "
		     "disk: the log is append-only");
	expect_big(d.port, full, &b[full], buf, "after 507");
	/* make room: writes succeed again */
	cr_assert_eq(unlink(filler), 0, "unlink %s: %s", filler,
		     strerror(errno));
	it_sleep_ms(300); /* the master may fill the room with prepared zeros */
	for (int i = full; i < full + 4 && i < MAX_BIG; i++) {
		st = put_big(d.port, i, 1, &b[i], buf);
		cr_assert(st == 201, "PUT big-%d after room was made: %d", i, st);
	}
	st = put_big(d.port, 0, 3, &b[0], buf);
	cr_assert_eq(st, 204, "overwrite after room was made: %d", st);
	for (int i = 0; i < MAX_BIG; i++)
		if (b[i].present || i <= full)
			expect_big(d.port, i, &b[i], buf, "room made");
	it_stop_clean(&d);
	restart_on_tmpfs("after room was made");
	for (int i = 0; i < MAX_BIG; i++)
		if (b[i].present || i <= full)
			expect_big(d.port, i, &b[i], buf, "after restart");
	it_stop_clean(&d);
	assert_check_ok(mnt);
	unmount_tmpfs();
	free(buf);
	it_assert_no_leaks();
}

/* The daemon goes down while the disk is full (kill -9 of the group, as a
 * crash or an OOM kill would) and is started again before anyone makes
 * room: it must come up, serve everything acknowledged, refuse writes with
 * 507, and take them again once room is made. */
Test(it_drills_disk_full, tmpfs_still_full_restart_serves_and_recovers,
     .timeout = 60)
{
	struct bigkey b[MAX_BIG];
	unsigned char *buf = malloc(BIG);
	char filler[340];
	int full, ok, st;

	cr_assert_not_null(buf);
	memset(b, 0, sizeof(b));
	mount_small_tmpfs(filler, sizeof(filler));
	IT_OK(it_daemon_start(&d, mnt, 3, NULL));
	full = fill_disk(d.port, b, buf, &ok);
	it_sleep_ms(300); /* a few master ticks on the full disk */
	IT_OK(it_daemon_kill9_all(&d));
	restart_on_tmpfs("on the still full disk");
	for (int i = 0; i <= full; i++)
		expect_big(d.port, i, &b[i], buf, "restarted on a full disk");
	st = put_big(d.port, full, 1, &b[full], buf);
	cr_assert_eq(st, 507, "a 64 KiB write fit on the still full disk");
	cr_assert_eq(unlink(filler), 0, "unlink %s: %s", filler,
		     strerror(errno));
	it_sleep_ms(300);
	st = put_big(d.port, full, 1, &b[full], buf);
	cr_assert_eq(st, 201, "PUT big-%d after room was made: %d", full, st);
	for (int i = 0; i <= full; i++)
		expect_big(d.port, i, &b[i], buf, "room made");
	it_stop_clean(&d);
	assert_check_ok(mnt);
	unmount_tmpfs();
	free(buf);
	it_assert_no_leaks();
}

/* Digging out without a stop (issue 9): the disk fills with overwrites of
 * a few keys, so most of database.bin is garbage. A DELETE still works
 * (space is kept for deletes), a compaction still runs and gives the
 * garbage back, and writes go on, all without making room by hand. */
#define DIG_KEYS 3
#define DIG_TMPFS_SIZE "8m"

Test(it_drills_disk_full, tmpfs_full_of_garbage_delete_and_compaction_dig_out,
     .timeout = 60)
{
	struct bigkey b[MAX_BIG];
	unsigned char *buf = malloc(BIG);
	char filler[340], state[32], *job;
	struct it_resp r;
	int gen = 1, st = 0;

	cr_assert_not_null(buf);
	memset(b, 0, sizeof(b));
	/* room for the deletes' 2 MiB reserve and a reserve file */
	mount_tmpfs(DIG_TMPFS_SIZE, FILLER_BYTES, filler, sizeof(filler));
	IT_OK(it_daemon_start(&d, mnt, 3, NULL));
	it_sleep_ms(300); /* the master makes its reserve file */
	for (; gen < 400 && st != 507; gen++)
		for (int i = 0; i < DIG_KEYS && st != 507; i++)
			st = put_big(d.port, i, gen, &b[i], buf);
	cr_assert_eq(st, 507, "the disk never filled");
	cr_log_info("disk full after %d rounds of overwrites", gen);
	it_sleep_ms(300); /* a few master ticks on the full disk */
	{
		char res[400];

		snprintf(res, sizeof(res), "%s/database.reserve", mnt);
		cr_assert_eq(access(res, F_OK), 0, "no reserve file on the full disk");
	}

	IT_OK(it_request(d.port, "DELETE", "/kv/big-2", NULL, NULL, 0, &r));
	cr_assert_eq(r.status, 204, "DELETE on a full disk: %s", it_resp_brief(&r));
	b[2].present = 0;
	it_resp_free(&r);

	job = it_job_wait(d.port, it_compact_start(d.port, NULL), NULL, state,
			  sizeof(state));
	cr_assert_str_eq(state, "done", "compaction on a full disk: %s", job);
	cr_assert_lt(it_json_u64(job, "bytes_after"), it_json_u64(job, "bytes_before") / 2,
		     "%s", job);
	free(job);
	for (int i = 0; i < DIG_KEYS; i++)
		expect_big(d.port, i, &b[i], buf, "after the compaction");
	it_sleep_ms(300); /* the master prepares space again */
	/* writes go on in the space given back, the filler still there */
	for (int i = 0; i < DIG_KEYS; i++) {
		st = put_big(d.port, i, gen, &b[i], buf);
		cr_assert(st == 201 || st == 204, "PUT big-%d after the compaction: %d",
			  i, st);
	}
	it_stop_clean(&d);
	restart_on_tmpfs("after digging out");
	for (int i = 0; i < DIG_KEYS; i++)
		expect_big(d.port, i, &b[i], buf, "after restart");
	it_stop_clean(&d);
	assert_check_ok(mnt);
	unmount_tmpfs();
	free(buf);
	it_assert_no_leaks();
}

/* The way out the docs give for a full disk (delete, then compact) works,
 * twice in a row, without a restart. The compaction deletes the reserve
 * file for room; the job is held (compact.cut=stall) while the master
 * ticks, as a slow copy would be: the master used to prepare zeros in
 * the space the reserve freed, the job then failed ENOSPC, and after it
 * even a 5-byte PUT got 507. Now it prepares none while a job runs, nor
 * until the reserve is made again. */
#define DIG2_KEYS 400
#define DIG2_KEEP 6

/* PUTs new keys from *next until the disk is full (507); returns how many
 * were written. */
static int fill_new_keys(struct bigkey *b, unsigned char *buf, int *next, int gen)
{
	int st = 0, n = 0;

	while (*next < DIG2_KEYS && (st = put_big(d.port, *next, gen, &b[*next], buf)) != 507) {
		(*next)++;
		n++;
	}
	cr_assert_eq(st, 507, "the disk never filled");
	return n;
}

static void delete_all_but(struct bigkey *b, int upto, int keep)
{
	struct it_resp r;
	int left = 0;

	for (int i = upto - 1; i >= 0; i--) {
		char path[32];
		if (!b[i].present)
			continue;
		if (left++ < keep)
			continue;
		snprintf(path, sizeof(path), "/kv/big-%d", i);
		IT_OK(it_request(d.port, "DELETE", path, NULL, NULL, 0, &r));
		cr_assert_eq(r.status, 204, "DELETE %s: %s", path, it_resp_brief(&r));
		b[i].present = 0;
		it_resp_free(&r);
	}
}

static void compact_must_work(int round)
{
	char state[32], *job;
	struct it_resp r;

	job = it_job_wait(d.port, it_compact_start(d.port, NULL), NULL, state,
			  sizeof(state));
	cr_assert_str_eq(state, "done", "round %d: compaction with %d keys of %d bytes "
			 "left on a full %s disk: %s", round, DIG2_KEEP, BIG, DIG_TMPFS_SIZE, job);
	free(job);
	IT_OK(it_request(d.port, "PUT", "/kv/small", NULL, "hello", 5, &r));
	cr_assert(r.status == 201 || r.status == 204, "round %d: a 5-byte PUT after the "
		  "compaction: %s", round, it_resp_brief(&r));
	it_resp_free(&r);
}

Test(it_drills_disk_full, tmpfs_full_of_live_keys_delete_and_compact_twice,
     .timeout = 120)
{
	struct bigkey b[DIG2_KEYS];
	unsigned char *buf = malloc(BIG);
	char filler[340];
	int next = 0;

	cr_assert_not_null(buf);
	memset(b, 0, sizeof(b));
	mount_tmpfs(DIG_TMPFS_SIZE, FILLER_BYTES, filler, sizeof(filler));
	it_start_armed(&d, "compact.cut=stall", mnt, 2, NULL);
	it_sleep_ms(300); /* the master makes its reserve file */
	for (int round = 1; round <= 2; round++) {
		int n = fill_new_keys(b, buf, &next, round);
		cr_log_info("round %d: disk full after %d new keys of %d bytes", round, n, BIG);
		delete_all_but(b, next, DIG2_KEEP);
		compact_must_work(round);
		for (int i = 0; i < next; i++)
			expect_big(d.port, i, &b[i], buf, "after digging out");
		it_sleep_ms(1500); /* the master makes its reserve again */
	}
	it_stop_clean(&d);
	restart_on_tmpfs("after digging out");
	for (int i = 0; i < next; i++)
		expect_big(d.port, i, &b[i], buf, "after restart");
	it_stop_clean(&d);
	unmount_tmpfs();
	free(buf);
	it_assert_no_leaks();
}
