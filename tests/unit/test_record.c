/* tests/unit/test_record.c — the on-disk format (engine/record.h, format
 * 2 with its batch parts and {durable, lease} marks), the checksum under
 * it (engine/crc32c.h), eng_parse_i64 (engine/num.h) and, through the
 * store, the upgrade of a format 1 header.
 *
 * Apart from the upgrade suite these are pure functions on memory
 * buffers: no files, no processes. Every buffer is malloc'ed at its exact
 * size, so under ASan any read past a record or header is caught.
 */
#include "engine/crc32c.h"
#include "engine/errors.h"
#include "engine/num.h"
#include "engine/record.h"
#include "engine/store.h"
#include "tests/unit/unit_util.h"

#include <criterion/criterion.h>
#include <criterion/new/assert.h>
#include <endian.h>
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define BITS_PER_BYTE 8
/* Record header field offsets (record.h). */
#define OFF_TYPE 8
#define OFF_FLAGS 9
#define OFF_KLEN 10
#define OFF_VLEN 12
#define OFF_VERSION 16
#define OFF_DCRC 24
#define OFF_BATCH_LEFT 28

/* A record encoded into a buffer of exactly its size. */
struct rec {
	unsigned char *buf;
	uint64_t size;
};

static struct rec rec_alloc(uint16_t klen, uint32_t vlen)
{
	struct rec r = { .size = eng_rec_size(klen, vlen) };

	r.buf = malloc(r.size);
	cr_assert_not_null(r.buf);
	memset(r.buf, 0xA5, r.size); /* encode must overwrite every byte */
	return r;
}

static struct rec encode(enum eng_rec_type type, uint64_t version,
			 const void *key, uint16_t klen, const void *val,
			 uint32_t vlen)
{
	struct rec r = rec_alloc(klen, vlen);

	eng_rec_encode(r.buf, type, version, key, klen, val, vlen);
	return r;
}

static struct rec encode_part(enum eng_rec_type type, uint64_t version,
			      const void *key, uint16_t klen, const void *val,
			      uint32_t vlen, uint32_t part, uint32_t nparts)
{
	struct rec r = rec_alloc(klen, vlen);

	eng_rec_encode_part(r.buf, type, version, key, klen, val, vlen, part,
			    nparts);
	return r;
}

/* Decodes r and checks every field against what was encoded. */
static void expect_record(const struct rec *r, enum eng_rec_type type,
			  uint64_t version, const void *key, uint16_t klen,
			  const void *val, uint32_t vlen, uint8_t flags,
			  uint32_t batch_left)
{
	struct eng_rec_hdr h;
	int rc = eng_rec_check_hdr(r->buf, r->size, &h);

	cr_assert(eq(int, rc, 0), "check_hdr: %s", eng_strerror(rc));
	cr_assert(eq(int, eng_rec_check_data(r->buf, &h), 0));
	cr_assert(eq(u32, h.magic, ENG_REC_MAGIC));
	cr_assert(eq(int, h.type, type));
	cr_assert(eq(int, h.flags, flags));
	cr_assert(eq(int, h.klen, klen));
	cr_assert(eq(u32, h.vlen, vlen));
	cr_assert(eq(u64, h.version, version));
	cr_assert(eq(u32, h.batch_left, batch_left));
	cr_assert(eq(u32, h.dcrc, eng_crc32c(0, r->buf + ENG_REC_HDR_SIZE,
					       (size_t)klen + vlen)));
	cr_assert(eq(u64, eng_rec_total(&h), r->size));
	cr_assert(eq(int, memcmp(r->buf + ENG_REC_HDR_SIZE, key, klen), 0),
		  "key bytes");
	if (vlen)
		cr_assert(eq(int, memcmp(r->buf + ENG_REC_HDR_SIZE + klen, val,
					 vlen), 0), "value bytes");
	for (uint64_t i = ENG_REC_HDR_SIZE + klen + vlen; i < r->size; i++)
		cr_assert(eq(int, r->buf[i], 0), "padding byte %llu is not zero",
			  (unsigned long long)i);
}

static void expect_round_trip(const struct rec *r, enum eng_rec_type type,
			      uint64_t version, const void *key,
			      uint16_t klen, const void *val, uint32_t vlen)
{
	expect_record(r, type, version, key, klen, val, vlen, 0, 0);
}

/* Recomputes the header checksum after a test edited the header, so that
 * only the field under test is wrong. */
static void reseal_hdr(unsigned char *p)
{
	uint32_t crc = htole32(eng_crc32c(0, p + 8, ENG_REC_HDR_SIZE - 8));
	memcpy(p + 4, &crc, sizeof(crc));
}

static void put16(unsigned char *p, uint16_t v)
{
	v = htole16(v);
	memcpy(p, &v, 2);
}

static void put32(unsigned char *p, uint32_t v)
{
	v = htole32(v);
	memcpy(p, &v, 4);
}

static void put64(unsigned char *p, uint64_t v)
{
	v = htole64(v);
	memcpy(p, &v, 8);
}

static uint32_t get32(const unsigned char *p)
{
	uint32_t v;
	memcpy(&v, p, 4);
	return le32toh(v);
}

static uint64_t get64(const unsigned char *p)
{
	uint64_t v;
	memcpy(&v, p, 8);
	return le64toh(v);
}

/* --- records -------------------------------------------------------------- */

Test(engine_record, put_round_trips_binary_key_and_value, .timeout = 5)
{
	unsigned char key[256], val[1000];
	struct rec r;

	for (int i = 0; i < 256; i++)
		key[i] = (unsigned char)(255 - i); /* every byte value, NUL too */
	for (int i = 0; i < 1000; i++)
		val[i] = (unsigned char)(i * 7);
	r = encode(ENG_REC_PUT, 42, key, sizeof(key), val, sizeof(val));
	expect_round_trip(&r, ENG_REC_PUT, 42, key, sizeof(key), val,
			  sizeof(val));
	free(r.buf);
}

Test(engine_record, put_round_trips_empty_value, .timeout = 5)
{
	struct rec r = encode(ENG_REC_PUT, 1, "k", 1, NULL, 0);

	cr_assert(eq(u64, r.size, 40)); /* 32 + 1, aligned to 8 */
	expect_round_trip(&r, ENG_REC_PUT, 1, "k", 1, NULL, 0);
	free(r.buf);
}

Test(engine_record, put_round_trips_1024_byte_key, .timeout = 5)
{
	char key[ENG_KEY_MAX];
	struct rec r;

	memset(key, 'K', sizeof(key));
	key[0] = '\0';
	r = encode(ENG_REC_PUT, UINT64_MAX, key, ENG_KEY_MAX, "v", 1);
	expect_round_trip(&r, ENG_REC_PUT, UINT64_MAX, key, ENG_KEY_MAX, "v", 1);
	free(r.buf);
}

