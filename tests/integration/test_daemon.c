/* tests/integration/test_daemon.c — caskd as operators run it: reloads
 * under load, config files, supervision (stuck and crash-looping
 * workers), logs for journald, the access log, metrics across workers.
 */
#include "tests/integration/harness.h"
#include "tests/integration/it_assert.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define RELOAD_CLIENTS 3
#define RELOADS 3
#define RELOAD_GAP_US 600000
#define LOG_TAIL 65536

static char base[256];

static void setup(void)
{
	it_setup();
	cr_assert_eq(it_tmpdir(base, sizeof(base)), 0);
}

static void teardown(void)
{
	it_teardown();
}

static void write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");
	cr_assert_not_null(f, "%s: %s", path, strerror(errno));
	fputs(text, f);
	cr_assert_eq(fclose(f), 0);
}

/* The master's children, as /proc lists them, space-separated in buf. */
static int read_children(pid_t master, char *buf, size_t n)
{
	char path[64];
	FILE *f;
	size_t len;

	snprintf(path, sizeof(path), "/proc/%d/task/%d/children", (int)master, (int)master);
	if (!(f = fopen(path, "r")))
		return -1;
	len = fread(buf, 1, n - 1, f);
	fclose(f);
	buf[len] = '\0';
	return 0;
}

static int count_children(pid_t master)
{
	char buf[4096];
	int n = 0;

	if (read_children(master, buf, sizeof(buf)) < 0)
		return -1;
	for (char *t = strtok(buf, " \n"); t; t = strtok(NULL, " \n"))
		n++;
	return n;
}

static pid_t first_child(pid_t master)
{
	char buf[4096];

	if (read_children(master, buf, sizeof(buf)) < 0)
		return -1;
	return (pid_t)atoi(buf);
}

static int wait_children(pid_t master, int want, int timeout_ms)
{
	int64_t deadline = it_now_ms() + timeout_ms;
	while (it_now_ms() < deadline) {
		if (count_children(master) == want)
			return 0;
		usleep(20000);
	}
	return -ETIMEDOUT;
}

/* --- reload under load ------------------------------------------------ */

struct load {
	int port;
	volatile int stop;
	struct {
		long ok, refused, failed;
	} c[RELOAD_CLIENTS];
};

/* Client 0 keeps one connection alive and reconnects only after the
 * server said Connection: close; the others use a fresh connection per
 * request. Any request that gets no response counts as failed. */
static void hammer(int idx, void *arg)
{
	struct load *l = arg;
	struct it_conn conn = { .fd = -1 };
	int n = 0;

	while (!l->stop) {
		struct it_resp r = { 0 };
		char path[64];
		int rc;
		snprintf(path, sizeof(path), "/kv/reload-%d-%d", idx, n++ % 50);
		if (idx == 0) {
			if (conn.fd < 0 && it_conn_open(&conn, l->port) < 0) {
				l->c[idx].refused++;
				continue;
			}
			rc = it_conn_request(&conn, "PUT", path, NULL, "v", 1, &r);
		} else {
			rc = it_request(l->port, "GET", "/healthz", NULL, NULL, 0, &r);
		}
		if (rc == -ECONNREFUSED)
			l->c[idx].refused++;
		else if (rc < 0 || (r.status != 200 && r.status != 201 && r.status != 204)) {
			l->c[idx].failed++;
			fprintf(stderr, "client %d: rc %d status %d\n", idx, rc, r.status);
		}
		else
			l->c[idx].ok++;
		if (idx == 0 && (rc < 0 || (it_resp_header(&r, "Connection") &&
					    !strcasecmp(it_resp_header(&r, "Connection"), "close"))))
			it_conn_close(&conn);
		it_resp_free(&r);
	}
	if (conn.fd >= 0)
		it_conn_close(&conn);
}

Test(it_daemon, reload_replaces_workers_without_refusing_a_connection,
     .init = setup, .fini = teardown, .timeout = 90)
{
	char conf[300], dir[300], arg[320];
	const char *extra[] = { "--config", conf, NULL };
	struct it_daemon d;
	struct load *l = it_shared_alloc(sizeof(*l));
	pid_t before, clients;
	long ok = 0, refused = 0, failed = 0;

	snprintf(conf, sizeof(conf), "%s/caskd.conf", base);
	snprintf(dir, sizeof(dir), "%s/data", base);
	(void)arg;
	write_file(conf, "# test config\nfsync = periodic\n");
	cr_assert_eq(it_daemon_start(&d, dir, 2, extra), 0);
	before = first_child(d.pid);
	l->port = d.port;
	clients = fork();
	cr_assert_geq(clients, 0);
	if (clients == 0)
		_exit(it_fork_clients(RELOAD_CLIENTS, hammer, l) ? 1 : 0);
	for (int i = 0; i < RELOADS; i++) {
		usleep(RELOAD_GAP_US);
		if (i == 1) /* flags win over the file: workers stays 2 */
			write_file(conf, "fsync = group\nworkers = 3\n");
		cr_assert_eq(kill(d.pid, SIGHUP), 0);
	}
	usleep(RELOAD_GAP_US * 2);
	l->stop = 1;
	{
		int st;
		cr_assert_eq(waitpid(clients, &st, 0), clients);
		cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "client processes failed");
	}
	for (int i = 0; i < RELOAD_CLIENTS; i++) {
		ok += l->c[i].ok;
		refused += l->c[i].refused;
		failed += l->c[i].failed;
	}
	cr_log_info("reload under load: %d reloads, %ld requests ok, %ld refused, %ld failed",
		    RELOADS, ok, refused, failed);
	fprintf(stderr, "reload under load: %d reloads, %ld requests ok, %ld refused, %ld failed\n",
		RELOADS, ok, refused, failed);
	cr_assert_gt(ok, 100, "the clients made too little progress: %ld", ok);
	cr_assert_eq(refused, 0, "%ld connections refused during reloads", refused);
	cr_assert_eq(failed, 0, "%ld requests failed during reloads", failed);
	cr_assert_eq(wait_children(d.pid, 2, 5000), 0, "--workers 2 on the command line wins");
	cr_assert_neq(first_child(d.pid), before, "the workers were not replaced");
	it_stop_clean(&d);
	it_shared_free(l, sizeof(*l));
}

