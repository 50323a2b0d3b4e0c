/* engine/scan.c — the record scanner (see scan.h). */
#include "engine/scan.h"

#include <stdint.h>

#include <string.h>
#include <unistd.h>

void eng_scan_init(struct eng_scan *s, const char *map, uint64_t size)
{
	struct eng_mark m;
	int copy;

	eng_mark_read(map, &m, &copy);
	s->map = map;
	s->size = size;
	s->off = ENG_FILE_HDR_SIZE;
	s->mark = m.durable;
	s->fd = -1;
	s->eof = 0;
	s->data_start = s->data_end = 0;
}

void eng_scan_seek(struct eng_scan *s, uint64_t off)
{
	s->off = off;
}

void eng_scan_set_fd(struct eng_scan *s, int fd)
{
	s->fd = fd;
}

void eng_scan_set_eof(struct eng_scan *s)
{
	s->eof = 1;
}

/* The first offset >= off outside a hole (size if none). Holes read as
 * zeros, but reading one through the mapping may have to allocate a page,
 * which on a full tmpfs is SIGBUS: the scanner steps over them instead.
 * Remembers the data extent found, so a scan costs a few lseeks. */
static uint64_t data_from(struct eng_scan *s, uint64_t off)
{
	off_t d, h;

	if (s->fd < 0 || (off >= s->data_start && off < s->data_end))
		return off;
	d = lseek(s->fd, (off_t)off, SEEK_DATA);
	if (d < 0)
		return s->size; /* ENXIO: only a hole from here on */
	h = lseek(s->fd, d, SEEK_HOLE);
	s->data_start = (uint64_t)d;
	s->data_end = h < d ? s->size : (uint64_t)h;
	return (uint64_t)d;
}

/* 1 if [off, off+n) lies in data the mapping may read. */
static int readable(struct eng_scan *s, uint64_t off, uint64_t n)
{
	return data_from(s, off) == off && (s->fd < 0 || off + n <= s->data_end);
}

static int valid_at(struct eng_scan *s, uint64_t off, struct eng_rec_hdr *h)
{
	if (!readable(s, off, ENG_REC_HDR_SIZE) ||
	    eng_rec_check_hdr(s->map + off, s->size - off, h) != 0)
		return 0;
	/* a PAD's payload is never read: a repair may cover a hole with one */
	return h->type == ENG_REC_PAD ||
	       (readable(s, off, eng_rec_total(h)) &&
		eng_rec_check_data(s->map + off, h) == 0);
}

/* First offset after bad (8-aligned) holding a valid record, or size. */
static uint64_t next_valid(struct eng_scan *s, uint64_t bad)
{
	struct eng_rec_hdr h;
	uint32_t magic = ENG_REC_MAGIC;

	for (uint64_t o = bad + ENG_REC_ALIGN; o + ENG_REC_HDR_SIZE <= s->size;
	     o += ENG_REC_ALIGN) {
		uint64_t d = data_from(s, o);
		if (d != o) {
			o = eng_align8(d) - ENG_REC_ALIGN; /* skip the hole */
			continue;
		}
		if (memcmp(s->map + o, &magic, sizeof(magic)))
			continue; /* cheap filter before the CRCs */
		if (valid_at(s, o, &h))
			return o;
	}
	return s->size;
}

int eng_scan_is_zero(struct eng_scan *s, uint64_t off, uint64_t n)
{
	static const char zeros[4096];
	uint64_t end = off + n;

	while (off < end) {
		uint64_t k;
		off = data_from(s, off); /* holes are zeros */
		if (off >= end)
			break;
		k = end - off;
		if (s->fd >= 0 && k > s->data_end - off)
			k = s->data_end - off;
		if (k > sizeof(zeros))
			k = sizeof(zeros);
		if (memcmp(s->map + off, zeros, k))
			return 0;
		off += k;
	}
	return 1;
}

/* Damage at or above the durable mark was never acknowledged. Below it,
 * only zeros (wiped space) are harmless. A record with an intact header
 * whose payload is torn is taken for an unfinished write only when the
 * file has no valid mark to tell. */
static int abandoned(struct eng_scan *s, uint64_t off, uint64_t next)
{
	struct eng_rec_hdr h;

	if (off >= s->mark || eng_scan_is_zero(s, off, next - off))
		return 1;
	return s->mark == UINT64_MAX && readable(s, off, ENG_REC_HDR_SIZE) &&
	       eng_rec_check_hdr(s->map + off, next - off, &h) == 0 &&
	       off + eng_rec_total(&h) == next;
}

/* Where the bytes the file must hold end: its size, or past it the
 * durable mark of a whole file that was truncated below it. */
static uint64_t must_end(const struct eng_scan *s)
{
	return s->eof && s->mark != UINT64_MAX && s->mark > s->size ? s->mark
								    : s->size;
}

/* [s->off, s->size) holds no valid record: the end of the file. */
static enum eng_scan_kind tail(struct eng_scan *s, struct eng_scan_item *it)
{
	int below = s->mark != UINT64_MAX && s->off < s->mark;
	uint64_t end = must_end(s);

	if (end > s->size) {
		/* missing bytes below the mark: whatever is left is damage */
		it->len = end - s->off;
		s->off = end;
		return it->kind = ENG_SCAN_CORRUPT;
	}
	/* below the mark first: recovery never cuts what was durable */
	if (below && s->mark < s->size)
		end = s->mark;
	it->len = end - s->off;
	s->off = end;
	if (eng_scan_is_zero(s, it->off, it->len))
		return it->kind = below ? ENG_SCAN_ABANDONED : ENG_SCAN_UNUSED;
	/* A tail the mark says was durable was not torn by a crash (and a
	 * file without a mark trusts no tear). */
	return it->kind = below || s->mark == UINT64_MAX ? ENG_SCAN_CORRUPT
							 : ENG_SCAN_TORN_TAIL;
}

enum eng_scan_kind eng_scan_next(struct eng_scan *s, struct eng_scan_item *it)
{
	uint64_t next;

	it->off = s->off;
	if (s->off >= s->size) {
		if (s->off < must_end(s)) /* truncated on a record boundary */
			return tail(s, it);
		it->len = 0;
		return it->kind = ENG_SCAN_END;
	}
	if (valid_at(s, s->off, &it->h)) {
		it->len = eng_rec_total(&it->h);
		s->off += it->len;
		return it->kind = ENG_SCAN_RECORD;
	}
	next = next_valid(s, s->off);
	if (next >= s->size)
		return tail(s, it);
	it->len = next - s->off;
	it->kind = abandoned(s, s->off, next) ? ENG_SCAN_ABANDONED
					      : ENG_SCAN_CORRUPT;
	s->off = next;
	return it->kind;
}
