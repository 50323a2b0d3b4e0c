/* engine/record.h — the on-disk format of database.bin. The one place its
 * constants live; docs/format.md describes the same layout for people.
 *
 * File: a 64-byte file header, then records, each starting at an 8-byte
 * aligned offset. All integers little-endian.
 *
 * File header, format 2 (64 bytes):
 *   0  u8[8] magic "CASKDB\0\0"      8 u32 format version (2)
 *  12  u32 crc32c of bytes 0..24 with this field taken as zero
 *  16  u64 file id: random, new for every file caskd writes from scratch
 *      (creation, compaction, snapshot), so a hint or index snapshot made
 *      for one file is never taken for another's. Not a secret (GET
 *      /admin/snapshot sends this header): nothing is keyed with it
 *  24  durable mark A (20 bytes)     44 durable mark B (20 bytes)
 * Durable mark: u64 durable offset, u64 version lease, u32 crc32c of the
 * first 16 bytes. Every byte below the durable offset was durable
 * (fdatasync'ed, fully written) when the mark was written, and no version
 * above the lease was ever handed out. A mark is rewritten in place, so
 * there are two, written alternately; both fields only grow (but for a
 * `caskd check --repair=truncate`, which lowers the offset to its cut),
 * so the valid mark with the larger (offset, lease) counts. Recovery
 * trusts damage above the durable offset to be a write torn by a crash
 * before it was acknowledged; damage below it is corruption, and so is a
 * file that ends below it (truncated). Versions resume above the lease,
 * so none is ever handed out twice.
 *
 * Format 1 (the first release) differs only in its header (u32 header
 * size at 12, creation time at 16, marks of u64 offset + u32 sequence +
 * u32 crc at 24 and 40, a crc of bytes 0..24 at 60); it is read, and
 * rewritten as format 2 in place at the first open.
 *
 * Record header (32 bytes), then key, then value, then zero padding to 8:
 *   0  u32 magic 0x52444B43          4 u32 hcrc: crc32c of bytes 8..32
 *   8  u8 type  9 u8 flags          10 u16 key length (1..1024; 0 for PAD)
 *  12  u32 value length             16 u64 version
 *  24  u32 dcrc: crc32c of key+value 28 u32 batch_left
 * flags: ENG_REC_F_BATCH marks a part of a batch: the parts of one batch
 * are contiguous, share one version, the first carries ENG_REC_F_FIRST
 * too, and batch_left counts down to the last part (0), which commits
 * the batch. Recovery applies a batch only once it has read its first
 * part, every part after it intact and in sequence, and the last;
 * without the flag batch_left is 0.
 *
 * The key sits immediately before the value, so the index stores only the
 * value's offset and finds the key at value offset - key length.
 * A PAD record covers space that holds nothing (a reservation whose write
 * failed, or a region `caskd check --repair` dropped: flag
 * ENG_REC_F_REPAIRED); its payload is ignored and dcrc is 0.
 *
 * Term mark: a PAD of 32 bytes (no payload) with flag ENG_REC_F_TERM and
 * a version: a group's primary writes one when its term begins, with the
 * term's first version, and its replicas copy it (docs/cluster.md: a
 * member's position counts it, so one that has it outranks any member of
 * an older term in an election, as Raft's no-op entry does). Nothing
 * else reads it: it holds no key.
 *
 * History mark: a file a compaction wrote starts (offset 64) with a PAD
 * record of 64 bytes whose payload is u8[8] "CASKHIST", u64 floor, u64
 * history offset, u32 crc32c of those 24 bytes, u32 zero. Every record
 * with a version above floor lies at or past the history offset (the
 * log keeps the order versions were handed out in), so /watch and
 * replication can serve any version from floor on; below it, compaction
 * dropped what was overwritten. A file without the mark (never
 * compacted) holds all of its history: floor 0, from offset 64. Readers
 * that do not know the mark skip it as any PAD.
 */
#ifndef CASKD_ENGINE_RECORD_H
#define CASKD_ENGINE_RECORD_H

#include <stddef.h>
#include <stdint.h>

#define ENG_FILE_MAGIC "CASKDB\0\0"
#define ENG_FILE_MAGIC_LEN 8
#define ENG_FORMAT_VERSION 2
#define ENG_FORMAT_V1 1
#define ENG_FILE_HDR_SIZE 64
#define ENG_FILE_HDR_CRC_LEN 24   /* the fixed part; marks have their own */
#define ENG_FILE_HDR_CRC_OFF 12
#define ENG_FILE_ID_OFF 16
#define ENG_MARK_OFF_A 24
#define ENG_MARK_OFF_B 44
#define ENG_MARK_SIZE 20
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

