/* engine/read.c — reads: eng_get, the mirror of write.c, and the stats.
 *
 * A read takes no lock on its hot path: it announces the table it reads
 * (its seat's `reading`, so a retired area is not freed under it, see
 * eng_area_reclaim in area.c), reads the slot optimistically (index.h) and
 * checks that no flip and no batch publish happened meanwhile. Only a
 * slot left odd or a publish that does not end sends it to the mutex,
 * whose repair fixes both.
 */
#include "engine/store.h"

#include "engine/db.h"
#include "engine/index.h"
#include "engine/record.h"
#include "engine/shared.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdint.h>
#include <string.h>

/* A reader that sees a batch being published spins this many times for
 * it before it takes the mutex (which also repairs a dead publisher). */
#define PUB_SPINS 4096
/* Optimistic tries, then tries under the mutex, before a get gives up
 * with -EAGAIN. */
#define GET_TRIES 64

static int key_ok(size_t klen)
{
	return klen >= 1 && klen <= ENG_KEY_MAX;
}

/* Publishes that this process reads the current table: a retired area is
 * not freed under it (eng_area_reclaim). Returns cur. */
static uint64_t begin_read(struct eng_shared *sh, _Atomic uint64_t *reading)
{
	for (;;) {
		uint64_t cur = atomic_load(&sh->cur);
		atomic_store(reading, eng_cur_gen(cur)); /* seq_cst: before the re-check */
		if (atomic_load(&sh->cur) == cur)
			return cur;
	}
}

/* With the mutex: for a reader that met a slot left odd or a batch that
 * seemed never to finish publishing (the lock repairs both). */
static int get_locked(struct eng_db *db, const void *key, uint16_t klen,
		      struct eng_khash *kh, struct eng_entry *e)
{
	struct eng_find f;
	int rc;

	if ((rc = eng_db_refresh(db)) || (rc = eng_lock_index(db)))
		return rc;
	if (db->file_gen != atomic_load(&db->sh->file_gen)) {
		rc = -EAGAIN; /* swapped since: the caller looks again */
	} else {
		struct eng_table *t = eng_cur_table(db->sh);
		eng_index_find(t, db->map, key, klen,
			       eng_index_hash_for(t, key, klen, kh), &f);
		if (f.slot == ENG_NO_SLOT) {
			rc = 0;
		} else {
			rc = eng_index_read_slot(t, f.slot, e);
		}
	}
	eng_unlock_index(db);
	return rc;
}

static int record_intact(const char *map, const struct eng_entry *e)
{
	const char *rec = map + e->voff - e->klen - ENG_REC_HDR_SIZE;
	struct eng_rec_hdr h;

	if (eng_rec_check_hdr(rec, eng_rec_size(e->klen, e->vlen), &h) ||
	    h.version != e->version || h.vlen != e->vlen ||
	    eng_rec_check_data(rec, &h))
		return -EBADMSG;
	return 0;
}

static int wait_publish_done(struct eng_shared *sh, uint32_t *p)
{
	for (int i = 0; i < PUB_SPINS; i++) {
		*p = atomic_load_explicit(&sh->pub_seq, memory_order_acquire);
		if (!(*p & 1))
			return 0;
	}
	return -EAGAIN;
}

int eng_get(struct eng_db *db, const void *key, size_t klen,
	    struct eng_val *v)
{
	struct eng_shared *sh = db->sh;
	_Atomic uint64_t *reading = &sh->seats[db->seat].reading;
	struct eng_khash kh = { .hash = 0 }; /* under the seed of the table probed */
	struct eng_entry e;
	int rc = -EAGAIN;