Test(it_daemon, bad_config_on_reload_keeps_the_old_workers, .init = setup,
     .fini = teardown, .timeout = 60)
{
	char conf[300], dir[300], log[LOG_TAIL];
	const char *extra[] = { "--config", conf, NULL };
	struct it_daemon d;
	pid_t w;

	snprintf(conf, sizeof(conf), "%s/caskd.conf", base);
	snprintf(dir, sizeof(dir), "%s/data", base);
	write_file(conf, "log-level = info\n");
	cr_assert_eq(it_daemon_start(&d, dir, 2, extra), 0);
	w = first_child(d.pid);
	write_file(conf, "log-level = info\nno-such-setting = 1\n");
	cr_assert_eq(kill(d.pid, SIGHUP), 0);
	usleep(700000);
	cr_assert_eq(first_child(d.pid), w, "a bad config must not replace workers");
	it_expect_value(d.port, "/healthz", "ok", 2, 0);
	cr_assert_geq(it_read_tail(d.log, log, sizeof(log)), 0);
	cr_assert_not_null(strstr(log, "caskd.conf:2: unknown setting 'no-such-setting'"),
			   "the log must say why: %s", log);
	cr_assert_not_null(strstr(log, "keeping the running configuration"), "%s", log);
	it_stop_clean(&d);
}

/* A reload that changes what only a restart can (listen, data-dir,
 * max-keys) names each change with its old and new value; it used to
 * say "listen, data-dir and max-keys changes take effect at the next
 * restart" whichever changed. The harness puts --listen and --data-dir
 * on the command line, where they win over the file: this daemon takes
 * everything from its config file. */
Test(it_daemon, reload_names_each_change_left_for_the_restart, .init = setup,
     .fini = teardown, .timeout = 60)
{
	const char *bin = getenv("CASKD_BIN");
	char conf[300], dir[300], dir2[300], text[1024], log[LOG_TAIL], want[3][700];
	struct it_daemon d = { 0 };
	int port = it_free_port(), port2 = it_free_port();
	int64_t deadline;
	pid_t pid;

	while (port2 == port)
		port2 = it_free_port();
	cr_assert(bin && port > 0 && port2 > 0);
	snprintf(conf, sizeof(conf), "%s/caskd.conf", base);
	snprintf(dir, sizeof(dir), "%s/data", base);
	snprintf(dir2, sizeof(dir2), "%s/data2", base);
	snprintf(d.log, sizeof(d.log), "%s/caskd.log", base);
	snprintf(text, sizeof(text), "listen = 127.0.0.1:%d\ndata-dir = %s\nworkers = 1\n"
		 "max-keys = 1000\n", port, dir);
	write_file(conf, text);
	fflush(NULL);
	pid = fork();
	cr_assert_geq(pid, 0);
	if (pid == 0) {
		int fd = open(d.log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);

		setpgid(0, 0);
		prctl(PR_SET_PDEATHSIG, SIGTERM, 0, 0, 0);
		if (fd < 0 || dup2(fd, 1) < 0 || dup2(fd, 2) < 0)
			_exit(127);
		execl(bin, bin, "--config", conf, (char *)NULL);
		_exit(127);
	}
	setpgid(pid, pid);
	d.pid = pid;
	d.port = port;
	cr_assert_eq(it_daemon_wait_ready(&d, IT_START_TIMEOUT_MS), 0);
	snprintf(text, sizeof(text), "listen = 127.0.0.1:%d\ndata-dir = %s\nworkers = 1\n"
		 "max-keys = 2000\n", port2, dir2);
	write_file(conf, text);
	cr_assert_eq(kill(d.pid, SIGHUP), 0);
	snprintf(want[0], sizeof(want[0]), "reload: listen changed from 127.0.0.1:%d to "
		 "127.0.0.1:%d: takes effect at the next restart; still listening on "
		 "127.0.0.1:%d", port, port2, port);
	snprintf(want[1], sizeof(want[1]), "reload: data-dir changed from %s to %s", dir, dir2);
	snprintf(want[2], sizeof(want[2]), "reload: max-keys changed from 1000 to 2000");
	deadline = it_now_ms() + 5000;
	do {
		it_sleep_ms(50);
		cr_assert_geq(it_read_tail(d.log, log, sizeof(log)), 0);
	} while (!strstr(log, "replacing workers") && it_now_ms() < deadline);
	for (int i = 0; i < 3; i++)
		cr_assert_not_null(strstr(log, want[i]), "the log does not say \"%s\":\n%s",
				   want[i], log);
	cr_assert_null(strstr(log, "listen, data-dir and max-keys"), "%s", log);
	/* and the running ones stay */
	it_put(port, "/kv/still", "here", 4, 201);
	it_stop_clean(&d);
}

Test(it_daemon, config_file_errors_name_file_and_line, .init = setup,
     .fini = teardown, .timeout = 30)
{
	const char *bin = getenv("CASKD_BIN");
	char conf[300], out[4096], err[4096];
	const char *argv[] = { bin, "--config", conf, NULL };
	int st;

	snprintf(conf, sizeof(conf), "%s/bad.conf", base);
	write_file(conf, "# comment\n\nworkers = 2\nmax-keys = lots\n");
	cr_assert_eq(it_run_capture(argv, 10000, out, sizeof(out), err, sizeof(err), &st), 0);
	cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 2, "exit status %d", st);
	cr_assert_not_null(strstr(err, "bad.conf:4: max-keys"), "stderr: %s", err);
	cr_assert_eq(strchr(err, '\n'), err + strlen(err) - 1, "one line: %s", err);
}

/* --- re-exec through recovery -------------------------------------------- */

struct prober {
	int port;
	volatile int stop;
	long ok, refused, failed;
};

/* Fresh connections back to back: any refused one is a gap in serving. */
static void probe(int idx, void *arg)
{
	struct prober *p = arg;

	(void)idx;
	while (!p->stop) {
		struct it_resp r = { 0 };
		int rc = it_request(p->port, "GET", "/healthz", NULL, NULL, 0, &r);
		if (rc == -ECONNREFUSED)
			p->refused++;
		else if (rc < 0)
			p->failed++;
		else
			p->ok++;
		it_resp_free(&r);
	}
}

static int log_count(const struct it_daemon *d, const char *what)
{
	char log[LOG_TAIL];
	int n = 0;

	if (it_read_tail(d->log, log, sizeof(log)) < 0)
		return -1;
	for (const char *p = log; (p = strstr(p, what)); p++)
		n++;
	return n;
}

