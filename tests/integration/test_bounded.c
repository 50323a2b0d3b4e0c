/* tests/integration/test_bounded.c — caskd bounded under careless and
 * hostile clients (issue 24): one drill per bound, with real sockets
 * against the real daemon.
 *
 *  - slow bodies: many large bodies sent but for their last bytes, then
 *    trickled; the worker's resident memory stays under --body-memory
 *    (plus slack), those beyond it get 503, the stalled ones 408 within
 *    --read-timeout (plus slack);
 *  - accept balance: connections opened at intervals on N workers are all
 *    accepted up to N x --max-conns (minus a small margin) before any
 *    503, also when one worker's connections closed and the other's did
 *    not, and /metrics shows each worker's count;
 *  - unread listings: large GET /keys pages nobody reads keep the worker's
 *    own memory bounded and /healthz answering, and are closed after
 *    --send-timeout;
 *  - reloads with trickled bodies: every old worker is gone within
 *    --shutdown-timeout (plus slack).
 *
 * Memory is read from /proc/PID/status of the worker (the master's only
 * child with --workers 1). Figures are printed, so the log of a run shows
 * how far from its bound each drill stayed. Against a daemon built with
 * ASan (make integration-asan) memory and latency are printed, not
 * checked (its shadow memory and quarantine are not caskd's), and
 * timeouts get more slack.
 */
#include "tests/integration/harness.h"
#include "tests/integration/it_assert.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#define MIB (1024.0 * 1024.0)
/* Resident memory a drill may add beyond the bound it checks: code and
 * heap touched by the work itself, input buffers, allocator slack. */
#define RSS_SLACK_MIB 32
/* How late a timeout may come beyond its setting: timer granularity and a
 * busy 2-core machine. */
#define TIMEOUT_SLACK_MS 2000

static char base[256];

/* The daemon under test was built with ASan + UBSan. */
static int asan(void)
{
	const char *bin = getenv("CASKD_BIN");

	return bin && strstr(bin, "/asan/");
}

/* Slack for a timeout, in ms: a sanitized daemon is several times slower. */
static int64_t slack_ms(void)
{
	return asan() ? 5 * TIMEOUT_SLACK_MS : TIMEOUT_SLACK_MS;
}

static void setup(void)
{
	it_setup();
	cr_assert_eq(it_tmpdir(base, sizeof(base)), 0);
}

static void teardown(void)
{
	it_teardown();
}

TestSuite(it_bounded, .init = setup, .fini = teardown);

/* ---- processes ------------------------------------------------------------ */

/* The master's children (workers), up to max; their count. */
static int children(pid_t master, pid_t *pids, int max)
{
	char path[64], buf[4096];
	FILE *f;
	size_t len;
	int n = 0;

	snprintf(path, sizeof(path), "/proc/%d/task/%d/children", (int)master,
		 (int)master);
	if (!(f = fopen(path, "r")))
		return 0;
	len = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[len] = '\0';
	for (char *t = strtok(buf, " \n"); t && n < max; t = strtok(NULL, " \n"))
		pids[n++] = (pid_t)atoi(t);
	return n;
}

static pid_t only_worker(const struct it_daemon *d)
{
	pid_t p[4];
	int n = children(d->pid, p, 4);

	cr_assert_eq(n, 1, "want exactly one worker, the master has %d children", n);
	return p[0];
}

/* A "Name:   123 kB" line of /proc/PID/status, in MiB; -1 if absent. */
static double status_mib(pid_t pid, const char *field)
{
	char path[64], line[256];
	size_t fl = strlen(field);
	double v = -1;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	if (!(f = fopen(path, "r")))
		return -1;
	while (fgets(line, sizeof(line), f))
		if (!strncmp(line, field, fl) && line[fl] == ':') {
			v = strtod(line + fl + 1, NULL) / 1024.0;
			break;
		}
	fclose(f);
	return v;
}

/* Runs, neither gone nor a zombie waiting for its parent. */
static int alive(pid_t pid)
{
	char path[64], buf[512], state = 0;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	if (!(f = fopen(path, "r")))
		return 0;
	if (fgets(buf, sizeof(buf), f)) {
		char *p = strrchr(buf, ')');

		if (p && p[1] == ' ')
			state = p[2];
	}
	fclose(f);
	return state && state != 'Z' && state != 'X';
}

