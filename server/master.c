/* server/master.c — the master process: supervisor only, never serves.
 *
 * Owns: recovery at start (through the engine), the shared regions, the
 * listening sockets (bound once, or taken from systemd, and shared by
 * every worker, so no connection is refused while workers come and go),
 * forking and respawning workers, reload, shutdown, and talking to
 * systemd.
 *
 * Descriptors 3.. are the listening sockets' whenever sockets are handed
 * over: by systemd (LISTEN_FDS) or by this master to its own next image
 * across a re-exec (CASKD_LISTEN_FDS). They are taken before any other
 * file is opened, and a re-exec puts them back there, without
 * close-on-exec, so the next image serves the same sockets.
 *
 * Signals only set flags (nginx's way); the loop sleeps in sigsuspend()
 * with every handled signal blocked outside it, and a 100 ms interval
 * timer (SIGALRM) drives respawn backoff, heartbeats, reload steps and the
 * watchdog.
 *   TERM/INT  graceful stop within --shutdown-timeout, exit 0
 *   QUIT      immediate stop
 *   HUP       re-read the config, replace workers one at a time; a
 *             replaced worker drains for --shutdown-timeout at most (it
 *             closes what is left itself; SIGKILL a little later if not)
 *   CHLD      reap; respawn at once, with backoff if it keeps dying
 *   USR1      (from a worker or a writer) a job is wanted: a compaction
 *             asked for, or a table rebuild
 *   USR2      (from a worker) the index cannot be trusted: restart all
 *             workers through recovery, by re-executing the master (a
 *             failed fdatasync does the same); connections queue on the
 *             kept sockets meanwhile
 *
 * Jobs (compaction, table rebuilds) run in a process of their own that
 * the master forks, one at a time (engine/job.h); the master records
 * them, reaps them, and undoes or finishes what one that died left.
 */
#include "server/master.h"

#include "server/clock.h"
#include "server/cluster.h"
#include "server/cluster_state.h"

#include "engine/durable.h"
#include "engine/errors.h"
#include "engine/job.h"
#include "engine/store.h"
#include "engine/failpoint.h"
#include "engine/io.h"
#include "server/config.h"
#include "server/log.h"
#include "server/metrics.h"
#include "server/notify.h"
#include "server/supervise.h"
#include "server/token.h"
#include "server/worker.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <netdb.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define TICK_MS 100
#define EXIT_USAGE 2            /* a bad option or config (main.c) */
#define LISTEN_BACKLOG 4096     /* the kernel caps it at somaxconn */
#define FAST_DEATH_MS 1000      /* dying sooner than this counts as a crash loop */
#define BACKOFF_FIRST_MS 100
#define BACKOFF_MAX_MS 10000
#define STATUS_EVERY_MS 2000
#define PREZERO_RETRY_MS 1000   /* after a failure (disk full) */
/* During a long recovery systemd is told to wait this much longer each
 * time more of the log is read (EXTEND_TIMEOUT_USEC). */
#define RECOVERY_EXTEND_USEC 15000000ull
#define RECOVERY_NOTIFY_MS 1000
/* A dead master's workers get this long beyond their own drain to let
 * go of the directory before a new master refuses to start. */
#define LOCK_WAIT_SLACK_MS 5000
/* Syncs put the durable offset in the header at most this often: one
 * page write less per group commit (engine/durable.h). */
#define MARK_INTERVAL_MS 100
/* A stopping worker (stop or reload) closes what is left at
 * --shutdown-timeout itself and exits; one still running this much later
 * is killed. */
#define DRAIN_KILL_SLACK_MS 2000
/* A reload that waits this long for its new worker to serve says so. */
#define RELOAD_SLOW_MS 5000
/* A reload that waits for one thing this long past --shutdown-timeout
 * still answers the service manager (READY=1, STATUS= saying what it
 * waits for): by then every worker it retired is gone, so it does not
 * wait for a drain but for something stuck. */
#define RELOAD_ANSWER_SLACK_MS 5000
/* Our own listening sockets across a re-exec, as LISTEN_FDS/LISTEN_PID
 * are systemd's. */
#define REEXEC_FDS_ENV "CASKD_LISTEN_FDS"
#define REEXEC_PID_ENV "CASKD_LISTEN_PID"

/* A worker process the master runs in a worker slot (worker slots are
 * numbered as the engine's and the metrics' are). */
enum wproc_state { WPROC_NONE, WPROC_RUNNING, WPROC_WAITING /* respawn due */,
		   WPROC_CLUSTER /* the engine's worker slot of the cluster process */ };

struct wproc {
	enum wproc_state state;
	pid_t pid;
	unsigned gen;          /* configuration generation it runs */
	int retiring;          /* sent SIGTERM; not to be respawned */
	uint64_t kill_at;      /* retiring: SIGKILL then if still running; 0 none */
	uint64_t started_ms;
	uint64_t respawn_at;
	int fast_deaths;
};

struct master {
	struct srv_config cfg;
	int argc;
	char **argv;
	struct eng_db db;
	struct srv_super *super;
	struct srv_metrics *metrics;
	int fds[SRV_LISTEN_MAX];
	int nfds;
	int fds_passed;        /* systemd's (socket activation), not ours */
	int access_fd;         /* -1: no access log; workers inherit it */
	struct wproc slots[SRV_SLOTS];
	unsigned gen;
	int stopping;
	int reexec;            /* restart through recovery once stopped */
	uint64_t stop_deadline;
	int reloading;
	int incoming;          /* slot of the new worker a reload waits for */
	uint64_t reload_started_ms;
	int reload_warned;     /* said what the reload waits for */
	uint64_t reload_wait_ms; /* since when it waits for that; 0: it does not */
	int reload_answered;   /* READY=1 sent before it was done */
	uint64_t watchdog_usec;
	uint64_t last_watchdog_ms;
	uint64_t last_status_ms;
	int prezero_warned;
	uint64_t prezero_retry_ms;
	pid_t job_pid;          /* the job process running, or 0 */
	uint64_t job_id;
	struct srv_token admin_token;
	int have_token;
	/* Cluster mode (server/cluster.h): the member's shared record, and
	 * the cluster process, which writes through the last worker slot. */
	struct srv_cl_shm *cl;
	pid_t cl_pid;
	uint64_t cl_respawn_at;
	int exit_code;          /* set by a refusal found after start (2) */
	int ready_pending;      /* READY=1 waits for the member's role */
	uint64_t recovery_notified_ms;
};