Test(it_daemon, reexec_keeps_its_own_listening_socket_and_refuses_nothing,
     .init = setup, .fini = teardown, .timeout = 60)
{
	char dir[300];
	struct it_daemon d;
	struct prober *p = it_shared_alloc(sizeof(*p));
	int64_t deadline;
	pid_t clients;
	int st;

	snprintf(dir, sizeof(dir), "%s/data", base);
	cr_assert_eq(it_daemon_start(&d, dir, 2, NULL), 0);
	it_put(d.port, "/kv/before", "b", 1, 201);
	p->port = d.port;
	clients = fork();
	cr_assert_geq(clients, 0);
	if (clients == 0)
		_exit(it_fork_clients(1, probe, p) ? 1 : 0);
	usleep(200000);
	/* What a worker sends when the shared index cannot be trusted: the
	 * master stops its workers and re-executes through recovery. */
	cr_assert_eq(kill(d.pid, SIGUSR2), 0);
	deadline = it_now_ms() + 15000;
	while (log_count(&d, "caskd ready") < 2 && it_now_ms() < deadline)
		usleep(20000);
	usleep(200000);
	p->stop = 1;
	cr_assert_eq(waitpid(clients, &st, 0), clients);
	cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "the probe failed");
	cr_assert_eq(log_count(&d, "re-executing"), 1, "no re-exec happened");
	cr_assert_eq(log_count(&d, "caskd ready"), 2, "the re-executed master is not ready");
	cr_assert_gt(p->ok, 10, "the probe made too little progress: %ld", p->ok);
	cr_assert_eq(p->refused, 0, "%ld connections refused during the re-exec", p->refused);
	cr_assert_eq(p->failed, 0, "%ld probes failed during the re-exec", p->failed);
	cr_assert_eq(log_count(&d, "kept across the re-exec"), 1,
		     "the socket must be handed to the new image, not bound again");
	it_expect_value(d.port, "/kv/before", "b", 1, 0);
	it_put(d.port, "/kv/after", "a", 1, 201);
	it_stop_clean(&d);
	it_shared_free(p, sizeof(*p));
}

/* --- graceful stop ---------------------------------------------------------- */

#define REFUSE_WITHIN_MS 2000

/* While a graceful stop waits for a request in flight, a new connection
 * is refused (or reset) at once instead of waiting in the accept queue
 * for a worker that will never accept it. */
Test(it_daemon, graceful_stop_refuses_new_connections_at_once, .init = setup,
     .fini = teardown, .timeout = 60)
{
	static const char head[] = "PUT /kv/in-flight HTTP/1.1\r\nHost: x\r\n"
				   "Content-Length: 10\r\n\r\n01234";
	const char *extra[] = { "--shutdown-timeout", "20", NULL };
	char dir[300];
	struct it_daemon d;
	struct it_conn c;
	struct it_resp r = { 0 };
	int64_t t0, took;
	int rc;

	snprintf(dir, sizeof(dir), "%s/data", base);
	cr_assert_eq(it_daemon_start(&d, dir, 2, extra), 0);
	IT_OK(it_conn_open(&c, d.port));
	IT_OK(it_conn_send_raw(&c, head, sizeof(head) - 1)); /* half a body */
	usleep(200000);
	cr_assert_eq(kill(d.pid, SIGTERM), 0);
	usleep(500000);
	cr_assert_eq(it_daemon_wait_exit(&d, 0), -ETIMEDOUT,
		     "the stop must wait for the request in flight");
	t0 = it_now_ms();
	rc = it_request(d.port, "GET", "/healthz", NULL, NULL, 0, &r);
	took = it_now_ms() - t0;
	if (rc == 0)
		it_resp_free(&r);
	cr_assert(rc == -ECONNREFUSED || rc == -ECONNRESET,
		  "a connection during the stop got %s (status %d) after %lld ms; "
		  "want it refused at once", rc ? strerror(-rc) : "a response", r.status,
		  (long long)took);
	cr_assert_lt(took, REFUSE_WITHIN_MS, "refusing took %lld ms", (long long)took);
	/* The request in flight still completes, then the daemon exits 0. */
	IT_OK(it_conn_send_raw(&c, "56789", 5));
	IT_OK(it_conn_read_response(&c, 0, &r));
	cr_assert_eq(r.status, 201, "%s", it_resp_brief(&r));
	it_resp_free(&r);
	it_conn_close(&c);
	it_stop_clean(&d);
}

/* --- supervision -------------------------------------------------------- */

Test(it_daemon, stuck_worker_is_killed_and_replaced, .init = setup,
     .fini = teardown, .timeout = 60)
{
	char dir[300], log[LOG_TAIL];
	const char *extra[] = { "--worker-timeout", "1", NULL };
	struct it_daemon d;
	pid_t stuck;

	snprintf(dir, sizeof(dir), "%s/data", base);
	cr_assert_eq(it_daemon_start(&d, dir, 2, extra), 0);
	stuck = first_child(d.pid);
	cr_assert_gt(stuck, 0);
	cr_assert_eq(kill(stuck, SIGSTOP), 0); /* a wedged event loop */
	{
		int64_t deadline = it_now_ms() + 5000;
		while (it_now_ms() < deadline && kill(stuck, 0) == 0)
			usleep(50000);
		/* kill(…, 0) keeps succeeding on a zombie; the master reaps */
	}
	cr_assert_eq(wait_children(d.pid, 2, 5000), 0);
	cr_assert_geq(it_read_tail(d.log, log, sizeof(log)), 0);
	cr_assert_not_null(strstr(log, "missed its heartbeat"), "%s", log);
	it_expect_value(d.port, "/healthz", "ok", 2, 0);
	it_stop_clean(&d);
}

Test(it_daemon, crash_looping_worker_is_restarted_with_backoff, .init = setup,
     .fini = teardown, .timeout = 60)
{
	char dir[300], log[LOG_TAIL];
	const char *extra[] = { NULL };
	struct it_daemon d;
	const char *p;
	int deaths = 0;

	snprintf(dir, sizeof(dir), "%s/data", base);
	setenv("CASKD_FAILPOINTS", "worker.start=exit", 1);
	cr_assert_eq(it_daemon_spawn(&d, dir, 1, extra), 0);
	unsetenv("CASKD_FAILPOINTS");
	sleep(3);
	cr_assert_geq(it_read_tail(d.log, log, sizeof(log)), 0);
	for (p = log; (p = strstr(p, "exited with status 3")); p++)
		deaths++;
	cr_assert_not_null(strstr(log, "keeps dying at start: backing off"), "%s", log);
	/* Without backoff a crash loop restarts thousands of times in 3 s;
	 * with 100 ms doubling, about 6. */
	cr_assert(deaths >= 3 && deaths <= 12, "%d deaths in 3 s", deaths);
	cr_assert_eq(kill(d.pid, SIGTERM), 0);
	cr_assert_eq(it_daemon_wait_exit(&d, 10000), 0);
	cr_assert(WIFEXITED(d.status) && WEXITSTATUS(d.status) == 0, "status %d", d.status);
}

/* --- logs and metrics -------------------------------------------------- */

/* Starts the daemon with stderr on logpath and JOURNAL_STREAM naming that
 * file, as systemd does for a service whose output goes to the journal.
 * access NULL: no access log. */
