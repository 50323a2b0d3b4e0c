/* engine/area.h — the table areas and the flip between them.
 *
 * Owns (engine/area.c): sh->areas[] (which area holds the current table,
 * which one a rebuild fills, which one waits to be freed) and sh->flip,
 * the staged switch to a new table (and, after a compaction, a new
 * database.bin). No other file writes areas[].state: it calls the
 * transitions here, each of which asserts the state it leaves.
 *
 *   FREE --claim--> BUILDING --flip--> CURRENT --flip--> RETIRED
 *     ^                |                                    |
 *     +-----abandon----+                 +-------free-------+
 *
 * Recovery (master, before fork, no other process) places the first
 * table with eng_area_recovered(). Every other transition runs with the
 * index mutex held.
 */
#ifndef CASKD_ENGINE_AREA_H
#define CASKD_ENGINE_AREA_H

#include "engine/shared.h"

#include <stdint.h>
#include <sys/types.h>

/* Applies the flip staged in sh->flip (index mutex held; takes the sync
 * mutex inside it for the durable mark's state): idempotent, so a
 * repair can finish one its holder died in. */
void eng_apply_flip(struct eng_shared *sh);

#endif
