/* tests/unit/test_index.c — the shared key -> offset table
 * (engine/index.h), through the store and, where the store cannot reach
 * a state on cue, directly under the index mutex.
 *
 * What it must never do: report "full" while --max-keys has room, lose a
 * live key while purging deleted slots, or let a purge detach an
 * in-flight write from the key it is writing.
 */
#include "engine/errors.h"
#include "engine/index.h"
#include "engine/record.h"
#include "engine/shared.h"
#include "engine/store.h"
#include "tests/unit/unit_util.h"

#include <criterion/criterion.h>
#include <criterion/new/assert.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#define KEY_LEN 32
#define SMALL_MAX_KEYS 8
#define CHURN_MAX_KEYS 64
#define CHURN_CYCLES 10000
#define CHURN_CHECK_EVERY 500

UU_DIR_SUITE(engine_index, "index");

static void key_n(char *key, const char *prefix, long n)
{
	snprintf(key, KEY_LEN, "%s%ld", prefix, n);
}

/* The slot of the entry whose record holds key, or ENG_NO_SLOT. Reads
 * the table without the mutex: only while no other process writes. */
static uint64_t slot_of(struct eng_db *db, const char *key)
{
	struct eng_ientry *t = eng_shared_table(db->sh);
	size_t klen = strlen(key);

	for (uint64_t i = 0; i < db->sh->nslots; i++)
		if ((t[i].state == ENG_SLOT_LIVE || t[i].state == ENG_SLOT_PENDING) &&
		    t[i].voff && t[i].klen == klen &&
		    !memcmp(db->map + t[i].voff - klen, key, klen))
			return i;
	return ENG_NO_SLOT;
}

/* Counters against the table itself. */
static void expect_counts(struct eng_db *db, uint64_t live, uint64_t pending)
{
	struct eng_ientry *t = eng_shared_table(db->sh);
	uint64_t l = 0, p = 0, d = 0, empty = 0;

	for (uint64_t i = 0; i < db->sh->nslots; i++) {
		l += t[i].state == ENG_SLOT_LIVE;
		p += t[i].state == ENG_SLOT_PENDING;
		d += t[i].state == ENG_SLOT_DEAD;
		empty += t[i].state == ENG_SLOT_EMPTY;
	}
	cr_assert(eq(u64, db->sh->live_keys, live));
	cr_assert(eq(u64, l, live), "LIVE slots");
	cr_assert(eq(u64, db->sh->pending, pending));
	cr_assert(eq(u64, p, pending), "PENDING slots");
	cr_assert(eq(u64, db->sh->dead, d), "DEAD slots");
	cr_assert(gt(u64, empty, 0), "an EMPTY slot must remain to end probes");
}

static void lock_index(struct eng_db *db)
{
	cr_assert(eq(int, ipc_mtx_lock(&db->sh->index_mtx, NULL, NULL), 0));
}

static void unlock_index(struct eng_db *db)
{
	ipc_mtx_unlock(&db->sh->index_mtx);
}

/* --- sizing and the full table --------------------------------------------- */

Test(engine_index, slots_leave_room_beyond_max_keys, .timeout = 5)
{
	static const uint64_t keys[] = { 0, 1, 2, 8, 10, 11, 64, 1000, 1 << 20 };

	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
		uint64_t n = eng_index_slots_for(keys[i]);
		cr_assert(ge(u64, n, 16));
		/* at most 70% of the slots live: probes stay short */
		cr_assert(ge(u64, 7 * n, 10 * keys[i]), "max_keys %llu",
			  (unsigned long long)keys[i]);
		cr_assert(gt(u64, n, keys[i] + 1), "a full table keeps a free slot");
	}
}

Test(engine_index, full_at_max_keys_overwrite_and_delete_still_work,
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
		key_n(key, "k", i);
		cr_assert(eq(int, eng_get(&db, key, strlen(key),
					  &(struct eng_val){ 0 }), 0), "%s", key);
	}
	expect_counts(&db, SMALL_MAX_KEYS, 0);
	uu_close(&db);
}

/* Deletes leave DEAD slots; only purging them lets new keys in forever.
 * Any slip shows as a false ENG_EFULL, a lost key, or a wrong counter. */
