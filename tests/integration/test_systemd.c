/* tests/integration/test_systemd.c — caskd and the service manager,
 * without a running systemd: a unix datagram socket stands in for
 * NOTIFY_SOCKET, a listening socket handed over as fd 3 with LISTEN_FDS
 * stands in for socket activation (also across the master's re-execs and
 * a graceful stop), systemd-analyze checks the units, and the example
 * config is held to --help.
 */
#include "tests/integration/harness.h"
#include "tests/integration/it_assert.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/prctl.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#define MSG_MAX 1024
#define NOTIFY_WAIT_MS 10000
#define WATCHDOG_USEC "400000"

static char base[256];

static void setup(void)
{
	it_setup();
	cr_assert_eq(it_tmpdir(base, sizeof(base)), 0);
}

static void teardown(void)
{
	it_teardown(); /* also removes base */
}

static int notify_socket(const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);

	cr_assert_geq(fd, 0);
	cr_assert_lt(strlen(path), sizeof(sa.sun_path), "socket path too long: %s", path);
	memcpy(sa.sun_path, path, strlen(path) + 1);
	cr_assert_eq(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0, "bind %s: %s",
		     path, strerror(errno));
	return fd;
}

/* Reads datagrams until one contains want; appends all to log. */
static int wait_message(int fd, const char *want, char *log, size_t logn)
{
	int64_t deadline = it_now_ms() + NOTIFY_WAIT_MS;

	while (it_now_ms() < deadline) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		char msg[MSG_MAX];
		ssize_t n;
		if (poll(&p, 1, 100) <= 0)
			continue;
		n = recv(fd, msg, sizeof(msg) - 1, 0);
		if (n <= 0)
			continue;
		msg[n] = '\0';
		strncat(log, msg, logn - strlen(log) - 2);
		strcat(log, "|");
		if (strstr(msg, want))
			return 0;
	}
	return -ETIMEDOUT;
}

Test(it_systemd, notify_ready_status_watchdog_reload_stopping_in_order,
     .init = setup, .fini = teardown, .timeout = 60)
{
	char path[300], dir[300], log[16384] = "";
	struct it_daemon d;
	const char *reloading, *ready2;
	int fd, st;

	snprintf(path, sizeof(path), "%s/notify.sock", base);
	snprintf(dir, sizeof(dir), "%s/data", base);
	fd = notify_socket(path);
	setenv("NOTIFY_SOCKET", path, 1);
	setenv("WATCHDOG_USEC", WATCHDOG_USEC, 1);
	cr_assert_eq(it_daemon_start(&d, dir, 2, NULL), 0);
	unsetenv("NOTIFY_SOCKET");
	unsetenv("WATCHDOG_USEC");

	cr_assert_eq(wait_message(fd, "READY=1", log, sizeof(log)), 0, "no READY=1: %s", log);
	cr_assert_eq(wait_message(fd, "STATUS=", log, sizeof(log)), 0, "no STATUS=: %s", log);
	cr_assert_eq(wait_message(fd, "WATCHDOG=1", log, sizeof(log)), 0,
		     "no WATCHDOG=1 with WATCHDOG_USEC set: %s", log);

	cr_assert_eq(kill(d.pid, SIGHUP), 0);
	cr_assert_eq(wait_message(fd, "RELOADING=1", log, sizeof(log)), 0, "no RELOADING=1: %s", log);
	reloading = strstr(log, "RELOADING=1");
	cr_assert_not_null(strstr(reloading, "MONOTONIC_USEC="),
			   "RELOADING=1 must carry MONOTONIC_USEC: %s", log);
	cr_assert_eq(wait_message(fd, "READY=1", log, sizeof(log)), 0,
		     "no READY=1 after the reload: %s", log);
	ready2 = strstr(strstr(log, "RELOADING=1"), "READY=1");
	cr_assert_not_null(ready2, "READY=1 must follow RELOADING=1: %s", log);
	it_expect_value(d.port, "/healthz", "ok", 2, 0);

	st = it_daemon_stop(&d);
	cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "graceful stop status %d", st);
	cr_assert_eq(wait_message(fd, "STOPPING=1", log, sizeof(log)), 0, "no STOPPING=1: %s", log);
	cr_assert_gt(strstr(log, "STOPPING=1"), ready2, "STOPPING=1 must come last: %s", log);
	close(fd);
}

