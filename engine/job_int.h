/* engine/job_int.h — what engine/job.c, the owner of the job records
 * (sh->jobs[], job_seq, job_request), offers the job process
 * (engine/rebuild.c): it writes its record only through these, so that
 * the master and the job record stages and outcomes, and count them, in
 * one place. Nothing outside engine/ includes it.
 */
#ifndef CASKD_ENGINE_JOB_INT_H
#define CASKD_ENGINE_JOB_INT_H

#include "engine/job.h"
#include "engine/shared.h"

#include <stdint.h>

/* Job process: records that job id reached stage st; from
 * ENG_STAGE_RENAMING on, f, bytes_before and keys are what the master
 * needs (and reports) if it must finish the swap for it. 0, or -errno
 * when the record could not be written (the job must not take a step the
 * master could not then tell it took). */
int eng_job_record_stage(struct eng_shared *sh, uint64_t id,
			 enum eng_job_stage st, const struct eng_flip *f,
			 uint64_t bytes_before, uint64_t keys);
/* Job process: its pace and progress now (the fields of struct
 * eng_job_info of the same names). */
struct eng_job_progress {
	enum eng_pace_mode mode;
	uint64_t rate_limit, rate, done, total, eta_ms;
};
void eng_job_record_progress(struct eng_shared *sh, uint64_t id,
			     const struct eng_job_progress *p);
/* Job process: records its own outcome (rc 0 or -errno, err naming what
 * failed) and counts it. */
void eng_job_record_outcome(struct eng_shared *sh, uint64_t id, int rc,
			    const char *err, uint64_t bytes_before,
			    uint64_t bytes_after, uint64_t keys);

#endif
