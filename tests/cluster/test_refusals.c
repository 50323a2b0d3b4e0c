/* tests/cluster/test_refusals.c — what the cluster drill does not reach:
 * members that must refuse to start, and a replica whose disk fills
 * (docs/cluster.md, ../shared/CLUSTER.md).
 *
 * No network namespaces: etcd (started here, in the test's temp dir) and
 * the members run on 127.0.0.1 on free ports; everything is killed and
 * removed at the end, however the test ends (etcd and the members die
 * with the test process through PR_SET_PDEATHSIG).
 *
 *   cluster/refuses_misconfigured_members
 *       exit 2 and one log line naming the reason, within
 *       REFUSE_TIMEOUT_MS, for: a data dir of another group; a node name
 *       a live member uses with another --advertise; a --group-size the
 *       group's record in etcd contradicts; --fsync periodic. And with
 *       etcd unreachable a member neither exits nor leads: it stays a
 *       candidate, /cluster/primary 503.
 *   cluster/replica_with_a_full_disk_stops_acknowledging_and_catches_up
 *       a group of 3 whose third member's data dir is a 24 MiB tmpfs
 *       (mounted in a mount namespace of the test's own, so it vanishes
 *       with the test): writes of 64 KiB through the primary fill it; it
 *       must say disk_full (status and metric) while writes go on through
 *       the other replica, and catch up once the tmpfs is made larger.
 *
 * Needs etcd on PATH and root (the tmpfs); without them the tests FAIL,
 * unless CASKD_CLUSTER_SKIP is set.
 */
#include "tests/integration/harness.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

/* A refused member has exited with status 2 within this. */
#define REFUSE_TIMEOUT_MS 15000
/* A member shows itself in its own member list (it joined) within this. */
#define JOIN_TIMEOUT_MS 15000
/* One primary and one caught-up replica (or one more replica) within this. */
#define GROUP_TIMEOUT_MS 30000
/* The etcd-less member is watched this long: it must stay a candidate. */
#define NO_ETCD_WATCH_MS 4000
/* Writes of VALUE_LEN fill the small disk within this many. */
#define FILL_MAX_WRITES 2000
#define VALUE_LEN (64 * 1024)
/* The third member's tmpfs, and its size once room is made. */
#define SMALL_DISK "size=24m,mode=0755"
#define LARGE_DISK "size=256m,mode=0755"
/* The full replica stops for this long (its version unchanged, saying
 * disk_full) before it counts as full; the fill ends within
 * FILL_TIMEOUT_MS; while it says disk_full writes come every
 * FULL_POLL_MS. */
#define FULL_STALL_MS 1500
#define FILL_TIMEOUT_MS 20000
#define FULL_POLL_MS 50
/* While full, the replica's status and metric are sampled this long,
 * this often. */
#define FULL_WATCH_MS 3000
#define FULL_SAMPLE_MS 2
/* The full replica holds the primary's version within this of the room. */
#define CATCH_UP_MS 30000
#define MAX_MEMBERS 8
#define LOG_MAX (256 * 1024)

static struct {
	char base[256];
	pid_t etcd;
	int etcd_port;
	char etcd_url[64];
	char etcd_log[300];
	struct it_daemon m[MAX_MEMBERS];
	int nm;
	char mnt[300]; /* the tmpfs mounted by the test, or "" */
} g;

/* ==== environment ======================================================== */


static void require(int need_root)
{
	const char *bin = getenv("CASKD_BIN");

	if (getenv("CASKD_CLUSTER_SKIP"))
		cr_skip_test("cluster tests skipped: CASKD_CLUSTER_SKIP is set");
	cr_assert(it_on_path("etcd"), "`etcd` is missing: install the Makefile's "
		  "DEB_CLUSTER (make deps-test), or set CASKD_CLUSTER_SKIP=1");
	cr_assert(!need_root || geteuid() == 0, "this test mounts a tmpfs: it needs "
		  "root (CI runs as root); set CASKD_CLUSTER_SKIP=1 to skip");
	cr_assert(bin && access(bin, X_OK) == 0, "CASKD_BIN (%s) is not an "
		  "executable caskd", bin ? bin : "unset");
}

