/* engine/index.h — the key -> offset hash table in shared memory.
 *
 * Owns: probing, inserting, purging deleted slots, and verifying the table
 * after a holder of the index mutex died. Open addressing with linear
 * probing; the home slot is fastrange(hash). Deletes leave DEAD slots
 * (one-byte state change, so a crash can never tear a delete); they are
 * purged in place when the table gets crowded.
 *
 * Every function here requires the index mutex (assert(ipc_mtx_held)).
 * map is a read-only mapping of database.bin used to compare keys.
 */
#ifndef CASKD_ENGINE_INDEX_H
#define CASKD_ENGINE_INDEX_H

#include "engine/shared.h"

#include <stdint.h>
#include <sys/types.h>

#define ENG_NO_SLOT UINT64_MAX

struct eng_find {
	uint64_t slot;      /* the key's slot, or ENG_NO_SLOT */
	uint64_t free_slot; /* where it would go, or ENG_NO_SLOT */
	int busy;           /* being written (PENDING match or writer set) */
};

/* Slots for a table that must hold max_keys live keys. */
uint64_t eng_index_slots_for(uint64_t max_keys);
uint32_t eng_index_hash32(uint64_t hash64);

void eng_index_find(struct eng_shared *sh, const char *map, const void *key,
		    uint16_t klen, uint32_t hash, struct eng_find *f);
/* A free slot for a new key with this hash, purging DEAD slots first if
 * the table is crowded (this may move entries; f is refreshed). Returns
 * the slot or ENG_NO_SLOT when the table is full. */
uint64_t eng_index_take_free(struct eng_shared *sh, const char *map,
			     const void *key, uint16_t klen, uint32_t hash,
			     struct eng_find *f);
/* Rebuilds the table in place without DEAD slots, keeping in-flight
 * references right. 0 or -ENOMEM. */
int eng_index_purge(struct eng_shared *sh);
/* Recomputes live_keys, pending, dead, live_bytes from the table. */
void eng_index_recount(struct eng_shared *sh);
/* Worker slot w died: finish the publishes it had begun and drop its
 * finished reservations. Reservations left in w's in-flight list after
 * this were never published and their key is still marked as written by
 * w (for eng_db_reap_worker to wipe). 0, or -EUCLEAN. */
int eng_index_settle_writer(struct eng_shared *sh, const char *map,
			    uint64_t map_avail, int w);
/* EOWNERDEAD: finish or undo what the dead holder was doing and check the
 * table against the log. 0, or -EUCLEAN when it cannot be trusted. */
int eng_index_repair(struct eng_shared *sh, const char *map,
		     uint64_t map_avail, pid_t dead_pid);

#endif
