/* engine/write.h — what the write path (engine/write.c, whose public
 * calls are in store.h) offers the rest of the engine.
 *
 * Owns: a seat's in-flight entry and `publishing` mark (with the index
 * mutex held), and so the one way to finish a publish a dead holder
 * began.
 */
#ifndef CASKD_ENGINE_WRITE_H
#define CASKD_ENGINE_WRITE_H

#include "engine/store.h"

/* Replays the records of the reservation a dead holder was publishing,
 * so its publish completes (index mutex held). */
int eng_finish_publish(struct eng_db *db, int seat);

#endif
