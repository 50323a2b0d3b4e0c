/* engine/idxsnap.h — database.idx, the index snapshot (see idxsnap.c for
 * the layout and the rules that make a snapshot taken under load safe).
 * Users: recovery (load), the master at a clean stop (write, with the
 * ordered section) and the compaction job (write, without it), `caskd
 * check --repair` (remove the one made for the file it repaired: a
 * repaired log may no longer match it). Nothing here takes the index
 * mutex.
 */
#ifndef CASKD_ENGINE_IDXSNAP_H
#define CASKD_ENGINE_IDXSNAP_H

#include "engine/index.h"
#include "engine/store.h"

#include <stddef.h>
#include <stdint.h>

/* Writes dir/database.idx for table t of the file with this id, with
 * t's hash seed: every record below covered_from is in t (take it
 * before t is read). db->fd (that file) is synced after t is read and
 * before the snapshot is made durable, so no entry names a record a
 * power cut can take back. Atomic (temporary file, fsync, rename,
 * directory fsync). 0 or -errno. */
int eng_idx_write(struct eng_db *db, const char *dir, const struct eng_table *t,
		  uint64_t file_id, uint64_t covered_from, uint64_t max_version);
/* The same with the ordered section (engine/idxorder.h): the keys in
 * byte order after the entries, if every entry lies below covered_from
 * (else the snapshot is written without it). Sorts: for a clean stop,
 * not for a job that races writers. */
int eng_idx_write_ordered(struct eng_db *db, const char *dir, const struct eng_table *t,
			  uint64_t file_id, uint64_t covered_from, uint64_t max_version);
/* The key count a snapshot claims (for sizing the table; 0 if none). */
uint64_t eng_idx_keys(struct eng_db *db);
/* Loads db->dir/database.idx into t, a new empty table, if it is valid
 * for db->map (db_size bytes); t takes the snapshot's hash seed. Every
 * entry must name a valid PUT record of its key (header checksum,
 * lengths, version, hash) and no key may appear twice. 0 (and
 * *covered_from, *max_version), -ENOENT (none), or another -errno with
 * the reason in why. t may hold part of the entries after a failure:
 * the caller starts over with an empty table. What the replay after it
 * finds (a cut tail, wiped regions) is checked against t by the caller.
 * If the snapshot holds an ordered section, it is checked too (its CRC,
 * its keys against the entries', their order and bounds): *view says
 * where it is if it passed (view->file_gen 1: the caller sets the real
 * one), else why not (view->why); a failed section fails only itself. */
int eng_idx_load(struct eng_db *db, uint64_t db_size, struct eng_table *t,
		 uint64_t *covered_from, uint64_t *max_version,
		 struct eng_idx_view *view, char *why, size_t whylen);
/* eng_idx_load's check and load of a snapshot already in memory (idx,
 * idx_size bytes) against database.bin's map (db_size bytes): pure, no
 * I/O, so a fuzzer can drive it (tests/fuzz/fuzz_idx.c). */
int eng_idx_parse(const void *idx, uint64_t idx_size, const char *map,
		  uint64_t db_size, struct eng_table *t, uint64_t *covered_from,
		  uint64_t *max_version, struct eng_idx_view *view, char *why,
		  size_t whylen);
void eng_idx_remove(const char *dir);
/* Removes dir/database.idx only if it is whole and made for the file
 * with this id (never for id 0). 1 removed, 0 none of that file's, or
 * -errno. */
int eng_idx_remove_for(const char *dir, uint64_t file_id);

#endif