/* ---- sockets ---------------------------------------------------------------- */

/* Something (a response or EOF) is ready to read on c within ms. */
static int readable(struct it_conn *c, int ms)
{
	struct pollfd pf = { c->fd, POLLIN, 0 };

	if (c->len)
		return 1;
	return poll(&pf, 1, ms) > 0;
}

static double metric(int port, const char *name)
{
	char *text = it_get_metrics(port);
	double v = -1;

	if (it_metric_value(text, name, 0, &v) < 0)
		v = -1;
	free(text);
	return v;
}

/* ---- 1. slow bodies ------------------------------------------------------------ */

#define SLOW_SOCKS 40
#define SLOW_CL (16u << 20)       /* the default --max-value-size */
#define SLOW_LEFT 100             /* bytes held back, then trickled */
#define SLOW_BUDGET "64m"
#define SLOW_BUDGET_MIB 64
#define SLOW_READ_TIMEOUT_S 2
#define SLOW_TRICKLE_MS 500       /* one byte per socket this often */

/* The sockets of the drill: each is answered once (status and when). */
struct slow {
	struct it_conn c[SLOW_SOCKS];
	int opened;
	int status[SLOW_SOCKS];
	int64_t bulk_end[SLOW_SOCKS], answered_ms[SLOW_SOCKS];
	int64_t trickled_ms;
};

/* Reads the answers that arrived; when a trickle is due, sends one more
 * byte on every socket still waiting. The number still waiting. */
static int slow_tend(struct slow *s)
{
	int open = 0, trickle = it_now_ms() - s->trickled_ms >= SLOW_TRICKLE_MS;

	for (int i = 0; i < s->opened; i++) {
		struct it_resp r;

		if (s->status[i])
			continue;
		if (!readable(&s->c[i], 0)) {
			open++;
			if (trickle)
				(void)it_conn_send_raw(&s->c[i], "b", 1);
			continue;
		}
		s->answered_ms[i] = it_now_ms();
		s->status[i] = it_conn_read_response(&s->c[i], 0, &r) == 0 ? r.status : -1;
		if (s->status[i] > 0)
			it_resp_free(&r);
	}
	if (trickle)
		s->trickled_ms = it_now_ms();
	return open;
}

Test(it_bounded, slow_bodies_stay_within_body_memory_and_get_408, .timeout = 60)
{
	const char *extra[] = { "--body-memory", SLOW_BUDGET, "--read-timeout", "2", NULL };
	struct it_daemon d;
	struct slow *s = calloc(1, sizeof(*s));
	char dir[300], head[256];
	char *body = malloc(SLOW_CL);
	double rss0, rss, rss_max;
	int n408 = 0, n503 = 0, silent = 0;
	int64_t late_max = 0, deadline;
	pid_t w;

	cr_assert(body && s);
	memset(body, 'b', SLOW_CL);
	snprintf(dir, sizeof(dir), "%s/data", base);
	IT_OK(it_daemon_start(&d, dir, 1, extra));
	w = only_worker(&d);
	rss0 = rss_max = status_mib(w, "VmRSS");
	s->trickled_ms = it_now_ms();
	for (int i = 0; i < SLOW_SOCKS; i++) {
		int n = snprintf(head, sizeof(head), "PUT /kv/slow-%d HTTP/1.1\r\nHost: x\r\n"
				 "Content-Length: %u\r\n\r\n", i, SLOW_CL);

		IT_OK(it_conn_open(&s->c[i], d.port));
		s->opened++;
		/* A refused body may be cut short by the server: fine. */
		if (it_conn_send_raw(&s->c[i], head, (size_t)n) == 0)
			(void)it_conn_send_raw(&s->c[i], body, SLOW_CL - SLOW_LEFT);
		s->bulk_end[i] = it_now_ms();
		slow_tend(s);
	}
	free(body);
	deadline = it_now_ms() + SLOW_READ_TIMEOUT_S * 1000 + slack_ms() + 3000;
	while (it_now_ms() < deadline) {
		rss = status_mib(w, "VmRSS");
		if (rss > rss_max)
			rss_max = rss;
		if (!slow_tend(s))
			break;
		it_sleep_ms(50);
	}
	for (int i = 0; i < SLOW_SOCKS; i++) {
		if (s->status[i] == 408) {
			n408++;
			if (s->answered_ms[i] - s->bulk_end[i] > late_max)
				late_max = s->answered_ms[i] - s->bulk_end[i];
		} else if (s->status[i] == 503) {
			n503++;
		} else {
			silent++;
		}
		it_conn_close(&s->c[i]);
	}
	free(s);
	fprintf(stderr, "slow bodies: worker RSS %.0f MiB at start, %.0f MiB at most "
		"(bound %d + %d MiB); %d got 408 (the last %lld ms after its bulk), "
		"%d got 503, %d no answer\n", rss0, rss_max, SLOW_BUDGET_MIB, RSS_SLACK_MIB,
		n408, (long long)late_max, n503, silent);
	cr_assert(asan() || rss_max - rss0 <= SLOW_BUDGET_MIB + RSS_SLACK_MIB,
		  "the worker grew by %.0f MiB with --body-memory %s",
		  rss_max - rss0, SLOW_BUDGET);
	cr_assert_eq(silent, 0, "%d stalled bodies got no answer", silent);
	cr_assert_gt(n408, 0, "no stalled body got 408");
	cr_assert_leq(late_max, SLOW_READ_TIMEOUT_S * 1000 + slack_ms(),
		      "a stalled body got its 408 %lld ms after it stalled",
		      (long long)late_max);
	cr_assert_geq(metric(d.port, "caskd_body_memory_limit_bytes"), SLOW_BUDGET_MIB * MIB);
	it_stop_clean(&d);
}

