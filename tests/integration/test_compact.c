/* tests/integration/test_compact.c — compaction, snapshots, the admin
 * endpoints and fast restarts, against the real daemon.
 *
 * What must hold (../shared/HTTP-API.md, "Admin endpoints" and
 * "Compaction"): a compaction job shrinks database.bin to about the live
 * data while every request is served, keeps values, versions and ETags,
 * loses no acknowledged write, and a kill -9 of the job at any of its
 * steps leaves a directory that serves every acknowledged write, now and
 * after a restart. A snapshot is a consistent cut that `caskd check`
 * accepts and a caskd started on it serves. Admin endpoints are guarded
 * by a Bearer token when one is configured. A database.idx is used only
 * when it matches database.bin.
 *
 * Compaction crash drills arm failpoints in the daemon's environment: the
 * master arms them in the job process (and in workers, which never pass
 * compact.* points).
 */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <sched.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "tests/integration/harness.h"
#include "tests/integration/it_assert.h"

#define NKEYS 200          /* live keys of the standard fill */
#define OVERWRITES 10      /* each key is written this many times */
#define VAL_LEN 4000
#define WRITERS 3          /* clients writing while a job runs */
#define WRITES_EACH 300
/* database.bin holds zeros prepared ahead of the tail: up to 2 MiB, in
 * 1 MiB pieces (engine/space.c). */
#define PREZERO_SLACK (3u << 20)

static struct it_daemon d;
static char base[256];

static void setup(void) { it_setup(); }
static void teardown(void) { it_teardown(); }
TestSuite(it_compact, .init = setup, .fini = teardown, .timeout = 120);

static void data_dir(char *out, size_t n)
{
	cr_assert_lt((size_t)snprintf(out, n, "%s/data", base), n);
}

static uint64_t file_size(const char *name)
{
	char path[400];
	struct stat st;

	snprintf(path, sizeof(path), "%s/data/%s", base, name);
	cr_assert_eq(stat(path, &st), 0, "stat %s: %s", path, strerror(errno));
	return (uint64_t)st.st_size;
}

static int file_exists(const char *name)
{
	char path[400];

	snprintf(path, sizeof(path), "%s/data/%s", base, name);
	return access(path, F_OK) == 0;
}

/* Writes every key OVERWRITES times, then deletes every fourth key:
 * most of the file is garbage. vers[i]: key i's last version (0 deleted). */
static void fill(int port, uint64_t *vers)
{
	char path[64], val[VAL_LEN + 1];
	struct it_resp r;

	for (int rnd = 0; rnd < OVERWRITES; rnd++)
		for (int i = 0; i < NKEYS; i++) {
			snprintf(path, sizeof(path), "/kv/k%04d", i);
			it_round_value(val, VAL_LEN, i, rnd);
			vers[i] = it_put(port, path, val, VAL_LEN, 0);
		}
	for (int i = 0; i < NKEYS; i += 4) {
		snprintf(path, sizeof(path), "/kv/k%04d", i);
		it_do(port, "DELETE", path, NULL, NULL, 0, &r, 204);
		it_resp_free(&r);
		vers[i] = 0;
	}
}

/* Every key holds its last value with its last version (absent if 0). */
static void expect_fill(int port, const uint64_t *vers)
{
	char path[64], val[VAL_LEN + 1];

	for (int i = 0; i < NKEYS; i++) {
		snprintf(path, sizeof(path), "/kv/k%04d", i);
		if (!vers[i]) {
			it_expect_error(port, "GET", path, NULL, NULL, 0, 404, NULL);
			continue;
		}
		it_round_value(val, VAL_LEN, i, OVERWRITES - 1);
		it_expect_value(port, path, val, VAL_LEN, vers[i]);
	}
}

/* Runs one compaction to the end; asserts it is done and, if shrink,
 * that it shrank the log. Returns bytes_after. */
static uint64_t compact_run(int port, const char *hdrs, int shrink)
{
	char state[32];
	uint64_t id = it_compact_start(port, hdrs), before, after;
	char *job = it_job_wait(port, id, hdrs, state, sizeof(state));

	cr_assert_str_eq(state, "done", "job: %s", job);
	before = it_json_u64(job, "bytes_before");
	after = it_json_u64(job, "bytes_after");
	if (shrink)
		cr_assert_lt(after, before, "compaction reclaimed nothing: %s", job);
	else
		cr_assert_leq(after, before, "compaction grew the log: %s", job);
	free(job);
	return after;
}

static uint64_t compact_done(int port, const char *hdrs)
{
	return compact_run(port, hdrs, 1);
}

static double metric(int port, const char *name)
{
	char *text = it_get_metrics(port);
	double v = -1;

	cr_assert_eq(it_metric_value(text, name, 1, &v), 0,
		     "/metrics has no %s", name);
	free(text);
	return v;
}

static int log_has(const struct it_daemon *dm, const char *s)
{
	char *buf = malloc(1 << 20);
	int found;

	cr_assert_not_null(buf);
	found = it_read_tail(dm->log, buf, 1 << 20) >= 0 && strstr(buf, s);
	free(buf);
	return found;
}

/* --- compaction ------------------------------------------------------------ */

