/* engine/index.c — the shared hash table (see index.h).
 *
 * Map: probing (find, take_free), purge, counters, repair after a dead
 * mutex holder.
 */
#include "engine/index.h"

#include "engine/record.h"

#include <assert.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* Purge DEAD slots when used slots would pass 4/5 of the table: linear
 * probing's miss cost grows as 1/(1-load)^2, about 13 probes at 0.8. */
#define LOAD_PURGE_NUM 4
#define LOAD_PURGE_DEN 5
/* 1.45 slots per key: at most 69% load of live keys, so probes stay
 * short, and 46.4 bytes of table per key, which leaves room for the fixed
 * part of the region (worker slots, about 0.5 MiB) within 48 bytes per
 * key at a million keys. */
#define SLOTS_PER_KEY_NUM 29
#define SLOTS_PER_KEY_DEN 20
#define SLOTS_MIN 16

uint64_t eng_index_slots_for(uint64_t max_keys)
{
	uint64_t n = max_keys * SLOTS_PER_KEY_NUM / SLOTS_PER_KEY_DEN + 1;
	return n < SLOTS_MIN ? SLOTS_MIN : n;
}

uint32_t eng_index_hash32(uint64_t hash64)
{
	return (uint32_t)(hash64 >> 32);
}

static uint64_t home(const struct eng_shared *sh, uint32_t hash)
{
	return ((uint64_t)hash * sh->nslots) >> 32;
}

static int key_equal(const struct eng_ientry *e, const char *map,
		     const void *key, uint16_t klen)
{
	return e->klen == klen && !memcmp(map + e->voff - klen, key, klen);
}

void eng_index_find(struct eng_shared *sh, const char *map, const void *key,
		    uint16_t klen, uint32_t hash, struct eng_find *f)
{
	struct eng_ientry *t = eng_shared_table(sh);
	uint64_t i = home(sh, hash);

	assert(ipc_mtx_held(&sh->index_mtx));
	f->slot = f->free_slot = ENG_NO_SLOT;
	f->busy = 0;
	for (uint64_t n = 0; n < sh->nslots; n++) {
		struct eng_ientry *e = &t[i];
		switch (e->state) {
		case ENG_SLOT_EMPTY:
			if (f->free_slot == ENG_NO_SLOT)
				f->free_slot = i;
			return;
		case ENG_SLOT_DEAD:
			if (f->free_slot == ENG_NO_SLOT)
				f->free_slot = i;
			break;
		case ENG_SLOT_PENDING:
			/* Its key is not on disk yet: a hash match may be
			 * this key, so wait for it rather than guess. */
			if (e->hash == hash && e->klen == klen) {
				f->busy = 1;
				return;
			}
			break;
		case ENG_SLOT_LIVE:
			if (e->hash == hash && key_equal(e, map, key, klen)) {
				f->slot = i;
				f->busy = e->writer != 0;
				return;
			}
			break;
		}
		if (++i == sh->nslots)
			i = 0;
	}
}

uint64_t eng_index_take_free(struct eng_shared *sh, const char *map,
			     const void *key, uint16_t klen, uint32_t hash,
			     struct eng_find *f)
{
	uint64_t used = sh->live_keys + sh->pending + sh->dead;

	if ((used + 1) * LOAD_PURGE_DEN > sh->nslots * LOAD_PURGE_NUM &&
	    sh->dead > 0) {
		if (eng_index_purge(sh) == 0)
			eng_index_find(sh, map, key, klen, hash, f);
	}
	used = sh->live_keys + sh->pending + sh->dead;
	if (used + 1 >= sh->nslots)
		return ENG_NO_SLOT; /* an EMPTY slot must always remain */
	return f->free_slot;
}

static uint64_t place(struct eng_shared *sh, const struct eng_ientry *e)
{
	struct eng_ientry *t = eng_shared_table(sh);
	uint64_t i = home(sh, e->hash);

	while (t[i].state != ENG_SLOT_EMPTY)
		if (++i == sh->nslots)
			i = 0;
	t[i] = *e;
	return i;
}