Test(engine_record, del_round_trips, .timeout = 5)
{
	struct rec r = encode(ENG_REC_DEL, 7, "gone\0x", 6, NULL, 0);

	expect_round_trip(&r, ENG_REC_DEL, 7, "gone\0x", 6, NULL, 0);
	free(r.buf);
}

Test(engine_record, pad_covers_exactly_its_range, .timeout = 5)
{
	static const uint64_t sizes[] = { 32, 40, 4096, 65536 + 8 };
	static const uint8_t flags[] = { 0, ENG_REC_F_REPAIRED };

	for (size_t f = 0; f < sizeof(flags); f++)
		for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
			unsigned char *buf = calloc(1, sizes[i]);
			struct eng_rec_hdr h;

			cr_assert_not_null(buf);
			memset(buf + ENG_REC_HDR_SIZE, 0x5A,
			       sizes[i] - ENG_REC_HDR_SIZE);
			eng_rec_encode_pad(buf, sizes[i], flags[f]);
			cr_assert(eq(int, eng_rec_check_hdr(buf, sizes[i], &h), 0));
			cr_assert(eq(int, h.type, ENG_REC_PAD));
			cr_assert(eq(int, h.flags, flags[f]));
			cr_assert(eq(int, h.klen, 0));
			cr_assert(eq(u32, h.dcrc, 0));
			cr_assert(eq(u32, h.batch_left, 0));
			cr_assert(eq(u64, eng_rec_total(&h), sizes[i]));
			/* a PAD's payload is whatever was there: never checked */
			cr_assert(eq(int, eng_rec_check_data(buf, &h), 0));
			if (sizes[i] > ENG_REC_HDR_SIZE)
				cr_assert(eq(int, buf[sizes[i] - 1], 0x5A),
					  "the payload is left alone");
			/* one byte short of its range: it does not fit */
			cr_assert(eq(int, eng_rec_check_hdr(buf, sizes[i] - 1, &h),
				     -ENODATA));
			free(buf);
		}
}

Test(engine_record, sizes_are_8_aligned_and_tight, .timeout = 5)
{
	for (uint32_t k = 0; k <= ENG_KEY_MAX; k++)
		for (uint32_t v = 0; v < 3 * ENG_REC_ALIGN; v++) {
			uint64_t raw = ENG_REC_HDR_SIZE + k + v;
			uint64_t sz = eng_rec_size(k, v);
			cr_assert(eq(u64, sz % ENG_REC_ALIGN, 0), "k=%u v=%u", k, v);
			cr_assert(ge(u64, sz, raw), "k=%u v=%u", k, v);
			cr_assert(lt(u64, sz, raw + ENG_REC_ALIGN), "k=%u v=%u", k, v);
		}
	/* the largest value the format allows does not wrap */
	cr_assert(eq(u64, eng_rec_size(ENG_KEY_MAX, ENG_VALUE_MAX_FORMAT),
		     eng_align8((uint64_t)ENG_REC_HDR_SIZE + ENG_KEY_MAX +
				ENG_VALUE_MAX_FORMAT)));
	cr_assert(gt(u64, eng_rec_size(ENG_KEY_MAX, ENG_VALUE_MAX_FORMAT),
		     (uint64_t)UINT32_MAX));
}

/* Every bit of the header is covered: the magic by comparison, the hcrc
 * by itself, bytes 8..32 (batch flags and count too) by the hcrc. */
Test(engine_record, any_flipped_header_bit_is_rejected, .timeout = 10)
{
	struct rec plain = encode(ENG_REC_PUT, 0x0102030405060708ull, "key", 3,
				  "value", 5);
	struct rec part = encode_part(ENG_REC_PUT, 77, "key", 3, "value", 5,
				      1, 4);
	struct rec *recs[] = { &plain, &part };
	struct eng_rec_hdr h;

	for (size_t i = 0; i < 2; i++) {
		struct rec *r = recs[i];
		for (int byte = 0; byte < ENG_REC_HDR_SIZE; byte++)
			for (int bit = 0; bit < BITS_PER_BYTE; bit++) {
				r->buf[byte] ^= (unsigned char)(1u << bit);
				cr_assert(eq(int, eng_rec_check_hdr(r->buf, r->size, &h),
					     -EBADMSG), "record %zu: bit %d of header byte %d",
					  i, bit, byte);
				r->buf[byte] ^= (unsigned char)(1u << bit);
			}
		cr_assert(eq(int, eng_rec_check_hdr(r->buf, r->size, &h), 0));
		free(r->buf);
	}
}

Test(engine_record, any_flipped_payload_bit_is_rejected, .timeout = 10)
{
	unsigned char key[37], val[300];
	struct rec r;
	struct eng_rec_hdr h;

	for (size_t i = 0; i < sizeof(key); i++)
		key[i] = (unsigned char)(i * 31 + 1);
	for (size_t i = 0; i < sizeof(val); i++)
		val[i] = (unsigned char)(i ^ 0x3C);
	r = encode(ENG_REC_PUT, 9, key, sizeof(key), val, sizeof(val));
	for (size_t byte = ENG_REC_HDR_SIZE;
	     byte < ENG_REC_HDR_SIZE + sizeof(key) + sizeof(val); byte++)
		for (int bit = 0; bit < BITS_PER_BYTE; bit++) {
			r.buf[byte] ^= (unsigned char)(1u << bit);
			/* the header is intact: only the data check sees it */
			cr_assert(eq(int, eng_rec_check_hdr(r.buf, r.size, &h), 0));
			cr_assert(eq(int, eng_rec_check_data(r.buf, &h), -EBADMSG),
				  "bit %d of byte %zu", bit, byte);
			r.buf[byte] ^= (unsigned char)(1u << bit);
		}
	cr_assert(eq(int, eng_rec_check_data(r.buf, &h), 0));
	free(r.buf);
}

/* A tampered checksum or length is caught too, not only the bytes it
 * covers: each corrupted field on its own, the header resealed. */
