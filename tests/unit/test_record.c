/* tests/unit/test_record.c — the on-disk format (engine/record.h), the
 * checksum under it (engine/crc32c.h) and eng_parse_i64 (engine/store.h).
 *
 * Pure functions on memory buffers: no files, no processes. Every buffer
 * is malloc'ed at its exact size, so under ASan any read past a record or
 * header is caught.
 */
#include "engine/crc32c.h"
#include "engine/errors.h"
#include "engine/record.h"
#include "engine/store.h"

#include <criterion/criterion.h>
#include <criterion/new/assert.h>
#include <endian.h>
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define BITS_PER_BYTE 8

/* A record encoded into a buffer of exactly its size. */
struct rec {
	unsigned char *buf;
	uint64_t size;
};

static struct rec encode(enum eng_rec_type type, uint64_t version,
			 const void *key, uint16_t klen, const void *val,
			 uint32_t vlen)
{
	struct rec r = { .size = eng_rec_size(klen, vlen) };

	r.buf = malloc(r.size);
	cr_assert_not_null(r.buf);
	memset(r.buf, 0xA5, r.size); /* encode must overwrite every byte */
	eng_rec_encode(r.buf, type, version, key, klen, val, vlen);
	return r;
}

/* Decodes r and checks every field against what was encoded. */
static void expect_round_trip(const struct rec *r, enum eng_rec_type type,
			      uint64_t version, const void *key,
			      uint16_t klen, const void *val, uint32_t vlen)
{
	struct eng_rec_hdr h;
	int rc = eng_rec_check_hdr(r->buf, r->size, &h);

	cr_assert(eq(int, rc, 0), "check_hdr: %s", eng_strerror(rc));
	cr_assert(eq(int, eng_rec_check_data(r->buf, &h), 0));
	cr_assert(eq(u32, h.magic, ENG_REC_MAGIC));
	cr_assert(eq(int, h.type, type));
	cr_assert(eq(int, h.flags, 0));
	cr_assert(eq(int, h.klen, klen));
	cr_assert(eq(u32, h.vlen, vlen));
	cr_assert(eq(u64, h.version, version));
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

/* Recomputes the header checksum after a test edited the header, so that
 * only the field under test is wrong. */
static void reseal_hdr(unsigned char *p)
{
	uint32_t crc = htole32(eng_crc32c(0, p + 8, ENG_REC_HDR_SIZE - 8));
	memcpy(p + 4, &crc, sizeof(crc));
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

	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		unsigned char *buf = calloc(1, sizes[i]);
		struct eng_rec_hdr h;

		cr_assert_not_null(buf);
		memset(buf + ENG_REC_HDR_SIZE, 0x5A, sizes[i] - ENG_REC_HDR_SIZE);
		eng_rec_encode_pad(buf, sizes[i]);
		cr_assert(eq(int, eng_rec_check_hdr(buf, sizes[i], &h), 0));
		cr_assert(eq(int, h.type, ENG_REC_PAD));
		cr_assert(eq(int, h.klen, 0));
		cr_assert(eq(u64, eng_rec_total(&h), sizes[i]));
		/* a PAD's payload is whatever was there: never checked */
		cr_assert(eq(int, eng_rec_check_data(buf, &h), 0));
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

Test(engine_record, any_flipped_header_bit_is_rejected, .timeout = 10)
{
	struct rec r = encode(ENG_REC_PUT, 0x0102030405060708ull, "key", 3,
			      "value", 5);
	struct eng_rec_hdr h;

	for (int byte = 0; byte < ENG_REC_HDR_SIZE; byte++)
		for (int bit = 0; bit < BITS_PER_BYTE; bit++) {
			r.buf[byte] ^= (unsigned char)(1u << bit);
			cr_assert(eq(int, eng_rec_check_hdr(r.buf, r.size, &h),
				     -EBADMSG), "bit %d of header byte %d", bit,
				  byte);
			r.buf[byte] ^= (unsigned char)(1u << bit);
		}
	cr_assert(eq(int, eng_rec_check_hdr(r.buf, r.size, &h), 0));
	free(r.buf);
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

/* Headers whose checksum is right but whose fields break the format's
 * rules: each must be refused on its own. */
Test(engine_record, well_sealed_but_invalid_headers_are_rejected, .timeout = 5)
{
	unsigned char buf[ENG_REC_HDR_SIZE + ENG_KEY_MAX + 64] = { 0 };
	struct eng_rec_hdr h;
	uint16_t k16;
	uint32_t v32;

	/* PUT with klen 0 */
	eng_rec_encode(buf, ENG_REC_PUT, 1, "k", 1, "v", 1);
	k16 = htole16(0);
	memcpy(buf + 10, &k16, 2);
	reseal_hdr(buf);
	cr_assert(eq(int, eng_rec_check_hdr(buf, sizeof(buf), &h), -EBADMSG),
		  "klen 0");
	/* klen 1025 */
	k16 = htole16(ENG_KEY_MAX + 1);
	memcpy(buf + 10, &k16, 2);
	reseal_hdr(buf);
	cr_assert(eq(int, eng_rec_check_hdr(buf, sizeof(buf), &h), -EBADMSG),
		  "klen 1025");
	/* DEL carrying a value */
	eng_rec_encode(buf, ENG_REC_DEL, 1, "k", 1, NULL, 0);
	v32 = htole32(8);
	memcpy(buf + 12, &v32, 4);
	reseal_hdr(buf);
	cr_assert(eq(int, eng_rec_check_hdr(buf, sizeof(buf), &h), -EBADMSG),
		  "DEL with a value");
	/* PAD with a key */
	eng_rec_encode_pad(buf, 64);
	k16 = htole16(1);
	memcpy(buf + 10, &k16, 2);
	reseal_hdr(buf);
	cr_assert(eq(int, eng_rec_check_hdr(buf, sizeof(buf), &h), -EBADMSG),
		  "PAD with a key");
	/* unknown types */
	for (int type = 0; type < 256; type++) {
		if (type == ENG_REC_PUT || type == ENG_REC_DEL ||
		    type == ENG_REC_PAD)
			continue;
		eng_rec_encode(buf, ENG_REC_PUT, 1, "k", 1, "v", 1);
		buf[8] = (unsigned char)type;
		reseal_hdr(buf);
		cr_assert(eq(int, eng_rec_check_hdr(buf, sizeof(buf), &h),
			     -EBADMSG), "type %d", type);
	}
}

Test(engine_record, fields_are_little_endian_on_disk, .timeout = 5)
{
	unsigned char buf[48];
	static const unsigned char magic[4] = { 'C', 'K', 'D', 'R' };

	eng_rec_encode(buf, ENG_REC_PUT, 0x1122334455667788ull, "ab", 2,
		       "xyz", 3);
	cr_assert(eq(int, memcmp(buf, magic, 4), 0));
	cr_assert(eq(int, buf[8], ENG_REC_PUT));
	cr_assert(eq(int, buf[10], 2));
	cr_assert(eq(int, buf[11], 0));
	cr_assert(eq(int, buf[12], 3));
	cr_assert(eq(int, buf[16], 0x88));
	cr_assert(eq(int, buf[23], 0x11));
	cr_assert(eq(int, memcmp(buf + 32, "abxyz", 5), 0));
}

/* --- the file header and its durable marks ------------------------------- */

Test(engine_record, file_header_round_trips, .timeout = 5)
{
	unsigned char hdr[ENG_FILE_HDR_SIZE];
	uint64_t created;
	uint32_t seq;

	eng_file_hdr_encode(hdr, 1700000000);
	cr_assert(eq(int, eng_file_hdr_check(hdr, sizeof(hdr)), 0));
	cr_assert(eq(int, memcmp(hdr, ENG_FILE_MAGIC, ENG_FILE_MAGIC_LEN), 0));
	memcpy(&created, hdr + 16, 8);
	cr_assert(eq(u64, le64toh(created), 1700000000));
	/* a new file is durable up to the end of its header */
	cr_assert(eq(u64, eng_mark_read(hdr, &seq), ENG_FILE_HDR_SIZE));
	cr_assert(eq(u32, seq, 1));
}

Test(engine_record, file_header_damage_is_rejected, .timeout = 5)
{
	unsigned char hdr[ENG_FILE_HDR_SIZE];

	eng_file_hdr_encode(hdr, 12345);
	for (int byte = 0; byte < ENG_FILE_HDR_CRC_LEN; byte++)
		for (int bit = 0; bit < BITS_PER_BYTE; bit++) {
			hdr[byte] ^= (unsigned char)(1u << bit);
			cr_assert(eq(int, eng_file_hdr_check(hdr, sizeof(hdr)),
				     -EBADMSG), "bit %d of byte %d", bit, byte);
			hdr[byte] ^= (unsigned char)(1u << bit);
		}
	for (int byte = ENG_FILE_HDR_SIZE - 4; byte < ENG_FILE_HDR_SIZE; byte++) {
		hdr[byte] ^= 0x10;
		cr_assert(eq(int, eng_file_hdr_check(hdr, sizeof(hdr)), -EBADMSG),
			  "checksum byte %d", byte);
		hdr[byte] ^= 0x10;
	}
	cr_assert(eq(int, eng_file_hdr_check(hdr, ENG_FILE_HDR_SIZE - 1),
		     -EBADMSG), "a file shorter than its header");
	cr_assert(eq(int, eng_file_hdr_check(hdr, sizeof(hdr)), 0));
}

Test(engine_record, newer_format_version_is_eproto, .timeout = 5)
{
	unsigned char hdr[ENG_FILE_HDR_SIZE];
	uint32_t v = htole32(ENG_FORMAT_VERSION + 1), crc;

	eng_file_hdr_encode(hdr, 0);
	memcpy(hdr + 8, &v, 4);
	crc = htole32(eng_crc32c(0, hdr, ENG_FILE_HDR_CRC_LEN));
	memcpy(hdr + ENG_FILE_HDR_SIZE - 4, &crc, 4);
	cr_assert(eq(int, eng_file_hdr_check(hdr, sizeof(hdr)), -EPROTO));
}

Test(engine_record, durable_marks_take_the_newer_valid_one, .timeout = 5)
{
	unsigned char hdr[ENG_FILE_HDR_SIZE];
	uint32_t seq;

	eng_file_hdr_encode(hdr, 0);
	eng_mark_encode(hdr + ENG_MARK_OFF_B, 4096, 2);
	cr_assert(eq(u64, eng_mark_read(hdr, &seq), 4096));
	cr_assert(eq(u32, seq, 2));
	eng_mark_encode(hdr + ENG_MARK_OFF_A, 8192, 3);
	cr_assert(eq(u64, eng_mark_read(hdr, &seq), 8192));
	cr_assert(eq(u32, seq, 3));
	/* a torn rewrite of A: B still counts */
	hdr[ENG_MARK_OFF_A + 2] ^= 1;
	cr_assert(eq(u64, eng_mark_read(hdr, &seq), 4096));
	cr_assert(eq(u32, seq, 2));
	/* both damaged: no mark, so no damage is taken for a tear */
	hdr[ENG_MARK_OFF_B + 12] ^= 1;
	cr_assert(eq(u64, eng_mark_read(hdr, &seq), UINT64_MAX));
	cr_assert(eq(u32, seq, 0));
	/* marks never touch the fixed part's checksum */
	cr_assert(eq(int, eng_file_hdr_check(hdr, sizeof(hdr)), 0));
	/* sequences wrap: 0 follows UINT32_MAX */
	eng_mark_encode(hdr + ENG_MARK_OFF_A, 100, UINT32_MAX);
	eng_mark_encode(hdr + ENG_MARK_OFF_B, 200, 0);
	cr_assert(eq(u64, eng_mark_read(hdr, &seq), 200));
	cr_assert(eq(u32, seq, 0));
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

Test(engine_record, key_hash_tells_apart_lengths_and_bytes, .timeout = 5)
{
	cr_assert(eq(u64, eng_key_hash("abc", 3), eng_key_hash("abc", 3)));
	cr_assert(ne(u64, eng_key_hash("a", 1), eng_key_hash("a\0", 2)));
	cr_assert(ne(u64, eng_key_hash("", 0), eng_key_hash("\0", 1)));
	cr_assert(ne(u64, eng_key_hash("12345678", 8),
		     eng_key_hash("12345679", 8)));
	cr_assert(ne(u64, eng_key_hash("123456789", 9),
		     eng_key_hash("123456788", 9)));
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
