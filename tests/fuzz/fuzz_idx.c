/* tests/fuzz/fuzz_idx.c — libFuzzer harness of database.idx, the index
 * snapshot recovery loads at start-up (engine/idxsnap.c eng_idx_parse).
 *
 * The input is a snapshot file; the database.bin it is checked against
 * is fixed (a header, a few puts, a delete, a batch). The first byte
 * chooses whether the harness makes the snapshot's file id and both
 * checksums right before parsing, so the fuzzer reaches the entries
 * rather than stopping at a CRC. Invariants when the snapshot is taken:
 * the table holds exactly the snapshot's key count, every live slot
 * names a whole, valid PUT record of the map whose key hashes to the
 * slot's hash, and no key is live twice. ASan and UBSan catch the rest.
 * The other file read at start-up, database.bin (and so every snapshot
 * from GET /admin/snapshot), is fuzz_scan's.
 */
#include "engine/crc32c.h"
#include "engine/idxsnap.h"
#include "engine/index.h"
#include "engine/keyhash.h"
#include "engine/record.h"

#include <endian.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define FZ_SLOTS 64
#define FZ_DB_MAX 4096
/* database.idx's layout (engine/idxsnap.c) */
#define IDX_HDR 80
#define IDX_OFF_FILE_ID 16
#define IDX_OFF_KEYS 32
#define IDX_OFF_ENTRIES_CRC 64
#define IDX_OFF_CRC 76

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char db[FZ_DB_MAX];
static uint64_t db_size;

static void put_rec(enum eng_rec_type type, uint64_t version, const char *key,
		    const char *val)
{
	uint16_t klen = (uint16_t)strlen(key);
	uint32_t vlen = val ? (uint32_t)strlen(val) : 0;

	eng_rec_encode(db + db_size, type, version, key, klen, val, vlen);
	db_size += eng_rec_size(klen, vlen);
}

static void make_db(void)
{
	struct eng_mark m = { ENG_FILE_HDR_SIZE, 0 };
	const char *k[2] = { "b1", "b2" };

	eng_file_hdr_encode(db, 0x1122334455667788ull, &m);
	db_size = ENG_FILE_HDR_SIZE;
	put_rec(ENG_REC_PUT, 1, "alpha", "one");
	put_rec(ENG_REC_PUT, 2, "beta", "two");
	put_rec(ENG_REC_PUT, 3, "alpha", "three");
	put_rec(ENG_REC_DEL, 4, "beta", NULL);
	for (uint32_t i = 0; i < 2; i++) {
		eng_rec_encode_part(db + db_size, ENG_REC_PUT, 5, k[i], 2, "v", 1, i, 2);
		db_size += eng_rec_size(2, 1);
	}
	m.durable = db_size;
	eng_file_hdr_encode(db, 0x1122334455667788ull, &m);
}

static void fix_up(uint8_t *idx, size_t size)
{
	uint64_t id = htole64(eng_file_id(db)), keys;
	uint32_t crc;

	if (size < IDX_HDR)
		return;
	memcpy(idx + IDX_OFF_FILE_ID, &id, 8);
	keys = (size - IDX_HDR) / 32;
	keys = htole64(keys);
	memcpy(idx + IDX_OFF_KEYS, &keys, 8);
	crc = htole32(eng_crc32c(0, idx + IDX_HDR, size - IDX_HDR - (size - IDX_HDR) % 32));
	memcpy(idx + IDX_OFF_ENTRIES_CRC, &crc, 4);
	crc = htole32(eng_crc32c(0, idx, IDX_OFF_CRC));
	memcpy(idx + IDX_OFF_CRC, &crc, 4);
}

static void check_table(const struct eng_table *t, uint64_t keys)
{
	uint64_t live = 0;

	for (uint64_t i = 0; i < t->nslots; i++) {
		struct eng_entry e;
		struct eng_rec_hdr h;
		uint64_t roff;
		const char *key;

		if (eng_index_read_slot(t, i, &e) != 1)
			continue;
		live++;
		if (e.voff < ENG_FILE_HDR_SIZE + ENG_REC_HDR_SIZE + (uint64_t)e.klen ||
		    e.voff > db_size)
			abort();
		roff = e.voff - e.klen - ENG_REC_HDR_SIZE;
		if (eng_rec_check_hdr(db + roff, db_size - roff, &h) || h.type != ENG_REC_PUT ||
		    h.klen != e.klen || h.vlen != e.vlen || h.version != e.version)
			abort();
		key = db + roff + ENG_REC_HDR_SIZE;
		if (eng_index_hash(t, key, e.klen) != e.hash)
			abort();
		for (uint64_t j = i + 1; j < t->nslots; j++) {
			struct eng_entry o;
			if (eng_index_read_slot(t, j, &o) == 1 && o.klen == e.klen &&
			    !memcmp(db + o.voff - o.klen, key, e.klen))
				abort(); /* one key, two live slots */
		}
	}
	if (live != keys || live != t->live)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct eng_table *t;
	uint64_t covered, maxv;
	uint8_t *idx;
	char why[256];

	if (size < 1)
		return 0;
	if (!db_size)
		make_db();
	if (!t && !(t = malloc(eng_index_table_bytes(FZ_SLOTS))))
		abort();
	memset(t, 0, eng_index_table_bytes(FZ_SLOTS));
	eng_index_init(t, 1, 1, FZ_SLOTS, &(struct eng_hash_seed){ 1, 2 });
	if (!(idx = malloc(size - 1 ? size - 1 : 1)))
		abort();
	memcpy(idx, data + 1, size - 1);
	if (data[0] & 1)
		fix_up(idx, size - 1);
	if (eng_idx_parse(idx, size - 1, db, db_size, t, &covered, &maxv, why,
			  sizeof(why)) == 0) {
		uint64_t keys;
		memcpy(&keys, idx + IDX_OFF_KEYS, 8);
		check_table(t, le64toh(keys));
		if (covered < ENG_FILE_HDR_SIZE || covered > db_size)
			abort();
	}
	free(idx);
	return 0;
}
