/* engine/idxorder.h — the ordered section of database.idx: the live keys
 * in byte order, as ordered entries (engine/okey.h), so that neither a
 * start nor a worker's first listing sorts them (docs/decisions.md, "An
 * ordered view of the keys").
 *
 * Owns: making a section (its entries collected while a snapshot reads
 * the table, sorted, written after the snapshot's entries), checking one
 * (recovery, in the master, before any worker exists), and mapping a
 * checked one read-only (a worker, at its first listing: every worker
 * maps the same pages of the page cache, and a page of keys touches
 * only the pages its searches and its keys fall in).
 *
 * Who may call: engine/idxsnap.c makes and checks sections (it owns the
 * file around them); engine/list.c maps them. Nothing here takes a lock.
 */
#ifndef CASKD_ENGINE_IDXORDER_H
#define CASKD_ENGINE_IDXORDER_H

#include "engine/okey.h"
#include "engine/store.h"

#include <stddef.h>
#include <stdint.h>

/* --- making one (a snapshot being written) -------------------------------- */

struct eng_idxorder {
	struct eng_okey *v;
	size_t n, cap;
};

/* Adds the key of the record whose value is at voff (its bytes are read
 * by the sort). 0 or -ENOMEM. */
int eng_idxorder_add(struct eng_idxorder *o, uint64_t voff, uint16_t klen);
/* Reads the keys' first OKEY_INLINE bytes from map and sorts the entries
 * by their keys' bytes (read from map again where those tie). 0 or
 * -ENOMEM. */
int eng_idxorder_sort(struct eng_idxorder *o, const char *map);
/* Writes the entries at off of fd, little-endian; *crc: their CRC-32C.
 * 0 or -errno. */
int eng_idxorder_write(int fd, const struct eng_idxorder *o, uint64_t off,
		       uint32_t *crc);
void eng_idxorder_free(struct eng_idxorder *o);

/* --- checking one (recovery) ------------------------------------------------ */

/* What one live key adds to a fingerprint: summed over the snapshot's
 * entries (with their keys read from the records) and over the section,
 * equal sums say the section holds exactly those keys, at those offsets
 * (order does not change a sum). */
uint64_t eng_idxorder_fp(const char *key, uint16_t klen, uint64_t koff);

/* A check of a section, fed in parts (read in chunks, or all at once). */
struct eng_idxorder_check {
	const char *map;         /* database.bin */
	uint64_t below;          /* every key must end at or below it */
	uint64_t done;           /* entries checked so far */
	uint64_t fp;             /* their fingerprint */
	uint32_t crc;            /* their CRC-32C */
	struct eng_okey prev;    /* the last one */
};
void eng_idxorder_check_init(struct eng_idxorder_check *c, const char *map,
			     uint64_t below);
/* Checks n more entries (n * 24 bytes at p, any alignment): each key in
 * bounds (below c->below, above the file header) and after the one
 * before it. 0, or -EBADMSG with the reason in why. */
int eng_idxorder_check_part(struct eng_idxorder_check *c, const void *p,
			    uint64_t n, char *why, size_t whylen);

/* --- mapping one (a worker) -------------------------------------------------- */

struct eng_idxorder_map {
	void *addr;              /* the mapping (NULL: none) */
	size_t len;
	const struct eng_okey *base; /* the section inside it */
	uint64_t n;
};
/* Maps the section v describes, read-only, from dir/database.idx, if
 * that file still begins with the header recovery checked (a compaction
 * or another start may have replaced it since). 0, -ESTALE (another
 * file now), -ENOTSUP (a big-endian build: the section is little-endian)
 * or -errno. */
int eng_idxorder_map(const char *dir, const struct eng_idx_view *v,
		     struct eng_idxorder_map *m);
void eng_idxorder_unmap(struct eng_idxorder_map *m);

#endif