Test(engine_record, each_corrupted_field_is_caught, .timeout = 5)
{
	struct rec r = encode(ENG_REC_PUT, 5, "field", 5, "0123456789", 10);
	unsigned char *copy = malloc(r.size);
	struct eng_rec_hdr h;

	cr_assert_not_null(copy);
	memcpy(copy, r.buf, r.size);

	/* dcrc off by one: the header passes, the data does not */
	put32(r.buf + OFF_DCRC, get32(r.buf + OFF_DCRC) ^ 1);
	reseal_hdr(r.buf);
	cr_assert(eq(int, eng_rec_check_hdr(r.buf, r.size, &h), 0));
	cr_assert(eq(int, eng_rec_check_data(r.buf, &h), -EBADMSG), "dcrc");
	memcpy(r.buf, copy, r.size);

	/* a shorter value: the dcrc covers fewer bytes than it was made of */
	put32(r.buf + OFF_VLEN, 9);
	reseal_hdr(r.buf);
	cr_assert(eq(int, eng_rec_check_hdr(r.buf, r.size, &h), 0));
	cr_assert(eq(int, eng_rec_check_data(r.buf, &h), -EBADMSG), "vlen");
	memcpy(r.buf, copy, r.size);

	/* a longer key taking a value byte: same bytes, split differently,
	 * the dcrc still matches (it covers key+value as one): only the
	 * index's klen check can tell, which is why it keeps klen */
	put16(r.buf + OFF_KLEN, 6);
	put32(r.buf + OFF_VLEN, 9);
	reseal_hdr(r.buf);
	cr_assert(eq(int, eng_rec_check_hdr(r.buf, r.size, &h), 0));
	cr_assert(eq(int, h.klen, 6));
	cr_assert(eq(int, eng_rec_check_data(r.buf, &h), 0));
	memcpy(r.buf, copy, r.size);

	/* a value length that runs past the buffer */
	put32(r.buf + OFF_VLEN, 10 + ENG_REC_ALIGN);
	reseal_hdr(r.buf);
	cr_assert(eq(int, eng_rec_check_hdr(r.buf, r.size, &h), -ENODATA),
		  "runs past what is there");
	memcpy(r.buf, copy, r.size);

	/* the version is under the hcrc */
	put64(r.buf + OFF_VERSION, 6);
	cr_assert(eq(int, eng_rec_check_hdr(r.buf, r.size, &h), -EBADMSG),
		  "version without resealing");
	memcpy(r.buf, copy, r.size);

	/* the hcrc itself */
	put32(r.buf + 4, get32(r.buf + 4) + 1);
	cr_assert(eq(int, eng_rec_check_hdr(r.buf, r.size, &h), -EBADMSG), "hcrc");
	memcpy(r.buf, copy, r.size);

	cr_assert(eq(int, eng_rec_check_hdr(r.buf, r.size, &h), 0));
	cr_assert(eq(int, eng_rec_check_data(r.buf, &h), 0));
	free(copy);
	free(r.buf);
}

Test(engine_record, short_buffers_are_nodata, .timeout = 5)
{
	struct rec r = encode(ENG_REC_PUT, 3, "abc", 3, "0123456789", 10);
	struct eng_rec_hdr h;

	for (uint64_t avail = 0; avail < ENG_REC_HDR_SIZE; avail++)
		cr_assert(eq(int, eng_rec_check_hdr(r.buf, avail, &h), -ENODATA),
			  "avail %llu", (unsigned long long)avail);
	for (uint64_t avail = ENG_REC_HDR_SIZE; avail < r.size; avail++)
		cr_assert(eq(int, eng_rec_check_hdr(r.buf, avail, &h), -ENODATA),
			  "avail %llu", (unsigned long long)avail);
	cr_assert(eq(int, eng_rec_check_hdr(r.buf, r.size, &h), 0));
	free(r.buf);
}

/* What a crash leaves of an append: a prefix of the record's bytes
 * reached the file, the rest reads as zeros (prepared space). */
Test(engine_record, torn_records_are_rejected, .timeout = 10)
{
	unsigned char val[203]; /* with 5 bytes of padding */
	struct rec r;
	unsigned char *torn;
	struct eng_rec_hdr h;

	for (size_t i = 0; i < sizeof(val); i++)
		val[i] = (unsigned char)(i + 1); /* no zero byte: a tear shows */
	r = encode(ENG_REC_PUT, 11, "torn-key", 8, val, sizeof(val));
	torn = malloc(r.size);
	cr_assert_not_null(torn);
	for (uint64_t kept = 0; kept < r.size; kept++) {
		int whole_hdr, whole_payload;

		memset(torn, 0, r.size);
		memcpy(torn, r.buf, kept);
		/* bytes that were zeros anyway (the end of the header, the
		 * padding) are not missed: the rest must be */
		whole_hdr = !memcmp(torn, r.buf, ENG_REC_HDR_SIZE);
		whole_payload = !memcmp(torn, r.buf, r.size);
		cr_assert(eq(int, eng_rec_check_hdr(torn, r.size, &h),
			     whole_hdr ? 0 : -EBADMSG),
			  "header torn after %llu bytes", (unsigned long long)kept);
		if (kept < ENG_REC_HDR_SIZE - 4)
			cr_assert(not(whole_hdr), "kept %llu", (unsigned long long)kept);
		if (!whole_hdr)
			continue;
		cr_assert(eq(int, eng_rec_check_data(torn, &h),
			     whole_payload ? 0 : -EBADMSG),
			  "payload torn after %llu bytes", (unsigned long long)kept);
		if (kept < ENG_REC_HDR_SIZE + 8 + sizeof(val))
			cr_assert(not(whole_payload), "kept %llu",
				  (unsigned long long)kept);
	}
	/* zeros (space prepared ahead of the tail) are never a record */
	memset(torn, 0, r.size);
	cr_assert(eq(int, eng_rec_check_hdr(torn, r.size, &h), -EBADMSG));
	free(torn);
	free(r.buf);
}

/* Headers whose checksum is right but whose fields break the format's
 * rules: each must be refused on its own. */
Test(engine_record, well_sealed_but_invalid_headers_are_rejected, .timeout = 5)
{
	unsigned char buf[ENG_REC_HDR_SIZE + ENG_KEY_MAX + 64] = { 0 };
	struct eng_rec_hdr h;

	/* PUT with klen 0 */
	eng_rec_encode(buf, ENG_REC_PUT, 1, "k", 1, "v", 1);
	put16(buf + OFF_KLEN, 0);
	reseal_hdr(buf);
	cr_assert(eq(int, eng_rec_check_hdr(buf, sizeof(buf), &h), -EBADMSG),
		  "klen 0");
	/* klen 1025 */
	put16(buf + OFF_KLEN, ENG_KEY_MAX + 1);
	reseal_hdr(buf);
	cr_assert(eq(int, eng_rec_check_hdr(buf, sizeof(buf), &h), -EBADMSG),
		  "klen 1025");
	/* klen 1024 is fine (the buffer holds it) */
	put16(buf + OFF_KLEN, ENG_KEY_MAX);
	reseal_hdr(buf);
	cr_assert(eq(int, eng_rec_check_hdr(buf, sizeof(buf), &h), 0),
		  "klen 1024");
	/* DEL carrying a value */
	eng_rec_encode(buf, ENG_REC_DEL, 1, "k", 1, NULL, 0);
	put32(buf + OFF_VLEN, 8);
	reseal_hdr(buf);
	cr_assert(eq(int, eng_rec_check_hdr(buf, sizeof(buf), &h), -EBADMSG),
		  "DEL with a value");
	/* PAD with a key */
	eng_rec_encode_pad(buf, 64, 0);
	put16(buf + OFF_KLEN, 1);
	reseal_hdr(buf);
	cr_assert(eq(int, eng_rec_check_hdr(buf, sizeof(buf), &h), -EBADMSG),
		  "PAD with a key");
	/* unknown types */
	for (int type = 0; type < 256; type++) {
		if (type == ENG_REC_PUT || type == ENG_REC_DEL ||
		    type == ENG_REC_PAD)
			continue;
		eng_rec_encode(buf, ENG_REC_PUT, 1, "k", 1, "v", 1);
		buf[OFF_TYPE] = (unsigned char)type;
		reseal_hdr(buf);
		cr_assert(eq(int, eng_rec_check_hdr(buf, sizeof(buf), &h),
			     -EBADMSG), "type %d", type);
	}
}