static pid_t spawn_journal(const char *logpath, const char *dir, const char *access,
			   int port)
{
	const char *bin = getenv("CASKD_BIN");
	char listen[64];
	pid_t pid;

	cr_assert_not_null(bin);
	snprintf(listen, sizeof(listen), "127.0.0.1:%d", port);
	pid = fork();
	cr_assert_geq(pid, 0);
	if (pid == 0) {
		struct stat st;
		char js[64];
		int fd = open(logpath, O_WRONLY | O_CREAT | O_APPEND, 0644);
		if (fd < 0 || dup2(fd, STDERR_FILENO) < 0 || fstat(fd, &st) < 0)
			_exit(120);
		snprintf(js, sizeof(js), "%llu:%llu", (unsigned long long)st.st_dev,
			 (unsigned long long)st.st_ino);
		setenv("JOURNAL_STREAM", js, 1);
		setpgid(0, 0);
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (access)
			execl(bin, bin, "--listen", listen, "--workers", "2", "--data-dir", dir,
			      "--access-log", access, (char *)NULL);
		else
			execl(bin, bin, "--listen", listen, "--workers", "2", "--data-dir", dir,
			      (char *)NULL);
		_exit(121);
	}
	return pid;
}

Test(it_daemon, journald_priority_prefixes_and_access_log, .init = setup,
     .fini = teardown, .timeout = 60)
{
	char dir[300], access[300], logpath[300], log[LOG_TAIL], text[8192];
	int port = it_free_port(), st, up = 0;
	int64_t deadline = it_now_ms() + 10000;
	pid_t pid;
	FILE *f;
	size_t n;

	snprintf(dir, sizeof(dir), "%s/data", base);
	snprintf(access, sizeof(access), "%s/access.log", base);
	snprintf(logpath, sizeof(logpath), "%s/journal.log", base);
	pid = spawn_journal(logpath, dir, access, port);
	while (!up && it_now_ms() < deadline) {
		struct it_resp r = { 0 };
		if (it_request(port, "GET", "/healthz", NULL, NULL, 0, &r) == 0)
			up = r.status == 200;
		it_resp_free(&r);
		if (!up)
			usleep(50000);
	}
	cr_assert(up, "daemon did not come up");
	it_put(port, "/kv/logged", "x", 1, 201);
	it_expect_error(port, "GET", "/kv/missing", NULL, NULL, 0, 404, "not_found");
	{
		/* a body cut short by the client: nothing written, but a
		 * line and a count (it left no trace before) */
		static const char cut[] = "PUT /kv/cut HTTP/1.1\r\nHost: t\r\n"
					  "Content-Length: 100\r\n\r\n0123456789";
		struct it_conn c;
		double n400 = 0;
		char *m;

		IT_OK(it_conn_open(&c, port));
		IT_OK(it_conn_send_raw(&c, cut, sizeof(cut) - 1));
		it_sleep_ms(100);
		it_conn_close(&c);
		it_sleep_ms(300);
		it_expect_error(port, "GET", "/kv/cut", NULL, NULL, 0, 404, "not_found");
		m = it_get_metrics(port);
		cr_assert_eq(it_metric_value(m, "caskd_requests_total{route=\"kv\",method=\"PUT\","
					     "code=\"400\"}", 0, &n400), 0, "%s", m);
		cr_assert_eq(n400, 1, "the cut-short PUT is counted as a 400");
		free(m);
	}
	cr_assert_eq(kill(pid, SIGTERM), 0);
	cr_assert_eq(waitpid(pid, &st, 0), pid);
	cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "status %d", st);
	cr_assert_geq(it_read_tail(logpath, log, sizeof(log)), 0);
	cr_assert_not_null(strstr(log, "<6>master: caskd ready"),
			   "journald lines start with <priority>: %s", log);
	cr_assert_null(strstr(log, "Z master["), "no timestamps for journald: %s", log);
	f = fopen(access, "r");
	cr_assert_not_null(f);
	n = fread(text, 1, sizeof(text) - 1, f);
	fclose(f);
	text[n] = '\0';
	cr_assert_not_null(strstr(text, "PUT /kv/logged 201 0 "), "%s", text);
	cr_assert_not_null(strstr(text, "GET /kv/missing 404 "), "%s", text);
	cr_assert_not_null(strstr(text, "PUT /kv/cut 400 0 "), "a body cut short: %s", text);
	cr_assert_not_null(strstr(text, "worker="), "%s", text);
}

Test(it_daemon, metrics_sum_over_workers_and_move_with_requests, .init = setup,
     .fini = teardown, .timeout = 60)
{
	char dir[300];
	struct it_daemon d;
	char *m1, *m2;
	double before = 0, after = 0, workers = 0, keys = 0, per_worker = 0;
	int served_by = 0;

	snprintf(dir, sizeof(dir), "%s/data", base);
	cr_assert_eq(it_daemon_start(&d, dir, 3, NULL), 0);
	m1 = it_get_metrics(d.port);
	it_metric_value(m1, "caskd_requests_total{route=\"kv\",method=\"PUT\",code=\"201\"}", 0, &before);
	{
		/* Connections held open at once are spread over the workers
		 * (a worker above the mean + 2 leaves new ones to the others);
		 * one after another, any one worker may take them all. */
		struct it_conn c[12];

		for (int i = 0; i < 12; i++) {
			IT_OK(it_conn_open(&c[i], d.port));
			/* a first request, so the connection is accepted now */
			struct it_resp r;
			IT_OK(it_conn_request(&c[i], "GET", "/healthz", NULL, NULL, 0, &r));
			it_resp_free(&r);
		}
		for (int i = 0; i < 60; i++) {
			char path[32];
			struct it_resp r;
			snprintf(path, sizeof(path), "/kv/m%d", i);
			IT_OK(it_conn_request(&c[i % 12], "PUT", path, NULL, "v", 1, &r));
			cr_assert_eq(r.status, 201, "%s", it_resp_brief(&r));
			it_resp_free(&r);
		}
		for (int i = 0; i < 12; i++)
			it_conn_close(&c[i]);
	}
	m2 = it_get_metrics(d.port);
	cr_assert_eq(it_metric_value(m2, "caskd_requests_total{route=\"kv\",method=\"PUT\",code=\"201\"}", 0,
				     &after), 0, "%s", m2);
	cr_assert_eq(after - before, 60, "PUT 201 moved by %g", after - before);
	cr_assert_eq(it_metric_value(m2, "caskd_workers", 0, &workers), 0);
	cr_assert_eq(workers, 3);
	cr_assert_eq(it_metric_value(m2, "caskd_keys", 0, &keys), 0);
	cr_assert_eq(keys, 60);
	for (const char *p = m2; (p = strstr(p, "\ncaskd_worker_requests_total{")); p++) {
		const char *v = strchr(p + 1, '}');
		if (v && atof(v + 1) > 0)
			served_by++;
		per_worker += v ? atof(v + 1) : 0;
	}
	cr_assert_geq(served_by, 2, "requests over 12 open connections should reach several workers");
	cr_assert_geq(per_worker, 60);
	for (const char *name = "caskd_request_duration_seconds_count\0caskd_fsync_total\0"
				"caskd_index_capacity\0caskd_log_bytes\0caskd_live_bytes\0"
				"caskd_writes_per_fsync_count\0caskd_worker_restarts_total\0"
				"caskd_lock_wait_seconds_total\0caskd_fsync_duration_seconds_count\0";
	     *name; name += strlen(name) + 1)
		cr_assert_not_null(strstr(m2, name), "missing %s", name);
	free(m1);
	free(m2);
	it_stop_clean(&d);
}

