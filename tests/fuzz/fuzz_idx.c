/* tests/fuzz/fuzz_idx.c — libFuzzer harness of database.idx, the index
 * snapshot recovery loads at start-up (engine/idxsnap.c eng_idx_parse).
 *
 * The input is an option byte, then a snapshot file; the database.bin
 * it is checked against is fixed (a header, a few puts, a delete, a
 * batch). Options: bit 0 makes the snapshot's file id, key count and
 * checksums right before parsing, so the fuzzer reaches the entries
 * rather than stopping at a CRC; bit 1 does so for the version 3 layout
 * (else version 2); bit 2 (with bits 0 and 1) appends an ordered section
 * made from the entries (each one's key, read from the database, sorted
 * by the harness), so the fuzzer reaches its checks; bit 3 then flips
 * one bit of that section, at the position the input's last two bytes
 * name (they are not part of the file). Invariants when the snapshot is
 * taken: the table holds exactly the snapshot's key count, every live
 * slot names a whole, valid PUT record of the map whose key hashes to
 * the slot's hash, and no key is live twice; when its ordered section is
 * kept, that section names exactly the table's keys, in strictly
 * increasing byte order, each inside the database below covered_from.
 * ASan and UBSan catch the rest.
 * The other file read at start-up, database.bin (and so every snapshot
 * from GET /admin/snapshot), is fuzz_scan's.
 */
#include "engine/crc32c.h"
#include "engine/idxsnap.h"
#include "engine/index.h"
#include "engine/keyhash.h"
#include "engine/okey.h"
#include "engine/record.h"

#include <endian.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define FZ_SLOTS 64
#define FZ_DB_MAX 4096
/* database.idx's layout (engine/idxsnap.c), versions 2 and 3 */
#define IDX_V2_HDR 80
#define IDX_V2_OFF_CRC 76
#define IDX_HDR 96
#define IDX_ENT 32
#define IDX_ORD_ENT 24
#define IDX_OFF_VERSION 8
#define IDX_OFF_HDR_SIZE 12
#define IDX_OFF_FILE_ID 16
#define IDX_OFF_COVERED 24
#define IDX_OFF_KEYS 32
#define IDX_OFF_ENTRIES_CRC 64
#define IDX_OFF_ORDERED_CRC 68
#define IDX_OFF_ORDERED 72
#define IDX_OFF_CRC 92
#define OPT_FIX 1
#define OPT_V3 2
#define OPT_ORDERED 4
#define OPT_FLIP 8

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

static void put32(uint8_t *p, uint32_t v)
{
	v = htole32(v);
	memcpy(p, &v, 4);
}

static void put64(uint8_t *p, uint64_t v)
{
	v = htole64(v);
	memcpy(p, &v, 8);
}

static int sort_cmp(const void *a, const void *b)
{
	return eng_okey_cmp(a, eng_okey_ptr(db, a), b, eng_okey_ptr(db, b));
}

/* The ordered section of the keys entries name (those out of bounds
 * made of whatever they say), at sect; returns how many bytes. */
static size_t make_ordered(const uint8_t *ents, uint64_t keys, uint8_t *sect)
{
	struct eng_okey *v = malloc((keys ? keys : 1) * sizeof(*v));
	int sortable = 1;

	if (!v)
		abort();
	for (uint64_t i = 0; i < keys; i++) {
		uint64_t voff;
		uint16_t klen;

		memcpy(&voff, ents + i * IDX_ENT + 8, 8);
		memcpy(&klen, ents + i * IDX_ENT + 24, 2);
		voff = le64toh(voff);
		klen = le16toh(klen);
		if (klen >= 1 && klen <= ENG_KEY_MAX && voff <= db_size && voff >= klen) {
			v[i] = eng_okey_make(db + voff - klen, klen, voff - klen);
		} else {
			v[i] = (struct eng_okey){ voff, klen, (voff << 16) | klen };
			sortable = 0; /* the comparator would read out of bounds */
		}
	}
	if (sortable)
		qsort(v, keys, sizeof(*v), sort_cmp);
	for (uint64_t i = 0; i < keys; i++) {
		put64(sect + i * IDX_ORD_ENT, v[i].p0);
		put64(sect + i * IDX_ORD_ENT + 8, v[i].p1);
		put64(sect + i * IDX_ORD_ENT + 16, v[i].off_len);
	}
	free(v);
	return keys * IDX_ORD_ENT;
}