/* The flags each type may carry, and batch_left only inside a batch. */
Test(engine_record, flags_and_batch_left_follow_the_rules, .timeout = 5)
{
	static const enum eng_rec_type types[] = { ENG_REC_PUT, ENG_REC_DEL };
	unsigned char buf[64] = { 0 };
	struct eng_rec_hdr h;

	for (size_t t = 0; t < 2; t++) {
		const char *v = types[t] == ENG_REC_PUT ? "v" : NULL;
		uint32_t vlen = v ? 1 : 0;

		for (int flags = 0; flags < 256; flags++) {
			int ok = flags == 0 || flags == ENG_REC_F_BATCH ||
				 flags == (ENG_REC_F_BATCH | ENG_REC_F_FIRST);
			eng_rec_encode(buf, types[t], 1, "k", 1, v, vlen);
			buf[OFF_FLAGS] = (unsigned char)flags;
			reseal_hdr(buf);
			cr_assert(eq(int, eng_rec_check_hdr(buf, sizeof(buf), &h),
				     ok ? 0 : -EBADMSG), "type %d flags 0x%02x",
				  types[t], flags);
		}
		/* a count outside a batch */
		eng_rec_encode(buf, types[t], 1, "k", 1, v, vlen);
		put32(buf + OFF_BATCH_LEFT, 1);
		reseal_hdr(buf);
		cr_assert(eq(int, eng_rec_check_hdr(buf, sizeof(buf), &h), -EBADMSG),
			  "batch_left without the batch flag");
		/* inside one: up to ENG_BATCH_MAX - 1 parts after this one */
		eng_rec_encode_part(buf, types[t], 1, "k", 1, v, vlen, 0, 2);
		put32(buf + OFF_BATCH_LEFT, ENG_BATCH_MAX - 1);
		reseal_hdr(buf);
		cr_assert(eq(int, eng_rec_check_hdr(buf, sizeof(buf), &h), 0));
		cr_assert(eq(u32, h.batch_left, ENG_BATCH_MAX - 1));
		put32(buf + OFF_BATCH_LEFT, ENG_BATCH_MAX);
		reseal_hdr(buf);
		cr_assert(eq(int, eng_rec_check_hdr(buf, sizeof(buf), &h), -EBADMSG),
			  "more parts than a batch may have");
		put32(buf + OFF_BATCH_LEFT, UINT32_MAX);
		reseal_hdr(buf);
		cr_assert(eq(int, eng_rec_check_hdr(buf, sizeof(buf), &h), -EBADMSG));
	}
	/* PAD: only the repaired flag, never a count */
	for (int flags = 0; flags < 256; flags++) {
		eng_rec_encode_pad(buf, sizeof(buf), 0);
		buf[OFF_FLAGS] = (unsigned char)flags;
		reseal_hdr(buf);
		cr_assert(eq(int, eng_rec_check_hdr(buf, sizeof(buf), &h),
			     flags == 0 || flags == ENG_REC_F_REPAIRED ? 0 : -EBADMSG),
			  "PAD flags 0x%02x", flags);
	}
	eng_rec_encode_pad(buf, sizeof(buf), ENG_REC_F_REPAIRED);
	put32(buf + OFF_BATCH_LEFT, 1);
	reseal_hdr(buf);
	cr_assert(eq(int, eng_rec_check_hdr(buf, sizeof(buf), &h), -EBADMSG),
		  "PAD with batch_left");
}

Test(engine_record, fields_are_little_endian_on_disk, .timeout = 5)
{
	unsigned char buf[48];
	static const unsigned char magic[4] = { 'C', 'K', 'D', 'R' };
	uint32_t dcrc = eng_crc32c(0, "abxyz", 5);

	eng_rec_encode(buf, ENG_REC_PUT, 0x1122334455667788ull, "ab", 2,
		       "xyz", 3);
	cr_assert(eq(int, memcmp(buf, magic, 4), 0));
	cr_assert(eq(u32, get32(buf + 4),
		     eng_crc32c(0, buf + 8, ENG_REC_HDR_SIZE - 8)));
	cr_assert(eq(int, buf[OFF_TYPE], ENG_REC_PUT));
	cr_assert(eq(int, buf[OFF_FLAGS], 0));
	cr_assert(eq(int, buf[OFF_KLEN], 2));
	cr_assert(eq(int, buf[OFF_KLEN + 1], 0));
	cr_assert(eq(int, buf[OFF_VLEN], 3));
	cr_assert(eq(int, buf[OFF_VERSION], 0x88));
	cr_assert(eq(int, buf[OFF_VERSION + 7], 0x11));
	cr_assert(eq(int, buf[OFF_DCRC], dcrc & 0xFF));
	cr_assert(eq(int, buf[OFF_DCRC + 3], dcrc >> 24));
	cr_assert(eq(u32, get32(buf + OFF_BATCH_LEFT), 0));
	cr_assert(eq(int, memcmp(buf + 32, "abxyz", 5), 0));

	eng_rec_encode_part(buf, ENG_REC_PUT, 1, "ab", 2, "xyz", 3, 0, 0x0102 + 1);
	cr_assert(eq(int, buf[OFF_FLAGS], ENG_REC_F_BATCH | ENG_REC_F_FIRST));
	cr_assert(eq(int, buf[OFF_BATCH_LEFT], 0x02));
	cr_assert(eq(int, buf[OFF_BATCH_LEFT + 1], 0x01));
}

/* --- batch parts ------------------------------------------------------------ */

Test(engine_record, batch_parts_count_down_to_the_last, .timeout = 5)
{
	enum { NPARTS = 5 };
	char key[8], val[16];

	for (uint32_t part = 0; part < NPARTS; part++) {
		enum eng_rec_type type = part == 2 ? ENG_REC_DEL : ENG_REC_PUT;
		uint32_t vlen = type == ENG_REC_DEL ? 0 : 3 + part;
		uint8_t flags = ENG_REC_F_BATCH | (part == 0 ? ENG_REC_F_FIRST : 0);
		struct rec r;

		snprintf(key, sizeof(key), "b%u", part);
		memset(val, 'a' + (int)part, sizeof(val));
		r = encode_part(type, 1234, key, 2, val, vlen, part, NPARTS);
		/* every part: the batch's version, its own key and value */
		expect_record(&r, type, 1234, key, 2, val, vlen, flags,
			      NPARTS - 1 - part);
		free(r.buf);
	}
}