/* --- counters that never go backwards --------------------------------------- */

/* 1 if the sample line l (up to eol) belongs to a counter or histogram
 * family of text: those must never decrease while the master lives. */
static int is_monotonic_sample(const char *text, const char *l, size_t n)
{
	char fam[128];
	size_t k = 0;

	while (k < n && k < sizeof(fam) - 1 && l[k] != '{' && l[k] != ' ')
		k++;
	memcpy(fam, l, k);
	fam[k] = '\0';
	for (const char *suffix = "_bucket\0_count\0_sum\0"; *suffix;
	     suffix += strlen(suffix) + 1) {
		size_t fl = strlen(fam), sl = strlen(suffix);
		if (fl > sl && !strcmp(fam + fl - sl, suffix)) {
			char t[200];
			fam[fl - sl] = '\0';
			snprintf(t, sizeof(t), "# TYPE %s histogram\n", fam);
			return strstr(text, t) != NULL;
		}
	}
	{
		char t[200];
		snprintf(t, sizeof(t), "# TYPE %s counter\n", fam);
		return strstr(text, t) != NULL;
	}
}

/* Every counter sample of before is in after, with a value no smaller. */
static void assert_no_counter_decreased(const char *before, const char *after,
					const char *when)
{
	int checked = 0;

	for (const char *l = before; *l;) {
		const char *eol = strchr(l, '\n');
		size_t n = eol ? (size_t)(eol - l) : strlen(l);
		const char *sp = memrchr(l, ' ', n);
		if (*l != '#' && sp && is_monotonic_sample(before, l, n)) {
			char key[512];
			double was = atof(sp + 1), now = -1;
			const char *hit;
			snprintf(key, sizeof(key), "\n%.*s ", (int)(sp - l), l);
			hit = strstr(after, key);
			cr_assert_not_null(hit, "%s: the series %s vanished", when, key + 1);
			now = atof(hit + strlen(key));
			cr_assert_geq(now, was, "%s: %s went from %g to %g", when, key + 1, was, now);
			checked++;
		}
		l = eol ? eol + 1 : l + n;
	}
	cr_assert_gt(checked, 10, "%s: only %d counter samples compared", when, checked);
}

static void traffic(int port, int n)
{
	for (int i = 0; i < n; i++) {
		char path[32];
		snprintf(path, sizeof(path), "/kv/mono-%d", i);
		it_put(port, path, "v", 1, 0); /* fresh connections: every worker */
		it_expect_value(port, path, "v", 1, 0);
	}
}

Test(it_daemon, counters_never_decrease_across_a_worker_kill9_and_a_reload,
     .init = setup, .fini = teardown, .timeout = 90)
{
	char dir[300];
	struct it_daemon d;
	char *m1, *m2, *m3;
	pid_t victim;

	snprintf(dir, sizeof(dir), "%s/data", base);
	cr_assert_eq(it_daemon_start(&d, dir, 2, NULL), 0);
	traffic(d.port, 40);
	m1 = it_get_metrics(d.port);
	victim = first_child(d.pid);
	cr_assert_gt(victim, 0);
	cr_assert_eq(kill(victim, SIGKILL), 0);
	{
		int64_t deadline = it_now_ms() + 5000;
		while (it_now_ms() < deadline &&
		       (first_child(d.pid) == victim || count_children(d.pid) != 2))
			usleep(20000);
	}
	cr_assert_eq(count_children(d.pid), 2, "the killed worker was not replaced");
	it_expect_value(d.port, "/healthz", "ok", 2, 0);
	m2 = it_get_metrics(d.port);
	assert_no_counter_decreased(m1, m2, "after kill -9 of a worker");
	traffic(d.port, 10);
	m2 = (free(m2), it_get_metrics(d.port));
	cr_assert_eq(kill(d.pid, SIGHUP), 0);
	{
		int64_t deadline = it_now_ms() + 15000;
		char log[LOG_TAIL];
		while (it_now_ms() < deadline) {
			if (it_read_tail(d.log, log, sizeof(log)) == 0 &&
			    strstr(log, "reload: done"))
				break;
			usleep(50000);
		}
		cr_assert_not_null(strstr(log, "reload: done"), "the reload never finished");
	}
	m3 = it_get_metrics(d.port);
	assert_no_counter_decreased(m2, m3, "after a reload (SIGHUP)");
	free(m1);
	free(m2);
	free(m3);
	it_stop_clean(&d);
}

/* --- what an operator plans with -------------------------------------------- */

static double metric(const char *text, const char *series)
{
	double v = -1;

	cr_assert_eq(it_metric_value(text, series, 0, &v), 0, "no %s in:\n%.3000s", series, text);
	return v;
}

Test(it_daemon, metrics_label_routes_and_carry_build_info_and_start_time,
     .init = setup, .fini = teardown, .timeout = 60)
{
	char dir[300];
	struct it_daemon d;
	struct it_resp r;
	char *m;
	double start;

	snprintf(dir, sizeof(dir), "%s/data", base);
	cr_assert_eq(it_daemon_start(&d, dir, 1, NULL), 0);
	it_put(d.port, "/kv/a", "1", 1, 201);
	it_expect_value(d.port, "/kv/a", "1", 1, 0);
	it_do(d.port, "POST", "/incr/c", NULL, NULL, 0, &r, 200);
	it_resp_free(&r);
	for (int i = 0; i < 3; i++)
		it_expect_value(d.port, "/healthz", "ok", 2, 0);
	it_expect_error(d.port, "GET", "/nowhere", NULL, NULL, 0, 404, NULL);
	free(it_get_metrics(d.port));
	m = it_get_metrics(d.port);
	/* /healthz and /metrics are not kv GETs any more */
	cr_assert_eq(metric(m, "caskd_requests_total{route=\"kv\",method=\"GET\",code=\"200\"}"), 1);
	cr_assert_eq(metric(m, "caskd_requests_total{route=\"kv\",method=\"PUT\",code=\"201\"}"), 1);
	cr_assert_eq(metric(m, "caskd_requests_total{route=\"incr\",method=\"POST\",code=\"200\"}"), 1);
	cr_assert_geq(metric(m, "caskd_requests_total{route=\"healthz\",method=\"GET\",code=\"200\"}"), 3);
	cr_assert_geq(metric(m, "caskd_requests_total{route=\"metrics\",method=\"GET\",code=\"200\"}"), 1);
	cr_assert_eq(metric(m, "caskd_requests_total{route=\"other\",method=\"GET\",code=\"404\"}"), 1);
	/* duration per route, with buckets for uploads that take a minute */
	cr_assert_eq(metric(m, "caskd_request_duration_seconds_count{route=\"kv\"}"), 2);
	cr_assert_eq(metric(m, "caskd_request_duration_seconds_bucket{route=\"kv\",le=\"60\"}"), 2);
	cr_assert_eq(metric(m, "caskd_request_duration_seconds_bucket{route=\"kv\",le=\"+Inf\"}"), 2);
	cr_assert_geq(metric(m, "caskd_request_duration_seconds_count{route=\"healthz\"}"), 3);
	cr_assert_not_null(strstr(m, "# TYPE caskd_build_info gauge\n"), "%.3000s", m);
	cr_assert_not_null(strstr(m, "\ncaskd_build_info{version=\"0.1.0\",revision=\""),
			   "%.3000s", m);
	cr_assert_eq(metric(m, "caskd_build_info"), 1);
	start = metric(m, "process_start_time_seconds");
	cr_assert(start > (double)time(NULL) - 600 && start <= (double)time(NULL) + 1,
		  "process_start_time_seconds %f is not when the daemon started", start);
	free(m);
	it_stop_clean(&d);
}

