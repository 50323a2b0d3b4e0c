/* tests/integration/harness.h — support library for the integration suites.
 *
 * Owns: starting and stopping the real daemon (CASKD_BIN) on a free port in
 * a temp dir, a small blocking HTTP/1.1 client over plain POSIX sockets
 * (fresh connection or keep-alive), and forking client processes that talk
 * to the daemon at the same time.
 *
 * Nothing here uses Criterion, so it is safe in forked client children; the
 * Criterion assertion wrappers live in it_assert.h.
 *
 * Process model: each daemon runs in its own process group (pgid == pid of
 * the master), so it_daemon_kill9_all() can kill master and workers at once.
 * The test process makes itself a child subreaper, so workers orphaned by a
 * dead master are reparented to it and reaped here, not left as zombies.
 * A daemon whose test process dies (e.g. a Criterion timeout) gets SIGTERM
 * through PR_SET_PDEATHSIG; forked clients get SIGKILL.
 *
 * Every function returns 0 (or a count) on success and -errno on failure.
 * Every socket has 10 s send/receive timeouts, so a hung daemon fails a test
 * instead of hanging it.
 */
#ifndef CASKD_TESTS_INTEGRATION_HARNESS_H
#define CASKD_TESTS_INTEGRATION_HARNESS_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* How long a socket operation may block before the request fails. */
#define IT_IO_TIMEOUT_MS 10000
/* How long a daemon may take to answer GET /healthz with 200 after exec. */
#define IT_START_TIMEOUT_MS 10000
/* How long a daemon may take to exit after SIGTERM before SIGKILL. */
#define IT_STOP_TIMEOUT_MS 10000

/* ---- test process bookkeeping ---------------------------------------- */

/* Call from a Criterion .init: records the fd count, becomes subreaper. */
void it_setup(void);
/* Call from a Criterion .fini: SIGKILLs daemons still running, reaps every
 * child, removes every it_tmpdir(). Safe after a failed assertion. */
void it_teardown(void);
/* Number of fds open now minus the count it_setup() saw (0 = no leak). */
int it_fd_delta(void);
/* 0 if this process has no unreaped child left, else the pid of one. */
pid_t it_unreaped_child(void);

/* ---- files --------------------------------------------------------- */

/* mkdtemp("/tmp/caskd-it-XXXXXX") into buf; removed by it_teardown(). */
int it_tmpdir(char *buf, size_t n);
/* rm -rf dir. */
int it_rmrf(const char *dir);
/* Reads up to n-1 bytes of the file's tail into buf (NUL-terminated). */
int it_read_tail(const char *path, char *buf, size_t n);

/* ---- daemon --------------------------------------------------------- */

/* A port that was free a moment ago on 127.0.0.1. */
int it_free_port(void);

struct it_daemon {
	pid_t pid;        /* master; also the process group id */
	int port;
	char dir[256];    /* --data-dir */
	char log[300];    /* stdout+stderr of the daemon, appended */
	int status;       /* wait status once reaped */
	int exited;       /* 1 once the master was reaped */
	int stragglers;   /* processes left in the group after the master exited */
};

/* Spawns `$CASKD_BIN --listen 127.0.0.1:PORT --workers N --data-dir DIR
 * [extra...]` (dir is created if missing; the log goes to
 * DIR/../caskd-PORT.log) and waits until GET /healthz answers 200.
 * workers <= 0 leaves --workers out. On failure prints the log tail. */
int it_daemon_start(struct it_daemon *d, const char *dir, int workers,
		    const char *const *extra_args);
/* Spawns the same command line but does not wait for readiness. */
int it_daemon_spawn(struct it_daemon *d, const char *dir, int workers,
		    const char *const *extra_args);
/* The same on a port chosen by the caller (one the command line must
 * name before the daemon runs, e.g. in --advertise); port <= 0 picks one
 * as it_daemon_spawn() does. */
int it_daemon_spawn_at(struct it_daemon *d, int port, const char *dir,
		       int workers, const char *const *extra_args);
/* Polls GET /healthz until 200; -ECHILD if the master exited first. */
int it_daemon_wait_ready(struct it_daemon *d, int timeout_ms);
/* Waits up to timeout_ms for the master to exit (no signal sent);
 * -ETIMEDOUT if it is still running. Fills d->status. */
int it_daemon_wait_exit(struct it_daemon *d, int timeout_ms);
/* SIGTERM, wait up to IT_STOP_TIMEOUT_MS (then SIGKILL the group), reap
 * the whole group. Returns the master's wait status (>= 0) or -errno. */
int it_daemon_stop(struct it_daemon *d);
/* SIGKILL to the whole process group, then reap everything. */
int it_daemon_kill9_all(struct it_daemon *d);
/* Prints the last lines of the daemon's log to stderr. */
void it_daemon_dump_log(const struct it_daemon *d);

