/* engine/recovery.c — the record scanner (see recovery.h). */
#include "engine/recovery.h"

#include <string.h>

void eng_scan_init(struct eng_scan *s, const char *map, uint64_t size)
{
	uint32_t seq;

	s->map = map;
	s->size = size;
	s->off = ENG_FILE_HDR_SIZE;
	s->mark = eng_mark_read(map, &seq);
}

static int valid_at(const struct eng_scan *s, uint64_t off,
		    struct eng_rec_hdr *h)
{
	return eng_rec_check_hdr(s->map + off, s->size - off, h) == 0 &&
	       eng_rec_check_data(s->map + off, h) == 0;
}

/* First offset after bad (8-aligned) holding a valid record, or size. */
static uint64_t next_valid(const struct eng_scan *s, uint64_t bad)
{
	struct eng_rec_hdr h;
	uint32_t magic = ENG_REC_MAGIC;

	for (uint64_t o = bad + ENG_REC_ALIGN; o + ENG_REC_HDR_SIZE <= s->size;
	     o += ENG_REC_ALIGN) {
		if (memcmp(s->map + o, &magic, sizeof(magic)))
			continue; /* cheap filter before the CRCs */
		if (valid_at(s, o, &h))
			return o;
	}
	return s->size;
}

static int all_zero(const char *p, uint64_t n)
{
	static const char zeros[4096];
	while (n) {
		uint64_t k = n < sizeof(zeros) ? n : sizeof(zeros);
		if (memcmp(p, zeros, k))
			return 0;
		p += k;
		n -= k;
	}
	return 1;
}

static int abandoned(const struct eng_scan *s, uint64_t off, uint64_t next)
{
	struct eng_rec_hdr h;

	if (off >= s->mark || all_zero(s->map + off, next - off))
		return 1;
	return eng_rec_check_hdr(s->map + off, next - off, &h) == 0 &&
	       off + eng_rec_total(&h) == next;
}

enum eng_scan_kind eng_scan_next(struct eng_scan *s, struct eng_scan_item *it)
{
	uint64_t next;

	it->off = s->off;
	if (s->off >= s->size) {
		it->len = 0;
		return it->kind = ENG_SCAN_END;
	}
	if (valid_at(s, s->off, &it->h)) {
		it->len = eng_rec_total(&it->h);
		s->off += it->len;
		return it->kind = ENG_SCAN_RECORD;
	}
	next = next_valid(s, s->off);
	it->len = next - s->off;
	if (next >= s->size) {
		s->off = s->size;
		it->len = s->size - it->off;
		return it->kind = ENG_SCAN_TORN_TAIL;
	}
	it->kind = abandoned(s, s->off, next) ? ENG_SCAN_ABANDONED
					      : ENG_SCAN_CORRUPT;
	s->off = next;
	return it->kind;
}
