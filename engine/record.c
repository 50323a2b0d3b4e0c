/* engine/record.c — encoding and checking records (format in record.h). */
#include "engine/record.h"

#include "engine/crc32c.h"

#include <endian.h>
#include <errno.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

/* A 64-bit multiply-xorshift mixer: spreads the clock and pid into a
 * file id when getrandom fails. */
static inline uint64_t mix64(uint64_t x)
{
	x ^= x >> 32;
	x *= 0xd6e8feb86659fd93ull;
	x ^= x >> 32;
	x *= 0xd6e8feb86659fd93ull;
	x ^= x >> 32;
	return x;
}

static uint32_t hdr_crc(const void *hdr)
{
	return eng_crc32c(0, (const char *)hdr + 8, ENG_REC_HDR_SIZE - 8);
}

static void put_hdr(void *dst, const struct eng_rec_hdr *in)
{
	struct eng_rec_hdr h = {
		.magic = htole32(ENG_REC_MAGIC),
		.type = in->type,
		.flags = in->flags,
		.klen = htole16(in->klen),
		.vlen = htole32(in->vlen),
		.version = htole64(in->version),
		.dcrc = htole32(in->dcrc),
		.batch_left = htole32(in->batch_left),
	};
	h.hcrc = htole32(hdr_crc(&h));
	memcpy(dst, &h, sizeof(h));
}

/* Shared by plain records (nparts 0) and batch parts. */
static void encode(void *dst, enum eng_rec_type type, uint64_t version,
		   const void *key, uint16_t klen, const void *val,
		   uint32_t vlen, uint32_t part, uint32_t nparts)
{
	char *p = dst;
	uint64_t total = eng_rec_size(klen, vlen);
	struct eng_rec_hdr h = {
		.type = (uint8_t)type, .klen = klen, .vlen = vlen,
		.version = version,
	};

	memcpy(p + ENG_REC_HDR_SIZE, key, klen);
	if (vlen)
		memcpy(p + ENG_REC_HDR_SIZE + klen, val, vlen);
	memset(p + ENG_REC_HDR_SIZE + klen + vlen, 0,
	       total - ENG_REC_HDR_SIZE - klen - vlen);
	h.dcrc = eng_crc32c(0, p + ENG_REC_HDR_SIZE, (size_t)klen + vlen);
	if (nparts) {
		h.flags = ENG_REC_F_BATCH | (part == 0 ? ENG_REC_F_FIRST : 0);
		h.batch_left = nparts - 1 - part;
	}
	put_hdr(p, &h);
}

void eng_rec_encode_part(void *dst, enum eng_rec_type type, uint64_t version,
			 const void *key, uint16_t klen, const void *val,
			 uint32_t vlen, uint32_t part, uint32_t nparts)
{
	encode(dst, type, version, key, klen, val, vlen, part, nparts);
}

void eng_rec_encode(void *dst, enum eng_rec_type type, uint64_t version,
		    const void *key, uint16_t klen, const void *val,
		    uint32_t vlen)
{
	encode(dst, type, version, key, klen, val, vlen, 0, 0);
}

void eng_rec_unbatch(void *p)
{
	struct eng_rec_hdr h;

	if (eng_rec_check_hdr(p, ENG_REC_HDR_SIZE, &h) == -EBADMSG)
		return;
	h.flags = 0;
	h.batch_left = 0;
	put_hdr(p, &h);
}

void eng_rec_encode_pad(void *dst, uint64_t total, uint8_t flags)
{
	struct eng_rec_hdr h = {
		.type = ENG_REC_PAD, .flags = flags,
		.vlen = (uint32_t)(total - ENG_REC_HDR_SIZE),
	};
	put_hdr(dst, &h);
}

void eng_rec_encode_term(void *dst, uint64_t version)
{
	struct eng_rec_hdr h = {
		.type = ENG_REC_PAD, .flags = ENG_REC_F_TERM, .version = version,
	};
	put_hdr(dst, &h);
}

#define HIST_PAYLOAD 24 /* magic, floor, history offset: crc'ed */

void eng_hist_encode(void *dst, uint64_t floor, uint64_t hist_off)
{
	char *p = dst;
	uint64_t f = htole64(floor), o = htole64(hist_off);
	uint32_t crc;

	memset(p, 0, ENG_HIST_REC_SIZE);
	eng_rec_encode_pad(p, ENG_HIST_REC_SIZE, 0);
	memcpy(p + ENG_REC_HDR_SIZE, ENG_HIST_MAGIC, 8);
	memcpy(p + ENG_REC_HDR_SIZE + 8, &f, 8);
	memcpy(p + ENG_REC_HDR_SIZE + 16, &o, 8);
	crc = htole32(eng_crc32c(0, p + ENG_REC_HDR_SIZE, HIST_PAYLOAD));
	memcpy(p + ENG_REC_HDR_SIZE + HIST_PAYLOAD, &crc, 4);
}

