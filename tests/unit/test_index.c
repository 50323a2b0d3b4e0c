/* tests/unit/test_index.c — the shared key -> offset table
 * (engine/index.h).
 *
 * Two halves:
 *   - engine_index: a table in private memory, over a database.bin image
 *     in a buffer, driven through the index API as the store drives it
 *     (with no guard mutex: the test is the table's only builder). The
 *     lock-free readers are raced against a writer thread here.
 *   - engine_index_store: the same table inside a real store, for what
 *     only the store can show: --max-keys, reservations of dead workers,
 *     growth and shrinking through the resize job, and the repair after a
 *     holder of the index mutex died.
 *
 * What it must never do: report "full" while --max-keys has room, lose a
 * live key (to a rebuild, a DEAD slot on its probe path, or a reader
 * racing a writer), hand a reader a slot copied half before and half
 * after a change, or leave a key busy (or a slot odd) after a death.
 */
#include "engine/errors.h"
#include "engine/index.h"
#include "engine/job.h"
#include "engine/record.h"
#include "engine/shared.h"
#include "engine/store.h"
#include "tests/unit/unit_util.h"

#include <criterion/criterion.h>
#include <criterion/new/assert.h>
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define KEY_LEN 32
#define WRITER 1               /* worker slot 0 + 1 */
#define LOG_BYTES (1u << 20)   /* a database.bin image big enough for most tests */

/* --- a database.bin image and a private table ------------------------------ */

struct lg {
	char *map;
	uint64_t tail;
	uint64_t cap;
};

static struct lg lg_new(uint64_t cap)
{
	struct eng_mark m = { ENG_FILE_HDR_SIZE, 0 };
	struct lg l = { .map = calloc(1, cap), .tail = ENG_FILE_HDR_SIZE,
			.cap = cap };

	cr_assert_not_null(l.map);
	eng_file_hdr_encode(l.map, 1, &m);
	return l;
}

/* Appends a record; returns its offset. */
static uint64_t lg_add(struct lg *l, enum eng_rec_type type, uint64_t version,
		       const char *key, const char *val)
{
	uint16_t klen = (uint16_t)strlen(key);
	uint32_t vlen = val ? (uint32_t)strlen(val) : 0;
	uint64_t off = l->tail;

	cr_assert_leq(off + eng_rec_size(klen, vlen), l->cap, "log image full");
	eng_rec_encode(l->map + off, type, version, key, klen, val, vlen);
	l->tail += eng_rec_size(klen, vlen);
	return off;
}

static uint64_t voff_of(uint64_t off, const char *key)
{
	return off + ENG_REC_HDR_SIZE + strlen(key);
}

/* Every private table's seed: fixed, so what a test sees repeats. */
static const struct eng_hash_seed test_seed = { 0x0706050403020100ull,
						0x0f0e0d0c0b0a0908ull };

static uint32_t hash_of(const struct eng_table *t, const char *key)
{
	return eng_index_hash(t, key, strlen(key));
}

static uint64_t home_of(const struct eng_table *t, uint32_t hash)
{
	return ((uint64_t)hash * t->nslots) >> 32;
}

/* A table in fresh (zeroed) pages, as an area is. */
static struct eng_table *tbl_new(uint64_t nslots)
{
	size_t n = eng_index_table_bytes(nslots);
	void *p = mmap(NULL, n, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	cr_assert(ne(ptr, p, MAP_FAILED), "mmap: %s", strerror(errno));
	eng_index_init(p, 7, 1, nslots, &test_seed);
	return p;
}

static void tbl_free(struct eng_table *t)
{
	munmap(t, eng_index_table_bytes(t->nslots));
}

/* A single write as engine/write.c makes one: find, claim a new key or
 * mark an existing one busy, append the record, publish. val NULL: a
 * delete. Returns the key's slot. */
static uint64_t write_h(struct eng_table *t, struct lg *l, const char *key,
			uint32_t hash, const char *val, uint64_t version)
{
	uint16_t klen = (uint16_t)strlen(key);
	uint32_t vlen = val ? (uint32_t)strlen(val) : 0;
	struct eng_find f = { .self = 0 };
	uint64_t slot, off;

	eng_index_find(t, l->map, key, klen, hash, &f);
	cr_assert(not(f.busy), "key %s is busy", key);
	if (f.slot != ENG_NO_SLOT) {
		slot = f.slot;
		eng_index_mark_busy(t, slot, WRITER);
	} else {
		cr_assert_not_null(val, "delete of absent key %s", key);
		cr_assert(ne(u64, f.free_slot, ENG_NO_SLOT), "no room for %s", key);
		slot = f.free_slot;
		eng_index_claim(t, slot, hash, klen, WRITER);
	}
	off = lg_add(l, val ? ENG_REC_PUT : ENG_REC_DEL, version, key, val);
	eng_index_publish(t, slot, voff_of(off, key), vlen, version, !val,
			  eng_rec_size(klen, vlen));
	return slot;
}

static uint64_t write_k(struct eng_table *t, struct lg *l, const char *key,
			const char *val, uint64_t version)
{
	return write_h(t, l, key, hash_of(t, key), val, version);
}

/* The lock-free lookup finds key with exactly val at version (val NULL:
 * the key is absent). */
static void expect_h(const struct eng_table *t, const struct lg *l,
		     const char *key, uint32_t hash, const char *val,
		     uint64_t version)
{
	struct eng_entry e;
	uint16_t klen = (uint16_t)strlen(key);
	int rc = eng_index_lookup(t, l->map, key, klen, hash, &e);

	if (!val) {
		cr_assert(eq(int, rc, 0), "key %s should be absent", key);
		return;
	}
	cr_assert(eq(int, rc, 1), "key %s should be present (%d)", key, rc);
	cr_assert(eq(int, e.state, ENG_SLOT_LIVE));
	cr_assert(eq(u32, e.hash, hash));
	cr_assert(eq(int, e.klen, klen));
	cr_assert(eq(u64, e.version, version), "version of %s", key);
	cr_assert(eq(u32, e.vlen, strlen(val)), "length of %s", key);
	cr_assert(eq(int, memcmp(l->map + e.voff - klen, key, klen), 0));
	cr_assert(eq(int, memcmp(l->map + e.voff, val, e.vlen), 0),
		  "value of %s", key);
}

static void expect_k(const struct eng_table *t, const struct lg *l,
		     const char *key, const char *val, uint64_t version)
{
	expect_h(t, l, key, hash_of(t, key), val, version);
}

/* The counters against the slots themselves; an EMPTY slot must remain
 * to end probes, and no slot may be left odd. */
static void expect_table(const struct eng_table *t, uint64_t live,
			 uint64_t pending, uint64_t dead)
{
	uint64_t l = 0, p = 0, d = 0, empty = 0, bytes = 0;

	for (uint64_t i = 0; i < t->nslots; i++) {
		const struct eng_islot *s = &t->slots[i];
		cr_assert(eq(u32, atomic_load(&s->seq) & 1, 0), "slot %llu is odd",
			  (unsigned long long)i);
		l += s->state == ENG_SLOT_LIVE;
		p += s->state == ENG_SLOT_PENDING;
		d += s->state == ENG_SLOT_DEAD;
		empty += s->state == ENG_SLOT_EMPTY;
		if (s->state == ENG_SLOT_LIVE)
			bytes += eng_rec_size(s->klen, s->vlen);
	}
	cr_assert(eq(u64, l, live), "LIVE slots");
	cr_assert(eq(u64, t->live, live), "live counter");
	cr_assert(eq(u64, p, pending), "PENDING slots");
	cr_assert(eq(u64, t->pending, pending), "pending counter");
	cr_assert(eq(u64, d, dead), "DEAD slots");
	cr_assert(eq(u64, t->dead, dead), "dead counter");
	cr_assert(eq(u64, t->live_bytes, bytes), "live_bytes");
	cr_assert(gt(u64, empty, 0), "an EMPTY slot must remain to end probes");
}

static void key_n(char *key, const char *prefix, long n)
{
	snprintf(key, KEY_LEN, "%s%ld", prefix, n);
}

/* --- sizing ------------------------------------------------------------------ */

Test(engine_index, table_bytes_and_slot_layout, .timeout = 5)
{
	struct eng_table *t = tbl_new(64);

	cr_assert(eq(u64, sizeof(struct eng_islot), 32));
	cr_assert(eq(u64, sizeof(struct eng_table), 128));
	cr_assert(eq(u64, offsetof(struct eng_table, slots) % 64, 0),
		  "slots start on a cache line");
	cr_assert(eq(u64, eng_index_table_bytes(0), 128));
	cr_assert(eq(u64, eng_index_table_bytes(ENG_INDEX_MIN_SLOTS),
		     128 + 32ull * ENG_INDEX_MIN_SLOTS));
	cr_assert(eq(u64, eng_index_table_bytes(ENG_INDEX_MAX_SLOTS),
		     128 + (64ull << 30)), "64 GiB for the largest table");
	/* the index keeps the upper half of the key hash, under the
	 * table's seed */
	cr_assert(eq(u32, hash_of(t, "abc"),
		     (uint32_t)(eng_key_hash(&test_seed, "abc", 3) >> 32)));
	tbl_free(t);
}

Test(engine_index, rebuilt_tables_fill_to_7_in_20, .timeout = 5)
{
	static const uint64_t keys[] = { 0, 1, 7, 5733, 5734, 10000, 1 << 20,
					 100000000 };

	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
		uint64_t n = eng_index_slots_for(keys[i], ENG_INDEX_MAX_SLOTS);
		cr_assert(ge(u64, n, ENG_INDEX_MIN_SLOTS), "keys %llu",
			  (unsigned long long)keys[i]);
		/* right after a rebuild keys fill at most 7/20 of it */
		cr_assert(ge(u64, 7 * n, 20 * keys[i]), "keys %llu",
			  (unsigned long long)keys[i]);
		/* ... and not much less, once past the minimum */
		if (n > ENG_INDEX_MIN_SLOTS)
			cr_assert(le(u64, 7 * n, 20 * keys[i] + 20 * 7 + 140),
				  "keys %llu", (unsigned long long)keys[i]);
	}
	/* never past the area's size, however many keys */
	cr_assert(eq(u64, eng_index_slots_for(1000000, 20000), 20000));
	cr_assert(eq(u64, eng_index_slots_for(0, ENG_INDEX_MIN_SLOTS),
		     ENG_INDEX_MIN_SLOTS));
}

/* An area sized for --max-keys holds that many keys without ever asking
 * for a bigger table than it has. */
Test(engine_index, areas_hold_max_keys_below_the_growth_mark, .timeout = 5)
{
	static const uint64_t max_keys[] = { 1, 8, 64, 1000, 20000, 1 << 20,
					     100000000 };

	cr_assert(eq(u64, eng_index_max_slots(0), ENG_INDEX_MAX_SLOTS));
	cr_assert(eq(u64, eng_index_max_slots(1ull << 40), ENG_INDEX_MAX_SLOTS));
	for (size_t i = 0; i < sizeof(max_keys) / sizeof(max_keys[0]); i++) {
		uint64_t k = max_keys[i], n = eng_index_max_slots(k);
		struct eng_table t = { .nslots = n, .live = k - 1 };

		cr_assert(ge(u64, n, ENG_INDEX_MIN_SLOTS));
		cr_assert(le(u64, n, ENG_INDEX_MAX_SLOTS));
		/* the last key still fits without even a rebuild wanted */
		cr_assert(eq(int, eng_index_room(&t), ENG_ROOM_OK),
			  "max_keys %llu", (unsigned long long)k);
		cr_assert(le(u64, eng_index_slots_for(k, n), n));
	}
}

/* --- room and the rebuild thresholds --------------------------------------- */

/* Used slots (LIVE, PENDING and DEAD alike) past 7/10 want a rebuild,
 * past 9/10 new keys wait for it. */