/* The text of a sample's value (after the last space of its line). */
static const char *sample_value(const char *text, const char *series, char *buf, size_t n)
{
	const char *l = strstr(text, series);
	size_t len;

	cr_assert_not_null(l, "no %s in:\n%.3000s", series, text);
	l += strlen(series);
	len = strcspn(l, "\n");
	snprintf(buf, n, "%.*s", (int)len, l);
	return buf + strspn(buf, " ");
}

/* Digits after the decimal point of a value as printed. */
static size_t decimals(const char *v)
{
	const char *dot = strchr(v, '.');

	return dot ? strcspn(dot + 1, "e\n") : 0;
}

/* Values print in their shortest exact form: every figure caskd
 * exports has at most 9 decimals (seconds from nanoseconds), and
 * compaction seconds (from milliseconds) at most 3; %.17g used to print
 * 0.32800000000000001. The index's capacity is the table's, and the
 * bound is apart: with no --max-keys caskd_index_capacity was 0 and
 * keys/capacity divided by zero. */
Test(it_daemon, metrics_print_exact_values_and_a_capacity_to_divide_by, .init = setup,
     .fini = teardown, .timeout = 60)
{
	const char *bound[] = { "--max-keys", "16", NULL };
	char dir[300], v[64], state[32], *m, *job;
	struct it_daemon d;
	double cap;

	snprintf(dir, sizeof(dir), "%s/data", base);
	cr_assert_eq(it_daemon_start(&d, dir, 2, NULL), 0);
	for (int i = 0; i < 40; i++)
		it_put(d.port, i % 2 ? "/kv/a" : "/kv/b", "v", 1, 0);
	job = it_job_wait(d.port, it_compact_start(d.port, NULL), NULL, state, sizeof(state));
	cr_assert_str_eq(state, "done", "%s", job);
	free(job);
	m = it_get_metrics(d.port);
	for (const char *l = m; l && *l; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : NULL) {
		const char *sp = memrchr(l, ' ', strcspn(l, "\n"));

		if (*l == '#' || !sp)
			continue;
		snprintf(v, sizeof(v), "%.*s", (int)strcspn(sp + 1, "\n"), sp + 1);
		cr_assert_leq(decimals(v), 9, "float noise in: %.*s", (int)strcspn(l, "\n"), l);
	}
	cr_assert_leq(decimals(sample_value(m, "\ncaskd_compaction_seconds_total", v, sizeof(v))),
		      3, "caskd_compaction_seconds_total %s", v);
	cap = metric(m, "caskd_index_capacity");
	cr_assert(cap >= 1000 && cap < metric(m, "caskd_index_slots"),
		  "caskd_index_capacity %g of a table of %g slots", cap,
		  metric(m, "caskd_index_slots"));
	cr_assert_eq(metric(m, "caskd_index_capacity_max"), 0, "no --max-keys: no bound");
	free(m);
	it_stop_clean(&d);

	cr_assert_eq(it_daemon_start(&d, dir, 2, bound), 0);
	m = it_get_metrics(d.port);
	cr_assert_eq(metric(m, "caskd_index_capacity"), 16, "--max-keys 16 caps the table's");
	cr_assert_eq(metric(m, "caskd_index_capacity_max"), 16);
	free(m);
	it_stop_clean(&d);
}

/* --- the command line ---------------------------------------------------------- */

/* Runs caskd with one --listen value; it must exit 2 at once with one
 * line naming --listen and the value. */
static void expect_listen_refused(const char *value)
{
	const char *bin = getenv("CASKD_BIN");
	char dir[300], out[4096], err[4096];
	const char *argv[] = { bin, "--data-dir", dir, "--workers", "1", "--listen", value, NULL };
	int st = 0, rc;

	snprintf(dir, sizeof(dir), "%s/data", base);
	rc = it_run_capture(argv, 5000, out, sizeof(out), err, sizeof(err), &st);
	cr_assert_eq(rc, 0, "caskd --listen '%s' did not exit within 5 s (it served)", value);
	cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 2,
		  "caskd --listen '%s': want exit 2, got 0x%x; stderr: %s", value, st, err);
	cr_assert_not_null(strstr(err, "--listen"), "the error must name --listen: %s", err);
	cr_assert_not_null(strstr(err, value), "the error must quote '%s': %s", value, err);
	cr_assert_eq(strchr(err, '\n'), err + strlen(err) - 1, "one line: %s", err);
}

Test(it_daemon, listen_with_a_port_out_of_range_or_missing_exits_2, .init = setup,
     .fini = teardown, .timeout = 60)
{
	expect_listen_refused("127.0.0.1:99999");
	expect_listen_refused("127.0.0.1:65536");
	expect_listen_refused("127.0.0.1:");
	expect_listen_refused("127.0.0.1:http");
	expect_listen_refused("127.0.0.1:80x");
	expect_listen_refused("127.0.0.1:-1");
	expect_listen_refused("::1:7070"); /* IPv6 needs brackets */
	expect_listen_refused("[::1:7070");
}

Test(it_daemon, listen_port_errors_in_a_config_file_name_file_and_line, .init = setup,
     .fini = teardown, .timeout = 30)
{
	const char *bin = getenv("CASKD_BIN");
	char conf[300], out[4096], err[4096];
	const char *argv[] = { bin, "--config", conf, NULL };
	int st;

	snprintf(conf, sizeof(conf), "%s/listen.conf", base);
	write_file(conf, "workers = 1\nlisten = 127.0.0.1:99999\n");
	cr_assert_eq(it_run_capture(argv, 5000, out, sizeof(out), err, sizeof(err), &st), 0,
		     "caskd did not exit within 5 s");
	cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 2, "exit status 0x%x", st);
	cr_assert_not_null(strstr(err, "listen.conf:2: listen"), "stderr: %s", err);
}

