/* server/master_jobs.c — the master's background job process. (see master_jobs.h).
 */
#include "server/master_jobs.h"

#include "engine/durable.h"
#include "engine/errors.h"
#include "engine/failpoint.h"
#include "engine/io.h"
#include "engine/job.h"
#include "server/log.h"
#include "server/metrics.h"

#include <sys/prctl.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define JOB_NICE 10

void srv_master_job_reaped(struct master *m, int status)
{
	uint64_t id = eng_job_reaped(&m->db, m->job_pid, status);

	srv_debug("job %" PRIu64 " (pid %d) ended", id, (int)m->job_pid);
	m->job_pid = 0;
	m->job_id = 0;
}

/* The job's latency source: the workers' key read and write durations,
 * from the metrics region the master mapped before it forked us. */
static void read_latency(void *arg, struct eng_lat_hist *out)
{
	srv_metrics_latency(arg, out);
}

/* The job process: a child like a worker, that runs one job and exits. */
static int job_child(struct master *m, uint64_t id)
{
	static const int handled[] = SRV_MASTER_SIGNALS;
	struct eng_pace_cfg pace = {
		.mode = (enum eng_pace_mode)m->cfg.compaction_pace,
		.fixed_rate = m->cfg.compaction_rate,
		.src = { read_latency, m->metrics },
	};
	char role[32];
	int rc;

	if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0)
		return 1;
	for (size_t i = 0; i < sizeof(handled) / sizeof(handled[0]); i++)
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
	rc = eng_job_run(&m->db, id, &pace);
	eng_io_crash_report();
	return rc;
}

void srv_master_job_maybe_start(struct master *m)
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
