/* engine/area.h — the table areas and the flip between them.
 *
 * Owns (engine/area.c): sh->areas[] (which area holds the current table,
 * which one a rebuild fills, which one waits to be freed), sh->cur, and
 * sh->flip, the staged switch to a new table (and, after a compaction, a
 * new database.bin). No other file writes them: it calls the transitions
 * here, each of which asserts the state it leaves.
 *
 *   FREE --claim--> BUILDING --flip--> CURRENT --flip--> RETIRED
 *     ^                |                                    |
 *     +----abandon-----+                 +-----reclaim------+
 *
 * Recovery (master, before fork, no other process) installs the first
 * table with eng_area_install(). Every other transition runs with the
 * index mutex held (asserted).
 */
#ifndef CASKD_ENGINE_AREA_H
#define CASKD_ENGINE_AREA_H

#include "engine/shared.h"

#include <stdint.h>
#include <sys/types.h>

/* Recovery only: the table already built in area a becomes the current
 * one, the other area is free. */
void eng_area_install(struct eng_shared *sh, uint32_t a);
/* Is the spare area (the one not current) free for a rebuild? */
int eng_area_spare_free(const struct eng_shared *sh);
/* A rebuild by pid claims area a to fill: 0, or -EBUSY if not free. */
int eng_area_claim(struct eng_shared *sh, uint32_t a, pid_t pid);
/* Gives back (pages and all) whatever area pid was building: a rebuild
 * that failed, or a job that died. */
void eng_area_abandon(struct eng_shared *sh, pid_t pid);
/* Frees the pages of retired areas no process reads any more (each
 * process announces the table it reads in its seat's `reading`). */
void eng_area_reclaim(struct eng_shared *sh);
/* Stages f and applies it: the area f names becomes current, the old one
 * retired; a new database.bin's state is installed with it. */
void eng_area_flip(struct eng_shared *sh, const struct eng_flip *f);
/* Finishes the flip a dead holder staged, if any (the index repair):
 * applying is idempotent. */
void eng_area_flip_finish(struct eng_shared *sh);

#endif
