/* engine/scan.h — scanning database.bin: recovery and `caskd check`.
 *
 * Owns: walking the records of a mapped file, verifying every checksum,
 * and classifying what is not a valid record:
 *   - torn tail: at or above the durable mark, nothing valid follows;
 *     truncate it (a crash mid-append); unused, if it is only zeros (space
 *     prepared ahead of the tail);
 *   - abandoned: zeros (space wiped after a failed or killed write), or
 *     any damage at or above the durable mark of the file header (a write
 *     torn by a crash or power loss before it was acknowledged:
 *     acknowledged writes lie below the mark), or, in a file without a
 *     valid mark, a record whose header is intact and whose payload is
 *     torn, ending where the next valid record starts; skip it;
 *   - corruption: anything else below the durable mark, valid records
 *     after it or not. Recovery refuses to start; `caskd check --repair`
 *     drops it.
 * A PAD record's payload is never read, so it may lie in a hole.
 * A region with nothing valid after it that straddles the mark is two
 * items: what lies below the mark (corruption, or zeros: abandoned) and
 * what lies above it (torn tail, or unused), so that a repair drops only
 * the first and recovery never truncates below the mark.
 *
 * Every byte below the mark was durable, so it must exist: scanning a
 * whole file (eng_scan_set_eof), a file that ends below its mark was
 * truncated, and the bytes it lacks up to the mark are corruption too
 * (an item that runs past the end of the file). A scan of a prefix of a
 * live file (compaction) does not set it: the mark may lie past the cut.
 */
#ifndef CASKD_ENGINE_SCAN_H
#define CASKD_ENGINE_SCAN_H

#include "engine/record.h"

#include <stdint.h>

enum eng_scan_kind {
	ENG_SCAN_RECORD,    /* a valid record at off (h filled; PADs too) */
	ENG_SCAN_ABANDONED, /* [off, off+len) holds no record: skip */
	ENG_SCAN_CORRUPT,   /* [off, off+len) is damaged below the mark (or,
			     * past the end of the file, missing) */
	ENG_SCAN_TORN_TAIL, /* [off, end) holds no valid record: truncate */
	ENG_SCAN_UNUSED,    /* [off, end) is zeros: truncate */
	ENG_SCAN_END,
};

struct eng_scan {
	const char *map;
	uint64_t size;
	uint64_t off;      /* next offset to look at */
	uint64_t mark;     /* durable mark: damage at or above it is a tear */
	int fd;            /* for SEEK_DATA, or -1 */
	int eof;           /* size is where the file ends (see above) */
	uint64_t data_start, data_end; /* the data extent last found */
};

struct eng_scan_item {
	enum eng_scan_kind kind;
	uint64_t off;
	uint64_t len;
	struct eng_rec_hdr h;
};

/* Starts a scan of a mapped file of size bytes (header checked) after
 * the file header. */
void eng_scan_init(struct eng_scan *s, const char *map, uint64_t size);
/* Goes on from off (a record boundary: after a snapshot's cover). */
void eng_scan_seek(struct eng_scan *s, uint64_t off);
/* With the file's descriptor the scan steps over holes (SEEK_DATA)
 * instead of reading them through the mapping, which can fault. */
void eng_scan_set_fd(struct eng_scan *s, int fd);
/* size is where the file ends: bytes below the mark past it are missing. */
void eng_scan_set_eof(struct eng_scan *s);
/* 1 if [off, off+n) reads as zeros (holes included). */
int eng_scan_is_zero(struct eng_scan *s, uint64_t off, uint64_t n);
/* The next item; returns its kind. */
enum eng_scan_kind eng_scan_next(struct eng_scan *s, struct eng_scan_item *it);

#endif