/* ==== etcd ================================================================ */

static int http_get(int port, const char *path, struct it_resp *r)
{
	return it_request(port, "GET", path, NULL, NULL, 0, r);
}

static void etcd_start(void)
{
	char curl[64], purl[64], ic[96], dir[300];
	int pport;
	pid_t parent = getpid(), pid;
	int64_t end;

	do {
		g.etcd_port = it_free_port();
		pport = it_free_port();
		cr_assert(g.etcd_port > 0 && pport > 0, "no free port");
	} while (g.etcd_port == pport);
	snprintf(curl, sizeof(curl), "http://127.0.0.1:%d", g.etcd_port);
	snprintf(purl, sizeof(purl), "http://127.0.0.1:%d", pport);
	snprintf(ic, sizeof(ic), "e1=%s", purl);
	snprintf(dir, sizeof(dir), "%s/etcd.data", g.base);
	snprintf(g.etcd_log, sizeof(g.etcd_log), "%s/etcd.log", g.base);
	snprintf(g.etcd_url, sizeof(g.etcd_url), "%s", curl);
	fflush(NULL);
	pid = fork();
	cr_assert(pid >= 0, "fork: %s", strerror(errno));
	if (pid == 0) {
		it_child_detach(parent, SIGKILL, g.etcd_log);
		execlp("etcd", "etcd", "--name", "e1", "--data-dir", dir,
		       "--listen-client-urls", curl, "--advertise-client-urls", curl,
		       "--listen-peer-urls", purl, "--initial-advertise-peer-urls", purl,
		       "--initial-cluster", ic, "--initial-cluster-state", "new",
		       "--log-level", "warn", (char *)NULL);
		_exit(127);
	}
	setpgid(pid, pid);
	g.etcd = pid;
	end = it_now_ms() + 15000;
	while (it_now_ms() < end) {
		struct it_resp r;
		int st;

		cr_assert(waitpid(pid, &st, WNOHANG) == 0, "etcd exited at start (see %s)",
			  g.etcd_log);
		if (http_get(g.etcd_port, "/health", &r) == 0) {
			int ok = r.status == 200 && r.body && strstr(r.body, "true");

			it_resp_free(&r);
			if (ok)
				return;
		}
		it_sleep_ms(100);
	}
	cr_assert_fail("etcd did not answer /health within 15 s (see %s)", g.etcd_log);
}

/* ==== members ============================================================= */

/* Spawns a member on a free port, data dir base/sub, advertising
 * http://127.0.0.1:PORT; more: extra arguments or NULL. Does not wait. */
static struct it_daemon *member_spawn(const char *sub, const char *cluster, const char *node,
				      int group_size, const char *etcd,
				      const char *const *more)
{
	struct it_daemon *d;
	char dir[300], adv[64], gs[16];
	const char *argv[40];
	int n = 0, port = it_free_port();

	cr_assert(g.nm < MAX_MEMBERS, "too many members");
	cr_assert(port > 0, "no free port");
	d = &g.m[g.nm++];
	snprintf(dir, sizeof(dir), "%s/%s", g.base, sub);
	snprintf(adv, sizeof(adv), "http://127.0.0.1:%d", port);
	snprintf(gs, sizeof(gs), "%d", group_size);
	argv[n++] = "--cluster";
	argv[n++] = cluster;
	argv[n++] = "--etcd";
	argv[n++] = etcd;
	argv[n++] = "--node";
	argv[n++] = node;
	argv[n++] = "--advertise";
	argv[n++] = adv;
	argv[n++] = "--group-size";
	argv[n++] = gs;
	for (int i = 0; more && more[i] && n < 39; i++)
		argv[n++] = more[i];
	argv[n] = NULL;
	cr_assert_eq(it_daemon_spawn_at(d, port, dir, 2, argv), 0,
		     "spawning member %s (%s)", node, dir);
	return d;
}