#define ENG_REC_F_BATCH 0x01    /* PUT/DEL: a part of a batch */
#define ENG_REC_F_REPAIRED 0x02 /* PAD: a region caskd check --repair dropped */
#define ENG_REC_F_FIRST 0x04    /* PUT/DEL: the first part of a batch */
#define ENG_REC_F_TERM 0x08     /* PAD: a group's term mark (below) */
#define ENG_BATCH_MAX 10000     /* HTTP-API.md: 1..10000 operations */

struct eng_rec_hdr {
	uint32_t magic;
	uint32_t hcrc;
	uint8_t type;
	uint8_t flags;
	uint16_t klen;
	uint32_t vlen;
	uint64_t version;
	uint32_t dcrc;
	uint32_t batch_left;
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
/* The same for part `part` (0-based) of a batch of nparts parts. */
void eng_rec_encode_part(void *dst, enum eng_rec_type type, uint64_t version,
			 const void *key, uint16_t klen, const void *val,
			 uint32_t vlen, uint32_t part, uint32_t nparts);
/* Rewrites the header of a valid record at p as a plain record (batch
 * flag and count cleared), as compaction copies committed batch parts. */
void eng_rec_unbatch(void *p);
/* Writes a PAD record header covering total bytes (>= 32, multiple of 8);
 * flags 0 or ENG_REC_F_REPAIRED. */
void eng_rec_encode_pad(void *dst, uint64_t total, uint8_t flags);
/* A term mark (ENG_REC_TERM_SIZE bytes) with version v. */
#define ENG_REC_TERM_SIZE ENG_REC_HDR_SIZE
void eng_rec_encode_term(void *dst, uint64_t version);
/* Decodes and checks the header at p (avail bytes readable): magic, hcrc,
 * type, lengths, and that the whole record fits in avail. 0 or -EBADMSG
 * (-ENODATA if fewer than 32 bytes or the record runs past avail). */
int eng_rec_check_hdr(const void *p, uint64_t avail, struct eng_rec_hdr *h);
/* Checks the payload checksum of a record whose header passed. */
int eng_rec_check_data(const void *p, const struct eng_rec_hdr *h);
/* Total size of a record whose header passed. */
uint64_t eng_rec_total(const struct eng_rec_hdr *h);

struct eng_mark {
	uint64_t durable; /* every byte below was durable */
	uint64_t lease;   /* no version above was handed out */
};

/* A format 2 header with file id id and mark m in copy A (B invalid). */
void eng_file_hdr_encode(void *dst, uint64_t id, const struct eng_mark *m);
/* 0 and *format (1 or 2), -EBADMSG (not a caskd file or damaged),
 * -EPROTO (newer format). */
int eng_file_hdr_check(const void *p, uint64_t avail, int *format);
/* The file id of a format 2 header (0 for format 1). */
uint64_t eng_file_id(const void *file_hdr);
/* A new random file id (never 0). */
uint64_t eng_file_id_new(void);

/* Encodes a format 2 durable mark (ENG_MARK_SIZE bytes). */
void eng_mark_encode(void *dst, const struct eng_mark *m);
/* The mark a file header holds: the valid one with the larger (durable,
 * lease), in *m, and which copy it is in (0 = A, 1 = B) in *copy. Reads
 * format 1 marks too (lease 0). 0, or -EBADMSG when neither is valid
 * (*m is then { UINT64_MAX, 0 }: no damage is taken for a torn write). */
int eng_mark_read(const void *file_hdr, struct eng_mark *m, int *copy);
/* Offset of mark copy 0 or 1 in a format 2 header. */
static inline uint64_t eng_mark_off(int copy)
{
	return copy ? ENG_MARK_OFF_B : ENG_MARK_OFF_A;
}

#define ENG_HIST_MAGIC "CASKHIST"
#define ENG_HIST_REC_SIZE 64

/* Writes the history mark record (ENG_HIST_REC_SIZE bytes) into dst. */
void eng_hist_encode(void *dst, uint64_t floor, uint64_t hist_off);
/* The history mark of the file image map (size bytes): 0 with *floor
 * and *hist_off, or -ENOENT when the file has none (floor 0, history
 * from ENG_FILE_HDR_SIZE) or it is damaged. */
int eng_hist_decode(const void *map, uint64_t size, uint64_t *floor,
		    uint64_t *hist_off);

#endif