Test(engine_record, a_batch_of_one_is_first_and_last, .timeout = 5)
{
	struct rec r = encode_part(ENG_REC_PUT, 9, "only", 4, "v", 1, 0, 1);

	expect_record(&r, ENG_REC_PUT, 9, "only", 4, "v", 1,
		      ENG_REC_F_BATCH | ENG_REC_F_FIRST, 0);
	free(r.buf);
}

Test(engine_record, the_largest_batch_is_valid_at_both_ends, .timeout = 5)
{
	struct rec first = encode_part(ENG_REC_PUT, 3, "k", 1, "v", 1, 0,
				       ENG_BATCH_MAX);
	struct rec last = encode_part(ENG_REC_PUT, 3, "k", 1, "v", 1,
				      ENG_BATCH_MAX - 1, ENG_BATCH_MAX);

	expect_record(&first, ENG_REC_PUT, 3, "k", 1, "v", 1,
		      ENG_REC_F_BATCH | ENG_REC_F_FIRST, ENG_BATCH_MAX - 1);
	expect_record(&last, ENG_REC_PUT, 3, "k", 1, "v", 1, ENG_REC_F_BATCH, 0);
	free(first.buf);
	free(last.buf);
}

/* Compaction copies committed parts as plain records. */
Test(engine_record, unbatch_makes_a_part_a_plain_record, .timeout = 5)
{
	unsigned char val[100];
	struct rec r;

	for (size_t i = 0; i < sizeof(val); i++)
		val[i] = (unsigned char)(i * 3);
	for (uint32_t part = 0; part < 3; part++) {
		r = encode_part(ENG_REC_PUT, 55, "unbatch", 7, val, sizeof(val),
				part, 3);
		eng_rec_unbatch(r.buf);
		expect_round_trip(&r, ENG_REC_PUT, 55, "unbatch", 7, val,
				  sizeof(val));
		free(r.buf);
	}
	r = encode_part(ENG_REC_DEL, 56, "gone", 4, NULL, 0, 1, 2);
	eng_rec_unbatch(r.buf);
	expect_round_trip(&r, ENG_REC_DEL, 56, "gone", 4, NULL, 0);
	free(r.buf);
	/* a plain record stays as it is */
	r = encode(ENG_REC_PUT, 57, "plain", 5, "v", 1);
	eng_rec_unbatch(r.buf);
	expect_round_trip(&r, ENG_REC_PUT, 57, "plain", 5, "v", 1);
	free(r.buf);
}

Test(engine_record, unbatch_leaves_a_damaged_header_alone, .timeout = 5)
{
	struct rec r = encode_part(ENG_REC_PUT, 58, "k", 1, "v", 1, 0, 2);
	unsigned char *copy = malloc(r.size);
	struct eng_rec_hdr h;

	cr_assert_not_null(copy);
	r.buf[OFF_VERSION] ^= 0x40; /* hcrc no longer matches */
	memcpy(copy, r.buf, r.size);
	eng_rec_unbatch(r.buf);
	cr_assert(eq(int, memcmp(copy, r.buf, r.size), 0),
		  "unbatch must not reseal damage");
	cr_assert(eq(int, eng_rec_check_hdr(r.buf, r.size, &h), -EBADMSG));
	free(copy);
	free(r.buf);
}

/* --- the file header and its durable marks ------------------------------- */

static void reseal_file_hdr(unsigned char *hdr)
{
	unsigned char fixed[ENG_FILE_HDR_CRC_LEN];

	memcpy(fixed, hdr, sizeof(fixed));
	memset(fixed + ENG_FILE_HDR_CRC_OFF, 0, 4);
	put32(hdr + ENG_FILE_HDR_CRC_OFF, eng_crc32c(0, fixed, sizeof(fixed)));
}

static void expect_mark(const unsigned char *hdr, int rc, uint64_t durable,
			uint64_t lease, int slot)
{
	struct eng_mark m = { 1, 1 };
	int s = -1;

	cr_assert(eq(int, eng_mark_read(hdr, &m, &s), rc));
	cr_assert(eq(u64, m.durable, durable));
	cr_assert(eq(u64, m.lease, lease));
	if (slot >= 0)
		cr_assert(eq(int, s, slot));
}

Test(engine_record, file_header_round_trips, .timeout = 5)
{
	unsigned char hdr[ENG_FILE_HDR_SIZE];
	struct eng_mark m = { ENG_FILE_HDR_SIZE, 1u << 20 };
	int format = 0;

	memset(hdr, 0xEE, sizeof(hdr));
	eng_file_hdr_encode(hdr, 0x0123456789ABCDEFull, &m);
	cr_assert(eq(int, eng_file_hdr_check(hdr, sizeof(hdr), &format), 0));
	cr_assert(eq(int, format, ENG_FORMAT_VERSION));
	cr_assert(eq(int, eng_file_hdr_check(hdr, sizeof(hdr), NULL), 0),
		  "format is optional");
	cr_assert(eq(int, memcmp(hdr, ENG_FILE_MAGIC, ENG_FILE_MAGIC_LEN), 0));
	cr_assert(eq(u32, get32(hdr + 8), ENG_FORMAT_VERSION));
	cr_assert(eq(u64, get64(hdr + ENG_FILE_ID_OFF), 0x0123456789ABCDEFull));
	cr_assert(eq(u64, eng_file_id(hdr), 0x0123456789ABCDEFull));
	/* mark A holds {durable, lease}, mark B is invalid */
	cr_assert(eq(u64, get64(hdr + ENG_MARK_OFF_A), ENG_FILE_HDR_SIZE));
	cr_assert(eq(u64, get64(hdr + ENG_MARK_OFF_A + 8), 1u << 20));
	cr_assert(eq(u32, get32(hdr + ENG_MARK_OFF_A + 16),
		     eng_crc32c(0, hdr + ENG_MARK_OFF_A, 16)));
	for (int i = ENG_MARK_OFF_B; i < ENG_FILE_HDR_SIZE; i++)
		cr_assert(eq(int, hdr[i], 0), "mark B byte %d", i);
	expect_mark(hdr, 0, ENG_FILE_HDR_SIZE, 1u << 20, 0);
	cr_assert(eq(u64, eng_mark_off(0), ENG_MARK_OFF_A));
	cr_assert(eq(u64, eng_mark_off(1), ENG_MARK_OFF_B));
	cr_assert(eq(int, ENG_MARK_OFF_B + ENG_MARK_SIZE, ENG_FILE_HDR_SIZE));
}