static volatile sig_atomic_t got_chld, got_term, got_quit, got_hup, got_alrm,
	got_usr1, got_usr2;

static void on_signal(int sig)
{
	switch (sig) {
	case SIGCHLD: got_chld = 1; break;
	case SIGTERM:
	case SIGINT: got_term = 1; break;
	case SIGQUIT: got_quit = 1; break;
	case SIGHUP: got_hup = 1; break;
	case SIGALRM: got_alrm = 1; break;
	case SIGUSR1: got_usr1 = 1; break;
	case SIGUSR2: got_usr2 = 1; break;
	}
}

static const int handled[] = { SIGCHLD, SIGTERM, SIGINT, SIGQUIT, SIGHUP,
			       SIGALRM, SIGUSR1, SIGUSR2 };
#define NHANDLED (sizeof(handled) / sizeof(handled[0]))

/* --- listening sockets ---------------------------------------------------- */

/* Binds and listens on spec (HOST:PORT, validated by config). The fd, or
 * -errno (-EINVAL for an address that does not resolve). */
static int bind_one(const char *spec)
{
	char host[SRV_ADDR_MAX], *port;
	struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
				  .ai_flags = AI_PASSIVE | AI_NUMERICSERV };
	struct addrinfo *res = NULL;
	int fd = -1, one = 1, rc;

	snprintf(host, sizeof(host), "%s", spec);
	port = strrchr(host, ':');
	*port++ = '\0';
	if (host[0] == '[' && host[strlen(host) - 1] == ']') {
		memmove(host, host + 1, strlen(host));
		host[strlen(host) - 1] = '\0';
	}
	rc = getaddrinfo(host[0] && strcmp(host, "*") ? host : NULL, port, &hints, &res);
	if (rc) {
		srv_error("cannot listen on %s: %s", spec, gai_strerror(rc));
		return -EINVAL;
	}
	fd = socket(res->ai_family, res->ai_socktype | SOCK_CLOEXEC, 0);
	if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
	    (res->ai_family == AF_INET6 &&
	     setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one)) < 0) ||
	    bind(fd, res->ai_addr, res->ai_addrlen) < 0 ||
	    listen(fd, LISTEN_BACKLOG) < 0) {
		rc = -errno;
		srv_error("cannot listen on %s: %s", spec, strerror(-rc));
		if (fd >= 0)
			close(fd);
		fd = rc;
	}
	freeaddrinfo(res);
	return fd;
}

/* Is fd a listening stream socket? */
static int is_listener(int fd)
{
	int type = 0, acc = 0;
	socklen_t tl = sizeof(type), al = sizeof(acc);

	return getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &tl) == 0 &&
	       getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &acc, &al) == 0 &&
	       type == SOCK_STREAM && acc;
}

/* Our own sockets handed across a re-exec: CASKD_LISTEN_FDS=n when
 * CASKD_LISTEN_PID is our pid (as sd_listen_fds checks LISTEN_PID). The
 * variables are cleared: they describe this image's fds only. */
static int inherited_fds(void)
{
	const char *n = getenv(REEXEC_FDS_ENV), *pid = getenv(REEXEC_PID_ENV);
	int count = n && pid && atoi(pid) == (int)getpid() ? atoi(n) : 0;

	unsetenv(REEXEC_FDS_ENV);
	unsetenv(REEXEC_PID_ENV);
	return count;
}

/* Takes the sockets handed over at fds 3..: systemd's (socket activation)
 * or our own from before a re-exec. Runs before anything else is opened,
 * so no other file can take one of those numbers, and checks each really
 * is a listening socket: serving a data file as one would leave clients
 * waiting on a daemon that says it is ready. 0 (possibly none) or
 * -EINVAL. */
static int adopt_listeners(struct master *m)
{
	int n = srv_notify_listen_fds();
	const char *from = "LISTEN_FDS (socket activation)";

	m->fds_passed = n > 0;
	if (!n) {
		n = inherited_fds();
		from = "the master before its re-exec";
	}
	if (n > SRV_LISTEN_MAX) {
		srv_error("%s passes %d sockets; caskd serves at most %d", from, n,
			  SRV_LISTEN_MAX);
		return -EINVAL;
	}
	for (int i = 0; i < n; i++) {
		int fd = SRV_LISTEN_FDS_START + i;
		if (!is_listener(fd)) {
			srv_error("fd %d from %s is not a listening stream socket; "
				  "refusing to start", fd, from);
			return -EINVAL;
		}
		/* Workers inherit them by fork, nothing else by exec. */
		if (fcntl(fd, F_SETFD, FD_CLOEXEC) < 0) {
			srv_error("fcntl(%d, F_SETFD): %s", fd, strerror(errno));
			return -errno;
		}
		m->fds[m->nfds++] = fd;
	}
	if (n)
		srv_info("serving %d socket(s) %s", n, m->fds_passed ?
			 "passed by the service manager" : "kept across the re-exec");
	return 0;
}

/* The address fd is bound to, as HOST:PORT ([HOST]:PORT for IPv6): with
 * port 0 in --listen only this says where caskd serves. */
static void bound_address(int fd, const char *spec, char *buf, size_t n)
{
	struct sockaddr_storage sa;
	socklen_t len = sizeof(sa);
	char host[NI_MAXHOST], port[NI_MAXSERV];

	if (getsockname(fd, (struct sockaddr *)&sa, &len) < 0 ||
	    getnameinfo((struct sockaddr *)&sa, len, host, sizeof(host), port,
			sizeof(port), NI_NUMERICHOST | NI_NUMERICSERV) != 0) {
		snprintf(buf, n, "%s", spec);
		return;
	}
	snprintf(buf, n, sa.ss_family == AF_INET6 ? "[%s]:%s" : "%s:%s", host, port);
}

/* Binds --listen, unless sockets were handed over. 0 or -errno. */
static int open_listeners(struct master *m)
{
	char addr[SRV_ADDR_MAX + NI_MAXSERV];

	if (m->nfds)
		return 0;
	for (int i = 0; i < m->cfg.nlisten; i++) {
		int fd = bind_one(m->cfg.listen[i]);
		if (fd < 0)
			return fd;
		m->fds[m->nfds++] = fd;
		bound_address(fd, m->cfg.listen[i], addr, sizeof(addr));
		srv_info("listening on %s", addr);
	}
	return 0;
}