/* ---- 2. accept balance ------------------------------------------------------- */

#define BAL_WORKERS 2
#define BAL_MAX_CONNS 50
#define BAL_GAP_MS 5             /* between two connections */
#define BAL_MARGIN 4             /* 503s allowed this close to the total */
#define BAL_TOTAL (BAL_WORKERS * BAL_MAX_CONNS)

/* The inode of the daemon's end of client connection c (its local port
 * is c's peer), from /proc/net/tcp; 0 if not found. */
static unsigned long server_inode(int port, const struct it_conn *c)
{
	struct sockaddr_in sin;
	socklen_t len = sizeof(sin);
	char line[512], want[64];
	unsigned long inode = 0;
	FILE *f;

	if (getsockname(c->fd, (struct sockaddr *)&sin, &len) < 0)
		return 0;
	snprintf(want, sizeof(want), "0100007F:%04X 0100007F:%04X", port,
		 ntohs(sin.sin_port));
	if (!(f = fopen("/proc/net/tcp", "r")))
		return 0;
	while (fgets(line, sizeof(line), f)) {
		char *p = strstr(line, want);
		int field = 0;

		if (!p)
			continue;
		/* sl local rem st tx:rx tr:when retrnsmt uid timeout inode */
		for (char *t = strtok(line, " \n"); t; t = strtok(NULL, " \n"))
			if (++field == 10)
				inode = strtoul(t, NULL, 10);
		break;
	}
	fclose(f);
	return inode;
}

/* Does process pid hold socket inode? */
static int holds_socket(pid_t pid, unsigned long inode)
{
	char path[64], link[64], want[64];
	int found = 0;

	snprintf(want, sizeof(want), "socket:[%lu]", inode);
	for (int fd = 0; fd < 4096 && !found; fd++) {
		ssize_t n;

		snprintf(path, sizeof(path), "/proc/%d/fd/%d", (int)pid, fd);
		n = readlink(path, link, sizeof(link) - 1);
		if (n <= 0)
			continue;
		link[n] = '\0';
		found = !strcmp(link, want);
	}
	return found;
}

/* Opens n connections gap_ms apart into c[from..); the index of the first
 * that got 503 (its answer is waiting; an accepted idle one has nothing
 * to read), or -1. */
