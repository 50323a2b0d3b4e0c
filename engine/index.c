/* engine/index.c — the shared hash table (see index.h).
 *
 * Map: sizing - the slot seqlock - probing with the mutex - room - the
 * slot transitions (claim, busy, publish, release) - replay (apply,
 * merge, place) - bulk loading before fork - repair - lock-free reads.
 */
#include "engine/index.h"

#include <assert.h>
#include <errno.h>
#include <string.h>

/* A rebuild is asked for when used slots (LIVE, PENDING and DEAD) pass
 * 7/10 of the table, and a rebuild sizes the table so the keys fill
 * 7/20 of it: with 32-byte slots that is 45.7 bytes per key at the
 * fullest and 91 right after a rebuild. New keys wait past 9/10, so an
 * EMPTY slot always ends every probe (linear probing's miss cost grows
 * as 1/(1-load)^2: about 50 probes at 0.9, 6 at 0.7). */
#define GROW_NUM 7
#define GROW_DEN 10
#define WAIT_NUM 9
#define WAIT_DEN 10
#define REBUILD_NUM 7
#define REBUILD_DEN 20
/* A table whose keys fill under 1/16 of it is shrunk. */
#define SHRINK_DEN 16
/* Spins on an odd slot count before a reader suspects a dead writer: a
 * publish takes tens of nanoseconds, so this is far beyond any live one
 * that was not preempted (and a preempted one is waited for through the
 * mutex, which is right too). */
#define ODD_SPINS 1024

#if defined(__x86_64__) || defined(__i386__)
#define cpu_relax() __builtin_ia32_pause()
#else
#define cpu_relax() __asm__ __volatile__("" ::: "memory")
#endif

uint32_t eng_index_hash(const struct eng_table *t, const void *key, size_t klen)
{
	return (uint32_t)(eng_key_hash(&t->seed, key, klen) >> 32);
}

uint32_t eng_index_hash_for(const struct eng_table *t, const void *key,
			    size_t klen, struct eng_khash *kh)
{
	struct eng_hash_seed s = {
		__atomic_load_n(&t->seed.k0, __ATOMIC_RELAXED),
		__atomic_load_n(&t->seed.k1, __ATOMIC_RELAXED),
	};

	if (!eng_hash_seed_eq(&s, &kh->seed)) {
		kh->seed = s;
		kh->hash = (uint32_t)(eng_key_hash(&s, key, klen) >> 32);
	}
	return kh->hash;
}

uint64_t eng_index_table_bytes(uint64_t nslots)
{
	return sizeof(struct eng_table) + nslots * sizeof(struct eng_islot);
}

uint64_t eng_index_max_slots(uint64_t max_keys)
{
	uint64_t n;

	if (!max_keys)
		return ENG_INDEX_MAX_SLOTS;
	n = max_keys / GROW_NUM * GROW_DEN + GROW_DEN + ENG_INDEX_MIN_SLOTS;
	return n > ENG_INDEX_MAX_SLOTS ? ENG_INDEX_MAX_SLOTS : n;
}

uint64_t eng_index_slots_for(uint64_t keys, uint64_t max)
{
	uint64_t n = keys / REBUILD_NUM * REBUILD_DEN + REBUILD_DEN;

	if (n < ENG_INDEX_MIN_SLOTS)
		n = ENG_INDEX_MIN_SLOTS;
	return n > max ? max : n;
}

void eng_index_init(struct eng_table *t, uint64_t gen, uint64_t file_gen,
		    uint64_t nslots, const struct eng_hash_seed *seed)
{
	/* The area's pages are zero (fresh, or released with MADV_REMOVE):
	 * every slot is EMPTY with an even count. */
	assert(seed->k0 | seed->k1);
	__atomic_store_n(&t->seed.k0, seed->k0, __ATOMIC_RELAXED);
	__atomic_store_n(&t->seed.k1, seed->k1, __ATOMIC_RELAXED);
	t->gen = gen;
	t->file_gen = file_gen;
	t->nslots = nslots;
	t->live = t->pending = t->dead = t->live_bytes = 0;
	t->guard = NULL;
}

static int changes_allowed(const struct eng_table *t)
{
	return !t->guard || ipc_mtx_held(t->guard);
}

static uint64_t home(const struct eng_table *t, uint32_t hash)
{
	return ((uint64_t)hash * t->nslots) >> 32;
}

