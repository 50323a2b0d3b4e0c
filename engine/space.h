/* engine/space.h — what engine/space.c (the space of database.bin around
 * its tail; public calls in store.h) offers the rest of the engine.
 */
#ifndef CASKD_ENGINE_SPACE_H
#define CASKD_ENGINE_SPACE_H

#include "engine/store.h"

/* Compaction, when the disk is short of space: gives the reserve file's
 * space back (1 if it did, 0 if there was none). */
int eng_db_release_reserve(struct eng_db *db);

#endif