Test(engine_record, file_header_damage_is_rejected, .timeout = 5)
{
	unsigned char hdr[ENG_FILE_HDR_SIZE];
	struct eng_mark m = { 4096, 77 };

	eng_file_hdr_encode(hdr, 12345, &m);
	/* the fixed part: magic, version, its crc, the file id */
	for (int byte = 0; byte < ENG_FILE_HDR_CRC_LEN; byte++)
		for (int bit = 0; bit < BITS_PER_BYTE; bit++) {
			hdr[byte] ^= (unsigned char)(1u << bit);
			cr_assert(eq(int, eng_file_hdr_check(hdr, sizeof(hdr), NULL),
				     -EBADMSG), "bit %d of byte %d", bit, byte);
			hdr[byte] ^= (unsigned char)(1u << bit);
		}
	/* the marks have their own crc: damage there is not the header's */
	for (int byte = ENG_FILE_HDR_CRC_LEN; byte < ENG_FILE_HDR_SIZE; byte++) {
		hdr[byte] ^= 0x10;
		cr_assert(eq(int, eng_file_hdr_check(hdr, sizeof(hdr), NULL), 0),
			  "mark byte %d", byte);
		hdr[byte] ^= 0x10;
	}
	cr_assert(eq(int, eng_file_hdr_check(hdr, ENG_FILE_HDR_SIZE - 1, NULL),
		     -EBADMSG), "a file shorter than its header");
	cr_assert(eq(int, eng_file_hdr_check(hdr, 0, NULL), -EBADMSG));
	cr_assert(eq(int, eng_file_hdr_check(hdr, sizeof(hdr), NULL), 0));
	/* not a caskd file at all */
	memset(hdr, 0, sizeof(hdr));
	cr_assert(eq(int, eng_file_hdr_check(hdr, sizeof(hdr), NULL), -EBADMSG));
}

Test(engine_record, newer_format_version_is_eproto, .timeout = 5)
{
	unsigned char hdr[ENG_FILE_HDR_SIZE];
	struct eng_mark m = { ENG_FILE_HDR_SIZE, 0 };
	int format = -1;

	eng_file_hdr_encode(hdr, 1, &m);
	put32(hdr + 8, ENG_FORMAT_VERSION + 1);
	reseal_file_hdr(hdr);
	cr_assert(eq(int, eng_file_hdr_check(hdr, sizeof(hdr), &format), -EPROTO));
	cr_assert(eq(int, format, -1), "no format on failure");
	put32(hdr + 8, UINT32_MAX);
	reseal_file_hdr(hdr);
	cr_assert(eq(int, eng_file_hdr_check(hdr, sizeof(hdr), NULL), -EBADMSG),
		  "a version that reads negative is not a newer format");
	/* a version 0 is no format at all */
	put32(hdr + 8, 0);
	reseal_file_hdr(hdr);
	cr_assert(eq(int, eng_file_hdr_check(hdr, sizeof(hdr), NULL), -EBADMSG));
}

Test(engine_record, file_ids_are_random_and_never_zero, .timeout = 5)
{
	uint64_t ids[64];

	for (int i = 0; i < 64; i++) {
		ids[i] = eng_file_id_new();
		cr_assert(ne(u64, ids[i], 0));
		for (int j = 0; j < i; j++)
			cr_assert(ne(u64, ids[i], ids[j]), "ids %d and %d", i, j);
	}
}

Test(engine_record, durable_marks_take_the_larger_valid_one, .timeout = 5)
{
	unsigned char hdr[ENG_FILE_HDR_SIZE];
	struct eng_mark a = { 4096, 100 }, b = { 8192, 100 };

	eng_file_hdr_encode(hdr, 7, &a);
	expect_mark(hdr, 0, 4096, 100, 0);
	/* B larger by offset */
	eng_mark_encode(hdr + ENG_MARK_OFF_B, &b);
	expect_mark(hdr, 0, 8192, 100, 1);
	/* A rewritten larger: A counts */
	a = (struct eng_mark){ 16384, 100 };
	eng_mark_encode(hdr + ENG_MARK_OFF_A, &a);
	expect_mark(hdr, 0, 16384, 100, 0);
	/* same offset: the larger lease counts (a lease renewal) */
	b = (struct eng_mark){ 16384, 200 };
	eng_mark_encode(hdr + ENG_MARK_OFF_B, &b);
	expect_mark(hdr, 0, 16384, 200, 1);
	/* a torn rewrite of B (any of its 20 bytes): A counts */
	for (int byte = 0; byte < ENG_MARK_SIZE; byte++) {
		hdr[ENG_MARK_OFF_B + byte] ^= 0x01;
		expect_mark(hdr, 0, 16384, 100, 0);
		hdr[ENG_MARK_OFF_B + byte] ^= 0x01;
	}
	/* both damaged: no mark, so no damage is taken for a tear */
	hdr[ENG_MARK_OFF_A + 2] ^= 1;
	hdr[ENG_MARK_OFF_B + 12] ^= 1;
	expect_mark(hdr, -EBADMSG, UINT64_MAX, 0, 0);
	/* marks never touch the fixed part's checksum */
	cr_assert(eq(int, eng_file_hdr_check(hdr, sizeof(hdr), NULL), 0));
	/* the mark layout: u64 durable, u64 lease, u32 crc of the 16 */
	eng_mark_encode(hdr + ENG_MARK_OFF_B, &(struct eng_mark){ 0x1122, 0x3344 });
	cr_assert(eq(u64, get64(hdr + ENG_MARK_OFF_B), 0x1122));
	cr_assert(eq(u64, get64(hdr + ENG_MARK_OFF_B + 8), 0x3344));
	cr_assert(eq(u32, get32(hdr + ENG_MARK_OFF_B + 16),
		     eng_crc32c(0, hdr + ENG_MARK_OFF_B, 16)));
	expect_mark(hdr, 0, 0x1122, 0x3344, 1);
}

/* --- format 1 headers ---------------------------------------------------------- */

#define V1_MARK_A 24
#define V1_MARK_B 40
#define V1_CRC_OFF 60

static void v1_mark(unsigned char *p, uint64_t off, uint32_t seq)
{
	put64(p, off);
	put32(p + 8, seq);
	put32(p + 12, eng_crc32c(0, p, 12));
}

/* A format 1 header as the first release wrote it (docs/format.md). */
static void v1_header(unsigned char *hdr, uint64_t off_a, uint32_t seq_a)
{
	memset(hdr, 0, ENG_FILE_HDR_SIZE);
	memcpy(hdr, ENG_FILE_MAGIC, ENG_FILE_MAGIC_LEN);
	put32(hdr + 8, ENG_FORMAT_V1);
	put32(hdr + 12, ENG_FILE_HDR_SIZE);
	put64(hdr + 16, 1700000000); /* creation time */
	put32(hdr + V1_CRC_OFF, eng_crc32c(0, hdr, ENG_FILE_HDR_CRC_LEN));
	v1_mark(hdr + V1_MARK_A, off_a, seq_a);
}

