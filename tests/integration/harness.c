/* tests/integration/harness.c — daemon control, HTTP client and client
 * processes for the integration suites (see harness.h for the contract).
 *
 * Divisions: bookkeeping (registry of daemons and temp dirs), files,
 * process helpers, daemon control, HTTP client, parsing helpers, client
 * processes.
 *
 * Runs in the Criterion test process (one per test) and in client children
 * forked from it. No threads; the registry is per process and a child never
 * touches it.
 */
#include "tests/integration/harness.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* Enough for every daemon and temp dir one test makes. */
#define IT_MAX_TRACKED 16
/* Pause between polls of waitpid() or /healthz. */
#define IT_POLL_MS 10
/* A master that exited may leave workers that are still dying: give them
 * this long before they count as stragglers. */
#define IT_STRAGGLER_GRACE_MS 1000
/* Response headers larger than this are a protocol error here. */
#define IT_MAX_HEAD_BYTES (64 * 1024)
/* Bytes of the log shown when a daemon misbehaves. */
#define IT_LOG_TAIL_BYTES 4096
/* Most arguments a daemon command line gets. */
#define IT_MAX_ARGS 64

/* ==== bookkeeping ======================================================= */

static pid_t tracked_pids[IT_MAX_TRACKED];
static char tracked_dirs[IT_MAX_TRACKED][256];
static int baseline_fds = -1;

static int count_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;
	int n = 0;

	if (!d)
		return -errno;
	while ((e = readdir(d)) != NULL)
		if (e->d_name[0] != '.')
			n++;
	closedir(d);
	return n - 1; /* the DIR's own fd */
}

static void track_pid(pid_t pid)
{
	for (int i = 0; i < IT_MAX_TRACKED; i++) {
		if (tracked_pids[i] == 0) {
			tracked_pids[i] = pid;
			return;
		}
	}
	fprintf(stderr, "harness: too many daemons in one test\n");
}

static void untrack_pid(pid_t pid)
{
	for (int i = 0; i < IT_MAX_TRACKED; i++)
		if (tracked_pids[i] == pid)
			tracked_pids[i] = 0;
}

void it_sleep_ms(int ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

int64_t it_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void it_setup(void)
{
	/* Orphaned workers of a killed master must come back to us to be
	 * reaped; the container's pid 1 may not reap anything. */
	prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0);
	signal(SIGPIPE, SIG_IGN);
	baseline_fds = count_fds();
}

int it_fd_delta(void)
{
	return count_fds() - baseline_fds;
}

pid_t it_unreaped_child(void)
{
	int st;
	pid_t p = waitpid(-1, &st, WNOHANG);

	if (p < 0)
		return 0; /* ECHILD: nothing left */
	return p > 0 ? p : 1;
}

void it_teardown(void)
{
	int64_t deadline;

	for (int i = 0; i < IT_MAX_TRACKED; i++) {
		if (tracked_pids[i] > 0) {
			fprintf(stderr, "teardown: killing daemon group %d\n",
				(int)tracked_pids[i]);
			killpg(tracked_pids[i], SIGKILL);
			tracked_pids[i] = 0;
		}
	}
	deadline = it_now_ms() + 3000;
	while (it_now_ms() < deadline) {
		int st;
		pid_t p = waitpid(-1, &st, WNOHANG);

		if (p < 0)
			break;
		if (p == 0)
			it_sleep_ms(IT_POLL_MS);
	}
	for (int i = 0; i < IT_MAX_TRACKED; i++) {
		if (tracked_dirs[i][0]) {
			it_rmrf(tracked_dirs[i]);
			tracked_dirs[i][0] = '\0';
		}
	}
}

/* ==== files ============================================================= */

int it_tmpdir(char *buf, size_t n)
{
	static const char tmpl[] = "/tmp/caskd-it-XXXXXX";

	if (n < sizeof(tmpl))
		return -ENAMETOOLONG;
	memcpy(buf, tmpl, sizeof(tmpl));
	if (!mkdtemp(buf))
		return -errno;
	for (int i = 0; i < IT_MAX_TRACKED; i++) {
		if (!tracked_dirs[i][0]) {
			snprintf(tracked_dirs[i], sizeof(tracked_dirs[i]), "%s",
				 buf);
			break;
		}
	}
	return 0;
}

static int rmrf_one(const char *path, const struct stat *st, int flag,
		    struct FTW *ftw)
{
	remove(path);
	return 0;
}

int it_rmrf(const char *dir)
{
	if (!dir || !dir[0] || strcmp(dir, "/") == 0)
		return -EINVAL;
	if (nftw(dir, rmrf_one, 16, FTW_DEPTH | FTW_PHYS) < 0)
		return -errno;
	return 0;
}