/* Moves every LIVE and PENDING entry to a fresh table image. If this
 * process dies half way, `rebuilding` tells eng_index_repair that the
 * table cannot be trusted. */
int eng_index_purge(struct eng_shared *sh)
{
	struct eng_ientry *t = eng_shared_table(sh);
	uint64_t keep = sh->live_keys + sh->pending, n = 0;
	struct eng_ientry *copy;
	uint64_t *from, *to;

	assert(ipc_mtx_held(&sh->index_mtx));
	copy = malloc((keep ? keep : 1) * sizeof(*copy));
	from = malloc((keep ? keep : 1) * sizeof(*from));
	to = malloc((keep ? keep : 1) * sizeof(*to));
	if (!copy || !from || !to) {
		free(copy);
		free(from);
		free(to);
		return -ENOMEM;
	}
	for (uint64_t i = 0; i < sh->nslots && n < keep; i++)
		if (t[i].state == ENG_SLOT_LIVE ||
		    t[i].state == ENG_SLOT_PENDING) {
			from[n] = i;
			copy[n++] = t[i];
		}
	sh->rebuilding = 1;
	memset(t, 0, sh->nslots * sizeof(*t));
	for (uint64_t k = 0; k < n; k++)
		to[k] = place(sh, &copy[k]);
	/* In-flight writes name their slot: follow the moves. */
	for (int w = 0; w < ENG_WORKER_SLOTS; w++) {
		struct eng_wslot *ws = &sh->wslots[w];
		for (int j = 0; ws->ninflight && j < ENG_INFLIGHT_MAX; j++) {
			struct eng_inflight *in = &ws->inflight[j];
			if (!in->off)
				continue;
			for (uint64_t k = 0; k < n; k++)
				if (from[k] == in->slot) {
					in->slot = (uint32_t)to[k];
					break;
				}
		}
	}
	sh->dead = 0;
	sh->rebuilding = 0;
	free(copy);
	free(from);
	free(to);
	return 0;
}

void eng_index_recount(struct eng_shared *sh)
{
	struct eng_ientry *t = eng_shared_table(sh);
	uint64_t live = 0, pending = 0, dead = 0, bytes = 0;

	for (uint64_t i = 0; i < sh->nslots; i++) {
		switch (t[i].state) {
		case ENG_SLOT_LIVE:
			live++;
			bytes += eng_rec_size(t[i].klen, t[i].vlen);
			break;
		case ENG_SLOT_PENDING:
			pending++;
			break;
		case ENG_SLOT_DEAD:
			dead++;
			break;
		}
	}
	sh->live_keys = live;
	sh->pending = pending;
	sh->dead = dead;
	sh->live_bytes = bytes;
}

/* The header of the record whose value is at voff, if it is a valid
 * PUT or DEL record for a key of klen bytes. */
static int record_at(const char *map, uint64_t map_avail, uint64_t voff,
		     uint16_t klen, struct eng_rec_hdr *h)
{
	uint64_t roff = voff - klen - ENG_REC_HDR_SIZE;

	if (voff < ENG_FILE_HDR_SIZE + ENG_REC_HDR_SIZE + (uint64_t)klen ||
	    voff > map_avail)
		return -EBADMSG;
	if (eng_rec_check_hdr(map + roff, map_avail - roff, h) < 0 ||
	    h->klen != klen)
		return -EBADMSG;
	return 0;
}

/* A publish interrupted by death: voff already points at the new record
 * (publish writes it first). The record is complete, since publish comes
 * after the write; finish the publish from its header. */
static int finish_publish(struct eng_ientry *e, const char *map,
			  uint64_t map_avail)
{
	struct eng_rec_hdr h;

	if (record_at(map, map_avail, e->voff, e->klen, &h) < 0)
		return -EUCLEAN;
	e->vlen = h.vlen;
	e->version = h.version;
	e->state = h.type == ENG_REC_PUT ? ENG_SLOT_LIVE : ENG_SLOT_DEAD;
	e->writer = 0;
	return 0;
}