int eng_hist_decode(const void *map, uint64_t size, uint64_t *floor,
		    uint64_t *hist_off)
{
	const char *p = (const char *)map + ENG_FILE_HDR_SIZE;
	struct eng_rec_hdr h;
	uint64_t f, o;
	uint32_t crc;

	if (size < ENG_FILE_HDR_SIZE + ENG_HIST_REC_SIZE ||
	    eng_rec_check_hdr(p, size - ENG_FILE_HDR_SIZE, &h) ||
	    h.type != ENG_REC_PAD || eng_rec_total(&h) != ENG_HIST_REC_SIZE ||
	    memcmp(p + ENG_REC_HDR_SIZE, ENG_HIST_MAGIC, 8))
		return -ENOENT;
	memcpy(&crc, p + ENG_REC_HDR_SIZE + HIST_PAYLOAD, 4);
	if (le32toh(crc) != eng_crc32c(0, p + ENG_REC_HDR_SIZE, HIST_PAYLOAD))
		return -ENOENT;
	memcpy(&f, p + ENG_REC_HDR_SIZE + 8, 8);
	memcpy(&o, p + ENG_REC_HDR_SIZE + 16, 8);
	if (le64toh(o) < ENG_FILE_HDR_SIZE + ENG_HIST_REC_SIZE || le64toh(o) > size)
		return -ENOENT;
	*floor = le64toh(f);
	*hist_off = le64toh(o);
	return 0;
}

uint64_t eng_rec_total(const struct eng_rec_hdr *h)
{
	return eng_rec_size(h->klen, h->vlen);
}

int eng_rec_check_hdr(const void *p, uint64_t avail, struct eng_rec_hdr *h)
{
	if (avail < ENG_REC_HDR_SIZE)
		return -ENODATA;
	memcpy(h, p, sizeof(*h));
	h->magic = le32toh(h->magic);
	h->hcrc = le32toh(h->hcrc);
	h->klen = le16toh(h->klen);
	h->vlen = le32toh(h->vlen);
	h->version = le64toh(h->version);
	h->dcrc = le32toh(h->dcrc);
	h->batch_left = le32toh(h->batch_left);
	if (h->magic != ENG_REC_MAGIC || h->hcrc != hdr_crc(p))
		return -EBADMSG;
	switch (h->type) {
	case ENG_REC_PUT:
	case ENG_REC_DEL:
		if (h->klen == 0 || h->klen > ENG_KEY_MAX)
			return -EBADMSG;
		if (h->type == ENG_REC_DEL && h->vlen)
			return -EBADMSG;
		if (h->flags & ~(ENG_REC_F_BATCH | ENG_REC_F_FIRST) ||
		    h->flags == ENG_REC_F_FIRST)
			return -EBADMSG;
		if (!(h->flags & ENG_REC_F_BATCH) ? h->batch_left != 0 :
		    h->batch_left >= ENG_BATCH_MAX)
			return -EBADMSG;
		break;
	case ENG_REC_PAD:
		if (h->klen || (h->flags & ~(ENG_REC_F_REPAIRED | ENG_REC_F_TERM)) ||
		    h->batch_left || ((h->flags & ENG_REC_F_TERM) && (h->vlen || !h->version)))
			return -EBADMSG;
		break;
	default:
		return -EBADMSG;
	}
	if (eng_rec_total(h) > avail)
		return -ENODATA;
	return 0;
}

int eng_rec_check_data(const void *p, const struct eng_rec_hdr *h)
{
	if (h->type == ENG_REC_PAD)
		return 0;
	if (eng_crc32c(0, (const char *)p + ENG_REC_HDR_SIZE,
		       (size_t)h->klen + h->vlen) != h->dcrc)
		return -EBADMSG;
	return 0;
}

static uint32_t fixed_crc(const unsigned char *p)
{
	unsigned char fixed[ENG_FILE_HDR_CRC_LEN];

	memcpy(fixed, p, sizeof(fixed));
	memset(fixed + ENG_FILE_HDR_CRC_OFF, 0, 4);
	return eng_crc32c(0, fixed, sizeof(fixed));
}

void eng_file_hdr_encode(void *dst, uint64_t id, const struct eng_mark *m)
{
	unsigned char *p = dst;
	uint32_t v = htole32(ENG_FORMAT_VERSION);
	uint64_t le_id = htole64(id);

	memset(p, 0, ENG_FILE_HDR_SIZE);
	memcpy(p, ENG_FILE_MAGIC, ENG_FILE_MAGIC_LEN);
	memcpy(p + 8, &v, 4);
	memcpy(p + ENG_FILE_ID_OFF, &le_id, 8);
	v = htole32(fixed_crc(p));
	memcpy(p + ENG_FILE_HDR_CRC_OFF, &v, 4);
	eng_mark_encode(p + ENG_MARK_OFF_A, m);
}