Test(engine_index, delete_insert_churn_never_reports_full_wrongly,
     .timeout = 30)
{
	struct eng_db db;
	struct eng_recovery rep;
	char key[KEY_LEN], val[KEY_LEN];
	long oldest = 0;
	int rc;

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
		if (c % CHURN_CHECK_EVERY)
			continue;
		expect_counts(&db, CHURN_MAX_KEYS, 0);
		for (long k = oldest; k <= fresh; k++) {
			key_n(key, "churn-", k);
			uu_expect_val(&db, key, key);
		}
	}
	expect_counts(&db, CHURN_MAX_KEYS, 0);
	uu_close(&db);

	/* recovery replays all of it through the same purges */
	rc = uu_open(fx.dir, CHURN_MAX_KEYS, &db, &rep);
	cr_assert(eq(int, rc, 0), "%s", eng_strerror(rc));
	cr_assert(eq(u64, rep.keys, CHURN_MAX_KEYS));
	cr_assert(eq(u64, rep.records, CHURN_MAX_KEYS + 2 * CHURN_CYCLES));
	for (long k = oldest; k < oldest + CHURN_MAX_KEYS; k++) {
		key_n(key, "churn-", k);
		uu_expect_val(&db, key, key);
	}
	key_n(val, "churn-", oldest - 1);
	uu_expect_val(&db, val, NULL);
	expect_counts(&db, CHURN_MAX_KEYS, 0);
	uu_close(&db);
}

Test(engine_index, fills_a_large_table_exactly, .timeout = 20)
{
	struct eng_db db;
	struct eng_recovery rep;
	char key[KEY_LEN];
	int rc;

	uu_open_rw(fx.dir, UU_MAX_KEYS, &db, &rep);
	for (int round = 0; round < 3; round++) {
		for (int i = 0; i < UU_MAX_KEYS; i++) {
			key_n(key, round % 2 ? "odd-" : "even-", i);
			rc = uu_put(&db, key, key, NULL);
			cr_assert(eq(int, rc, 0), "round %d key %d: %s", round, i,
				  eng_strerror(rc));
		}
		cr_assert(eq(int, uu_put(&db, "x", "v", NULL), ENG_EFULL));
		expect_counts(&db, UU_MAX_KEYS, 0);
		for (int i = 0; i < UU_MAX_KEYS; i++) {
			key_n(key, round % 2 ? "odd-" : "even-", i);
			uu_expect_val(&db, key, key);
			cr_assert(eq(int, uu_del(&db, key, NULL), 0));
		}
		expect_counts(&db, 0, 0);
	}
	uu_close(&db);
}

/* --- in-flight writes and purges ------------------------------------------- */

/* A write between reservation and publish counts against --max-keys
 * (its key is PENDING): two writers cannot both take the last place. */
Test(engine_index, pending_new_key_holds_its_place, .timeout = 10)
{
	struct eng_db db;
	struct eng_recovery rep;
	char key[KEY_LEN];
	int rc;

	uu_open_rw(fx.dir, SMALL_MAX_KEYS, &db, &rep);
	for (int i = 0; i < SMALL_MAX_KEYS - 1; i++) {
		key_n(key, "k", i);
		cr_assert(eq(int, uu_put(&db, key, "v", NULL), 0));
	}
	uu_crash_writer(&db, 1, "log.after_reserve=crash", "last-place", "v");
	expect_counts(&db, SMALL_MAX_KEYS - 1, 1);
	cr_assert(eq(int, uu_put(&db, "late", "v", NULL), ENG_EFULL));
	uu_expect_val(&db, "last-place", NULL);
	cr_assert(eq(int, uu_put(&db, "last-place", "mine", NULL), -EAGAIN),
		  "the key is being written by the dead worker");

	rc = eng_db_reap_worker(&db, 1);
	cr_assert(eq(int, rc, 0), "%s", eng_strerror(rc));
	expect_counts(&db, SMALL_MAX_KEYS - 1, 0);
	cr_assert(eq(int, uu_put(&db, "late", "v", NULL), 0));
	cr_assert(eq(int, uu_put(&db, "last-place", "v", NULL), ENG_EFULL));
	uu_close(&db);
}

/* Two dead workers hold a reservation each, on an existing key and on a
 * new one. Churn forces purges that move every entry; their in-flight
 * records must follow, or reaping would free the wrong slots. */