static int bal_open(int port, struct it_conn *c, int from, int n)
{
	int first = -1;

	for (int i = from; i < from + n; i++) {
		IT_OK(it_conn_open(&c[i], port));
		it_sleep_ms(BAL_GAP_MS);
	}
	it_sleep_ms(300);
	for (int i = from; i < from + n; i++) {
		struct it_resp r;

		if (!readable(&c[i], 0))
			continue;
		cr_assert_eq(it_conn_read_response(&c[i], 0, &r), 0);
		cr_assert_eq(r.status, 503, "%s", it_resp_brief(&r));
		it_resp_free(&r);
		it_conn_close(&c[i]);
		if (first < 0)
			first = i;
	}
	return first;
}

/* With N workers, connections opened at intervals are all accepted up to
 * N x max-conns (but a small margin): a worker near its limit leaves new
 * ones to a sibling with room, also after the sibling's connections
 * closed (counts are published on close, and shown per worker). */
Test(it_bounded, connections_fill_every_worker_before_any_503, .timeout = 60)
{
	const char *extra[] = { "--max-conns", "50", NULL };
	struct it_daemon d;
	struct it_conn *c = calloc(2 * BAL_TOTAL, sizeof(*c));
	pid_t w[BAL_WORKERS];
	int first, held[BAL_WORKERS] = { 0 }, open = 0, again;
	double m0 = -1, m1 = -1;
	char dir[300], *text;

	cr_assert_not_null(c);
	snprintf(dir, sizeof(dir), "%s/data", base);
	IT_OK(it_daemon_start(&d, dir, BAL_WORKERS, extra));
	cr_assert_eq(children(d.pid, w, BAL_WORKERS), BAL_WORKERS);
	/* Fill both but for a few. */
	first = bal_open(d.port, c, 0, BAL_TOTAL - 2 * BAL_MARGIN);
	fprintf(stderr, "accept balance: %d connections %d ms apart: first 503 at #%d (0: none)\n",
		BAL_TOTAL - 2 * BAL_MARGIN, BAL_GAP_MS, first + 1);
	cr_assert_lt(first, 0, "connection #%d of %d got 503 (--max-conns %d x %d workers)",
		     first + 1, BAL_TOTAL - 2 * BAL_MARGIN, BAL_MAX_CONNS, BAL_WORKERS);
	/* Close every connection worker 1 holds: worker 0 stays near full. */
	for (int i = 0; i < BAL_TOTAL - 2 * BAL_MARGIN; i++) {
		int on1 = holds_socket(w[1], server_inode(d.port, &c[i]));

		if (on1) {
			it_conn_close(&c[i]);
			continue;
		}
		held[0]++;
		open++;
	}
	it_sleep_ms(100);
	text = it_get_metrics(d.port);
	it_metric_value(text, "caskd_worker_connections{worker=\"0\"}", 0, &m0);
	it_metric_value(text, "caskd_worker_connections{worker=\"1\"}", 0, &m1);
	free(text);
	/* Then open what is left of both workers' room, but the margin. */
	again = BAL_TOTAL - open - BAL_MARGIN;
	first = bal_open(d.port, c, BAL_TOTAL, again);
	fprintf(stderr, "accept balance: worker 0 kept %d, worker 1 none (/metrics then: "
		"%.0f and %.0f, the scrape included); %d more %d ms apart: first 503 at "
		"#%d (0: none)\n", held[0], m0, m1, again, BAL_GAP_MS,
		first < 0 ? 0 : first - BAL_TOTAL + 1);
	cr_assert_lt(first, 0, "connection #%d of %d more got 503 while worker 1 had room",
		     first - BAL_TOTAL + 1, again);
	cr_assert_geq(m0, held[0], "caskd_worker_connections{worker=\"0\"} is %.0f", m0);
	cr_assert_leq(m1, 1, "caskd_worker_connections{worker=\"1\"} is %.0f after its "
		      "connections closed", m1);
	for (int i = 0; i < 2 * BAL_TOTAL; i++)
		if (c[i].fd > 0)
			it_conn_close(&c[i]);
	free(c);
	it_stop_clean(&d);
}

/* ---- 3. unread listings ----------------------------------------------------- */

