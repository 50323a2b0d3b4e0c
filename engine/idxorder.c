/* engine/idxorder.c — the ordered section of database.idx (see
 * idxorder.h; layout in docs/format.md).
 *
 * The section is n ordered entries (engine/okey.h), 24 bytes each, as
 * three little-endian u64: the key's first 8 bytes read as a big-endian
 * number, the next 8, and key offset << 16 | key length. On a
 * little-endian machine that is struct eng_okey byte for byte, which is
 * why a worker can use the mapping as its view's base without a copy.
 *
 * What a check proves, and how cheaply: a start already reads every key
 * of the snapshot's entries (it checks their hashes), so it sums a
 * fingerprint of them on the way (eng_idxorder_fp); the section is then
 * read once, in file order, for its CRC, the bounds of each entry, its
 * order against the one before (a comparison of two integer pairs, the
 * records read only where 16 bytes tie) and the same sum. Equal sums and
 * a strict order mean it is exactly the snapshot's keys, sorted; no
 * lookup per key and no sort.
 */
#include "engine/idxorder.h"

#include "engine/crc32c.h"
#include "engine/db.h"
#include "engine/io.h"
#include "engine/record.h"

#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define ORDER_ENTRY_SIZE 24
/* Entries encoded per write: 48 KiB a pwrite. */
#define WRITE_CHUNK 2048
/* Keys read this many entries ahead of their use (fill_prefixes): enough
 * to overlap misses of a few hundred ns at tens of ns an entry. */
#define PREFETCH_AHEAD 16

/* --- making one ----------------------------------------------------------- */

int eng_idxorder_add(struct eng_idxorder *o, uint64_t voff, uint16_t klen)
{
	if (o->n == o->cap) {
		size_t ncap = o->cap ? o->cap * 2 : 4096;
		struct eng_okey *p = realloc(o->v, ncap * sizeof(*p));
		if (!p)
			return -ENOMEM;
		o->v = p;
		o->cap = ncap;
	}
	/* the key's bytes later, in one pass that prefetches (fill_prefixes) */
	o->v[o->n++] = (struct eng_okey){ 0, 0, (voff - klen) << 16 | klen };
	return 0;
}

/* The entries come in the table's order, that is of their hashes, so
 * the keys they name are all over database.bin: each read is a miss.
 * Their addresses are known entries ahead, so they are asked for that
 * far ahead and the misses overlap (measured at 1 M keys: the reads
 * were a third of a stop's sort before). */
static void fill_prefixes(struct eng_okey *v, size_t n, const char *map)
{
	for (size_t i = 0; i < n; i++) {
		if (i + PREFETCH_AHEAD < n)
			__builtin_prefetch(eng_okey_ptr(map, &v[i + PREFETCH_AHEAD]), 0);
		v[i] = eng_okey_make(eng_okey_ptr(map, &v[i]), eng_okey_len(&v[i]),
				     eng_okey_off(&v[i]));
	}
}

static uint8_t digit(const struct eng_okey *k, unsigned d)
{
	/* digits 0..7: p1 from its low byte up; 8..15: p0 likewise */
	return (uint8_t)((d < 8 ? k->p1 : k->p0) >> (8 * (d % 8)));
}

/* Sorts by the 16 inline bytes (p0, p1) as one 128-bit number: a least
 * significant digit first radix sort, stable, one byte a pass, passes
 * skipped where every entry has the same byte (keys with a common
 * prefix, or shorter than 16 bytes). Instead of the n log n calls of
 * a comparator: at 1 M keys, msort's were two fifths of a stop. 0 or
 * -ENOMEM. */