Test(it_compact, shrinks_the_file_and_keeps_values_and_versions)
{
	uint64_t vers[NKEYS], before, after, live;
	struct it_resp r;
	char dir[300];

	it_start(&d, base, sizeof(base), NULL);
	fill(d.port, vers);
	before = file_size("database.bin");
	live = (uint64_t)metric(d.port, "caskd_live_bytes");
	cr_assert_lt(live * 4, before, "the fill left mostly garbage");

	after = compact_done(d.port, NULL);
	/* the file also holds the zeros prepared ahead of the tail */
	cr_assert_lt(file_size("database.bin"), before / 2,
		     "database.bin did not shrink: %" PRIu64 " -> %" PRIu64,
		     before, file_size("database.bin"));
	cr_assert_leq(file_size("database.bin"), after + PREZERO_SLACK);
	cr_assert_leq(after, live * 2 + (2u << 20),
		      "the new file holds about the live data");
	cr_assert(!file_exists("database.bin.compact"),
		  "no temporary file is left behind");
	expect_fill(d.port, vers);
	cr_assert_eq(metric(d.port, "caskd_compactions_done_total"), 1);

	/* writes go on after it, with versions above every old one */
	{
		uint64_t max = 0, v;

		for (int i = 0; i < NKEYS; i++)
			if (vers[i] > max)
				max = vers[i];
		v = it_put(d.port, "/kv/after", "x", 1, 201);
		cr_assert_gt(v, max, "versions keep growing");
	}

	/* and a restart from the compacted file serves the same */
	it_stop_clean(&d);
	data_dir(dir, sizeof(dir));
	it_restart(&d, dir, NULL);
	expect_fill(d.port, vers);
	it_do(d.port, "GET", "/kv/after", NULL, NULL, 0, &r, 200);
	it_resp_free(&r);
	it_stop_clean(&d);
	it_assert_no_leaks();
}

/* Processes of the daemon (the master and its children) that still hold
 * a database.bin a compaction replaced: a descriptor or a mapping. */
static int holders_of_deleted(pid_t master, char *who, size_t n)
{
	DIR *proc = opendir("/proc");
	struct dirent *de;
	int found = 0;

	cr_assert_not_null(proc);
	who[0] = '\0';
	while ((de = readdir(proc))) {
		char path[300], buf[4096], *maps;
		pid_t pid = (pid_t)atoi(de->d_name), ppid = 0;
		FILE *f;
		size_t len;

		if (pid <= 0)
			continue;
		snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
		if (!(f = fopen(path, "r")))
			continue;
		if (!fgets(buf, sizeof(buf), f) ||
		    !strrchr(buf, ')') || sscanf(strrchr(buf, ')') + 2, "%*c %d", &ppid) != 1)
			ppid = 0;
		fclose(f);
		if (pid != master && ppid != master)
			continue;
		snprintf(path, sizeof(path), "/proc/%d/maps", (int)pid);
		if (!(f = fopen(path, "r")))
			continue;
		maps = malloc(1 << 20);
		cr_assert_not_null(maps);
		len = fread(maps, 1, (1 << 20) - 1, f);
		maps[len] = '\0';
		fclose(f);
		if (strstr(maps, "database.bin (deleted)")) {
			found++;
			snprintf(who + strlen(who), n - strlen(who), " pid %d maps it;", (int)pid);
		}
		free(maps);
		snprintf(path, sizeof(path), "/proc/%d/fd", (int)pid);
		DIR *fds = opendir(path);
		while (fds && (de = readdir(fds))) {
			char link[600], target[600];
			ssize_t t;
			snprintf(link, sizeof(link), "%s/%s", path, de->d_name);
			if ((t = readlink(link, target, sizeof(target) - 1)) <= 0)
				continue;
			target[t] = '\0';
			if (strstr(target, "database.bin (deleted)")) {
				found++;
				snprintf(who + strlen(who), n - strlen(who),
					 " pid %d has fd %s;", (int)pid, de->d_name);
			}
		}
		if (fds)
			closedir(fds);
		de = NULL;
	}
	closedir(proc);
	return found;
}

/* Compaction gives the old file's space back while caskd runs: within a
 * few heartbeats of idle loops no process (master, workers, their sync
 * threads) holds a replaced database.bin. It used to be kept until a
 * reload or a restart: every compaction's old copy stayed on disk. */
Test(it_compact, replaced_files_are_released_while_idle)
{
	uint64_t vers[NKEYS];
	char who[1024];
	int held = 0;

	it_start(&d, base, sizeof(base), NULL);
	fill(d.port, vers);
	for (int round = 0; round < 3; round++) {
		fill(d.port, vers);
		compact_done(d.port, NULL);
	}
	/* idle now: give the loops and threads a few beats */
	for (int waited = 0; waited < 3000; waited += 100) {
		if (!(held = holders_of_deleted(d.pid, who, sizeof(who))))
			break;
		usleep(100 * 1000);
	}
	cr_assert_eq(held, 0, "replaced database.bin files still held 3 s after the "
		     "last compaction:%s", who);
	expect_fill(d.port, vers);
	it_stop_clean(&d);
	it_assert_no_leaks();
}

/* PUTs after a compaction, each until it is answered 2xx or the wait
 * runs out: how many needed more than one try. */
static int puts_go_through(int port, int n, int wait_ms)
{
	int64_t deadline = it_now_ms() + wait_ms;
	int retried = 0;

	for (int i = 0; i < n; i++) {
		char path[32];
		int tries = 0;

		snprintf(path, sizeof(path), "/kv/after%d", i);
		for (;;) {
			struct it_resp r;
			int st;

			IT_OK(it_request(port, "PUT", path, NULL, "v", 1, &r));
			st = r.status;
			it_resp_free(&r);
			if (st == 201 || st == 204)
				break;
			cr_assert_lt(it_now_ms(), deadline, "PUT %s still %d after %d ms", path,
				     st, wait_ms);
			tries++;
			it_sleep_ms(100);
		}
		retried += tries > 0;
	}
	return retried;
}

/* A sync thread that cannot map the new file once (EMFILE) tries again:
 * it used to fail every durable write and read of its worker from then
 * on. */
/* A 2-worker daemon armed with spec, filled and compacted once. */
static void start_filled_compacted(const char *spec, uint64_t *vers)
{
	char dir[300];
	int rc;

	rc = it_tmpdir(base, sizeof(base));
	cr_assert_eq(rc, 0);
	data_dir(dir, sizeof(dir));
	it_start_armed(&d, spec, dir, 2, NULL);
	fill(d.port, vers);
	compact_done(d.port, NULL);
}

Test(it_compact, a_transient_sync_error_is_tried_again)
{
	uint64_t vers[NKEYS];

	start_filled_compacted("sync.remap=emfile@1", vers);
	cr_assert_eq(puts_go_through(d.port, 40, 5000), 0,
		     "writes failed after one EMFILE in the sync thread");
	cr_assert(log_has(&d, "trying again"), "the retry is logged");
	expect_fill(d.port, vers);
	it_stop_clean(&d);
	it_assert_no_leaks();
}

