/* engine/db.h — the bottom of the store: what every other file of the
 * engine builds on, and nothing here calls up into them.
 *
 * Owns (engine/db.c): this process's mappings of database.bin (struct
 * eng_map: the current one, and older ones that outlive a compaction
 * while values from them are still being sent) and following a swap
 * (eng_db_refresh); the chunk lock, a shared OFD lock on the chunks a
 * writer appends into; and the only way the engine takes the index and
 * sync mutexes, so that EOWNERDEAD always meets the same repair. The
 * index mutex's repair is engine/repair.c's, handed in by whoever opens
 * or attaches (db->repair_index), so that this file never calls up.
 * Also the names of the directory's files. Nothing outside engine/
 * includes it.
 */
#ifndef CASKD_ENGINE_DB_H
#define CASKD_ENGINE_DB_H

#include "engine/shared.h"
#include "engine/store.h"

#include <stdint.h>

#define ENG_DB_FILE "database.bin"
#define ENG_IDX_FILE "database.idx"
#define ENG_COMPACT_FILE "database.bin.compact"
#define ENG_LOCK_FILE "caskd.lock"
/* Space held back for a compaction on a full disk (engine/space.c). */
#define ENG_RESERVE_FILE "database.reserve"

#define ENG_DIR_MODE 0750
#define ENG_FILE_MODE 0640
/* The read-only mapping covers this much address space from the start,
 * so it never has to move while the file grows (MAP_NORESERVE: costs no
 * memory until read). database.bin is limited to this size. */
#define ENG_MAP_BYTES (1ull << 40)
/* Writers lock the file in chunks of this size (a shared OFD lock per
 * chunk they append into), and the master zeroes in multiples of it. */
#define ENG_CHUNK_BYTES (1ull << 20)
/* Space at the end of the zeroed area kept for deletes once the disk is
 * full, so an operator can still dig out. */
#define ENG_DELETE_RESERVE (2ull << 20)
/* A version lease covers this many versions; it is renewed (made
 * durable in the file header by a sync) once half is used. */
#define ENG_LEASE_VERSIONS (1ull << 20)

/* One mapping of one database.bin, per process. */
struct eng_map {
	const char *base;
	int fd;
	uint64_t file_gen;
	uint64_t refs;        /* values handed out, not yet released */
	struct eng_map *next; /* older mappings still referenced */
};

/* --- mappings ---------------------------------------------------------- */

/* Opens path into a new mapping record (O_RDWR unless readonly). */
int eng_map_open(const char *path, int readonly, uint64_t file_gen,
		 struct eng_map **out);
void eng_map_close(struct eng_map *m);
/* Makes m (which may be NULL) this process's current mapping; the
 * caller has closed or kept the previous one. */
void eng_db_set_current(struct eng_db *db, struct eng_map *m);
int eng_path_join(char **out, const char *dir, const char *name);

/* --- the chunk lock ------------------------------------------------------ */

/* This process's shared lock on the chunks around [off, off+len) of the
 * current file; never waits (engine/space.c zeroes only beyond every
 * locked chunk). */
int eng_chunk_lock(struct eng_db *db, uint64_t off, uint64_t len);
void eng_chunk_unlock(struct eng_db *db);

/* --- the mutexes (lock order: ipc/mutex.h) ------------------------------- */

/* The index mutex, repaired by db->repair_index on EOWNERDEAD. */
int eng_lock_index(struct eng_db *db);
void eng_unlock_index(struct eng_db *db);
/* The sync mutex; a dead holder's sync is simply redone. */
int eng_lock_sync(struct eng_shared *sh);
void eng_unlock_sync(struct eng_shared *sh);
/* The job mutex (engine/job.c's records), taken with no repair hook. */
int eng_lock_jobs(struct eng_shared *sh);
void eng_unlock_jobs(struct eng_shared *sh);

/* The lowest offset of any reservation in flight (or the tail); with the
 * index mutex held. */
uint64_t eng_written_below_locked(struct eng_shared *sh);

#endif
