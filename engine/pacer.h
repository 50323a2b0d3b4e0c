/* engine/pacer.h — a compaction's pace, in its job process.
 *
 * Owns: the clock side of pacing (engine/pace.h is the pure controller):
 * reading the workers' latency a window at a time, the probes that take
 * a baseline while the job copies nothing, the sleeps that hold the copy
 * to the rate, and the progress the job record shows (rate, bytes done of
 * the total, time left). Only engine/rebuild.c calls it, from the job
 * process; it holds no lock while it sleeps, takes job_mtx only to
 * write the record, and changes nothing a crash of the job at any moment
 * would have to undo.
 */
#ifndef CASKD_ENGINE_PACER_H
#define CASKD_ENGINE_PACER_H

#include "engine/pace.h"
#include "engine/shared.h"

#include <stdint.h>

struct eng_pacer {
	struct eng_shared *sh;
	uint64_t id;
	enum eng_pace_mode mode;
	struct eng_lat_source src;
	struct eng_pace ctl;
	uint64_t min_rate;          /* the catch-up's floor (bytes/s) */
	/* the window being measured */
	struct eng_lat_hist win;
	uint64_t win_ns;
	uint64_t probe_ns;          /* the next probe is due then */
	/* the schedule: epoch_bytes done since epoch_ns at epoch_rate */
	uint64_t epoch_ns, epoch_bytes, epoch_rate;
	uint64_t unticked;          /* bytes since the last tick */
	/* progress */
	uint64_t start_ns;
	uint64_t from, cut;         /* the copy covers [from, cut) ... */
	uint64_t done;              /* ... and what was written after it */
	uint64_t rep_ns, rep_done;
	uint64_t made;              /* bytes/s measured, smoothed */
};

/* Before the job's cut: a pacer for job id (cfg NULL: unpaced) and, in
 * ENG_PACE_AUTO, a first probe of the latency without the job. */
void eng_pacer_start(struct eng_pacer *p, struct eng_shared *sh, uint64_t id,
		     const struct eng_pace_cfg *cfg);
/* The copy covers [from, cut) of database.bin; the catch-up whatever is
 * written after cut. */
void eng_pacer_cut(struct eng_pacer *p, uint64_t from, uint64_t cut);
/* A catch-up pass begins; the writers have appended up to written_to:
 * from now on the job runs at least CATCHUP_OUTRUN times as fast as
 * they appended since its start, so the passes shrink and end. */
void eng_pacer_catchup(struct eng_pacer *p, uint64_t written_to);
/* bytes more were done: adapts, reports and sleeps as the pace says. */
void eng_pacer_done(struct eng_pacer *p, uint64_t bytes);
/* The job ended its copying: the record shows its average rate. */
void eng_pacer_end(struct eng_pacer *p);

#endif