int it_read_tail(const char *path, char *buf, size_t n)
{
	struct stat st;
	ssize_t got;
	off_t off;
	int fd, err;

	buf[0] = '\0';
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) < 0) {
		err = -errno;
		close(fd);
		return err;
	}
	off = st.st_size > (off_t)(n - 1) ? st.st_size - (off_t)(n - 1) : 0;
	got = pread(fd, buf, n - 1, off);
	err = got < 0 ? -errno : 0;
	close(fd);
	if (got < 0)
		return err;
	buf[got] = '\0';
	return 0;
}

/* ==== process helpers =================================================== */

/* In a freshly forked child that is about to exec: a clean signal state
 * and no inherited descriptors beyond 0..2. */
static void child_reset(void)
{
	sigset_t none;

	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	signal(SIGPIPE, SIG_DFL);
	close_range(3, ~0U, 0);
}

/* Reaps every process of the group pgid (the master already reaped).
 * Returns the number still alive after IT_STRAGGLER_GRACE_MS; those are
 * SIGKILLed and reaped too. */
static int reap_group(pid_t pgid)
{
	int64_t deadline = it_now_ms() + IT_STRAGGLER_GRACE_MS;
	int st, alive = 0;

	for (;;) {
		pid_t p = waitpid(-pgid, &st, WNOHANG);

		if (p > 0)
			continue;
		if (p < 0 && kill(-pgid, 0) < 0 && errno == ESRCH)
			return alive;
		if (it_now_ms() >= deadline)
			break;
		it_sleep_ms(IT_POLL_MS);
	}
	alive = 1;
	fprintf(stderr, "harness: processes of group %d outlived the master;"
		" killing them\n", (int)pgid);
	killpg(pgid, SIGKILL);
	deadline = it_now_ms() + 3000;
	while (it_now_ms() < deadline) {
		pid_t p = waitpid(-pgid, &st, WNOHANG);

		if (p < 0 && kill(-pgid, 0) < 0 && errno == ESRCH)
			break;
		if (p == 0 || p < 0)
			it_sleep_ms(IT_POLL_MS);
	}
	return alive;
}

static void drain_pipe(int fd, char *buf, size_t n, size_t *used, int *open)
{
	char scratch[4096];
	ssize_t got = read(fd, scratch, sizeof(scratch));

	if (got <= 0) {
		if (got == 0 || (errno != EINTR && errno != EAGAIN))
			*open = 0;
		return;
	}
	for (ssize_t i = 0; i < got && *used + 1 < n; i++)
		buf[(*used)++] = scratch[i];
	buf[*used] = '\0';
}

int it_run_capture(const char *const *argv, int timeout_ms, char *out,
		   size_t outn, char *err, size_t errn, int *wstatus)
{
	int po[2], pe[2], open_o = 1, open_e = 1, rc = 0;
	size_t used_o = 0, used_e = 0;
	int64_t deadline = it_now_ms() + timeout_ms;
	pid_t pid;

	out[0] = err[0] = '\0';
	if (pipe2(po, O_CLOEXEC) < 0)
		return -errno;
	if (pipe2(pe, O_CLOEXEC) < 0) {
		rc = -errno;
		close(po[0]);
		close(po[1]);
		return rc;
	}
	fflush(NULL);
	pid = fork();
	if (pid < 0) {
		rc = -errno;
		close(po[0]); close(po[1]); close(pe[0]); close(pe[1]);
		return rc;
	}
	if (pid == 0) {
		int nul = open("/dev/null", O_RDONLY);

		setpgid(0, 0);
		prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
		dup2(nul, 0);
		dup2(po[1], 1);
		dup2(pe[1], 2);
		child_reset();
		execv(argv[0], (char *const *)argv);
		fprintf(stderr, "execv %s: %s\n", argv[0], strerror(errno));
		_exit(127);
	}
	setpgid(pid, pid);
	close(po[1]);
	close(pe[1]);
	while (open_o || open_e) {
		struct pollfd pf[2] = { { po[0], POLLIN, 0 },
					{ pe[0], POLLIN, 0 } };
		int left = (int)(deadline - it_now_ms());

		if (left <= 0) {
			rc = -ETIMEDOUT;
			break;
		}
		if (!open_o)
			pf[0].fd = -1;
		if (!open_e)
			pf[1].fd = -1;
		if (poll(pf, 2, left) < 0 && errno != EINTR)
			break;
		if (pf[0].revents)
			drain_pipe(po[0], out, outn, &used_o, &open_o);
		if (pf[1].revents)
			drain_pipe(pe[0], err, errn, &used_e, &open_e);
	}
	close(po[0]);
	close(pe[0]);
	while (rc == 0) {
		pid_t p = waitpid(pid, wstatus, WNOHANG);

		if (p == pid)
			break;
		if (it_now_ms() >= deadline)
			rc = -ETIMEDOUT;
		else
			it_sleep_ms(IT_POLL_MS);
	}
	if (rc == -ETIMEDOUT) {
		killpg(pid, SIGKILL);
		waitpid(pid, wstatus, 0);
	}
	reap_group(pid);
	return rc;
}