int eng_index_settle_writer(struct eng_shared *sh, const char *map,
			    uint64_t map_avail, int w)
{
	struct eng_wslot *ws = &sh->wslots[w];
	struct eng_ientry *t = eng_shared_table(sh);

	for (int j = 0; j < ENG_INFLIGHT_MAX; j++) {
		struct eng_inflight *in = &ws->inflight[j];
		struct eng_ientry *e;
		if (!in->off)
			continue;
		if (in->off >= sh->tail || in->slot >= sh->nslots) {
			/* died before the reservation took effect */
			in->off = 0;
			continue;
		}
		e = &t[in->slot];
		if (e->writer != (uint32_t)w + 1) {
			in->off = 0; /* published: only the release was left */
			continue;
		}
		/* Unpublished writes stay for eng_db_reap_worker, which
		 * wipes their bytes before freeing the key. */
		if (e->voff == in->off + ENG_REC_HDR_SIZE + e->klen) {
			if (finish_publish(e, map, map_avail) < 0)
				return -EUCLEAN;
			in->off = 0;
		}
	}
	return 0;
}

/* A holder killed in reserve() after it marked its key but before it
 * recorded the reservation in its in-flight list leaves a key that
 * nothing names: nobody would ever free it, and every write to it would
 * get -EAGAIN until a restart. Worker w held the mutex when it died. */
static void free_orphan_keys(struct eng_shared *sh, int w)
{
	struct eng_wslot *ws = &sh->wslots[w];
	struct eng_ientry *t = eng_shared_table(sh);

	for (uint64_t i = 0; i < sh->nslots; i++) {
		struct eng_ientry *e = &t[i];
		int named = 0;

		/* PENDING without a writer: killed between the two stores */
		if (e->writer != (uint32_t)w + 1 &&
		    !(e->state == ENG_SLOT_PENDING && e->writer == 0))
			continue;
		for (int j = 0; j < ENG_INFLIGHT_MAX && !named; j++)
			named = ws->inflight[j].off && ws->inflight[j].slot == i;
		if (named)
			continue;
		if (e->state == ENG_SLOT_PENDING)
			e->state = ENG_SLOT_DEAD; /* recounted by the caller */
		e->writer = 0;
	}
}

int eng_index_repair(struct eng_shared *sh, const char *map,
		     uint64_t map_avail, pid_t dead_pid)
{
	struct eng_ientry *t = eng_shared_table(sh);

	if (sh->rebuilding)
		return -EUCLEAN; /* died inside a purge: slots half moved */
	for (int w = 0; dead_pid > 0 && w < ENG_WORKER_SLOTS; w++) {
		if (atomic_load(&sh->wslots[w].pid) != dead_pid)
			continue;
		if (eng_index_settle_writer(sh, map, map_avail, w) < 0)
			return -EUCLEAN;
		free_orphan_keys(sh, w);
	}
	/* Whatever else the holder touched, every visible entry must point
	 * at the record it claims. */
	for (uint64_t i = 0; i < sh->nslots; i++) {
		struct eng_rec_hdr h;
		struct eng_ientry *e = &t[i];
		if (e->state != ENG_SLOT_LIVE)
			continue;
		if (record_at(map, map_avail, e->voff, e->klen, &h) < 0 ||
		    h.version != e->version || h.vlen != e->vlen ||
		    h.type != ENG_REC_PUT)
			return -EUCLEAN;
	}
	for (int w = 0; w < ENG_WORKER_SLOTS; w++) {
		struct eng_wslot *ws = &sh->wslots[w];
		uint32_t n = 0;
		for (int j = 0; j < ENG_INFLIGHT_MAX; j++)
			n += ws->inflight[j].off != 0;
		ws->ninflight = n;
	}
	eng_index_recount(sh);
	return 0;
}