static int listening_socket(int *port)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof(sa);
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	cr_assert_geq(fd, 0);
	cr_assert_eq(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	cr_assert_eq(listen(fd, 128), 0);
	cr_assert_eq(getsockname(fd, (struct sockaddr *)&sa, &len), 0);
	*port = ntohs(sa.sin_port);
	return fd;
}

Test(it_systemd, serves_the_socket_passed_by_listen_fds, .init = setup,
     .fini = teardown, .timeout = 60)
{
	char dir[300];
	const char *bin = getenv("CASKD_BIN");
	int port, lfd, status = 0;
	pid_t pid;

	cr_assert_not_null(bin, "CASKD_BIN must name the daemon");
	snprintf(dir, sizeof(dir), "%s/data", base);
	lfd = listening_socket(&port);
	pid = fork();
	cr_assert_geq(pid, 0);
	if (pid == 0) {
		char pidbuf[32];
		int null = open("/dev/null", O_WRONLY);
		dup2(null, STDOUT_FILENO);
		dup2(null, STDERR_FILENO);
		if (dup2(lfd, 3) < 0)
			_exit(120);
		snprintf(pidbuf, sizeof(pidbuf), "%d", (int)getpid());
		setenv("LISTEN_PID", pidbuf, 1);
		setenv("LISTEN_FDS", "1", 1);
		/* An address no interface has: binding it would fail, so a
		 * served request proves the passed socket is used. */
		execl(bin, bin, "--listen", "192.0.2.1:7", "--workers", "2", "--data-dir",
		      dir, (char *)NULL);
		_exit(121);
	}
	close(lfd);
	{
		int64_t deadline = it_now_ms() + 10000;
		struct it_resp r = { 0 };
		int ok = 0;
		while (!ok && it_now_ms() < deadline) {
			if (it_request(port, "GET", "/healthz", NULL, NULL, 0, &r) == 0) {
				ok = r.status == 200;
				it_resp_free(&r);
			}
			if (!ok)
				usleep(50000);
		}
		cr_assert(ok, "the passed socket was never served");
	}
	{
		uint64_t v = it_put(port, "/kv/activated", "yes", 3, 201);
		it_expect_value(port, "/kv/activated", "yes", 3, v);
	}
	cr_assert_eq(kill(pid, SIGTERM), 0);
	cr_assert_eq(waitpid(pid, &status, 0), pid);
	cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "exit status %d", status);
}

Test(it_systemd, contrib_units_pass_systemd_analyze_verify, .init = setup,
     .fini = teardown, .timeout = 60)
{
	const char *bin = getenv("CASKD_BIN");
	char cmd[2048], out[8192], err[8192];
	const char *argv[] = { "/usr/bin/systemd-analyze", "verify", NULL, NULL, NULL };
	char svc[300], sock[300];
	int status = -1;

	if (access("/usr/bin/systemd-analyze", X_OK) != 0)
		cr_skip_test("systemd-analyze is not installed (Debian package systemd; .ci/run installs it)");
	snprintf(svc, sizeof(svc), "%s/caskd.service", base);
	snprintf(sock, sizeof(sock), "%s/caskd.socket", base);
	snprintf(cmd, sizeof(cmd),
		 "sed 's|/usr/local/bin/caskd|%s|' contrib/caskd.service > %s && cp contrib/caskd.socket %s",
		 bin, svc, sock);
	cr_assert_eq(system(cmd), 0, "copying the units (run from the repository root)");
	argv[2] = svc;
	argv[3] = sock;
	cr_assert_eq(it_run_capture(argv, 30000, out, sizeof(out), err, sizeof(err), &status), 0);
	cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0,
		  "systemd-analyze verify failed: %s%s", out, err);
}