static void read_log(const struct it_daemon *d, char *buf, size_t n)
{
	if (it_read_tail(d->log, buf, n) < 0)
		buf[0] = '\0';
}

/* GET path on the member: status code, body into buf ("" if none); -errno. */
static int member_get(const struct it_daemon *d, const char *path, char *buf, size_t n)
{
	struct it_resp r;
	int rc = http_get(d->port, path, &r);

	if (buf && n)
		buf[0] = '\0';
	if (rc < 0)
		return rc;
	if (buf && n && r.body)
		snprintf(buf, n, "%s", r.body);
	rc = r.status;
	it_resp_free(&r);
	return rc;
}

/* The string field "name":"..." of a JSON body (the first one). */
static int json_str(const char *body, const char *name, char *out, size_t n)
{
	char key[64];
	const char *p, *e;

	snprintf(key, sizeof(key), "\"%s\":\"", name);
	if (!(p = strstr(body, key)))
		return -ENOENT;
	p += strlen(key);
	if (!(e = strchr(p, '"')))
		return -EPROTO;
	snprintf(out, n, "%.*s", (int)(e - p), p);
	return 0;
}

/* The number field "name":N of a JSON body (the first one: the top-level
 * "version" of /cluster/status comes before the members'). */
static int json_u64(const char *body, const char *name, uint64_t *v)
{
	char key[64], *end;
	const char *p;

	snprintf(key, sizeof(key), "\"%s\":", name);
	if (!(p = strstr(body, key)))
		return -ENOENT;
	p += strlen(key);
	*v = strtoull(p, &end, 10);
	return end == p ? -EPROTO : 0;
}

/* Polls /cluster/status until the member lists itself (it has joined:
 * etcd granted its lease and holds its member key). */
static void wait_joined(struct it_daemon *d, const char *node)
{
	char body[8192], want[96];
	int64_t end = it_now_ms() + JOIN_TIMEOUT_MS;

	snprintf(want, sizeof(want), "{\"node\":\"%s\",\"url\":\"http://", node);
	while (it_now_ms() < end) {
		if (it_daemon_wait_exit(d, 0) == 0) {
			it_daemon_dump_log(d);
			cr_assert_fail("member %s exited (wait status 0x%x) before joining",
				       node, d->status);
		}
		if (member_get(d, "/cluster/status", body, sizeof(body)) == 200 &&
		    strstr(body, want))
			return;
		it_sleep_ms(100);
	}
	it_daemon_dump_log(d);
	cr_assert_fail("member %s did not list itself in /cluster/status within %d s "
		       "(last: %s)", node, JOIN_TIMEOUT_MS / 1000, body);
}

/* The member must exit with status 2 within REFUSE_TIMEOUT_MS, its whole
 * process group gone, its log holding exactly one line with `phrase`. */
