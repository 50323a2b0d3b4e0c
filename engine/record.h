/* engine/record.h — the on-disk format of database.bin. The one place its
 * constants live; docs/format.md describes the same layout for people.
 *
 * File: a 64-byte file header, then records, each starting at an 8-byte
 * aligned offset. All integers little-endian.
 *
 * File header (64 bytes):
 *   0  u8[8] magic "CASKDB\0\0"      8 u32 format version (1)
 *  12  u32 header size (64)          16 u64 created, unix seconds
 *  24  durable mark A (16 bytes)     40 durable mark B (16 bytes)
 *  56  u32 zero                      60 u32 crc32c of bytes 0..24
 * Durable mark: u64 offset, u32 sequence, u32 crc32c of the first 12
 * bytes. Every byte below the offset was durable (fdatasync'ed, fully
 * written) when the mark was written; a mark is rewritten in place, so
 * there are two, written alternately, and the valid one with the higher
 * sequence counts. Recovery trusts damage above the mark to be a write
 * torn by a crash before it was acknowledged; damage below it is
 * corruption.
 *
 * Record header (32 bytes), then key, then value, then zero padding to 8:
 *   0  u32 magic 0x52444B43          4 u32 hcrc: crc32c of bytes 8..32
 *   8  u8 type  9 u8 flags(0)       10 u16 key length (1..1024; 0 for PAD)
 *  12  u32 value length             16 u64 version
 *  24  u32 dcrc: crc32c of key+value 28 u32 zero
 *
 * The key sits immediately before the value, so the index stores only the
 * value's offset and finds the key at value offset - key length.
 * A PAD record covers space that holds nothing (a reservation whose write
 * failed); its payload is ignored and dcrc is 0.
 */
#ifndef CASKD_ENGINE_RECORD_H
#define CASKD_ENGINE_RECORD_H

#include <stddef.h>
#include <stdint.h>

#define ENG_FILE_MAGIC "CASKDB\0\0"
#define ENG_FILE_MAGIC_LEN 8
#define ENG_FORMAT_VERSION 1
#define ENG_FILE_HDR_SIZE 64
#define ENG_FILE_HDR_CRC_LEN 24   /* the fixed part; marks have their own */
#define ENG_MARK_OFF_A 24
#define ENG_MARK_OFF_B 40
#define ENG_MARK_SIZE 16
#define ENG_REC_MAGIC 0x52444B43u /* "CKDR" read as little-endian bytes */
#define ENG_REC_HDR_SIZE 32
#define ENG_REC_ALIGN 8           /* headers never straddle a word */
#define ENG_KEY_MAX 1024          /* HTTP-API.md: keys are 1..1024 bytes */
/* Values are capped by --max-value-size; the format allows u32. */
#define ENG_VALUE_MAX_FORMAT UINT32_MAX

enum eng_rec_type {
	ENG_REC_PUT = 1,
	ENG_REC_DEL = 2, /* tombstone: key, empty value */
	ENG_REC_PAD = 3,
};

struct eng_rec_hdr {
	uint32_t magic;
	uint32_t hcrc;
	uint8_t type;
	uint8_t flags;
	uint16_t klen;
	uint32_t vlen;
	uint64_t version;
	uint32_t dcrc;
	uint32_t zero;
};
_Static_assert(sizeof(struct eng_rec_hdr) == ENG_REC_HDR_SIZE,
	       "record header is 32 bytes on disk");

static inline uint64_t eng_align8(uint64_t n)
{
	return (n + ENG_REC_ALIGN - 1) & ~(uint64_t)(ENG_REC_ALIGN - 1);
}

/* Bytes a record with this key and value takes on disk. */
static inline uint64_t eng_rec_size(uint32_t klen, uint32_t vlen)
{
	return eng_align8((uint64_t)ENG_REC_HDR_SIZE + klen + vlen);
}

/* Writes a whole record (header, key, value, padding) into dst, which has
 * eng_rec_size(klen, vlen) bytes. */
void eng_rec_encode(void *dst, enum eng_rec_type type, uint64_t version,
		    const void *key, uint16_t klen, const void *val,
		    uint32_t vlen);
/* Writes a PAD record header covering total bytes (>= 32, multiple of 8). */
void eng_rec_encode_pad(void *dst, uint64_t total);
/* Decodes and checks the header at p (avail bytes readable): magic, hcrc,
 * type, lengths, and that the whole record fits in avail. 0 or -EBADMSG
 * (-ENODATA if fewer than 32 bytes or the record runs past avail). */
int eng_rec_check_hdr(const void *p, uint64_t avail, struct eng_rec_hdr *h);
/* Checks the payload checksum of a record whose header passed. */
int eng_rec_check_data(const void *p, const struct eng_rec_hdr *h);
/* Total size of a record whose header passed. */
uint64_t eng_rec_total(const struct eng_rec_hdr *h);

void eng_file_hdr_encode(void *dst, uint64_t created);
/* 0, -EBADMSG (not a caskd file or damaged), -EPROTO (newer format). */
int eng_file_hdr_check(const void *p, uint64_t avail);

/* Encodes a durable mark (16 bytes) for offset mark, sequence seq. */
void eng_mark_encode(void *dst, uint64_t mark, uint32_t seq);
/* The valid durable mark with the higher sequence in a file header, or
 * UINT64_MAX (with *seq = 0) when neither is valid: no damage is then
 * taken for a torn write. */
uint64_t eng_mark_read(const void *file_hdr, uint32_t *seq);

/* The 64-bit hash the index uses for keys (not stored on disk). */
uint64_t eng_key_hash(const void *key, size_t len);

#endif