/* ==== daemon control ===================================================== */

int it_free_port(void)
{
	struct sockaddr_in a = { .sin_family = AF_INET };
	socklen_t alen = sizeof(a);
	int fd, port, err;

	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (bind(fd, (struct sockaddr *)&a, sizeof(a)) < 0 ||
	    getsockname(fd, (struct sockaddr *)&a, &alen) < 0) {
		err = -errno;
		close(fd);
		return err;
	}
	port = ntohs(a.sin_port);
	close(fd);
	return port;
}

void it_daemon_dump_log(const struct it_daemon *d)
{
	char tail[IT_LOG_TAIL_BYTES];

	if (it_read_tail(d->log, tail, sizeof(tail)) < 0) {
		fprintf(stderr, "---- no log at %s\n", d->log);
		return;
	}
	fprintf(stderr, "---- tail of %s ----\n%s%s---- end of log ----\n",
		d->log, tail,
		tail[0] && tail[strlen(tail) - 1] != '\n' ? "\n" : "");
}

static void log_path_for(struct it_daemon *d, const char *dir)
{
	char parent[256];
	char *slash;

	snprintf(parent, sizeof(parent), "%s", dir);
	slash = strrchr(parent, '/');
	if (slash && slash != parent)
		*slash = '\0';
	else
		snprintf(parent, sizeof(parent), "%s", slash ? "/" : ".");
	snprintf(d->log, sizeof(d->log), "%s/caskd-%d.log", parent, d->port);
}

static void exec_daemon(const struct it_daemon *d, const char *bin,
			int workers, const char *const *extra, pid_t parent)
{
	const char *argv[IT_MAX_ARGS];
	char listen[64], nworkers[16];
	int n = 0;

	it_child_detach(parent, SIGTERM, d->log);
	child_reset();
	snprintf(listen, sizeof(listen), "127.0.0.1:%d", d->port);
	snprintf(nworkers, sizeof(nworkers), "%d", workers);
	argv[n++] = bin;
	argv[n++] = "--listen";
	argv[n++] = listen;
	if (workers > 0) {
		argv[n++] = "--workers";
		argv[n++] = nworkers;
	}
	argv[n++] = "--data-dir";
	argv[n++] = d->dir;
	for (int i = 0; extra && extra[i] && n < IT_MAX_ARGS - 1; i++)
		argv[n++] = extra[i];
	argv[n] = NULL;
	execv(bin, (char *const *)argv);
	fprintf(stderr, "harness: execv %s: %s\n", bin, strerror(errno));
	_exit(127);
}

int it_daemon_spawn(struct it_daemon *d, const char *dir, int workers,
		    const char *const *extra_args)
{
	return it_daemon_spawn_at(d, 0, dir, workers, extra_args);
}

int it_daemon_spawn_at(struct it_daemon *d, int port, const char *dir,
		       int workers, const char *const *extra_args)
{
	const char *bin = getenv("CASKD_BIN");
	pid_t parent = getpid(), pid;

	memset(d, 0, sizeof(*d));
	d->pid = -1;
	if (!bin || !bin[0]) {
		fprintf(stderr, "harness: CASKD_BIN is not set; run as "
			"CASKD_BIN=/path/to/build/caskd %s\n",
			program_invocation_name);
		return -ENOENT;
	}
	if (access(bin, X_OK) < 0) {
		int err = -errno;

		fprintf(stderr, "harness: CASKD_BIN=%s: %s\n", bin,
			strerror(-err));
		return err;
	}
	if (port <= 0)
		port = it_free_port();
	if (port < 0)
		return port;
	d->port = port;
	snprintf(d->dir, sizeof(d->dir), "%s", dir);
	log_path_for(d, dir);
	if (mkdir(dir, 0755) < 0 && errno != EEXIST)
		return -errno;
	fflush(NULL);
	pid = fork();
	if (pid < 0)
		return -errno;
	if (pid == 0)
		exec_daemon(d, bin, workers, extra_args, parent);
	setpgid(pid, pid);
	d->pid = pid;
	track_pid(pid);
	return 0;
}

int it_daemon_wait_exit(struct it_daemon *d, int timeout_ms)
{
	int64_t deadline = it_now_ms() + timeout_ms;

	if (d->exited)
		return 0;
	for (;;) {
		pid_t p = waitpid(d->pid, &d->status, WNOHANG);

		if (p == d->pid) {
			d->exited = 1;
			untrack_pid(d->pid);
			d->stragglers = reap_group(d->pid);
			return 0;
		}
		if (p < 0)
			return -errno;
		if (it_now_ms() >= deadline)
			return -ETIMEDOUT;
		it_sleep_ms(IT_POLL_MS);
	}
}

