/* engine/replay.h — the records of database.bin as recovery applies them:
 * the scanner's items with batches assembled.
 *
 * Owns: the rule that makes a batch atomic across crashes. The parts of
 * a batch are contiguous records sharing one version whose batch_left
 * counts down to 0 (engine/record.h). A part is handed out only once the
 * part with batch_left 0 has been read and every part before it was
 * intact and in sequence; anything else that interrupts a batch (a torn
 * or damaged part, the end of the file, a record that does not continue
 * it) drops the whole batch as never committed: it was never
 * acknowledged, since its writer is answered only after the write.
 *
 * Users: recovery (replays into the index), compaction (copies), `caskd
 * check` (counts), the unit tests' crash simulator.
 */
#ifndef CASKD_ENGINE_REPLAY_H
#define CASKD_ENGINE_REPLAY_H

#include "engine/scan.h"

#include <stddef.h>
#include <stdint.h>

enum eng_replay_kind {
	ENG_REPLAY_RECORD,    /* a committed record at off (h): apply it */
	ENG_REPLAY_DROPPED,   /* [off, off+len): parts of a batch that never
			       * committed */
	ENG_REPLAY_SCAN,      /* any other scanner item (it.kind != RECORD) */
	ENG_REPLAY_END,
};

struct eng_replay_item {
	enum eng_replay_kind kind;
	uint64_t off;
	uint64_t len;
	struct eng_rec_hdr h;
	enum eng_scan_kind scan; /* ENG_REPLAY_SCAN: what the scanner said */
	uint32_t part, parts;    /* RECORD of a batch: part (0-based) of parts;
				  * parts 0 for a record outside any batch */
};

struct eng_replay_part {
	uint64_t off;
	struct eng_rec_hdr h;
};

struct eng_replay {
	struct eng_scan *scan;
	struct eng_replay_part *parts; /* the batch being read or handed out */
	size_t nparts, cap;
	size_t next_out;               /* next part to hand out, committed */
	int committed;
	struct eng_scan_item held;     /* read past a batch: handed out next */
	int have_held;
	int oom;
};

void eng_replay_init(struct eng_replay *r, struct eng_scan *s);
/* The next item. 0, or -ENOMEM (a batch's parts could not be held). */
int eng_replay_next(struct eng_replay *r, struct eng_replay_item *it);
void eng_replay_free(struct eng_replay *r);

#endif
