/* engine/idxsnap.h — database.idx, the index snapshot (see idxsnap.c for
 * the layout and the rules that make a snapshot taken under load safe).
 * Users: recovery (load), the master at a clean stop and the compaction
 * job (write), `caskd check --repair` (remove the one made for the file
 * it repaired: a repaired log may no longer match it). Nothing here
 * takes the index mutex.
 */
#ifndef CASKD_ENGINE_IDXSNAP_H
#define CASKD_ENGINE_IDXSNAP_H

#include "engine/index.h"
#include "engine/store.h"

#include <stddef.h>
#include <stdint.h>

/* Writes dir/database.idx for table t of the file with this id: every
 * record below covered_from is in t. db->fd (that file) is synced first.
 * Atomic (temporary file, fsync, rename, directory fsync). 0 or -errno. */
int eng_idx_write(struct eng_db *db, const char *dir, const struct eng_table *t,
		  uint64_t file_id, uint64_t covered_from, uint64_t max_version);
/* The key count a snapshot claims (for sizing the table; 0 if none). */
uint64_t eng_idx_keys(struct eng_db *db);
/* Loads db->dir/database.idx into t if it is valid for db->map (db_size
 * bytes). 0 (and *covered_from, *max_version), -ENOENT (none), or
 * another -errno with the reason in why. t may hold part of the entries
 * after a failure: the caller starts over with an empty table. */
int eng_idx_load(struct eng_db *db, uint64_t db_size, struct eng_table *t,
		 uint64_t *covered_from, uint64_t *max_version, char *why,
		 size_t whylen);
void eng_idx_remove(const char *dir);
/* Removes dir/database.idx only if it is whole and made for the file
 * with this id (never for id 0). 1 removed, 0 none of that file's, or
 * -errno. */
int eng_idx_remove_for(const char *dir, uint64_t file_id);

#endif