/* Hands the listening sockets to the next image of the master at fds
 * 3.. without FD_CLOEXEC, so no connection is refused while it recovers.
 * systemd's already sit there, and LISTEN_FDS / LISTEN_PID stay true
 * (execv keeps our pid). Our own are moved there and described by
 * CASKD_LISTEN_FDS / CASKD_LISTEN_PID. Every other descriptor is
 * close-on-exec, so nothing else reaches the next image. 0 or -errno. */
static int pass_listeners(struct master *m)
{
	int tmp[SRV_LISTEN_MAX], rc = 0, i;
	char num[16];

	for (i = 0; i < m->nfds; i++) {
		/* Above the target range, so no dup2 below closes a socket
		 * not yet copied. */
		tmp[i] = fcntl(m->fds[i], F_DUPFD_CLOEXEC, SRV_LISTEN_FDS_START + m->nfds);
		if (tmp[i] < 0) {
			rc = -errno;
			goto out_close_tmp;
		}
	}
	for (i = 0; i < m->nfds; i++) {
		int fd = SRV_LISTEN_FDS_START + i;
		if (dup2(tmp[i], fd) < 0) { /* the copy has no FD_CLOEXEC */
			rc = -errno;
			break;
		}
		m->fds[i] = fd;
	}
	i = m->nfds;
	if (!rc && !m->fds_passed) {
		snprintf(num, sizeof(num), "%d", m->nfds);
		if (setenv(REEXEC_FDS_ENV, num, 1) < 0)
			rc = -errno;
		snprintf(num, sizeof(num), "%d", (int)getpid());
		if (!rc && setenv(REEXEC_PID_ENV, num, 1) < 0)
			rc = -errno;
	}
out_close_tmp:
	while (i-- > 0)
		close(tmp[i]);
	return rc;
}

/* --- workers ----------------------------------------------------------------- */

static int running(const struct master *m)
{
	int n = 0;
	for (int i = 0; i < SRV_SLOTS; i++)
		n += m->slots[i].state == WPROC_RUNNING;
	return n;
}

/* Forks the worker of slot; on failure its respawn is due shortly.
 * 0 or -errno. */
static int spawn(struct master *m, int slot)
{
	struct wproc *s = &m->slots[slot];
	struct srv_worker_args a = {
		.cfg = &m->cfg, .db = &m->db, .super = m->super, .metrics = m->metrics,
		.fds = m->fds, .nfds = m->nfds, .access_fd = m->access_fd,
		.slot = slot, .master = getpid(),
		.admin_token = m->have_token ? &m->admin_token : NULL,
		.cl = m->cl,
	};
	pid_t pid;

	fflush(NULL);
	pid = fork();
	if (pid < 0) {
		int rc = -errno;
		srv_error("fork: %s; retrying", strerror(-rc));
		s->state = WPROC_WAITING;
		s->respawn_at = srv_mono_ms() + BACKOFF_FIRST_MS;
		return rc;
	}
	if (pid == 0)
		_exit(srv_worker_main(&a));
	s->state = WPROC_RUNNING;
	s->pid = pid;
	s->gen = m->gen;
	s->retiring = 0;
	s->kill_at = 0;
	s->started_ms = srv_mono_ms();
	eng_db_set_worker(&m->db, slot, pid);
	srv_super_started(m->super, slot, pid);
	srv_super_set_workers_up(m->super, running(m));
	srv_debug("worker %d started, pid %d", slot, (int)pid);
	return 0;
}

/* A free worker slot, or -ENOSPC. */
static int free_slot(const struct master *m)
{
	for (int i = 0; i < SRV_SLOTS; i++)
		if (m->slots[i].state == WPROC_NONE)
			return i;
	return -ENOSPC;
}

static void describe_exit(int slot, pid_t pid, int status, char *buf, size_t n)
{
	if (WIFEXITED(status))
		snprintf(buf, n, "worker %d (pid %d) exited with status %d", slot,
			 (int)pid, WEXITSTATUS(status));
	else
		snprintf(buf, n, "worker %d (pid %d) killed by signal %d (%s)", slot,
			 (int)pid, WTERMSIG(status), strsignal(WTERMSIG(status)));
}

static void worker_died(struct master *m, int slot, int status)
{
	struct wproc *s = &m->slots[slot];
	uint64_t now = srv_mono_ms(), delay;
	char what[160];
	int rc, was_ready;

	describe_exit(slot, s->pid, status, what, sizeof(what));
	eng_sync_reap(&m->db, s->pid);
	if ((rc = eng_db_reap_worker(&m->db, slot))) {
		srv_error("%s; cleaning up after it failed (%s): restarting through recovery",
			  what, eng_strerror(rc));
		got_usr2 = 1;
	}
	was_ready = srv_super_ready(m->super, slot);
	srv_super_gone(m->super, slot);
	srv_metrics_retire_slot(m->metrics, slot);
	if (m->stopping || s->retiring || s->gen != m->gen) {
		srv_debug("%s", what);
		s->state = WPROC_NONE;
		s->pid = 0;
		return;
	}
	/* An unexpected death: replace it now, or later if it keeps dying
	 * right after starting (a crash loop must not spin the CPU). */
	srv_metrics_restarted(m->metrics);
	/* Only a worker that died before it served counts as a crash loop;
	 * one killed while serving is replaced at once. */
	s->fast_deaths = !was_ready && now - s->started_ms < FAST_DEATH_MS ?
				 s->fast_deaths + 1 : 0;
	delay = 0;
	if (s->fast_deaths > 1) {
		delay = BACKOFF_FIRST_MS << (s->fast_deaths - 2 < 7 ? s->fast_deaths - 2 : 7);
		if (delay > BACKOFF_MAX_MS)
			delay = BACKOFF_MAX_MS;
	}
	srv_warn("%s; %s", what, delay ? "it keeps dying at start: backing off" : "replacing it");
	if (delay)
		srv_notify("STATUS=worker %d keeps dying; next start in %" PRIu64 " ms",
			   slot, delay);
	s->state = WPROC_WAITING;
	s->pid = 0;
	s->respawn_at = now + delay;
}

/* --- jobs ---------------------------------------------------------------------- */

#define JOB_NICE 10

static void job_reaped(struct master *m, int status)
{
	uint64_t id = eng_job_reaped(&m->db, m->job_pid, status);

	srv_debug("job %" PRIu64 " (pid %d) ended", id, (int)m->job_pid);
	m->job_pid = 0;
	m->job_id = 0;
}