/* Port 0 lets the kernel choose: allowed, since the log says which. */
Test(it_daemon, listen_on_port_0_logs_the_port_it_got, .init = setup,
     .fini = teardown, .timeout = 60)
{
	const char *bin = getenv("CASKD_BIN");
	char dir[300], logpath[300], log[LOG_TAIL];
	const char *p = NULL;
	int64_t deadline = it_now_ms() + 10000;
	int port = 0, st;
	pid_t pid;

	snprintf(dir, sizeof(dir), "%s/data", base);
	snprintf(logpath, sizeof(logpath), "%s/port0.log", base);
	pid = fork();
	cr_assert_geq(pid, 0);
	if (pid == 0) {
		int fd = open(logpath, O_WRONLY | O_CREAT | O_APPEND, 0644);
		if (fd < 0 || dup2(fd, STDERR_FILENO) < 0)
			_exit(120);
		setpgid(0, 0);
		execl(bin, bin, "--listen", "127.0.0.1:0", "--workers", "1", "--data-dir", dir,
		      (char *)NULL);
		_exit(121);
	}
	while (!p && it_now_ms() < deadline) {
		usleep(50000);
		if (it_read_tail(logpath, log, sizeof(log)) == 0)
			p = strstr(log, "listening on 127.0.0.1:");
	}
	if (p)
		port = atoi(p + strlen("listening on 127.0.0.1:"));
	if (port <= 0)
		kill(pid, SIGKILL);
	cr_assert_gt(port, 0, "the log does not name the port: %s", log);
	cr_assert(port <= 65535);
	{
		int up = 0;
		deadline = it_now_ms() + 10000;
		while (!up && it_now_ms() < deadline) {
			struct it_resp r = { 0 };
			if (it_request(port, "GET", "/healthz", NULL, NULL, 0, &r) == 0)
				up = r.status == 200;
			it_resp_free(&r);
			if (!up)
				usleep(50000);
		}
		if (!up)
			kill(pid, SIGKILL);
		cr_assert(up, "nothing serves on the logged port %d", port);
	}
	cr_assert_eq(kill(pid, SIGTERM), 0);
	cr_assert_eq(waitpid(pid, &st, 0), pid);
	cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "status 0x%x", st);
}

/* --- the access log ------------------------------------------------------------ */

Test(it_daemon, access_log_that_cannot_be_opened_exits_2_naming_it, .init = setup,
     .fini = teardown, .timeout = 30)
{
	const char *bin = getenv("CASKD_BIN");
	char dir[300], out[4096], err[4096];
	const char *path = "/nonexistent/dir/x.log";
	const char *argv[] = { bin, "--data-dir", dir, "--workers", "1", "--listen",
			       "127.0.0.1:0", "--access-log", path, NULL };
	int st = 0;

	snprintf(dir, sizeof(dir), "%s/data", base);
	cr_assert_eq(it_run_capture(argv, 5000, out, sizeof(out), err, sizeof(err), &st), 0,
		     "caskd with an unusable access log did not exit within 5 s");
	cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 2, "want exit 2, got 0x%x: %s", st, err);
	cr_assert_not_null(strstr(err, path), "the error must name the path: %s", err);
	cr_assert_not_null(strstr(err, "access-log"), "the error must name the option: %s", err);
}

static int file_has(const char *path, const char *what, int timeout_ms)
{
	int64_t deadline = it_now_ms() + timeout_ms;
	char text[LOG_TAIL];

	for (;;) {
		if (it_read_tail(path, text, sizeof(text)) == 0 && strstr(text, what))
			return 1;
		if (it_now_ms() >= deadline)
			return 0;
		usleep(20000);
	}
}

/* Every field of a line, as docs/operations.md documents it:
 * TIME PEER METHOD PATH STATUS BYTES DURATIONms worker=N */
static void expect_access_line(const char *path, const char *method, const char *target,
			       int status, size_t bytes)
{
	char text[LOG_TAIL], want[256], ts[64], peer[128], m[16], p[256], dur[32], w[32];
	const char *line;
	int st = 0, nf;
	size_t nb = 0;

	cr_assert_eq(it_read_tail(path, text, sizeof(text)), 0, "no access log at %s", path);
	snprintf(want, sizeof(want), " %s %s %d ", method, target, status);
	line = strstr(text, want);
	cr_assert_not_null(line, "no line for%s in:\n%s", want, text);
	while (line > text && line[-1] != '\n')
		line--;
	nf = sscanf(line, "%63s %127s %15s %255s %d %zu %31s %31s", ts, peer, m, p, &st, &nb,
		    dur, w);
	cr_assert_eq(nf, 8, "malformed line: %.200s", line);
	cr_assert(strlen(ts) == 24 && ts[4] == '-' && ts[10] == 'T' && ts[23] == 'Z',
		  "timestamp %s is not YYYY-MM-DDTHH:MM:SS.mmmZ", ts);
	cr_assert(!strncmp(peer, "127.0.0.1:", 10) && atoi(peer + 10) > 0,
		  "client address %s is not 127.0.0.1:PORT", peer);
	cr_assert_eq(nb, bytes, "bytes %zu, want %zu: %.200s", nb, bytes, line);
	cr_assert(strlen(dur) > 2 && !strcmp(dur + strlen(dur) - 2, "ms") && atof(dur) >= 0,
		  "duration %s is not <float>ms", dur);
	cr_assert(!strncmp(w, "worker=", 7), "last field %s", w);
}

