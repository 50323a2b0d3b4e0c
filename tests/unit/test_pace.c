/* tests/unit/test_pace.c — the latency histogram and the pacing
 * controller of compactions (engine/pace.h).
 *
 * Pure functions: windows are built by hand. The controller must halve
 * the rate when a class's p99 passes 1.5x its baseline, grow it while
 * every class is within 1.2x, hold in between, double it with no load,
 * ask for a probe when a class has load but no baseline, and never leave
 * [floor, ceiling]. No timing is asserted anywhere.
 */
#include "engine/pace.h"

#include <criterion/criterion.h>
#include <criterion/new/assert.h>
#include <stdint.h>
#include <string.h>

#define MIB (1ull << 20)

/* A window of n requests of class c, all of ns duration, on top of h. */
static void add(struct eng_lat_hist *h, enum eng_lat_class c, uint64_t n, uint64_t ns)
{
	h->n[c][eng_lat_bucket(ns)] += n;
}

Test(engine_pace, buckets_grow_with_the_duration_and_hold_it, .timeout = 5)
{
	unsigned last = 0;

	cr_assert(eq(u32, eng_lat_bucket(0), 0));
	cr_assert(eq(u32, eng_lat_bucket((1u << ENG_LAT_MIN_SHIFT) - 1), 0));
	cr_assert(eq(u32, eng_lat_bucket(1u << ENG_LAT_MIN_SHIFT), 1));
	cr_assert(eq(u32, eng_lat_bucket(UINT64_MAX), ENG_LAT_BUCKETS - 1));
	for (uint64_t ns = 1000; ns < 20000000000ull; ns += ns / 7 + 1) {
		unsigned b = eng_lat_bucket(ns);

		cr_assert(ge(u32, b, last), "bucket of %llu ns went down", (unsigned long long)ns);
		cr_assert(lt(u64, ns, eng_lat_bucket_top_ns(b)), "%llu ns over its bucket's top",
			  (unsigned long long)ns);
		if (b > 0)
			cr_assert(ge(u64, ns, eng_lat_bucket_top_ns(b - 1)),
				  "%llu ns under its bucket's bottom", (unsigned long long)ns);
		last = b;
	}
}

Test(engine_pace, buckets_are_a_fifth_apart_or_less, .timeout = 5)
{
	for (unsigned b = 1; b + 1 < ENG_LAT_BUCKETS - 1; b++) {
		uint64_t lo = eng_lat_bucket_top_ns(b), hi = eng_lat_bucket_top_ns(b + 1);

		cr_assert(gt(u64, hi, lo));
		cr_assert(le(u64, hi * 4, lo * 5), "bucket %u spans more than 25%%", b + 1);
	}
}

Test(engine_pace, p99_of_a_window_is_the_slow_hundredth, .timeout = 5)
{
	struct eng_lat_hist then, now;
	uint64_t n, q;

	memset(&then, 0, sizeof(then));
	add(&then, ENG_LAT_READ, 5000, 10000000); /* before the window: ignored */
	now = then;
	add(&now, ENG_LAT_READ, 980, 100000);     /* 100 us */
	add(&now, ENG_LAT_READ, 20, 5000000);     /* 2% at 5 ms */
	q = eng_lat_quantile(&then, &now, ENG_LAT_READ, 0.99, &n);
	cr_assert(eq(u64, n, 1000));
	cr_assert(eq(u64, q, eng_lat_bucket_top_ns(eng_lat_bucket(5000000))));
	q = eng_lat_quantile(&then, &now, ENG_LAT_READ, 0.5, &n);
	cr_assert(eq(u64, q, eng_lat_bucket_top_ns(eng_lat_bucket(100000))));
	q = eng_lat_quantile(&then, &now, ENG_LAT_WRITE, 0.99, &n);
	cr_assert(eq(u64, n, 0));
	cr_assert(eq(u64, q, 0));
}

Test(engine_pace, a_count_that_went_down_counts_as_none, .timeout = 5)
{
	struct eng_lat_hist then, now;
	uint64_t n;

	memset(&then, 0, sizeof(then));
	add(&then, ENG_LAT_WRITE, 100, 1000000);
	memset(&now, 0, sizeof(now)); /* a worker's block retired between */
	add(&now, ENG_LAT_WRITE, 10, 200000);
	(void)eng_lat_quantile(&then, &now, ENG_LAT_WRITE, 0.99, &n);
	cr_assert(eq(u64, n, 10));
}

/* The controller, fed p99s directly. */
static struct eng_pace ctl_at(uint64_t rate, uint64_t base_read, uint64_t base_write)
{
	struct eng_pace p;
	uint64_t q[ENG_LAT_CLASSES] = { base_read, base_write };
	uint64_t n[ENG_LAT_CLASSES] = { base_read ? 1000 : 0, base_write ? 1000 : 0 };

