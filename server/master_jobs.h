/* server/master_jobs.h — the master's background job process.
 *
 * Owns: m->job_pid and m->job_id: the one job process (a compaction
 * or a table rebuild, engine/job.h) the master forks at a time, at a
 * lower priority; reaping it, and undoing or finishing what one that
 * died left (the engine's job records say what). Master process only.
 */
#ifndef CASKD_SERVER_MASTER_JOBS_H
#define CASKD_SERVER_MASTER_JOBS_H

#include "server/master_state.h"

/* The job process was reaped with status. */
void srv_master_job_reaped(struct master *m, int status);
/* Starts the next job the engine has queued, unless one runs or the
 * master stops. */
void srv_master_job_maybe_start(struct master *m);

#endif