Test(engine_index, purge_keeps_inflight_writes_on_their_keys, .timeout = 30)
{
	struct eng_db db;
	struct eng_recovery rep;
	struct eng_ientry *t;
	struct eng_inflight *held, *pend;
	char key[KEY_LEN];
	uint64_t purges = 0, moves = 0;
	long oldest = 0;
	int rc;

	uu_open_rw(fx.dir, CHURN_MAX_KEYS, &db, &rep);
	for (long i = 0; i < CHURN_MAX_KEYS / 2; i++) {
		key_n(key, "c", i);
		cr_assert(eq(int, uu_put(&db, key, "v", NULL), 0));
	}
	cr_assert(eq(int, uu_put(&db, "held", "old value", NULL), 0));
	uu_crash_writer(&db, 1, "log.after_reserve=crash", "held", "new value");
	uu_crash_writer(&db, 2, "log.after_reserve=crash", "pending", "new");
	t = eng_shared_table(db.sh);
	held = &db.sh->wslots[1].inflight[0];
	pend = &db.sh->wslots[2].inflight[0];
	cr_assert(ne(u64, held->off, 0));
	cr_assert(ne(u64, pend->off, 0));

	for (long c = 0; c < 2000; c++) {
		uint64_t dead = db.sh->dead, hs = held->slot, ps = pend->slot;
		key_n(key, "c", oldest++);
		cr_assert(eq(int, uu_del(&db, key, NULL), 0));
		key_n(key, "c", CHURN_MAX_KEYS / 2 + c);
		rc = uu_put(&db, key, "v", NULL);
		cr_assert(eq(int, rc, 0), "cycle %ld: %s", c, eng_strerror(rc));
		if (db.sh->dead >= dead)
			continue;
		purges++;
		moves += (held->slot != hs) + (pend->slot != ps);
		/* the reservations still name their own keys */
		cr_assert(eq(u64, held->slot, slot_of(&db, "held")), "cycle %ld", c);
		cr_assert(eq(u32, t[held->slot].writer, 2));
		cr_assert(eq(int, t[pend->slot].state, ENG_SLOT_PENDING));
		cr_assert(eq(u32, t[pend->slot].writer, 3));
		cr_assert(eq(u32, t[pend->slot].hash,
			     eng_index_hash32(eng_key_hash("pending", 7))));
	}
	cr_assert(gt(u64, purges, 10), "the churn must have purged");
	cr_assert(gt(u64, moves, 0), "the purges must have moved them");
	uu_expect_val(&db, "held", "old value");
	cr_assert(eq(int, uu_put(&db, "held", "x", NULL), -EAGAIN));
	cr_assert(eq(int, uu_put(&db, "pending", "x", NULL), -EAGAIN));

	cr_assert(eq(int, eng_db_reap_worker(&db, 1), 0));
	cr_assert(eq(int, eng_db_reap_worker(&db, 2), 0));
	expect_counts(&db, CHURN_MAX_KEYS / 2 + 1, 0);
	for (uint64_t i = 0; i < db.sh->nslots; i++)
		cr_assert(eq(u32, t[i].writer, 0), "slot %llu still busy",
			  (unsigned long long)i);
	cr_assert(eq(int, uu_put(&db, "held", "x", NULL), 0));
	cr_assert(eq(int, uu_put(&db, "pending", "y", NULL), 0));
	uu_expect_val(&db, "held", "x");
	uu_expect_val(&db, "pending", "y");
	uu_close(&db);
}

/* --- repair after a dead holder of the index mutex ------------------------- */

