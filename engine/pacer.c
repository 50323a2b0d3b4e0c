/* engine/pacer.c — a compaction's pace, in its job process (see pacer.h).
 *
 * The copy reports each record it scanned (and the catch-up each chunk it
 * copied); every TICK_BYTES the pacer looks at the clock: it closes a
 * latency window when one is due and lets the controller (pace.c) adapt
 * the rate, writes the progress to the job record a few times a second,
 * and, if the job is ahead of its schedule at that rate, sleeps. Sleeps
 * are cut in slices so windows go on being judged while it waits.
 */
#include "engine/pacer.h"

#include "engine/job_int.h"

#include <errno.h>
#include <stdatomic.h>
#include <string.h>
#include <time.h>

#define NS_PER_S 1000000000ull
#define MS(n) ((uint64_t)(n) * 1000000ull)
/* The copy looks at the clock this often: at the unpaced 250-300 MB/s
 * about once a millisecond, so no burst between two looks is long next
 * to the latencies judged. */
#define TICK_BYTES (256u << 10)
/* A window closes after WINDOW once a class has enough requests to
 * judge, or after WINDOW_MAX whatever it has (light load: judged idle). */
#define WINDOW_NS MS(200)
#define WINDOW_MAX_NS MS(1000)
/* The record is written this often: a poller sees a fresh rate and ETA. */
#define REPORT_NS MS(250)
/* The longest single sleep: the windows and the record go on meanwhile. */
#define SLEEP_SLICE_NS MS(50)
/* Behind schedule by more than this (a slow disk, a probe): the schedule
 * starts again from now rather than letting the job burst to catch up. */
#define MAX_DEBT_NS MS(100)
/* A probe: the job copies nothing for PROBE_MIN..PROBE_MAX while it
 * reads the latency of the load alone; one that sees fewer than
 * PROBE_IDLE_SAMPLES requests in its first PROBE_IDLE found no load and
 * ends there (a test's few requests cost the job 60 ms, not half a
 * second). */
#define PROBE_STEP_NS MS(20)
#define PROBE_IDLE_NS MS(60)
#define PROBE_IDLE_SAMPLES 20
#define PROBE_MIN_NS MS(100)
#define PROBE_MAX_NS MS(500)
/* While held back, a new baseline this often: the load changes, and a
 * baseline taken under a lighter one would hold the job at its floor. */
#define REPROBE_NS MS(30000)
/* The catch-up runs at least this many times as fast as the writers
 * append, so each pass is shorter than the last. */
#define CATCHUP_OUTRUN 2

static uint64_t mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * NS_PER_S + (uint64_t)ts.tv_nsec;
}

/* Sleeps until the monotonic clock reads ns; a signal does not cut it
 * short (an absolute deadline is simply slept towards again). */
static void sleep_until(uint64_t ns)
{
	struct timespec ts = { (time_t)(ns / NS_PER_S), (long)(ns % NS_PER_S) };
	int rc;

	do
		rc = clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL);
	while (rc == EINTR);
	/* any other error (none is expected): no sleep; pacing is best effort */
}

static void read_lat(const struct eng_pacer *p, struct eng_lat_hist *h)
{
	if (p->src.read)
		p->src.read(p->src.arg, h);
	else
		memset(h, 0, sizeof(*h));
}

static void quantiles(const struct eng_lat_hist *then, const struct eng_lat_hist *now,
		      uint64_t q[ENG_LAT_CLASSES], uint64_t n[ENG_LAT_CLASSES])
{
	for (int c = 0; c < ENG_LAT_CLASSES; c++)
		q[c] = eng_lat_quantile(then, now, (enum eng_lat_class)c, ENG_PACE_QUANTILE, &n[c]);
}

static int judgeable(const uint64_t n[ENG_LAT_CLASSES])
{
	for (int c = 0; c < ENG_LAT_CLASSES; c++)
		if (n[c] >= ENG_PACE_MIN_SAMPLES)
			return 1;
	return 0;
}

/* The rate the copy is held to now, 0 for none. */
static uint64_t limit(const struct eng_pacer *p)
{
	uint64_t lim = 0;

	if (p->mode == ENG_PACE_FIXED)
		lim = p->ctl.rate;
	else if (p->mode == ENG_PACE_AUTO && eng_pace_limited(&p->ctl))
		lim = p->ctl.rate;
	if (lim && lim < p->min_rate)
		lim = p->min_rate;
	return lim;
}

static void restart_schedule(struct eng_pacer *p, uint64_t now)
{
	p->epoch_ns = now;
	p->epoch_bytes = 0;
	p->epoch_rate = limit(p);
}

/* The load alone: the job copies nothing until the window is judged. */
static void probe(struct eng_pacer *p)
{
	struct eng_lat_hist h0, h;
	uint64_t t0 = mono_ns(), now = t0, q[ENG_LAT_CLASSES], n[ENG_LAT_CLASSES];

	read_lat(p, &h0);
	for (;;) {
		sleep_until(now + PROBE_STEP_NS);
		now = mono_ns();
		read_lat(p, &h);
		quantiles(&h0, &h, q, n);
		if (now - t0 >= PROBE_IDLE_NS && n[ENG_LAT_READ] + n[ENG_LAT_WRITE] < PROBE_IDLE_SAMPLES)
			break;
		if ((now - t0 >= PROBE_MIN_NS && judgeable(n)) || now - t0 >= PROBE_MAX_NS)
			break;
	}
	eng_pace_baseline(&p->ctl, q, n);
	p->probe_ns = now + REPROBE_NS;
	p->win = h;
	p->win_ns = now;
	restart_schedule(p, now);
}