static uint64_t next(const struct eng_table *t, uint64_t i)
{
	return ++i == t->nslots ? 0 : i;
}

/* --- the slot seqlock ----------------------------------------------------
 * Writers (one at a time: the mutex) make the count odd, change the
 * fields, make it even again. Fields are stored and loaded with relaxed
 * atomics so a concurrent reader's copy is a race the language defines;
 * the fences order them against the count. */

#define LD(x) __atomic_load_n(&(x), __ATOMIC_RELAXED)
#define ST(x, v) __atomic_store_n(&(x), (v), __ATOMIC_RELAXED)

static void slot_begin(struct eng_islot *s)
{
	uint32_t q = atomic_load_explicit(&s->seq, memory_order_relaxed);

	assert(!(q & 1));
	atomic_store_explicit(&s->seq, q + 1, memory_order_relaxed);
	atomic_thread_fence(memory_order_release);
}

static void slot_end(struct eng_islot *s)
{
	uint32_t q = atomic_load_explicit(&s->seq, memory_order_relaxed);

	atomic_store_explicit(&s->seq, q + 1, memory_order_release);
}

/* One consistent copy of slot s: 0, or -EAGAIN after ODD_SPINS. */
static int slot_copy(const struct eng_islot *s, struct eng_entry *e,
		     uint32_t *seq)
{
	for (int spins = 0; spins < ODD_SPINS; spins++) {
		uint32_t q1 = atomic_load_explicit(&s->seq, memory_order_acquire);
		if (q1 & 1) {
			cpu_relax();
			continue;
		}
		e->state = LD(s->state);
		e->hash = LD(s->hash);
		e->klen = LD(s->klen);
		e->voff = LD(s->voff);
		e->vlen = LD(s->vlen);
		e->version = LD(s->version);
		atomic_thread_fence(memory_order_acquire);
		if (atomic_load_explicit(&s->seq, memory_order_relaxed) == q1) {
			*seq = q1;
			return 0;
		}
	}
	return -EAGAIN;
}

static int key_equal(const char *map, uint64_t voff, const void *key,
		     uint16_t klen)
{
	return !memcmp(map + voff - klen, key, klen);
}

/* --- probing with the mutex ---------------------------------------------- */

void eng_index_find(const struct eng_table *t, const char *map,
		    const void *key, uint16_t klen, uint32_t hash,
		    struct eng_find *f)
{
	uint64_t i = home(t, hash);

	f->slot = f->free_slot = ENG_NO_SLOT;
	f->busy = f->dup = 0;
	for (uint64_t n = 0; n < t->nslots; n++, i = next(t, i)) {
		const struct eng_islot *e = &t->slots[i];
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
				if (f->self && e->writer == f->self) {
					if (!f->own_key(i, f->own_arg))
						break; /* another key of ours */
					f->dup = 1;
				}
				f->busy = 1;
				return;
			}
			break;
		case ENG_SLOT_LIVE:
			if (e->hash == hash && e->klen == klen &&
			    key_equal(map, e->voff, key, klen)) {
				f->slot = i;
				f->busy = e->writer != 0;
				f->dup = f->self && e->writer == f->self;
				return;
			}
			break;
		}
	}
}

enum eng_room eng_index_room(const struct eng_table *t)
{
	uint64_t used = t->live + t->pending + t->dead + 1;

	if (used * WAIT_DEN > t->nslots * WAIT_NUM)
		return ENG_ROOM_WAIT;
	if (used * GROW_DEN > t->nslots * GROW_NUM)
		return ENG_ROOM_GROW;
	return ENG_ROOM_OK;
}

uint64_t eng_index_capacity(const struct eng_table *t)
{
	return t->nslots * WAIT_NUM / WAIT_DEN;
}

int eng_index_wants_shrink(const struct eng_table *t)
{
	return t->nslots > ENG_INDEX_MIN_SLOTS &&
	       (t->live + t->pending) * SHRINK_DEN < t->nslots &&
	       eng_index_slots_for(t->live + t->pending, t->nslots) < t->nslots;
}

int eng_index_wants_rebuild(const struct eng_table *t)
{
	return eng_index_room(t) != ENG_ROOM_OK || eng_index_wants_shrink(t);
}

/* --- the slot transitions ------------------------------------------------ */