static void expect_refused(struct it_daemon *d, const char *what, const char *phrase)
{
	int64_t t0 = it_now_ms();
	int rc = it_daemon_wait_exit(d, REFUSE_TIMEOUT_MS), lines = 0;
	char *log = malloc(LOG_MAX), *line, *save = NULL, found[512] = "";

	cr_assert(log, "malloc");
	if (rc) {
		it_daemon_dump_log(d);
		cr_assert_fail("%s: the member still runs %d s after it started; it "
			       "must refuse (exit 2)", what, REFUSE_TIMEOUT_MS / 1000);
	}
	read_log(d, log, LOG_MAX);
	if (!WIFEXITED(d->status) || WEXITSTATUS(d->status) != 2)
		it_daemon_dump_log(d);
	cr_assert(WIFEXITED(d->status) && WEXITSTATUS(d->status) == 2,
		  "%s: wait status 0x%x (exit %d, signal %d), not exit 2", what,
		  d->status, WIFEXITED(d->status) ? WEXITSTATUS(d->status) : -1,
		  WIFSIGNALED(d->status) ? WTERMSIG(d->status) : 0);
	cr_expect_eq(d->stragglers, 0, "%s: %d processes of the member outlived its master",
		     what, d->stragglers);
	for (line = strtok_r(log, "\n", &save); line; line = strtok_r(NULL, "\n", &save))
		if (strstr(line, phrase) && lines++ == 0)
			snprintf(found, sizeof(found), "%s", line);
	if (lines != 1)
		it_daemon_dump_log(d);
	cr_expect_eq(lines, 1, "%s: %d log lines say \"%s\", not one", what, lines, phrase);
	fprintf(stderr, "refused (%s) in %" PRId64 " ms: %s\n", what, it_now_ms() - t0, found);
	free(log);
}

/* ==== suite ================================================================ */

static void setup(void)
{
	it_setup();
	memset(&g, 0, sizeof(g));
	g.etcd = -1;
	if (it_tmpdir(g.base, sizeof(g.base)) < 0)
		g.base[0] = '\0';
}

static void teardown(void)
{
	int st;

	for (int i = 0; i < g.nm; i++)
		if (g.m[i].pid > 0 && !g.m[i].exited)
			it_daemon_kill9_all(&g.m[i]);
	if (g.mnt[0] && umount2(g.mnt, MNT_DETACH) < 0)
		fprintf(stderr, "teardown: umount %s: %s\n", g.mnt, strerror(errno));
	if (g.etcd > 0) {
		killpg(g.etcd, SIGKILL);
		waitpid(g.etcd, &st, 0);
	}
	it_teardown(); /* reaps the rest, removes g.base */
}

TestSuite(cluster, .init = setup, .fini = teardown);

/* ==== refusals ============================================================= */

/* (d) refused while the arguments are parsed: nothing starts. */
static void refuse_periodic_fsync(void)
{
	const char *bin = getenv("CASKD_BIN");
	char dir[300], listen[64], adv[64], out[4096], err[4096];
	int port = it_free_port(), st = 0, rc, lines = 0;
	const char *argv[32];
	int n = 0;

	snprintf(dir, sizeof(dir), "%s/periodic", g.base);
	snprintf(listen, sizeof(listen), "127.0.0.1:%d", port);
	snprintf(adv, sizeof(adv), "http://127.0.0.1:%d", port);
	argv[n++] = bin;
	argv[n++] = "--listen";
	argv[n++] = listen;
	argv[n++] = "--data-dir";
	argv[n++] = dir;
	argv[n++] = "--fsync";
	argv[n++] = "periodic";
	argv[n++] = "--cluster";
	argv[n++] = "gp";
	argv[n++] = "--etcd";
	argv[n++] = g.etcd_url;
	argv[n++] = "--node";
	argv[n++] = "p1";
	argv[n++] = "--advertise";
	argv[n++] = adv;
	argv[n] = NULL;
	rc = it_run_capture(argv, REFUSE_TIMEOUT_MS, out, sizeof(out), err, sizeof(err), &st);
	cr_assert_eq(rc, 0, "--fsync periodic --cluster: %s (still running after %d s?)",
		     strerror(-rc), REFUSE_TIMEOUT_MS / 1000);
	cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 2, "--fsync periodic --cluster: "
		  "wait status 0x%x, not exit 2; stderr: %s", st, err);
	for (const char *p = err; *p; p++)
		lines += *p == '\n';
	cr_expect(strstr(err, "--fsync periodic"), "--fsync periodic --cluster: stderr "
		  "does not name the option: %s", err);
	cr_expect_eq(lines, 1, "--fsync periodic --cluster: %d lines on stderr, not one: %s",
		     lines, err);
	cr_expect_eq(out[0], '\0', "--fsync periodic --cluster: stdout: %s", out);
	fprintf(stderr, "refused (--fsync periodic): %s", err);
}

