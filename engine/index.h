/* engine/index.h — the key -> offset hash table in shared memory.
 *
 * Owns: a table's slots and their state machine (EMPTY -> PENDING -> LIVE
 * <-> DEAD), its counters, probing, lock-free reads, replaying records
 * into a table, and verifying a table after a holder of the index mutex
 * died. Open addressing with linear probing; the home slot is
 * fastrange(hash). A table never moves an entry in place: growing,
 * shrinking and purging DEAD slots build a new table in another area
 * (engine/rebuild.c) and flip to it.
 *
 * Two kinds of access:
 *   - with the index mutex held (writers, repair): eng_index_find, claim,
 *     publish, release, apply. assert(ipc_mtx_held) where it matters.
 *     A table that no other process can see yet (being rebuilt, or in
 *     recovery) may be changed without the mutex by its only builder.
 *   - without any lock (readers: GET, HEAD, the check of a conditional
 *     write, listings, rebuilds copying a table): eng_index_lookup and
 *     eng_index_read_slot. Every slot carries a sequence count, odd while
 *     a writer changes it; a reader copies the slot between two even,
 *     equal counts and retries otherwise (a seqlock, as LMDB readers take
 *     no lock). Slots are never moved and a non-EMPTY slot never becomes
 *     EMPTY again, so a probe that runs while writers work still finds
 *     every key that was published before it began. A writer killed
 *     mid-change leaves its count odd: after a few spins a reader gives
 *     up (-EAGAIN) and takes the mutex, whose EOWNERDEAD repair makes the
 *     slot whole again.
 *
 * Keys are not stored in the table: a slot holds the value's offset in
 * database.bin, whose read-only mapping every process has, and the key is
 * the klen bytes before the value. map is that mapping, and must be of
 * the file the table indexes (eng_table.file_gen).
 *
 * Hashes are keyed (engine/keyhash.h), with a seed per table, so clients
 * cannot choose keys that pile up in one probe run. A table built from
 * the records (recovery's scan, a compaction) gets a new random seed; a
 * table made from another's entries keeps that one's (growth, shrinking,
 * recovery's growth, and database.idx, which stores its table's seed).
 * Whoever probes a table hashes with that table's seed (eng_khash).
 */
#ifndef CASKD_ENGINE_INDEX_H
#define CASKD_ENGINE_INDEX_H

#include "engine/keyhash.h"
#include "engine/record.h"
#include "ipc/mutex.h"

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#define ENG_NO_SLOT UINT64_MAX

enum eng_slot_state {
	ENG_SLOT_EMPTY = 0,   /* never used: ends a probe */
	ENG_SLOT_LIVE = 1,    /* key present */
	ENG_SLOT_DEAD = 2,    /* key deleted: probing continues past it */
	ENG_SLOT_PENDING = 3, /* new key being written, not yet visible */
};

/* 32 bytes. writer is outside the sequence count: readers never look at
 * it, and marking a key busy must not make readers retry. */
struct eng_islot {
	_Atomic uint32_t seq;
	uint32_t hash;    /* eng_index_hash() of the key in this table */
	uint64_t version;
	uint64_t voff;    /* offset of the value in database.bin */
	uint32_t vlen;
	uint16_t klen;
	uint8_t state;    /* enum eng_slot_state */
	uint8_t writer;   /* seat + 1 of the writer of this key now, or 0 */
};
_Static_assert(sizeof(struct eng_islot) == 32, "index slot is 32 bytes");

struct eng_table {
	uint64_t gen;       /* generation, unique for the instance's life */
	uint64_t file_gen;  /* the database.bin its offsets point into */
	uint64_t nslots;
	uint64_t live;      /* LIVE slots */
	uint64_t pending;   /* PENDING slots */
	uint64_t dead;      /* DEAD slots */
	uint64_t live_bytes;/* record bytes of live keys */
	/* The mutex that guards changes once the table is visible (NULL
	 * while its builder has it to itself), for assert(ipc_mtx_held). */
	struct ipc_mtx *guard;
	/* The seed of every hash in the table: set by eng_index_init while
	 * nobody else sees the table, never changed after. */
	struct eng_hash_seed seed;
	uint8_t pad[48];    /* slots start on a cache line */
	struct eng_islot slots[];
};
_Static_assert(sizeof(struct eng_table) == 128, "table header is two cache lines");