static int radix_sort(struct eng_okey **v, size_t n)
{
	size_t (*count)[256] = calloc(OKEY_INLINE, sizeof(*count));
	struct eng_okey *tmp = malloc(n * sizeof(*tmp)), *t;

	if (!count || !tmp) {
		free(count);
		free(tmp);
		return -ENOMEM;
	}
	for (size_t i = 0; i < n; i++)
		for (unsigned d = 0; d < OKEY_INLINE; d++)
			count[d][digit(&(*v)[i], d)]++;
	for (unsigned d = 0; d < OKEY_INLINE; d++) {
		size_t at = 0;

		if (count[d][digit(&(*v)[0], d)] == n)
			continue; /* one value: this pass would change nothing */
		for (unsigned b = 0; b < 256; b++) {
			size_t c = count[d][b];
			count[d][b] = at;
			at += c;
		}
		for (size_t i = 0; i < n; i++)
			tmp[count[d][digit(&(*v)[i], d)]++] = (*v)[i];
		t = *v;
		*v = tmp;
		tmp = t;
	}
	free(tmp);
	free(count);
	return 0;
}

static int sort_cmp(const void *a, const void *b, void *map)
{
	return eng_okey_cmp(a, eng_okey_ptr(map, a), b, eng_okey_ptr(map, b));
}

int eng_idxorder_sort(struct eng_idxorder *o, const char *map)
{
	size_t i, j;
	int rc;

	fill_prefixes(o->v, o->n, map);
	if (o->n < 2)
		return 0;
	if ((rc = radix_sort(&o->v, o->n)))
		return rc;
	o->cap = o->n; /* radix_sort may have handed back its own buffer */
	/* keys whose 16 inline bytes tie: by their length, or their bytes */
	for (i = 0; i < o->n; i = j) {
		for (j = i + 1; j < o->n && o->v[j].p0 == o->v[i].p0 && o->v[j].p1 == o->v[i].p1; j++)
			;
		if (j - i > 1)
			qsort_r(o->v + i, j - i, sizeof(*o->v), sort_cmp, (void *)map);
	}
	return 0;
}

static void encode(unsigned char *d, const struct eng_okey *k)
{
	uint64_t w[3] = { htole64(k->p0), htole64(k->p1), htole64(k->off_len) };

	memcpy(d, w, sizeof(w));
}

int eng_idxorder_write(int fd, const struct eng_idxorder *o, uint64_t off,
		       uint32_t *crc)
{
	unsigned char *buf = malloc(WRITE_CHUNK * ORDER_ENTRY_SIZE);
	int rc = 0;

	if (!buf)
		return -ENOMEM;
	*crc = 0;
	for (size_t i = 0; i < o->n && !rc;) {
		size_t n = o->n - i < WRITE_CHUNK ? o->n - i : WRITE_CHUNK;

		for (size_t j = 0; j < n; j++)
			encode(buf + j * ORDER_ENTRY_SIZE, &o->v[i + j]);
		*crc = eng_crc32c(*crc, buf, n * ORDER_ENTRY_SIZE);
		rc = eng_io_pwrite_all(fd, buf, n * ORDER_ENTRY_SIZE, off);
		off += n * ORDER_ENTRY_SIZE;
		i += n;
	}
	free(buf);
	return rc;
}

void eng_idxorder_free(struct eng_idxorder *o)
{
	free(o->v);
	memset(o, 0, sizeof(*o));
}

/* --- checking one ------------------------------------------------------------ */

/* A 64-bit finaliser (the splitmix64 one): every input bit changes about
 * half of the output bits, so a sum of them tells sets apart. */
static uint64_t mix64(uint64_t x)
{
	x ^= x >> 30;
	x *= 0xbf58476d1ce4e5b9ull;
	x ^= x >> 27;
	x *= 0x94d049bb133111ebull;
	return x ^ (x >> 31);
}

static uint64_t fp_of(const struct eng_okey *k)
{
	return mix64(k->p0 ^ mix64(k->p1 ^ mix64(k->off_len)));
}

uint64_t eng_idxorder_fp(const char *key, uint16_t klen, uint64_t koff)
{
	struct eng_okey k = eng_okey_make(key, klen, koff);

	return fp_of(&k);
}

void eng_idxorder_check_init(struct eng_idxorder_check *c, const char *map,
			     uint64_t below)
{
	memset(c, 0, sizeof(*c));
	c->map = map;
	c->below = below;
}

static void decode(struct eng_okey *k, const unsigned char *s)
{
	uint64_t w[3];

	memcpy(w, s, sizeof(w));
	k->p0 = le64toh(w[0]);
	k->p1 = le64toh(w[1]);
	k->off_len = le64toh(w[2]);
}