#define LIST_KEYS 30000
#define LIST_KEY_BYTES 1000
#define LIST_PER_BATCH 10000
#define LIST_CLIENTS 10
#define LIST_PROBE_MS 4000       /* /healthz probed this long meanwhile */
#define LIST_PROBE_GAP_MS 100
#define LIST_HEALTHZ_MAX_MS 1000 /* generous: an idle loop answers in 1 ms */
/* What 10 listings of 30000 keys may hold: the engine's page (26 bytes a
 * key) and a bounded output each. */
#define LIST_BOUND_MIB 16
#define LIST_SEND_TIMEOUT_S 2

static void list_fill(int port)
{
	size_t cap = (size_t)LIST_PER_BATCH * (LIST_KEY_BYTES + 16), len;
	char *b = malloc(cap);

	cr_assert_not_null(b);
	for (int k = 0; k < LIST_KEYS; k += LIST_PER_BATCH) {
		struct it_resp r;

		len = 0;
		for (int i = k; i < k + LIST_PER_BATCH; i++) {
			len += (size_t)sprintf(b + len, "put k%06d-", i);
			memset(b + len, 'a', LIST_KEY_BYTES - 8);
			len += LIST_KEY_BYTES - 8;
			len += (size_t)sprintf(b + len, " v\n");
		}
		it_do(port, "POST", "/batch", NULL, b, len, &r, 200);
		it_resp_free(&r);
	}
	free(b);
}

Test(it_bounded, unread_listings_keep_memory_bounded_and_healthz_answering,
     .timeout = 90)
{
	const char *extra[] = { "--send-timeout", "2", NULL };
	struct it_daemon d;
	struct it_conn c[LIST_CLIENTS];
	char dir[300], req[128];
	double anon0, vm0, anon_max, vm_max, conns = -1;
	int64_t t0, worst = 0, end;
	int probes = 0, n;
	struct stat st;
	pid_t w;

	snprintf(dir, sizeof(dir), "%s/data", base);
	IT_OK(it_daemon_start(&d, dir, 1, extra));
	w = only_worker(&d);
	list_fill(d.port);
	anon0 = anon_max = status_mib(w, "RssAnon");
	vm0 = vm_max = status_mib(w, "VmRSS");
	n = snprintf(req, sizeof(req), "GET /keys?limit=100000 HTTP/1.1\r\nHost: x\r\n\r\n");
	for (int i = 0; i < LIST_CLIENTS; i++) {
		IT_OK(it_conn_open(&c[i], d.port));
		IT_OK(it_conn_send_raw(&c[i], req, (size_t)n));
	}
	end = it_now_ms() + LIST_PROBE_MS;
	while (it_now_ms() < end) {
		struct it_resp r;
		double a = status_mib(w, "RssAnon"), v = status_mib(w, "VmRSS");

		if (a > anon_max)
			anon_max = a;
		if (v > vm_max)
			vm_max = v;
		t0 = it_now_ms();
		it_do(d.port, "GET", "/healthz", NULL, NULL, 0, &r, 200);
		it_resp_free(&r);
		if (it_now_ms() - t0 > worst)
			worst = it_now_ms() - t0;
		probes++;
		it_sleep_ms(LIST_PROBE_GAP_MS);
	}
	/* Nobody reads: past --send-timeout the connections are closed. */
	end = it_now_ms() + LIST_SEND_TIMEOUT_S * 1000 + slack_ms();
	do {
		double a = status_mib(w, "RssAnon"), v = status_mib(w, "VmRSS");

		if (a > anon_max)
			anon_max = a;
		if (v > vm_max)
			vm_max = v;
		conns = metric(d.port, "caskd_connections");
		if (conns <= 1)
			break;
		it_sleep_ms(200);
	} while (it_now_ms() < end);
	cr_assert_eq(stat(dir, &st), 0);
	fprintf(stderr, "unread listings: %d x GET /keys (%d keys of %d bytes): worker "
		"RssAnon %.0f -> %.0f MiB at most (bound %d + %d), VmRSS %.0f -> %.0f MiB; "
		"/healthz worst %lld ms over %d probes; %.0f connections open %d s after "
		"--send-timeout\n", LIST_CLIENTS, LIST_KEYS, LIST_KEY_BYTES, anon0, anon_max,
		LIST_BOUND_MIB, RSS_SLACK_MIB, vm0, vm_max, (long long)worst, probes, conns,
		(int)(slack_ms() / 1000));
	cr_assert(asan() || anon_max - anon0 <= LIST_BOUND_MIB + RSS_SLACK_MIB,
		  "the worker grew by %.0f MiB of its own memory", anon_max - anon0);
	cr_assert(asan() || worst <= LIST_HEALTHZ_MAX_MS, "/healthz took %lld ms",
		  (long long)worst);
	cr_assert_leq(conns, 1, "%.0f connections still open after --send-timeout", conns);
	for (int i = 0; i < LIST_CLIENTS; i++)
		it_conn_close(&c[i]);
	it_stop_clean(&d);
}