void eng_mark_encode(void *dst, const struct eng_mark *m)
{
	unsigned char *p = dst;
	uint64_t d = htole64(m->durable), l = htole64(m->lease);
	uint32_t crc;

	memcpy(p, &d, 8);
	memcpy(p + 8, &l, 8);
	crc = htole32(eng_crc32c(0, p, 16));
	memcpy(p + 16, &crc, 4);
}

static int mark_decode(const unsigned char *p, struct eng_mark *m)
{
	uint32_t crc;

	memcpy(&crc, p + 16, 4);
	if (le32toh(crc) != eng_crc32c(0, p, 16))
		return -EBADMSG;
	memcpy(&m->durable, p, 8);
	memcpy(&m->lease, p + 8, 8);
	m->durable = le64toh(m->durable);
	m->lease = le64toh(m->lease);
	return 0;
}

/* Format 1 marks: u64 offset, u32 sequence, u32 crc; the higher sequence
 * (by signed distance: it wraps) counts. */
#define V1_MARK_OFF_A 24
#define V1_MARK_OFF_B 40

static int v1_mark_decode(const unsigned char *p, uint64_t *off, uint32_t *seq)
{
	uint32_t crc;

	memcpy(&crc, p + 12, 4);
	if (le32toh(crc) != eng_crc32c(0, p, 12))
		return -EBADMSG;
	memcpy(off, p, 8);
	memcpy(seq, p + 8, 4);
	*off = le64toh(*off);
	*seq = le32toh(*seq);
	return 0;
}

static int v1_mark_read(const unsigned char *p, struct eng_mark *m, int *copy)
{
	uint64_t oa = 0, ob = 0;
	uint32_t sa = 0, sb = 0;
	int a = v1_mark_decode(p + V1_MARK_OFF_A, &oa, &sa) == 0;
	int b = v1_mark_decode(p + V1_MARK_OFF_B, &ob, &sb) == 0;

	m->lease = 0;
	*copy = !(a && (!b || (int32_t)(sa - sb) > 0));
	if (!a && !b) {
		m->durable = UINT64_MAX;
		return -EBADMSG;
	}
	m->durable = *copy ? ob : oa;
	return 0;
}

static int format_of(const unsigned char *p)
{
	uint32_t v;

	memcpy(&v, p + 8, 4);
	return (int)le32toh(v);
}

int eng_mark_read(const void *file_hdr, struct eng_mark *m, int *copy)
{
	const unsigned char *p = file_hdr;
	struct eng_mark a, b;
	int va, vb;

	if (format_of(p) == ENG_FORMAT_V1)
		return v1_mark_read(p, m, copy);
	va = mark_decode(p + ENG_MARK_OFF_A, &a) == 0;
	vb = mark_decode(p + ENG_MARK_OFF_B, &b) == 0;
	if (!va && !vb) {
		*m = (struct eng_mark){ UINT64_MAX, 0 };
		*copy = 0;
		return -EBADMSG; /* both damaged: trust no damage */
	}
	*copy = !va || (vb && (b.durable > a.durable ||
			       (b.durable == a.durable && b.lease > a.lease)));
	*m = *copy ? b : a;
	return 0;
}

int eng_file_hdr_check(const void *p, uint64_t avail, int *format)
{
	const unsigned char *b = p;
	uint32_t crc;
	int ver;

	if (avail < ENG_FILE_HDR_SIZE ||
	    memcmp(b, ENG_FILE_MAGIC, ENG_FILE_MAGIC_LEN))
		return -EBADMSG;
	ver = format_of(b);
	if (ver == ENG_FORMAT_V1) {
		memcpy(&crc, b + ENG_FILE_HDR_SIZE - 4, 4);
		if (le32toh(crc) != eng_crc32c(0, b, ENG_FILE_HDR_CRC_LEN))
			return -EBADMSG;
	} else {
		memcpy(&crc, b + ENG_FILE_HDR_CRC_OFF, 4);
		if (le32toh(crc) != fixed_crc(b))
			return -EBADMSG;
		if (ver > ENG_FORMAT_VERSION)
			return -EPROTO;
		if (ver < ENG_FORMAT_V1)
			return -EBADMSG;
	}
	if (format)
		*format = ver;
	return 0;
}

uint64_t eng_file_id(const void *file_hdr)
{
	uint64_t id;

	if (format_of(file_hdr) == ENG_FORMAT_V1)
		return 0;
	memcpy(&id, (const char *)file_hdr + ENG_FILE_ID_OFF, 8);
	return le64toh(id);
}

uint64_t eng_file_id_new(void)
{
	uint64_t id = 0;

	/* getrandom never fails for 8 bytes once the pool is ready; the
	 * clock and pid make a usable id if it somehow does. */
	while (id == 0) {
		if (getrandom(&id, sizeof(id), 0) != (ssize_t)sizeof(id)) {
			struct timespec ts;
			clock_gettime(CLOCK_REALTIME, &ts);
			id = mix64((uint64_t)ts.tv_nsec ^ ((uint64_t)ts.tv_sec << 20) ^
				   (uint64_t)getpid());
		}
	}
	return id;
}