/* Runs argv (argv[0] is a path) with stdin /dev/null, captures stdout and
 * stderr separately (NUL-terminated, truncated to fit); SIGKILLs it after
 * timeout_ms and returns -ETIMEDOUT. *wstatus gets the wait status. */
int it_run_capture(const char *const *argv, int timeout_ms, char *out,
		   size_t outn, char *err, size_t errn, int *wstatus);

/* ---- HTTP client ----------------------------------------------------- */

struct it_resp {
	int status;
	char headers[8192]; /* header lines after the status line, raw */
	char *body;         /* malloc'd, NUL-terminated (not counted) */
	size_t body_len;
};

void it_resp_free(struct it_resp *r);
/* The trimmed value of the first header `name` (case-insensitive), or
 * NULL. Points into one of a few rotating static buffers: copy it if more
 * than 8 lookups must stay valid at once. */
const char *it_resp_header(const struct it_resp *r, const char *name);
/* A printable one-line summary of the response for assertion messages:
 * status, headers, body escaped and cut. Rotating static buffers. */
const char *it_resp_brief(const struct it_resp *r);

/* One request on a fresh connection (with Connection: close). extra
 * headers are "Name: v\r\n..." or NULL. A Content-Length header is sent
 * when body is non-NULL or the method is PUT or POST. */
int it_request(int port, const char *method, const char *path,
	       const char *extra_headers, const void *body, size_t len,
	       struct it_resp *out);

struct it_conn {
	int fd;
	int port;
	char *buf;   /* bytes received but not yet consumed */
	size_t len;
	size_t cap;
};

int it_conn_open(struct it_conn *c, int port);
/* One request on a keep-alive connection. */
int it_conn_request(struct it_conn *c, const char *method, const char *path,
		    const char *extra_headers, const void *body, size_t len,
		    struct it_resp *out);
/* Sends raw bytes as they are. */
int it_conn_send_raw(struct it_conn *c, const void *data, size_t len);
/* Reads one response; head_request says there is no body to read. */
int it_conn_read_response(struct it_conn *c, int head_request,
			  struct it_resp *out);
/* 1 if the peer closed the connection (reads EOF) within timeout_ms with
 * nothing else sent, 0 if still open, -errno on error or unexpected data. */
int it_conn_peer_closed(struct it_conn *c, int timeout_ms);
void it_conn_close(struct it_conn *c);

/* ---- parsing helpers --------------------------------------------------- */

/* Parses an ETag value of the form "<u64>" (with the quotes). */
int it_parse_etag(const char *etag, uint64_t *out);
/* The version in the response's ETag header, or -EPROTO. */
int it_resp_version(const struct it_resp *r, uint64_t *out);
/* Parses the whole body as a canonical signed decimal int64. */
int it_body_int64(const struct it_resp *r, int64_t *out);
/* 1 if the body looks like {"error":"<code>","message":"..."} with
 * Content-Type application/json, and (if code != NULL) the code matches. */
int it_is_json_error(const struct it_resp *r, const char *code);
/* Finds the first sample line "name value" or "name{...} value" summed
 * over all label sets when sum != 0. -ENOENT if no such line. */
int it_metric_value(const char *text, const char *name, int sum,
		    double *out);

/* ---- client processes ---------------------------------------------------- */

/* Forks n children; child idx runs fn(idx, arg) then _exit(0). A child
 * reports failure with it_child_fail() (or any non-zero exit / signal).
 * Waits for all; returns how many failed (or -errno if fork failed). */
int it_fork_clients(int n, void (*fn)(int idx, void *arg), void *arg);
/* In a client child: prints "client <pid>: <message>" and _exit(1). */
void it_child_fail(const char *fmt, ...)
	__attribute__((format(printf, 1, 2), noreturn));
/* MAP_SHARED|MAP_ANONYMOUS zeroed memory that children write into. */
void *it_shared_alloc(size_t n);
void it_shared_free(void *p, size_t n);

/* Returns a time in milliseconds from CLOCK_MONOTONIC. */
int64_t it_now_ms(void);
/* Sleeps ms milliseconds (through EINTR). */
void it_sleep_ms(int ms);

/* 1 if an executable named tool is in a directory of $PATH. */
int it_on_path(const char *tool);

/* In a forked child, before exec: its own process group, deathsig when
 * the test (parent) dies, stdin from /dev/null, stdout and stderr
 * appended to log; _exit(126) if any of it fails. */
void it_child_detach(pid_t parent, int deathsig, const char *log);

/* The value of key i after write round r, as the compaction suites
 * write and check it: recognisable, len bytes and a NUL (buf holds len
 * + 1). */
void it_round_value(char *buf, size_t len, int i, int r);

#endif
