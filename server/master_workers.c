/* server/master_workers.c — the master's worker processes. (see master_workers.h).
 */
#include "server/master_workers.h"

#include "engine/durable.h"
#include "engine/errors.h"
#include "server/clock.h"
#include "server/log.h"
#include "server/metrics.h"
#include "server/notify.h"
#include "server/worker.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define FAST_DEATH_MS 1000      /* dying sooner than this counts as a crash loop */
#define BACKOFF_FIRST_MS 100
#define BACKOFF_MAX_MS 10000

int srv_master_workers_running(const struct master *m)
{
	int n = 0;
	for (int i = 0; i < SRV_SEATS; i++)
		n += m->seats[i].state == WPROC_RUNNING;
	return n;
}

/* Forks the worker of seat; on failure its respawn is due shortly.
 * 0 or -errno. */
int srv_master_worker_spawn(struct master *m, int seat)
{
	struct wproc *s = &m->seats[seat];
	struct srv_worker_args a = {
		.cfg = &m->cfg, .db = &m->db, .super = m->super, .metrics = m->metrics,
		.fds = m->fds, .nfds = m->nfds, .access_fd = m->access_fd,
		.seat = seat, .master = getpid(),
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
	eng_db_set_worker(&m->db, seat, pid);
	srv_super_started(m->super, seat, pid);
	srv_super_set_workers_up(m->super, srv_master_workers_running(m));
	srv_debug("worker %d started, pid %d", seat, (int)pid);
	return 0;
}

/* A free worker seat, or -ENOSPC. */
int srv_master_worker_free_seat(const struct master *m)
{
	for (int i = 0; i < SRV_SEATS; i++)
		if (m->seats[i].state == WPROC_NONE)
			return i;
	return -ENOSPC;
}

static void describe_exit(int seat, pid_t pid, int status, char *buf, size_t n)
{
	if (WIFEXITED(status))
		snprintf(buf, n, "worker %d (pid %d) exited with status %d", seat,
			 (int)pid, WEXITSTATUS(status));
	else
		snprintf(buf, n, "worker %d (pid %d) killed by signal %d (%s)", seat,
			 (int)pid, WTERMSIG(status), strsignal(WTERMSIG(status)));
}

void srv_master_worker_died(struct master *m, int seat, int status)
{
	struct wproc *s = &m->seats[seat];
	uint64_t now = srv_mono_ms(), delay;
	char what[160];
	int rc, was_ready;

	describe_exit(seat, s->pid, status, what, sizeof(what));
	eng_sync_reap(&m->db, s->pid);
	if ((rc = eng_db_reap_worker(&m->db, seat))) {
		srv_error("%s; cleaning up after it failed (%s): restarting through recovery",
			  what, eng_strerror(rc));
		m->index_lost = 1; /* the main loop acts on it as on SIGUSR2 */
	}
	was_ready = srv_super_ready(m->super, seat);
	srv_super_gone(m->super, seat);
	srv_metrics_retire_seat(m->metrics, seat);
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
			   seat, delay);
	s->state = WPROC_WAITING;
	s->pid = 0;
	s->respawn_at = now + delay;
}

void srv_master_workers_signal(struct master *m, int sig)
{
	for (int i = 0; i < SRV_SEATS; i++)
		if (m->seats[i].state == WPROC_RUNNING)
			kill(m->seats[i].pid, sig);
}
