/* engine/replay.c — batch assembly over the scanner (see replay.h). */
#include "engine/replay.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define PARTS_INIT 64

void eng_replay_init(struct eng_replay *r, struct eng_scan *s)
{
	memset(r, 0, sizeof(*r));
	r->scan = s;
}

void eng_replay_free(struct eng_replay *r)
{
	free(r->parts);
	r->parts = NULL;
	r->nparts = r->cap = 0;
}

static int hold_part(struct eng_replay *r, const struct eng_scan_item *si)
{
	if (r->nparts == r->cap) {
		size_t ncap = r->cap ? r->cap * 2 : PARTS_INIT;
		struct eng_replay_part *p = realloc(r->parts, ncap * sizeof(*p));
		if (!p)
			return -ENOMEM;
		r->parts = p;
		r->cap = ncap;
	}
	r->parts[r->nparts].off = si->off;
	r->parts[r->nparts].h = si->h;
	r->nparts++;
	return 0;
}

/* Does record si carry on the batch being read? */
static int continues(const struct eng_replay *r, const struct eng_scan_item *si)
{
	const struct eng_replay_part *last = &r->parts[r->nparts - 1];

	return (si->h.flags & ENG_REC_F_BATCH) &&
	       !(si->h.flags & ENG_REC_F_FIRST) &&
	       si->h.version == last->h.version &&
	       si->h.batch_left + 1 == last->h.batch_left &&
	       si->off == last->off + eng_rec_total(&last->h);
}

static void drop_pending(struct eng_replay *r, struct eng_replay_item *it)
{
	const struct eng_replay_part *last = &r->parts[r->nparts - 1];

	it->kind = ENG_REPLAY_DROPPED;
	it->off = r->parts[0].off;
	it->len = last->off + eng_rec_total(&last->h) - it->off;
	r->nparts = 0;
}

static void hand_out(struct eng_replay *r, struct eng_replay_item *it)
{
	const struct eng_replay_part *p = &r->parts[r->next_out];

	it->kind = ENG_REPLAY_RECORD;
	it->off = p->off;
	it->h = p->h;
	it->len = eng_rec_total(&p->h);
	it->part = (uint32_t)r->next_out;
	it->parts = (uint32_t)r->nparts;
	if (++r->next_out == r->nparts) {
		r->committed = 0;
		r->next_out = 0;
		r->nparts = 0;
	}
}

static void pass_scan_item(const struct eng_scan_item *si,
			   struct eng_replay_item *it)
{
	it->off = si->off;
	it->len = si->len;
	it->h = si->h;
	it->part = it->parts = 0;
	if (si->kind == ENG_SCAN_END) {
		it->kind = ENG_REPLAY_END;
	} else if (si->kind == ENG_SCAN_RECORD) {
		it->kind = ENG_REPLAY_RECORD;
	} else {
		it->kind = ENG_REPLAY_SCAN;
		it->scan = si->kind;
	}
}

int eng_replay_next(struct eng_replay *r, struct eng_replay_item *it)
{
	struct eng_scan_item si;

	if (r->committed) {
		hand_out(r, it);
		return 0;
	}
	for (;;) {
		if (r->have_held) {
			si = r->held;
			r->have_held = 0;
		} else {
			eng_scan_next(r->scan, &si);
		}
		if (r->nparts && !(si.kind == ENG_SCAN_RECORD && continues(r, &si))) {
			/* the batch stops short: keep si for the next call */
			r->held = si;
			r->have_held = 1;
			drop_pending(r, it);
			return 0;
		}
		if (si.kind != ENG_SCAN_RECORD || !(si.h.flags & ENG_REC_F_BATCH)) {
			pass_scan_item(&si, it);
			return 0;
		}
		if (!r->nparts && !(si.h.flags & ENG_REC_F_FIRST)) {
			/* the rest of a batch whose first part is gone */
			it->kind = ENG_REPLAY_DROPPED;
			it->off = si.off;
			it->len = si.len;
			return 0;
		}
		if (hold_part(r, &si) < 0) {
			r->oom = 1;
			return -ENOMEM;
		}
		if (si.h.batch_left == 0) {
			r->committed = 1;
			hand_out(r, it);
			return 0;
		}
	}
}