Test(it_daemon, access_log_lines_and_reopen_on_sighup, .init = setup,
     .fini = teardown, .timeout = 60)
{
	char conf[300], dir[300], access[300], moved[300], text[512];
	const char *extra[] = { "--config", conf, NULL };
	struct it_daemon d;

	snprintf(conf, sizeof(conf), "%s/caskd.conf", base);
	snprintf(dir, sizeof(dir), "%s/data", base);
	snprintf(access, sizeof(access), "%s/access.log", base);
	snprintf(moved, sizeof(moved), "%s/access.log.1", base);
	snprintf(text, sizeof(text), "access-log = %s\n", access);
	write_file(conf, text);
	cr_assert_eq(it_daemon_start(&d, dir, 2, extra), 0);
	it_put(d.port, "/kv/one", "12345", 5, 201);
	it_expect_value(d.port, "/kv/one", "12345", 5, 0);
	cr_assert(file_has(access, " GET /kv/one 200 ", 2000), "no line for the GET");
	expect_access_line(access, "PUT", "/kv/one", 201, 0);
	expect_access_line(access, "GET", "/kv/one", 200, 5);

	/* logrotate's way: move the file, then SIGHUP */
	cr_assert_eq(rename(access, moved), 0);
	cr_assert_eq(kill(d.pid, SIGHUP), 0);
	cr_assert(file_has(d.log, "reload: done", 10000), "the reload never finished");
	it_put(d.port, "/kv/two", "x", 1, 201);
	cr_assert(file_has(access, " PUT /kv/two 201 ", 2000),
		  "after SIGHUP lines go to a new %s", access);
	cr_assert(file_has(moved, " PUT /kv/one 201 ", 0), "the old lines stay in the moved file");

	/* A reopen that fails is logged and the open log is kept. */
	write_file(conf, "access-log = /nonexistent/dir/x.log\n");
	cr_assert_eq(kill(d.pid, SIGHUP), 0);
	cr_assert(file_has(d.log, "/nonexistent/dir/x.log", 5000),
		  "the failed reopen is not logged");
	usleep(1500000);
	it_put(d.port, "/kv/three", "x", 1, 201);
	cr_assert(file_has(access, " PUT /kv/three 201 ", 2000),
		  "after a failed reopen the old access log must go on");
	it_stop_clean(&d);
}

/* --- engine lines through the logger ------------------------------------------- */

/* Leaves database.bin with space prepared after its last record, which
 * the next start's recovery reports (an engine line, level warn). */
static void kill9_after_a_write(const char *dir)
{
	struct it_daemon d;

	cr_assert_eq(it_daemon_start(&d, dir, 1, NULL), 0);
	it_put(d.port, "/kv/k", "v", 1, 0);
	usleep(300000); /* the master's timer prepares space after the tail */
	IT_OK(it_daemon_kill9_all(&d));
}

/* The line of log holding what, copied into buf. */
static const char *line_with(const char *log, const char *what, char *buf, size_t n)
{
	const char *p = strstr(log, what), *b, *e;

	if (!p)
		return NULL;
	for (b = p; b > log && b[-1] != '\n'; b--)
		;
	e = strchr(p, '\n');
	snprintf(buf, n, "%.*s", (int)(e ? e - b : (long)strlen(b)), b);
	return buf;
}

Test(it_daemon, engine_lines_carry_time_level_and_journal_prefix_and_obey_log_level,
     .init = setup, .fini = teardown, .timeout = 90)
{
	const char *quiet[] = { "--log-level", "error", NULL };
	char dir[300], log[LOG_TAIL], line[1024], jpath[300];
	struct it_daemon d;
	int port, st, up = 0;
	int64_t deadline;
	pid_t pid;

	snprintf(dir, sizeof(dir), "%s/data", base);
	kill9_after_a_write(dir);
	cr_assert_eq(it_daemon_start(&d, dir, 1, NULL), 0);
	cr_assert_geq(it_read_tail(d.log, log, sizeof(log)), 0);
	cr_assert_not_null(line_with(log, "recovery: ", line, sizeof(line)),
			   "recovery reported nothing after a kill -9: %s", log);
	/* 2026-12-02T17:36:24.755Z master[123] warn: recovery: ... */
	cr_assert(strlen(line) > 25 && line[4] == '-' && line[10] == 'T' && line[23] == 'Z' &&
		  strstr(line, " master[") &&
		  (strstr(line, "] warn: recovery: ") || strstr(line, "] info: recovery: ")),
		  "an engine line without the logger's format: %s", line);
	cr_assert_null(strstr(log, "caskd: recovery"), "a raw engine line: %s", log);
	it_stop_clean(&d);

	kill9_after_a_write(dir);
	cr_assert_eq(it_daemon_start(&d, dir, 1, quiet), 0);
	cr_assert_geq(it_read_tail(d.log, log, sizeof(log)), 0);
	cr_assert_null(strstr(log, "recovery: "), "--log-level error shows warnings: %s", log);
	it_stop_clean(&d);

	kill9_after_a_write(dir);
	snprintf(jpath, sizeof(jpath), "%s/journal.log", base);
	port = it_free_port();
	pid = spawn_journal(jpath, dir, NULL, port);
	for (deadline = it_now_ms() + 10000; !up && it_now_ms() < deadline;) {
		struct it_resp r = { 0 };
		if (it_request(port, "GET", "/healthz", NULL, NULL, 0, &r) == 0)
			up = r.status == 200;
		it_resp_free(&r);
		if (!up)
			usleep(50000);
	}
	cr_assert(up, "daemon did not come up");
	cr_assert_eq(kill(pid, SIGTERM), 0);
	cr_assert_eq(waitpid(pid, &st, 0), pid);
	cr_assert_geq(it_read_tail(jpath, log, sizeof(log)), 0);
	cr_assert_not_null(line_with(log, "recovery: ", line, sizeof(line)), "%s", log);
	/* syslog priorities: info 6, warning 4 */
	cr_assert(!strncmp(line, "<4>master: recovery: ", 21) ||
		  !strncmp(line, "<6>master: recovery: ", 21),
		  "an engine line for journald must start <4> or <6>master: %s", line);
}

/* --- connection timeouts --------------------------------------------------------- */

Test(it_daemon, idle_and_read_timeouts_are_options, .init = setup, .fini = teardown,
     .timeout = 60)
{
	const char *extra[] = { "--idle-timeout", "1", "--read-timeout", "1", NULL };
	char dir[300];
	struct it_daemon d;
	struct it_conn c;
	struct it_resp r;
	int64_t t0;

	snprintf(dir, sizeof(dir), "%s/data", base);
	cr_assert_eq(it_daemon_start(&d, dir, 1, extra), 0);
	/* idle: a keep-alive connection is closed after about a second */
	IT_OK(it_conn_open(&c, d.port));
	IT_OK(it_conn_request(&c, "GET", "/healthz", NULL, NULL, 0, &r));
	it_resp_free(&r);
	t0 = it_now_ms();
	cr_assert_eq(it_conn_peer_closed(&c, 5000), 1, "the idle connection stayed open");
	cr_assert_lt(it_now_ms() - t0, 3000, "closed after %lld ms, want ~1000",
		     (long long)(it_now_ms() - t0));
	it_conn_close(&c);
	/* read: a request whose headers stall gets 408 after about a second */
	IT_OK(it_conn_open(&c, d.port));
	IT_OK(it_conn_send_raw(&c, "GET /healthz HTTP/1.1\r\nHost:", 29));
	t0 = it_now_ms();
	IT_OK(it_conn_read_response(&c, 0, &r));
	cr_assert_eq(r.status, 408, "%s", it_resp_brief(&r));
	cr_assert_lt(it_now_ms() - t0, 3000, "408 after %lld ms, want ~1000",
		     (long long)(it_now_ms() - t0));
	it_resp_free(&r);
	it_conn_close(&c);
	it_stop_clean(&d);
}
