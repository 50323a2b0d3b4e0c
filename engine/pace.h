/* engine/pace.h — how fast a compaction may go: the latency histogram the
 * workers fill and the controller that turns it into a byte rate.
 *
 * Owns: the bucket layout of the request-latency histogram (the workers
 * write it, server/metrics.c, one block per seat; the job reads the sum),
 * its quantiles, and the rate controller. All of it is pure: no clock, no
 * sleep, no shared memory (engine/pacer.c drives it from the job), so the
 * unit tests feed it windows by hand.
 *
 * The controller: a baseline quantile per class of request (reads,
 * writes), taken while the job copies nothing (a probe), then a window at
 * a time the same quantile while it runs. A class over CUT x its baseline
 * halves the rate; every class within GROW x lets it grow by a quarter; in
 * between it holds; no class with enough requests to judge (no load)
 * doubles it. The rate stays in [floor, ceiling]; at the ceiling the job
 * runs unpaced. Multiplicative both ways, as RocksDB's auto-tuned rate
 * limiter: the rate a load allows spans two orders of magnitude, and a
 * step of a fixed size would take minutes to cross it.
 */
#ifndef CASKD_ENGINE_PACE_H
#define CASKD_ENGINE_PACE_H

#include <stdint.h>

enum eng_lat_class {
	ENG_LAT_READ,    /* GET, HEAD of a key */
	ENG_LAT_WRITE,   /* PUT, DELETE, incr, batch */
	ENG_LAT_CLASSES
};

/* Buckets: everything under 2^ENG_LAT_MIN_SHIFT ns (16 us) in bucket 0,
 * then ENG_LAT_SUB per doubling (steps of 19%: a 2x target is several
 * buckets away) up to about 8.6 s, the rest in the last. */
#define ENG_LAT_MIN_SHIFT 14
#define ENG_LAT_SUB_BITS 2
#define ENG_LAT_SUB (1u << ENG_LAT_SUB_BITS)
#define ENG_LAT_OCTAVES 20
#define ENG_LAT_BUCKETS (2 + ENG_LAT_OCTAVES * ENG_LAT_SUB)

struct eng_lat_hist {
	uint64_t n[ENG_LAT_CLASSES][ENG_LAT_BUCKETS];
};

/* Where the job reads the histograms summed over every worker (counts
 * since the start: the job takes differences). Filled by the server. */
struct eng_lat_source {
	void (*read)(void *arg, struct eng_lat_hist *out);
	void *arg;
};

static inline unsigned eng_lat_bucket(uint64_t ns)
{
	unsigned e, b;

	if (ns < (1ull << ENG_LAT_MIN_SHIFT))
		return 0;
	e = 63u - (unsigned)__builtin_clzll(ns);
	b = 1 + (e - ENG_LAT_MIN_SHIFT) * ENG_LAT_SUB +
	    (unsigned)((ns >> (e - ENG_LAT_SUB_BITS)) & (ENG_LAT_SUB - 1));
	return b < ENG_LAT_BUCKETS ? b : ENG_LAT_BUCKETS - 1;
}

/* The upper bound of bucket b in ns (UINT64_MAX for the last). */
uint64_t eng_lat_bucket_top_ns(unsigned b);

/* The q quantile (0 < q < 1) of class c in the window between two
 * readings (then - now, counts only grow; a count that went down, a
 * worker's block retired between them, counts as 0): the top of the
 * bucket it falls in, in ns; *samples the window's requests of c. */
uint64_t eng_lat_quantile(const struct eng_lat_hist *then,
			  const struct eng_lat_hist *now, enum eng_lat_class c,
			  double q, uint64_t *samples);

/* --- the controller ------------------------------------------------------ */

/* The quantile judged: the goal is about p99. */
#define ENG_PACE_QUANTILE 0.99
/* A class judges a window only with this many requests in it: p99 of
 * fewer is its maximum. */
#define ENG_PACE_MIN_SAMPLES 200
/* Cut when a class's p99 passes 1.5x its baseline, grow while within
 * 1.2x (one bucket): the goal is 2x over a whole run, so the set point
 * stays under it with room for the windows that overshoot. */
#define ENG_PACE_CUT_PCT 150
#define ENG_PACE_GROW_PCT 120
/* A rate never goes under this: a 1 GiB file ends within about four
 * minutes under any load. */
#define ENG_PACE_FLOOR_BYTES (4ull << 20)
/* At or above this the job is not held back at all: above what the copy
 * reaches on the machines measured (250-300 MB/s, docs/benchmarks.md). */
#define ENG_PACE_CEILING_BYTES (1ull << 30)
/* Where a job starts once it has seen load: a tenth of the copy's
 * unpaced speed; the first windows move it within a second or two. */
#define ENG_PACE_START_BYTES (32ull << 20)

enum eng_pace_mode {
	ENG_PACE_AUTO,   /* adapt to the latency the job causes */
	ENG_PACE_FIXED,  /* a rate the operator set */
	ENG_PACE_OFF,    /* unpaced */
};

/* What the job is given (server/master_jobs.c: --compaction-rate). */
struct eng_pace_cfg {
	enum eng_pace_mode mode;
	uint64_t fixed_rate;          /* ENG_PACE_FIXED: bytes per second */
	struct eng_lat_source src;    /* ENG_PACE_AUTO: the workers' latency */
};

/* "auto", "fixed", "off" */
const char *eng_pace_mode_name(enum eng_pace_mode m);

/* What the controller did with a window. */
enum eng_pace_verdict {
	ENG_PACE_HOLD,
	ENG_PACE_UP,     /* every judging class within GROW */
	ENG_PACE_DOWN,   /* a class over CUT */
	ENG_PACE_IDLE,   /* no class had enough requests: no load */
	ENG_PACE_PROBE,  /* a class has load but no baseline: measure one */
};

struct eng_pace {
	uint64_t rate;                        /* bytes per second now */
	uint64_t floor, ceiling;
	uint64_t base_ns[ENG_LAT_CLASSES];    /* 0: no baseline */
};

/* A controller at rate `start` (clamped to [floor, ceiling]). */
void eng_pace_init(struct eng_pace *p, uint64_t start, uint64_t floor,
		   uint64_t ceiling);
/* A probe's window: classes with enough requests get it as their
 * baseline; the others keep theirs. A job that ran unpaced (no load
 * seen) and now has a baseline goes to ENG_PACE_START_BYTES. */
void eng_pace_baseline(struct eng_pace *p, const uint64_t q_ns[ENG_LAT_CLASSES],
		       const uint64_t samples[ENG_LAT_CLASSES]);
/* One window while the job ran: adapts p->rate and says why. */
enum eng_pace_verdict eng_pace_adapt(struct eng_pace *p,
				     const uint64_t q_ns[ENG_LAT_CLASSES],
				     const uint64_t samples[ENG_LAT_CLASSES]);
/* Whether the rate holds the job back at all. */
static inline int eng_pace_limited(const struct eng_pace *p)
{
	return p->rate < p->ceiling;
}

#endif