/* (e) etcd unreachable: the member waits for it, as a candidate. */
static void no_etcd_stays_candidate(void)
{
	char url[64], body[8192], role[32] = "";
	int dead = it_free_port(), code, samples = 0;
	struct it_daemon *d;
	int64_t t0 = it_now_ms(), end = t0 + NO_ETCD_WATCH_MS;
	struct it_resp r;

	/* a port nobody listens on: connections are refused at once */
	snprintf(url, sizeof(url), "http://127.0.0.1:%d", dead);
	d = member_spawn("noetcd", "ge", "e1", 3, url, NULL);
	cr_assert_eq(it_daemon_wait_ready(d, IT_START_TIMEOUT_MS), 0,
		     "with etcd unreachable the member did not serve /healthz");
	while (it_now_ms() < end || samples < 3) {
		if (it_daemon_wait_exit(d, 0) == 0) {
			it_daemon_dump_log(d);
			cr_assert_fail("with etcd unreachable the member exited (wait "
				       "status 0x%x) after %" PRId64 " ms; it must wait for etcd",
				       d->status, it_now_ms() - t0);
		}
		code = member_get(d, "/cluster/status", body, sizeof(body));
		cr_assert_eq(code, 200, "GET /cluster/status: %d %s", code, body);
		cr_assert_eq(json_str(body, "role", role, sizeof(role)), 0, "no role: %s", body);
		cr_assert_str_eq(role, "candidate", "with etcd unreachable: %s", body);
		cr_expect(strstr(body, "\"etcd_ok\":false"), "etcd_ok is not false: %s", body);
		code = member_get(d, "/cluster/primary", NULL, 0);
		cr_assert_eq(code, 503, "with etcd unreachable GET /cluster/primary "
			     "answered %d, not 503", code);
		samples++;
		it_sleep_ms(250);
	}
	/* a write is not applied where no primary is known */
	cr_assert_eq(it_request(d->port, "PUT", "/kv/x", NULL, "v", 1, &r), 0);
	cr_expect_eq(r.status, 503, "PUT on a member without etcd: %s", it_resp_brief(&r));
	it_resp_free(&r);
	fprintf(stderr, "etcd unreachable: candidate for %" PRId64 " ms (%d samples), "
		"/cluster/primary 503\n", it_now_ms() - t0, samples);
	it_daemon_kill9_all(d);
}

Test(cluster, refuses_misconfigured_members, .timeout = 60)
{
	struct it_daemon *a, *b, *x1, *d;
	char state[400];
	int64_t end;
	int st;

	require(0);
	cr_assert(g.base[0], "no temp dir");
	etcd_start();

	refuse_periodic_fsync();
	no_etcd_stays_candidate();

	/* (a) a data dir that cluster.state says is group g1's */
	a = member_spawn("a", "g1", "a1", 3, g.etcd_url, NULL);
	wait_joined(a, "a1");
	snprintf(state, sizeof(state), "%s/a/cluster.state", g.base);
	end = it_now_ms() + JOIN_TIMEOUT_MS;
	while (access(state, F_OK) != 0 && it_now_ms() < end)
		it_sleep_ms(50);
	cr_assert_eq(access(state, F_OK), 0, "the member of g1 wrote no %s", state);
	st = it_daemon_stop(a);
	cr_assert(st >= 0 && WIFEXITED(st) && WEXITSTATUS(st) == 0,
		  "the member of g1 did not stop cleanly: wait status %d", st);
	d = member_spawn("a", "g2", "a1", 3, g.etcd_url, NULL);
	expect_refused(d, "data dir of group g1 started with --cluster g2",
		       "belongs to group 'g1'");

	/* (b) and (c): a live member of group gx, which recorded size 3 */
	x1 = member_spawn("x1", "gx", "x1", 3, g.etcd_url, NULL);
	wait_joined(x1, "x1");
	b = member_spawn("x1-twin", "gx", "x1", 3, g.etcd_url, NULL);
	expect_refused(b, "node name x1 in use with another --advertise",
		       "node name 'x1' is in use");
	d = member_spawn("x2", "gx", "x2", 5, g.etcd_url, NULL);
	expect_refused(d, "--group-size 5 in a group recorded with 3", "--group-size 5");
	/* and the live member was not disturbed by either */
	cr_assert(it_daemon_wait_exit(x1, 0) != 0, "the live member x1 exited");
	wait_joined(x1, "x1");
	{
		char body[8192];

		cr_assert_eq(member_get(x1, "/cluster/status", body, sizeof(body)), 200);
		cr_expect(!strstr(body, "\"node\":\"x2\""), "the refused x2 is listed as a "
			  "member of gx: %s", body);
	}
}