/* Makes the file id, counts and checksums right for its layout; returns
 * the snapshot's size (entries only, or entries and ordered section). */
static size_t fix_up(uint8_t *idx, size_t size, size_t cap, unsigned opts,
		     const uint8_t *flip)
{
	size_t hdr = opts & OPT_V3 ? IDX_HDR : IDX_V2_HDR, ord = 0;
	uint64_t keys;

	if (size < hdr)
		return size;
	keys = (size - hdr) / IDX_ENT;
	size = hdr + keys * IDX_ENT;
	put64(idx + IDX_OFF_FILE_ID, eng_file_id(db));
	put64(idx + IDX_OFF_KEYS, keys);
	put32(idx + IDX_OFF_ENTRIES_CRC, eng_crc32c(0, idx + hdr, keys * IDX_ENT));
	if (!(opts & OPT_V3)) {
		put32(idx + IDX_OFF_VERSION, 2);
		put32(idx + IDX_OFF_HDR_SIZE, IDX_V2_HDR);
		put32(idx + IDX_V2_OFF_CRC, eng_crc32c(0, idx, IDX_V2_OFF_CRC));
		return size;
	}
	put32(idx + IDX_OFF_VERSION, 3);
	put32(idx + IDX_OFF_HDR_SIZE, IDX_HDR);
	if ((opts & OPT_ORDERED) && keys && size + keys * IDX_ORD_ENT <= cap) {
		ord = make_ordered(idx + hdr, keys, idx + size);
		if ((opts & OPT_FLIP) && flip) {
			size_t bit = ((size_t)flip[0] << 8 | flip[1]) % (ord * 8);
			idx[size + bit / 8] ^= (uint8_t)(1u << (bit % 8));
		}
		put32(idx + IDX_OFF_ORDERED_CRC, eng_crc32c(0, idx + size, ord));
	}
	put64(idx + IDX_OFF_ORDERED, ord ? keys : 0);
	put32(idx + IDX_OFF_CRC, eng_crc32c(0, idx, IDX_OFF_CRC));
	return size + ord;
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

/* A kept ordered section: the table's keys exactly, strictly ascending,
 * each inside the database below covered_from. */
static void check_view(const struct eng_table *t, const uint8_t *idx,
		       const struct eng_idx_view *v, uint64_t covered)
{
	struct eng_okey prev = { 0 };

	if (v->keys != t->live)
		abort();
	for (uint64_t i = 0; i < v->keys; i++) {
		struct eng_okey k;
		uint64_t w[3], off, found = 0;

		memcpy(w, idx + v->off + i * IDX_ORD_ENT, sizeof(w));
		k = (struct eng_okey){ le64toh(w[0]), le64toh(w[1]), le64toh(w[2]) };
		off = eng_okey_off(&k);
		if (off + eng_okey_len(&k) > covered || off < ENG_FILE_HDR_SIZE)
			abort();
		if (i && eng_okey_cmp(&prev, eng_okey_ptr(db, &prev), &k, eng_okey_ptr(db, &k)) >= 0)
			abort();
		for (uint64_t s = 0; s < t->nslots; s++) {
			struct eng_entry e;
			if (eng_index_read_slot(t, s, &e) == 1 && e.voff - e.klen == off &&
			    e.klen == eng_okey_len(&k))
				found++;
		}
		if (found != 1)
			abort();
		prev = k;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct eng_table *t;
	struct eng_idx_view view;
	uint64_t covered, maxv;
	const uint8_t *flip = NULL;
	size_t n, cap;
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
	n = size - 1;
	if ((data[0] & OPT_FLIP) && n >= 2) {
		flip = data + size - 2;
		n -= 2;
	}
	/* room for an ordered section of every entry the input holds */
	cap = n + n / IDX_ENT * IDX_ORD_ENT + 1;
	if (!(idx = calloc(1, cap)))
		abort();
	memcpy(idx, data + 1, n);
	if (data[0] & OPT_FIX)
		n = fix_up(idx, n, cap, data[0], flip);
	if (eng_idx_parse(idx, n, db, db_size, t, &covered, &maxv, &view, why,
			  sizeof(why)) == 0) {
		uint64_t keys;
		memcpy(&keys, idx + IDX_OFF_KEYS, 8);
		check_table(t, le64toh(keys));
		if (covered < ENG_FILE_HDR_SIZE || covered > db_size)
			abort();
		if (view.file_gen)
			check_view(t, idx, &view, covered);
	}
	free(idx);
	return 0;
}