/* ---- 4. reloads under trickled bodies ---------------------------------------- */

#define RELOAD_ROUNDS 3
#define RELOAD_DRAIN_S 2         /* --shutdown-timeout */
#define RELOAD_TRICKLE_MS 200

/* Sends one more byte on every connection still open. */
static void trickle_all(struct it_conn *c, int n)
{
	for (int i = 0; i < n; i++)
		if (c[i].fd >= 0 && it_conn_send_raw(&c[i], "t", 1) < 0)
			it_conn_close(&c[i]);
}

/* A reload drains the old worker for --shutdown-timeout at most, then
 * ends it, even while a client trickles a body at it (nginx's
 * worker_shutdown_timeout): slots do not run out over many reloads. */
Test(it_bounded, reloads_end_old_workers_within_the_drain_deadline, .timeout = 60)
{
	const char *extra[] = { "--shutdown-timeout", "2", NULL };
	static const char head[] = "PUT /kv/trickle HTTP/1.1\r\nHost: x\r\n"
				   "Content-Length: 100000\r\n\r\n";
	struct it_daemon d;
	struct it_conn c[RELOAD_ROUNDS];
	int64_t took[RELOAD_ROUNDS], worst = 0;
	char dir[300];

	snprintf(dir, sizeof(dir), "%s/data", base);
	IT_OK(it_daemon_start(&d, dir, 1, extra));
	for (int i = 0; i < RELOAD_ROUNDS; i++)
		c[i].fd = -1;
	for (int i = 0; i < RELOAD_ROUNDS; i++) {
		pid_t old = only_worker(&d), now[4];
		int64_t t0, deadline;
		int n;

		IT_OK(it_conn_open(&c[i], d.port));
		IT_OK(it_conn_send_raw(&c[i], head, sizeof(head) - 1));
		trickle_all(c, i + 1);
		cr_assert_eq(kill(d.pid, SIGHUP), 0);
		t0 = it_now_ms();
		deadline = t0 + RELOAD_DRAIN_S * 1000 + 2 * slack_ms();
		while (it_now_ms() < deadline && alive(old)) {
			it_sleep_ms(RELOAD_TRICKLE_MS);
			trickle_all(c, i + 1);
		}
		took[i] = it_now_ms() - t0;
		if (took[i] > worst)
			worst = took[i];
		fprintf(stderr, "reload %d: old worker %d %s after %lld ms (--shutdown-timeout "
			"%d) with a body trickling at it\n", i + 1, (int)old,
			alive(old) ? "still draining" : "gone", (long long)took[i],
			RELOAD_DRAIN_S);
		cr_assert(!alive(old), "reload %d: the old worker %d still drains %lld ms "
			  "after the reload", i + 1, (int)old, (long long)took[i]);
		/* The new one serves. */
		for (deadline = it_now_ms() + 5000; it_now_ms() < deadline;) {
			if ((n = children(d.pid, now, 4)) == 1 && now[0] != old)
				break;
			it_sleep_ms(50);
		}
		cr_assert_eq(n, 1, "%d workers after reload %d", n, i + 1);
		{
			struct it_resp r;

			it_do(d.port, "GET", "/healthz", NULL, NULL, 0, &r, 200);
			it_resp_free(&r);
		}
	}
	cr_assert_leq(worst, RELOAD_DRAIN_S * 1000 + slack_ms());
	for (int i = 0; i < RELOAD_ROUNDS; i++)
		if (c[i].fd >= 0)
			it_conn_close(&c[i]);
	it_stop_clean(&d);
}
