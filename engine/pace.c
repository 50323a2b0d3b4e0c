/* engine/pace.c — the latency histogram's quantiles and the pacing
 * controller (see pace.h). Pure: no clock, no I/O. */
#include "engine/pace.h"

#include <assert.h>

const char *eng_pace_mode_name(enum eng_pace_mode m)
{
	return m == ENG_PACE_AUTO ? "auto" : m == ENG_PACE_FIXED ? "fixed" : "off";
}

uint64_t eng_lat_bucket_top_ns(unsigned b)
{
	unsigned e, sub;

	if (b == 0)
		return 1ull << ENG_LAT_MIN_SHIFT;
	if (b >= ENG_LAT_BUCKETS - 1)
		return UINT64_MAX;
	e = ENG_LAT_MIN_SHIFT + (b - 1) / ENG_LAT_SUB;
	sub = (b - 1) % ENG_LAT_SUB;
	/* bucket (e, sub) holds [(SUB + sub) << (e - BITS), (SUB + sub + 1) << ...) */
	return (uint64_t)(ENG_LAT_SUB + sub + 1) << (e - ENG_LAT_SUB_BITS);
}

static uint64_t delta(uint64_t then, uint64_t now)
{
	return now > then ? now - then : 0;
}

uint64_t eng_lat_quantile(const struct eng_lat_hist *then,
			  const struct eng_lat_hist *now, enum eng_lat_class c,
			  double q, uint64_t *samples)
{
	uint64_t total = 0, need, seen = 0;

	assert(q > 0 && q < 1);
	for (unsigned b = 0; b < ENG_LAT_BUCKETS; b++)
		total += delta(then->n[c][b], now->n[c][b]);
	*samples = total;
	if (!total)
		return 0;
	/* the smallest bucket with at least q of the requests at or below */
	need = (uint64_t)((double)total * q);
	if ((double)need < (double)total * q)
		need++;
	for (unsigned b = 0; b < ENG_LAT_BUCKETS; b++) {
		seen += delta(then->n[c][b], now->n[c][b]);
		if (seen >= need)
			return eng_lat_bucket_top_ns(b);
	}
	return eng_lat_bucket_top_ns(ENG_LAT_BUCKETS - 1);
}

static uint64_t clamp(const struct eng_pace *p, uint64_t r)
{
	return r < p->floor ? p->floor : r > p->ceiling ? p->ceiling : r;
}

void eng_pace_init(struct eng_pace *p, uint64_t start, uint64_t floor,
		   uint64_t ceiling)
{
	assert(floor > 0 && floor <= ceiling);
	p->floor = floor;
	p->ceiling = ceiling;
	p->rate = clamp(p, start);
	for (int c = 0; c < ENG_LAT_CLASSES; c++)
		p->base_ns[c] = 0;
}

void eng_pace_baseline(struct eng_pace *p, const uint64_t q_ns[ENG_LAT_CLASSES],
		       const uint64_t samples[ENG_LAT_CLASSES])
{
	for (int c = 0; c < ENG_LAT_CLASSES; c++)
		if (samples[c] >= ENG_PACE_MIN_SAMPLES && q_ns[c]) {
			p->base_ns[c] = q_ns[c];
			/* load where the job saw none: it starts paced */
			if (!eng_pace_limited(p))
				p->rate = clamp(p, ENG_PACE_START_BYTES);
		}
}

enum eng_pace_verdict eng_pace_adapt(struct eng_pace *p,
				     const uint64_t q_ns[ENG_LAT_CLASSES],
				     const uint64_t samples[ENG_LAT_CLASSES])
{
	int judged = 0, over = 0, near = 0;

	for (int c = 0; c < ENG_LAT_CLASSES; c++) {
		/* compared as q * 100 against base * pct: no division */
		unsigned __int128 q100, base;

		if (samples[c] < ENG_PACE_MIN_SAMPLES)
			continue;
		if (!p->base_ns[c])
			return ENG_PACE_PROBE;
		judged = 1;
		q100 = (unsigned __int128)q_ns[c] * 100;
		base = p->base_ns[c];
		if (q100 > base * ENG_PACE_CUT_PCT)
			over = 1;
		else if (q100 > base * ENG_PACE_GROW_PCT)
			near = 1;
	}
	if (!judged) {
		p->rate = clamp(p, p->rate > p->ceiling / 2 ? p->ceiling : p->rate * 2);
		return ENG_PACE_IDLE;
	}
	if (over) {
		p->rate = clamp(p, p->rate / 2);
		return ENG_PACE_DOWN;
	}
	if (near)
		return ENG_PACE_HOLD;
	p->rate = clamp(p, p->rate > p->ceiling / 5 * 4 ? p->ceiling : p->rate + p->rate / 4);
	return ENG_PACE_UP;
}