/* A key's hash in a table, and the seed it was taken with: a hash taken
 * before the caller knew which table it would probe (a writer hashes
 * before it takes the mutex) is retaken only if that table is keyed
 * otherwise. Zeroed: not taken yet (no seed is all zero). */
struct eng_khash {
	struct eng_hash_seed seed;
	uint32_t hash;
};

/* A slot's contents, copied out. */
struct eng_entry {
	uint64_t voff;
	uint64_t version;
	uint32_t vlen;
	uint32_t hash;
	uint16_t klen;
	uint8_t state;
};

struct eng_find {
	uint64_t slot;      /* the key's LIVE slot, or ENG_NO_SLOT */
	uint64_t free_slot; /* where it would go, or ENG_NO_SLOT */
	int busy;           /* being written (PENDING match or writer set) */
	/* In: a batch's own new keys are PENDING with writer `self`; when a
	 * probe meets one with the same hash and length, own_key(slot, arg)
	 * says whether it is this very key (1: f->dup is set) or another
	 * (0: the probe goes on). self 0: no such keys. */
	uint8_t self;
	int (*own_key)(uint64_t slot, void *arg);
	void *own_arg;
	int dup;
};

/* Where a new key stands. */
enum eng_room {
	ENG_ROOM_OK,
	ENG_ROOM_GROW,  /* fits, but the table should be rebuilt bigger */
	ENG_ROOM_WAIT,  /* does not fit until the table is rebuilt */
};

#define ENG_INDEX_MIN_SLOTS 16384u
/* The largest table: 2^31 slots, 64 GiB of address space per area. */
#define ENG_INDEX_MAX_SLOTS (1ull << 31)

/* The hash of a key in t: the upper 32 bits of its SipHash under t's
 * seed (the home slot is fastrange of it). */
uint32_t eng_index_hash(const struct eng_table *t, const void *key, size_t klen);
/* The hash of a key in t through kh (see eng_khash): returns kh->hash,
 * taken again if kh was taken under another seed. t may be any area's
 * table, read without the mutex or any pin: its seed is loaded
 * atomically, and one torn by a table being made there only means the
 * hash is taken again once the caller holds the table it probes. */
uint32_t eng_index_hash_for(const struct eng_table *t, const void *key,
			    size_t klen, struct eng_khash *kh);
/* Bytes of an area that holds a table of nslots slots. */
uint64_t eng_index_table_bytes(uint64_t nslots);
/* The largest table needed for at most max_keys keys (0: no bound). */
uint64_t eng_index_max_slots(uint64_t max_keys);
/* The size a rebuild gives a table that holds keys keys, within max. */
uint64_t eng_index_slots_for(uint64_t keys, uint64_t max);
/* t's area pages must be zero. seed: a new one (eng_hash_seed_new) for a
 * table filled from records, the source table's for one filled with
 * another table's entries (their hashes are kept). */
void eng_index_init(struct eng_table *t, uint64_t gen, uint64_t file_gen,
		    uint64_t nslots, const struct eng_hash_seed *seed);

/* --- with the index mutex (or as the table's only builder) ---------- */

/* Fills f (set f->self first: 0 unless a batch probes for its keys). */
void eng_index_find(const struct eng_table *t, const char *map,
		    const void *key, uint16_t klen, uint32_t hash,
		    struct eng_find *f);
/* Room for one more key. */
enum eng_room eng_index_room(const struct eng_table *t);
/* Keys t holds before a new one waits for a rebuild (ENG_ROOM_WAIT),
 * DEAD slots aside. */
uint64_t eng_index_capacity(const struct eng_table *t);
/* 1 if the table is so empty that a rebuild should shrink it. */
int eng_index_wants_shrink(const struct eng_table *t);
/* 1 if the table should be rebuilt now: too full (counting DEAD slots),
 * or so empty it should shrink. */
int eng_index_wants_rebuild(const struct eng_table *t);
/* The free slot f found becomes PENDING for a new key written by
 * writer (seat + 1). */