void eng_index_claim(struct eng_table *t, uint64_t slot, uint32_t hash,
		     uint16_t klen, uint8_t writer)
{
	struct eng_islot *e = &t->slots[slot];

	assert(changes_allowed(t));
	assert(e->state == ENG_SLOT_EMPTY || e->state == ENG_SLOT_DEAD);
	/* The writer first: a holder killed anywhere in here leaves a slot
	 * the repair's eng_index_free_writer finds (never a PENDING key
	 * nobody owns). */
	e->writer = writer;
	atomic_signal_fence(memory_order_seq_cst);
	slot_begin(e);
	if (e->state == ENG_SLOT_DEAD)
		t->dead--;
	t->pending++;
	ST(e->hash, hash);
	ST(e->klen, klen);
	ST(e->voff, 0);
	ST(e->vlen, 0);
	ST(e->version, 0);
	ST(e->state, ENG_SLOT_PENDING);
	slot_end(e);
}

void eng_index_mark_busy(struct eng_table *t, uint64_t slot, uint8_t writer)
{
	assert(changes_allowed(t));
	assert(t->slots[slot].state == ENG_SLOT_LIVE && !t->slots[slot].writer);
	t->slots[slot].writer = writer;
}

void eng_index_publish(struct eng_table *t, uint64_t slot, uint64_t voff,
		       uint32_t vlen, uint64_t version, int del,
		       uint64_t rec_bytes)
{
	struct eng_islot *e = &t->slots[slot];

	assert(changes_allowed(t));
	assert(e->state == ENG_SLOT_LIVE || e->state == ENG_SLOT_PENDING);
	slot_begin(e);
	if (e->state == ENG_SLOT_LIVE)
		t->live_bytes -= eng_rec_size(e->klen, e->vlen);
	else
		t->pending--;
	if (del) {
		if (e->state == ENG_SLOT_LIVE)
			t->live--;
		t->dead++;
	} else {
		if (e->state == ENG_SLOT_PENDING)
			t->live++;
		t->live_bytes += rec_bytes;
	}
	/* A holder killed between any two of these leaves a slot that the
	 * repair's replay of the same record completes: offset first, the
	 * version only once the rest matches it, the state last. */
	ST(e->voff, voff);
	ST(e->vlen, vlen);
	atomic_signal_fence(memory_order_seq_cst);
	ST(e->version, version);
	atomic_signal_fence(memory_order_seq_cst);
	ST(e->state, del ? ENG_SLOT_DEAD : ENG_SLOT_LIVE);
	slot_end(e);
	e->writer = 0;
}

void eng_index_release(struct eng_table *t, uint64_t slot)
{
	struct eng_islot *e = &t->slots[slot];

	assert(changes_allowed(t));
	if (e->state == ENG_SLOT_PENDING) {
		slot_begin(e);
		ST(e->state, ENG_SLOT_DEAD);
		t->pending--;
		t->dead++;
		slot_end(e);
	}
	e->writer = 0;
}

uint64_t eng_index_free_writer(struct eng_table *t, uint8_t writer)
{
	uint64_t n = 0;

	assert(changes_allowed(t));
	for (uint64_t i = 0; i < t->nslots; i++)
		if (t->slots[i].writer == writer) {
			eng_index_release(t, i);
			n++;
		}
	return n;
}

/* --- replay ------------------------------------------------------------------ */

/* A new LIVE entry in free slot i. publish 0: only for a table no reader
 * can see (bulk loading, below), whose slots need no sequence count. */
static void place_at(struct eng_table *t, uint64_t i, const struct eng_entry *e,
		     int publish)
{
	struct eng_islot *s = &t->slots[i];

	if (publish)
		slot_begin(s);
	if (s->state == ENG_SLOT_DEAD)
		t->dead--;
	ST(s->hash, e->hash);
	ST(s->klen, e->klen);
	ST(s->voff, e->voff);
	ST(s->vlen, e->vlen);
	ST(s->version, e->version);
	ST(s->state, ENG_SLOT_LIVE);
	if (publish)
		slot_end(s);
	s->writer = 0;
	t->live++;
	t->live_bytes += eng_rec_size(e->klen, e->vlen);
}