/* One that keeps failing gives up: its worker stops and the master starts
 * a fresh one, whose writes go through (never a worker stuck failing). */
Test(it_compact, a_lasting_sync_error_replaces_the_worker, .timeout = 90)
{
	uint64_t vers[NKEYS];

	start_filled_compacted("sync.remap=emfile", vers);
	puts_go_through(d.port, 20, 40000);
	cr_assert(log_has(&d, "the sync thread gave up"), "the worker said why it stopped");
	cr_assert_geq(metric(d.port, "caskd_worker_restarts_total"), 1);
	expect_fill(d.port, vers);
	it_stop_clean(&d);
	it_assert_no_leaks();
}

Test(it_compact, a_second_post_while_running_returns_the_same_job)
{
	uint64_t vers[NKEYS], id1, id2;
	char state[32], dir[300], *job;

	cr_assert_eq(it_tmpdir(base, sizeof(base)), 0);
	data_dir(dir, sizeof(dir));
	/* the job sleeps 200 ms after its cut: it runs long enough to be
	 * asked again */
	it_start_armed(&d, "compact.cut=delay", dir, IT_WORKERS, NULL);
	fill(d.port, vers);
	id1 = it_compact_start(d.port, NULL);
	id2 = it_compact_start(d.port, NULL);
	cr_assert_eq(id1, id2, "a job runs: the same id comes back");
	job = it_job_wait(d.port, id1, NULL, state, sizeof(state));
	cr_assert_str_eq(state, "done", "%s", job);
	free(job);
	id2 = it_compact_start(d.port, NULL);
	cr_assert_gt(id2, id1, "a new request after it ends is a new job");
	job = it_job_wait(d.port, id2, NULL, state, sizeof(state));
	cr_assert_str_eq(state, "done", "%s", job);
	free(job);
	expect_fill(d.port, vers);
	it_expect_error(d.port, "GET", "/admin/jobs/999999", NULL, NULL, 0, 404,
			NULL);
	it_stop_clean(&d);
	it_assert_no_leaks();
}

/* GET /admin/jobs: the jobs kept, newest first, each as GET
 * /admin/jobs/{id} shows it. */
Test(it_compact, jobs_lists_recent_jobs_newest_first)
{
	uint64_t id[3];
	char state[32], want[64], *job;
	const char *at[3];
	struct it_resp r;

	it_start(&d, base, sizeof(base), NULL);
	it_do(d.port, "GET", "/admin/jobs", NULL, NULL, 0, &r, 200);
	cr_assert_str_eq(r.body, "{\"jobs\":[]}", "before any job: %s", it_resp_brief(&r));
	it_resp_free(&r);
	for (int i = 0; i < 3; i++) {
		it_put(d.port, "/kv/k", "v", 1, 0);
		id[i] = it_compact_start(d.port, NULL);
		job = it_job_wait(d.port, id[i], NULL, state, sizeof(state));
		cr_assert_str_eq(state, "done", "%s", job);
		free(job);
	}
	it_do(d.port, "GET", "/admin/jobs", NULL, NULL, 0, &r, 200);
	cr_assert_str_eq(it_resp_header(&r, "Content-Type"), "application/json");
	cr_assert(!strncmp(r.body, "{\"jobs\":[{", 10), "%s", r.body);
	for (int i = 0; i < 3; i++) {
		snprintf(want, sizeof(want), "{\"id\":\"%" PRIu64 "\",\"kind\":\"compact\"", id[i]);
		at[i] = strstr(r.body, want);
		cr_assert_not_null(at[i], "job %" PRIu64 " is not listed: %s", id[i], r.body);
	}
	cr_assert(at[2] < at[1] && at[1] < at[0], "not newest first: %s", r.body);
	cr_assert(strstr(r.body, "\"state\":\"done\"") && !strstr(r.body, "\"bytes_after\":null"),
		  "done jobs carry their sizes: %s", r.body);
	it_resp_free(&r);
	it_expect_error(d.port, "POST", "/admin/jobs", NULL, "", 0, 405, "method_not_allowed");
	it_stop_clean(&d);
	it_assert_no_leaks();
}

/* Admin endpoints take no query parameters: one is a mistake to name,
 * not to pass over (compact?wait=1 would start a job and not wait). */
Test(it_compact, admin_query_parameters_are_400_naming_them)
{
	static const char *const paths[][2] = {
		{ "POST", "/admin/compact?wait=1" },
		{ "GET", "/admin/jobs?limit=5" },
		{ "GET", "/admin/jobs/1?x" },
		{ "GET", "/admin/snapshot?gzip=1" },
	};
	struct it_resp r;

	it_start(&d, base, sizeof(base), NULL);
	for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
		const char *q = strchr(paths[i][1], '?') + 1;
		char named[32];

		snprintf(named, sizeof(named), "'%.*s'", (int)strcspn(q, "="), q);
		it_expect_error_saying(d.port, paths[i][0], paths[i][1], NULL,
				       paths[i][0][0] == 'P' ? "" : NULL, 0, 400, "bad_query", named);
	}
	it_do(d.port, "GET", "/admin/jobs", NULL, NULL, 0, &r, 200);
	cr_assert_str_eq(r.body, "{\"jobs\":[]}", "a refused POST started a job: %s",
			 it_resp_brief(&r));
	it_resp_free(&r);
	it_stop_clean(&d);
	it_assert_no_leaks();
}

/* Writers own disjoint keys and record what was acknowledged; the test
 * compacts meanwhile, then checks every key holds its last ack. */
struct acks {
	volatile uint64_t last[WRITERS];   /* last acknowledged round + 1 */
	volatile uint64_t ver[WRITERS][8];
	volatile int stop;
};