Test(engine_index, room_counts_every_used_slot, .timeout = 5)
{
	static const struct {
		uint64_t used;
		enum eng_room room;
	} cases[] = {
		{ 0, ENG_ROOM_OK }, { 699, ENG_ROOM_OK }, { 700, ENG_ROOM_GROW },
		{ 899, ENG_ROOM_GROW }, { 900, ENG_ROOM_WAIT }, { 999, ENG_ROOM_WAIT },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		for (int kind = 0; kind < 4; kind++) {
			uint64_t u = cases[i].used;
			struct eng_table t = { .nslots = 1000 };

			switch (kind) {
			case 0: t.live = u; break;
			case 1: t.pending = u; break;
			case 2: t.dead = u; break;
			default:
				t.live = u / 3;
				t.pending = u / 3;
				t.dead = u - 2 * (u / 3);
			}
			cr_assert(eq(int, eng_index_room(&t), cases[i].room),
				  "used %llu (kind %d)", (unsigned long long)u, kind);
			cr_assert(eq(int, eng_index_wants_rebuild(&t),
				     cases[i].room != ENG_ROOM_OK),
				  "used %llu (kind %d)", (unsigned long long)u, kind);
		}
}

/* Keys (LIVE and PENDING; DEAD slots are what a rebuild drops) under
 * 1/16 of a table bigger than the minimum shrink it. */
Test(engine_index, shrink_wanted_below_1_in_16, .timeout = 5)
{
	const uint64_t n = 2 * ENG_INDEX_MIN_SLOTS;
	struct eng_table t = { .nslots = n };

	t.live = n / 16 - 1;
	cr_assert(eq(int, eng_index_wants_shrink(&t), 1));
	cr_assert(eq(int, eng_index_wants_rebuild(&t), 1));
	t.live = n / 16;
	cr_assert(eq(int, eng_index_wants_shrink(&t), 0));
	cr_assert(eq(int, eng_index_wants_rebuild(&t), 0));
	t.live = n / 16 - 10;
	t.pending = 10;
	cr_assert(eq(int, eng_index_wants_shrink(&t), 0), "pending keys count");
	t.live = 0;
	t.pending = 0;
	t.dead = n / 2;
	cr_assert(eq(int, eng_index_wants_shrink(&t), 1), "dead slots do not");
	/* never below the minimum */
	t = (struct eng_table){ .nslots = ENG_INDEX_MIN_SLOTS };
	cr_assert(eq(int, eng_index_wants_shrink(&t), 0));
	cr_assert(eq(int, eng_index_wants_rebuild(&t), 0));
	/* only when the rebuilt table would really be smaller */
	t = (struct eng_table){ .nslots = ENG_INDEX_MIN_SLOTS + 1 };
	cr_assert(eq(int, eng_index_wants_shrink(&t), 1));
}

/* Real inserts into a small table: the thresholds fall where the
 * counters say, and a table that must wait still has EMPTY slots. */
Test(engine_index, a_table_fills_to_the_wait_mark_and_no_further, .timeout = 5)
{
	struct eng_table *t = tbl_new(100);
	struct lg l = lg_new(LOG_BYTES);
	char key[KEY_LEN];
	long n = 0, first_grow = -1;

	while (eng_index_room(t) != ENG_ROOM_WAIT) {
		if (first_grow < 0 && eng_index_room(t) == ENG_ROOM_GROW)
			first_grow = n;
		key_n(key, "fill-", n);
		write_k(t, &l, key, key, (uint64_t)n + 1);
		n++;
	}
	cr_assert(eq(i64, first_grow, 70), "a rebuild is wanted past 7/10");
	cr_assert(eq(i64, n, 90), "new keys wait past 9/10");
	expect_table(t, 90, 0, 0);
	for (long i = 0; i < n; i++) {
		key_n(key, "fill-", i);
		expect_k(t, &l, key, key, (uint64_t)i + 1);
	}
	/* a miss ends at an EMPTY slot */
	expect_k(t, &l, "never-written", NULL, 0);
	/* a delete frees no room: its DEAD slot stays used until a rebuild */
	write_k(t, &l, "fill-0", NULL, 1000);
	cr_assert(eq(int, eng_index_room(t), ENG_ROOM_WAIT));
	expect_table(t, 89, 0, 1);
	tbl_free(t);
	free(l.map);
}

/* --- the slot transitions ---------------------------------------------------- */

Test(engine_index, insert_lookup_overwrite_delete, .timeout = 5)
{
	struct eng_table *t = tbl_new(1024);
	struct lg l = lg_new(LOG_BYTES);
	struct eng_find f = { .self = 0 };
	uint32_t h = hash_of(t, "a"), q;
	uint64_t slot, s2;

	expect_k(t, &l, "a", NULL, 0);
	slot = write_k(t, &l, "a", "1", 1);
	expect_k(t, &l, "a", "1", 1);
	expect_table(t, 1, 0, 0);
	cr_assert(eq(u64, t->live_bytes, eng_rec_size(1, 1)));
	eng_index_find(t, l.map, "a", 1, h, &f);
	cr_assert(eq(u64, f.slot, slot));
	cr_assert(eq(int, f.busy, 0));

	/* an overwrite keeps the slot and swaps the record */
	cr_assert(eq(u64, write_k(t, &l, "a", "2222", 2), slot));
	expect_k(t, &l, "a", "2222", 2);
	expect_table(t, 1, 0, 0);
	cr_assert(eq(u64, t->live_bytes, eng_rec_size(1, 4)));

	/* a key being written is busy for writers, readers still see the
	 * published value, and marking it does not touch the seqlock */
	q = atomic_load(&t->slots[slot].seq);
	eng_index_mark_busy(t, slot, WRITER);
	cr_assert(eq(u32, atomic_load(&t->slots[slot].seq), q));
	eng_index_find(t, l.map, "a", 1, h, &f);
	cr_assert(eq(u64, f.slot, slot));
	cr_assert(eq(int, f.busy, 1));
	expect_k(t, &l, "a", "2222", 2);
	eng_index_publish(t, slot, voff_of(lg_add(&l, ENG_REC_PUT, 3, "a", "33"), "a"),
			  2, 3, 0, eng_rec_size(1, 2));
	cr_assert(eq(int, t->slots[slot].writer, 0), "publish frees the key");
	cr_assert(eq(u32, atomic_load(&t->slots[slot].seq), q + 2),
		  "one change: the count went odd and even once");
	expect_k(t, &l, "a", "33", 3);

	/* a delete leaves a DEAD slot where the key was */
	write_k(t, &l, "a", NULL, 4);
	expect_k(t, &l, "a", NULL, 0);
	expect_table(t, 0, 0, 1);
	cr_assert(eq(int, t->slots[slot].state, ENG_SLOT_DEAD));
	eng_index_find(t, l.map, "a", 1, h, &f);
	cr_assert(eq(u64, f.slot, ENG_NO_SLOT));
	cr_assert(eq(u64, f.free_slot, slot), "the DEAD slot is the first free");

	/* ... which the key takes again */
	s2 = write_k(t, &l, "a", "back", 5);
	cr_assert(eq(u64, s2, slot));
	expect_k(t, &l, "a", "back", 5);
	expect_table(t, 1, 0, 0);
	tbl_free(t);
	free(l.map);
}

/* Keys that share a home slot: linear probing, wrapping at the end of the
 * table; keys of the same hash and length told apart by their bytes. */
Test(engine_index, collisions_probe_linearly_and_wrap, .timeout = 5)
{
	struct eng_table *t = tbl_new(64);
	struct lg l = lg_new(LOG_BYTES);
	const uint32_t H = 0xFFFFFFFFu; /* home: the last slot */
	static const char *keys[] = { "c0", "c1", "c2", "c3", "c4" };
	struct eng_find f = { .self = 0 };
	char val[16];

	cr_assert(eq(u64, home_of(t, H), 63));
	for (int i = 0; i < 5; i++) {
		snprintf(val, sizeof(val), "v%d", i);
		cr_assert(eq(u64, write_h(t, &l, keys[i], H, val, (uint64_t)i + 1),
			     (uint64_t)(63 + i) % 64), "%s", keys[i]);
	}
	/* another home, inside the run: placed after it */
	cr_assert(eq(u64, home_of(t, 0), 0));
	cr_assert(eq(u64, write_h(t, &l, "z", 0, "zz", 9), 4));
	for (int i = 0; i < 5; i++) {
		snprintf(val, sizeof(val), "v%d", i);
		expect_h(t, &l, keys[i], H, val, (uint64_t)i + 1);
	}
	expect_h(t, &l, "z", 0, "zz", 9);
	/* same hash: other lengths and bytes are other keys */
	expect_h(t, &l, "c5", H, NULL, 0);
	expect_h(t, &l, "c", H, NULL, 0);
	expect_h(t, &l, "c00", H, NULL, 0);

	/* a delete in the middle of the run keeps the keys after it */
	write_h(t, &l, "c2", H, NULL, 10);
	cr_assert(eq(int, t->slots[1].state, ENG_SLOT_DEAD));
	expect_h(t, &l, "c2", H, NULL, 0);
	expect_h(t, &l, "c3", H, "v3", 4);
	expect_h(t, &l, "c4", H, "v4", 5);
	expect_h(t, &l, "z", 0, "zz", 9);
	/* a new key of the run: the probe goes on to an EMPTY slot to be sure
	 * the key is absent, and takes the first DEAD slot it passed */
	eng_index_find(t, l.map, "c9", 2, H, &f);
	cr_assert(eq(u64, f.slot, ENG_NO_SLOT));
	cr_assert(eq(u64, f.free_slot, 1));
	cr_assert(eq(u64, write_h(t, &l, "c9", H, "v9", 11), 1));
	expect_h(t, &l, "c9", H, "v9", 11);
	expect_table(t, 6, 0, 0);
	tbl_free(t);
	free(l.map);
}

/* A new key is PENDING until published: readers do not see it, writers
 * of any key it might be (same hash, same length) wait for it. */
Test(engine_index, pending_keys_are_invisible_and_busy, .timeout = 5)
{
	struct eng_table *t = tbl_new(64);
	struct lg l = lg_new(LOG_BYTES);
	const uint32_t H = 0x40000000u;
	struct eng_find f = { .self = 0 };
	struct eng_entry e;
	uint64_t off;

	eng_index_find(t, l.map, "pk", 2, H, &f);
	cr_assert(eq(u64, f.free_slot, 16));
	eng_index_claim(t, f.free_slot, H, 2, WRITER);
	expect_table(t, 0, 1, 0);
	cr_assert(eq(int, t->slots[16].writer, WRITER));
	cr_assert(eq(int, eng_index_read_slot(t, 16, &e), 0));
	cr_assert(eq(int, e.state, ENG_SLOT_PENDING));
	expect_h(t, &l, "pk", H, NULL, 0);

	eng_index_find(t, l.map, "pk", 2, H, &f);
	cr_assert(eq(int, f.busy, 1));
	cr_assert(eq(u64, f.slot, ENG_NO_SLOT));
	/* its bytes are not written yet: another key of that hash and
	 * length waits too, rather than guess */
	eng_index_find(t, l.map, "qk", 2, H, &f);
	cr_assert(eq(int, f.busy, 1), "same hash and length");
	/* other lengths or hashes are not held up */
	eng_index_find(t, l.map, "pkk", 3, H, &f);
	cr_assert(eq(int, f.busy, 0));
	cr_assert(eq(u64, f.free_slot, 17));
	eng_index_find(t, l.map, "pk", 2, H + 1, &f);
	cr_assert(eq(int, f.busy, 0));

	off = lg_add(&l, ENG_REC_PUT, 1, "pk", "pv");
	eng_index_publish(t, 16, voff_of(off, "pk"), 2, 1, 0, eng_rec_size(2, 2));
	expect_table(t, 1, 0, 0);
	cr_assert(eq(int, t->slots[16].writer, 0));
	expect_h(t, &l, "pk", H, "pv", 1);
	eng_index_find(t, l.map, "qk", 2, H, &f);
	cr_assert(eq(int, f.busy, 0));
	cr_assert(eq(u64, f.slot, ENG_NO_SLOT));
	cr_assert(eq(u64, f.free_slot, 17));
	tbl_free(t);
	free(l.map);
}

/* A failed or wiped write: a new key is dropped (its slot DEAD, never
 * EMPTY again), an existing one keeps its value; both are free again. */
Test(engine_index, release_drops_new_keys_and_keeps_old_values, .timeout = 5)
{
	struct eng_table *t = tbl_new(64);
	struct lg l = lg_new(LOG_BYTES);
	struct eng_find f = { .self = 0 };
	uint64_t a = write_k(t, &l, "a", "old", 1);
	uint32_t hn = hash_of(t, "new");

	eng_index_find(t, l.map, "new", 3, hn, &f);
	eng_index_claim(t, f.free_slot, hn, 3, WRITER);
	eng_index_mark_busy(t, a, WRITER);
	expect_table(t, 1, 1, 0);

	eng_index_release(t, f.free_slot);
	cr_assert(eq(int, t->slots[f.free_slot].state, ENG_SLOT_DEAD));
	cr_assert(eq(int, t->slots[f.free_slot].writer, 0));
	expect_table(t, 1, 0, 1);
	expect_k(t, &l, "new", NULL, 0);

	eng_index_release(t, a);
	cr_assert(eq(int, t->slots[a].writer, 0));
	expect_k(t, &l, "a", "old", 1);
	expect_table(t, 1, 0, 1);
	eng_index_find(t, l.map, "a", 1, hash_of(t, "a"), &f);
	cr_assert(eq(int, f.busy, 0));
	/* and both take writes again */
	write_k(t, &l, "a", "newer", 2);
	write_k(t, &l, "new", "n", 3);
	expect_k(t, &l, "a", "newer", 2);
	expect_k(t, &l, "new", "n", 3);
	expect_table(t, 2, 0, 0);
	tbl_free(t);
	free(l.map);
}

Test(engine_index, free_writer_frees_only_that_writers_keys, .timeout = 5)
{
	struct eng_table *t = tbl_new(256);
	struct lg l = lg_new(LOG_BYTES);
	const char *mine[] = { "n1", "n2" }, *theirs = "n3";
	struct eng_find f = { .self = 0 };
	uint64_t a = write_k(t, &l, "a", "va", 1), b = write_k(t, &l, "b", "vb", 2);
	uint64_t s_theirs;

	for (int i = 0; i < 2; i++) {
		eng_index_find(t, l.map, mine[i], 2, hash_of(t, mine[i]), &f);
		eng_index_claim(t, f.free_slot, hash_of(t, mine[i]), 2, 1);
	}
	eng_index_find(t, l.map, theirs, 2, hash_of(t, theirs), &f);
	s_theirs = f.free_slot;
	eng_index_claim(t, s_theirs, hash_of(t, theirs), 2, 2);
	eng_index_mark_busy(t, a, 1);
	eng_index_mark_busy(t, b, 2);
	expect_table(t, 2, 3, 0);

	cr_assert(eq(u64, eng_index_free_writer(t, 1), 3));
	expect_table(t, 2, 1, 2);
	cr_assert(eq(int, t->slots[a].writer, 0));
	cr_assert(eq(int, t->slots[b].writer, 2), "another writer's key");
	cr_assert(eq(int, t->slots[s_theirs].state, ENG_SLOT_PENDING));
	cr_assert(eq(int, t->slots[s_theirs].writer, 2));
	expect_k(t, &l, "a", "va", 1);
	cr_assert(eq(u64, eng_index_free_writer(t, 1), 0), "nothing left");
	cr_assert(eq(u64, eng_index_free_writer(t, 2), 2));
	expect_table(t, 2, 0, 3);
	for (uint64_t i = 0; i < t->nslots; i++)
		cr_assert(eq(int, t->slots[i].writer, 0));
	tbl_free(t);
	free(l.map);
}

/* A batch probes for its keys while earlier keys of the same batch are
 * PENDING under its own writer id: own_key tells them apart. */
struct own {
	uint64_t match;  /* the slot that is this very key */
	int calls;
};

static int own_key(uint64_t slot, void *arg)
{
	struct own *o = arg;

	o->calls++;
	return slot == o->match;
}

Test(engine_index, a_batch_tells_its_own_pending_keys_apart, .timeout = 5)
{
	struct eng_table *t = tbl_new(64);
	struct lg l = lg_new(LOG_BYTES);
	const uint32_t H = 0x80000000u; /* home 32 */
	const uint8_t self = 3;
	struct own o = { .match = ENG_NO_SLOT };
	struct eng_find f = { .self = self, .own_key = own_key, .own_arg = &o };
	uint64_t live;

	/* the batch's first new key, PENDING at the home slot */
	eng_index_claim(t, 32, H, 2, self);
	/* its second key, same hash and length: not this one, probe on */
	eng_index_find(t, l.map, "b2", 2, H, &f);
	cr_assert(eq(int, o.calls, 1));
	cr_assert(eq(int, f.busy, 0));
	cr_assert(eq(int, f.dup, 0));
	cr_assert(eq(u64, f.free_slot, 33));
	eng_index_claim(t, 33, H, 2, self);
	/* the first key again (written twice in one batch): a dup */
	o.match = 32;
	o.calls = 0;
	eng_index_find(t, l.map, "b1", 2, H, &f);
	cr_assert(eq(int, o.calls, 1));
	cr_assert(eq(int, f.dup, 1));
	cr_assert(eq(int, f.busy, 1));
	/* another writer's PENDING key is busy, and not asked about */
	eng_index_claim(t, 34, H, 2, 5);
	o.match = ENG_NO_SLOT;
	o.calls = 0;
	eng_index_find(t, l.map, "b3", 2, H, &f);
	cr_assert(eq(int, o.calls, 2), "own keys at 32 and 33 only");
	cr_assert(eq(int, f.busy, 1));
	cr_assert(eq(int, f.dup, 0));
	/* a LIVE key the batch marked: found, busy, and a dup */
	live = write_k(t, &l, "live", "v", 1);
	eng_index_mark_busy(t, live, self);
	f.self = self;
	eng_index_find(t, l.map, "live", 4, hash_of(t, "live"), &f);
	cr_assert(eq(u64, f.slot, live));
	cr_assert(eq(int, f.busy, 1));
	cr_assert(eq(int, f.dup, 1));
	/* ... and for anyone else merely busy */
	f.self = 0;
	eng_index_find(t, l.map, "live", 4, hash_of(t, "live"), &f);
	cr_assert(eq(int, f.busy, 1));
	cr_assert(eq(int, f.dup, 0));
	cr_assert(eq(u64, eng_index_free_writer(t, self), 3));
	tbl_free(t);
	free(l.map);
}

/* --- replay: apply, merge, place ------------------------------------------- */

static int apply_at(struct eng_table *t, const struct lg *l, uint64_t off)
{
	struct eng_rec_hdr h;

	cr_assert(eq(int, eng_rec_check_hdr(l->map + off, l->tail - off, &h), 0));
	return eng_index_apply(t, l->map, off, &h);
}

Test(engine_index, apply_replays_the_log_newest_version_wins, .timeout = 5)
{
	struct eng_table *t = tbl_new(1024);
	struct lg l = lg_new(LOG_BYTES);
	uint64_t a1 = lg_add(&l, ENG_REC_PUT, 1, "a", "one");
	uint64_t b2 = lg_add(&l, ENG_REC_PUT, 2, "b", "two");
	uint64_t a3 = lg_add(&l, ENG_REC_PUT, 3, "a", "three");
	uint64_t b4 = lg_add(&l, ENG_REC_DEL, 4, "b", NULL);
	uint64_t pad = l.tail, c5;

	eng_rec_encode_pad(l.map + pad, 64, ENG_REC_F_REPAIRED);
	l.tail += 64;
	c5 = lg_add(&l, ENG_REC_DEL, 5, "c", NULL);

	cr_assert(eq(int, apply_at(t, &l, a1), 0));
	expect_k(t, &l, "a", "one", 1);
	cr_assert(eq(int, apply_at(t, &l, b2), 0));
	cr_assert(eq(int, apply_at(t, &l, a3), 0));
	expect_k(t, &l, "a", "three", 3);
	expect_k(t, &l, "b", "two", 2);
	expect_table(t, 2, 0, 0);
	cr_assert(eq(int, apply_at(t, &l, b4), 0));
	expect_k(t, &l, "b", NULL, 0);
	expect_table(t, 1, 0, 1);
	cr_assert(eq(int, apply_at(t, &l, pad), 0), "a PAD indexes nothing");
	cr_assert(eq(int, apply_at(t, &l, c5), 0), "a tombstone of an absent key");
	expect_table(t, 1, 0, 1);

	/* an older record never wins over a newer one */
	cr_assert(eq(int, apply_at(t, &l, a1), 0));
	expect_k(t, &l, "a", "three", 3);
	/* replaying the same records again changes nothing */
	cr_assert(eq(int, apply_at(t, &l, a3), 0));
	cr_assert(eq(int, apply_at(t, &l, b4), 0));
	expect_k(t, &l, "a", "three", 3);
	expect_k(t, &l, "b", NULL, 0);
	expect_table(t, 1, 0, 1);
	cr_assert(eq(int, eng_index_verify(t, l.map, l.tail), 0));
	tbl_free(t);
	free(l.map);
}

/* A repair replays the record a dead holder was publishing over a slot
 * it left half changed (offset and length set, version or state not):
 * the same version is set again, so the slot comes out whole. */
Test(engine_index, apply_completes_a_half_published_slot, .timeout = 5)
{
	struct eng_table *t = tbl_new(1024);
	struct lg l = lg_new(LOG_BYTES);
	uint64_t s = write_k(t, &l, "k", "first", 1);
	uint64_t off2 = lg_add(&l, ENG_REC_PUT, 2, "k", "second!"), off3;

	/* killed after the offset and length, before the version */
	t->slots[s].voff = voff_of(off2, "k");
	t->slots[s].vlen = 7;
	cr_assert(eq(int, eng_index_verify(t, l.map, l.tail), -EUCLEAN));
	cr_assert(eq(int, apply_at(t, &l, off2), 0));
	expect_k(t, &l, "k", "second!", 2);
	cr_assert(eq(int, eng_index_verify(t, l.map, l.tail), 0));
	expect_table(t, 1, 0, 0);

	/* a delete killed before the state: LIVE, pointing at a tombstone */
	off3 = lg_add(&l, ENG_REC_DEL, 3, "k", NULL);
	t->slots[s].voff = voff_of(off3, "k");
	t->slots[s].vlen = 0;
	t->slots[s].version = 3;
	cr_assert(eq(int, eng_index_verify(t, l.map, l.tail), -EUCLEAN));
	cr_assert(eq(int, apply_at(t, &l, off3), 0));
	cr_assert(eq(int, t->slots[s].state, ENG_SLOT_DEAD));
	expect_k(t, &l, "k", NULL, 0);
	cr_assert(eq(int, eng_index_verify(t, l.map, l.tail), 0));
	expect_table(t, 0, 0, 1);
	tbl_free(t);
	free(l.map);
}

/* Replay into a table past 9/10: new keys get -ENOSPC (the caller
 * rebuilds bigger); keys it holds still take their records. */
Test(engine_index, apply_refuses_only_new_keys_when_full, .timeout = 5)
{
	struct eng_table *t = tbl_new(10);
	struct lg l = lg_new(LOG_BYTES);
	char key[KEY_LEN];
	uint64_t off;
	int n = 0;

	for (;; n++) {
		key_n(key, "k", n);
		off = lg_add(&l, ENG_REC_PUT, (uint64_t)n + 1, key, key);
		if (apply_at(t, &l, off) == -ENOSPC)
			break;
		cr_assert_lt(n, 10);
	}
	cr_assert(eq(int, n, 9), "room for 9 of 10 slots");
	expect_k(t, &l, key, NULL, 0);
	expect_table(t, 9, 0, 0);
	off = lg_add(&l, ENG_REC_PUT, 100, "k3", "again");
	cr_assert(eq(int, apply_at(t, &l, off), 0), "an existing key");
	expect_k(t, &l, "k3", "again", 100);
	off = lg_add(&l, ENG_REC_DEL, 101, "k4", NULL);
	cr_assert(eq(int, apply_at(t, &l, off), 0), "a tombstone");
	expect_k(t, &l, "k4", NULL, 0);
	expect_table(t, 8, 0, 1);
	tbl_free(t);
	free(l.map);
}

/* A rebuild merges the current table's entries into the new table while
 * the catch-up may already have put newer records there. */
Test(engine_index, merge_keeps_the_newer_version, .timeout = 5)
{
	struct eng_table *src = tbl_new(256), *dst = tbl_new(1024);
	struct lg l = lg_new(LOG_BYTES);
	uint64_t merged = 0;

	write_k(src, &l, "same", "s1", 1);
	write_k(src, &l, "older-in-dst", "src-new", 5);
	write_k(src, &l, "newer-in-dst", "src-old", 2);
	write_k(src, &l, "only-src", "o", 3);
	write_k(src, &l, "dead", "d", 4);
	write_k(src, &l, "dead", NULL, 6);

	write_k(dst, &l, "older-in-dst", "dst-old", 1);
	write_k(dst, &l, "newer-in-dst", "dst-new", 7);
	write_k(dst, &l, "only-dst", "x", 8);

	for (uint64_t i = 0; i < src->nslots; i++) {
		struct eng_entry e;
		int rc = eng_index_read_slot(src, i, &e);
		cr_assert(ge(int, rc, 0));
		if (!rc)
			continue;
		cr_assert(eq(int, eng_index_merge(dst, l.map, &e), 0));
		merged++;
	}
	cr_assert(eq(u64, merged, 4), "only LIVE entries are copied");
	expect_k(dst, &l, "same", "s1", 1);
	expect_k(dst, &l, "older-in-dst", "src-new", 5);
	expect_k(dst, &l, "newer-in-dst", "dst-new", 7);
	expect_k(dst, &l, "only-src", "o", 3);
	expect_k(dst, &l, "only-dst", "x", 8);
	expect_k(dst, &l, "dead", NULL, 0);
	expect_table(dst, 5, 0, 0);
	cr_assert(eq(int, eng_index_verify(dst, l.map, l.tail), 0));
	tbl_free(src);
	tbl_free(dst);
	free(l.map);
}

Test(engine_index, merge_and_place_refuse_past_the_wait_mark, .timeout = 5)
{
	struct eng_table *src = tbl_new(64), *dst = tbl_new(10);
	struct lg l = lg_new(LOG_BYTES);
	char key[KEY_LEN];
	int placed = 0, refused = 0;

	for (int i = 0; i < 20; i++) {
		key_n(key, "m", i);
		write_k(src, &l, key, key, (uint64_t)i + 1);
	}
	for (uint64_t i = 0; i < src->nslots; i++) {
		struct eng_entry e;
		if (eng_index_read_slot(src, i, &e) != 1)
			continue;
		if (eng_index_merge(dst, l.map, &e) == 0)
			placed++;
		else
			refused++;
	}
	cr_assert(eq(int, placed, 9));
	cr_assert(eq(int, refused, 11));
	expect_table(dst, 9, 0, 0);
	/* place: the same limit */
	{
		struct eng_entry e = { .hash = 1, .klen = 1, .vlen = 0, .voff = 100,
				       .version = 1, .state = ENG_SLOT_LIVE };
		cr_assert(eq(int, eng_index_place(dst, &e), -ENOSPC));
		expect_table(dst, 9, 0, 0);
	}
	tbl_free(src);
	tbl_free(dst);
	free(l.map);
}

/* Loading a snapshot of unique keys: each goes to the first EMPTY slot
 * from its home, findable by lookup and by the mutex's find. */
Test(engine_index, place_fills_a_fresh_table, .timeout = 5)
{
	struct eng_table *t = tbl_new(128);
	struct lg l = lg_new(LOG_BYTES);
	char key[KEY_LEN];
	uint64_t offs[40];

	for (int i = 0; i < 40; i++) {
		key_n(key, "snap-", i);
		offs[i] = lg_add(&l, ENG_REC_PUT, (uint64_t)i + 10, key, key);
	}
	for (int i = 0; i < 40; i++) {
		struct eng_entry e = { .version = (uint64_t)i + 10,
				       .state = ENG_SLOT_LIVE };
		key_n(key, "snap-", i);
		e.hash = hash_of(t, key);
		e.klen = (uint16_t)strlen(key);
		e.vlen = (uint32_t)strlen(key);
		e.voff = voff_of(offs[i], key);
		cr_assert(eq(int, eng_index_place(t, &e), 0));
	}
	expect_table(t, 40, 0, 0);
	for (int i = 0; i < 40; i++) {
		struct eng_find f = { .self = 0 };
		key_n(key, "snap-", i);
		expect_k(t, &l, key, key, (uint64_t)i + 10);
		eng_index_find(t, l.map, key, (uint16_t)strlen(key), hash_of(t, key), &f);
		cr_assert(ne(u64, f.slot, ENG_NO_SLOT));
	}
	cr_assert(eq(int, eng_index_verify(t, l.map, l.tail), 0));
	tbl_free(t);
	free(l.map);
}

/* --- verify and unstick (the repair after a dead holder) ------------------- */

Test(engine_index, verify_recounts_and_catches_damage, .timeout = 5)
{
	struct eng_table *t = tbl_new(1024);
	struct lg l = lg_new(LOG_BYTES);
	uint64_t b, saved, end_b;
	struct eng_find f = { .self = 0 };
	struct eng_islot *e;
	uint32_t hp = hash_of(t, "p");

	write_k(t, &l, "a", "1", 1);
	b = write_k(t, &l, "b", "22", 2);
	end_b = l.tail;
	write_k(t, &l, "c", "333", 3);
	write_k(t, &l, "c", NULL, 4);
	eng_index_find(t, l.map, "p", 1, hp, &f);
	eng_index_claim(t, f.free_slot, hp, 1, WRITER); /* in flight */
	e = &t->slots[b];
	cr_assert(eq(int, eng_index_verify(t, l.map, l.tail), 0));
	expect_table(t, 2, 1, 1);

	/* counters a dead holder left half updated are recounted */
	t->live = 99;
	t->pending = 0;
	t->dead = 0;
	t->live_bytes = 1;
	cr_assert(eq(int, eng_index_verify(t, l.map, l.tail), 0));
	cr_assert(eq(u64, t->live, 2));
	cr_assert(eq(u64, t->pending, 1));
	cr_assert(eq(u64, t->dead, 1));
	cr_assert(eq(u64, t->live_bytes, eng_rec_size(1, 1) + eng_rec_size(1, 2)));

	/* an entry that disagrees with its record cannot be trusted */
	saved = e->version;
	e->version++;
	cr_assert(eq(int, eng_index_verify(t, l.map, l.tail), -EUCLEAN), "version");
	e->version = saved;
	e->vlen++;
	cr_assert(eq(int, eng_index_verify(t, l.map, l.tail), -EUCLEAN), "length");
	e->vlen--;
	e->klen++;
	cr_assert(eq(int, eng_index_verify(t, l.map, l.tail), -EUCLEAN), "key length");
	e->klen--;
	saved = e->voff;
	e->voff += ENG_REC_ALIGN;
	cr_assert(eq(int, eng_index_verify(t, l.map, l.tail), -EUCLEAN), "offset");
	e->voff = l.tail + 100;
	cr_assert(eq(int, eng_index_verify(t, l.map, l.tail), -EUCLEAN),
		  "offset past the log");
	e->voff = 1;
	cr_assert(eq(int, eng_index_verify(t, l.map, l.tail), -EUCLEAN),
		  "offset inside the file header");
	e->voff = saved;
	/* a log shorter than the record: it is not all there */
	cr_assert(eq(int, eng_index_verify(t, l.map, end_b - 1), -EUCLEAN),
		  "record cut short");
	cr_assert(eq(int, eng_index_verify(t, l.map, end_b), 0),
		  "only LIVE slots need their records: a's and b's end here");
	tbl_free(t);
	free(l.map);
}

Test(engine_index, verify_refuses_unknown_states_and_tombstones, .timeout = 5)
{
	struct eng_table *t = tbl_new(64);
	struct lg l = lg_new(LOG_BYTES);
	uint64_t s = write_k(t, &l, "a", "1", 1), off;

	t->slots[s].state = 7;
	cr_assert(eq(int, eng_index_verify(t, l.map, l.tail), -EUCLEAN), "state 7");
	t->slots[s].state = ENG_SLOT_LIVE;
	cr_assert(eq(int, eng_index_verify(t, l.map, l.tail), 0));
	/* LIVE pointing at a tombstone of the same version */
	off = lg_add(&l, ENG_REC_DEL, 1, "a", NULL);
	t->slots[s].voff = voff_of(off, "a");
	t->slots[s].vlen = 0;
	cr_assert(eq(int, eng_index_verify(t, l.map, l.tail), -EUCLEAN), "a DEL");
	/* LIVE pointing at a damaged record */
	off = lg_add(&l, ENG_REC_PUT, 1, "a", "1");
	t->slots[s].voff = voff_of(off, "a");
	t->slots[s].vlen = 1;
	cr_assert(eq(int, eng_index_verify(t, l.map, l.tail), 0));
	l.map[off + 16] ^= 1; /* a bit of the version */
	cr_assert(eq(int, eng_index_verify(t, l.map, l.tail), -EUCLEAN),
		  "a header that fails its crc");
	tbl_free(t);
	free(l.map);
}

/* A holder killed inside a change leaves the slot's count odd: readers
 * give up on it (-EAGAIN: take the mutex), and the repair's unstick
 * makes it readable again. */
Test(engine_index, odd_slots_stop_readers_until_unstuck, .timeout = 5)
{
	struct eng_table *t = tbl_new(64);
	struct lg l = lg_new(LOG_BYTES);
	const uint32_t H = 0x20000000u; /* home 8 */
	struct eng_entry e;
	uint32_t before[64];

	write_h(t, &l, "x0", H, "v0", 1);  /* slot 8 */
	write_h(t, &l, "x1", H, "v1", 2);  /* slot 9 */
	write_k(t, &l, "elsewhere", "v", 3);
	cr_assert(ne(u64, home_of(t, hash_of(t, "elsewhere")), 8));
	cr_assert(ne(u64, home_of(t, hash_of(t, "elsewhere")), 9));
	for (int i = 0; i < 64; i++)
		before[i] = atomic_load(&t->slots[i].seq);

	atomic_fetch_add(&t->slots[8].seq, 1); /* killed after slot_begin */
	cr_assert(eq(int, eng_index_read_slot(t, 8, &e), -EAGAIN));
	cr_assert(eq(int, eng_index_lookup(t, l.map, "x0", 2, H, &e), -EAGAIN));
	cr_assert(eq(int, eng_index_lookup(t, l.map, "x1", 2, H, &e), -EAGAIN),
		  "its probe passes the odd slot");
	expect_k(t, &l, "elsewhere", "v", 3);
	cr_assert(eq(int, eng_index_read_slot(t, 9, &e), 1));

	eng_index_unstick(t);
	for (int i = 0; i < 64; i++)
		cr_assert(eq(u32, atomic_load(&t->slots[i].seq),
			     before[i] + (i == 8 ? 2 : 0)), "slot %d", i);
	expect_h(t, &l, "x0", H, "v0", 1);
	expect_h(t, &l, "x1", H, "v1", 2);
	/* the slot takes changes again */
	write_h(t, &l, "x0", H, "w0", 4);
	expect_h(t, &l, "x0", H, "w0", 4);
	eng_index_unstick(t);
	cr_assert(eq(u32, atomic_load(&t->slots[8].seq), before[8] + 4),
		  "even counts are left alone");
	tbl_free(t);
	free(l.map);
}

Test(engine_index, read_slot_reports_live_entries_only, .timeout = 5)
{
	struct eng_table *t = tbl_new(64);
	struct lg l = lg_new(LOG_BYTES);
	const uint32_t H = 0x10000000u; /* home 4 */
	struct eng_entry e;
	uint64_t off;

	cr_assert(eq(int, eng_index_read_slot(t, 4, &e), 0));
	cr_assert(eq(int, e.state, ENG_SLOT_EMPTY));
	eng_index_claim(t, 4, H, 2, WRITER);
	cr_assert(eq(int, eng_index_read_slot(t, 4, &e), 0));
	cr_assert(eq(int, e.state, ENG_SLOT_PENDING));
	off = lg_add(&l, ENG_REC_PUT, 9, "rk", "value");
	eng_index_publish(t, 4, voff_of(off, "rk"), 5, 9, 0, eng_rec_size(2, 5));
	cr_assert(eq(int, eng_index_read_slot(t, 4, &e), 1));
	cr_assert(eq(int, e.state, ENG_SLOT_LIVE));
	cr_assert(eq(u64, e.voff, voff_of(off, "rk")));
	cr_assert(eq(u32, e.vlen, 5));
	cr_assert(eq(u64, e.version, 9));
	cr_assert(eq(u32, e.hash, H));
	cr_assert(eq(int, e.klen, 2));
	write_h(t, &l, "rk", H, NULL, 10);
	cr_assert(eq(int, eng_index_read_slot(t, 4, &e), 0));
	cr_assert(eq(int, e.state, ENG_SLOT_DEAD));
	tbl_free(t);
	free(l.map);
}

/* --- hash flooding ---------------------------------------------------------- */

/* The key hash caskd used before its hash was keyed (issue 18): no seed,
 * and every step invertible, so anyone could compute keys that share a
 * hash. Kept here only to build such keys. */
#define OLD_MIX_MUL 0xd6e8feb86659fd93ull

static uint64_t old_mix64(uint64_t x)
{
	x ^= x >> 32;
	x *= OLD_MIX_MUL;
	x ^= x >> 32;
	x *= OLD_MIX_MUL;
	x ^= x >> 32;
	return x;
}

static uint64_t old_unmix64(uint64_t x)
{
	uint64_t inv = OLD_MIX_MUL;

	/* Newton's iteration for the inverse of an odd number mod 2^64:
	 * each step doubles the correct low bits (3, 6, ..., 96) */
	for (int i = 0; i < 5; i++)
		inv *= 2 - OLD_MIX_MUL * inv;
	x ^= x >> 32; /* x ^= x >> 32 undoes itself */
	x *= inv;
	x ^= x >> 32;
	x *= inv;
	x ^= x >> 32;
	return x;
}

/* The old hash of an 8-byte key: one word, no tail. */
static uint64_t old_hash8(const char key[8])
{
	uint64_t w;

	memcpy(&w, key, 8);
	return old_mix64(old_mix64((0x9e3779b97f4a7c15ull ^ 8) ^ w));
}

/* n distinct 8-byte keys without a NUL byte (keys may hold any other
 * byte) whose old hashes all have the same upper 32 bits, the part the
 * index keeps: under the old hash they share one home slot. */
static char *flood_keys(size_t n)
{
	char *keys = malloc(n * 8);
	size_t got = 0;

	cr_assert_not_null(keys);
	for (uint64_t low = 0; got < n; low++) {
		uint64_t h = 0x5eedf1d0ull << 32 | low;
		uint64_t w = old_unmix64(old_unmix64(h)) ^ (0x9e3779b97f4a7c15ull ^ 8);
		char *k = keys + got * 8;

		memcpy(k, &w, 8);
		if (memchr(k, 0, 8))
			continue;
		cr_assert(eq(u64, old_hash8(k), h), "the inverse is exact");
		got++;
	}
	return keys;
}

/* Probes a lookup of every LIVE key makes (1 + its distance from its home
 * slot: no DEAD slot sits in the way here), and the longest run of used
 * slots, which bounds the probes of an insert or a miss. */
static void probe_counts(const struct eng_table *t, uint64_t *probes,
			 uint64_t *longest)
{
	uint64_t run = 0;

	*probes = *longest = 0;
	for (uint64_t i = 0; i < 2 * t->nslots; i++) {
		const struct eng_islot *s = &t->slots[i % t->nslots];
		if (s->state == ENG_SLOT_EMPTY) {
			run = 0;
			continue;
		}
		if (++run > *longest)
			*longest = run;
		if (i < t->nslots && s->state == ENG_SLOT_LIVE)
			*probes += (i + t->nslots - home_of(t, s->hash)) % t->nslots + 1;
	}
}

/* 20000 keys chosen to collide under the old hash, replayed into a table
 * as recovery and compaction do: the old hash put them all in one cluster
 * (200 million probes to look them all up, every insert walking the whole
 * cluster under the index mutex); keyed, they spread like any keys. The
 * counts are exact for the fixed seed, not timings. */
Test(engine_index, keys_colliding_under_the_old_hash_spread, .timeout = 60)
{
	enum { N = 20000 };
	char *keys = flood_keys(N);
	struct eng_table *t = tbl_new(eng_index_slots_for(N, ENG_INDEX_MAX_SLOTS));
	struct lg l = lg_new(ENG_FILE_HDR_SIZE + (uint64_t)N * eng_rec_size(8, 1));
	uint64_t probes, longest;

	for (size_t i = 0; i < N; i++) {
		char key[9];
		memcpy(key, keys + i * 8, 8);
		key[8] = '\0';
		cr_assert(eq(int, apply_at(t, &l, lg_add(&l, ENG_REC_PUT, i + 1, key, "v")), 0));
	}
	expect_table(t, N, 0, 0);
	probe_counts(t, &probes, &longest);
	cr_log_info("%d flooding keys in %llu slots: %llu probes to look each up once, "
		    "longest run %llu", N, (unsigned long long)t->nslots,
		    (unsigned long long)probes, (unsigned long long)longest);
	/* linear probing at 7/20 full: about 1.3 probes a key, runs of tens */
	cr_assert(le(u64, probes, 2 * (uint64_t)N), "probes: %llu",
		  (unsigned long long)probes);
	cr_assert(le(u64, longest, 64), "longest run: %llu", (unsigned long long)longest);
	free(keys);
	tbl_free(t);
	free(l.map);
}

/* A writer hashes before it takes the mutex, under whatever table is
 * current then; the table it finds under the mutex may be another one. */
Test(engine_index, a_hash_taken_for_one_seed_is_retaken_for_another, .timeout = 5)
{
	const struct eng_hash_seed other = { 5, 6 };
	struct eng_table *a = tbl_new(64), *same = tbl_new(128);
	struct eng_table *b = mmap(NULL, eng_index_table_bytes(64), PROT_READ | PROT_WRITE,
				   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	struct eng_khash kh = { .hash = 0 };

	cr_assert(ne(ptr, b, MAP_FAILED));
	eng_index_init(b, 8, 1, 64, &other);
	cr_assert(ne(u32, hash_of(a, "k"), hash_of(b, "k")), "the seeds differ");
	cr_assert(eq(u32, eng_index_hash_for(a, "k", 1, &kh), hash_of(a, "k")));
	cr_assert(eq(u32, eng_index_hash_for(b, "k", 1, &kh), hash_of(b, "k")),
		  "retaken for a table keyed otherwise");
	cr_assert(eq(u32, eng_index_hash_for(a, "k", 1, &kh), hash_of(a, "k")));
	/* a table with the same seed (a grown one) keeps the hash as it is */
	kh.hash ^= 1;
	cr_assert(eq(u32, eng_index_hash_for(same, "k", 1, &kh), hash_of(a, "k") ^ 1));
	tbl_free(a);
	tbl_free(b);
	tbl_free(same);
}

/* --- lock-free readers racing a writer ------------------------------------- */

/* The writer republishes one key over and over; version v points at
 * record v % RING of a ring written before the race, whose length and
 * bytes follow from its place in the ring. Readers copy the slot
 * (read_slot, lookup) and check that each copy is one publish, whole:
 * offset, length and value bytes all those of the version's record. A
 * torn copy (the offset of one publish, the version of the next) fails
 * that. The writer does nothing but publish, back to back, so readers
 * land in the middle of changes as often as they can. Bounded: PUBLISHES
 * changes; readers stop when the writer is done (or at READS_MAX). */
#define PUBLISHES 8000000
#define RING 512
#define READS_MAX 100000000
#define RACE_READERS 2
#define FULL_CHECK_EVERY 64
#define HOT_VLEN(j) (1 + (uint32_t)((j) % 29))
#define HOT_BYTE(j) ('a' + (int)((j) % 26))

struct race {
	struct eng_table *t;
	struct lg *l;
	uint64_t slot;
	uint32_t hash;
	uint64_t offs[RING];  /* record j of the ring */
	_Atomic int ready;    /* readers running: the writer starts then */
	_Atomic int done;
	uint64_t last_version;
};

struct reader {
	struct race *r;
	int by_lookup;
	uint64_t reads, retries, torn, missing, backwards, last;
};

static void *race_writer(void *arg)
{
	struct race *r = arg;

	while (atomic_load(&r->ready) < RACE_READERS)
		sched_yield();
	for (uint64_t v = 2; v < 2 + PUBLISHES; v++) {
		uint64_t j = v % RING;
		eng_index_mark_busy(r->t, r->slot, WRITER);
		eng_index_publish(r->t, r->slot, r->offs[j] + ENG_REC_HDR_SIZE + 3,
				  HOT_VLEN(j), v, 0, eng_rec_size(3, HOT_VLEN(j)));
		r->last_version = v;
	}
	atomic_store_explicit(&r->done, 1, memory_order_release);
	return NULL;
}

/* 1 if e is a whole publish of the hot key (full: its record's
 * checksums too). */
static int whole(const struct race *r, const struct eng_entry *e, int full)
{
	uint64_t j = e->version % RING;
	const char *rec = r->l->map + r->offs[j];
	struct eng_rec_hdr h;

	if (e->state != ENG_SLOT_LIVE || e->klen != 3 || e->hash != r->hash ||
	    e->voff != r->offs[j] + ENG_REC_HDR_SIZE + 3 ||
	    e->vlen != HOT_VLEN(j) || r->l->map[e->voff] != HOT_BYTE(j) ||
	    r->l->map[e->voff + e->vlen - 1] != HOT_BYTE(j))
		return 0;
	if (!full)
		return 1;
	return !eng_rec_check_hdr(rec, eng_rec_size(3, e->vlen), &h) &&
	       !eng_rec_check_data(rec, &h) && h.vlen == e->vlen &&
	       !memcmp(rec + ENG_REC_HDR_SIZE, "hot", 3);
}

static void *race_reader(void *arg)
{
	struct reader *rd = arg;
	struct race *r = rd->r;
	int last_round = 0;

	atomic_fetch_add(&r->ready, 1);
	for (uint64_t i = 0; i < READS_MAX && !last_round; i++) {
		struct eng_entry e;
		int rc;

		/* one more copy after the writer is done: it must be its last */
		last_round = atomic_load_explicit(&r->done, memory_order_acquire);
		rc = rd->by_lookup ?
			eng_index_lookup(r->t, r->l->map, "hot", 3, r->hash, &e) :
			eng_index_read_slot(r->t, r->slot, &e);
		if (rc == -EAGAIN) { /* the writer was preempted mid-change */
			rd->retries++;
			last_round = 0;
			continue;
		}
		if (rc != 1) {
			rd->missing++;
			continue;
		}
		rd->reads++;
		if (!whole(r, &e, i % FULL_CHECK_EVERY == 0))
			rd->torn++;
		if (e.version < rd->last)
			rd->backwards++;
		rd->last = e.version;
	}
	return NULL;
}

Test(engine_index, readers_never_copy_a_torn_slot, .timeout = 60)
{
	struct lg l = lg_new((uint64_t)(RING + 8) * eng_rec_size(3, 32));
	struct race r = { .t = tbl_new(1024), .l = &l };
	struct reader rd[RACE_READERS];
	pthread_t w, th[RACE_READERS];
	char val[32];

	r.hash = hash_of(r.t, "hot");
	for (uint64_t j = 0; j < RING; j++) {
		memset(val, HOT_BYTE(j), HOT_VLEN(j));
		val[HOT_VLEN(j)] = '\0';
		r.offs[j] = lg_add(&l, ENG_REC_PUT, j, "hot", val);
	}
	r.slot = write_k(r.t, &l, "hot", "first", 1);
	eng_index_mark_busy(r.t, r.slot, WRITER);
	eng_index_publish(r.t, r.slot, r.offs[1] + ENG_REC_HDR_SIZE + 3,
			  HOT_VLEN(1), 1, 0, eng_rec_size(3, HOT_VLEN(1)));
	for (int i = 0; i < RACE_READERS; i++) {
		rd[i] = (struct reader){ .r = &r, .by_lookup = i % 2 };
		cr_assert(eq(int, pthread_create(&th[i], NULL, race_reader, &rd[i]), 0));
	}
	cr_assert(eq(int, pthread_create(&w, NULL, race_writer, &r), 0));
	cr_assert(eq(int, pthread_join(w, NULL), 0));
	for (int i = 0; i < RACE_READERS; i++)
		cr_assert(eq(int, pthread_join(th[i], NULL), 0));

	for (int i = 0; i < RACE_READERS; i++) {
		cr_log_info("reader %d (%s): %llu copies, %llu retries", i,
			    rd[i].by_lookup ? "lookup" : "read_slot",
			    (unsigned long long)rd[i].reads,
			    (unsigned long long)rd[i].retries);
		cr_assert(gt(u64, rd[i].reads, 0));
		cr_assert(eq(u64, rd[i].torn, 0), "reader %d copied %llu torn slots",
			  i, (unsigned long long)rd[i].torn);
		cr_assert(eq(u64, rd[i].missing, 0), "reader %d lost the key", i);
		cr_assert(eq(u64, rd[i].backwards, 0), "reader %d went back", i);
		cr_assert(eq(u64, rd[i].last, r.last_version),
			  "reader %d's copy after the end", i);
	}
	cr_assert(eq(u64, r.last_version, PUBLISHES + 1));
	memset(val, HOT_BYTE(r.last_version % RING), HOT_VLEN(r.last_version % RING));
	val[HOT_VLEN(r.last_version % RING)] = '\0';
	expect_k(r.t, &l, "hot", val, r.last_version);
	expect_table(r.t, 1, 0, 0);
	tbl_free(r.t);
	free(l.map);
}

/* Slots are never moved and never become EMPTY again: a key published
 * behind a run of keys that the writer keeps deleting and inserting
 * (DEAD, PENDING, LIVE, DEAD ...) is found by every probe. */
#define CHURN_KEYS 6
#define CHURN_CHANGES 40000

struct chain {
	struct eng_table *t;
	struct lg *l;
	uint32_t hash;
	uint64_t stable_voff;
	_Atomic int ready;
	_Atomic int done;
	int errors;         /* writer: a step that did not go as expected */
};

struct chain_reader {
	struct chain *c;
	uint64_t found, retries, lost, wrong, churn_seen;
};

static const char *churn_key(int i)
{
	static const char *k[CHURN_KEYS] = { "r0", "r1", "r2", "r3", "r4", "r5" };
	return k[i];
}

static void *chain_writer(void *arg)
{
	struct chain *c = arg;
	int live[CHURN_KEYS];

	for (int i = 0; i < CHURN_KEYS; i++)
		live[i] = 1;
	while (atomic_load(&c->ready) < RACE_READERS)
		sched_yield();
	for (uint64_t n = 0, v = 100; n < CHURN_CHANGES; n++, v++) {
		int i = (int)(n * 7 % CHURN_KEYS);
		const char *key = churn_key(i);
		struct eng_find f = { .self = 0 };
		uint64_t slot, off = c->l->tail;

		eng_index_find(c->t, c->l->map, key, 2, c->hash, &f);
		if (f.busy || (live[i] ? f.slot == ENG_NO_SLOT :
			       f.slot != ENG_NO_SLOT || f.free_slot == ENG_NO_SLOT)) {
			c->errors++;
			break;
		}
		if (live[i]) {
			slot = f.slot;
			eng_index_mark_busy(c->t, slot, WRITER);
			eng_rec_encode(c->l->map + off, ENG_REC_DEL, v, key, 2, NULL, 0);
		} else {
			slot = f.free_slot;
			eng_index_claim(c->t, slot, c->hash, 2, WRITER);
			eng_rec_encode(c->l->map + off, ENG_REC_PUT, v, key, 2, "vv", 2);
		}
		c->l->tail += eng_rec_size(2, live[i] ? 0 : 2);
		eng_index_publish(c->t, slot, off + ENG_REC_HDR_SIZE + 2,
				  live[i] ? 0 : 2, v, live[i], eng_rec_size(2, 2));
		live[i] = !live[i];
	}
	atomic_store_explicit(&c->done, 1, memory_order_release);
	return NULL;
}

static void *chain_reader(void *arg)
{
	struct chain_reader *rd = arg;
	struct chain *c = rd->c;

	atomic_fetch_add(&c->ready, 1);
	for (uint64_t n = 0; n < READS_MAX &&
	     !atomic_load_explicit(&c->done, memory_order_acquire); n++) {
		struct eng_entry e;
		const char *key = churn_key((int)(n % CHURN_KEYS));
		int rc = eng_index_lookup(c->t, c->l->map, "stable", 6, c->hash, &e);

		if (rc == -EAGAIN) {
			rd->retries++;
			continue;
		}
		if (rc != 1) {
			rd->lost++;
			continue;
		}
		rd->found++;
		if (e.voff != c->stable_voff || e.vlen != 6 || e.version != 50)
			rd->wrong++;
		/* the churning keys come and go, but are never torn */
		rc = eng_index_lookup(c->t, c->l->map, key, 2, c->hash, &e);
		if (rc == 1) {
			rd->churn_seen++;
			if (e.vlen != 2 || memcmp(c->l->map + e.voff - 2, key, 2) ||
			    memcmp(c->l->map + e.voff, "vv", 2))
				rd->wrong++;
		}
	}
	return NULL;
}

Test(engine_index, probes_find_keys_behind_churning_slots, .timeout = 60)
{
	struct lg l = lg_new((uint64_t)(CHURN_CHANGES + 64) * eng_rec_size(2, 2));
	struct chain c = { .t = tbl_new(64), .l = &l, .hash = 0x80000000u };
	struct chain_reader rd[RACE_READERS];
	pthread_t w, th[RACE_READERS];
	uint64_t live = 1;

	/* the run: r0..r5 at 32..37, stable behind them at 38 */
	for (int i = 0; i < CHURN_KEYS; i++)
		cr_assert(eq(u64, write_h(c.t, &l, churn_key(i), c.hash, "vv", 1),
			     32 + (uint64_t)i));
	cr_assert(eq(u64, write_h(c.t, &l, "stable", c.hash, "stable", 50), 38));
	c.stable_voff = c.t->slots[38].voff;
	for (int i = 0; i < RACE_READERS; i++) {
		rd[i] = (struct chain_reader){ .c = &c };
		cr_assert(eq(int, pthread_create(&th[i], NULL, chain_reader, &rd[i]), 0));
	}
	cr_assert(eq(int, pthread_create(&w, NULL, chain_writer, &c), 0));
	cr_assert(eq(int, pthread_join(w, NULL), 0));
	for (int i = 0; i < RACE_READERS; i++)
		cr_assert(eq(int, pthread_join(th[i], NULL), 0));

	cr_assert(eq(int, c.errors, 0), "the writer's find went wrong");
	for (int i = 0; i < RACE_READERS; i++) {
		cr_log_info("reader %d: %llu found, %llu retries, %llu churn keys seen",
			    i, (unsigned long long)rd[i].found,
			    (unsigned long long)rd[i].retries,
			    (unsigned long long)rd[i].churn_seen);
		cr_assert(eq(u64, rd[i].lost, 0), "reader %d lost the stable key", i);
		cr_assert(eq(u64, rd[i].wrong, 0), "reader %d copied a wrong entry", i);
	}
	expect_h(c.t, &l, "stable", c.hash, "stable", 50);
	/* DEAD slots were reused: the run never grew past its 7 slots */
	for (uint64_t i = 0; i < c.t->nslots; i++)
		if (i < 32 || i > 38)
			cr_assert(eq(int, c.t->slots[i].state, ENG_SLOT_EMPTY),
				  "slot %llu", (unsigned long long)i);
	for (int i = 0; i < CHURN_KEYS; i++) {
		struct eng_entry e;
		live += eng_index_lookup(c.t, l.map, churn_key(i), 2, c.hash, &e) == 1;
	}
	expect_table(c.t, live, 0, 7 - live);
	cr_assert(eq(int, eng_index_verify(c.t, l.map, l.tail), 0));
	tbl_free(c.t);
	free(l.map);
}

/* --- through the store ------------------------------------------------------ */

#define SMALL_MAX_KEYS 8
#define CHURN_MAX_KEYS 64
#define CHURN_CYCLES 24000
#define CHURN_CHECK_EVERY 2000
#define GROW_MAX_KEYS 20000

UU_DIR_SUITE(engine_index_store, "index");

static struct eng_table *cur_table(struct eng_db *db)
{
	return eng_cur_table(db->sh);
}

/* Counters of the current table against its slots. Reads the table
 * without the mutex: only while no other process writes. */
static void expect_counts(struct eng_db *db, uint64_t live, uint64_t pending)
{
	struct eng_table *t = cur_table(db);
	uint64_t l = 0, p = 0, d = 0, empty = 0;

	for (uint64_t i = 0; i < t->nslots; i++) {
		uint8_t s = t->slots[i].state;
		l += s == ENG_SLOT_LIVE;
		p += s == ENG_SLOT_PENDING;
		d += s == ENG_SLOT_DEAD;
		empty += s == ENG_SLOT_EMPTY;
		cr_assert(eq(u32, atomic_load(&t->slots[i].seq) & 1, 0),
			  "slot %llu left odd", (unsigned long long)i);
	}
	cr_assert(eq(u64, t->live, live));
	cr_assert(eq(u64, l, live), "LIVE slots");
	cr_assert(eq(u64, t->pending, pending));
	cr_assert(eq(u64, p, pending), "PENDING slots");
	cr_assert(eq(u64, t->dead, d), "DEAD slots");
	cr_assert(gt(u64, empty, 0), "an EMPTY slot must remain to end probes");
}

/* The slot of key's entry (LIVE), or ENG_NO_SLOT; without the mutex. */
static uint64_t slot_of(struct eng_db *db, const char *key)
{
	struct eng_table *t = cur_table(db);
	struct eng_find f = { .self = 0 };

	eng_index_find(t, db->map, key, (uint16_t)strlen(key), hash_of(t, key), &f);
	return f.slot;
}


/* A write that failed half way and whose wipe failed too leaves garbage
 * the durable mark must stay below. A compaction's catch-up starts there
 * (nothing below it is in flight) and copies bytes as they are: it used
 * to copy the garbage under the new file's mark, and the next start
 * refused the file as corrupt. */
Test(engine_index_store, compaction_over_an_unwiped_failed_write_restarts,
     .timeout = 30)
{
	struct eng_db db;
	struct eng_recovery rep;
	uint64_t id;
	pid_t pid;
	int rc;

	uu_open_rw(fx.dir, UU_MAX_KEYS, &db, &rep);
	cr_assert(eq(int, uu_put(&db, "before", "old", NULL), 0));
	cr_assert(eq(int, uu_put(&db, "before", "kept", NULL), 0));
	pid = fork();
	cr_assert_geq(pid, 0);
	if (pid == 0) {
		uu_child_init();
		if (eng_db_attach(&db, 1))
			_exit(1);
		uu_child_arm("io.write.torn=eio,io.discard=eio");
		if (uu_put(&db, "failed", "a value whose write tore half way", NULL) == 0)
			_exit(2);
		_exit(UU_CHILD_OK);
	}
	uu_expect_exit_ok(pid, "torn writer");
	cr_assert(eq(int, uu_put(&db, "after", "later", NULL), 0));
	cr_assert(eq(int, eng_job_request_compact(&db, &id), 0));
	cr_assert(eq(int, uu_run_job(&db).kind, ENG_JOB_COMPACT));
	uu_expect_val(&db, "before", "kept");
	uu_expect_val(&db, "after", "later");
	uu_expect_val(&db, "failed", NULL);
	uu_close(&db);
	/* a start that scans the whole file (database.idx would skip the
	 * garbage: it covers the log up to the tail) */
	{
		char idx[256];
		uu_path(idx, sizeof(idx), fx.dir, "database.idx");
		cr_assert(eq(int, unlink(idx), 0));
	}
	rc = uu_open(fx.dir, UU_MAX_KEYS, &db, &rep);
	cr_assert(eq(int, rc, 0), "restart after the compaction: %s (damage at %llu)",
		  eng_strerror(rc), (unsigned long long)rep.bad_off);
	uu_expect_val(&db, "before", "kept");
	uu_expect_val(&db, "after", "later");
	uu_expect_val(&db, "failed", NULL);
	uu_close(&db);
}

Test(engine_index_store, full_at_max_keys_overwrite_and_delete_still_work,
     .timeout = 10)
{
	struct eng_db db;
	struct eng_recovery rep;
	struct eng_result res;
	char key[KEY_LEN];
	int rc;

	uu_open_rw(fx.dir, SMALL_MAX_KEYS, &db, &rep);
	for (int i = 0; i < SMALL_MAX_KEYS; i++) {
		key_n(key, "k", i);
		rc = uu_put(&db, key, "v", NULL);
		cr_assert(eq(int, rc, 0), "key %d: %s", i, eng_strerror(rc));
	}
	cr_assert(eq(int, uu_put(&db, "one-too-many", "v", NULL), ENG_EFULL));
	cr_assert(eq(int, uu_incr(&db, "one-too-many", 1, NULL), ENG_EFULL));
	uu_expect_val(&db, "one-too-many", NULL);
	expect_counts(&db, SMALL_MAX_KEYS, 0);

	/* a full index still takes overwrites and increments of its keys */
	cr_assert(eq(int, uu_put(&db, "k3", "replaced", &res), 0));
	cr_assert(eq(int, res.created, 0));
	uu_expect_val(&db, "k3", "replaced");
	cr_assert(eq(int, uu_put(&db, "k4", "41", NULL), 0));
	cr_assert(eq(int, uu_incr(&db, "k4", 1, NULL), 0));
	uu_expect_val(&db, "k4", "42");

	/* a delete makes room for exactly one new key */
	cr_assert(eq(int, uu_del(&db, "k0", NULL), 0));
	cr_assert(eq(int, uu_put(&db, "newcomer", "v", &res), 0));
	cr_assert(eq(int, res.created, 1));
	cr_assert(eq(int, uu_put(&db, "another", "v", NULL), ENG_EFULL));
	uu_expect_val(&db, "newcomer", "v");
	uu_expect_val(&db, "k0", NULL);
	for (int i = 1; i < SMALL_MAX_KEYS; i++) {
		struct eng_val v;
		key_n(key, "k", i);
		cr_assert(eq(int, eng_get(&db, key, strlen(key), &v), 0), "%s", key);
		eng_val_release(&db, &v);
	}
	expect_counts(&db, SMALL_MAX_KEYS, 0);
	uu_close(&db);
}

/* A write between reservation and publish counts against --max-keys
 * (its key is PENDING): two writers cannot both take the last place. */
Test(engine_index_store, pending_new_key_holds_its_place, .timeout = 10)
{
	struct eng_db db;
	struct eng_recovery rep;
	char key[KEY_LEN];
	uint64_t slot;
	int rc;

	uu_open_rw(fx.dir, SMALL_MAX_KEYS, &db, &rep);
	for (int i = 0; i < SMALL_MAX_KEYS - 1; i++) {
		key_n(key, "k", i);
		cr_assert(eq(int, uu_put(&db, key, "v", NULL), 0));
	}
	uu_crash_writer(&db, 1, "log.after_reserve=crash", "last-place", "v");
	expect_counts(&db, SMALL_MAX_KEYS - 1, 1);
	slot = db.sh->seats[1].inflight.slot;
	cr_assert(ne(u64, db.sh->seats[1].inflight.off, 0));
	cr_assert(eq(int, cur_table(&db)->slots[slot].state, ENG_SLOT_PENDING));
	cr_assert(eq(int, cur_table(&db)->slots[slot].writer, 2));
	cr_assert(eq(int, uu_put(&db, "late", "v", NULL), ENG_EFULL));
	uu_expect_val(&db, "last-place", NULL);
	cr_assert(eq(int, uu_put(&db, "last-place", "mine", NULL), -EAGAIN),
		  "the key is being written by the dead worker");

	rc = eng_db_reap_worker(&db, 1);
	cr_assert(eq(int, rc, 0), "%s", eng_strerror(rc));
	expect_counts(&db, SMALL_MAX_KEYS - 1, 0);
	cr_assert(eq(int, cur_table(&db)->slots[slot].state, ENG_SLOT_DEAD));
	cr_assert(eq(int, uu_put(&db, "late", "v", NULL), 0));
	cr_assert(eq(int, uu_put(&db, "last-place", "v", NULL), ENG_EFULL));
	uu_close(&db);
}

/* Deletes leave DEAD slots; only rebuilds let new keys in forever. Any
 * slip shows as a false ENG_EFULL, a wait that never ends, a lost key,
 * or a wrong counter. */
Test(engine_index_store, delete_insert_churn_never_reports_full_wrongly,
     .timeout = 60)
{
	struct eng_db db;
	struct eng_recovery rep;
	char key[KEY_LEN];
	long oldest = 0;
	int rebuilds = 0, rc;

	uu_open_rw(fx.dir, CHURN_MAX_KEYS, &db, &rep);
	for (long i = 0; i < CHURN_MAX_KEYS; i++) {
		key_n(key, "churn-", i);
		cr_assert(eq(int, uu_put(&db, key, key, NULL), 0));
	}
	for (long c = 0; c < CHURN_CYCLES; c++) {
		long fresh = CHURN_MAX_KEYS + c;

		key_n(key, "churn-", oldest++);
		rc = uu_del(&db, key, NULL);
		cr_assert(eq(int, rc, 0), "cycle %ld: delete %s: %s", c, key,
			  eng_strerror(rc));
		key_n(key, "churn-", fresh);
		rc = uu_put(&db, key, key, NULL);
		cr_assert(eq(int, rc, 0), "cycle %ld: insert %s: %s", c, key,
			  eng_strerror(rc));
		if (db.sh->want_resize) {
			struct eng_job_info j;
			/* asked for at 7/10 used, long before new keys wait */
			cr_assert(eq(int, eng_index_room(cur_table(&db)), ENG_ROOM_GROW));
			j = uu_run_job(&db);
			cr_assert(eq(int, j.kind, ENG_JOB_RESIZE));
			cr_assert(eq(u64, j.keys, CHURN_MAX_KEYS));
			cr_assert(eq(u64, cur_table(&db)->dead, 0), "the rebuild drops DEAD slots");
			cr_assert(eq(u64, cur_table(&db)->nslots, ENG_INDEX_MIN_SLOTS));
			rebuilds++;
		}
		if (c % CHURN_CHECK_EVERY)
			continue;
		expect_counts(&db, CHURN_MAX_KEYS, 0);
		for (long k = oldest; k <= fresh; k++) {
			key_n(key, "churn-", k);
			uu_expect_val(&db, key, key);
		}
	}
	cr_assert(ge(int, rebuilds, 1), "the churn must have filled the table");
	expect_counts(&db, CHURN_MAX_KEYS, 0);
	uu_close(&db);

	/* recovery replays all of it */
	rc = uu_open(fx.dir, CHURN_MAX_KEYS, &db, &rep);
	cr_assert(eq(int, rc, 0), "%s", eng_strerror(rc));
	cr_assert(eq(u64, rep.keys, CHURN_MAX_KEYS));
	cr_assert(eq(u64, rep.records, CHURN_MAX_KEYS + 2 * CHURN_CYCLES));
	uu_close(&db);
	uu_open_rw(fx.dir, CHURN_MAX_KEYS, &db, &rep);
	for (long k = oldest; k < oldest + CHURN_MAX_KEYS; k++) {
		key_n(key, "churn-", k);
		uu_expect_val(&db, key, key);
	}
	key_n(key, "churn-", oldest - 1);
	uu_expect_val(&db, key, NULL);
	expect_counts(&db, CHURN_MAX_KEYS, 0);
	uu_close(&db);
}

/* New keys: past 7/10 a rebuild is asked for, past 9/10 they wait
 * (-EAGAIN, never ENG_EFULL below --max-keys) until it grew the table;
 * once the keys are gone a rebuild shrinks it back. No key is lost on
 * the way. */
Test(engine_index_store, the_table_grows_and_shrinks_through_rebuilds,
     .timeout = 60)
{
	struct eng_db db;
	struct eng_recovery rep;
	struct eng_job_info j;
	struct eng_hash_seed seed;
	char key[KEY_LEN];
	uint64_t nslots;
	long n = 0, asked_at = -1;
	int rc;

	uu_open_rw(fx.dir, GROW_MAX_KEYS, &db, &rep);
	nslots = cur_table(&db)->nslots;
	seed = cur_table(&db)->seed;
	cr_assert(eq(u64, nslots, ENG_INDEX_MIN_SLOTS));
	for (;; n++) {
		key_n(key, "grow-", n);
		rc = uu_put(&db, key, key, NULL);
		if (rc == -EAGAIN)
			break;
		cr_assert(eq(int, rc, 0), "key %ld: %s", n, eng_strerror(rc));
		if (asked_at < 0 && db.sh->want_resize)
			asked_at = n;
	}
	cr_assert(eq(i64, asked_at, (int64_t)(nslots * 7 / 10)),
		  "a rebuild is asked for past 7/10");
	cr_assert(eq(i64, n, (int64_t)(nslots * 9 / 10)), "new keys wait past 9/10");
	expect_counts(&db, (uint64_t)n, 0);
	/* the wait ends with the rebuild: bigger, every key kept */
	j = uu_run_job(&db);
	cr_assert(eq(int, j.kind, ENG_JOB_RESIZE));
	cr_assert(eq(u64, j.keys, (uint64_t)n));
	cr_assert(gt(u64, cur_table(&db)->nslots, nslots));
	cr_assert(eq(u64, cur_table(&db)->nslots,
		     eng_index_slots_for((uint64_t)n, db.sh->area_slots)));
	cr_assert(eq(int, db.sh->want_resize, 0));
	cr_assert(eq(int, eng_hash_seed_eq(&cur_table(&db)->seed, &seed), 1),
		  "a rebuild copies the hashes: it keeps the seed");
	for (long i = 0; i < n; i++) {
		key_n(key, "grow-", i);
		uu_expect_val(&db, key, key);
	}
	/* on to --max-keys */
	for (; n < GROW_MAX_KEYS; n++) {
		key_n(key, "grow-", n);
		rc = uu_put(&db, key, key, NULL);
		cr_assert(eq(int, rc, 0), "key %ld: %s", n, eng_strerror(rc));
	}
	cr_assert(eq(int, uu_put(&db, "one-more", "v", NULL), ENG_EFULL));
	cr_assert(eq(int, uu_run_job(&db).kind, ENG_JOB_NONE), "nothing to rebuild");
	expect_counts(&db, GROW_MAX_KEYS, 0);
	for (long i = 0; i < n; i++) {
		key_n(key, "grow-", i);
		uu_expect_val(&db, key, key);
	}
	/* all gone: the master's next look shrinks the table */
	for (long i = 0; i < n; i++) {
		key_n(key, "grow-", i);
		cr_assert(eq(int, uu_del(&db, key, NULL), 0));
	}
	expect_counts(&db, 0, 0);
	cr_assert(eq(int, eng_index_wants_shrink(cur_table(&db)), 1));
	/* this rebuild ends before its start is recorded: it is done all
	 * the same, not failed and "undone" */
	j = uu_run_job_in(&db, UU_ENDS_FIRST);
	cr_assert(eq(int, j.kind, ENG_JOB_RESIZE));
	cr_assert(eq(u64, j.keys, 0));
	cr_assert(eq(u64, cur_table(&db)->nslots, ENG_INDEX_MIN_SLOTS));
	cr_assert(eq(u64, cur_table(&db)->dead, 0));
	cr_assert(eq(int, eng_hash_seed_eq(&cur_table(&db)->seed, &seed), 1),
		  "and so does a shrink");
	cr_assert(eq(int, uu_put(&db, "grow-0", "again", NULL), 0));
	uu_expect_val(&db, "grow-0", "again");
	uu_expect_val(&db, "grow-1", NULL);
	expect_counts(&db, 1, 0);
	uu_close(&db);
}

/* Which seed each table gets: a start that scans the log and a
 * compaction make new ones (nothing learnt about the old hashes carries
 * over); a start from database.idx takes the one its hashes are under.
 * Every key stays readable and writable across each change. */
static void expect_keys(struct eng_db *db, long n, const char *val)
{
	char key[KEY_LEN];

	for (long i = 0; i < n; i++) {
		key_n(key, "seed-", i);
		uu_expect_val(db, key, val);
	}
}

Test(engine_index_store, each_table_is_keyed_as_it_was_built, .timeout = 30)
{
	enum { N = 200 };
	struct eng_db db;
	struct eng_recovery rep;
	struct eng_hash_seed first, scanned;
	char key[KEY_LEN], path[UU_DIR_MAX + 16];
	uint64_t id;

	uu_open_rw(fx.dir, UU_MAX_KEYS, &db, &rep);
	first = cur_table(&db)->seed;
	cr_assert(ne(u64, first.k0 | first.k1, 0));
	for (long i = 0; i < N; i++) {
		key_n(key, "seed-", i);
		cr_assert(eq(int, uu_put(&db, key, "v1", NULL), 0));
	}
	cr_assert(eq(int, eng_db_save_index(&db), 0)); /* as a clean stop does */
	uu_close(&db);

	/* from the snapshot: its hashes, its seed */
	uu_open_rw(fx.dir, UU_MAX_KEYS, &db, &rep);
	cr_assert(eq(int, rep.from_snapshot, 1), "%s", rep.note);
	cr_assert(eq(int, eng_hash_seed_eq(&cur_table(&db)->seed, &first), 1));
	expect_keys(&db, N, "v1");
	uu_close(&db);

	/* from a scan: a new one */
	snprintf(path, sizeof(path), "%s/database.idx", fx.dir);
	cr_assert(eq(int, unlink(path), 0));
	uu_open_rw(fx.dir, UU_MAX_KEYS, &db, &rep);
	cr_assert(eq(int, rep.from_snapshot, 0));
	scanned = cur_table(&db)->seed;
	cr_assert(eq(int, eng_hash_seed_eq(&scanned, &first), 0));
	expect_keys(&db, N, "v1");

	/* a compaction: a new one, and writes after it find their keys */
	cr_assert(eq(int, eng_job_request_compact(&db, &id), 0));
	cr_assert(eq(int, uu_run_job(&db).kind, ENG_JOB_COMPACT));
	cr_assert(eq(int, eng_hash_seed_eq(&cur_table(&db)->seed, &scanned), 0));
	expect_keys(&db, N, "v1");
	for (long i = 0; i < N; i++) {
		key_n(key, "seed-", i);
		cr_assert(eq(int, uu_put(&db, key, "v2", NULL), 0));
	}
	expect_keys(&db, N, "v2");
	expect_counts(&db, N, 0);
	uu_close(&db);
}

/* --- repair after a dead holder of the index mutex ------------------------- */

/* A worker killed inside reserve(), holding the index mutex, after it
 * marked its keys as being written but before it named the reservation
 * in its in-flight entry. Nothing names those keys any more: unless the
 * repair frees them, every later write to them is -EAGAIN until restart.
 * The child plays that state with the index calls reserve() makes. */
Test(engine_index_store, death_in_reserve_does_not_leave_a_key_busy,
     .timeout = 10)
{
	struct eng_db db;
	struct eng_recovery rep;
	pid_t pid;

	uu_open_rw(fx.dir, UU_MAX_KEYS, &db, &rep);
	cr_assert(eq(int, uu_put(&db, "live", "v", NULL), 0));
	pid = fork();
	cr_assert_geq(pid, 0);
	if (pid == 0) {
		struct eng_table *t;
		struct eng_find f = { .self = 0 };
		uint32_t hash;

		uu_child_init();
		if (eng_db_attach(&db, 1) ||
		    ipc_mtx_lock(&db.sh->index_mtx, NULL, NULL))
			_exit(1);
		t = eng_cur_table(db.sh);
		hash = hash_of(t, "new");
		/* as reserve() does for an existing key ... */
		eng_index_find(t, db.map, "live", 4, hash_of(t, "live"), &f);
		if (f.slot == ENG_NO_SLOT || f.busy)
			_exit(2);
		db.sh->seq++;
		eng_index_mark_busy(t, f.slot, 2);
		/* ... and for a new one */
		eng_index_find(t, db.map, "new", 3, hash, &f);
		if (f.slot != ENG_NO_SLOT || f.free_slot == ENG_NO_SLOT)
			_exit(3);
		eng_index_claim(t, f.free_slot, hash, 3, 2);
		_exit(UU_CHILD_OK); /* holding the mutex */
	}
	uu_expect_exit_ok(pid, "dies in reserve");
	expect_counts(&db, 1, 1);
	cr_assert(eq(u32, db.sh->index_mtx.repairs, 0));
	/* the next writer takes the mutex: the repair runs */
	cr_assert(eq(int, uu_put(&db, "live", "w", NULL), 0),
		  "the existing key must not stay busy");
	cr_assert(eq(u32, db.sh->index_mtx.repairs, 1));
	cr_assert(eq(int, uu_put(&db, "new", "n", NULL), 0),
		  "the new key must not stay busy");
	cr_assert(eq(int, eng_db_reap_worker(&db, 1), 0));
	uu_expect_val(&db, "live", "w");
	uu_expect_val(&db, "new", "n");
	expect_counts(&db, 2, 0);
	for (uint64_t i = 0; i < cur_table(&db)->nslots; i++)
		cr_assert(eq(int, cur_table(&db)->slots[i].writer, 0));
	uu_close(&db);
}

/* A holder killed in the middle of a slot change (SIGKILL lands between
 * any two stores) leaves the slot's count odd. The repair must make it
 * even again whatever the dead process was doing, or every probe that
 * passes the slot stops lock-free readers for good, and the next change
 * to it trips the seqlock's assertion. The child plays the states
 * eng_index_claim (writer first, then the change under the count) and
 * eng_index_release leave part way through. */
enum half { HALF_CLAIM, HALF_CLAIM_EARLY, HALF_RELEASE };

static void child_dies_mid_change(struct eng_db *db, enum half how)
{
	struct eng_table *t;
	struct eng_find f = { .self = 0 };
	uint32_t hash;
	struct eng_islot *s;

	uu_child_init();
	if (how == HALF_RELEASE) {
		/* a reservation for "new" whose write failed: reserve() went
		 * through, the release after the failed write is cut short */
		if (eng_db_attach(db, 1) ||
		    ipc_mtx_lock(&db->sh->index_mtx, NULL, NULL))
			_exit(1);
		t = eng_cur_table(db->sh);
		hash = hash_of(t, "new");
		eng_index_find(t, db->map, "new", 3, hash, &f);
		if (f.free_slot == ENG_NO_SLOT)
			_exit(2);
		eng_index_claim(t, f.free_slot, hash, 3, 2);
		db->sh->seats[1].inflight.off = db->sh->tail;
		db->sh->seats[1].inflight.len = eng_rec_size(3, 1);
		db->sh->seats[1].inflight.slot = (uint32_t)f.free_slot;
		db->sh->seats[1].inflight.nrec = 1;
		db->sh->tail += eng_rec_size(3, 1);
		s = &t->slots[f.free_slot];
		atomic_fetch_add(&s->seq, 1);   /* release: slot_begin */
		s->state = ENG_SLOT_DEAD;
		t->pending--;
		_exit(UU_CHILD_OK);             /* before dead++ and slot_end */
	}
	if (eng_db_attach(db, 1) || ipc_mtx_lock(&db->sh->index_mtx, NULL, NULL))
		_exit(1);
	t = eng_cur_table(db->sh);
	hash = hash_of(t, "new");
	eng_index_find(t, db->map, "new", 3, hash, &f);
	if (f.slot != ENG_NO_SLOT || f.free_slot == ENG_NO_SLOT)
		_exit(2);
	s = &t->slots[f.free_slot];
	s->writer = 2;
	atomic_fetch_add(&s->seq, 1);           /* slot_begin */
	t->pending++;
	s->hash = hash;
	if (how == HALF_CLAIM) {
		s->klen = 3;
		s->state = ENG_SLOT_PENDING;
	}
	_exit(UU_CHILD_OK);                     /* before slot_end */
}

static void dies_mid_change(enum half how)
{
	struct eng_db db;
	struct eng_recovery rep;
	struct eng_entry e;
	uint32_t hash;
	uint64_t slot;
	pid_t pid;
	int rc;

	uu_open_rw(fx.dir, UU_MAX_KEYS, &db, &rep);
	hash = hash_of(cur_table(&db), "new");
	cr_assert(eq(int, uu_put(&db, "before", "b", NULL), 0));
	pid = fork();
	cr_assert_geq(pid, 0);
	if (pid == 0)
		child_dies_mid_change(&db, how);
	uu_expect_exit_ok(pid, "dies mid-change");
	/* the state the child left: one odd slot on the key's probe */
	rc = eng_index_lookup(cur_table(&db), db.map, "new", 3, hash, &e);
	cr_assert(eq(int, rc, -EAGAIN), "the slot should be odd (%d)", rc);

	/* the next locker repairs */
	cr_assert(eq(int, uu_put(&db, "other", "o", NULL), 0));
	cr_assert(eq(u32, db.sh->index_mtx.repairs, 1));
	rc = eng_index_lookup(cur_table(&db), db.map, "new", 3, hash, &e);
	cr_assert(eq(int, rc, 0), "no slot may stay odd after the repair (%d)", rc);
	if (how == HALF_RELEASE) {
		/* its range is named: the master's reap wipes it, frees it */
		cr_assert(eq(int, eng_db_reap_worker(&db, 1), 0));
	}
	rc = uu_put(&db, "new", "n", NULL);
	cr_assert(eq(int, rc, 0), "the key must take writes: %s", eng_strerror(rc));
	if (how != HALF_RELEASE)
		cr_assert(eq(int, eng_db_reap_worker(&db, 1), 0));
	uu_expect_val(&db, "new", "n");
	uu_expect_val(&db, "before", "b");
	uu_expect_val(&db, "other", "o");
	slot = slot_of(&db, "new");
	cr_assert(ne(u64, slot, ENG_NO_SLOT));
	cr_assert(eq(int, cur_table(&db)->slots[slot].writer, 0));
	expect_counts(&db, 3, 0);
	uu_close(&db);
}

Test(engine_index_store, death_inside_a_claim_leaves_no_slot_stuck,
     .timeout = 10)
{
	dies_mid_change(HALF_CLAIM);
}

Test(engine_index_store, death_early_in_a_claim_leaves_no_slot_stuck,
     .timeout = 10)
{
	dies_mid_change(HALF_CLAIM_EARLY);
}

Test(engine_index_store, death_inside_a_release_leaves_no_slot_stuck,
     .timeout = 10)
{
	dies_mid_change(HALF_RELEASE);
}

/* --max-keys bounds the keys a log holds at the end, not on the way: a
 * log that once held more live keys reopens with a smaller limit as long
 * as what is left fits. */
Test(engine_index_store, reopens_with_fewer_max_keys_when_the_end_state_fits,
     .timeout = 10)
{
	struct eng_db db;
	struct eng_recovery rep;
	char key[KEY_LEN];

	uu_open_rw(fx.dir, 4 * SMALL_MAX_KEYS, &db, &rep);
	for (int i = 0; i < SMALL_MAX_KEYS + 4; i++) {
		key_n(key, "k", i);
		cr_assert(eq(int, uu_put(&db, key, "v", NULL), 0));
	}
	for (int i = SMALL_MAX_KEYS; i < SMALL_MAX_KEYS + 4; i++) {
		key_n(key, "k", i);
		cr_assert(eq(int, uu_del(&db, key, NULL), 0));
	}
	uu_close(&db);
	cr_assert(eq(int, uu_open(fx.dir, SMALL_MAX_KEYS, &db, &rep), 0));
	cr_assert(eq(u64, rep.keys, SMALL_MAX_KEYS));
	uu_close(&db);
	/* ... and still refuses a limit below what is left */
	cr_assert(eq(int, uu_open(fx.dir, SMALL_MAX_KEYS - 1, &db, &rep), ENG_EFULL));
}