/* --- socket activation across a re-exec ----------------------------------- */

/* A daemon started as systemd-socket-activate starts it: the listening
 * socket at fd 3, LISTEN_FDS=1 and LISTEN_PID naming it, and no other
 * copy of the socket anywhere (the test closes its own), so a daemon
 * that loses the socket makes clients fail instead of queue. */
struct activated {
	pid_t pid;
	int port;
	char log[300];
};

static void spawn_activated(struct activated *a, const char *dir,
			    const char *failpoints)
{
	const char *bin = getenv("CASKD_BIN");
	int lfd;

	cr_assert_not_null(bin, "CASKD_BIN must name the daemon");
	snprintf(a->log, sizeof(a->log), "%s/activated.log", base);
	lfd = listening_socket(&a->port);
	a->pid = fork();
	cr_assert_geq(a->pid, 0);
	if (a->pid == 0) {
		char pidbuf[32];
		int logfd = open(a->log, O_WRONLY | O_CREAT | O_APPEND, 0644);
		if (logfd < 0 || dup2(logfd, STDOUT_FILENO) < 0 ||
		    dup2(logfd, STDERR_FILENO) < 0 || dup2(lfd, 3) < 0)
			_exit(120);
		close_range(4, ~0U, 0);
		setpgid(0, 0);
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		snprintf(pidbuf, sizeof(pidbuf), "%d", (int)getpid());
		setenv("LISTEN_PID", pidbuf, 1);
		setenv("LISTEN_FDS", "1", 1);
		if (failpoints)
			setenv("CASKD_FAILPOINTS", failpoints, 1);
		execl(bin, bin, "--listen", "192.0.2.1:7", "--workers", "1", "--data-dir",
		      dir, (char *)NULL);
		_exit(121);
	}
	close(lfd);
}

static int count_in_log(const char *path, const char *what)
{
	char log[16384];
	int n = 0;

	if (it_read_tail(path, log, sizeof(log)) < 0)
		return -1;
	for (const char *p = log; (p = strstr(p, what)); p++)
		n++;
	return n;
}

/* Waits until the log says "caskd ready" `times` times. */
static int wait_ready_lines(const char *log, int times, int timeout_ms)
{
	int64_t deadline = it_now_ms() + timeout_ms;

	for (;;) {
		if (count_in_log(log, "caskd ready") >= times)
			return 0;
		if (it_now_ms() >= deadline)
			return -ETIMEDOUT;
		usleep(20000);
	}
}

static void dump(const char *path)
{
	char log[8192];

	if (it_read_tail(path, log, sizeof(log)) == 0)
		fprintf(stderr, "---- %s ----\n%s---- end ----\n", path, log);
}

/* What a re-executed master must still be: serving the socket it was
 * given, at fd 3, with nothing of libevent's complaining about fd 3. */
static void expect_serving_after_reexec(struct activated *a, const char *key)
{
	char link[64], target[256];
	struct it_resp r;
	ssize_t n;
	int rc;

	rc = it_request(a->port, "PUT", key, NULL, "again", 5, &r);
	if (rc != 0 || r.status != 201)
		dump(a->log);
	cr_assert_eq(rc, 0, "PUT %s after the re-exec: no response (%s): the "
		     "passed socket was lost", key, strerror(-rc));
	cr_assert_eq(r.status, 201, "PUT %s after the re-exec: %s", key, it_resp_brief(&r));
	it_resp_free(&r);
	it_expect_value(a->port, key, "again", 5, 0);
	snprintf(link, sizeof(link), "/proc/%d/fd/3", (int)a->pid);
	n = readlink(link, target, sizeof(target) - 1);
	cr_assert_gt(n, 0, "readlink %s: %s", link, strerror(errno));
	target[n] = '\0';
	cr_assert(!strncmp(target, "socket:", 7),
		  "fd 3 of the re-executed master is %s, not the passed socket", target);
	cr_assert_eq(count_in_log(a->log, "Epoll ADD"), 0, "libevent could not watch fd 3");
	cr_assert_eq(count_in_log(a->log, "passed by the service manager"), 2,
		     "both images must serve the passed socket");
}

