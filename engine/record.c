/* engine/record.c — encoding and checking records (format in record.h). */
#include "engine/record.h"

#include "engine/crc32c.h"

#include <endian.h>
#include <errno.h>
#include <string.h>

static uint32_t hdr_crc(const void *hdr)
{
	return eng_crc32c(0, (const char *)hdr + 8, ENG_REC_HDR_SIZE - 8);
}

static void put_hdr(void *dst, enum eng_rec_type type, uint16_t klen,
		    uint32_t vlen, uint64_t version, uint32_t dcrc)
{
	struct eng_rec_hdr h = {
		.magic = htole32(ENG_REC_MAGIC),
		.type = (uint8_t)type,
		.klen = htole16(klen),
		.vlen = htole32(vlen),
		.version = htole64(version),
		.dcrc = htole32(dcrc),
	};
	h.hcrc = htole32(hdr_crc(&h));
	memcpy(dst, &h, sizeof(h));
}

void eng_rec_encode(void *dst, enum eng_rec_type type, uint64_t version,
		    const void *key, uint16_t klen, const void *val,
		    uint32_t vlen)
{
	char *p = dst;
	uint64_t total = eng_rec_size(klen, vlen);
	uint32_t dcrc;

	memcpy(p + ENG_REC_HDR_SIZE, key, klen);
	if (vlen)
		memcpy(p + ENG_REC_HDR_SIZE + klen, val, vlen);
	memset(p + ENG_REC_HDR_SIZE + klen + vlen, 0,
	       total - ENG_REC_HDR_SIZE - klen - vlen);
	dcrc = eng_crc32c(0, p + ENG_REC_HDR_SIZE, (size_t)klen + vlen);
	put_hdr(p, type, klen, vlen, version, dcrc);
}

void eng_rec_encode_pad(void *dst, uint64_t total)
{
	put_hdr(dst, ENG_REC_PAD, 0, (uint32_t)(total - ENG_REC_HDR_SIZE), 0,
		0);
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
	if (h->magic != ENG_REC_MAGIC || h->hcrc != hdr_crc(p))
		return -EBADMSG;
	switch (h->type) {
	case ENG_REC_PUT:
	case ENG_REC_DEL:
		if (h->klen == 0 || h->klen > ENG_KEY_MAX)
			return -EBADMSG;
		if (h->type == ENG_REC_DEL && h->vlen)
			return -EBADMSG;
		break;
	case ENG_REC_PAD:
		if (h->klen)
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

void eng_file_hdr_encode(void *dst, uint64_t created)
{
	unsigned char *p = dst;
	uint32_t v;
	uint64_t c = htole64(created);

	memset(p, 0, ENG_FILE_HDR_SIZE);
	memcpy(p, ENG_FILE_MAGIC, ENG_FILE_MAGIC_LEN);
	v = htole32(ENG_FORMAT_VERSION);
	memcpy(p + 8, &v, 4);
	v = htole32(ENG_FILE_HDR_SIZE);
	memcpy(p + 12, &v, 4);
	memcpy(p + 16, &c, 8);
	eng_mark_encode(p + ENG_MARK_OFF_A, ENG_FILE_HDR_SIZE, 1);
	v = htole32(eng_crc32c(0, p, ENG_FILE_HDR_CRC_LEN));
	memcpy(p + ENG_FILE_HDR_SIZE - 4, &v, 4);
}

void eng_mark_encode(void *dst, uint64_t mark, uint32_t seq)
{
	unsigned char *p = dst;
	uint64_t m = htole64(mark);
	uint32_t s = htole32(seq), crc;

	memcpy(p, &m, 8);
	memcpy(p + 8, &s, 4);
	crc = htole32(eng_crc32c(0, p, 12));
	memcpy(p + 12, &crc, 4);
}

static int mark_decode(const unsigned char *p, uint64_t *mark, uint32_t *seq)
{
	uint32_t crc;

	memcpy(&crc, p + 12, 4);
	if (le32toh(crc) != eng_crc32c(0, p, 12))
		return -EBADMSG;
	memcpy(mark, p, 8);
	memcpy(seq, p + 8, 4);
	*mark = le64toh(*mark);
	*seq = le32toh(*seq);
	return 0;
}

uint64_t eng_mark_read(const void *file_hdr, uint32_t *seq)
{
	const unsigned char *p = file_hdr;
	uint64_t ma = 0, mb = 0;
	uint32_t sa = 0, sb = 0;
	int a = mark_decode(p + ENG_MARK_OFF_A, &ma, &sa) == 0;
	int b = mark_decode(p + ENG_MARK_OFF_B, &mb, &sb) == 0;

	if (a && (!b || (int32_t)(sa - sb) > 0)) {
		*seq = sa;
		return ma;
	}
	*seq = b ? sb : 0;
	return b ? mb : UINT64_MAX; /* both damaged: trust no damage */
}

int eng_file_hdr_check(const void *p, uint64_t avail)
{
	const unsigned char *b = p;
	uint32_t ver, crc;

	if (avail < ENG_FILE_HDR_SIZE ||
	    memcmp(b, ENG_FILE_MAGIC, ENG_FILE_MAGIC_LEN))
		return -EBADMSG;
	memcpy(&crc, b + ENG_FILE_HDR_SIZE - 4, 4);
	if (le32toh(crc) != eng_crc32c(0, b, ENG_FILE_HDR_CRC_LEN))
		return -EBADMSG;
	memcpy(&ver, b + 8, 4);
	if (le32toh(ver) > ENG_FORMAT_VERSION)
		return -EPROTO;
	return 0;
}

/* A 64-bit multiply-xorshift hash over 8-byte words: keys are short, so
 * word-at-a-time beats byte-at-a-time FNV, and the index needs only good
 * spreading, not cryptographic strength. */
static inline uint64_t mix64(uint64_t x)
{
	x ^= x >> 32;
	x *= 0xd6e8feb86659fd93ull;
	x ^= x >> 32;
	x *= 0xd6e8feb86659fd93ull;
	x ^= x >> 32;
	return x;
}

uint64_t eng_key_hash(const void *key, size_t len)
{
	const unsigned char *p = key;
	uint64_t h = 0x9e3779b97f4a7c15ull ^ len;

	while (len >= 8) {
		uint64_t w;
		memcpy(&w, p, 8);
		h = mix64(h ^ w);
		p += 8;
		len -= 8;
	}
	if (len) {
		uint64_t w = 0;
		memcpy(&w, p, len);
		h = mix64(h ^ w ^ ((uint64_t)len << 56));
	}
	return mix64(h);
}
