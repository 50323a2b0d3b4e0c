/* engine/recover.h — recovery at open.
 *
 * Owns (engine/recover.c): building the first table of the shared index
 * from database.idx and/or a scan of database.bin, and truncating a
 * torn tail. Master only, before fork: no other process exists, so it takes
 * no mutex and may do the file I/O it needs.
 */
#ifndef CASKD_ENGINE_RECOVER_H
#define CASKD_ENGINE_RECOVER_H

#include "engine/store.h"

#include <stdint.h>

/* Fills the current table; size is database.bin's length. */
int eng_recover(struct eng_db *db, const struct eng_opts *o, uint64_t size,
		struct eng_recovery *rep);

#endif