/* The job process: a child like a worker, that runs one job and exits. */
static int job_child(struct master *m, uint64_t id)
{
	char role[32];
	int rc;

	if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0)
		return 1;
	for (size_t i = 0; i < NHANDLED; i++)
		signal(handled[i], SIG_DFL);
	{
		sigset_t none;
		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, NULL);
	}
	for (int i = 0; i < m->nfds; i++)
		close(m->fds[i]);
	snprintf(role, sizeof(role), "job %" PRIu64, id);
	srv_log_set_role(role);
	/* Background work: on a busy machine the workers' requests go first,
	 * and the job still gets a share, so it ends. (On 2 cores under a
	 * saturating wrk load the effect on GET p99 was within the noise:
	 * docs/benchmarks.md.) */
	errno = 0;
	if (nice(JOB_NICE) == -1 && errno)
		srv_warn("job %" PRIu64 ": nice(%d): %s", id, JOB_NICE, strerror(errno));
	eng_fp_set_armed(1);
	eng_io_set_role("job");
	if ((rc = eng_db_attach(&m->db, ENG_JOB_SEAT))) {
		srv_error("job %" PRIu64 ": opening %s: %s", id, m->db.path, eng_strerror(rc));
		return 1;
	}
	rc = eng_job_run(&m->db, id);
	eng_io_crash_report();
	return rc;
}

static void maybe_start_job(struct master *m)
{
	struct eng_compact_policy p = {
		.garbage_pct = (unsigned)m->cfg.compact_garbage_pct,
		.min_bytes = m->cfg.compact_min_size,
	};
	uint64_t id;
	pid_t pid;

	if (m->stopping || m->job_pid || eng_sync_poisoned(&m->db) ||
	    !eng_job_next(&m->db, &p, &id))
		return;
	fflush(NULL);
	pid = fork();
	if (pid == 0)
		_exit(job_child(m, id));
	eng_job_started(&m->db, id, pid < 0 ? -errno : pid);
	if (pid < 0) {
		srv_error("fork of job %" PRIu64 ": %s", id, strerror(errno));
		return;
	}
	m->job_pid = pid;
	m->job_id = id;
	srv_debug("job %" PRIu64 " started, pid %d", id, (int)pid);
}

/* --- the cluster process ---------------------------------------------------- */

#define CL_SLOT (SRV_SLOTS - 1)

static void begin_stop(struct master *m, const char *why);
#define CL_RESPAWN_MS 500

static void spawn_cluster(struct master *m)
{
	struct srv_cluster_args a = { .cfg = &m->cfg, .db = &m->db, .cl = m->cl };
	pid_t master = getpid(), pid;
	int rc;

	fflush(NULL);
	if ((pid = fork()) < 0) {
		srv_error("fork of the cluster process: %s; retrying", strerror(errno));
		m->cl_respawn_at = srv_mono_ms() + CL_RESPAWN_MS;
		return;
	}
	if (pid == 0) {
		if (prctl(PR_SET_PDEATHSIG, SIGTERM) < 0 || getppid() != master)
			_exit(1);
		srv_log_set_role("cluster");
		eng_io_set_role("cluster");
		eng_fp_set_armed(1);
		{
			/* the master's handlers only set flags nobody reads
			 * here; srv_cluster_main installs its own */
			sigset_t none;
			sigemptyset(&none);
			sigprocmask(SIG_SETMASK, &none, NULL);
		}
		if ((rc = eng_db_attach(&m->db, CL_SLOT))) {
			srv_error("opening %s: %s", m->db.path, eng_strerror(rc));
			_exit(1);
		}
		_exit(srv_cluster_main(&a));
	}
	m->cl_pid = pid;
	eng_db_set_worker(&m->db, CL_SLOT, pid);
}

static void cluster_died(struct master *m, int status)
{
	pid_t pid = m->cl_pid;
	int rc;

	m->cl_pid = 0;
	eng_sync_reap(&m->db, pid);
	if ((rc = eng_db_reap_worker(&m->db, CL_SLOT))) {
		srv_error("the cluster process died mid-write and cleaning up failed (%s): "
			  "restarting through recovery", eng_strerror(rc));
		got_usr2 = 1;
	}
	if (WIFEXITED(status) && WEXITSTATUS(status) == SRV_CLUSTER_EXIT_REFUSED) {
		m->exit_code = EXIT_USAGE;
		begin_stop(m, "the cluster refused this member");
		return;
	}
	if (WIFEXITED(status) && WEXITSTATUS(status) == SRV_CLUSTER_EXIT_COPY && !m->stopping) {
		m->reexec = 1;
		begin_stop(m, "a full copy of the primary's data waits to be installed");
		return;
	}
	if (m->stopping)
		return;
	if (WIFEXITED(status))
		srv_warn("the cluster process (pid %d) exited with status %d; restarting it",
			 (int)pid, WEXITSTATUS(status));
	else
		srv_warn("the cluster process (pid %d) was killed by signal %d; restarting it",
			 (int)pid, WTERMSIG(status));
	m->cl_respawn_at = srv_mono_ms() + CL_RESPAWN_MS;
}

static void reap(struct master *m)
{
	int status;
	pid_t pid;

	while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
		if (pid == m->job_pid) {
			job_reaped(m, status);
			continue;
		}
		if (pid == m->cl_pid) {
			cluster_died(m, status);
			continue;
		}
		for (int i = 0; i < SRV_SLOTS; i++)
			if (m->slots[i].state == WPROC_RUNNING && m->slots[i].pid == pid) {
				m->slots[i].state = WPROC_NONE;
				m->slots[i].pid = pid;
				worker_died(m, i, status);
				break;
			}
	}
	srv_super_set_workers_up(m->super, running(m));
}

static void signal_all(struct master *m, int sig)
{
	for (int i = 0; i < SRV_SLOTS; i++)
		if (m->slots[i].state == WPROC_RUNNING)
			kill(m->slots[i].pid, sig);
}

/* --- stop, reload ------------------------------------------------------------- */

/* A stop for good refuses new connections at once, rather than leave
 * them in the accept queue until the shutdown timeout: every copy of our
 * own sockets closes (this one here, the workers' when they get
 * SIGTERM). systemd's stay open: systemd queues on them for the next
 * instance. A re-exec keeps them for the next image. */
static void close_listeners(struct master *m)
{
	if (m->reexec || m->fds_passed)
		return;
	for (int i = 0; i < m->nfds; i++)
		close(m->fds[i]);
	m->nfds = 0;
}

