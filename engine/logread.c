/* engine/logread.c — the log reader (see logread.h). */
#include "engine/logread.h"

#include "engine/errors.h"
#include "engine/record.h"
#include "engine/replay.h"
#include "engine/scan.h"
#include "engine/shared.h"
#include "engine/db.h"

#include <errno.h>
#include <stdatomic.h>

/* Where the current file's history begins, and its floor. */
static void history(struct eng_db *db, uint64_t *floor, uint64_t *off)
{
	uint64_t size = __atomic_load_n(&db->sh->tail, __ATOMIC_RELAXED);

	if (eng_hist_decode(db->map, size, floor, off)) {
		*floor = 0;
		*off = ENG_FILE_HDR_SIZE;
	}
}

uint64_t eng_logread_floor(struct eng_db *db)
{
	uint64_t floor, off;

	if (eng_db_refresh(db))
		return 0;
	history(db, &floor, &off);
	return floor;
}

int eng_logread_start(struct eng_db *db, uint64_t since, int durable_only,
		      struct eng_logread *lr, uint64_t *floor)
{
	uint64_t hist_off;
	int rc;

	if ((rc = eng_db_refresh(db)))
		return rc;
	*lr = (struct eng_logread){ .db = db, .durable_only = durable_only };
	if (since == UINT64_MAX) {
		/* "now": nothing at or below the versions handed out so far
		 * is wanted, and nothing above them can lie below the
		 * oldest write still in flight */
		lr->last = __atomic_load_n(&db->sh->seq, __ATOMIC_RELAXED);
		lr->hint_off = eng_db_written_below(db);
		lr->hint_gen = db->file_gen;
		return 0;
	}
	history(db, floor, &hist_off);
	if (since < *floor)
		return ENG_ECOMPACTED;
	lr->last = since;
	return 0;
}

/* Puts lr in the current file: from its history's start (or the hint),
 * skipping what it handed out already. */
static int place(struct eng_logread *lr, uint64_t *floor)
{
	struct eng_db *db = lr->db;
	uint64_t hist_off;

	history(db, floor, &hist_off);
	if (lr->last < *floor)
		return ENG_ECOMPACTED;
	lr->off = hist_off;
	if (lr->hint_gen == db->file_gen && lr->hint_off > hist_off)
		lr->off = lr->hint_off;
	lr->hint_gen = 0;
	lr->file_gen = db->file_gen;
	return 0;
}

/* How far the log may be shown: all of it below the oldest write in
 * flight, and, where reads wait for syncs, below what a sync covered. */
static uint64_t showable(struct eng_logread *lr)
{
	uint64_t end = eng_db_written_below(lr->db);

	if (lr->durable_only) {
		uint64_t d = eng_durable_end(lr->db);
		if (d < end)
			end = d;
	}
	return end;
}

static void change_of(const struct eng_logread *lr, const struct eng_replay_item *it,
		      struct eng_change *c)
{
	const char *rec = lr->db->map + it->off;

	c->version = it->h.version;
	c->del = it->h.type == ENG_REC_DEL;
	c->key = rec + ENG_REC_HDR_SIZE;
	c->klen = it->h.klen;
	c->val = c->key + it->h.klen;
	c->vlen = it->h.vlen;
	c->part = it->part;
	c->parts = it->parts;
	c->term_mark = 0;
}

int eng_logread_next(struct eng_logread *lr, unsigned max, eng_change_fn fn,
		     void *arg, uint64_t *floor)
{
	struct eng_scan s;
	struct eng_replay rp;
	struct eng_replay_item it;
	uint64_t end;
	unsigned n = 0;
	int rc, stop = 0;

	if ((rc = eng_db_refresh(lr->db)))
		return rc;
	if (lr->file_gen != lr->db->file_gen && (rc = place(lr, floor)))
		return rc;
	end = showable(lr);
	if (lr->off >= end)
		return 0;
	eng_scan_init(&s, lr->db->map, end);
	eng_scan_set_fd(&s, lr->db->fd);
	eng_scan_seek(&s, lr->off);
	eng_replay_init(&rp, &s);
	while (!(rc = eng_replay_next(&rp, &it)) && it.kind != ENG_REPLAY_END) {
		int last_part = !it.parts || it.part + 1 == it.parts;

		if (it.kind == ENG_REPLAY_SCAN && it.scan == ENG_SCAN_CORRUPT) {
			rc = ENG_ECORRUPT;
			break;
		}
		if (it.kind == ENG_REPLAY_RECORD && it.h.version > lr->last &&
		    (it.h.type != ENG_REC_PAD || (it.h.flags & ENG_REC_F_TERM))) {
			struct eng_change c;

			if (it.h.type == ENG_REC_PAD)
				c = (struct eng_change){ .version = it.h.version, .term_mark = 1,
							 .key = "", .val = "" };
			else
				change_of(lr, &it, &c);
			n++;
			if (fn(&c, arg))
				stop = 1;
		}
		/* a batch is handed out whole: stop only between records */
		if (!last_part)
			continue;
		if (it.kind == ENG_REPLAY_RECORD && it.h.version > lr->last)
			lr->last = it.h.version;
		lr->off = it.off + it.len;
		if (stop || n >= max)
			break;
	}
	eng_replay_free(&rp);
	if (rc < 0)
		return rc;
	return (int)n;
}