int eng_idxorder_check_part(struct eng_idxorder_check *c, const void *p,
			    uint64_t n, char *why, size_t whylen)
{
	const unsigned char *s = p;

	c->crc = eng_crc32c(c->crc, p, n * ORDER_ENTRY_SIZE);
	for (uint64_t i = 0; i < n; i++, c->done++) {
		struct eng_okey k;
		uint64_t koff;
		uint16_t klen;

		decode(&k, s + i * ORDER_ENTRY_SIZE);
		koff = k.off_len >> 16; /* the dead bit too: it is never on disk */
		klen = eng_okey_len(&k);
		/* bounds first: the order check below reads the key */
		if (klen < 1 || klen > ENG_KEY_MAX ||
		    koff < ENG_FILE_HDR_SIZE + ENG_REC_HDR_SIZE ||
		    koff > c->below || c->below - koff < klen) {
			snprintf(why, whylen, "ordered entry %" PRIu64 " points outside "
				 "the keys it covers", c->done);
			return -EBADMSG;
		}
		if (c->done && eng_okey_cmp(&c->prev, eng_okey_ptr(c->map, &c->prev),
					    &k, eng_okey_ptr(c->map, &k)) >= 0) {
			snprintf(why, whylen, "ordered entry %" PRIu64 " is not after the "
				 "one before it", c->done);
			return -EBADMSG;
		}
		c->fp += fp_of(&k);
		c->prev = k;
	}
	return 0;
}

/* --- mapping one ----------------------------------------------------------------- */

/* len bytes at off of fd: 0, -ESTALE if the file ends first, or -errno. */
static int read_at(int fd, void *buf, size_t len, uint64_t off)
{
	int rc = eng_io_pread_all(fd, buf, len, off);

	return rc == -ENODATA ? -ESTALE : rc;
}

int eng_idxorder_map(const char *dir, const struct eng_idx_view *v,
		     struct eng_idxorder_map *m)
{
	unsigned char hdr[ENG_IDX_VIEW_HDR];
	uint64_t bytes = v->keys * ORDER_ENTRY_SIZE, at;
	long page = sysconf(_SC_PAGESIZE);
	struct stat st;
	char *path;
	void *addr;
	int fd, rc;

	memset(m, 0, sizeof(*m));
	if (__BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__)
		return -ENOTSUP; /* the entries are little-endian on disk */
	if (page <= 0)
		return -EINVAL;
	if ((rc = eng_path_join(&path, dir, ENG_IDX_FILE)))
		return rc;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	free(path);
	if (fd < 0)
		return errno == ENOENT ? -ESTALE : -errno;
	/* The header holds the section's CRC and the file id: the same
	 * bytes mean the same file recovery checked (snapshots are written
	 * whole under another name and renamed over, never in place). */
	if ((rc = read_at(fd, hdr, sizeof(hdr), 0)))
		goto out_close;
	if (memcmp(hdr, v->hdr, sizeof(hdr))) {
		rc = -ESTALE;
		goto out_close;
	}
	if (fstat(fd, &st) < 0) {
		rc = -errno;
		goto out_close;
	}
	if ((uint64_t)st.st_size < v->off + bytes) {
		rc = -ESTALE;
		goto out_close;
	}
	if (!bytes)
		goto out_close; /* no keys: nothing to map */
	at = v->off - v->off % (uint64_t)page;
	addr = mmap(NULL, (size_t)(v->off + bytes - at), PROT_READ, MAP_SHARED, fd, (off_t)at);
	if (addr == MAP_FAILED) {
		rc = -errno;
		goto out_close;
	}
	m->addr = addr;
	m->len = (size_t)(v->off + bytes - at);
	m->base = (const struct eng_okey *)((const char *)addr + (v->off - at));
	m->n = v->keys;
out_close:
	close(fd); /* the mapping keeps the file */
	return rc;
}

void eng_idxorder_unmap(struct eng_idxorder_map *m)
{
	if (m->addr)
		munmap(m->addr, m->len);
	memset(m, 0, sizeof(*m));
}