static void stop_activated(struct activated *a)
{
	int status = 0;

	cr_assert_eq(kill(a->pid, SIGTERM), 0);
	cr_assert_eq(waitpid(a->pid, &status, 0), a->pid);
	cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "exit status 0x%x", status);
}

Test(it_systemd, passed_socket_survives_the_reexec_after_a_failed_fdatasync,
     .init = setup, .fini = teardown, .timeout = 60)
{
	struct activated a;
	char dir[300];
	int st[3], n = 0;

	snprintf(dir, sizeof(dir), "%s/data", base);
	/* The worker's own 3rd fdatasync fails: the store is poisoned and
	 * the master restarts through recovery by re-executing itself. */
	spawn_activated(&a, dir, "io.fsync=eio@3");
	cr_assert_eq(wait_ready_lines(a.log, 1, 10000), 0, "never ready");
	for (; n < 3; n++) {
		char key[32];
		struct it_resp r;
		snprintf(key, sizeof(key), "/kv/k%d", n);
		cr_assert_eq(it_request(a.port, "PUT", key, NULL, "v", 1, &r), 0);
		st[n] = r.status;
		it_resp_free(&r);
	}
	cr_assert(st[0] == 201 && st[1] == 201 && st[2] == 503,
		  "PUTs got %d %d %d; want 201 201 503", st[0], st[1], st[2]);
	if (wait_ready_lines(a.log, 2, 15000) != 0)
		dump(a.log);
	cr_assert_eq(count_in_log(a.log, "re-executing"), 1, "no re-exec");
	cr_assert_eq(wait_ready_lines(a.log, 2, 0), 0, "the re-executed master never got ready");
	expect_serving_after_reexec(&a, "/kv/after-fsync-failure");
	stop_activated(&a);
}

Test(it_systemd, passed_socket_survives_the_reexec_for_a_lost_index,
     .init = setup, .fini = teardown, .timeout = 60)
{
	struct activated a;
	char dir[300];

	snprintf(dir, sizeof(dir), "%s/data", base);
	spawn_activated(&a, dir, NULL);
	cr_assert_eq(wait_ready_lines(a.log, 1, 10000), 0, "never ready");
	it_put(a.port, "/kv/before", "b", 1, 201);
	/* What a worker sends when the shared index cannot be trusted. */
	cr_assert_eq(kill(a.pid, SIGUSR2), 0);
	if (wait_ready_lines(a.log, 2, 15000) != 0)
		dump(a.log);
	cr_assert_eq(wait_ready_lines(a.log, 2, 0), 0, "the re-executed master never got ready");
	expect_serving_after_reexec(&a, "/kv/after-index-lost");
	it_expect_value(a.port, "/kv/before", "b", 1, 0);
	stop_activated(&a);
}