static void writer(int idx, void *arg)
{
	struct acks *a = arg;
	char path[64], val[64];

	for (int i = 0; i < WRITES_EACH; i++) {
		struct it_resp r;
		int k = i % 8, n;

		snprintf(path, sizeof(path), "/kv/w%d-%d", idx, k);
		n = snprintf(val, sizeof(val), "w%d-%d-%d", idx, k, i);
		if (it_request(d.port, "PUT", path, NULL, val, (size_t)n, &r))
			it_child_fail("PUT %s: no response", path);
		if (r.status != 201 && r.status != 204)
			it_child_fail("PUT %s: %s", path, it_resp_brief(&r));
		{
			uint64_t v;

			if (it_resp_version(&r, &v))
				it_child_fail("PUT %s: no ETag", path);
			if (v <= a->ver[idx][k])
				it_child_fail("version went back on %s", path);
			a->ver[idx][k] = v;
		}
		it_resp_free(&r);
		a->last[idx] = (uint64_t)i + 1;
	}
}

/* Readers check the fill's keys while the job swaps files under them. */
static void reader(int idx, void *arg)
{
	const uint64_t *vers = arg;
	char path[64], val[VAL_LEN + 1];

	for (int n = 0; n < 600; n++) {
		int i = (n * 7 + idx) % NKEYS;
		struct it_resp r;
		uint64_t v;

		snprintf(path, sizeof(path), "/kv/k%04d", i);
		if (it_request(d.port, "GET", path, NULL, NULL, 0, &r))
			it_child_fail("GET %s: no response", path);
		if (!vers[i]) {
			if (r.status != 404)
				it_child_fail("deleted %s: %s", path, it_resp_brief(&r));
		} else {
			it_round_value(val, VAL_LEN, i, OVERWRITES - 1);
			if (r.status != 200 || r.body_len != VAL_LEN ||
			    memcmp(r.body, val, VAL_LEN))
				it_child_fail("GET %s during compaction: %s", path,
					      it_resp_brief(&r));
			if (it_resp_version(&r, &v) || v != vers[i])
				it_child_fail("GET %s: version changed", path);
		}
		it_resp_free(&r);
	}
}

struct load {
	struct acks *acks;
	uint64_t *vers;
};

static void client(int idx, void *arg)
{
	struct load *l = arg;

	if (idx < WRITERS)
		writer(idx, l->acks);
	else
		reader(idx - WRITERS, l->vers);
}

static void expect_acks(int port, const struct acks *a)
{
	for (int w = 0; w < WRITERS; w++)
		for (int k = 0; k < 8 && (uint64_t)k < a->last[w]; k++) {
			char path[64], val[64];
			/* the last round i < last with i % 8 == k */
			uint64_t i = ((a->last[w] - 1 - (uint64_t)k) / 8) * 8 + (uint64_t)k;
			int n;

			snprintf(path, sizeof(path), "/kv/w%d-%d", w, k);
			n = snprintf(val, sizeof(val), "w%d-%d-%" PRIu64, w, k, i);
			it_expect_value(port, path, val, (size_t)n, a->ver[w][k]);
		}
}

Test(it_compact, readers_and_writers_during_jobs_lose_nothing)
{
	struct acks *a = it_shared_alloc(sizeof(*a));
	uint64_t *vers = it_shared_alloc(sizeof(uint64_t) * NKEYS);
	struct load l = { a, vers };
	pid_t pid;
	int jobs = 0, failed, st;
	char dir[300];

	it_start(&d, base, sizeof(base), NULL);
	fill(d.port, vers);
	/* the clients run in a child of their own so that the test process
	 * can compact meanwhile */
	pid = fork();
	cr_assert_geq(pid, 0);
	if (pid == 0)
		_exit(it_fork_clients(WRITERS + 2, client, &l) ? 1 : 0);
	while (waitpid(pid, &st, WNOHANG) == 0) {
		char state[32], *job;
		uint64_t id = it_compact_start(d.port, NULL);

		job = it_job_wait(d.port, id, NULL, state, sizeof(state));
		cr_assert_str_eq(state, "done", "%s", job);
		free(job);
		jobs++;
	}
	failed = !WIFEXITED(st) || WEXITSTATUS(st);
	cr_assert_eq(failed, 0, "a client saw a wrong answer (see above)");
	cr_assert_geq(jobs, 1);
	cr_log_info("%d compactions ran under load", jobs);
	for (int w = 0; w < WRITERS; w++)
		cr_assert_eq(a->last[w], WRITES_EACH);
	expect_acks(d.port, a);
	expect_fill(d.port, vers);

	it_daemon_kill9_all(&d);
	data_dir(dir, sizeof(dir));
	it_restart(&d, dir, NULL);
	expect_acks(d.port, a);
	expect_fill(d.port, vers);
	it_stop_clean(&d);
	it_shared_free(a, sizeof(*a));
	it_shared_free(vers, sizeof(uint64_t) * NKEYS);
	it_assert_no_leaks();
}

/* kill -9 of the job at one of its steps: the job is failed (or, past the
 * rename, finished by the master), every write is there (those made while
 * the job ran too: the job sleeps right after its cut so that they land
 * between its cut and its catch-up), a new job works, and a kill -9 of everything
 * then a restart serves it all again. */
#define DURING 5

static void expect_during(int port, const uint64_t *dv)
{
	char path[64], val[32];
	int n;

	for (int i = 0; i < DURING; i++) {
		snprintf(path, sizeof(path), "/kv/during%d", i);
		n = snprintf(val, sizeof(val), "written during the job %d", i);
		it_expect_value(port, path, val, (size_t)n, dv[i]);
	}
}

