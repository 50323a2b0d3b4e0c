/* server/master.c — the master process: supervisor only, never serves.
 *
 * Owns: recovery at start (through the engine), the shared regions, the
 * signals, the periodic checks (heartbeats, the watchdog, status) and
 * the main loop; a re-exec to restart through recovery. The rest of the
 * master is one file per section (master_state.h says who writes what):
 * master_listen.c the listening sockets, master_workers.c the worker
 * processes, master_jobs.c the background job process, master_reload.c
 * stop and reload.
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

#include "engine/durable.h"
#include "engine/errors.h"
#include "engine/io.h"
#include "engine/job.h"
#include "server/clock.h"
#include "server/cluster.h"
#include "server/cluster_state.h"
#include "server/log.h"
#include "server/master_cluster.h"
#include "server/master_jobs.h"
#include "server/master_listen.h"
#include "server/master_reload.h"
#include "server/master_state.h"
#include "server/master_workers.h"
#include "server/metrics.h"
#include "server/notify.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define TICK_MS 100
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

static const int handled[] = SRV_MASTER_SIGNALS;
#define NHANDLED (sizeof(handled) / sizeof(handled[0]))

/* --- listening sockets ---------------------------------------------------- */

/* --- workers ----------------------------------------------------------------- */

/* --- jobs ---------------------------------------------------------------------- */

#define JOB_NICE 10

static void reap(struct master *m)
{
	int status;
	pid_t pid;

	while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
		if (pid == m->job_pid) {
			srv_master_job_reaped(m, status);
			continue;
		}
		if (pid == m->cl_pid) {
			srv_master_cluster_died(m, status);
			continue;
		}
		for (int i = 0; i < SRV_SEATS; i++)
			if (m->seats[i].state == WPROC_RUNNING && m->seats[i].pid == pid) {
				m->seats[i].state = WPROC_NONE;
				m->seats[i].pid = pid;
				srv_master_worker_died(m, i, status);
				break;
			}
	}
	srv_super_set_workers_up(m->super, srv_master_workers_running(m));
}

/* --- stop, reload ------------------------------------------------------------- */

/* --- periodic checks ---------------------------------------------------------- */

