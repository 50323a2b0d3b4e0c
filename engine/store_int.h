/* engine/store_int.h — what the files of the store share among
 * themselves (store.c, write.c, space.c, recover.c, list.c, rebuild.c,
 * job.c, idxsnap.c); nothing outside engine/ includes it.
 *
 * Owns: the per-process mapping records, the index mutex helpers (the
 * only way the store takes the mutex, so EOWNERDEAD always meets the
 * same repair) and the names of the directory's files.
 */
#ifndef CASKD_ENGINE_STORE_INT_H
#define CASKD_ENGINE_STORE_INT_H

#include "engine/shared.h"
#include "engine/store.h"

#include <stdint.h>

#define ENG_DB_FILE "database.bin"
#define ENG_IDX_FILE "database.idx"
#define ENG_COMPACT_FILE "database.bin.compact"
#define ENG_LOCK_FILE "caskd.lock"
/* Space held back for a compaction on a full disk (engine/space.c). */
#define ENG_RESERVE_FILE "database.reserve"

/* Compaction, when the disk is short of space: gives the reserve file's
 * space back (1 if it did, 0 if there was none). */
int eng_db_release_reserve(struct eng_db *db);
#define ENG_DIR_MODE 0750
#define ENG_FILE_MODE 0640
/* The read-only mapping covers this much address space from the start,
 * so it never has to move while the file grows (MAP_NORESERVE: costs no
 * memory until read). database.bin is limited to this size. */
#define ENG_MAP_BYTES (1ull << 40)
/* Writers lock the file in chunks of this size (a shared OFD lock per
 * chunk they append into), and the master zeroes in multiples of it. */
#define ENG_LEASE_CHUNK (1ull << 20)
/* Space at the end of the zeroed area kept for deletes once the disk is
 * full, so an operator can still dig out. */
#define ENG_DELETE_RESERVE (2ull << 20)
/* A version lease covers this many versions; it is renewed (made
 * durable in the file header by a sync) once half is used. */
#define ENG_LEASE_VERSIONS (1ull << 20)

/* One mapping of one database.bin, per process: the current one, and
 * older ones that outlive a compaction while values from them are still
 * being sent. */
struct eng_map {
	const char *base;
	int fd;
	uint64_t file_gen;
	uint64_t refs;        /* values handed out, not yet released */
	struct eng_map *next; /* older mappings still referenced */
};

int eng_lock_index(struct eng_db *db);
/* The sync mutex, with its repair (durable.c). */
int eng_lock_sync(struct eng_shared *sh);
/* Applies the flip staged in sh->flip (index mutex held; takes the sync
 * mutex inside it for the durable mark's state): idempotent, so a
 * repair can finish one its holder died in. */
void eng_apply_flip(struct eng_shared *sh);
void eng_unlock_index(struct eng_db *db);
/* Opens dir/name into a new mapping record (O_RDWR unless readonly). */
int eng_map_open(const char *path, int readonly, uint64_t file_gen,
		 struct eng_map **out);
void eng_map_close(struct eng_map *m);
int eng_path_join(char **out, const char *dir, const char *name);

/* The lowest offset of any reservation in flight (or the tail); with the
 * index mutex held. */
uint64_t eng_written_below_locked(struct eng_shared *sh);
/* Replays the records of the reservation a dead holder was publishing,
 * so its publish completes (index mutex held). */
int eng_finish_publish(struct eng_db *db, int wslot);

/* Recovery at open (recover.c): fills the current table from
 * database.idx and/or a scan. Master only, before fork. */
int eng_recover(struct eng_db *db, const struct eng_opts *o, uint64_t size,
		struct eng_recovery *rep);
/* Grows the current table during recovery (no other process yet). */
int eng_recover_grow(struct eng_db *db);

/* space.c: the append lease of this process for [off, off+len). */
int eng_lease_range(struct eng_db *db, uint64_t off, uint64_t len);
void eng_lease_drop(struct eng_db *db);

#endif