static void begin_stop(struct master *m, const char *why)
{
	if (m->stopping)
		return;
	m->stopping = 1;
	close_listeners(m);
	m->stop_deadline = srv_mono_ms() + (uint64_t)m->cfg.shutdown_timeout_s * 1000 +
			   DRAIN_KILL_SLACK_MS;
	srv_info("%s: stopping workers gracefully (at most %d s)", why,
		 m->cfg.shutdown_timeout_s);
	srv_notify("STOPPING=1\nSTATUS=stopping");
	srv_super_set_stopping(m->super);
	signal_all(m, SIGTERM);
	if (m->cl_pid)
		kill(m->cl_pid, SIGTERM); /* it hands leadership over as it goes */
	if (m->job_pid)
		kill(m->job_pid, SIGKILL); /* undone when reaped; the next start redoes it */
	for (int i = 0; i < SRV_SLOTS; i++)
		if (m->slots[i].state == WPROC_WAITING)
			m->slots[i].state = WPROC_NONE;
}

static int same_str_list(const struct srv_config *a, const struct srv_config *b)
{
	if (a->nlisten != b->nlisten)
		return 0;
	for (int i = 0; i < a->nlisten; i++)
		if (strcmp(a->listen[i], b->listen[i]))
			return 0;
	return 1;
}

static int load_token(struct master *m, const struct srv_config *cfg);

/* On SIGHUP, as logrotate expects: the access log named by the new
 * config is opened afresh (the file may have been moved away). If that
 * fails the open one is kept, and so is its name. New workers get the
 * new fd; old ones write to the old file until they retire. */
static void reopen_access_log(struct master *m, struct srv_config *next)
{
	int fd = -1;

	if (next->access_log[0] && (fd = srv_access_open(next->access_log)) < 0) {
		srv_error("reload: --access-log: cannot open %s: %s; keeping the open log%s%s",
			  next->access_log, strerror(-fd), m->cfg.access_log[0] ? " " : "",
			  m->cfg.access_log);
		memcpy(next->access_log, m->cfg.access_log, sizeof(next->access_log));
		return;
	}
	if (m->access_fd >= 0)
		close(m->access_fd);
	m->access_fd = fd;
}

/* The --listen values, comma-separated, into buf. */
static void listen_list(const struct srv_config *c, char *buf, size_t n)
{
	size_t o = 0;

	buf[0] = '\0';
	for (int i = 0; i < c->nlisten && o < n; i++)
		o += (size_t)snprintf(buf + o, n - o, "%s%s", i ? "," : "", c->listen[i]);
	if (!c->nlisten)
		snprintf(buf, n, "(none)");
}

/* listen, data-dir and max-keys hold for the master's life (its sockets,
 * its store, its index): a reload keeps the running ones in next, and
 * logs each that changed with its old and new value, so the operator
 * knows what the next restart brings. */
static void keep_restart_only(const struct srv_config *run, struct srv_config *next)
{
	static const char later[] = "takes effect at the next restart";
	char was[SRV_LISTEN_MAX * SRV_ADDR_MAX], now[SRV_LISTEN_MAX * SRV_ADDR_MAX];

	if (!same_str_list(next, run)) {
		listen_list(run, was, sizeof(was));
		listen_list(next, now, sizeof(now));
		srv_warn("reload: listen changed from %s to %s: %s; still listening on %s",
			 was, now, later, was);
	}
	if (strcmp(next->data_dir, run->data_dir))
		srv_warn("reload: data-dir changed from %s to %s: %s; still serving %s",
			 run->data_dir, next->data_dir, later, run->data_dir);
	if (next->max_keys != run->max_keys)
		srv_warn("reload: max-keys changed from %" PRIu64 " to %" PRIu64 " (0: no bound): "
			 "%s", (uint64_t)run->max_keys, (uint64_t)next->max_keys, later);
	memcpy(next->listen, run->listen, sizeof(next->listen));
	next->nlisten = run->nlisten;
	snprintf(next->data_dir, sizeof(next->data_dir), "%s", run->data_dir);
	next->max_keys = run->max_keys;
}

static void begin_reload(struct master *m)
{
	struct srv_config next;
	char err[512];

	if (m->stopping)
		return;
	if (srv_config_load(m->argc, m->argv, &next, err, sizeof(err)) != SRV_CONFIG_OK) {
		srv_error("reload: %s; keeping the running configuration and workers", err);
		return;
	}
	if (load_token(m, &next) < 0) {
		srv_error("reload: keeping the running configuration and workers");
		return;
	}
	srv_notify_reloading();
	reopen_access_log(m, &next);
	keep_restart_only(&m->cfg, &next);
	m->cfg = next;
	srv_log_set_level((enum srv_log_level)m->cfg.log_level);
	m->gen++;
	m->reloading = 1;
	m->incoming = -1;
	m->reload_started_ms = srv_mono_ms();
	m->reload_warned = 0;
	m->reload_wait_ms = 0;
	m->reload_answered = 0;
	srv_info("reload: replacing workers one at a time (%d wanted)", m->cfg.workers);
}

static int count_gen(const struct master *m, unsigned gen, int current)
{
	int n = 0;
	for (int i = 0; i < SRV_SLOTS; i++) {
		const struct wproc *s = &m->slots[i];
		if (s->state == WPROC_NONE || s->retiring)
			continue;
		n += current ? s->gen == gen : s->gen != gen;
	}
	return n;
}

static void retire_one_old(struct master *m)
{
	for (int i = 0; i < SRV_SLOTS; i++) {
		struct wproc *s = &m->slots[i];
		if (s->state == WPROC_RUNNING && s->gen != m->gen && !s->retiring) {
			s->retiring = 1;
			s->kill_at = srv_mono_ms() + (uint64_t)m->cfg.shutdown_timeout_s * 1000 +
				     DRAIN_KILL_SLACK_MS;
			kill(s->pid, SIGTERM);
			return;
		}
		if (s->state == WPROC_WAITING && s->gen != m->gen) {
			s->state = WPROC_NONE;
			return;
		}
	}
}

/* The reload cannot go on yet: says what it waits for (once, at once if
 * urgent, else once it has waited long), and once it has waited past
 * --shutdown-timeout plus slack answers the service manager anyway, so
 * `systemctl reload` never hangs; the reload goes on trying. */