Test(engine_record, format_1_header_is_read, .timeout = 5)
{
	unsigned char hdr[ENG_FILE_HDR_SIZE];
	int format = 0;

	v1_header(hdr, 4096, 3);
	cr_assert(eq(int, eng_file_hdr_check(hdr, sizeof(hdr), &format), 0));
	cr_assert(eq(int, format, ENG_FORMAT_V1));
	cr_assert(eq(u64, eng_file_id(hdr), 0), "format 1 has no file id");
	/* marks: offset and sequence; no lease */
	expect_mark(hdr, 0, 4096, 0, 0);
	v1_mark(hdr + V1_MARK_B, 8192, 4);
	expect_mark(hdr, 0, 8192, 0, 1);
	v1_mark(hdr + V1_MARK_A, 12288, 5);
	expect_mark(hdr, 0, 12288, 0, 0);
	/* the higher sequence counts, not the larger offset */
	v1_mark(hdr + V1_MARK_B, 100, 6);
	expect_mark(hdr, 0, 100, 0, 1);
	/* sequences wrap: 0 follows UINT32_MAX */
	v1_mark(hdr + V1_MARK_A, 200, UINT32_MAX);
	v1_mark(hdr + V1_MARK_B, 300, 0);
	expect_mark(hdr, 0, 300, 0, 1);
	/* a torn B: A counts */
	hdr[V1_MARK_B + 3] ^= 0x80;
	expect_mark(hdr, 0, 200, 0, 0);
	/* both torn: no mark */
	hdr[V1_MARK_A + 9] ^= 0x80;
	expect_mark(hdr, -EBADMSG, UINT64_MAX, 0, -1);
	/* marks are outside the fixed part's crc in format 1 too */
	cr_assert(eq(int, eng_file_hdr_check(hdr, sizeof(hdr), NULL), 0));
}

Test(engine_record, format_1_header_damage_is_rejected, .timeout = 5)
{
	unsigned char hdr[ENG_FILE_HDR_SIZE];

	v1_header(hdr, ENG_FILE_HDR_SIZE, 1);
	/* bytes 0..24 (a flip of the version makes it another format,
	 * whose own crc fails) */
	for (int byte = 0; byte < ENG_FILE_HDR_CRC_LEN; byte++)
		for (int bit = 0; bit < BITS_PER_BYTE; bit++) {
			hdr[byte] ^= (unsigned char)(1u << bit);
			cr_assert(eq(int, eng_file_hdr_check(hdr, sizeof(hdr), NULL),
				     -EBADMSG), "bit %d of byte %d", bit, byte);
			hdr[byte] ^= (unsigned char)(1u << bit);
		}
	for (int byte = V1_CRC_OFF; byte < ENG_FILE_HDR_SIZE; byte++) {
		hdr[byte] ^= 0x04;
		cr_assert(eq(int, eng_file_hdr_check(hdr, sizeof(hdr), NULL),
			     -EBADMSG), "crc byte %d", byte);
		hdr[byte] ^= 0x04;
	}
	cr_assert(eq(int, eng_file_hdr_check(hdr, sizeof(hdr), NULL), 0));
}

/* --- the upgrade of a format 1 file, through the store ---------------------- */

UU_DIR_SUITE(engine_record_upgrade, "record");

/* A format 1 database.bin: its header, then records as format 2 has them. */
static size_t v1_image(unsigned char *buf, size_t cap)
{
	size_t off = ENG_FILE_HDR_SIZE;
	struct {
		enum eng_rec_type type;
		uint64_t version;
		const char *key, *val;
	} recs[] = {
		{ ENG_REC_PUT, 1, "alpha", "one" },
		{ ENG_REC_PUT, 2, "beta", "two" },
		{ ENG_REC_PUT, 3, "alpha", "uno" },
		{ ENG_REC_DEL, 4, "beta", "" },
		{ ENG_REC_PUT, 5, "gamma", "three" },
	};

	v1_header(buf, ENG_FILE_HDR_SIZE, 1);
	for (size_t i = 0; i < sizeof(recs) / sizeof(recs[0]); i++) {
		uint16_t klen = (uint16_t)strlen(recs[i].key);
		uint32_t vlen = (uint32_t)strlen(recs[i].val);

		cr_assert_leq(off + eng_rec_size(klen, vlen), cap);
		eng_rec_encode(buf + off, recs[i].type, recs[i].version,
			       recs[i].key, klen, recs[i].val, vlen);
		off += eng_rec_size(klen, vlen);
	}
	return off;
}

Test(engine_record_upgrade, format_1_file_is_rewritten_as_format_2_in_place,
     .timeout = 10)
{
	unsigned char img[1024];
	char path[UU_DIR_MAX + 32];
	size_t n = v1_image(img, sizeof(img)), got;
	unsigned char *after;
	struct eng_db db;
	struct eng_recovery rep;
	struct eng_mark m;
	struct eng_val v;
	uint64_t id;
	int format, slot;

	uu_path(path, sizeof(path), fx.dir, "database.bin");
	uu_write_file(path, img, n);
	uu_open_rw(fx.dir, UU_MAX_KEYS, &db, &rep);
	cr_assert(eq(int, rep.upgraded, 1));
	cr_assert(eq(int, rep.created, 0));
	cr_assert(eq(u64, rep.records, 5));
	cr_assert(eq(u64, rep.keys, 2));
	cr_assert(eq(u64, rep.tail, n));
	cr_assert(eq(int, eng_get(&db, "alpha", 5, &v), 0));
	cr_assert(eq(u64, v.version, 3));
	cr_assert(eq(int, memcmp(v.data, "uno", 3), 0));
	eng_val_release(&db, &v);
	uu_expect_val(&db, "beta", NULL);
	uu_expect_val(&db, "gamma", "three");
	uu_close(&db);

	after = (unsigned char *)uu_read_file(path, &got);
	cr_assert(eq(u64, got, n), "the records do not move");
	cr_assert(eq(int, memcmp(after + ENG_FILE_HDR_SIZE, img + ENG_FILE_HDR_SIZE,
				 n - ENG_FILE_HDR_SIZE), 0), "records untouched");
	cr_assert(eq(int, eng_file_hdr_check(after, got, &format), 0));
	cr_assert(eq(int, format, ENG_FORMAT_VERSION));
	id = eng_file_id(after);
	cr_assert(ne(u64, id, 0), "a format 2 file has an id");
	/* the mark: everything recovered is durable, and the lease covers
	 * every version the log holds */
	cr_assert(eq(int, eng_mark_read(after, &m, &slot), 0));
	cr_assert(eq(u64, m.durable, n));
	cr_assert(gt(u64, m.lease, 5));
	free(after);

	/* the next start reads format 2 and upgrades nothing */
	uu_open_rw(fx.dir, UU_MAX_KEYS, &db, &rep);
	cr_assert(eq(int, rep.upgraded, 0));
	cr_assert(ge(u64, rep.version_base, 5));
	uu_expect_val(&db, "alpha", "uno");
	uu_close(&db);
	after = (unsigned char *)uu_read_file(path, &got);
	cr_assert(eq(u64, eng_file_id(after), id), "the id stays the file's");
	free(after);
}