/* The key of entry e now has record e (newer than what slot i holds). */
static void update_at(struct eng_table *t, uint64_t i, const struct eng_entry *e,
		      int del, int publish)
{
	struct eng_islot *s = &t->slots[i];

	if (publish)
		slot_begin(s);
	t->live_bytes -= eng_rec_size(s->klen, s->vlen);
	if (del) {
		t->live--;
		t->dead++;
	} else {
		t->live_bytes += eng_rec_size(e->klen, e->vlen);
	}
	ST(s->voff, e->voff);
	ST(s->vlen, e->vlen);
	atomic_signal_fence(memory_order_seq_cst);
	ST(s->version, e->version);
	atomic_signal_fence(memory_order_seq_cst);
	if (del)
		ST(s->state, ENG_SLOT_DEAD);
	if (publish)
		slot_end(s);
}

static int room_for_replay(const struct eng_table *t)
{
	return eng_index_room(t) != ENG_ROOM_WAIT;
}

/* A key the find did not meet: into the free slot it found, if any and
 * the table has room. */
static int place_new(struct eng_table *t, const struct eng_find *f,
		     const struct eng_entry *e, int publish)
{
	if (f->free_slot == ENG_NO_SLOT || !room_for_replay(t))
		return -ENOSPC;
	place_at(t, f->free_slot, e, publish);
	return 0;
}

static int apply(struct eng_table *t, const char *map, uint64_t off,
		 const struct eng_rec_hdr *h, int publish)
{
	const char *key = map + off + ENG_REC_HDR_SIZE;
	struct eng_entry e = {
		.voff = off + ENG_REC_HDR_SIZE + h->klen, .version = h->version,
		.vlen = h->vlen, .klen = h->klen, .state = ENG_SLOT_LIVE,
		.hash = eng_index_hash(t, key, h->klen),
	};
	struct eng_find f = { .self = 0 };

	if (h->type == ENG_REC_PAD)
		return 0;
	eng_index_find(t, map, key, h->klen, e.hash, &f);
	if (f.slot != ENG_NO_SLOT) {
		/* Not older: set again (a repair replays a record whose
		 * publish may have stopped half way). */
		if (t->slots[f.slot].version > h->version)
			return 0; /* replayed over a newer copy */
		update_at(t, f.slot, &e, h->type == ENG_REC_DEL, publish);
		return 0;
	}
	if (h->type == ENG_REC_DEL)
		return 0;
	return place_new(t, &f, &e, publish);
}

int eng_index_apply(struct eng_table *t, const char *map, uint64_t off,
		    const struct eng_rec_hdr *h)
{
	assert(changes_allowed(t));
	return apply(t, map, off, h, 1);
}

int eng_index_merge(struct eng_table *t, const char *map,
		    const struct eng_entry *e)
{
	struct eng_find f = { .self = 0 };

	assert(changes_allowed(t));
	eng_index_find(t, map, map + e->voff - e->klen, e->klen, e->hash, &f);
	if (f.slot != ENG_NO_SLOT) {
		if (t->slots[f.slot].version < e->version)
			update_at(t, f.slot, e, 0, 1);
		return 0;
	}
	return place_new(t, &f, e, 1);
}

static int add_unique(struct eng_table *t, const char *map,
		      const struct eng_entry *e, int publish)
{
	struct eng_find f = { .self = 0 };

	eng_index_find(t, map, map + e->voff - e->klen, e->klen, e->hash, &f);
	if (f.slot != ENG_NO_SLOT)
		return -EEXIST;
	return place_new(t, &f, e, publish);
}

int eng_index_add_unique(struct eng_table *t, const char *map,
			 const struct eng_entry *e)
{
	assert(changes_allowed(t));
	return add_unique(t, map, e, 1);
}

static int place(struct eng_table *t, const struct eng_entry *e, int publish)
{
	uint64_t i = home(t, e->hash);

	if (!room_for_replay(t))
		return -ENOSPC;
	while (t->slots[i].state != ENG_SLOT_EMPTY)
		i = next(t, i);
	place_at(t, i, e, publish);
	return 0;
}

int eng_index_place(struct eng_table *t, const struct eng_entry *e)
{
	assert(changes_allowed(t));
	return place(t, e, 1);
}

/* --- bulk loading -----------------------------------------------------------
 * Recovery fills the first table before any other process exists: no
 * reader can see a slot half made, so the slots' sequence counts are left
 * alone (they stay even, as a fresh table's are). The fork that makes the
 * first reader orders every store before it. A table whose guard is set
 * has been shown to others: these assert it is not. */

static int private_table(const struct eng_table *t)
{
	return t->guard == NULL;
}

