/* engine/fsck.h — verifying and repairing a database file offline, as
 * redis-check-aof does for Redis (the `caskd check` command).
 *
 * Owns: the read-only scan of a database file (a data directory's
 * database.bin, or any file such as a backup from GET /admin/snapshot),
 * and the repair. A check opens the file read-only and creates nothing:
 * it works on read-only media and beside a running caskd (whose writes
 * in flight may then show as a torn tail). A repair needs the file to
 * itself: it takes the instance lock of the directory holding it, as a
 * start does (caskd.lock, made if missing), whether given the directory
 * or the file, then an exclusive lock on the file. It offers two ways,
 * both of which drop the index snapshot made for the file (database.idx
 * beside a database.bin, if its file id is that file's; no other file
 * has one):
 *   - skip (default): each damaged region becomes a PAD record flagged
 *     "repaired" (or zeros, if shorter than a record header), so every
 *     intact record stays where it is, and later starts say what check
 *     dropped rather than call it an unfinished write; a file truncated
 *     below its durable mark gets its length back (the missing bytes a
 *     hole such a PAD covers), so every byte below the mark exists again;
 *   - truncate: the file is truncated at the first damage, dropping every
 *     record after it too (for when what follows damage is not trusted),
 *     and a durable mark above that point is lowered to it.
 * Either way the file then passes a check and opens.
 * A file that does not start with caskd's magic is not a database
 * whose header is damaged but someone else's file: check and repair
 * both refuse it, reading no further and writing nothing.
 * A repair cannot vouch for what the damage held: the report names each
 * region and the versions it may have held (records are in version
 * order, so the intact neighbours bound them), and that keys written
 * there may show an older value, or come back if a delete was lost.
 */
#ifndef CASKD_ENGINE_FSCK_H
#define CASKD_ENGINE_FSCK_H

#include "engine/scan.h"
#include "engine/store.h"

#include <limits.h>
#include <stdint.h>

enum eng_repair_mode {
	ENG_REPAIR_NONE,
	ENG_REPAIR_SKIP,
	ENG_REPAIR_TRUNCATE,
};

/* One finding of the check. */
struct eng_check_item {
	enum eng_scan_kind kind;   /* ABANDONED, CORRUPT, TORN_TAIL, UNUSED */
	int dropped_batch;         /* parts of a batch that never committed */
	int repaired_before;       /* a region an earlier repair dropped */
	uint64_t off, len;
	uint64_t missing;          /* CORRUPT: bytes of it past the end of the
				    * file (truncated below its mark) */
	uint64_t version_after;    /* the intact record before it (0: none) */
	uint64_t version_before;   /* the intact record after it (0: none) */
};

struct eng_check_report {
	char path[PATH_MAX];       /* the file checked */
	uint64_t file_bytes;
	uint64_t records;
	uint64_t batches;          /* committed batches */
	uint64_t max_version;
	uint64_t abandoned_bytes;  /* skipped at start-up anyway */
	uint64_t dropped_bytes;    /* batches that never committed */
	uint64_t repaired_bytes;   /* regions an earlier repair dropped */
	uint64_t corrupt_regions;
	uint64_t corrupt_bytes;
	uint64_t missing_bytes;    /* below the durable mark, past the end of
				    * the file: it was truncated */
	uint64_t torn_tail_bytes;  /* truncated at start-up anyway */
	uint64_t unused_bytes;     /* zeros after the last record */
	uint64_t truncated_records;/* truncate mode: intact records dropped */
	uint64_t durable_mark;     /* UINT64_MAX: no valid mark */
	int format;
	int not_caskd;             /* not a caskd file: left alone, unread */
	int header_bad;
	int repaired;
	int idx_removed;           /* the file's database.idx was removed */
	int idx_stale;             /* ... could not be: remove it by hand */
	int in_use;                /* a caskd holds the directory */
	int holder_pid;            /* ... its pid (0: unknown) */
	int holder_dead;           /* -EBUSY: that caskd is gone, but */
	int holders[ENG_HOLDERS_MAX]; /* ... these still hold its lock */
	int nholders;
	char failed[PATH_MAX + 96]; /* what the lock could not be taken on */
};

typedef void (*eng_check_note_fn)(const struct eng_check_item *it, void *arg);

/* Checks path (a file, or a directory holding database.bin); repairs it
 * when mode says so. 0 (see the report: not_caskd means nothing was
 * done), -EBUSY (repair: a caskd holds it), -ENOENT, -EPROTO (a newer
 * format), or -errno. */
int eng_check(const char *path, enum eng_repair_mode mode,
	      eng_check_note_fn note, void *arg, struct eng_check_report *rep);

#endif