Test(it_systemd, listen_fds_naming_something_else_than_a_socket_is_refused,
     .init = setup, .fini = teardown, .timeout = 30)
{
	const char *bin = getenv("CASKD_BIN");
	char dir[300], path[300], log[4096];
	int status = 0;
	pid_t pid;

	snprintf(dir, sizeof(dir), "%s/data", base);
	snprintf(path, sizeof(path), "%s/stderr.log", base);
	pid = fork();
	cr_assert_geq(pid, 0);
	if (pid == 0) {
		char pidbuf[32];
		int logfd = open(path, O_WRONLY | O_CREAT | O_APPEND, 0644);
		int file = open("/dev/null", O_RDONLY);
		if (logfd < 0 || file < 0 || dup2(logfd, STDERR_FILENO) < 0 ||
		    dup2(file, 3) < 0)
			_exit(120);
		close_range(4, ~0U, 0);
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		snprintf(pidbuf, sizeof(pidbuf), "%d", (int)getpid());
		setenv("LISTEN_PID", pidbuf, 1);
		setenv("LISTEN_FDS", "1", 1);
		execl(bin, bin, "--workers", "1", "--data-dir", dir, (char *)NULL);
		_exit(121);
	}
	{
		int64_t deadline = it_now_ms() + 10000;
		pid_t got = 0;
		while (got == 0 && it_now_ms() < deadline) {
			got = waitpid(pid, &status, WNOHANG);
			if (got == 0)
				usleep(20000);
		}
		if (got == 0) {
			kill(pid, SIGKILL);
			waitpid(pid, &status, 0);
		}
		cr_assert_eq(got, pid, "caskd served /dev/null as a listening socket");
	}
	cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 1,
		  "want exit status 1, got 0x%x", status);
	cr_assert_eq(it_read_tail(path, log, sizeof(log)), 0);
	cr_assert_not_null(strstr(log, "fd 3"), "the error must name fd 3: %s", log);
	cr_assert_not_null(strstr(log, "LISTEN_FDS"), "the error must name LISTEN_FDS: %s", log);
}

/* systemd queues connections on its socket for the next instance: a
 * stopping caskd must not close its copy (with systemd-socket-activate
 * there is no other). */
Test(it_systemd, graceful_stop_keeps_a_passed_socket_open, .init = setup,
     .fini = teardown, .timeout = 60)
{
	static const char head[] = "PUT /kv/in-flight HTTP/1.1\r\nHost: x\r\n"
				   "Content-Length: 10\r\n\r\n01234";
	struct activated a;
	struct it_conn c, late;
	struct it_resp r;
	char dir[300];

	snprintf(dir, sizeof(dir), "%s/data", base);
	spawn_activated(&a, dir, NULL);
	cr_assert_eq(wait_ready_lines(a.log, 1, 10000), 0, "never ready");
	usleep(100000); /* the worker serves once the master said ready */
	IT_OK(it_conn_open(&c, a.port));
	IT_OK(it_conn_send_raw(&c, head, sizeof(head) - 1));
	usleep(200000);
	cr_assert_eq(kill(a.pid, SIGTERM), 0);
	usleep(500000);
	cr_assert_eq(waitpid(a.pid, NULL, WNOHANG), 0, "the stop must wait for the request");
	/* Queued by the kernel, not refused. */
	IT_OK(it_conn_open(&late, a.port));
	it_conn_close(&late);
	IT_OK(it_conn_send_raw(&c, "56789", 5));
	IT_OK(it_conn_read_response(&c, 0, &r));
	cr_assert_eq(r.status, 201, "%s", it_resp_brief(&r));
	it_resp_free(&r);
	it_conn_close(&c);
	{
		int status = 0;
		cr_assert_eq(waitpid(a.pid, &status, 0), a.pid);
		cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "status 0x%x", status);
	}
}

/* contrib/caskd.conf lists every option of --help, and with every
 * setting uncommented it is a valid config (its defaults parse). */
