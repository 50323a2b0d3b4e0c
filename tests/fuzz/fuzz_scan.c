/* tests/fuzz/fuzz_scan.c — libFuzzer harness of everything that reads
 * database.bin: the file header and marks, the record decoder, the
 * scanner, batch assembly and replay into an index table (engine/scan.c,
 * replay.c, record.c, index.c).
 *
 * The input is a file image. Its first byte chooses whether a valid
 * format-2 header (with a mark taken from the next 8 bytes) is put in
 * front, so both damaged headers and files past the header are reached,
 * and whether the image is scanned as a whole file (eng_scan_set_eof).
 * Invariants: the scan's items tile the file from the header to the end
 * (for a whole file shorter than its mark, to the mark) with no gap or
 * overlap; every record handed out is whole and passes
 * both checksums; the parts of a batch come out only all together, in
 * order, with one version; replaying the records into a table keeps its
 * counters equal to its slots. ASan and UBSan catch the rest.
 */
#include "engine/index.h"
#include "engine/record.h"
#include "engine/replay.h"
#include "engine/scan.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define FZ_SLOTS 64

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct eng_table *fz_table(void)
{
	static struct eng_table *t;

	if (!t)
		t = malloc(eng_index_table_bytes(FZ_SLOTS));
	if (!t)
		abort();
	memset(t, 0, eng_index_table_bytes(FZ_SLOTS));
	/* a fixed seed: a crash must replay the same way */
	eng_index_init(t, 1, 1, FZ_SLOTS, &(struct eng_hash_seed){ 1, 2 });
	return t;
}

static void fz_check_table(const struct eng_table *t)
{
	uint64_t live = 0, dead = 0;

	for (uint64_t i = 0; i < t->nslots; i++) {
		live += t->slots[i].state == ENG_SLOT_LIVE;
		dead += t->slots[i].state == ENG_SLOT_DEAD;
	}
	if (live != t->live || dead != t->dead || t->pending)
		abort();
}

/* A committed batch part must continue the batch handed out before it. */
static void fz_check_parts(const struct eng_replay_item *it, uint64_t *version,
			   uint32_t *next)
{
	if (!it->parts) {
		if (*next)
			abort(); /* a record inside a batch's run */
		return;
	}
	if (it->part != *next || (it->part && it->h.version != *version))
		abort();
	*version = it->h.version;
	*next = it->part + 1 == it->parts ? 0 : it->part + 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct eng_scan s;
	struct eng_replay rp;
	struct eng_replay_item it;
	struct eng_table *t = fz_table();
	uint64_t expect, end, version = 0;
	uint32_t next = 0;
	char *img;
	size_t n;
	int fmt;

	if (size < 1)
		return 0;
	n = data[0] & 1 ? size - 1 + ENG_FILE_HDR_SIZE : size - 1;
	if (!(img = malloc(n ? n : 1)))
		return 0;
	if (data[0] & 1) {
		struct eng_mark m = { ENG_FILE_HDR_SIZE, 0 };
		if (size >= 9)
			memcpy(&m.durable, data + 1, 8);
		eng_file_hdr_encode(img, 1, &m);
		memcpy(img + ENG_FILE_HDR_SIZE, data + 1, size - 1);
	} else {
		memcpy(img, data + 1, size - 1);
	}
	if (eng_file_hdr_check(img, n, &fmt) != 0) {
		struct eng_mark m;
		int slot;
		if (n >= ENG_FILE_HDR_SIZE)
			eng_mark_read(img, &m, &slot); /* any 64 bytes: no overread */
		free(img);
		return 0;
	}
	eng_scan_init(&s, img, n);
	end = n > ENG_FILE_HDR_SIZE ? n : ENG_FILE_HDR_SIZE;
	if (data[0] & 2) {
		eng_scan_set_eof(&s);
		if (s.mark != UINT64_MAX && s.mark > end)
			end = s.mark; /* the bytes it lacks are an item too */
	}
	eng_replay_init(&rp, &s);
	expect = ENG_FILE_HDR_SIZE;
	while (eng_replay_next(&rp, &it) == 0 && it.kind != ENG_REPLAY_END) {
		if (it.kind == ENG_REPLAY_RECORD) {
			struct eng_rec_hdr h;
			if (it.len != eng_rec_total(&it.h) || it.off + it.len > n ||
			    eng_rec_check_hdr(img + it.off, n - it.off, &h) ||
			    eng_rec_check_data(img + it.off, &h))
				abort();
			fz_check_parts(&it, &version, &next);
			if (!next)
				expect = it.off + it.len;
			eng_index_apply(t, img, it.off, &it.h);
		} else {
			if (next || it.off != expect)
				abort(); /* a gap, or an item inside a batch */
			expect = it.off + it.len;
		}
	}
	if (next || expect != end)
		abort(); /* the items do not reach the end */
	eng_replay_free(&rp);
	fz_check_table(t);
	free(img);
	return 0;
}