Test(engine_index, repair_verifies_entries_against_the_log, .timeout = 10)
{
	struct eng_db db;
	struct eng_recovery rep;
	struct eng_ientry *e;
	uint64_t saved;

	uu_open_rw(fx.dir, UU_MAX_KEYS, &db, &rep);
	cr_assert(eq(int, uu_put(&db, "a", "1", NULL), 0));
	cr_assert(eq(int, uu_put(&db, "b", "22", NULL), 0));
	cr_assert(eq(int, uu_put(&db, "c", "333", NULL), 0));
	cr_assert(eq(int, uu_del(&db, "c", NULL), 0));
	e = &eng_shared_table(db.sh)[slot_of(&db, "b")];

	lock_index(&db);
	cr_assert(eq(int, eng_index_repair(db.sh, db.map, db.sh->tail, 0), 0));

	/* counters a dead holder left half updated are recounted */
	db.sh->live_keys = 99;
	db.sh->dead = 0;
	db.sh->live_bytes = 1;
	cr_assert(eq(int, eng_index_repair(db.sh, db.map, db.sh->tail, 0), 0));
	cr_assert(eq(u64, db.sh->live_keys, 2));
	cr_assert(eq(u64, db.sh->dead, 1));
	cr_assert(eq(u64, db.sh->live_bytes, eng_rec_size(1, 1) +
					       eng_rec_size(1, 2)));

	/* an entry that disagrees with its record cannot be trusted */
	saved = e->version;
	e->version++;
	cr_assert(eq(int, eng_index_repair(db.sh, db.map, db.sh->tail, 0),
		     -EUCLEAN), "wrong version");
	e->version = saved;
	e->vlen++;
	cr_assert(eq(int, eng_index_repair(db.sh, db.map, db.sh->tail, 0),
		     -EUCLEAN), "wrong length");
	e->vlen--;
	saved = e->voff;
	e->voff += ENG_REC_ALIGN;
	cr_assert(eq(int, eng_index_repair(db.sh, db.map, db.sh->tail, 0),
		     -EUCLEAN), "wrong offset");
	e->voff = db.sh->tail + 100;
	cr_assert(eq(int, eng_index_repair(db.sh, db.map, db.sh->tail, 0),
		     -EUCLEAN), "offset past the log");
	e->voff = saved;

	/* died inside a purge: slots half moved */
	db.sh->rebuilding = 1;
	cr_assert(eq(int, eng_index_repair(db.sh, db.map, db.sh->tail, 0),
		     -EUCLEAN), "rebuilding");
	db.sh->rebuilding = 0;
	cr_assert(eq(int, eng_index_repair(db.sh, db.map, db.sh->tail, 0), 0));
	unlock_index(&db);
	uu_expect_val(&db, "b", "22");
	uu_close(&db);
}

/* A worker killed inside reserve(), holding the index mutex, after it
 * marked its key as being written but before it recorded the
 * reservation in its in-flight list. Nothing names that key any more:
 * unless the repair frees it, every later write to it is -EAGAIN until
 * restart. The child plays that state by hand. */
Test(engine_index, death_in_reserve_does_not_leave_a_key_busy, .timeout = 10)
{
	struct eng_db db;
	struct eng_recovery rep;
	pid_t pid;

	uu_open_rw(fx.dir, UU_MAX_KEYS, &db, &rep);
	cr_assert(eq(int, uu_put(&db, "live", "v", NULL), 0));
	pid = fork();
	cr_assert_geq(pid, 0);
	if (pid == 0) {
		uu_child_init();
		struct eng_ientry *t = eng_shared_table(db.sh), *e;
		struct eng_find f;
		uint32_t hash;

		if (eng_db_attach(&db, 1) ||
		    ipc_mtx_lock(&db.sh->index_mtx, NULL, NULL))
			_exit(1);
		/* as reserve() does for an existing key ... */
		db.sh->seq++;
		t[slot_of(&db, "live")].writer = 2;
		/* ... and for a new one */
		hash = eng_index_hash32(eng_key_hash("new", 3));
		eng_index_find(db.sh, db.map, "new", 3, hash, &f);
		e = &t[f.free_slot];
		db.sh->pending++;
		e->hash = hash;
		e->klen = 3;
		e->voff = 0;
		e->state = ENG_SLOT_PENDING;
		e->writer = 2;
		_exit(UU_CHILD_OK); /* holding the mutex */
	}
	uu_expect_exit_ok(pid, "dies in reserve");
	uu_expect_val(&db, "live", "v"); /* takes the mutex: repair runs */
	cr_assert(eq(u32, db.sh->index_mtx.repairs, 1));
	cr_assert(eq(int, eng_db_reap_worker(&db, 1), 0));
	expect_counts(&db, 1, 0);
	cr_assert(eq(int, uu_put(&db, "live", "w", NULL), 0),
		  "the existing key must not stay busy");
	cr_assert(eq(int, uu_put(&db, "new", "n", NULL), 0),
		  "the new key must not stay busy");
	uu_expect_val(&db, "live", "w");
	uu_expect_val(&db, "new", "n");
	uu_close(&db);
}

/* --max-keys bounds the keys a log holds at the end, not on the way: a
 * log that once held more live keys reopens with a smaller limit as long
 * as what is left fits. */
Test(engine_index, reopens_with_fewer_max_keys_when_the_end_state_fits,
     .timeout = 10)
{
	struct eng_db db;
	struct eng_recovery rep;
	char key[KEY_LEN];

	uu_open_rw(fx.dir, 4 * SMALL_MAX_KEYS, &db, &rep);
	/* the peak must still fit the smaller table physically (16 slots) */
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