static void crash_job_at(const char *point)
{
	char spec[128], dir[300], state[32], path[64], val[32], *job;
	uint64_t vers[NKEYS], dv[DURING], id;
	int rc, n;

	rc = it_tmpdir(base, sizeof(base));
	cr_assert_eq(rc, 0);
	data_dir(dir, sizeof(dir));
	if (!strcmp(point, "compact.cut"))
		snprintf(spec, sizeof(spec), "%s=crash", point);
	else
		snprintf(spec, sizeof(spec), "compact.cut=delay,%s=crash", point);
	it_start_armed(&d, spec, dir, IT_WORKERS, NULL);
	fill(d.port, vers);

	id = it_compact_start(d.port, NULL);
	for (int i = 0; i < DURING; i++) {
		snprintf(path, sizeof(path), "/kv/during%d", i);
		n = snprintf(val, sizeof(val), "written during the job %d", i);
		dv[i] = it_put(d.port, path, val, (size_t)n, 201);
	}
	job = it_job_wait(d.port, id, NULL, state, sizeof(state));
	cr_log_info("job killed at %s: %s", point, job);
	if (!strcmp(point, "compact.cut") || !strcmp(point, "compact.copy") ||
	    !strcmp(point, "compact.catchup") || !strcmp(point, "compact.swap") ||
	    !strcmp(point, "compact.renaming"))
		cr_assert_str_eq(state, "failed", "killed before its rename: %s", job);
	else
		cr_assert_str_eq(state, "done", "the master finishes the swap: %s",
				 job);
	if (!strcmp(state, "failed"))
		cr_assert(strstr(job, "\"error\":\""), "%s", job);
	else
		cr_assert_lt(it_json_u64(job, "bytes_after"), it_json_u64(job, "bytes_before"),
			     "%s", job);
	free(job);
	expect_fill(d.port, vers);
	expect_during(d.port, dv);
	it_put(d.port, "/kv/between", "b", 1, 0);

	/* everything killed, then a restart without failpoints */
	it_daemon_kill9_all(&d);
	it_restart(&d, dir, NULL);
	expect_fill(d.port, vers);
	expect_during(d.port, dv);
	it_expect_value(d.port, "/kv/between", "b", 1, 0);
	cr_assert(!file_exists("database.bin.compact"),
		  "the restart removed the dead job's file");
	/* the dead job may have finished its work (past the rename) */
	compact_run(d.port, NULL, 0);
	expect_fill(d.port, vers);
	expect_during(d.port, dv);
	it_expect_value(d.port, "/kv/between", "b", 1, 0);
	it_stop_clean(&d);
	it_assert_no_leaks();
}

Test(it_compact, job_killed_after_its_cut) { crash_job_at("compact.cut"); }
Test(it_compact, job_killed_while_copying) { crash_job_at("compact.copy"); }
Test(it_compact, job_killed_in_catch_up) { crash_job_at("compact.catchup"); }
Test(it_compact, job_killed_frozen_before_rename) { crash_job_at("compact.swap"); }
Test(it_compact, job_killed_with_its_swap_recorded_before_rename)
{
	crash_job_at("compact.renaming");
}
/* The window between rename() and the stage record: the master used to
 * see FROZEN, "undo" a swap that had happened, and let writers append
 * to the unlinked old file. */
Test(it_compact, job_killed_between_rename_and_its_record)
{
	crash_job_at("compact.renamed");
}
Test(it_compact, job_killed_after_rename) { crash_job_at("compact.rename"); }
Test(it_compact, job_killed_after_dir_sync) { crash_job_at("compact.dirsync"); }
Test(it_compact, job_killed_after_flip) { crash_job_at("compact.unlink"); }
Test(it_compact, job_killed_when_done) { crash_job_at("compact.done"); }

Test(it_compact, full_disk_fails_the_job_and_the_old_file_serves)
{
	char dir[300], state[32], *job;
	uint64_t vers[NKEYS], id;
	int rc;

	rc = it_tmpdir(base, sizeof(base));
	cr_assert_eq(rc, 0);
	data_dir(dir, sizeof(dir));
	it_start_armed(&d, "compact.copy=enospc", dir, IT_WORKERS, NULL);
	fill(d.port, vers);
	id = it_compact_start(d.port, NULL);
	job = it_job_wait(d.port, id, NULL, state, sizeof(state));
	cr_assert_str_eq(state, "failed", "%s", job);
	cr_assert(strstr(job, "\"error\":\""), "the job names its error: %s",
		  job);
	/* it made no file: no size or key count of one */
	cr_assert(strstr(job, "\"bytes_after\":null") && strstr(job, "\"keys\":null"),
		  "a failed job reports sizes of a file it never made: %s", job);
	cr_assert_gt(it_json_u64(job, "bytes_before"), 0, "%s", job);
	free(job);
	cr_assert(!file_exists("database.bin.compact"));
	expect_fill(d.port, vers);
	it_put(d.port, "/kv/after", "a", 1, 201);
	cr_assert_eq(metric(d.port, "caskd_compactions_failed_total"), 1);
	it_stop_clean(&d);
	it_assert_no_leaks();
}

Test(it_compact, starts_by_itself_when_garbage_passes_the_share)
{
	const char *const args[] = { "--compact-garbage-pct", "50",
				     "--compact-min-size", "64k", NULL };
	int64_t deadline;
	uint64_t vers[NKEYS];
	double log, live;

	it_start(&d, base, sizeof(base), args);
	fill(d.port, vers);
	/* once writes stop, garbage ends below half of the file */
	deadline = it_now_ms() + IT_JOB_WAIT_MS;
	for (;;) {
		log = metric(d.port, "caskd_log_bytes");
		live = metric(d.port, "caskd_live_bytes");
		if (log <= 2 * live + 64 * 1024)
			break;
		cr_assert_lt(it_now_ms(), deadline,
			     "garbage stays: log %.0f bytes, live %.0f", log, live);
		it_sleep_ms(50);
	}
	cr_assert_geq(metric(d.port, "caskd_compactions_done_total"), 1);
	expect_fill(d.port, vers);
	it_stop_clean(&d);
	it_assert_no_leaks();
}

/* --- snapshots -------------------------------------------------------------- */

static void snapshot_to(int port, const char *path)
{
	struct it_resp r;
	int fd;

	it_do(port, "GET", "/admin/snapshot", NULL, NULL, 0, &r, 200);
	cr_assert_str_eq(it_resp_header(&r, "Content-Type"),
			 "application/octet-stream");
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
	cr_assert_geq(fd, 0);
	cr_assert_eq(write(fd, r.body, r.body_len), (ssize_t)r.body_len);
	close(fd);
	it_resp_free(&r);
}