	memset(v, 0, sizeof(*v));
	if (!key_ok(klen))
		return -EINVAL;
	for (int tries = 0; tries < GET_TRIES; tries++) {
		uint64_t cur;
		uint32_t p1;
		struct eng_table *t;
		int stale;

		if (atomic_load(&sh->file_gen) != db->file_gen &&
		    (rc = eng_db_refresh(db)))
			return rc;
		cur = begin_read(sh, reading);
		t = eng_area_table(sh, eng_cur_area(cur));
		if (t->file_gen != db->file_gen) {
			/* a compaction's flip in progress: the next try maps
			 * the new file */
			atomic_store_explicit(reading, 0, memory_order_release);
			rc = -EAGAIN;
			continue;
		}
		if (wait_publish_done(sh, &p1) < 0) {
			atomic_store_explicit(reading, 0, memory_order_release);
			rc = -EAGAIN;
			break; /* a publish that does not end: lock */
		}
		rc = eng_index_lookup(t, db->map, key, (uint16_t)klen,
				      eng_index_hash_for(t, key, klen, &kh), &e);
		atomic_thread_fence(memory_order_acquire);
		stale = atomic_load_explicit(&sh->pub_seq, memory_order_relaxed) != p1 ||
			atomic_load(&sh->cur) != cur;
		atomic_store_explicit(reading, 0, memory_order_release);
		if (rc == -EAGAIN)
			break; /* a slot left odd: lock (and repair) */
		if (!stale)
			break;
		rc = -EAGAIN;
	}
	for (int tries = 0; rc == -EAGAIN && tries < GET_TRIES; tries++)
		rc = get_locked(db, key, (uint16_t)klen, &kh, &e);
	if (rc < 0)
		return rc;
	if (rc == 0) {
		v->end = atomic_load(&sh->del_end);
		return -ENOENT;
	}
	/* The start-up may have trusted an index snapshot instead of reading
	 * this record: check it before it is served, never send damage. */
	if ((rc = record_intact(db->map, &e))) {
		v->end = e.voff - e.klen - ENG_REC_HDR_SIZE; /* where the damage is */
		return rc;
	}
	v->data = db->map + e.voff;
	v->len = e.vlen;
	v->version = e.version;
	v->end = e.voff + e.vlen;
	v->map = db->cur;
	db->cur->refs++;
	return 0;
}

uint64_t eng_durable_end(struct eng_db *db)
{
	return atomic_load(&db->sh->durable_end);
}

void eng_stats(struct eng_db *db, struct eng_stats *st)
{
	struct eng_shared *sh = db->sh;
	struct eng_table *t = eng_area_table(sh, eng_cur_area(atomic_load(&sh->cur)));

	memset(st, 0, sizeof(*st));
	st->keys = __atomic_load_n(&t->live, __ATOMIC_RELAXED);
	st->capacity = eng_index_capacity(t);
	st->capacity_max = sh->max_keys;
	if (st->capacity_max && st->capacity > st->capacity_max)
		st->capacity = st->capacity_max;
	st->table_slots = __atomic_load_n(&t->nslots, __ATOMIC_RELAXED);
	st->log_bytes = __atomic_load_n(&sh->tail, __ATOMIC_RELAXED);
	st->live_bytes = __atomic_load_n(&t->live_bytes, __ATOMIC_RELAXED);
	st->fsync_total = atomic_load(&sh->fsync_total);
	st->fsync_ns_total = atomic_load(&sh->fsync_ns_total);
	st->fsync_errors = atomic_load(&sh->fsync_errors);
	for (int i = 0; i < ENG_STATS_FSYNC_BUCKETS; i++)
		st->fsync_hist[i] = atomic_load(&sh->fsync_hist[i]);
	for (int i = 0; i < ENG_STATS_WPF_BUCKETS; i++)
		st->wpf_hist[i] = atomic_load(&sh->wpf_hist[i]);
	st->wpf_sum = atomic_load(&sh->wpf_sum);
	st->lock_wait_ns = atomic_load(&sh->index_mtx.wait_ns) +
			   atomic_load(&sh->sync_mtx.wait_ns);
	st->mutex_repairs = atomic_load(&sh->index_mtx.repairs);
	st->compactions_started = atomic_load(&sh->compactions[0]);
	st->compactions_done = atomic_load(&sh->compactions[1]);
	st->compactions_failed = atomic_load(&sh->compactions[2]);
	st->compact_ns_total = atomic_load(&sh->compact_ns_total);
	st->reclaimed_bytes = atomic_load(&sh->reclaimed_total);
	st->shm_bytes = sizeof(*sh) + eng_index_table_bytes(st->table_slots);
	st->version_lease = atomic_load(&sh->lease);
	st->poisoned = (int)atomic_load(&sh->poisoned);
}