static int heartbeats_ok(struct master *m, uint64_t now)
{
	int ok = 1;
	for (int i = 0; i < SRV_SEATS; i++) {
		struct wproc *s = &m->seats[i];
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
 * killed, so that drains end and seats come free. */
static void kill_overdue(struct master *m, uint64_t now)
{
	for (int i = 0; i < SRV_SEATS; i++) {
		struct wproc *s = &m->seats[i];
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
	rc = eng_db_prezero(&m->db, m->job_pid != 0);
	eng_io_set_role("master");
	return rc;
}

static void tick(struct master *m)
{
	uint64_t now = srv_mono_ms();
	int ok;

	for (int i = 0; i < SRV_SEATS && !m->stopping; i++)
		if (m->seats[i].state == WPROC_WAITING && now >= m->seats[i].respawn_at)
			srv_master_worker_spawn(m, i);
	if (m->cl && !m->cl_pid && !m->stopping && now >= m->cl_respawn_at)
		srv_master_cluster_spawn(m);
	if (m->ready_pending && atomic_load(&m->cl->role) != SRV_CL_CANDIDATE) {
		srv_notify("READY=1\nSTATUS=%s of group %s, term %" PRIu64,
			   srv_cl_role_name(atomic_load(&m->cl->role)), m->cfg.cluster,
			   atomic_load(&m->cl->term));
		m->ready_pending = 0;
	}
	ok = heartbeats_ok(m, now);
	kill_overdue(m, now);
	if (m->reloading && !m->stopping)
		srv_master_reload_step(m);
	/* Also while a job runs (a compaction's appends need zeros most),
	 * but then without making the reserve file: a compaction short of
	 * space deletes it, and that space is for its new file. */
	if (!m->stopping && !eng_sync_poisoned(&m->db) &&
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
		srv_master_job_maybe_start(m);
	}
	if (!m->stopping && eng_sync_poisoned(&m->db)) {
		srv_error("an fdatasync of database.bin failed: writes since the last good "
			  "sync may be lost by the kernel; restarting through recovery");
		m->reexec = 1;
		srv_master_stop(m, "fsync failure");
	}
	if (m->stopping && now >= m->stop_deadline && srv_master_workers_running(m)) {
		srv_warn("graceful stop timed out (%d s past --shutdown-timeout %d s): "
			 "killing %d worker(s)", DRAIN_KILL_SLACK_MS / 1000,
			 m->cfg.shutdown_timeout_s, srv_master_workers_running(m));
		srv_master_workers_signal(m, SIGKILL);
		m->stop_deadline = UINT64_MAX;
	}
	if (m->watchdog_usec && ok && srv_master_workers_running(m) >= m->cfg.workers &&
	    now - m->last_watchdog_ms >= m->watchdog_usec / 2000) {
		srv_notify("WATCHDOG=1");
		m->last_watchdog_ms = now;
	}
	if (!m->stopping && now - m->last_status_ms >= STATUS_EVERY_MS) {
		struct eng_stats st;
		eng_stats(&m->db, &st);
		srv_notify("STATUS=%d/%d workers up; %" PRIu64 " keys; log %" PRIu64 " bytes",
			   srv_master_workers_running(m), m->cfg.workers, st.keys, st.log_bytes);
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
	if ((rc = srv_master_listen_pass(m)) < 0) {
		srv_error("keeping the listening sockets for the re-exec: %s", strerror(-rc));
		return;
	}
	execv("/proc/self/exe", m->argv);
	srv_error("execv(/proc/self/exe): %s", strerror(errno));
}

/* Everything before the loop: the token, the sockets, recovery, the
 * shared regions, the workers. 0, or the exit status to return. */
static int master_start(struct master *m)
{
	if (srv_master_load_token(m, &m->cfg) < 0)
		return EXIT_USAGE;
	if (srv_master_listen_adopt(m) < 0)
		return 1;
	if (m->cfg.access_log[0] && (m->access_fd = srv_access_open(m->cfg.access_log)) < 0) {
		srv_error("--access-log: cannot open %s: %s", m->cfg.access_log,
			  strerror(-m->access_fd));
		return EXIT_USAGE;
	}
	if (m->cfg.cluster[0]) {
		char why[PATH_MAX + 256];
		int rc;

		if ((rc = srv_cluster_prepare(&m->cfg, why, sizeof(why)))) {
			srv_error("cluster: %s", why);
			return rc == -EINVAL ? EXIT_USAGE : 1;
		}
	}
	if (open_store(m) < 0)
		return 1;
	m->store_open = 1;
	if (m->cfg.cluster[0]) {
		if (!(m->cl = srv_cluster_shm_new(eng_top_version(&m->db)))) {
			srv_error("cluster: shared memory: %s", strerror(errno));
			return 1;
		}
		m->seats[CL_SEAT].state = WPROC_CLUSTER;
	}
	if (srv_master_listen_open(m) < 0 || srv_super_create(&m->super) < 0 ||
	    srv_metrics_create(&m->metrics) < 0)
		return 1;
	for (int i = 0; i < m->cfg.workers; i++)
		srv_master_worker_spawn(m, i);
	if (m->cl)
		srv_master_cluster_spawn(m);
	m->watchdog_usec = srv_notify_watchdog_usec();
	if (m->cl)
		m->ready_pending = 1; /* a member is ready once it has a role (tick) */
	else
		srv_notify("READY=1\nSTATUS=%d workers up", m->cfg.workers);
	srv_info("caskd ready: %d workers, fsync %s, data in %s", m->cfg.workers,
		 srv_config_fsync_name(m->cfg.fsync), m->cfg.data_dir);
	return 0;
}

/* Was the flag set? It is cleared for the next signal. */
static int taken(volatile sig_atomic_t *flag)
{
	if (!*flag)
		return 0;
	*flag = 0;
	return 1;
}

static int any_signal(void)
{
	return got_chld || got_term || got_quit || got_hup || got_alrm || got_usr1 || got_usr2;
}

/* The main loop: sleep until a signal, act on each flag it set, until a
 * stop has no worker and no job left. */
static void master_loop(struct master *m, const sigset_t *wait_mask)
{
	while (!(m->stopping && srv_master_workers_running(m) == 0 && !m->job_pid &&
		 !m->cl_pid)) {
		if (!any_signal())
			sigsuspend(wait_mask);
		if (taken(&got_chld))
			reap(m);
		if (taken(&got_quit)) {
			srv_info("SIGQUIT: stopping now");
			srv_master_workers_signal(m, SIGKILL);
			m->stopping = 1;
		}
		if (taken(&got_term))
			srv_master_stop(m, "SIGTERM/SIGINT");
		if (taken(&got_usr1))
			srv_master_job_maybe_start(m);
		if (taken(&got_usr2) || m->index_lost) {
			m->index_lost = 0;
			m->reexec = 1;
			srv_master_stop(m, "shared index lost");
		}
		if (taken(&got_hup))
			srv_master_reload(m);
		if (taken(&got_alrm))
			tick(m);
	}
}

/* After the loop: the file trimmed and the index saved for a fast next
 * start, unless the stop is for a restart through recovery. */
static void master_finish(struct master *m)
{
	int rc;

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
}

int srv_master_run(const struct srv_config *cfg, int argc, char **argv)
{
	struct master *m = calloc(1, sizeof(*m));
	sigset_t orig, wait_mask;
	int rc;

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
	if ((rc = master_start(m)) != 0)
		goto out_close;
	wait_mask = orig;
	for (size_t i = 0; i < NHANDLED; i++)
		sigdelset(&wait_mask, handled[i]);
	master_loop(m, &wait_mask);
	master_finish(m);
	if (m->reexec)
		reexec(m); /* returns only on failure */
	srv_info("stopped");
	rc = m->reexec ? 1 : m->exit_code;
out_close:
	if (m->metrics)
		srv_metrics_destroy(m->metrics);
	if (m->super)
		srv_super_destroy(m->super);
	if (m->store_open)
		eng_db_close(&m->db);
	if (m->access_fd >= 0)
		close(m->access_fd);
out_free:
	free(m);
	return rc;
}