/* Closes the latency window if it is due, and adapts the rate. */
static void window(struct eng_pacer *p, uint64_t now)
{
	struct eng_lat_hist h;
	uint64_t q[ENG_LAT_CLASSES], n[ENG_LAT_CLASSES];
	enum eng_pace_verdict v;

	if (p->mode != ENG_PACE_AUTO || now - p->win_ns < WINDOW_NS)
		return;
	read_lat(p, &h);
	quantiles(&p->win, &h, q, n);
	if (!judgeable(n) && now - p->win_ns < WINDOW_MAX_NS)
		return; /* too few requests yet: the window goes on */
	p->win = h;
	p->win_ns = now;
	v = eng_pace_adapt(&p->ctl, q, n);
	if (v == ENG_PACE_PROBE || (eng_pace_limited(&p->ctl) && now >= p->probe_ns))
		probe(p);
}

static void record(struct eng_pacer *p, uint64_t eta_ms)
{
	uint64_t total = p->cut - p->from, written = atomic_load(&p->sh->durable_end);

	/* the catch-up copies what is written after the cut, too */
	if (written > p->cut)
		total += written - p->cut;
	if (total < p->done)
		total = p->done;
	if (eta_ms == 0 && p->made && p->cut)
		eta_ms = (total - p->done) * 1000 / p->made;
	else if (eta_ms == 0 && p->cut)
		eta_ms = UINT64_MAX;
	eng_job_record_progress(p->sh, p->id, &(struct eng_job_progress){
		.mode = p->mode, .rate_limit = limit(p), .rate = p->made,
		.done = p->done, .total = p->cut ? total : 0,
		.eta_ms = p->cut ? eta_ms : UINT64_MAX,
	});
}

static void report(struct eng_pacer *p, uint64_t now)
{
	uint64_t made;

	if (now - p->rep_ns < REPORT_NS)
		return;
	made = (p->done - p->rep_done) * NS_PER_S / (now - p->rep_ns);
	/* smoothed over the last reports: a rate, not a jitter */
	p->made = p->made ? (p->made + made) / 2 : made;
	p->rep_ns = now;
	p->rep_done = p->done;
	record(p, 0);
}

/* Ahead of the schedule: sleeps (a slice at most) and says so. */
static int wait_schedule(struct eng_pacer *p, uint64_t now)
{
	uint64_t lim = limit(p), due;

	if (lim != p->epoch_rate) {
		restart_schedule(p, now);
		return 0;
	}
	if (!lim)
		return 0;
	due = p->epoch_ns + (uint64_t)((unsigned __int128)p->epoch_bytes * NS_PER_S / lim);
	if (due + MAX_DEBT_NS < now) {
		restart_schedule(p, now);
		return 0;
	}
	if (due <= now)
		return 0;
	sleep_until(due - now > SLEEP_SLICE_NS ? now + SLEEP_SLICE_NS : due);
	return 1;
}

void eng_pacer_start(struct eng_pacer *p, struct eng_shared *sh, uint64_t id,
		     const struct eng_pace_cfg *cfg)
{
	uint64_t now = mono_ns();

	memset(p, 0, sizeof(*p));
	p->sh = sh;
	p->id = id;
	p->mode = cfg ? cfg->mode : ENG_PACE_OFF;
	if (cfg)
		p->src = cfg->src;
	p->start_ns = p->rep_ns = p->win_ns = now;
	if (p->mode == ENG_PACE_FIXED)
		eng_pace_init(&p->ctl, cfg->fixed_rate, 1, UINT64_MAX);
	else
		eng_pace_init(&p->ctl, ENG_PACE_CEILING_BYTES, ENG_PACE_FLOOR_BYTES,
			      ENG_PACE_CEILING_BYTES);
	if (p->mode == ENG_PACE_AUTO)
		probe(p);
	restart_schedule(p, mono_ns());
	record(p, UINT64_MAX);
}

void eng_pacer_cut(struct eng_pacer *p, uint64_t from, uint64_t cut)
{
	p->from = from;
	p->cut = cut;
	p->done = 0;
	record(p, 0);
}

void eng_pacer_catchup(struct eng_pacer *p, uint64_t written_to)
{
	uint64_t el = mono_ns() - p->start_ns;

	if (written_to > p->cut && el)
		p->min_rate = (uint64_t)((unsigned __int128)(written_to - p->cut) * NS_PER_S *
					 CATCHUP_OUTRUN / el);
}

void eng_pacer_done(struct eng_pacer *p, uint64_t bytes)
{
	uint64_t now;

	p->done += bytes;
	p->epoch_bytes += bytes;
	p->unticked += bytes;
	if (p->unticked < TICK_BYTES)
		return;
	p->unticked = 0;
	do {
		now = mono_ns();
		window(p, now);
		report(p, now);
	} while (wait_schedule(p, now));
}

void eng_pacer_end(struct eng_pacer *p)
{
	uint64_t el = mono_ns() - p->start_ns;

	if (el)
		p->made = (uint64_t)((unsigned __int128)p->done * NS_PER_S / el);
	p->min_rate = 0;
	if (p->mode == ENG_PACE_AUTO)
		p->ctl.rate = p->ctl.ceiling; /* ended: held to nothing */
	record(p, UINT64_MAX);
}