void eng_index_prefetch(const struct eng_table *t, uint32_t hash)
{
	__builtin_prefetch(&t->slots[home(t, hash)], 1);
}

int eng_index_bulk_add_unique(struct eng_table *t, const char *map,
			      const struct eng_entry *e)
{
	assert(private_table(t));
	return add_unique(t, map, e, 0);
}

int eng_index_bulk_place(struct eng_table *t, const struct eng_entry *e)
{
	assert(private_table(t));
	return place(t, e, 0);
}

int eng_index_bulk_apply(struct eng_table *t, const char *map, uint64_t off,
			 const struct eng_rec_hdr *h)
{
	assert(private_table(t));
	return apply(t, map, off, h, 0);
}

/* --- repair -------------------------------------------------------------------- */

/* The header of the record whose value is at voff, if it is a valid
 * record for a key of klen bytes within the first avail bytes. */
static int record_at(const char *map, uint64_t avail, uint64_t voff,
		     uint16_t klen, struct eng_rec_hdr *h)
{
	uint64_t roff;

	if (voff < ENG_FILE_HDR_SIZE + ENG_REC_HDR_SIZE + (uint64_t)klen ||
	    voff > avail)
		return -EBADMSG;
	roff = voff - klen - ENG_REC_HDR_SIZE;
	if (eng_rec_check_hdr(map + roff, avail - roff, h) < 0 ||
	    h->klen != klen)
		return -EBADMSG;
	return 0;
}

void eng_index_unstick(struct eng_table *t)
{
	assert(changes_allowed(t));
	for (uint64_t i = 0; i < t->nslots; i++) {
		uint32_t q = atomic_load(&t->slots[i].seq);
		if (q & 1) /* its writer died inside the change */
			atomic_store(&t->slots[i].seq, q + 1);
	}
}

int eng_index_verify(struct eng_table *t, const char *map, uint64_t avail)
{
	uint64_t live = 0, pending = 0, dead = 0, bytes = 0;

	assert(changes_allowed(t));
	for (uint64_t i = 0; i < t->nslots; i++) {
		struct eng_islot *e = &t->slots[i];
		struct eng_rec_hdr h;

		switch (e->state) {
		case ENG_SLOT_LIVE:
			if (record_at(map, avail, e->voff, e->klen, &h) < 0 ||
			    h.version != e->version || h.vlen != e->vlen ||
			    h.type != ENG_REC_PUT)
				return -EUCLEAN;
			live++;
			bytes += eng_rec_size(e->klen, e->vlen);
			break;
		case ENG_SLOT_PENDING:
			pending++;
			break;
		case ENG_SLOT_DEAD:
			dead++;
			break;
		case ENG_SLOT_EMPTY:
			break;
		default:
			return -EUCLEAN;
		}
	}
	t->live = live;
	t->pending = pending;
	t->dead = dead;
	t->live_bytes = bytes;
	return 0;
}

/* --- lock-free reads ------------------------------------------------------ */

int eng_index_read_slot(const struct eng_table *t, uint64_t i,
			struct eng_entry *e)
{
	uint32_t q;

	if (slot_copy(&t->slots[i], e, &q) < 0)
		return -EAGAIN;
	return e->state == ENG_SLOT_LIVE;
}

int eng_index_lookup(const struct eng_table *t, const char *map,
		     const void *key, uint16_t klen, uint32_t hash,
		     struct eng_entry *e)
{
	uint64_t i = home(t, hash);

	for (uint64_t n = 0; n < t->nslots; n++) {
		const struct eng_islot *s = &t->slots[i];
		uint32_t q;

		if (slot_copy(s, e, &q) < 0)
			return -EAGAIN;
		if (e->state == ENG_SLOT_EMPTY)
			return 0;
		if (e->state != ENG_SLOT_LIVE || e->hash != hash ||
		    e->klen != klen) {
			i = next(t, i);
			continue;
		}
		/* The copy was consistent, so voff names a published
		 * record whose bytes never change; compare, then make sure
		 * the slot still held that record while we did. */
		if (!key_equal(map, e->voff, key, klen)) {
			i = next(t, i);
			continue;
		}
		atomic_thread_fence(memory_order_acquire);
		if (atomic_load_explicit(&s->seq, memory_order_relaxed) == q)
			return 1;
		/* changed under us: look at the same slot again */
	}
	return 0;
}