Test(engine_record_upgrade, damaged_format_1_header_refuses_to_open,
     .timeout = 10)
{
	unsigned char img[1024];
	char path[UU_DIR_MAX + 32];
	size_t n = v1_image(img, sizeof(img)), got;
	unsigned char *after;
	struct eng_db db;
	struct eng_recovery rep;

	img[17] ^= 0x01; /* the creation time, under the header crc */
	uu_path(path, sizeof(path), fx.dir, "database.bin");
	uu_write_file(path, img, n);
	cr_assert(eq(int, uu_open(fx.dir, UU_MAX_KEYS, &db, &rep), ENG_ECORRUPT));
	cr_assert(eq(u64, rep.bad_off, 0));
	after = (unsigned char *)uu_read_file(path, &got);
	cr_assert(eq(u64, got, n));
	cr_assert(eq(int, memcmp(after, img, n), 0), "a refused file is not touched");
	free(after);
}

/* --- eng_parse_i64 --------------------------------------------------------- */

static int parse(const char *s, int64_t *out)
{
	*out = 0x5A5A5A5A;
	return eng_parse_i64(s, strlen(s), out);
}

Test(engine_record, parse_i64_accepts_the_boundaries, .timeout = 5)
{
	int64_t v;

	cr_assert(eq(int, parse("9223372036854775807", &v), 0));
	cr_assert(eq(i64, v, INT64_MAX));
	cr_assert(eq(int, parse("-9223372036854775808", &v), 0));
	cr_assert(eq(i64, v, INT64_MIN));
	cr_assert(eq(int, parse("0", &v), 0));
	cr_assert(eq(i64, v, 0));
	cr_assert(eq(int, parse("-1", &v), 0));
	cr_assert(eq(i64, v, -1));
	cr_assert(eq(int, parse("10", &v), 0));
	cr_assert(eq(i64, v, 10));
	cr_assert(eq(int, parse("-9223372036854775807", &v), 0));
	cr_assert(eq(i64, v, -INT64_MAX));
}

Test(engine_record, parse_i64_rejects_one_past_each_boundary, .timeout = 5)
{
	int64_t v;

	cr_assert(eq(int, parse("9223372036854775808", &v), -EINVAL));
	cr_assert(eq(int, parse("-9223372036854775809", &v), -EINVAL));
	cr_assert(eq(int, parse("18446744073709551616", &v), -EINVAL));
	cr_assert(eq(int, parse("99999999999999999999", &v), -EINVAL));
	cr_assert(eq(int, parse("-99999999999999999999", &v), -EINVAL));
	cr_assert(eq(i64, v, 0x5A5A5A5A), "a rejected parse writes nothing");
}

Test(engine_record, parse_i64_rejects_non_canonical_forms, .timeout = 5)
{
	static const char *bad[] = {
		"", "-", "-0", "007", "00", "+1", " 1", "1 ", "1a", "0x10",
		"--1", "1-", "1.0", "1e3", "-00", "\xff", "9223372036854775807 ",
	};
	int64_t v;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		cr_assert(eq(int, parse(bad[i], &v), -EINVAL), "'%s'", bad[i]);
	/* the length counts, not a NUL: "12" inside "123" */
	cr_assert(eq(int, eng_parse_i64("123", 2, &v), 0));
	cr_assert(eq(i64, v, 12));
	cr_assert(eq(int, eng_parse_i64("1\0002", 3, &v), -EINVAL));
}

/* --- crc32c and the key hash ------------------------------------------------ */

Test(engine_record, crc32c_matches_known_vectors, .timeout = 5)
{
	unsigned char zeros[32] = { 0 }, ones[32], inc[32];

	memset(ones, 0xFF, sizeof(ones));
	for (int i = 0; i < 32; i++)
		inc[i] = (unsigned char)i;
	cr_assert(eq(u32, eng_crc32c(0, "123456789", 9), 0xE3069283));
	cr_assert(eq(u32, eng_crc32c(0, "", 0), 0));
	/* RFC 3720 (iSCSI), B.4 */
	cr_assert(eq(u32, eng_crc32c(0, zeros, 32), 0x8A9136AA));
	cr_assert(eq(u32, eng_crc32c(0, ones, 32), 0x62A8AB43));
	cr_assert(eq(u32, eng_crc32c(0, inc, 32), 0x46DD794E));
}

Test(engine_record, crc32c_continues_and_ignores_alignment, .timeout = 5)
{
	unsigned char buf[200], *copy = malloc(sizeof(buf) + 8);
	uint32_t whole;

	cr_assert_not_null(copy);
	for (size_t i = 0; i < sizeof(buf); i++)
		buf[i] = (unsigned char)(i * 13 + 5);
	whole = eng_crc32c(0, buf, sizeof(buf));
	for (size_t cut = 0; cut <= sizeof(buf); cut++)
		cr_assert(eq(u32, eng_crc32c(eng_crc32c(0, buf, cut), buf + cut,
					     sizeof(buf) - cut), whole),
			  "split at %zu", cut);
	for (size_t shift = 0; shift < 8; shift++) {
		memcpy(copy + shift, buf, sizeof(buf));
		cr_assert(eq(u32, eng_crc32c(0, copy + shift, sizeof(buf)), whole),
			  "misaligned by %zu", shift);
	}
	free(copy);
}

Test(engine_record, error_codes_have_names, .timeout = 5)
{
	static const int codes[] = {
		ENG_EFULL, ENG_EPRECOND, ENG_ENOTINT, ENG_EOVERFLOW,
		ENG_EPOISONED, ENG_ECORRUPT,
	};

	for (size_t i = 0; i < sizeof(codes) / sizeof(codes[0]); i++) {
		cr_assert(lt(int, codes[i], -4096), "outside errno's range");
		cr_assert_not_null(eng_strerror(codes[i]));
		cr_assert(ne(str, (char *)eng_strerror(codes[i]),
			     strerror(-codes[i])), "code %d has its own name",
			  codes[i]);
	}
	cr_assert(eq(str, (char *)eng_strerror(-ENOENT), strerror(ENOENT)));
}