static int conn_open_timeout(struct it_conn *c, int port, int timeout_ms);

int it_daemon_wait_ready(struct it_daemon *d, int timeout_ms)
{
	int64_t deadline = it_now_ms() + timeout_ms;
	int last_status = 0, last_rc = 0;

	while (it_now_ms() < deadline) {
		struct it_conn c;
		struct it_resp r;

		if (it_daemon_wait_exit(d, 0) == 0) {
			fprintf(stderr, "harness: caskd (pid %d) exited during"
				" startup, wait status 0x%x (exit %d, signal "
				"%d)\n", (int)d->pid, d->status,
				WIFEXITED(d->status) ? WEXITSTATUS(d->status)
						     : -1,
				WIFSIGNALED(d->status) ? WTERMSIG(d->status)
						       : 0);
			it_daemon_dump_log(d);
			return -ECHILD;
		}
		last_rc = conn_open_timeout(&c, d->port, 1000);
		if (last_rc == 0) {
			last_rc = it_conn_request(&c, "GET", "/healthz",
						  "Connection: close\r\n",
						  NULL, 0, &r);
			it_conn_close(&c);
			if (last_rc == 0) {
				last_status = r.status;
				it_resp_free(&r);
				if (last_status == 200)
					return 0;
			}
		}
		it_sleep_ms(IT_POLL_MS * 2);
	}
	fprintf(stderr, "harness: caskd on port %d not ready after %d ms "
		"(last /healthz: status %d, error %s)\n", d->port, timeout_ms,
		last_status, last_rc ? strerror(-last_rc) : "none");
	it_daemon_dump_log(d);
	return -ETIMEDOUT;
}

int it_daemon_start(struct it_daemon *d, const char *dir, int workers,
		    const char *const *extra_args)
{
	int rc = it_daemon_spawn(d, dir, workers, extra_args);

	if (rc < 0)
		return rc;
	rc = it_daemon_wait_ready(d, IT_START_TIMEOUT_MS);
	if (rc < 0 && !d->exited)
		it_daemon_kill9_all(d);
	return rc;
}

int it_daemon_stop(struct it_daemon *d)
{
	int rc;

	if (d->pid <= 0)
		return -ESRCH;
	if (d->exited)
		return d->status;
	if (kill(d->pid, SIGTERM) < 0)
		return -errno;
	rc = it_daemon_wait_exit(d, IT_STOP_TIMEOUT_MS);
	if (rc == -ETIMEDOUT) {
		fprintf(stderr, "harness: caskd (pid %d) still running %d ms "
			"after SIGTERM; SIGKILLing its group\n", (int)d->pid,
			IT_STOP_TIMEOUT_MS);
		it_daemon_dump_log(d);
		killpg(d->pid, SIGKILL);
		rc = it_daemon_wait_exit(d, IT_STOP_TIMEOUT_MS);
	}
	if (rc < 0)
		return rc;
	if (d->stragglers)
		it_daemon_dump_log(d);
	return d->status;
}

int it_daemon_kill9_all(struct it_daemon *d)
{
	if (d->pid <= 0)
		return -ESRCH;
	if (d->exited)
		return 0;
	if (killpg(d->pid, SIGKILL) < 0)
		return -errno;
	if (waitpid(d->pid, &d->status, 0) < 0)
		return -errno;
	d->exited = 1;
	untrack_pid(d->pid);
	/* Workers got the same SIGKILL: anything left is reaped here. */
	reap_group(d->pid);
	d->stragglers = 0;
	return 0;
}

/* ==== HTTP client ======================================================== */

