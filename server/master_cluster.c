/* server/master_cluster.c — the master's cluster process (see
 * master_cluster.h).
 */
#include "server/master_cluster.h"

#include "engine/durable.h"
#include "engine/errors.h"
#include "engine/failpoint.h"
#include "engine/io.h"
#include "server/clock.h"
#include "server/cluster.h"
#include "server/log.h"
#include "server/master_reload.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#define CL_RESPAWN_MS 500

void srv_master_cluster_spawn(struct master *m)
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
		if ((rc = eng_db_attach(&m->db, CL_SEAT))) {
			srv_error("opening %s: %s", m->db.path, eng_strerror(rc));
			_exit(1);
		}
		_exit(srv_cluster_main(&a));
	}
	m->cl_pid = pid;
	eng_db_set_worker(&m->db, CL_SEAT, pid);
}

void srv_master_cluster_died(struct master *m, int status)
{
	pid_t pid = m->cl_pid;
	int rc;

	m->cl_pid = 0;
	eng_sync_reap(&m->db, pid);
	if ((rc = eng_db_reap_worker(&m->db, CL_SEAT))) {
		srv_error("the cluster process died mid-write and cleaning up failed (%s): "
			  "restarting through recovery", eng_strerror(rc));
		m->index_lost = 1; /* the main loop acts on it as on SIGUSR2 */
	}
	if (WIFEXITED(status) && WEXITSTATUS(status) == SRV_CLUSTER_EXIT_REFUSED) {
		m->exit_code = EXIT_USAGE;
		srv_master_stop(m, "the cluster refused this member");
		return;
	}
	if (WIFEXITED(status) && WEXITSTATUS(status) == SRV_CLUSTER_EXIT_COPY && !m->stopping) {
		m->reexec = 1;
		srv_master_stop(m, "a full copy of the primary's data waits to be installed");
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