/* ==== a full disk ============================================================ */

static int put_value(const struct it_daemon *p, int i, const char *val, struct it_resp *r)
{
	char path[64];

	snprintf(path, sizeof(path), "/kv/fill-%05d", i);
	return it_request(p->port, "PUT", path, NULL, val, VALUE_LEN, r);
}

static void put_ok(const struct it_daemon *p, int i, const char *val)
{
	struct it_resp r;
	int rc = put_value(p, i, val, &r);

	cr_assert_eq(rc, 0, "PUT fill-%05d: %s", i, strerror(-rc));
	cr_assert(r.status == 200 || r.status == 201 || r.status == 204,
		  "PUT fill-%05d to the primary: %s", i, it_resp_brief(&r));
	it_resp_free(&r);
}

/* The member whose /cluster/primary answers 200, and a replica that is
 * caught up (/cluster/replica 200), among m[0..n-1]. */
static int find_roles(struct it_daemon *const *m, int n, int *prim, int *repl)
{
	*prim = *repl = -1;
	for (int i = 0; i < n; i++) {
		if (member_get(m[i], "/cluster/primary", NULL, 0) == 200)
			*prim = i;
		else if (member_get(m[i], "/cluster/replica", NULL, 0) == 200)
			*repl = i;
	}
	return *prim >= 0 && *repl >= 0 ? 0 : -1;
}

static uint64_t status_version(const struct it_daemon *d, char *body, size_t n)
{
	uint64_t v = 0;
	int code = member_get(d, "/cluster/status", body, n);

	cr_assert_eq(code, 200, "GET /cluster/status on port %d: %d", d->port, code);
	cr_assert_eq(json_u64(body, "version", &v), 0, "no version: %s", body);
	return v;
}

#define ACK_DISK_FULL "caskd_cluster_replica_acknowledging{reason=\"disk_full\"} 0\n"
#define ACK_OK "caskd_cluster_replica_acknowledging{reason=\"ok\"} 1\n"

