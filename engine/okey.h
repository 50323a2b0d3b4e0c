/* engine/okey.h — the ordered entry: one key of an ordered view, 24 bytes.
 *
 * Owns: the entry's layout and its byte order. Two users share it: a
 * worker's ordered view (engine/list.c), in its private memory, and the
 * ordered section of database.idx (engine/idxorder.c), which a worker
 * maps and uses as the base of its view as it lies on disk. So the
 * layout is also a file format (docs/format.md): three u64, which the
 * file stores little-endian; a big-endian build copies instead of
 * mapping (idxorder.c).
 *
 * The key itself stays in database.bin (just before its value): an entry
 * holds its first OKEY_INLINE bytes, big-endian in two u64, so that two
 * keys differing there compare as two integer pairs without reading the
 * mapping, and a key that short is handed out from the entry alone.
 * Header only: the comparisons are the inner loop of every search.
 */
#ifndef CASKD_ENGINE_OKEY_H
#define CASKD_ENGINE_OKEY_H

#include <endian.h>
#include <stdint.h>
#include <string.h>

/* Key bytes kept in an entry: with them, keys that differ in their first
 * 16 bytes compare without reading the mapping. */
#define OKEY_INLINE 16
/* In a view's delta only: the key was deleted since the view's base. */
#define OKEY_DEAD (1ull << 63)

struct eng_okey {
	uint64_t p0, p1;     /* key bytes 0..15, big-endian, zero padded */
	/* OKEY_DEAD | offset of the key in database.bin << 16 | klen.
	 * Offsets are below 2^40 (ENG_MAP_BYTES), so bit 63 is free. */
	uint64_t off_len;
};
_Static_assert(sizeof(struct eng_okey) == 24, "an ordered entry is 24 bytes");

static inline struct eng_okey eng_okey_make(const char *key, uint16_t klen, uint64_t off)
{
	unsigned char b[OKEY_INLINE] = { 0 };
	struct eng_okey k;

	memcpy(b, key, klen < OKEY_INLINE ? klen : OKEY_INLINE);
	memcpy(&k.p0, b, 8);
	memcpy(&k.p1, b + 8, 8);
	k.p0 = be64toh(k.p0);
	k.p1 = be64toh(k.p1);
	k.off_len = off << 16 | klen;
	return k;
}

static inline uint16_t eng_okey_len(const struct eng_okey *k)
{
	return (uint16_t)(k->off_len & 0xffff);
}

/* Where the key's bytes start in database.bin. */
static inline uint64_t eng_okey_off(const struct eng_okey *k)
{
	return (k->off_len & ~OKEY_DEAD) >> 16;
}

static inline const char *eng_okey_ptr(const char *base, const struct eng_okey *k)
{
	return base + eng_okey_off(k);
}

static inline int eng_okey_kcmp(const char *a, size_t al, const char *b, size_t bl)
{
	int c = memcmp(a, b, al < bl ? al : bl);
	return c ? c : (al > bl) - (al < bl);
}

/* Byte order of a and b, whose bytes are at pa and pb (read only when
 * their first OKEY_INLINE bytes are equal and one is longer). */
static inline int eng_okey_cmp(const struct eng_okey *a, const char *pa,
			       const struct eng_okey *b, const char *pb)
{
	if (a->p0 != b->p0)
		return a->p0 < b->p0 ? -1 : 1;
	if (a->p1 != b->p1)
		return a->p1 < b->p1 ? -1 : 1;
	if (eng_okey_len(a) <= OKEY_INLINE && eng_okey_len(b) <= OKEY_INLINE)
		return (eng_okey_len(a) > eng_okey_len(b)) - (eng_okey_len(a) < eng_okey_len(b));
	return eng_okey_kcmp(pa, eng_okey_len(a), pb, eng_okey_len(b));
}

#endif