static void set_timeouts(int fd, int timeout_ms)
{
	struct timeval tv = { timeout_ms / 1000, (timeout_ms % 1000) * 1000 };
	int one = 1;

	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

static int conn_open_timeout(struct it_conn *c, int port, int timeout_ms)
{
	struct sockaddr_in a = { .sin_family = AF_INET };
	int err;

	memset(c, 0, sizeof(*c));
	c->port = port;
	a.sin_port = htons((uint16_t)port);
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	c->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (c->fd < 0)
		return -errno;
	set_timeouts(c->fd, timeout_ms);
	if (connect(c->fd, (struct sockaddr *)&a, sizeof(a)) < 0) {
		err = errno == EINPROGRESS ? -ETIMEDOUT : -errno;
		close(c->fd);
		c->fd = -1;
		return err;
	}
	return 0;
}

int it_conn_open(struct it_conn *c, int port)
{
	return conn_open_timeout(c, port, IT_IO_TIMEOUT_MS);
}

void it_conn_close(struct it_conn *c)
{
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
	free(c->buf);
	c->buf = NULL;
	c->len = c->cap = 0;
}

int it_conn_send_raw(struct it_conn *c, const void *data, size_t len)
{
	const char *p = data;

	while (len > 0) {
		ssize_t n = send(c->fd, p, len, MSG_NOSIGNAL);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return errno == EAGAIN ? -ETIMEDOUT : -errno;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/* Reads more bytes into c->buf: >0 bytes added, 0 at EOF, or -errno. */
static ssize_t conn_fill(struct it_conn *c)
{
	ssize_t n;

	if (c->cap - c->len < 65536) {
		size_t cap = c->cap ? c->cap * 2 : 131072;
		char *nb = realloc(c->buf, cap + 1);

		if (!nb)
			return -ENOMEM;
		c->buf = nb;
		c->cap = cap;
	}
	do {
		n = recv(c->fd, c->buf + c->len, c->cap - c->len, 0);
	} while (n < 0 && errno == EINTR);
	if (n < 0)
		return errno == EAGAIN ? -ETIMEDOUT : -errno;
	c->len += (size_t)n;
	c->buf[c->len] = '\0';
	return n;
}

static int conn_ensure(struct it_conn *c, size_t n)
{
	while (c->len < n) {
		ssize_t got = conn_fill(c);

		if (got == 0)
			return -ECONNRESET; /* EOF before the bytes we need */
		if (got < 0)
			return (int)got;
	}
	return 0;
}

static void conn_consume(struct it_conn *c, size_t n)
{
	memmove(c->buf, c->buf + n, c->len - n);
	c->len -= n;
	if (c->buf)
		c->buf[c->len] = '\0';
}

/* Finds header `name` in the raw block [h, h+hlen) of "Name: v\r\n" lines
 * and copies its trimmed value into val. 0 or -ENOENT. */
static int find_header(const char *h, size_t hlen, const char *name,
		       char *val, size_t valn)
{
	size_t nlen = strlen(name);
	const char *end = h + hlen;

	while (h < end) {
		const char *eol = memchr(h, '\n', (size_t)(end - h));
		const char *line_end = eol ? eol : end;
		const char *colon = memchr(h, ':', (size_t)(line_end - h));

		if (colon && (size_t)(colon - h) == nlen &&
		    strncasecmp(h, name, nlen) == 0) {
			const char *v = colon + 1;
			const char *ve = line_end;
			size_t n;

			while (v < ve && (*v == ' ' || *v == '\t'))
				v++;
			while (ve > v && isspace((unsigned char)ve[-1]))
				ve--;
			n = (size_t)(ve - v);
			if (n >= valn)
				n = valn - 1;
			memcpy(val, v, n);
			val[n] = '\0';
			return 0;
		}
		h = line_end + 1;
	}
	return -ENOENT;
}

static int body_append(struct it_resp *r, const char *p, size_t n)
{
	char *nb = realloc(r->body, r->body_len + n + 1);

	if (!nb)
		return -ENOMEM;
	r->body = nb;
	memcpy(r->body + r->body_len, p, n);
	r->body_len += n;
	r->body[r->body_len] = '\0';
	return 0;
}

static int read_chunked(struct it_conn *c, struct it_resp *r)
{
	for (;;) {
		char *eol;
		unsigned long long size;
		int rc;

		while (!(eol = memmem(c->buf, c->len, "\r\n", 2)))
			if ((rc = conn_ensure(c, c->len + 1)) < 0)
				return rc;
		errno = 0;
		size = strtoull(c->buf, NULL, 16);
		if (errno || size > (1ULL << 32))
			return -EPROTO;
		conn_consume(c, (size_t)(eol + 2 - c->buf));
		if (size == 0)
			break;
		if ((rc = conn_ensure(c, (size_t)size + 2)) < 0)
			return rc;
		if ((rc = body_append(r, c->buf, (size_t)size)) < 0)
			return rc;
		conn_consume(c, (size_t)size + 2);
	}
	for (;;) { /* trailer lines, up to the empty one */
		char *eol;
		int rc;

		while (!(eol = memmem(c->buf, c->len, "\r\n", 2)))
			if ((rc = conn_ensure(c, c->len + 1)) < 0)
				return rc;
		conn_consume(c, (size_t)(eol + 2 - c->buf));
		if (eol == c->buf)
			return 0;
	}
}

static int read_until_eof(struct it_conn *c, struct it_resp *r)
{
	for (;;) {
		ssize_t got = conn_fill(c);

		if (got < 0)
			return (int)got;
		if (got == 0)
			break;
	}
	if (body_append(r, c->buf, c->len) < 0)
		return -ENOMEM;
	conn_consume(c, c->len);
	return 0;
}

static int read_body(struct it_conn *c, struct it_resp *r, const char *head,
		     size_t head_len)
{
	char val[128];
	int rc;

	if (find_header(head, head_len, "Transfer-Encoding", val,
			sizeof(val)) == 0 && strcasestr(val, "chunked"))
		return read_chunked(c, r);
	if (find_header(head, head_len, "Content-Length", val,
			sizeof(val)) == 0) {
		char *end;
		unsigned long long n;

		errno = 0;
		n = strtoull(val, &end, 10);
		if (errno || end == val || *end || n > (1ULL << 34))
			return -EPROTO;
		if ((rc = conn_ensure(c, (size_t)n)) < 0)
			return rc;
		if ((rc = body_append(r, c->buf, (size_t)n)) < 0)
			return rc;
		conn_consume(c, (size_t)n);
		return 0;
	}
	return read_until_eof(c, r);
}

int it_conn_read_response(struct it_conn *c, int head_request,
			  struct it_resp *out)
{
	memset(out, 0, sizeof(*out));
	for (;;) {
		char *hend, *line_end;
		size_t head_len;
		int rc, status;

		while (!(hend = memmem(c->buf ? c->buf : "", c->len,
				       "\r\n\r\n", 4))) {
			if (c->len > IT_MAX_HEAD_BYTES)
				return -EPROTO;
			if ((rc = conn_ensure(c, c->len + 1)) < 0)
				return rc;
		}
		if (c->len < 12 || strncmp(c->buf, "HTTP/1.", 7) != 0 ||
		    sscanf(c->buf + 8, " %3d", &status) != 1)
			return -EPROTO;
		line_end = memmem(c->buf, (size_t)(hend - c->buf) + 2, "\r\n",
				  2);
		head_len = (size_t)(hend + 2 - (line_end + 2));
		out->status = status;
		snprintf(out->headers, sizeof(out->headers), "%.*s",
			 (int)head_len, line_end + 2);
		if (status >= 100 && status < 200) { /* interim: skip it */
			conn_consume(c, (size_t)(hend + 4 - c->buf));
			continue;
		}
		{
			/* The head is consumed before the body is read, so keep a
			 * copy of it for the header lookups read_body does. */
			char *head = strndup(line_end + 2, head_len);

			if (!head)
				return -ENOMEM;
			conn_consume(c, (size_t)(hend + 4 - c->buf));
			if (head_request || status == 204 || status == 304)
				rc = 0;
			else
				rc = read_body(c, out, head, head_len);
			free(head);
		}
		if (rc == 0 && !out->body)
			rc = body_append(out, "", 0);
		if (rc < 0)
			it_resp_free(out);
		return rc;
	}
}

static int send_request(struct it_conn *c, const char *method,
			const char *path, const char *extra, int close_conn,
			const void *body, size_t len)
{
	size_t cap = strlen(method) + strlen(path) +
		     (extra ? strlen(extra) : 0) + 256;
	char *head = malloc(cap);
	int n, rc;
	int with_len = body != NULL || strcmp(method, "PUT") == 0 ||
		       strcmp(method, "POST") == 0;

	if (!head)
		return -ENOMEM;
	n = snprintf(head, cap, "%s %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n%s",
		     method, path, c->port,
		     close_conn ? "Connection: close\r\n" : "");
	if (with_len)
		n += snprintf(head + n, cap - (size_t)n,
			      "Content-Length: %zu\r\n", body ? len : 0);
	n += snprintf(head + n, cap - (size_t)n, "%s\r\n", extra ? extra : "");
	rc = it_conn_send_raw(c, head, (size_t)n);
	free(head);
	if (rc == 0 && body && len)
		rc = it_conn_send_raw(c, body, len);
	return rc;
}

static int conn_request(struct it_conn *c, const char *method,
			const char *path, const char *extra, int close_conn,
			const void *body, size_t len, struct it_resp *out)
{
	int send_rc = send_request(c, method, path, extra, close_conn, body,
				   len);
	int rc;

	/* A server may answer (e.g. 413) and close before the whole body
	 * was sent: the answer still counts if it can be read. */
	if (send_rc < 0 && send_rc != -EPIPE && send_rc != -ECONNRESET)
		return send_rc;
	rc = it_conn_read_response(c, strcmp(method, "HEAD") == 0, out);
	if (rc < 0 && send_rc < 0)
		return send_rc;
	return rc;
}

int it_conn_request(struct it_conn *c, const char *method, const char *path,
		    const char *extra_headers, const void *body, size_t len,
		    struct it_resp *out)
{
	return conn_request(c, method, path, extra_headers, 0, body, len,
			    out);
}

int it_request(int port, const char *method, const char *path,
	       const char *extra_headers, const void *body, size_t len,
	       struct it_resp *out)
{
	struct it_conn c;
	int rc;

	memset(out, 0, sizeof(*out));
	rc = it_conn_open(&c, port);
	if (rc < 0)
		return rc;
	rc = conn_request(&c, method, path, extra_headers, 1, body, len, out);
	it_conn_close(&c);
	return rc;
}

int it_conn_peer_closed(struct it_conn *c, int timeout_ms)
{
	struct pollfd pf = { c->fd, POLLIN, 0 };
	char b;
	ssize_t n;
	int rc;

	if (c->len)
		return -EPROTO;
	do {
		rc = poll(&pf, 1, timeout_ms);
	} while (rc < 0 && errno == EINTR);
	if (rc < 0)
		return -errno;
	if (rc == 0)
		return 0;
	n = recv(c->fd, &b, 1, MSG_DONTWAIT);
	if (n == 0 || (n < 0 && errno == ECONNRESET))
		return 1;
	return n < 0 ? -errno : -EPROTO;
}

void it_resp_free(struct it_resp *r)
{
	free(r->body);
	r->body = NULL;
	r->body_len = 0;
}

const char *it_resp_header(const struct it_resp *r, const char *name)
{
	static char vals[8][4096];
	static int next;
	char *v = vals[next];

	if (find_header(r->headers, strlen(r->headers), name, v,
			sizeof(vals[0])) < 0)
		return NULL;
	next = (next + 1) % 8;
	return v;
}

const char *it_resp_brief(const struct it_resp *r)
{
	static char bufs[4][4096];
	static int next;
	char *b = bufs[next];
	size_t n = 0, cap = sizeof(bufs[0]) - 8;

	next = (next + 1) % 4;
	n += (size_t)snprintf(b, cap, "[HTTP %d | ", r->status);
	for (const char *h = r->headers; *h && n < cap / 2; h++) {
		if (*h == '\r')
			continue;
		if (*h == '\n') {
			n += (size_t)snprintf(b + n, cap - n, " | ");
			continue;
		}
		b[n++] = *h;
	}
	n += (size_t)snprintf(b + n, cap - n, "body(%zu): \"", r->body_len);
	for (size_t i = 0; i < r->body_len && n + 8 < cap; i++) {
		unsigned char ch = (unsigned char)r->body[i];

		if (i == 300) {
			n += (size_t)snprintf(b + n, cap - n, "...");
			break;
		}
		if (ch >= 0x20 && ch < 0x7f && ch != '\\')
			b[n++] = (char)ch;
		else
			n += (size_t)snprintf(b + n, cap - n, "\\x%02x", ch);
	}
	snprintf(b + n, cap - n, "\"]");
	return b;
}

/* ==== parsing helpers ===================================================== */

static int parse_u64(const char *s, size_t n, uint64_t *out)
{
	uint64_t v = 0;

	if (n == 0 || n > 20)
		return -EINVAL;
	for (size_t i = 0; i < n; i++) {
		unsigned d;

		if (s[i] < '0' || s[i] > '9')
			return -EINVAL;
		d = (unsigned)(s[i] - '0');
		if (v > (UINT64_MAX - d) / 10)
			return -ERANGE;
		v = v * 10 + d;
	}
	*out = v;
	return 0;
}

int it_parse_etag(const char *etag, uint64_t *out)
{
	size_t n;

	if (!etag)
		return -ENOENT;
	n = strlen(etag);
	if (n < 3 || etag[0] != '"' || etag[n - 1] != '"')
		return -EPROTO;
	return parse_u64(etag + 1, n - 2, out) < 0 ? -EPROTO : 0;
}

int it_resp_version(const struct it_resp *r, uint64_t *out)
{
	return it_parse_etag(it_resp_header(r, "ETag"), out);
}

int it_body_int64(const struct it_resp *r, int64_t *out)
{
	const char *s = r->body;
	size_t n = r->body_len;
	int neg = 0;
	uint64_t mag;

	if (!s || n == 0)
		return -EPROTO;
	if (s[0] == '-') {
		neg = 1;
		s++;
		n--;
	}
	if (n == 0 || (s[0] == '0' && (n > 1 || neg)))
		return -EPROTO; /* not canonical: "", "-", "007", "-0" */
	if (parse_u64(s, n, &mag) < 0)
		return -EPROTO;
	if (neg) {
		if (mag > (uint64_t)INT64_MAX + 1)
			return -ERANGE;
		*out = mag == (uint64_t)INT64_MAX + 1 ? INT64_MIN
						      : -(int64_t)mag;
	} else {
		if (mag > (uint64_t)INT64_MAX)
			return -ERANGE;
		*out = (int64_t)mag;
	}
	return 0;
}

int it_is_json_error(const struct it_resp *r, const char *code)
{
	const char *ct = it_resp_header(r, "Content-Type");
	size_t n = r->body_len;
	char want[96];

	if (!ct || strncasecmp(ct, "application/json", 16) != 0 ||
	    (ct[16] && ct[16] != ';' && ct[16] != ' '))
		return 0;
	if (!r->body || n < 2 || memchr(r->body, '\0', n))
		return 0;
	while (n > 0 && isspace((unsigned char)r->body[n - 1]))
		n--; /* trailing whitespace is still valid JSON */
	if (r->body[0] != '{' || r->body[n - 1] != '}')
		return 0;
	if (!strstr(r->body, "\"error\":\"") ||
	    !strstr(r->body, "\"message\":\""))
		return 0;
	if (code) {
		snprintf(want, sizeof(want), "\"error\":\"%s\"", code);
		if (!strstr(r->body, want))
			return 0;
	}
	return 1;
}

int it_metric_value(const char *text, const char *name, int sum,
		    double *out)
{
	size_t nlen = strlen(name);
	int found = 0;
	double total = 0;

	for (const char *l = text; l && *l;) {
		const char *eol = strchr(l, '\n');
		const char *v = NULL;

		if (strncmp(l, name, nlen) == 0 &&
		    (l[nlen] == ' ' || l[nlen] == '{')) {
			v = l + nlen;
			if (*v == '{') {
				const char *close = strchr(v, '}');

				v = close && (!eol || close < eol) ? close + 1
								   : NULL;
			}
		}
		if (v) {
			char *end;
			double x = strtod(v, &end);

			if (end != v) {
				total += x;
				found = 1;
				if (!sum)
					break;
			}
		}
		l = eol ? eol + 1 : NULL;
	}
	if (!found)
		return -ENOENT;
	*out = total;
	return 0;
}

/* ==== client processes ==================================================== */

void it_child_fail(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "client %d: ", (int)getpid());
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	fflush(stderr);
	_exit(1);
}

int it_fork_clients(int n, void (*fn)(int idx, void *arg), void *arg)
{
	pid_t pids[256];
	int failures = 0;

	if (n > (int)(sizeof(pids) / sizeof(pids[0])))
		return -EINVAL;
	fflush(NULL);
	for (int i = 0; i < n; i++) {
		pids[i] = fork();
		if (pids[i] < 0) {
			int err = -errno;

			for (int j = 0; j < i; j++) {
				kill(pids[j], SIGKILL);
				waitpid(pids[j], NULL, 0);
			}
			return err;
		}
		if (pids[i] == 0) {
			prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
			fn(i, arg);
			fflush(NULL);
			_exit(0);
		}
	}
	for (int i = 0; i < n; i++) {
		int st;

		if (waitpid(pids[i], &st, 0) < 0) {
			failures++;
			continue;
		}
		if (WIFEXITED(st) && WEXITSTATUS(st) == 0)
			continue;
		failures++;
		if (WIFSIGNALED(st))
			fprintf(stderr, "client %d (idx %d) killed by signal "
				"%d\n", (int)pids[i], i, WTERMSIG(st));
		else
			fprintf(stderr, "client %d (idx %d) exited %d\n",
				(int)pids[i], i, WEXITSTATUS(st));
	}
	return failures;
}

void *it_shared_alloc(size_t n)
{
	void *p = mmap(NULL, n, PROT_READ | PROT_WRITE,
		       MAP_SHARED | MAP_ANONYMOUS, -1, 0);

	return p == MAP_FAILED ? NULL : p;
}

void it_shared_free(void *p, size_t n)
{
	if (p)
		munmap(p, n);
}

int it_on_path(const char *tool)
{
	const char *path = getenv("PATH");
	char buf[512], *dirs, *save = NULL, *d;
	int found = 0;

	dirs = strdup(path ? path : "/usr/sbin:/usr/bin:/sbin:/bin");
	for (d = strtok_r(dirs, ":", &save); d && !found; d = strtok_r(NULL, ":", &save)) {
		snprintf(buf, sizeof(buf), "%s/%s", d, tool);
		found = access(buf, X_OK) == 0;
	}
	free(dirs);
	return found;
}

void it_round_value(char *buf, size_t len, int i, int r)
{
	int n = snprintf(buf, len + 1, "key %d round %d:", i, r);

	memset(buf + n, 'a' + (i + r) % 26, len - (size_t)n);
	buf[len] = '\0';
}

void it_child_detach(pid_t parent, int deathsig, const char *log)
{
	int fd, nul;

	setpgid(0, 0);
	prctl(PR_SET_PDEATHSIG, deathsig, 0, 0, 0);
	if (getppid() != parent)
		_exit(126);
	fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0644);
	nul = open("/dev/null", O_RDONLY);
	if (fd < 0 || nul < 0)
		_exit(126);
	dup2(nul, 0);
	dup2(fd, 1);
	dup2(fd, 2);
}
