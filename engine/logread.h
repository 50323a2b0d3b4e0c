/* engine/logread.h — a reader that follows database.bin by version: the
 * one reader of the log behind /watch (and replication, its second
 * consumer: both need every committed change after a version, in
 * version order, each once, a batch's parts together).
 *
 * Owns: a position in the log (the file it reads, the next offset, the
 * last version handed out) and the rules for moving it: changes come
 * from the history region of the current file (record.h's history mark)
 * up to what may be shown (written and, where reads wait for syncs,
 * durable); when a compaction swaps the file the reader finds its place
 * again in the new file's history by version. Versions follow offsets in
 * the log (both are handed out under the index mutex), so the first
 * record past a version is found by a forward scan.
 *
 * Readers wait for more with engine/logwake.h (the writers' side of it
 * lives there, below this file, so no writer depends on the reader).
 *
 * A reader belongs to one process and one thread (a worker's loop); it
 * takes no lock and never blocks. Values it hands out point into the
 * process's mapping and stay valid until the next call.
 */
#ifndef CASKD_ENGINE_LOGREAD_H
#define CASKD_ENGINE_LOGREAD_H

#include "engine/logwake.h"
#include "engine/store.h"

#include <stdint.h>

struct eng_change {
	uint64_t version;
	int del;
	const char *key;
	uint16_t klen;
	const char *val;
	uint32_t vlen;
	uint32_t part, parts; /* a batch's part (0-based) of parts; parts 0: none */
	int term_mark;        /* a group's term mark (record.h): no key, no value */
};

struct eng_logread {
	struct eng_db *db;
	uint64_t file_gen;  /* the file off is in; 0: not placed yet */
	uint64_t off;       /* next offset to read (a record boundary) */
	uint64_t last;      /* every change up to this version was handed out */
	uint64_t hint_off;  /* where to start in a file not placed yet */
	uint64_t hint_gen;  /* ... if it is still this file */
	int durable_only;   /* hand out only what a sync covered */
};

/* Called once per change; a batch's parts come in one call of
 * eng_logread_next, in order. Returns 0 to go on, non-zero to stop after
 * this change (the rest of a batch is still handed out). */
typedef int (*eng_change_fn)(const struct eng_change *c, void *arg);

/* The oldest version a reader may start after in the current file: its
 * history floor (0: all of it is there). */
uint64_t eng_logread_floor(struct eng_db *db);
/* Starts lr after version since (changes with a higher version come).
 * durable_only: hand out only records a sync has covered (group and
 * always modes, as reads). 0, or ENG_ECOMPACTED with *floor when since
 * is below the oldest history compaction kept. */
int eng_logread_start(struct eng_db *db, uint64_t since, int durable_only,
		      struct eng_logread *lr, uint64_t *floor);
/* Hands the changes that can be shown now to fn, at most about max of
 * them (a batch is never split). Returns how many, or ENG_ECOMPACTED
 * (*floor): a compaction dropped history this reader had not read yet
 * (it fell behind the cut), or -errno (ENG_ECORRUPT: damage in the log). */
int eng_logread_next(struct eng_logread *lr, unsigned max, eng_change_fn fn,
		     void *arg, uint64_t *floor);

#endif
