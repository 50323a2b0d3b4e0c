/* engine/job.h — long jobs: compaction and table rebuilds.
 *
 * Owns: the job records every process can read (GET /admin/jobs and
 * /admin/jobs/{id}: the newest ENG_JOB_LIST_MAX are kept),
 * asking for a compaction (POST /admin/compact, or the master's policy),
 * and the master's side of a job's life: what to start next, recording
 * the process that runs it, cleaning up after one that died at any
 * step, and freeing the memory of tables no reader is in any more. The
 * work itself runs in a process of its own that the master forks
 * (eng_job_run, engine/rebuild.c), never in a request, never on a loop.
 *
 * One job runs at a time. A compaction asked for while one is pending or
 * running gets that job's id.
 */
#ifndef CASKD_ENGINE_JOB_H
#define CASKD_ENGINE_JOB_H

#include "engine/pace.h"
#include "engine/store.h"

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

enum eng_job_kind {
	ENG_JOB_NONE = 0,
	ENG_JOB_COMPACT,  /* rewrite database.bin with only live records */
	ENG_JOB_RESIZE,   /* rebuild the table bigger, smaller, or without
			   * DEAD slots */
};

enum eng_job_state {
	ENG_JOB_PENDING,  /* asked for; the master forks it soon */
	ENG_JOB_RUNNING,
	ENG_JOB_DONE,
	ENG_JOB_FAILED,
};

/* How far a job got: what the master must undo or finish if it dies. */
enum eng_job_stage {
	ENG_STAGE_START,
	ENG_STAGE_COPY,      /* compaction: copying live records */
	ENG_STAGE_CATCHUP,   /* replaying what was written meanwhile */
	ENG_STAGE_FROZEN,    /* new writes held off for the swap */
	/* compaction: the flip is recorded and the rename may have been
	 * made; whether it was is read from disk (the file id of
	 * database.bin), never from a stage written after the fact */
	ENG_STAGE_RENAMING,
	ENG_STAGE_RENAMED,   /* compaction: the new file is database.bin */
	ENG_STAGE_FLIPPED,   /* the new table (and file) are current */
};

#define ENG_JOB_ERROR_LEN 160
/* Job records kept: older ones are overwritten by new jobs. */
#define ENG_JOB_LIST_MAX 16

struct eng_job_info {
	uint64_t id;
	enum eng_job_kind kind;
	enum eng_job_state state;
	enum eng_job_stage stage;
	uint64_t started_ms, finished_ms;   /* unix ms; 0 if not yet */
	/* database.bin at the job's cut (0 until then) and, once it is
	 * done, the file it made; a failed job made none: 0 */
	uint64_t bytes_before, bytes_after;
	uint64_t keys;                      /* in the new table, once done */
	/* A compaction's pace (engine/pace.h): its mode, the rate it is
	 * held to (0: not held back), the rate it made over the last
	 * moments (bytes/s; over the whole job once it ended), bytes done of
	 * the total it expects (0 and 0 until it measured them), and the ms
	 * it expects to take still (UINT64_MAX: unknown or ended). */
	enum eng_pace_mode pace_mode;
	uint64_t rate_limit, rate, bytes_done, bytes_total, eta_ms;
	char error[ENG_JOB_ERROR_LEN];
};

/* When the master starts a compaction by itself: garbage (log bytes not
 * holding live records) past pct percent of a log of at least min_bytes,
 * as Redis's auto-aof-rewrite-percentage / -min-size and Bitcask's merge
 * triggers. pct 0: never. */
struct eng_compact_policy {
	unsigned garbage_pct;
	uint64_t min_bytes;
};

const char *eng_job_kind_name(enum eng_job_kind k);
const char *eng_job_state_name(enum eng_job_state s);

/* Any process: asks for a compaction. 0 and *id: a new job, or the one
 * already pending or running. */
int eng_job_request_compact(struct eng_db *db, uint64_t *id);
/* Any process: 0 and *out, or -ENOENT for an id not (or no longer) kept. */
int eng_job_get(struct eng_db *db, uint64_t id, struct eng_job_info *out);
/* Any process: the jobs kept, newest first, into out[0..max): how many,
 * or -errno. */
int eng_job_list(struct eng_db *db, struct eng_job_info *out, size_t max);

/* Master: the job to start now, if any (a compaction asked for, a table
 * rebuild writers want, or a compaction the policy calls for): 1 and *id,
 * 0 for none. Records it as pending. */
int eng_job_next(struct eng_db *db, const struct eng_compact_policy *p,
		 uint64_t *id);
/* Master: job id runs in process pid now (or could not be forked: pid
 * -errno, and the job fails). */
void eng_job_started(struct eng_db *db, uint64_t id, pid_t pid);
/* Master: the process of a job exited with this wait status. If the job
 * did not finish its own record it died: what it began is undone, or
 * finished where only the flip was left. Returns the job's id, 0 if pid
 * ran no job. */
uint64_t eng_job_reaped(struct eng_db *db, pid_t pid, int status);
/* Master, from its timer: frees the pages of tables flipped away from
 * once no process reads them. */
void eng_job_reclaim(struct eng_db *db);

/* The job process (forked by the master, attached to ENG_JOB_SEAT): runs
 * job id, a compaction at the pace `pace` says (NULL: unpaced; a table
 * rebuild is never paced: writers may be waiting for it). Returns the
 * process's exit status (0 done, 1 failed). */
int eng_job_run(struct eng_db *db, uint64_t id, const struct eng_pace_cfg *pace);

#endif