Test(it_systemd, contrib_config_lists_every_option_and_parses, .init = setup,
     .fini = teardown, .timeout = 30)
{
	const char *bin = getenv("CASKD_BIN");
	const char *help[] = { bin, "--help", NULL };
	char out[8192], err[4096], conf[300], cmd[1024], dir[300];
	const char *run[] = { bin, "--config", conf, "--data-dir", dir, "--workers", "1",
			      "--log-level", "error", NULL };
	FILE *f;
	char text[8192];
	size_t n;
	int st, listed = 0;

	cr_assert_not_null(bin);
	cr_assert_eq(it_run_capture(help, 5000, out, sizeof(out), err, sizeof(err), &st), 0);
	f = fopen("contrib/caskd.conf", "r");
	cr_assert_not_null(f, "contrib/caskd.conf (run from the repository root)");
	n = fread(text, 1, sizeof(text) - 1, f);
	fclose(f);
	text[n] = '\0';
	for (char *l = strstr(out, "\n  --"); l; l = strstr(l + 1, "\n  --")) {
		char name[64], want[80];
		if (sscanf(l + 5, "%63s", name) != 1 || !strcmp(name, "config") ||
		    !strcmp(name, "help") || !strcmp(name, "version"))
			continue;
		snprintf(want, sizeof(want), "\n# %s =", name);
		cr_assert_not_null(strstr(text, want), "contrib/caskd.conf lacks '# %s ='", name);
		listed++;
	}
	cr_assert_geq(listed, 14, "only %d options in --help", listed);
	snprintf(conf, sizeof(conf), "%s/all.conf", base);
	/* a directory under a regular file: it cannot be created */
	snprintf(dir, sizeof(dir), "%s/all.conf/data", base);
	snprintf(cmd, sizeof(cmd), "sed -E 's/^# ([a-z-]+ =)/\\1/' contrib/caskd.conf > %s", conf);
	cr_assert_eq(system(cmd), 0);
	/* The store cannot open there (exit 1): the config itself parsed. */
	cr_assert_eq(it_run_capture(run, 10000, out, sizeof(out), err, sizeof(err), &st), 0);
	cr_assert(WIFEXITED(st) && WEXITSTATUS(st) != 2,
		  "the uncommented contrib/caskd.conf is rejected: %s", err);
}

/* A long recovery tells systemd it is making progress (issue 9): without
 * EXTEND_TIMEOUT_USEC a start timeout would kill a caskd that is busy
 * reading a big log. 85 MB written, kill -9 (no database.idx), restart:
 * the scan passes its 64 MB progress step before READY=1. */
#define LONG_VALUES 85
#define LONG_VALUE_BYTES (1000u * 1024u)

Test(it_systemd, long_recovery_sends_extend_timeout_before_ready, .init = setup,
     .fini = teardown, .timeout = 90)
{
	char path[300], dir[300], log[16384] = "", key[32];
	char *val = malloc(LONG_VALUE_BYTES);
	struct it_daemon d;
	const char *ext, *ready;
	int fd;

	cr_assert_not_null(val);
	snprintf(dir, sizeof(dir), "%s/data", base);
	cr_assert_eq(it_daemon_start(&d, dir, 2, NULL), 0);
	for (int i = 0; i < LONG_VALUES; i++) {
		memset(val, 'a' + i % 26, LONG_VALUE_BYTES);
		snprintf(key, sizeof(key), "/kv/big%d", i);
		it_put(d.port, key, val, LONG_VALUE_BYTES, 201);
	}
	IT_OK(it_daemon_kill9_all(&d));

	snprintf(path, sizeof(path), "%s/notify.sock", base);
	fd = notify_socket(path);
	setenv("NOTIFY_SOCKET", path, 1);
	cr_assert_eq(it_daemon_start(&d, dir, 2, NULL), 0);
	unsetenv("NOTIFY_SOCKET");
	cr_assert_eq(wait_message(fd, "READY=1", log, sizeof(log)), 0, "no READY=1: %s", log);
	ext = strstr(log, "EXTEND_TIMEOUT_USEC=");
	ready = strstr(log, "READY=1");
	cr_assert_not_null(ext, "no EXTEND_TIMEOUT_USEC during recovery: %s", log);
	cr_assert_lt(ext, ready, "EXTEND_TIMEOUT_USEC must come before READY=1: %s", log);
	cr_assert_not_null(strstr(log, "STATUS=recovering database.bin"), "%s", log);
	memset(val, 'a' + (LONG_VALUES - 1) % 26, LONG_VALUE_BYTES);
	snprintf(key, sizeof(key), "/kv/big%d", LONG_VALUES - 1);
	it_expect_value(d.port, key, val, LONG_VALUE_BYTES, 0);
	it_stop_clean(&d);
	close(fd);
	free(val);
}