Test(cluster, replica_with_a_full_disk_stops_acknowledging_and_catches_up, .timeout = 60)
{
	struct it_daemon *m[3];
	char *val = malloc(VALUE_LEN), *body = malloc(LOG_MAX), repl[32] = "";
	int prim, other, i, full_at = -1, steady = 0, flips = 0, metric_seen = 0;
	int metric_flips = 0;
	int64_t stalled_since = 0;
	uint64_t vp, v3 = 0;
	int64_t end, t0;

	require(1);
	cr_assert(g.base[0] && val && body, "setup");
	/* mounts of this test stay in its own namespace and go with it */
	cr_assert_eq(unshare(CLONE_NEWNS), 0, "unshare(CLONE_NEWNS): %s", strerror(errno));
	cr_assert_eq(mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL), 0,
		     "making / private: %s", strerror(errno));
	snprintf(g.mnt, sizeof(g.mnt), "%s/n3", g.base);
	cr_assert_eq(mkdir(g.mnt, 0755), 0, "mkdir %s: %s", g.mnt, strerror(errno));
	if (mount("tmpfs", g.mnt, "tmpfs", 0, SMALL_DISK) < 0) {
		int e = errno;

		g.mnt[0] = '\0';
		cr_assert_fail("mount tmpfs (%s) on %s/n3: %s", SMALL_DISK, g.base, strerror(e));
	}
	etcd_start();

	/* n1 and n2 form the group (a majority of 3); n3 joins as a replica */
	m[0] = member_spawn("n1", "full", "n1", 3, g.etcd_url, NULL);
	m[1] = member_spawn("n2", "full", "n2", 3, g.etcd_url, NULL);
	end = it_now_ms() + GROUP_TIMEOUT_MS;
	while (find_roles(m, 2, &prim, &other) < 0 && it_now_ms() < end)
		it_sleep_ms(200);
	if (prim < 0 || other < 0) {
		it_daemon_dump_log(m[0]);
		it_daemon_dump_log(m[1]);
		cr_assert_fail("n1 and n2 did not form a primary and a replica in %d s",
			       GROUP_TIMEOUT_MS / 1000);
	}
	m[2] = member_spawn("n3", "full", "n3", 3, g.etcd_url, NULL);
	end = it_now_ms() + GROUP_TIMEOUT_MS;
	while (member_get(m[2], "/cluster/replica", NULL, 0) != 200 && it_now_ms() < end)
		it_sleep_ms(200);
	if (member_get(m[2], "/cluster/replica", NULL, 0) != 200)
		it_daemon_dump_log(m[2]);
	cr_assert_eq(member_get(m[2], "/cluster/replica", NULL, 0), 200,
		     "n3 (on the tmpfs) did not become a caught-up replica in %d s",
		     GROUP_TIMEOUT_MS / 1000);
	fprintf(stderr, "group: primary n%d, replica n%d, n3 on a tmpfs (%s)\n",
		prim + 1, other + 1, SMALL_DISK);

	/* Fill n3's disk through the primary; every write must succeed. n3
	 * is full once it has said disk_full and held the same version for
	 * FULL_STALL_MS while the primary went on (the engine's own
	 * reserves can make a first ENOSPC pass: later writes may still
	 * fit). Once it says disk_full, writes are paced by the polls. */
	t0 = it_now_ms();
	end = t0 + FILL_TIMEOUT_MS;
	for (i = 0; i < FILL_MAX_WRITES && full_at < 0 && it_now_ms() < end; i++) {
		uint64_t v;
		int says;

		memset(val, 'a' + i % 26, VALUE_LEN);
		put_ok(m[prim], i, val);
		v = status_version(m[2], body, LOG_MAX);
		says = strstr(body, "\"replication\":\"disk_full\"") != NULL;
		if (v != v3 || !stalled_since)
			stalled_since = it_now_ms();
		v3 = v;
		if (says && it_now_ms() - stalled_since >= FULL_STALL_MS)
			full_at = i;
		if (says)
			it_sleep_ms(FULL_POLL_MS);
	}
	if (full_at < 0)
		it_daemon_dump_log(m[2]);
	cr_assert(full_at >= 0, "after %d writes of %d KiB n3 never said "
		  "\"replication\":\"disk_full\" and stopped for %d ms (last status: %s)", i,
		  VALUE_LEN / 1024, FULL_STALL_MS, body);
	fprintf(stderr, "n3 disk_full and stalled at %" PRIu64 " after %d writes (%d ms)\n",
		v3, full_at + 1, (int)(it_now_ms() - t0));

	/* writes go on: the other replica makes the majority */
	for (int k = 0; k < 16; k++, i++) {
		memset(val, 'A' + i % 26, VALUE_LEN);
		put_ok(m[prim], i, val);
	}
	/* While full, n3 says so, steadily, in its status and its metric:
	 * sampled every FULL_SAMPLE_MS (a flap to "ok" between retries of
	 * the stream lasts a few ms). */
	end = it_now_ms() + FULL_WATCH_MS;
	while (it_now_ms() < end) {
		char st[32] = "";

		if (member_get(m[2], "/cluster/status", body, LOG_MAX) == 200 &&
		    json_str(body, "replication", st, sizeof(st)) == 0) {
			if (!strcmp(st, "disk_full"))
				steady++;
			else
				flips++, snprintf(repl, sizeof(repl), "%s", st);
		}
		if (member_get(m[2], "/metrics", body, LOG_MAX) == 200) {
			if (strstr(body, ACK_DISK_FULL))
				metric_seen++;
			else
				metric_flips++;
		}
		it_sleep_ms(FULL_SAMPLE_MS);
	}
	if (flips || metric_flips)
		it_daemon_dump_log(m[2]);
	cr_expect(metric_seen > 0, "n3's /metrics never showed %s while its disk was "
		  "full", ACK_DISK_FULL);
	cr_expect_eq(flips, 0, "while its disk was full n3's /cluster/status said "
		     "\"replication\":\"%s\" in %d of %d samples (disk_full in the rest)",
		     repl, flips, flips + steady);
	cr_expect_eq(metric_flips, 0, "while its disk was full n3's /metrics lacked %s "
		     "in %d of %d samples", ACK_DISK_FULL, metric_flips,
		     metric_flips + metric_seen);
	vp = status_version(m[prim], body, LOG_MAX);
	v3 = status_version(m[2], body, LOG_MAX);
	cr_expect_lt(v3, vp, "n3's version %" PRIu64 " is not behind the primary's %"
		     PRIu64 " though its disk is full", v3, vp);
	fprintf(stderr, "while full: primary at %" PRIu64 ", n3 at %" PRIu64
		", status disk_full in %d/%d samples, metric disk_full in %d/%d\n",
		vp, v3, steady, steady + flips, metric_seen, metric_seen + metric_flips);

	/* room: n3 must catch up with the primary */
	cr_assert_eq(mount("tmpfs", g.mnt, "tmpfs", MS_REMOUNT, LARGE_DISK), 0,
		     "remount %s %s: %s", g.mnt, LARGE_DISK, strerror(errno));
	t0 = it_now_ms();
	end = t0 + CATCH_UP_MS;
	vp = status_version(m[prim], body, LOG_MAX);
	do {
		v3 = status_version(m[2], body, LOG_MAX);
		if (v3 >= vp && strstr(body, "\"replication\":\"ok\""))
			break;
		it_sleep_ms(100);
	} while (it_now_ms() < end);
	if (v3 < vp)
		it_daemon_dump_log(m[2]);
	cr_assert_geq(v3, vp, "n3 did not catch up within %d s of having room: at %"
		      PRIu64 ", the primary at %" PRIu64 " (status: %s)", CATCH_UP_MS / 1000,
		      v3, vp, body);
	fprintf(stderr, "n3 caught up (%" PRIu64 ") in %d ms after the remount\n", v3,
		(int)(it_now_ms() - t0));
	cr_expect(strstr(body, "\"replication\":\"ok\""), "n3 caught up but says: %s", body);
	end = it_now_ms() + 5000;
	do {
		metric_seen = member_get(m[2], "/metrics", body, LOG_MAX) == 200 &&
			      strstr(body, ACK_OK);
		if (!metric_seen)
			it_sleep_ms(100);
	} while (!metric_seen && it_now_ms() < end);
	cr_expect(metric_seen, "after catching up n3's /metrics does not show %s", ACK_OK);
	/* and it acknowledges again: a write still succeeds */
	memset(val, 'z', VALUE_LEN);
	put_ok(m[prim], i, val);
	free(val);
	free(body);
}