Test(it_compact, snapshot_while_writing_is_checked_and_restores)
{
	struct acks *a = it_shared_alloc(sizeof(*a));
	uint64_t vers[NKEYS];
	char snap[300], dir2[300], out[4096], err[4096];
	const char *argv[4];
	struct it_daemon d2;
	pid_t pid;
	int st, rc;

	it_start(&d, base, sizeof(base), NULL);
	fill(d.port, vers);
	snprintf(snap, sizeof(snap), "%s/backup.bin", base);
	pid = fork();
	cr_assert_geq(pid, 0);
	if (pid == 0)
		_exit(it_fork_clients(WRITERS, (void (*)(int, void *))writer, a) ? 1 : 0);
	snapshot_to(d.port, snap);
	cr_assert_eq(waitpid(pid, &st, 0), pid);
	cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "a writer failed");

	argv[0] = getenv("CASKD_BIN");
	argv[1] = "check";
	argv[2] = snap;
	argv[3] = NULL;
	rc = it_run_capture(argv, 30000, out, sizeof(out), err, sizeof(err), &st);
	cr_assert_eq(rc, 0);
	cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0,
		  "caskd check rejects the snapshot: %s%s", out, err);
	{
		char lock[320];

		snprintf(lock, sizeof(lock), "%s/caskd.lock", base);
		cr_assert(access(lock, F_OK) < 0, "check of a file made a lock file");
	}

	/* a caskd on a directory holding only the snapshot serves the fill
	 * exactly (it was acknowledged before the request) */
	snprintf(dir2, sizeof(dir2), "%s/restored", base);
	cr_assert_eq(mkdir(dir2, 0750), 0);
	{
		char dst[340];
		size_t n;
		char *buf;
		FILE *f = fopen(snap, "rb");

		cr_assert_not_null(f);
		buf = malloc(64u << 20);
		n = fread(buf, 1, 64u << 20, f);
		fclose(f);
		snprintf(dst, sizeof(dst), "%s/database.bin", dir2);
		f = fopen(dst, "wb");
		cr_assert_not_null(f);
		cr_assert_eq(fwrite(buf, 1, n, f), n);
		fclose(f);
		free(buf);
	}
	rc = it_daemon_start(&d2, dir2, 2, NULL);
	cr_assert_eq(rc, 0);
	expect_fill(d2.port, vers);
	it_stop_clean(&d2);
	it_stop_clean(&d);
	it_shared_free(a, sizeof(*a));
	it_assert_no_leaks();
}

/* --- admin access ------------------------------------------------------------ */

Test(it_compact, admin_token_is_required_and_compared)
{
	char tok[300], args_buf[300];
	const char *args[3];
	struct it_resp r;
	FILE *f;

	cr_assert_eq(it_tmpdir(base, sizeof(base)), 0);
	snprintf(tok, sizeof(tok), "%s/token", base);
	f = fopen(tok, "w");
	cr_assert_not_null(f);
	fputs("s3cret-token\n", f);
	fclose(f);
	chmod(tok, 0600);
	snprintf(args_buf, sizeof(args_buf), "%s", tok);
	args[0] = "--admin-token-file";
	args[1] = args_buf;
	args[2] = NULL;
	{
		char dir[300];

		data_dir(dir, sizeof(dir));
		cr_assert_eq(it_daemon_start(&d, dir, IT_WORKERS, args), 0);
	}
	it_expect_error(d.port, "POST", "/admin/compact", NULL, "", 0, 401, NULL);
	it_expect_error(d.port, "GET", "/admin/snapshot", NULL, NULL, 0, 401, NULL);
	it_expect_error(d.port, "GET", "/admin/jobs", NULL, NULL, 0, 401, NULL);
	it_expect_error(d.port, "POST", "/admin/compact",
			"Authorization: Bearer wrong\r\n", "", 0, 403, NULL);
	it_expect_error(d.port, "POST", "/admin/compact",
			"Authorization: Bearer s3cret-toke\r\n", "", 0, 403, NULL);
	it_expect_error(d.port, "POST", "/admin/compact",
			"Authorization: Basic czNjcmV0LXRva2Vu\r\n", "", 0, 401,
			NULL);
	it_do(d.port, "POST", "/admin/compact",
	      "Authorization: Bearer s3cret-token\r\n", "", 0, &r, 202);
	it_resp_free(&r);
	/* the data API needs no token */
	it_put(d.port, "/kv/x", "1", 1, 201);
	it_stop_clean(&d);
	it_assert_no_leaks();
}

/* --admin-token-file: a file caskd cannot take as it is stops the start
 * (exit 2, one line naming the option and the file: systemd's
 * RestartPreventExitStatus=2 then stops retrying); it is never cut. */
static void write_token_file(const char *path, const void *data, size_t len, mode_t mode)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);

	cr_assert_geq(fd, 0, "%s: %s", path, strerror(errno));
	cr_assert_eq(write(fd, data, len), (ssize_t)len);
	cr_assert_eq(fchmod(fd, mode), 0, "past the umask");
	close(fd);
}

static void expect_token_refused(const char *path, const char *why)
{
	const char *bin = getenv("CASKD_BIN");
	char dir[300], out[4096], err[4096];
	const char *argv[] = { bin, "--data-dir", dir, "--workers", "1", "--listen",
			       "127.0.0.1:0", "--admin-token-file", path, NULL };
	int st = 0;

	data_dir(dir, sizeof(dir));
	cr_assert_eq(it_run_capture(argv, 10000, out, sizeof(out), err, sizeof(err), &st), 0,
		     "caskd with a token file that %s did not exit (it served)", why);
	cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 2,
		  "a token file that %s: want exit 2, got 0x%x: %s", why, st, err);
	cr_assert_not_null(strstr(err, "--admin-token-file"), "names the option: %s", err);
	cr_assert_not_null(strstr(err, path), "names the file: %s", err);
	cr_assert_not_null(strstr(err, why), "says why: %s", err);
	cr_assert_eq(strchr(err, '\n'), err + strlen(err) - 1, "one line: %s", err);
}

