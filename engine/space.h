/* engine/space.h — what engine/space.c (the space of database.bin around
 * its tail; public calls in store.h) offers the rest of the engine.
 */
#ifndef CASKD_ENGINE_SPACE_H
#define CASKD_ENGINE_SPACE_H

#include "engine/store.h"

/* Compaction, when the disk is short of space: gives the reserve file's
 * space back (1 if it did, 0 if there was none). */
int eng_db_release_reserve(struct eng_db *db);

/* How far ahead of a tail zeros are kept: a quarter of the log, 2 to
 * 16 MiB. */
uint64_t eng_space_lead(uint64_t tail);

/* Writes zeros over [off, off + len) of fd through the page cache, a
 * step at a time, each written back at once (so no burst of dirty pages
 * waits for someone else's fdatasync). The allocation is durable only
 * after the caller's next fdatasync. 0 or -errno. */
int eng_space_zero(int fd, uint64_t off, uint64_t len);

#endif