	eng_pace_init(&p, ENG_PACE_CEILING_BYTES, ENG_PACE_FLOOR_BYTES, ENG_PACE_CEILING_BYTES);
	eng_pace_baseline(&p, q, n);
	p.rate = rate;
	return p;
}

static enum eng_pace_verdict adapt(struct eng_pace *p, uint64_t q_read, uint64_t n_read,
				   uint64_t q_write, uint64_t n_write)
{
	uint64_t q[ENG_LAT_CLASSES] = { q_read, q_write };
	uint64_t n[ENG_LAT_CLASSES] = { n_read, n_write };

	return eng_pace_adapt(p, q, n);
}

Test(engine_pace, cuts_the_rate_under_overload, .timeout = 5)
{
	struct eng_pace p = ctl_at(64 * MIB, 1000000, 4000000);

	/* writes at 3x their baseline: halved, whatever reads do */
	cr_assert(eq(int, adapt(&p, 1000000, 5000, 12000000, 5000), ENG_PACE_DOWN));
	cr_assert(eq(u64, p.rate, 32 * MIB));
	cr_assert(eq(int, adapt(&p, 2000000, 5000, 4000000, 5000), ENG_PACE_DOWN));
	cr_assert(eq(u64, p.rate, 16 * MIB));
}

Test(engine_pace, grows_while_latency_stays_at_its_baseline, .timeout = 5)
{
	struct eng_pace p = ctl_at(32 * MIB, 1000000, 4000000);

	cr_assert(eq(int, adapt(&p, 1000000, 5000, 4000000, 5000), ENG_PACE_UP));
	cr_assert(eq(u64, p.rate, 40 * MIB));
}

Test(engine_pace, holds_between_grow_and_cut, .timeout = 5)
{
	struct eng_pace p = ctl_at(32 * MIB, 1000000, 0);

	cr_assert(eq(int, adapt(&p, 1400000, 5000, 0, 0), ENG_PACE_HOLD));
	cr_assert(eq(u64, p.rate, 32 * MIB));
}

Test(engine_pace, goes_unpaced_when_idle, .timeout = 5)
{
	struct eng_pace p = ctl_at(8 * MIB, 1000000, 4000000);

	/* too few requests to judge a p99: no load */
	for (int i = 0; i < 20; i++)
		cr_assert(eq(int, adapt(&p, 50000000, ENG_PACE_MIN_SAMPLES - 1, 0, 0), ENG_PACE_IDLE));
	cr_assert(eq(u64, p.rate, ENG_PACE_CEILING_BYTES));
	cr_assert(not(eng_pace_limited(&p)));
}

Test(engine_pace, never_goes_under_its_floor, .timeout = 5)
{
	struct eng_pace p = ctl_at(64 * MIB, 1000000, 0);

	for (int i = 0; i < 40; i++)
		cr_assert(eq(int, adapt(&p, 90000000, 5000, 0, 0), ENG_PACE_DOWN));
	cr_assert(eq(u64, p.rate, ENG_PACE_FLOOR_BYTES));
}

Test(engine_pace, never_goes_over_its_ceiling, .timeout = 5)
{
	struct eng_pace p = ctl_at(64 * MIB, 1000000, 0);

	for (int i = 0; i < 100; i++)
		(void)adapt(&p, 1000000, 5000, 0, 0);
	cr_assert(eq(u64, p.rate, ENG_PACE_CEILING_BYTES));
}

Test(engine_pace, asks_for_a_probe_when_load_comes_without_a_baseline, .timeout = 5)
{
	struct eng_pace p = ctl_at(ENG_PACE_CEILING_BYTES, 0, 0);
	uint64_t q[ENG_LAT_CLASSES] = { 2000000, 0 }, n[ENG_LAT_CLASSES] = { 1000, 0 };

	cr_assert(eq(int, adapt(&p, 2000000, 1000, 0, 0), ENG_PACE_PROBE));
	/* the probe's baseline: load seen, so the job starts paced */
	eng_pace_baseline(&p, q, n);
	cr_assert(eq(u64, p.base_ns[ENG_LAT_READ], 2000000));
	cr_assert(eq(u64, p.rate, ENG_PACE_START_BYTES));
	cr_assert(eng_pace_limited(&p));
}

Test(engine_pace, a_probe_with_too_few_requests_keeps_the_baseline, .timeout = 5)
{
	struct eng_pace p = ctl_at(16 * MIB, 1000000, 0);
	uint64_t q[ENG_LAT_CLASSES] = { 9000000, 0 }, n[ENG_LAT_CLASSES] = { 10, 0 };

	eng_pace_baseline(&p, q, n);
	cr_assert(eq(u64, p.base_ns[ENG_LAT_READ], 1000000));
	cr_assert(eq(u64, p.rate, 16 * MIB));
}
