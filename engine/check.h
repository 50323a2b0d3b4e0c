/* engine/check.h — verifying and repairing database.bin offline, as
 * redis-check-aof does for Redis.
 *
 * Owns: the offline scan of a data directory (with the instance lock
 * held, so never beside a running caskd) and the repair: damaged regions
 * in the middle are overwritten with zeros, which recovery skips as space
 * that holds no record, and a torn tail is cut. Every intact record stays
 * where it is; nothing else in the file is touched.
 */
#ifndef CASKD_ENGINE_CHECK_H
#define CASKD_ENGINE_CHECK_H

#include "engine/recovery.h"

#include <stdint.h>

struct eng_check_report {
	uint64_t file_bytes;
	uint64_t records;
	uint64_t abandoned_bytes;  /* skipped at start-up anyway */
	uint64_t corrupt_regions;
	uint64_t corrupt_bytes;
	uint64_t torn_tail_bytes;  /* cut at start-up anyway */
	int header_bad;
	int repaired;
	int holder_pid;            /* -EBUSY: the running caskd */
};

/* Called for every region that is not a valid record. */
typedef void (*eng_check_note_fn)(const struct eng_scan_item *it, void *arg);

/* Checks dir/database.bin; with repair, fixes it. 0 (see the report for
 * what was found), -EBUSY if a caskd holds the directory, -ENOENT,
 * -EPROTO for a newer format, or -errno. */
int eng_check(const char *dir, int repair, eng_check_note_fn note, void *arg,
	      struct eng_check_report *rep);

#endif