void eng_index_claim(struct eng_table *t, uint64_t slot, uint32_t hash,
		     uint16_t klen, uint8_t writer);
/* A LIVE key is being written by writer. */
void eng_index_mark_busy(struct eng_table *t, uint64_t slot, uint8_t writer);
/* Makes the record at voff (version, vlen, a tombstone if del) the
 * key's state and frees the key. rec_bytes: the record's size. */
void eng_index_publish(struct eng_table *t, uint64_t slot, uint64_t voff,
		       uint32_t vlen, uint64_t version, int del,
		       uint64_t rec_bytes);
/* The write to the key failed or was wiped: a PENDING key is dropped,
 * a LIVE one keeps its value; the key is free again. */
void eng_index_release(struct eng_table *t, uint64_t slot);
/* Applies the valid record at off of map (header h) as replay does: a
 * record whose version is not newer than the key's is ignored. 0, or
 * -ENOSPC when a new key finds no room (the caller rebuilds bigger). */
int eng_index_apply(struct eng_table *t, const char *map, uint64_t off,
		    const struct eng_rec_hdr *h);
/* Adds entry e (LIVE) copied from another table of the same file and
 * seed: kept unless the key is there with a newer version. 0 or
 * -ENOSPC. */
int eng_index_merge(struct eng_table *t, const char *map,
		    const struct eng_entry *e);
/* Adds entry e (LIVE, hashed under t's seed; its key at map + voff -
 * klen) for a key that must not be there yet (loading database.idx,
 * which is not trusted to hold each key once). 0, -EEXIST (the key is
 * there), or -ENOSPC. */
int eng_index_add_unique(struct eng_table *t, const char *map,
			 const struct eng_entry *e);
/* Adds entry e (hashed under t's seed) for a key known to be absent
 * (copying a table, whose keys are unique). 0 or -ENOSPC. */
int eng_index_place(struct eng_table *t, const struct eng_entry *e);
/* --- bulk loading: recovery, before any other process exists ------- */

/* As eng_index_add_unique, eng_index_place and eng_index_apply, for a
 * table no other process can see (its guard not set yet: recovery in the
 * master before the first fork; asserted). Slots are filled without
 * their sequence counts: with no reader there is nothing to publish to,
 * and at a million entries the count's two stores per entry were a fifth
 * of a start-up. */
int eng_index_bulk_add_unique(struct eng_table *t, const char *map,
			      const struct eng_entry *e);
int eng_index_bulk_place(struct eng_table *t, const struct eng_entry *e);
int eng_index_bulk_apply(struct eng_table *t, const char *map, uint64_t off,
			 const struct eng_rec_hdr *h);
/* Asks the CPU to bring in the home slot of hash, for writing: a loader
 * that knows its next entries' hashes hides the cache misses of placing
 * them in a big table. */
void eng_index_prefetch(const struct eng_table *t, uint32_t hash);

/* After a holder of the mutex died: makes every slot whose count it left
 * odd even again (the repair then replays what it was publishing). */
void eng_index_unstick(struct eng_table *t);
/* Checks every LIVE slot against the record it points at, and recounts.
 * 0, or -EUCLEAN when the table cannot be trusted. */
int eng_index_verify(struct eng_table *t, const char *map, uint64_t avail);
/* Frees every key marked busy by writer (a dead worker's): PENDING keys
 * are dropped. Returns how many. */
uint64_t eng_index_free_writer(struct eng_table *t, uint8_t writer);

/* --- without a lock ----------------------------------------------------- */

/* 1 and *e (a LIVE entry) if the key is in t, 0 if not, -EAGAIN if a
 * slot on the way stays odd (its writer may have died: take the mutex). */
int eng_index_lookup(const struct eng_table *t, const char *map,
		     const void *key, uint16_t klen, uint32_t hash,
		     struct eng_entry *e);
/* Copies slot i: 1 and *e if it holds a LIVE key, 0 if not, -EAGAIN as
 * above. */
int eng_index_read_slot(const struct eng_table *t, uint64_t i,
			struct eng_entry *e);

#endif