Test(it_compact, admin_token_file_that_cannot_be_taken_stops_the_start)
{
	static const char nul[] = "a\0Zx9-long-secret";
	char path[300], big[4098];

	cr_assert_eq(it_tmpdir(base, sizeof(base)), 0);
	snprintf(path, sizeof(path), "%s/token", base);
	/* cut at the NUL, `Bearer a` would open it */
	write_token_file(path, nul, sizeof(nul) - 1, 0600);
	expect_token_refused(path, "holds a NUL byte");
	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\n';
	write_token_file(path, big, sizeof(big), 0600); /* 4097 bytes and a newline */
	expect_token_refused(path, "longer than 4096 bytes");
	write_token_file(path, "", 0, 0600);
	expect_token_refused(path, "is empty");
	write_token_file(path, "\n", 1, 0600);
	expect_token_refused(path, "is empty");
	write_token_file(path, "abc\ndef\n", 8, 0600);
	expect_token_refused(path, "control character");
	snprintf(path, sizeof(path), "%s/missing", base);
	expect_token_refused(path, "No such file or directory");
	expect_token_refused(base, "cannot read"); /* a directory */
	it_assert_no_leaks();
}

/* The whole token and nothing else, up to 4096 bytes; a file group or
 * others may read is taken with a warning. */
Test(it_compact, admin_token_is_compared_whole)
{
	static const char tok[] = "aZx9-long-secret\n";
	char path[300], dir[300], log[8192], hdr[4200], big[4097];
	const char *args[] = { "--admin-token-file", path, NULL };

	cr_assert_eq(it_tmpdir(base, sizeof(base)), 0);
	snprintf(path, sizeof(path), "%s/token", base);
	data_dir(dir, sizeof(dir));
	write_token_file(path, tok, strlen(tok), 0600);
	it_restart(&d, dir, args);
	/* authorized: a job that does not exist is 404, not 403 */
	it_expect_error(d.port, "GET", "/admin/jobs/999", "Authorization: Bearer a\r\n",
			NULL, 0, 403, NULL);
	it_expect_error(d.port, "GET", "/admin/jobs/999", "Authorization: Bearer aZx9\r\n",
			NULL, 0, 403, NULL);
	it_expect_error(d.port, "GET", "/admin/jobs/999",
			"Authorization: Bearer aZx9-long-secretX\r\n", NULL, 0, 403, NULL);
	it_expect_error(d.port, "GET", "/admin/jobs/999",
			"Authorization: Bearer aZx9-long-secret\r\n", NULL, 0, 404, NULL);
	cr_assert_eq(it_read_tail(d.log, log, sizeof(log)), 0);
	cr_assert_null(strstr(log, "can be read by group or others"), "mode 0600: %s", log);
	it_stop_clean(&d);

	memset(big, 'k', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\n';
	write_token_file(path, big, sizeof(big), 0644); /* 4096 bytes and a newline */
	it_restart(&d, dir, args);
	cr_assert_eq(it_read_tail(d.log, log, sizeof(log)), 0);
	cr_assert_not_null(strstr(log, "can be read by group or others (mode 0644)"),
			   "%s", log);
	snprintf(hdr, sizeof(hdr), "Authorization: Bearer %.4096s\r\n", big);
	it_expect_error(d.port, "GET", "/admin/jobs/999", hdr, NULL, 0, 404, NULL);
	snprintf(hdr, sizeof(hdr), "Authorization: Bearer %.4095s\r\n", big);
	it_expect_error(d.port, "GET", "/admin/jobs/999", hdr, NULL, 0, 403, NULL);
	it_stop_clean(&d);
	it_assert_no_leaks();
}

Test(it_compact, admin_without_token_answers_loopback)
{
	struct it_resp r;

	it_start(&d, base, sizeof(base), NULL);
	it_do(d.port, "POST", "/admin/compact", NULL, "", 0, &r, 202);
	it_resp_free(&r);
	it_expect_error(d.port, "GET", "/admin/compact", NULL, NULL, 0, 405, NULL);
	it_stop_clean(&d);
	it_assert_no_leaks();
}

/* A peer off loopback, without a network: this test process moves into
 * a network namespace of its own, brings its lo up and gives it a second
 * address, OFF_LOOPBACK (TEST-NET-1), that is not in 127/8. -EPERM where
 * namespaces are not allowed. */
#define OFF_LOOPBACK "192.0.2.10"

static int netns_with_address(const char *addr)
{
	struct ifreq ifr;
	struct sockaddr_in *sin = (struct sockaddr_in *)&ifr.ifr_addr;
	int fd, rc = 0;

	if (unshare(CLONE_NEWNET) < 0)
		return -errno;
	if ((fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0)) < 0)
		return -errno;
	memset(&ifr, 0, sizeof(ifr));
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "lo");
	if (ioctl(fd, SIOCGIFFLAGS, &ifr) < 0)
		rc = -errno;
	ifr.ifr_flags |= IFF_UP | IFF_RUNNING;
	if (!rc && ioctl(fd, SIOCSIFFLAGS, &ifr) < 0)
		rc = -errno;
	memset(&ifr, 0, sizeof(ifr));
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "lo:1");
	sin->sin_family = AF_INET;
	if (!rc && inet_pton(AF_INET, addr, &sin->sin_addr) != 1)
		rc = -EINVAL;
	if (!rc && ioctl(fd, SIOCSIFADDR, &ifr) < 0)
		rc = -errno;
	close(fd);
	return rc;
}

/* One request from addr to addr:port; the status, or -errno. */
static int status_from(const char *addr, int port, const char *req)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
	char buf[512];
	size_t got = 0;
	int fd, st = -EPROTO;

	if (inet_pton(AF_INET, addr, &sa.sin_addr) != 1)
		return -EINVAL;
	if ((fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0)
		return -errno;
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
	    write(fd, req, strlen(req)) != (ssize_t)strlen(req)) {
		st = -errno;
		close(fd);
		return st;
	}
	for (ssize_t n; got < sizeof(buf) - 1 &&
	     (n = read(fd, buf + got, sizeof(buf) - 1 - got)) > 0;)
		got += (size_t)n;
	buf[got] = '\0';
	close(fd);
	if (sscanf(buf, "HTTP/1.1 %d", &st) != 1)
		return -EPROTO;
	cr_assert(st < 300 || strstr(buf, "\"error\":"), "no JSON error: %s", buf);
	return st;
}