static void reload_wait(struct master *m, int urgent, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void reload_wait(struct master *m, int urgent, const char *fmt, ...)
{
	uint64_t now = srv_mono_ms();
	char what[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	if (!m->reload_wait_ms)
		m->reload_wait_ms = now;
	if (!m->reload_warned && (urgent || now - m->reload_wait_ms >= RELOAD_SLOW_MS)) {
		srv_warn("reload: waiting: %s", what);
		srv_notify("STATUS=reload waiting: %s", what);
		m->reload_warned = 1;
	}
	if (!m->reload_answered &&
	    now - m->reload_wait_ms >= (uint64_t)m->cfg.shutdown_timeout_s * 1000 +
					 RELOAD_ANSWER_SLACK_MS) {
		srv_warn("reload: not done after %" PRIu64 " s (%s); answering the service "
			 "manager, and still trying", (now - m->reload_started_ms) / 1000, what);
		srv_notify("READY=1\nSTATUS=reload incomplete: %s; the old workers serve", what);
		m->reload_answered = 1;
	}
}

/* Slots held by workers a reload retired and that still drain. */
static int draining(const struct master *m, uint64_t *first_kill)
{
	int n = 0;

	*first_kill = UINT64_MAX;
	for (int i = 0; i < SRV_SLOTS; i++) {
		const struct wproc *s = &m->slots[i];
		if (s->state != WPROC_RUNNING || !s->retiring)
			continue;
		n++;
		if (s->kill_at && s->kill_at < *first_kill)
			*first_kill = s->kill_at;
	}
	return n;
}

/* One step of a reload: start a new worker, and once it serves, retire
 * one old worker; repeat. The listening sockets never close, so clients
 * see no refused connection. A new worker that died before serving is
 * respawned (with backoff) and waited for again: no old worker is
 * retired for it. */
static void reload_step(struct master *m)
{
	if (m->incoming >= 0) {
		struct wproc *s = &m->slots[m->incoming];
		if (s->state == WPROC_WAITING) {
			reload_wait(m, 1, "the new worker in slot %d died before serving; it is "
				    "restarted, the old workers keep serving", m->incoming);
			return;
		}
		if (s->state == WPROC_RUNNING && !srv_super_ready(m->super, m->incoming)) {
			reload_wait(m, 0, "the new worker in slot %d (pid %d) does not serve yet",
				    m->incoming, (int)s->pid);
			return;
		}
		m->incoming = -1;
		m->reload_warned = 0;
		m->reload_wait_ms = 0;
		retire_one_old(m);
		return;
	}
	if (count_gen(m, m->gen, 1) < m->cfg.workers) {
		int slot = free_slot(m);
		if (slot < 0) {
			uint64_t kill_at, now = srv_mono_ms();
			int n = draining(m, &kill_at);

			reload_wait(m, 1, "all %d worker slots are taken; %d retired worker(s) "
				    "still drain, the first cut off by --shutdown-timeout "
				    "within %" PRIu64 " s", SRV_SLOTS, n,
				    kill_at == UINT64_MAX || kill_at < now ? 0 :
				    (kill_at - now + 999) / 1000);
			return;
		}
		m->reload_warned = 0;
		m->reload_wait_ms = 0;
		if (spawn(m, slot) == 0)
			m->incoming = slot;
		return;
	}
	if (count_gen(m, m->gen, 0) > 0) {
		retire_one_old(m);
		return;
	}
	m->reloading = 0;
	srv_info("reload: done, %d workers", m->cfg.workers);
	srv_notify("READY=1\nSTATUS=reloaded; %d workers", m->cfg.workers);
}

/* --- periodic checks ---------------------------------------------------------- */

static int heartbeats_ok(struct master *m, uint64_t now)
{
	int ok = 1;
	for (int i = 0; i < SRV_SLOTS; i++) {
		struct wproc *s = &m->slots[i];
		uint64_t hb;
		if (s->state != WPROC_RUNNING || s->retiring)
			continue;
		hb = srv_super_heartbeat(m->super, i);
		if (!hb) /* still starting */
			hb = s->started_ms;
		if (now > hb + (uint64_t)m->cfg.worker_timeout_s * 1000) {
			srv_error("worker %d (pid %d) missed its heartbeat for %d s: killing it",
				  i, (int)s->pid, m->cfg.worker_timeout_s);
			kill(s->pid, SIGKILL);
			ok = 0;
		}
	}
	return ok;
}

/* Workers a reload retired close what is left at --shutdown-timeout
 * themselves (server/worker.c); one that did not (a wedged loop) is
 * killed, so that drains end and slots come free. */
static void kill_overdue(struct master *m, uint64_t now)
{
	for (int i = 0; i < SRV_SLOTS; i++) {
		struct wproc *s = &m->slots[i];
		if (s->state != WPROC_RUNNING || !s->retiring || !s->kill_at ||
		    now < s->kill_at)
			continue;
		srv_warn("worker %d (pid %d), retired by a reload, still runs %d s past "
			 "--shutdown-timeout: killing it", i, (int)s->pid,
			 DRAIN_KILL_SLACK_MS / 1000);
		kill(s->pid, SIGKILL);
		s->kill_at = 0;
	}
}

/* Space ahead of the tail, and the reserve file: the master's own
 * background work, a role of its own for crash drills (engine/io.h). */
static int prezero(struct master *m)
{
	int rc;

	eng_io_set_role("space");
	rc = eng_db_prezero(&m->db);
	eng_io_set_role("master");
	return rc;
}

static void tick(struct master *m)
{
	uint64_t now = srv_mono_ms();
	int ok;

	for (int i = 0; i < SRV_SLOTS && !m->stopping; i++)
		if (m->slots[i].state == WPROC_WAITING && now >= m->slots[i].respawn_at)
			spawn(m, i);
	if (m->cl && !m->cl_pid && !m->stopping && now >= m->cl_respawn_at)
		spawn_cluster(m);
	if (m->ready_pending && atomic_load(&m->cl->role) != SRV_CL_CANDIDATE) {
		srv_notify("READY=1\nSTATUS=%s of group %s, term %" PRIu64,
			   srv_cl_role_name(atomic_load(&m->cl->role)), m->cfg.cluster,
			   atomic_load(&m->cl->term));
		m->ready_pending = 0;
	}
	ok = heartbeats_ok(m, now);
	kill_overdue(m, now);
	if (m->reloading && !m->stopping)
		reload_step(m);
	/* Not while a job runs: a compaction short of space deletes the
	 * reserve file, and that space is for its new file. */
	if (!m->stopping && !m->job_pid && !eng_sync_poisoned(&m->db) &&
	    now >= m->prezero_retry_ms && prezero(m) < 0) {
		if (!m->prezero_warned)
			srv_warn("preparing space in database.bin failed (disk full?); appends "
				 "go on without it, retrying every %d s", PREZERO_RETRY_MS / 1000);
		m->prezero_warned = 1;
		m->prezero_retry_ms = now + PREZERO_RETRY_MS;
	}
	if (!m->stopping) {
		eng_job_reclaim(&m->db);
		eng_db_release_old(&m->db);
		maybe_start_job(m);
	}
	if (!m->stopping && eng_sync_poisoned(&m->db)) {
		srv_error("an fdatasync of database.bin failed: writes since the last good "
			  "sync may be lost by the kernel; restarting through recovery");
		m->reexec = 1;
		begin_stop(m, "fsync failure");
	}
	if (m->stopping && now >= m->stop_deadline && running(m)) {
		srv_warn("graceful stop timed out (%d s past --shutdown-timeout %d s): "
			 "killing %d worker(s)", DRAIN_KILL_SLACK_MS / 1000,
			 m->cfg.shutdown_timeout_s, running(m));
		signal_all(m, SIGKILL);
		m->stop_deadline = UINT64_MAX;
	}
	if (m->watchdog_usec && ok && running(m) >= m->cfg.workers &&
	    now - m->last_watchdog_ms >= m->watchdog_usec / 2000) {
		srv_notify("WATCHDOG=1");
		m->last_watchdog_ms = now;
	}
	if (!m->stopping && now - m->last_status_ms >= STATUS_EVERY_MS) {
		struct eng_stats st;
		eng_stats(&m->db, &st);
		srv_notify("STATUS=%d/%d workers up; %" PRIu64 " keys; log %" PRIu64 " bytes",
			   running(m), m->cfg.workers, st.keys, st.log_bytes);
		m->last_status_ms = now;
	}
}

/* --- start-up ------------------------------------------------------------------- */

/* Recovery reads a long log: tell systemd it is making progress, so its
 * start timeout does not kill it. */
static void recovery_progress(uint64_t done, uint64_t total, void *arg)
{
	struct master *m = arg;
	uint64_t now = srv_mono_ms();

	if (now - m->recovery_notified_ms < RECOVERY_NOTIFY_MS)
		return;
	m->recovery_notified_ms = now;
	srv_notify("EXTEND_TIMEOUT_USEC=%llu\nSTATUS=recovering database.bin: %" PRIu64
		   " of %" PRIu64 " MB", (unsigned long long)RECOVERY_EXTEND_USEC,
		   done >> 20, total >> 20);
}

static void busy_message(const struct master *m, const struct eng_recovery *rep)
{
	char list[ENG_HOLDERS_MAX * 12] = "";

	for (int i = 0, k = 0; i < rep->nholders; i++)
		k += snprintf(list + k, sizeof(list) - (size_t)k, "%s%d", i ? ", " : "",
			      rep->holders[i]);
	if (rep->holder_dead)
		srv_error("data directory %s: the caskd that had it (pid %d) is gone, but "
			  "process(es) %s still hold %s/caskd.lock after waiting; they may still "
			  "be writing: stop them first", m->cfg.data_dir, rep->holder_pid,
			  rep->nholders ? list : "(unknown)", m->cfg.data_dir);
	else
		srv_error("data directory %s is in use by another caskd (pid %d, %s/caskd.lock); "
			  "stop it first, or give this one its own --data-dir", m->cfg.data_dir,
			  rep->holder_pid, m->cfg.data_dir);
}

static int open_store(struct master *m)
{
	struct eng_opts o = {
		.dir = m->cfg.data_dir,
		.max_keys = m->cfg.max_keys,
		.max_value = (uint32_t)m->cfg.max_value_size,
		.progress = recovery_progress,
		.progress_arg = m,
		.lock_wait_ms = m->cfg.shutdown_timeout_s * 1000 + LOCK_WAIT_SLACK_MS,
		.mark_interval_ms = MARK_INTERVAL_MS,
	};
	struct eng_recovery rep;
	int rc = eng_db_open(&o, &m->db, &rep);

	if (rc == -EBUSY) {
		busy_message(m, &rep);
		return rc;
	}
	if (rc == ENG_ECORRUPT && rep.bad_off + rep.bad_len > rep.file_bytes) {
		srv_error("%s/database.bin is truncated: it ends at %" PRIu64 " bytes, below the "
			  "%" PRIu64 " its durable mark says were synced (records from offset %"
			  PRIu64 " are missing or damaged); refusing to start. Inspect with 'caskd "
			  "check %s'; 'caskd check --repair %s' drops what is missing and says what "
			  "it cannot vouch for", m->cfg.data_dir, rep.file_bytes,
			  rep.bad_off + rep.bad_len, rep.bad_off, m->cfg.data_dir, m->cfg.data_dir);
		return rc;
	}
	if (rc == ENG_ECORRUPT) {
		srv_error("%s/database.bin is damaged at offset %" PRIu64 " (%" PRIu64 " bytes) in "
			  "records the durable mark says were synced; refusing to start. Inspect "
			  "with 'caskd check %s'; 'caskd check --repair %s' drops the damage and "
			  "says what it cannot vouch for", m->cfg.data_dir, rep.bad_off, rep.bad_len,
			  m->cfg.data_dir, m->cfg.data_dir);
		return rc;
	}
	if (rc == ENG_EFULL) {
		srv_error("%s/database.bin holds more than --max-keys %" PRIu64 " keys; raise it",
			  m->cfg.data_dir, m->cfg.max_keys);
		return rc;
	}
	if (rc) {
		srv_error("%s: %s", rep.failed[0] ? rep.failed : "opening the data directory",
			  eng_strerror(rc));
		return rc;
	}
	eng_db_set_notify(&m->db, getpid());
	m->db.keep_old = 1;
	srv_info("recovered %s/database.bin: %" PRIu64 " keys, %" PRIu64 " bytes, in %.3f s "
		 "(%s; %" PRIu64 " bytes scanned, %" PRIu64 " records)%s%s",
		 m->cfg.data_dir, rep.keys, rep.tail, rep.seconds,
		 rep.from_snapshot ? "index from database.idx" : "full scan",
		 rep.scanned, rep.records, rep.created ? "; created it" : "",
		 rep.upgraded ? "; upgraded its header to format 2" : "");
	return 0;
}

/* --admin-token-file: read at start (a bad one is a bad option: exit 2)
 * and at each reload. 0, or -1 with the error logged. */
static int load_token(struct master *m, const struct srv_config *cfg)
{
	struct srv_token tok;
	char err[PATH_MAX + 160];

	if (!cfg->admin_token_file[0]) {
		m->have_token = 0;
		return 0;
	}
	if (srv_token_read(cfg->admin_token_file, &tok, err, sizeof(err)) < 0) {
		srv_error("%s", err);
		return -1;
	}
	/* only now: a failed reload keeps the token that was in force */
	m->admin_token = tok;
	m->have_token = 1;
	explicit_bzero(&tok, sizeof(tok));
	return 0;
}

static int install_signals(sigset_t *orig)
{
	struct sigaction sa = { .sa_handler = on_signal };
	struct sigaction ign = { .sa_handler = SIG_IGN };
	struct itimerval it = { { 0, TICK_MS * 1000 }, { 0, TICK_MS * 1000 } };
	sigset_t block;

	sigemptyset(&block);
	for (size_t i = 0; i < NHANDLED; i++)
		sigaddset(&block, handled[i]);
	if (sigprocmask(SIG_BLOCK, &block, orig) < 0)
		return -errno;
	sigemptyset(&sa.sa_mask);
	for (size_t i = 0; i < NHANDLED; i++)
		if (sigaction(handled[i], &sa, NULL) < 0)
			return -errno;
	sigaction(SIGPIPE, &ign, NULL);
	if (setitimer(ITIMER_REAL, &it, NULL) < 0)
		return -errno;
	return 0;
}

static void reexec(struct master *m)
{
	int rc;

	srv_info("re-executing to recover database.bin");
	eng_db_close(&m->db);
	if ((rc = pass_listeners(m)) < 0) {
		srv_error("keeping the listening sockets for the re-exec: %s", strerror(-rc));
		return;
	}
	execv("/proc/self/exe", m->argv);
	srv_error("execv(/proc/self/exe): %s", strerror(errno));
}

int srv_master_run(const struct srv_config *cfg, int argc, char **argv)
{
	struct master *m = calloc(1, sizeof(*m));
	sigset_t orig, wait_mask;
	int rc = 1;

	if (!m)
		return 1;
	m->cfg = *cfg;
	m->argc = argc;
	m->argv = argv;
	m->incoming = -1;
	m->access_fd = -1;
	srv_log_set_role("master");
	if ((rc = install_signals(&orig)) < 0) {
		srv_error("installing signal handlers: %s", strerror(-rc));
		rc = 1;
		goto out_free;
	}
	rc = EXIT_USAGE;
	if (load_token(m, cfg) < 0)
		goto out_free;
	rc = 1;
	if (adopt_listeners(m) < 0)
		goto out_free;
	if (m->cfg.access_log[0] && (m->access_fd = srv_access_open(m->cfg.access_log)) < 0) {
		srv_error("--access-log: cannot open %s: %s", m->cfg.access_log,
			  strerror(-m->access_fd));
		rc = EXIT_USAGE;
		goto out_free;
	}
	if (m->cfg.cluster[0]) {
		char why[PATH_MAX + 256];
		if ((rc = srv_cluster_prepare(&m->cfg, why, sizeof(why)))) {
			srv_error("cluster: %s", why);
			rc = rc == -EINVAL ? EXIT_USAGE : 1;
			goto out_close_access;
		}
		rc = 1;
	}
	if (open_store(m) < 0)
		goto out_close_access;
	if (m->cfg.cluster[0]) {
		if (!(m->cl = srv_cluster_shm_new(eng_top_version(&m->db)))) {
			srv_error("cluster: shared memory: %s", strerror(errno));
			goto out_close;
		}
		m->slots[CL_SLOT].state = WPROC_CLUSTER;
	}
	if (open_listeners(m) < 0 || srv_super_create(&m->super) < 0 ||
	    srv_metrics_create(&m->metrics) < 0)
		goto out_close;
	for (int i = 0; i < m->cfg.workers; i++)
		spawn(m, i);
	if (m->cl)
		spawn_cluster(m);
	m->watchdog_usec = srv_notify_watchdog_usec();
	if (m->cl)
		m->ready_pending = 1; /* a member is ready once it has a role (tick) */
	else
		srv_notify("READY=1\nSTATUS=%d workers up", m->cfg.workers);
	srv_info("caskd ready: %d workers, fsync %s, data in %s", m->cfg.workers,
		 srv_config_fsync_name(m->cfg.fsync), m->cfg.data_dir);
	wait_mask = orig;
	for (size_t i = 0; i < NHANDLED; i++)
		sigdelset(&wait_mask, handled[i]);
	for (;;) {
		if (!got_chld && !got_term && !got_quit && !got_hup && !got_alrm && !got_usr1 &&
		    !got_usr2)
			sigsuspend(&wait_mask);
		if (got_chld) {
			got_chld = 0;
			reap(m);
		}
		if (got_quit) {
			srv_info("SIGQUIT: stopping now");
			signal_all(m, SIGKILL);
			m->stopping = 1;
			got_quit = 0;
		}
		if (got_term) {
			got_term = 0;
			begin_stop(m, "SIGTERM/SIGINT");
		}
		if (got_usr1) {
			got_usr1 = 0;
			maybe_start_job(m);
		}
		if (got_usr2) {
			got_usr2 = 0;
			m->reexec = 1;
			begin_stop(m, "shared index lost");
		}
		if (got_hup) {
			got_hup = 0;
			begin_reload(m);
		}
		if (got_alrm) {
			got_alrm = 0;
			tick(m);
		}
		if (m->stopping && running(m) == 0 && !m->job_pid && !m->cl_pid)
			break;
	}
	eng_io_set_role("stop");
	if (!m->reexec) {
		if ((rc = eng_db_trim(&m->db)) < 0)
			srv_warn("trimming database.bin failed: %s (the next start trims it)",
				 eng_strerror(rc));
		else if ((rc = eng_db_save_index(&m->db)) < 0)
			srv_warn("writing %s/database.idx failed: %s (the next start scans "
				 "database.bin instead)", m->cfg.data_dir, eng_strerror(rc));
	}
	eng_io_crash_report();
	eng_io_set_role("master");
	rc = 0;
	if (m->reexec)
		reexec(m); /* returns only on failure */
	srv_info("stopped");
	if (m->reexec)
		rc = 1;
	else if (m->exit_code)
		rc = m->exit_code;
out_close:
	if (m->metrics)
		srv_metrics_destroy(m->metrics);
	if (m->super)
		srv_super_destroy(m->super);
	eng_db_close(&m->db);
out_close_access:
	if (m->access_fd >= 0)
		close(m->access_fd);
out_free:
	free(m);
	return rc;
}