Test(it_compact, admin_without_token_refuses_a_peer_off_loopback)
{
	char dir[300], listen[64];
	const char *args[3];
	int port = it_free_port(), rc;

	rc = netns_with_address(OFF_LOOPBACK);
	if (rc == -EPERM)
		cr_skip_test("unshare(CLONE_NEWNET): EPERM (no network namespaces "
			     "here): no peer off loopback to test with");
	cr_assert_eq(rc, 0, "a network namespace with " OFF_LOOPBACK ": %s",
		     strerror(-rc));
	snprintf(listen, sizeof(listen), OFF_LOOPBACK ":%d", port);
	args[0] = "--listen";
	args[1] = listen;
	args[2] = NULL;
	cr_assert_eq(it_tmpdir(base, sizeof(base)), 0);
	data_dir(dir, sizeof(dir));
	cr_assert_eq(it_daemon_start(&d, dir, IT_WORKERS, args), 0);

	cr_assert_eq(status_from(OFF_LOOPBACK, port,
				 "POST /admin/compact HTTP/1.1\r\nHost: x\r\n"
				 "Content-Length: 0\r\nConnection: close\r\n\r\n"), 403,
		     "admin from a peer off loopback without a token file");
	cr_assert_eq(status_from(OFF_LOOPBACK, port,
				 "GET /admin/snapshot HTTP/1.1\r\nHost: x\r\n"
				 "Connection: close\r\n\r\n"), 403);
	/* the data API answers that peer, and admin answers loopback */
	cr_assert_eq(status_from(OFF_LOOPBACK, port,
				 "PUT /kv/x HTTP/1.1\r\nHost: x\r\n"
				 "Content-Length: 1\r\nConnection: close\r\n\r\nv"), 201);
	it_compact_start(d.port, NULL);
	it_stop_clean(&d);
	it_assert_no_leaks();
}

/* --- restarts ----------------------------------------------------------------- */

Test(it_compact, clean_stop_restarts_from_the_index_snapshot)
{
	uint64_t vers[NKEYS];
	char dir[300];

	it_start(&d, base, sizeof(base), NULL);
	fill(d.port, vers);
	it_stop_clean(&d);
	cr_assert(file_exists("database.idx"), "a clean stop writes database.idx");
	data_dir(dir, sizeof(dir));
	it_restart(&d, dir, NULL);
	cr_assert(log_has(&d, "index from database.idx"),
		  "the restart used the index snapshot");
	expect_fill(d.port, vers);
	it_stop_clean(&d);
	it_assert_no_leaks();
}

Test(it_compact, damaged_or_stale_index_snapshot_is_ignored)
{
	uint64_t vers[NKEYS], v;
	char dir[300], idx[400];
	struct stat st;
	int fd;

	it_start(&d, base, sizeof(base), NULL);
	fill(d.port, vers);
	it_stop_clean(&d);
	data_dir(dir, sizeof(dir));
	snprintf(idx, sizeof(idx), "%s/database.idx", dir);

	/* damaged: one flipped byte in the entries */
	cr_assert_eq(stat(idx, &st), 0);
	fd = open(idx, O_RDWR | O_CLOEXEC);
	cr_assert_geq(fd, 0);
	{
		unsigned char b;
		off_t at = st.st_size / 2;

		cr_assert_eq(pread(fd, &b, 1, at), 1);
		b ^= 0x40;
		cr_assert_eq(pwrite(fd, &b, 1, at), 1);
	}
	close(fd);
	it_restart(&d, dir, NULL);
	cr_assert(log_has(&d, "ignoring"), "the damaged snapshot was named");
	expect_fill(d.port, vers);

	/* stale: written, then the daemon is killed after more writes; the
	 * old snapshot must not hide them */
	it_stop_clean(&d);
	it_restart(&d, dir, NULL);
	v = it_put(d.port, "/kv/k0001", "newer", 5, 204);
	it_daemon_kill9_all(&d);
	it_restart(&d, dir, NULL);
	it_expect_value(d.port, "/kv/k0001", "newer", 5, v);
	vers[1] = 0; /* checked above */
	for (int i = 2; i < NKEYS; i++)
		if (vers[i]) {
			char path[64], val[VAL_LEN + 1];

			snprintf(path, sizeof(path), "/kv/k%04d", i);
			it_round_value(val, VAL_LEN, i, OVERWRITES - 1);
			it_expect_value(d.port, path, val, VAL_LEN, vers[i]);
		}
	it_stop_clean(&d);
	it_assert_no_leaks();
}

Test(it_compact, versions_are_never_reused_across_kill9)
{
	uint64_t seen = 0, v;
	char dir[300];

	it_start(&d, base, sizeof(base), NULL);
	data_dir(dir, sizeof(dir));
	for (int round = 0; round < 3; round++) {
		for (int i = 0; i < 20; i++) {
			v = it_put(d.port, "/kv/v", "x", 1, 0);
			cr_assert_gt(v, seen, "version %" PRIu64 " after %" PRIu64, v, seen);
			seen = v;
		}
		/* the last write deleted: its version must not come back */
		{
			struct it_resp r;

			it_do(d.port, "DELETE", "/kv/v", NULL, NULL, 0, &r, 204);
			cr_assert_eq(it_resp_version(&r, &v), 0);
			cr_assert_gt(v, seen);
			seen = v;
			it_resp_free(&r);
		}
		it_daemon_kill9_all(&d);
		it_restart(&d, dir, NULL);
	}
	v = it_put(d.port, "/kv/v", "y", 1, 201);
	cr_assert_gt(v, seen);
	it_stop_clean(&d);
	it_assert_no_leaks();
}
